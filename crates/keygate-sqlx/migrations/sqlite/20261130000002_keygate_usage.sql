-- Per-key usage: requests and refusals per key and UTC hour. No foreign key: like the audit
-- trail, the counts outlive the key. Counts are added to (never overwritten), so several
-- processes writing for the same hour sum up.

CREATE TABLE keygate_usage (
    key_id   TEXT    NOT NULL,
    hour     INTEGER NOT NULL,            -- start of the hour, microseconds since the epoch
    requests INTEGER NOT NULL DEFAULT 0,  -- accepted requests
    refused  INTEGER NOT NULL DEFAULT 0,  -- refused requests of a parsed key of this id
    PRIMARY KEY (key_id, hour)
) STRICT, WITHOUT ROWID;

-- Pruning old hours.
CREATE INDEX keygate_usage_hour ON keygate_usage (hour);
