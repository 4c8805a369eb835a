-- Keys API: the rotation successor, a key's own rate limit, and pages of keys.

ALTER TABLE keygate_keys
    -- The key that replaced this one by rotation (NULL until rotated; set once).
    ADD COLUMN rotated_to TEXT,
    -- The key's own rate limit in its canonical `N/period` form (`1000/1m`), or NULL.
    ADD COLUMN rate_limit TEXT;

-- Pages of one org or one team, newest first: scanned backwards, ordered by creation time
-- and then by id in byte order (COLLATE "C", whatever the database collation), as every
-- keygate store orders ids.
CREATE INDEX keygate_keys_org_page ON keygate_keys (org, created_at, id COLLATE "C");
CREATE INDEX keygate_keys_org_team_page ON keygate_keys (org, team, created_at, id COLLATE "C");
