//! `PostgresStore`: the shared store, with invalidations pushed through `LISTEN`/`NOTIFY`; and
//! the PostgreSQL [`Dialect`].

mod listen;

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keygate::{Invalidator, KeyStatus, PageQuery, ScopeSet, StoreError, UsageCount};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder};

use crate::body::{key_store_via_body, Body};
use crate::column;
use crate::common::COLUMNS;
use crate::dialect::{driver_glue, DbQuery, Dialect};
use crate::error::{bounded, store_error};
use crate::options::StoreOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel on which changes are announced; the payload is the key id.
pub const NOTIFY_CHANNEL: &str = "keygate_invalidate";

/// A [`KeyStore`](keygate::KeyStore) in PostgreSQL.
///
/// Revoke, delete, expiry changes, updates, hash updates and rotations (for the old key) send
/// `NOTIFY keygate_invalidate, '<id>'` in the same transaction. With
/// [`StoreOptions::notifications`] on (the default), every [`Verifier`](keygate::Verifier)
/// built on this store listens on that channel and drops the key's cached state within
/// milliseconds; when the listening connection drops it reconnects (with backoff) and drops
/// its whole record cache, since notifications may have been missed meanwhile. The listener
/// has a connection of its own (outside [`PostgresStore::pool`]) and checks it with a
/// heartbeat ([`StoreOptions::listener_heartbeat`]), so a connection that went silent without
/// closing (a failover, a dropped route) is noticed and replaced the same way.
///
/// **TLS** (feature `tls`, on with `postgres`; rustls with ring, no OpenSSL): the URL's
/// `sslmode` decides. `require` encrypts without checking the server's certificate;
/// `verify-full` also checks that the certificate is issued by a trusted root (the webpki
/// roots, plus the PEM certificates of `sslrootcert=PATH` for a private CA) and names the
/// URL's host; `verify-ca` checks the issuer but not the name; `prefer` (the default)
/// encrypts when the server offers TLS. The listener's connection uses the same settings. A handshake refused
/// at connect is a [`StoreError::Unavailable`] that says it is a TLS failure and why:
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keygate::StoreError> {
/// let url = "postgres://keygate:keygate@db.internal/keygate\
///            ?sslmode=verify-full&sslrootcert=/etc/keygate/db-ca.pem";
/// let store = keygate_sqlx::PostgresStore::connect(url).await?;
/// # drop(store); Ok(()) }
/// ```
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keygate::StoreError> {
/// use std::sync::Arc;
/// use keygate_sqlx::PostgresStore;
///
/// let store = Arc::new(PostgresStore::connect("postgres://keygate:keygate@127.0.0.1/keygate").await?);
/// let verifier = keygate::Verifier::builder(store).build(); // subscribes to revocations
/// # drop(verifier); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresStore {
    body: Body<Postgres>,
    notifications: bool,
    heartbeat: listen::Heartbeat,
}
impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`) with default [`StoreOptions`]
    /// and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Connects to `url` with `options`.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let timeout = options.timeout;
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}").into()))?;
        // One direct attempt first: the pool would retry a refused connection until its
        // timeout, hiding the reason ("connection refused", "password authentication failed").
        bounded(timeout, async {
            let probe = connect
                .connect()
                .await
                .map_err(|e| connect_error(e, &connect, timeout))?;
            let _ = probe.close().await;
            Ok(())
        })
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeout)
            .connect_lazy_with(connect);
        let store = PostgresStore {
            body: Body { pool, timeout },
            notifications: options.notifications,
            heartbeat: listen::Heartbeat::new(
                options.listener_heartbeat,
                options.listener_heartbeat_timeout,
            ),
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool (for applications that keep their own tables in the same database).
    pub fn pool(&self) -> &PgPool {
        &self.body.pool
    }

    /// Applies the embedded migrations that are not applied yet (what `connect` does unless
    /// [`StoreOptions::migrate`] is off). Safe to run from several processes at once: the
    /// migration transaction first takes an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.body.migrate().await
    }
}

key_store_via_body!(PostgresStore, body, {
    fn subscribe(&self, invalidator: Invalidator) {
        if self.notifications {
            let listen = listen::Listen {
                connect: self.body.pool.connect_options(),
                connect_timeout: self.body.timeout,
                heartbeat: self.heartbeat,
            };
            listen::spawn(listen, invalidator);
        }
    }

    fn pushes_invalidations(&self) -> bool {
        self.notifications
    }
});

/// The failure of a store's first connection, worded for whoever set the URL: a TLS failure
/// (a certificate no trusted root issued, a host name it does not carry, a server without TLS)
/// says that it is one and what decides it; anything else is [`store_error`]'s.
fn connect_error(e: sqlx::Error, connect: &PgConnectOptions, timeout: Duration) -> StoreError {
    let (mode, verifies) = match connect.get_ssl_mode() {
        PgSslMode::Disable => ("disable", false),
        PgSslMode::Allow => ("allow", false),
        PgSslMode::Prefer => ("prefer", false),
        PgSslMode::Require => ("require", false),
        PgSslMode::VerifyCa => ("verify-ca", true),
        PgSslMode::VerifyFull => ("verify-full", true),
    };
    let required = mode == "require" || verifies;
    // rustls reports a refused handshake as an I/O error of kind `InvalidData`.
    let tls = match &e {
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Io(io) => required && io.kind() == std::io::ErrorKind::InvalidData,
        _ => false,
    };
    if !tls {
        return store_error(e, timeout);
    }
    let hint = if verifies {
        "; the server's certificate must be issued by a root in `sslrootcert=PATH` (or a \
         public web root) and, for verify-full, name the host of the URL"
    } else {
        ""
    };
    let detail = match e {
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    };
    StoreError::Unavailable(format!(
        "PostgreSQL TLS connection failed (sslmode={mode}): {detail}{hint}"
    ))
}

/// The query of one page (see [`PageQuery`]), after `head` (empty, or `EXPLAIN ` in tests).
/// `org = $1` (and `team = $2`) then the position select a range of
/// `keygate_keys_org_page` (`keygate_keys_org_team_page`), read backwards for the order; ids
/// compare in byte order (`COLLATE "C"`, the collation of those indexes) like in every store.
fn page_query(head: &str, q: &PageQuery) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new(format!(
        "{head}SELECT {COLUMNS} FROM keygate_keys WHERE org = "
    ));
    b.push_bind(&q.org);
    if let Some(team) = &q.team {
        b.push(" AND team = ").push_bind(team);
    }
    match q.status {
        None => {}
        Some(KeyStatus::Active) => {
            b.push(" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ")
                .push_bind(q.now)
                .push(")");
        }
        Some(KeyStatus::Expired) => {
            b.push(" AND revoked_at IS NULL AND expires_at <= ")
                .push_bind(q.now);
        }
        Some(KeyStatus::Revoked) => {
            b.push(" AND revoked_at IS NOT NULL");
        }
    }
    if let Some(after) = &q.after {
        b.push(r#" AND (created_at, id COLLATE "C") < ("#)
            .push_bind(after.created_at)
            .push(", ")
            .push_bind(&after.id)
            .push(")");
    }
    b.push(r#" ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT "#)
        .push_bind(i64::from(q.limit));
    b
}

/// `add_usage`'s statement (see [`Dialect::add_usage`]).
static ADD_USAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"INSERT INTO keygate_usage AS u (key_id, hour, requests, refused)
           SELECT key_id, hour, requests, refused
           FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[])
               AS t(key_id, hour, requests, refused)
           ORDER BY key_id COLLATE "C", hour
           ON CONFLICT (key_id, hour) DO UPDATE SET requests = {}, refused = {}"#,
        column::saturating_add_sql("u.requests", "excluded.requests"),
        column::saturating_add_sql("u.refused", "excluded.refused"),
    )
});

/// `usage_totals`' query (see [`Dialect::usage_totals`]). Each row is clamped at 0 like a
/// single read; the sums are NUMERIC, capped at the largest BIGINT.
static USAGE_TOTALS: LazyLock<String> = LazyLock::new(|| {
    let cap = |sum: &str| format!("LEAST(COALESCE({sum}, 0), {})::int8", i64::MAX);
    format!(
        r#"SELECT key_id,
                  {} AS requests_24h,
                  {} AS requests_30d,
                  {} AS refused_24h
           FROM keygate_usage
           WHERE key_id = ANY($1) AND hour >= $3
           GROUP BY key_id
           ORDER BY key_id COLLATE "C""#,
        cap("SUM(GREATEST(requests, 0)) FILTER (WHERE hour >= $2)"),
        cap("SUM(GREATEST(requests, 0))"),
        cap("SUM(GREATEST(refused, 0)) FILTER (WHERE hour >= $2)"),
    )
});

/// PostgreSQL: `TIMESTAMPTZ`, `TEXT[]` scopes and `JSONB`; every lifecycle change sends
/// `NOTIFY keygate_invalidate, '<id>'` in its transaction; ids sort with `COLLATE "C"`.
/// Batches travel as array parameters (`UNNEST`): no bind-variable limit.
impl Dialect for Postgres {
    type Time = DateTime<Utc>;
    type Scopes = Vec<String>;
    type JsonIn<'a> = &'a serde_json::Value;
    type JsonOut = serde_json::Value;

    const MIGRATOR: &'static sqlx::migrate::Migrator = &MIGRATOR;
    const MIGRATIONS_TABLE: &'static str = "CREATE TABLE IF NOT EXISTS keygate_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            description TEXT NOT NULL,
            checksum BYTEA NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )";
    // Concurrent starts apply each migration once.
    const LOCK_MIGRATIONS: Option<&'static str> = Some("SELECT pg_advisory_xact_lock($1)");
    const BEGIN_WRITE: Option<&'static str> = None;
    // Delivered when the transaction commits.
    const NOTIFY: Option<(&'static str, &'static str)> =
        Some(("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL));
    // `FOR UPDATE` locks the old row before it is checked: a concurrent revoke or rotation of
    // it waits for this transaction, and this one waits for theirs and then reads what they
    // committed.
    const ROTATION_READ: &'static str =
        "SELECT rotated_to, revoked_at, expires_at FROM keygate_keys WHERE id = $1 FOR UPDATE";
    // Byte order for ids, like the other stores (the database collation may differ).
    const ID_ORDER: &'static str = r#"id COLLATE "C""#;

    fn time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    fn time_out(_: &str, _: &str, v: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        Ok(v)
    }

    fn scopes(s: &ScopeSet) -> Result<Vec<String>, StoreError> {
        Ok(s.to_strings())
    }

    fn scopes_out(_: &str, v: Vec<String>) -> Result<Vec<String>, StoreError> {
        Ok(v)
    }

    fn json(v: &serde_json::Value) -> Result<&serde_json::Value, StoreError> {
        Ok(v)
    }

    fn json_out(_: &str, _: &str, v: serde_json::Value) -> Result<serde_json::Value, StoreError> {
        Ok(v)
    }

    driver_glue!();

    fn page_query(head: &str, q: &PageQuery) -> QueryBuilder<Postgres> {
        page_query(head, q)
    }

    fn touch_last_used(
        uses: &[(String, DateTime<Utc>)],
    ) -> Result<DbQuery<'_, Postgres>, StoreError> {
        // Two array parameters; duplicates collapse to their latest time, and a stored time
        // only ever moves forward.
        let (ids, ats): (Vec<&str>, Vec<DateTime<Utc>>) =
            uses.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
        Ok(sqlx::query(
            "UPDATE keygate_keys AS k SET last_used_at = u.at
             FROM (SELECT id, max(at) AS at
                   FROM UNNEST($1::text[], $2::timestamptz[]) AS t(id, at)
                   GROUP BY id) AS u
             WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
        )
        .bind(ids)
        .bind(ats))
    }

    fn add_usage(counts: &[UsageCount]) -> Result<DbQuery<'_, Postgres>, StoreError> {
        // Four array parameters, merged to one row per (key, hour) first (an upsert may not
        // meet a row twice) and inserted in (key, hour) order, so concurrent batches lock
        // shared rows in one order and cannot deadlock; an existing row is added to under its
        // row lock.
        let rows = column::merge_usage(counts);
        let mut ids = Vec::with_capacity(rows.len());
        let mut hours = Vec::with_capacity(rows.len());
        let mut requests = Vec::with_capacity(rows.len());
        let mut refused = Vec::with_capacity(rows.len());
        for r in rows {
            ids.push(r.key_id);
            hours.push(r.hour);
            requests.push(r.requests);
            refused.push(r.refused);
        }
        Ok(sqlx::query(ADD_USAGE.as_str())
            .bind(ids)
            .bind(hours)
            .bind(requests)
            .bind(refused))
    }

    fn usage_totals(
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<DbQuery<'_, Postgres>, StoreError> {
        Ok(sqlx::query(USAGE_TOTALS.as_str())
            .bind(key_ids)
            .bind(day_since)
            .bind(month_since))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use keygate::{KeyStore, PagePosition};
    use sqlx::Row;

    use super::*;

    const PG_ENV: &str = "KEYGATE_TEST_POSTGRES_URL";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn page_queries_scan_an_org_index_backwards_without_a_seq_scan_or_a_sort() {
        let Ok(base) = std::env::var(PG_ENV) else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED postgres::tests::page_queries_scan_an_org_index_backwards_without_a_seq_scan_or_a_sort: set {PG_ENV} to run"
            );
            return;
        };
        let admin = sqlx::PgPool::connect(&base).await.unwrap();
        let schema = format!("kg_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        let store = PostgresStore::connect(&url).await.unwrap();
        // 5000 keys of 50 orgs, a third in team red, some revoked or expired, and
        // statistics: a planner that could scan would.
        sqlx::raw_sql(
            "INSERT INTO keygate_keys (id, prefix, name, org, team, scopes, hash, created_at, \
                                       expires_at, revoked_at)
             SELECT 'k' || i, 'mk_test', 'n', 'org' || (i % 50),
                    CASE WHEN i % 3 = 0 THEN 'red' END, '{entities:read}', 'h',
                    timestamptz '2026-01-01' + i * interval '1 second',
                    CASE WHEN i % 5 = 0 THEN timestamptz '2026-01-01' END,
                    CASE WHEN i % 7 = 0 THEN timestamptz '2026-01-01' END
             FROM generate_series(1, 5000) AS i;
             ANALYZE keygate_keys;",
        )
        .execute(store.pool())
        .await
        .unwrap();

        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        for team in [None, Some("red".to_owned())] {
            for status in [
                None,
                Some(KeyStatus::Active),
                Some(KeyStatus::Expired),
                Some(KeyStatus::Revoked),
            ] {
                for after in [
                    None,
                    Some(PagePosition {
                        created_at: now + chrono::Duration::seconds(2500),
                        id: "k2500".into(),
                    }),
                ] {
                    let query = PageQuery {
                        org: "org7".into(),
                        team: team.clone(),
                        status,
                        now,
                        after,
                        limit: 7,
                    };
                    let mut q = page_query("EXPLAIN ", &query);
                    let plan: Vec<String> = q
                        .build()
                        .fetch_all(store.pool())
                        .await
                        .unwrap()
                        .iter()
                        .map(|row| row.get::<String, _>(0))
                        .collect();
                    let plan = plan.join("\n");
                    // Always bounded by an org index, never a scan of every tenant's keys.
                    assert!(!plan.contains("Seq Scan"), "{query:?}:\n{plan}");
                    assert!(
                        plan.contains("using keygate_keys_org")
                            || plan.contains("on keygate_keys_org"),
                        "{query:?}:\n{plan}"
                    );
                    assert!(
                        plan.lines()
                            .any(|l| l.contains("Index Cond: ") && l.contains("(org = ")),
                        "{query:?}:\n{plan}"
                    );
                    // Without a status filter (which may leave the planner a few rows to sort
                    // instead), the page is read straight off the index, in order.
                    if query.status.is_none() {
                        let index = if query.team.is_some() {
                            "keygate_keys_org_team_page"
                        } else {
                            "keygate_keys_org_page"
                        };
                        assert!(
                            plan.contains(&format!("Index Scan Backward using {index} ")),
                            "{query:?}:\n{plan}"
                        );
                        assert!(!plan.contains("Sort"), "{query:?}:\n{plan}");
                    }
                    // The rows themselves are right too.
                    let got = store.list_page(&query).await.unwrap();
                    assert!(got.len() <= 7);
                    assert!(got.iter().all(|r| query.matches(r)), "{query:?}");
                }
            }
        }
        store.pool().close().await;
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&admin)
            .await;
    }
}
