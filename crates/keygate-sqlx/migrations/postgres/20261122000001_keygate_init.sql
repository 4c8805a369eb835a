-- keygate schema, PostgreSQL.

CREATE TABLE keygate_keys (
    id           TEXT        NOT NULL PRIMARY KEY,
    prefix       TEXT        NOT NULL,
    name         TEXT        NOT NULL,
    org          TEXT        NOT NULL,
    team         TEXT,
    owner        TEXT,
    scopes       TEXT[]      NOT NULL,
    metadata     JSONB       NOT NULL DEFAULT 'null',
    hash         TEXT        NOT NULL,             -- PHC string, any length
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    rotated_from TEXT                              -- id of the key this one replaced
);

CREATE INDEX keygate_keys_created ON keygate_keys (created_at, id);
CREATE INDEX keygate_keys_org ON keygate_keys (org, created_at, id);
CREATE INDEX keygate_keys_rotated_from ON keygate_keys (rotated_from);

-- Lifecycle events. Append-only: no foreign key (the trail outlives the key), and a trigger
-- refuses updates, deletes and truncation.
CREATE TABLE keygate_audit (
    seq     BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id  TEXT        NOT NULL,
    action  TEXT        NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    org     TEXT        NOT NULL,
    actor   TEXT,
    detail  JSONB       NOT NULL DEFAULT 'null'
);

CREATE INDEX keygate_audit_key ON keygate_audit (key_id, seq);

CREATE FUNCTION keygate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'keygate_audit is append-only';
END;
$$;

CREATE TRIGGER keygate_audit_no_change BEFORE UPDATE OR DELETE ON keygate_audit
    FOR EACH ROW EXECUTE FUNCTION keygate_audit_append_only();
CREATE TRIGGER keygate_audit_no_truncate BEFORE TRUNCATE ON keygate_audit
    FOR EACH STATEMENT EXECUTE FUNCTION keygate_audit_append_only();
