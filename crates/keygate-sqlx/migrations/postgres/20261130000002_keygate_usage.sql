-- Per-key usage: requests and refusals per key and UTC hour. No foreign key: like the audit
-- trail, the counts outlive the key. Counts are added to (never overwritten), so several
-- processes writing for the same hour sum up.

CREATE TABLE keygate_usage (
    key_id   TEXT        NOT NULL,
    hour     TIMESTAMPTZ NOT NULL,           -- start of the hour
    requests BIGINT      NOT NULL DEFAULT 0, -- accepted requests
    refused  BIGINT      NOT NULL DEFAULT 0, -- refused requests of a parsed key of this id
    PRIMARY KEY (key_id, hour)
);

-- Pruning old hours.
CREATE INDEX keygate_usage_hour ON keygate_usage (hour);
