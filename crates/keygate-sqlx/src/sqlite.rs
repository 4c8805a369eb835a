//! [`SqliteStore`]: the embedded default store, and the SQLite [`Dialect`].

use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use keygate::{KeyStatus, PageQuery, ScopeSet, StoreError, UsageCount};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};

use crate::body::{key_store_via_body, Body};
use crate::column;
use crate::common::{corrupt, COLUMNS};
use crate::dialect::{driver_glue, json_text, DbQuery, Dialect};
use crate::error::{bounded, store_error};
use crate::options::StoreOptions;
use crate::timestamp::{from_micros, to_micros};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`KeyStore`](keygate::KeyStore) in a SQLite file (WAL mode, so the CLI and a running service can share it).
///
/// Writes are durable: every connection runs with `synchronous=FULL`, so a create, revoke,
/// delete or rotation that returned `Ok` (and its audit row) is on disk, not only in the
/// operating system's cache, and survives a power loss or an OS crash.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keygate::StoreError> {
/// use keygate_sqlx::{SqliteStore, StoreOptions};
/// # let dir = tempfile::tempdir().map_err(|e| keygate::StoreError::Backend(e.into()))?;
/// # let url = format!("sqlite://{}", dir.path().join("keys.db").display());
/// let store = SqliteStore::connect(&url).await?; // created if missing, migrated
/// let quick = SqliteStore::connect_with(&url, StoreOptions {
///     timeout: std::time::Duration::from_millis(500),
///     ..StoreOptions::default()
/// }).await?;
/// # drop((store, quick)); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    body: Body<Sqlite>,
}
fn config_error(e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("invalid SQLite URL: {e}").into())
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url` (`sqlite://PATH`, or
    /// `sqlite::memory:`) with default [`StoreOptions`], and applies the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// Opens the database at `url` with `options`.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let timeout = options.timeout;
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(config_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: every commit syncs the WAL before it returns, so a revoke (or any other
            // lifecycle write, with its audit row) that was answered survives power loss or an
            // OS crash. NORMAL syncs only at checkpoints and could lose it. Every write of this
            // store is a lifecycle write or a batched flush (one per interval), so the cost is
            // one sync per write, not per request.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(timeout);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut pool = SqlitePoolOptions::new().acquire_timeout(timeout);
        if in_memory {
            // Every connection to `:memory:` would be a database of its own: keep exactly one,
            // forever.
            pool = pool
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            pool = pool.max_connections(4);
        }
        let pool = bounded(timeout, async {
            pool.connect_with(connect)
                .await
                .map_err(|e| store_error(e, timeout))
        })
        .await?;
        let store = SqliteStore {
            body: Body { pool, timeout },
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool (for applications that keep their own tables in the same file).
    pub fn pool(&self) -> &SqlitePool {
        &self.body.pool
    }

    /// Applies the embedded migrations that are not applied yet (what `connect` does unless
    /// [`StoreOptions::migrate`] is off). Safe to run from several processes at once: the
    /// migration transaction begins with `BEGIN IMMEDIATE`, which takes the write lock, so
    /// concurrent migrators queue up.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.body.migrate().await
    }
}

key_store_via_body!(SqliteStore, body);

/// The query of one page (see [`PageQuery`]), after `head` (empty, or `EXPLAIN QUERY PLAN `
/// in tests). `org = ?` (and `team = ?`) then the position select a range of
/// `keygate_keys_org` (`keygate_keys_org_team`), which is read backwards for the order: no
/// scan of other tenants' keys, no sort. The index is named (`INDEXED BY`): with both indexes
/// matching `org = ?`, the planner's pick otherwise depends on what statistics a connection
/// has loaded, and a wrong pick sorts the whole org.
fn page_query(head: &str, q: &PageQuery) -> QueryBuilder<Sqlite> {
    let index = if q.team.is_some() {
        "keygate_keys_org_team"
    } else {
        "keygate_keys_org"
    };
    let mut b = QueryBuilder::new(format!(
        "{head}SELECT {COLUMNS} FROM keygate_keys INDEXED BY {index} WHERE org = "
    ));
    b.push_bind(&q.org);
    if let Some(team) = &q.team {
        b.push(" AND team = ").push_bind(team);
    }
    // The status test is wrapped in `unlikely()`: told the test is selective, the planner
    // keeps reading the index in order and stops at the limit; otherwise (SQLite 3.46, with
    // statistics) it reads the whole org and sorts it (`USE TEMP B-TREE FOR ORDER BY`).
    let now = to_micros(q.now);
    match q.status {
        None => {}
        Some(KeyStatus::Active) => {
            b.push(" AND unlikely(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ")
                .push_bind(now)
                .push("))");
        }
        Some(KeyStatus::Expired) => {
            b.push(" AND unlikely(revoked_at IS NULL AND expires_at <= ")
                .push_bind(now)
                .push(")");
        }
        Some(KeyStatus::Revoked) => {
            b.push(" AND unlikely(revoked_at IS NOT NULL)");
        }
    }
    if let Some(after) = &q.after {
        b.push(" AND (created_at, id) < (")
            .push_bind(to_micros(after.created_at))
            .push(", ")
            .push_bind(&after.id)
            .push(")");
    }
    b.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    b
}

/// `touch_last_used`'s statement (see [`Dialect::touch_last_used`]).
const TOUCH_LAST_USED: &str = "WITH uses(id, at) AS (
         SELECT json_extract(value, '$[0]'), MAX(json_extract(value, '$[1]'))
         FROM json_each(?) GROUP BY 1
     )
     UPDATE keygate_keys SET last_used_at = uses.at
     FROM uses
     WHERE keygate_keys.id = uses.id
       AND (keygate_keys.last_used_at IS NULL OR keygate_keys.last_used_at < uses.at)";

