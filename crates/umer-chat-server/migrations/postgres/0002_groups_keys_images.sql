-- Schema 2: groups that change, key epochs and images (docs/server.md). Exact bytes again.

-- chats/<id>/members/<user>.<device>.jsonl, one row per operation (a copy is the same one).
CREATE TABLE membership_lines (
    chat TEXT NOT NULL REFERENCES chats (id),
    op_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    device TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (chat, op_id)
);

-- chats/<id>/keys/<kid>.json, written once.
CREATE TABLE key_epochs (
    chat TEXT NOT NULL REFERENCES chats (id),
    name TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (chat, name)
);

-- images/<sha256>.enc, sealed with the chat's key; kept per chat, so only its members get it.
CREATE TABLE images (
    chat TEXT NOT NULL REFERENCES chats (id),
    name TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (chat, name)
);
