-- Umer Chat server, schema 1 (docs/server.md). Records and lines are the folder's exact bytes.

-- One row: the secret that makes the pre-login answer for a name nobody has.
CREATE TABLE server_secret (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BYTEA NOT NULL
);

CREATE TABLE users (
    key TEXT PRIMARY KEY,
    -- users/<key>.json as its owner wrote it, sealed keys included.
    record BYTEA NOT NULL,
    -- The Ed25519 identity key and X25519 key of the record, base64: checked once, on write.
    sign_key TEXT NOT NULL,
    dh_key TEXT NOT NULL,
    -- Argon2id PHC string of the client's server_auth_key (FORMAT.md, "Signing in to a server").
    auth_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The look-alike rule (FORMAT.md, "Names"): a name whose skeleton is taken is refused.
CREATE TABLE name_skeletons (
    skeleton TEXT PRIMARY KEY,
    user_key TEXT NOT NULL REFERENCES users (key)
);

CREATE TABLE sessions (
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash BYTEA PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_key TEXT NOT NULL REFERENCES users (key),
    device TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_by_user ON sessions (user_key);

-- Failed sign-ins per account, shared by every server process on the database.
CREATE TABLE sign_in_failures (
    user_key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    -- chats/<id>/chat.json, exact bytes.
    record BYTEA NOT NULL,
    -- The sequence number the next line of the chat gets.
    next_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Who may read and write each chat, from its record (and, later, its membership changes).
CREATE TABLE members (
    chat TEXT NOT NULL REFERENCES chats (id),
    user_key TEXT NOT NULL,
    PRIMARY KEY (chat, user_key)
);
CREATE INDEX members_by_user ON members (user_key);

CREATE TABLE lines (
    chat TEXT NOT NULL REFERENCES chats (id),
    seq BIGINT NOT NULL,
    sender TEXT NOT NULL,
    device TEXT NOT NULL,
    id TEXT NOT NULL,
    -- YYYY-MM: the folder's log/<month>/ the line belongs in.
    month TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (chat, seq),
    UNIQUE (chat, sender, id)
);