/// `add_usage`'s statement (see [`Dialect::add_usage`]).
static ADD_USAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO keygate_usage (key_id, hour, requests, refused)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                json_extract(value, '$[2]'), json_extract(value, '$[3]')
         FROM json_each(?) WHERE true
         ON CONFLICT (key_id, hour) DO UPDATE SET requests = {}, refused = {}",
        column::saturating_add_sql("requests", "excluded.requests"),
        column::saturating_add_sql("refused", "excluded.refused"),
    )
});

/// `usage_totals`' query (see [`Dialect::usage_totals`]). Each row is clamped at 0 like a
/// single read; a sum past `i64::MAX` (not reachable by real traffic) fails the query rather
/// than wrapping.
const USAGE_TOTALS: &str = "SELECT key_id,
        COALESCE(SUM(MAX(requests, 0)) FILTER (WHERE hour >= ?), 0) AS requests_24h,
        SUM(MAX(requests, 0)) AS requests_30d,
        COALESCE(SUM(MAX(refused, 0)) FILTER (WHERE hour >= ?), 0) AS refused_24h
    FROM keygate_usage
    WHERE key_id IN (SELECT value FROM json_each(?)) AND hour >= ?
    GROUP BY key_id
    ORDER BY key_id";

/// SQLite: times as microseconds since the epoch, JSON (scopes too) as text, write
/// transactions that take the write lock up front (`BEGIN IMMEDIATE`), no notifications.
/// Batches travel as one JSON parameter (`json_each`): no bind-variable limit.
impl Dialect for Sqlite {
    type Time = i64;
    type Scopes = String;
    type JsonIn<'a> = String;
    type JsonOut = String;

    const MIGRATOR: &'static sqlx::migrate::Migrator = &MIGRATOR;
    const MIGRATIONS_TABLE: &'static str = "CREATE TABLE IF NOT EXISTS keygate_migrations (
            version INTEGER NOT NULL PRIMARY KEY,
            description TEXT NOT NULL,
            checksum BLOB NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT";
    const LOCK_MIGRATIONS: Option<&'static str> = None;
    // A write transaction taken up front: it waits (up to the busy timeout) for other writers
    // instead of failing when its reads turn out stale, so a read-check-write inside it is
    // atomic. A caller cancelled after `BEGIN IMMEDIATE` ran leaves no transaction open:
    // sqlx 0.9's SQLite worker hands its answer over by rendezvous and rolls back a `BEGIN`
    // whose caller is gone before taking it; a `Transaction` that took it rolls back when
    // dropped (tests/sqlite.rs, `…_cancelled_between_begin_and_commit_…`).
    const BEGIN_WRITE: Option<&'static str> = Some("BEGIN IMMEDIATE");
    const NOTIFY: Option<(&'static str, &'static str)> = None;
    // The write lock is already held (`BEGIN IMMEDIATE`).
    const ROTATION_READ: &'static str =
        "SELECT rotated_to, revoked_at, expires_at FROM keygate_keys WHERE id = $1";
    // SQLite compares text in byte order (no collation on the column).
    const ID_ORDER: &'static str = "id";

    fn time(t: DateTime<Utc>) -> i64 {
        to_micros(t)
    }

    fn time_out(id: &str, column: &str, v: i64) -> Result<DateTime<Utc>, StoreError> {
        from_micros(id, column, v)
    }

    fn scopes(s: &ScopeSet) -> Result<String, StoreError> {
        json_text(&s.to_strings())
    }

