-- keygate schema, SQLite. Times are INTEGER microseconds since the Unix epoch (UTC): exact,
-- compact and ordered by plain comparison. JSON columns are TEXT holding JSON.

CREATE TABLE keygate_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    prefix       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    org          TEXT    NOT NULL,
    team         TEXT,
    owner        TEXT,
    scopes       TEXT    NOT NULL,                 -- JSON array of scope strings
    metadata     TEXT    NOT NULL DEFAULT 'null',  -- JSON value
    hash         TEXT    NOT NULL,                 -- PHC string, any length
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    last_used_at INTEGER,
    rotated_from TEXT                              -- id of the key this one replaced
) STRICT;

CREATE INDEX keygate_keys_created ON keygate_keys (created_at, id);
CREATE INDEX keygate_keys_org ON keygate_keys (org, created_at, id);
CREATE INDEX keygate_keys_rotated_from ON keygate_keys (rotated_from);

-- Lifecycle events. Append-only: no foreign key (the trail outlives the key), and triggers
-- refuse updates and deletes.
CREATE TABLE keygate_audit (
    seq     INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    key_id  TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    org     TEXT    NOT NULL,
    actor   TEXT,
    detail  TEXT    NOT NULL DEFAULT 'null'        -- JSON value
) STRICT;

CREATE INDEX keygate_audit_key ON keygate_audit (key_id, seq);

CREATE TRIGGER keygate_audit_no_update BEFORE UPDATE ON keygate_audit
BEGIN
    SELECT RAISE(ABORT, 'keygate_audit is append-only');
END;

CREATE TRIGGER keygate_audit_no_delete BEFORE DELETE ON keygate_audit
BEGIN
    SELECT RAISE(ABORT, 'keygate_audit is append-only');
END;
