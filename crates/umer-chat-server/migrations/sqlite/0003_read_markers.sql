-- Schema 3: read markers (reads/<user>/<device>.json), replaced whole by their device.
CREATE TABLE read_markers (
    user_key TEXT NOT NULL,
    device TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (user_key, device)
);