    fn scopes_out(id: &str, v: String) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&v).map_err(|e| corrupt(id, format!("scopes: {e}")))
    }

    fn json(v: &serde_json::Value) -> Result<String, StoreError> {
        json_text(v)
    }

    fn json_out(id: &str, column: &str, v: String) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&v).map_err(|e| corrupt(id, format!("{column}: {e}")))
    }

    driver_glue!();

    fn page_query(head: &str, q: &PageQuery) -> QueryBuilder<Sqlite> {
        page_query(head, q)
    }

    fn touch_last_used(
        uses: &[(String, DateTime<Utc>)],
    ) -> Result<DbQuery<'_, Sqlite>, StoreError> {
        // `[[id, micros], …]`; duplicates collapse to their latest time, and a stored time is
        // only ever moved forward.
        let batch: Vec<(&str, i64)> = uses
            .iter()
            .map(|(id, at)| (id.as_str(), to_micros(*at)))
            .collect();
        Ok(sqlx::query(TOUCH_LAST_USED).bind(json_text(&batch)?))
    }

    fn add_usage(counts: &[UsageCount]) -> Result<DbQuery<'_, Sqlite>, StoreError> {
        // `[[key_id, hour micros, requests, refused], …]`, merged to one row per (key, hour)
        // first; an existing row is added to.
        let batch: Vec<(&str, i64, i64, i64)> = column::merge_usage(counts)
            .into_iter()
            .map(|r| (r.key_id, to_micros(r.hour), r.requests, r.refused))
            .collect();
        Ok(sqlx::query(ADD_USAGE.as_str()).bind(json_text(&batch)?))
    }

    fn usage_totals(
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<DbQuery<'_, Sqlite>, StoreError> {
        let day = to_micros(day_since);
        Ok(sqlx::query(USAGE_TOTALS)
            .bind(day)
            .bind(day)
            .bind(json_text(&key_ids)?)
            .bind(to_micros(month_since)))
    }
}

#[cfg(test)]
mod tests {
    use keygate::{KeyStore, PagePosition};
    use sqlx::Row;

    use super::*;

    /// Every shape of page query (team or not, each status or none, first page or later).
    fn page_queries() -> Vec<PageQuery> {
        let now = DateTime::from_timestamp_micros(1_767_225_600_000_000).unwrap_or_default();
        let mut out = Vec::new();
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
                        created_at: now,
                        id: "k7".into(),
                    }),
                ] {
                    out.push(PageQuery {
                        org: "acme".into(),
                        team: team.clone(),
                        status,
                        now,
                        after,
                        limit: 7,
                    });
                }
            }
        }
        out
    }

    /// `n` keys spread over `orgs` orgs, a third in team red, every seventh revoked, every
    /// fifth expired.
    async fn fill(store: &SqliteStore, n: i64, orgs: i64) {
        for i in 0..n {
            let created_at = DateTime::from_timestamp_micros(i).unwrap();
            let r = keygate::KeyRecord {
                id: format!("k{i:05}"),
                prefix: "mk_test".into(),
                name: "n".into(),
                org: format!("org{}", i % orgs),
                team: (i % 3 == 0).then(|| "red".to_owned()),
                owner: None,
                scopes: ScopeSet::parse(["entities:read"]).unwrap(),
                metadata: serde_json::Value::Null,
                hash: "h".into(),
                created_at,
                expires_at: (i % 5 == 0).then_some(created_at),
                revoked_at: (i % 7 == 0).then_some(created_at),
                last_used_at: None,
                rotated_from: None,
                rotated_to: None,
                rate_limit: None,
            };
            store.insert(&r, &[]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn page_queries_search_an_org_index_without_a_scan_or_a_sort() {
        // One connection, so the statistics the planner sees are the ones made here (a
        // connection loads them with the schema; `ANALYZE` elsewhere is not seen at once).
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        // Empty, without statistics (the usual SQLite database) and with them, for small and
        // large orgs.
        check_page_plans(&store).await;
        fill(&store, 200, 10).await;
        check_page_plans(&store).await;
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
        check_page_plans(&store).await;
        fill_more(&store).await;
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
        check_page_plans(&store).await;
    }

    /// 3000 more keys, nearly all of them in `acme` (the org the page queries ask for).
    async fn fill_more(store: &SqliteStore) {
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::raw_sql(
            "WITH RECURSIVE s(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM s WHERE i < 3999)
             INSERT INTO keygate_keys (id, prefix, name, org, team, scopes, hash, created_at,
                                       expires_at, revoked_at)
             SELECT 'x' || i, 'mk_test', 'n', CASE WHEN i % 50 = 0 THEN 'other' ELSE 'acme' END,
                    CASE WHEN i % 3 = 0 THEN 'red' END, '[\"entities:read\"]', 'h', i,
                    CASE WHEN i % 5 = 0 THEN i END, CASE WHEN i % 7 = 0 THEN i END
             FROM s",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    async fn check_page_plans(store: &SqliteStore) {
        for query in page_queries() {
            let mut q = page_query("EXPLAIN QUERY PLAN ", &query);
            let plan: Vec<String> = q
                .build()
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<String, _>("detail"))
                .collect();
            let index = if query.team.is_some() {
                "keygate_keys_org_team"
            } else {
                "keygate_keys_org"
            };
            assert!(
                plan.iter()
                    .any(|step| step.starts_with("SEARCH keygate_keys USING INDEX")
                        && step.contains(&format!("INDEX {index} (org=?"))),
                "{query:?}: {plan:?}"
            );
            if query.after.is_some() {
                assert!(
                    plan.iter()
                        .any(|step| step.contains("(created_at,id)<(?,?)")),
                    "{query:?}: the position is not an index bound: {plan:?}"
                );
            }
            for step in &plan {
                assert!(
                    !step.starts_with("SCAN keygate_keys") || step.contains("INDEX"),
                    "{query:?} scans the table: {plan:?}"
                );
                assert!(!step.contains("TEMP B-TREE"), "{query:?} sorts: {plan:?}");
            }
        }
    }
}
