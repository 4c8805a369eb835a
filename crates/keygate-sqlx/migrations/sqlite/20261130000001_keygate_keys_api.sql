-- Keys API: the rotation successor, a key's own rate limit, and team pages.

-- The key that replaced this one by rotation (NULL until rotated; set once).
ALTER TABLE keygate_keys ADD COLUMN rotated_to TEXT;
-- The key's own rate limit in its canonical `N/period` form (`1000/1m`), or NULL.
ALTER TABLE keygate_keys ADD COLUMN rate_limit TEXT;

-- Pages of one team, newest first (keygate_keys_org, scanned backwards, serves whole orgs).
CREATE INDEX keygate_keys_org_team ON keygate_keys (org, team, created_at, id);
