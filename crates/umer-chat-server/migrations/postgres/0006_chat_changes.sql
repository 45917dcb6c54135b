-- Schema 6: how many times a chat's membership, keys, photos or members' read markers have
-- changed, so a device syncing skips the chats where nothing did (GET /v1/chats says it,
-- with the last line's sequence number).
ALTER TABLE chats ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;
