-- Schema 4: how many new passwords a user has set on this server; the next must be one more
-- (FORMAT.md, "A new password on a server"), so an old change cannot be replayed.
ALTER TABLE users ADD COLUMN password_changes BIGINT NOT NULL DEFAULT 0;
