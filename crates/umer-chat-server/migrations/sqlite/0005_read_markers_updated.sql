-- Schema 5: when each device last replaced its read markers, so a user keeps those of their
-- newest devices only (as many as they may have sessions): a client cannot fill everyone's
-- folder with reads/<user>/<device>.json files of made-up devices.
ALTER TABLE read_markers ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
