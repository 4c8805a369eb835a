//! [`SqliteStore`]: the embedded default store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{
    AuditAction, AuditEvent, KeyFilter, KeyRecord, KeyStatus, KeyStore, KeyUpdate, PageQuery,
    RotateOutcome, Rotation, ScopeSet, StoreError, UsageCount, UsageTotals,
};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, TransactionManager};

use crate::column;
use crate::common::{
    self, corrupt, insert_error, needs_migration, rotation_refusal, totals_from_row, COLUMNS,
};
use crate::error::{bounded, store_error};
use crate::options::StoreOptions;
use crate::timestamp::{from_micros, to_micros};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`KeyStore`] in a SQLite file (WAL mode, so the CLI and a running service can share it).
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
    pool: SqlitePool,
    timeout: Duration,
}

fn config_error(e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("invalid SQLite URL: {e}").into())
}

impl SqliteStore {
    /// Runs `change` and, when it changed a row, appends `audit`, in one immediate
    /// transaction: `false` (and nothing written) when no row changed.
    async fn change_with_audit(
        &self,
        change: SqliteQuery<'_>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let event = audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_immediate().await.map_err(err)?;
            let done = change.execute(&mut *tx).await.map_err(err)?;
            if done.rows_affected() == 0 {
                tx.rollback().await.map_err(err)?;
                return Ok(false);
            }
            event.execute(&mut *tx).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

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
        let mut pool = SqlitePoolOptions::new()
            .acquire_timeout(timeout)
            .after_release(roll_back_abandoned);
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
        let store = SqliteStore { pool, timeout };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool (for applications that keep their own tables in the same file).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the embedded migrations that are not applied yet (what `connect` does unless
    /// [`StoreOptions::migrate`] is off). Safe to run from several processes at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        // Migrations may take longer than one request; give them a generous bound.
        bounded(timeout.saturating_mul(10), async {
            // IMMEDIATE takes the write lock now, so concurrent migrators queue up here. A
            // failure, the deadline or a cancelled caller drops the transaction: rolled back.
            let mut tx = self.begin_immediate().await.map_err(err)?;
            apply_migrations(&mut tx).await.map_err(err)?;
            tx.commit().await.map_err(err)
        })
        .await
    }

    /// A write transaction taken up front (`BEGIN IMMEDIATE`): it waits (up to the busy
    /// timeout) for other writers instead of failing when its reads turn out stale, so a
    /// read-check-write inside it is atomic. Dropping it unfinished rolls it back, and so does
    /// dropping this future at any point: a cancellation after `BEGIN IMMEDIATE` ran but before
    /// the transaction was handed out leaves it without an owner, and the pool rolls it back
    /// when the connection comes back ([`roll_back_abandoned`]).
    async fn begin_immediate(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    async fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        common::run(self.timeout, fut).await
    }
}

/// The pool's release check: a connection that comes back still inside a transaction is
/// rolled back before anyone else gets it (and closed if that fails), so no pooled connection
/// ever holds the write lock for an owner that is gone.
///
/// sqlx's own `Transaction` rolls back when dropped, but a transaction begun with a statement
/// of our own (`BEGIN IMMEDIATE`, see [`SqliteStore::begin_immediate`]) is not owned by any
/// `Transaction` yet while sqlx checks, after the statement ran, that it did open one; a
/// caller cancelled at that await (a deadline, a dropped request) would otherwise return the
/// connection to the pool with the transaction open and the write lock held.
fn roll_back_abandoned(
    conn: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if conn.is_in_transaction() {
            // Also reached when a dropped `Transaction` has queued its rollback and the
            // connection's worker has not run it yet: this one then finds nothing to undo.
            tracing::debug!(
                target: "keygate_sqlx::sqlite",
                "rolling back a transaction left open on a connection returned to the pool"
            );
            <Sqlite as sqlx::Database>::TransactionManager::rollback(conn).await?;
        }
        Ok(true)
    })
}

async fn apply_migrations(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS keygate_migrations (
            version INTEGER NOT NULL PRIMARY KEY,
            description TEXT NOT NULL,
            checksum BLOB NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT",
    )
    .execute(&mut *conn)
    .await?;
    let applied: HashMap<i64, Vec<u8>> =
        sqlx::query_as("SELECT version, checksum FROM keygate_migrations")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    for m in MIGRATOR.iter() {
        if !needs_migration(&applied, m)? {
            continue;
        }
        sqlx::raw_sql(&m.sql).execute(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO keygate_migrations (version, description, checksum, applied_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .bind(to_micros(Utc::now()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn opt_time(id: &str, column: &str, v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(|m| from_micros(id, column, m)).transpose()
}

fn record_from_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get("id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&id, e);
    let scopes: String = row.try_get("scopes").map_err(get)?;
    let scopes: Vec<String> =
        serde_json::from_str(&scopes).map_err(|e| corrupt(&id, format!("scopes: {e}")))?;
    let scopes = ScopeSet::parse(scopes).map_err(|e| corrupt(&id, e))?;
    let metadata: String = row.try_get("metadata").map_err(get)?;
    let metadata =
        serde_json::from_str(&metadata).map_err(|e| corrupt(&id, format!("metadata: {e}")))?;
    let created_at: i64 = row.try_get("created_at").map_err(get)?;
    Ok(KeyRecord {
        prefix: row.try_get("prefix").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        org: row.try_get("org").map_err(get)?,
        team: row.try_get("team").map_err(get)?,
        owner: row.try_get("owner").map_err(get)?,
        scopes,
        metadata,
        hash: row.try_get("hash").map_err(get)?,
        created_at: from_micros(&id, "created_at", created_at)?,
        expires_at: opt_time(&id, "expires_at", row.try_get("expires_at").map_err(get)?)?,
        revoked_at: opt_time(&id, "revoked_at", row.try_get("revoked_at").map_err(get)?)?,
        last_used_at: opt_time(
            &id,
            "last_used_at",
            row.try_get("last_used_at").map_err(get)?,
        )?,
        rotated_from: row.try_get("rotated_from").map_err(get)?,
        rotated_to: row.try_get("rotated_to").map_err(get)?,
        rate_limit: column::rate_limit(&id, row.try_get("rate_limit").map_err(get)?)?,
        id,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditEvent, StoreError> {
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let action: String = row.try_get("action").map_err(get)?;
    let action = AuditAction::parse(&action)
        .ok_or_else(|| corrupt(&key_id, format!("unknown audit action {action:?}")))?;
    let at: i64 = row.try_get("at").map_err(get)?;
    let detail: String = row.try_get("detail").map_err(get)?;
    Ok(AuditEvent {
        action,
        at: from_micros(&key_id, "audit at", at)?,
        org: row.try_get("org").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| corrupt(&key_id, format!("audit detail: {e}")))?,
        key_id,
    })
}

fn usage_from_row(row: &SqliteRow) -> Result<UsageCount, StoreError> {
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let hour: i64 = row.try_get("hour").map_err(get)?;
    let requests: i64 = row.try_get("requests").map_err(get)?;
    let refused: i64 = row.try_get("refused").map_err(get)?;
    Ok(UsageCount {
        hour: from_micros(&key_id, "usage hour", hour)?,
        requests: column::count_out(requests),
        refused: column::count_out(refused),
        key_id,
    })
}

fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(Box::new(e)))
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// The `INSERT` of a new record (run on the pool, or inside a rotation's transaction).
fn insert_query(r: &KeyRecord) -> Result<SqliteQuery<'_>, StoreError> {
    let scopes = json_text(&r.scopes.to_strings())?;
    let metadata = json_text(&r.metadata)?;
    Ok(sqlx::query(
        "INSERT INTO keygate_keys (id, prefix, name, org, team, owner, scopes, metadata, hash, \
         created_at, expires_at, revoked_at, last_used_at, rotated_from, rotated_to, rate_limit) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(&r.prefix)
    .bind(&r.name)
    .bind(&r.org)
    .bind(&r.team)
    .bind(&r.owner)
    .bind(scopes)
    .bind(metadata)
    .bind(&r.hash)
    .bind(to_micros(r.created_at))
    .bind(r.expires_at.map(to_micros))
    .bind(r.revoked_at.map(to_micros))
    .bind(r.last_used_at.map(to_micros))
    .bind(&r.rotated_from)
    .bind(&r.rotated_to)
    .bind(column::rate_limit_text(r.rate_limit)))
}

/// The `INSERT` of an audit event.
fn audit_query(event: &AuditEvent) -> Result<SqliteQuery<'_>, StoreError> {
    let detail = json_text(&event.detail)?;
    Ok(sqlx::query(
        "INSERT INTO keygate_audit (key_id, action, at, org, actor, detail) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&event.key_id)
    .bind(event.action.as_str())
    .bind(to_micros(event.at))
    .bind(&event.org)
    .bind(&event.actor)
    .bind(detail))
}

/// The query of one page (see [`PageQuery`]), after `head` (empty, or `EXPLAIN QUERY PLAN `
/// in tests). `org = ?` (and `team = ?`) then the position select a range of
/// `keygate_keys_org` (`keygate_keys_org_team`), which is read backwards for the order: no
/// scan of other tenants' keys, no sort. The index is named (`INDEXED BY`): with both indexes
/// matching `org = ?`, the planner's pick otherwise depends on what statistics a connection
/// has loaded, and a wrong pick sorts the whole org.
fn page_query<'a>(head: &str, q: &'a PageQuery) -> QueryBuilder<'a, Sqlite> {
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

#[async_trait]
impl KeyStore for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM keygate_keys WHERE id = ?");
        let row = self
            .run(sqlx::query(&sql).bind(id).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert(&self, r: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        let insert = insert_query(r)?;
        let events = audit
            .iter()
            .map(audit_query)
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // The record and its events commit together; an error, the deadline or a
            // cancelled caller drops the transaction, which rolls it back.
            let mut tx = self.begin_immediate().await.map_err(err)?;
            insert
                .execute(&mut *tx)
                .await
                .map_err(|e| insert_error(e, &r.id, timeout))?;
            for event in events {
                event.execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
        .await
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        // SQLite compares text in byte order (no collation on the column).
        let mut q = common::list_query::<Sqlite>(filter, "id");
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q = page_query("", query);
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let successor = insert_query(rotation.successor)?;
        let events = rotation
            .audit
            .iter()
            .map(audit_query)
            .collect::<Result<Vec<_>, _>>()?;
        let old_id = rotation.old_id;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // The write lock is taken before the old key is read, so no revoke or other
            // rotation can commit between the check and the writes; a refusal, an error, the
            // deadline or a cancelled caller drops the transaction, which rolls it back.
            let mut tx = self.begin_immediate().await.map_err(err)?;
            let old = sqlx::query(
                "SELECT rotated_to, revoked_at, expires_at FROM keygate_keys WHERE id = ?",
            )
            .bind(old_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
            let Some(old) = old else {
                tx.rollback().await.map_err(err)?;
                return Ok(RotateOutcome::NotFound);
            };
            let get = |e: sqlx::Error| corrupt(old_id, e);
            let rotated_to: Option<String> = old.try_get("rotated_to").map_err(get)?;
            let revoked_at: Option<i64> = old.try_get("revoked_at").map_err(get)?;
            let expires_at: Option<i64> = old.try_get("expires_at").map_err(get)?;
            let refusal = rotation_refusal(
                rotated_to.is_some(),
                revoked_at.is_some(),
                opt_time(old_id, "expires_at", expires_at)?,
                rotation.now,
            );
            if let Some(refusal) = refusal {
                tx.rollback().await.map_err(err)?;
                return Ok(refusal);
            }
            successor
                .execute(&mut *tx)
                .await
                .map_err(|e| insert_error(e, &rotation.successor.id, timeout))?;
            let ends = to_micros(rotation.old_expires_at);
            sqlx::query("UPDATE keygate_keys SET rotated_to = ?, expires_at = ? WHERE id = ?")
                .bind(&rotation.successor.id)
                .bind(expires_at.map_or(ends, |e| e.min(ends)))
                .bind(old_id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            for event in events {
                event.execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok(RotateOutcome::Rotated)
        })
        .await
    }

    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let event = audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_immediate().await.map_err(err)?;
            let row = if update.is_empty() {
                let sql = format!("SELECT {COLUMNS} FROM keygate_keys WHERE id = ?");
                sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await
            } else {
                let mut q: QueryBuilder<'_, Sqlite> = QueryBuilder::new("UPDATE keygate_keys SET ");
                let mut set = q.separated(", ");
                if let Some(name) = &update.name {
                    set.push("name = ").push_bind_unseparated(name);
                }
                if let Some(expires_at) = update.expires_at {
                    set.push("expires_at = ")
                        .push_bind_unseparated(expires_at.map(to_micros));
                }
                if let Some(limit) = update.rate_limit {
                    set.push("rate_limit = ")
                        .push_bind_unseparated(column::rate_limit_text(limit));
                }
                q.push(" WHERE id = ")
                    .push_bind(id)
                    .push(format!(" RETURNING {COLUMNS}"));
                q.build().fetch_optional(&mut *tx).await
            }
            .map_err(err)?;
            let Some(row) = row else {
                tx.rollback().await.map_err(err)?;
                return Ok(None);
            };
            // A row that cannot be read back is not written either (the drop rolls back).
            let record = record_from_row(&row)?;
            event.execute(&mut *tx).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(Some(record))
        })
        .await
    }

    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let event = audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_immediate().await.map_err(err)?;
            let done = sqlx::query(
                "UPDATE keygate_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(to_micros(at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            if done.rows_affected() == 0 {
                // Unknown, or already revoked (the first time stays, no second event).
                let exists = sqlx::query("SELECT 1 FROM keygate_keys WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?
                    .is_some();
                tx.rollback().await.map_err(err)?;
                return Ok(exists);
            }
            event.execute(&mut *tx).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM keygate_keys WHERE id = ?").bind(id);
        self.change_with_audit(change, audit).await
    }

    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query("UPDATE keygate_keys SET expires_at = ? WHERE id = ?")
                    .bind(expires_at.map(to_micros))
                    .bind(id)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("UPDATE keygate_keys SET hash = ? WHERE id = ? AND hash = ?")
            .bind(hash)
            .bind(id)
            .bind(expected);
        self.change_with_audit(change, audit).await
    }

    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: the uses travel as one JSON parameter
        // (`[[id, micros], …]`, no bind-variable limit), duplicates collapse to their latest
        // time, and a stored time is only ever moved forward.
        let batch: Vec<(&str, i64)> = uses
            .iter()
            .map(|(id, at)| (id.as_str(), to_micros(*at)))
            .collect();
        let batch = json_text(&batch)?;
        self.run(
            sqlx::query(
                "WITH uses(id, at) AS (
                     SELECT json_extract(value, '$[0]'), MAX(json_extract(value, '$[1]'))
                     FROM json_each(?) GROUP BY 1
                 )
                 UPDATE keygate_keys SET last_used_at = uses.at
                 FROM uses
                 WHERE keygate_keys.id = uses.id
                   AND (keygate_keys.last_used_at IS NULL OR keygate_keys.last_used_at < uses.at)",
            )
            .bind(batch)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch, like `touch_last_used`: the rows travel as one
        // JSON parameter (`[[key_id, hour micros, requests, refused], …]`, no bind-variable
        // limit), merged to one row per (key, hour) first; an existing row is added to.
        let batch: Vec<(&str, i64, i64, i64)> = column::merge_usage(counts)
            .into_iter()
            .map(|r| (r.key_id, to_micros(r.hour), r.requests, r.refused))
            .collect();
        let batch = json_text(&batch)?;
        let sql = format!(
            "INSERT INTO keygate_usage (key_id, hour, requests, refused)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                    json_extract(value, '$[2]'), json_extract(value, '$[3]')
             FROM json_each(?) WHERE true
             ON CONFLICT (key_id, hour) DO UPDATE SET requests = {}, refused = {}",
            column::saturating_add_sql("requests", "excluded.requests"),
            column::saturating_add_sql("refused", "excluded.refused"),
        );
        self.run(sqlx::query(&sql).bind(batch).execute(&self.pool))
            .await?;
        Ok(())
    }

    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        let rows = self
            .run(
                sqlx::query(
                    "SELECT key_id, hour, requests, refused FROM keygate_usage \
                     WHERE key_id = ? AND hour >= ? ORDER BY hour",
                )
                .bind(key_id)
                .bind(to_micros(since))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(usage_from_row).collect()
    }

    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        if key_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One query; the ids travel as one JSON array (no bind-variable limit). Each row is
        // clamped at 0 like a single read; a sum past `i64::MAX` (not reachable by real
        // traffic) fails the query rather than wrapping.
        let ids = json_text(&key_ids)?;
        let day = to_micros(day_since);
        let rows = self
            .run(
                sqlx::query(
                    "SELECT key_id,
                            COALESCE(SUM(MAX(requests, 0)) FILTER (WHERE hour >= ?), 0)
                                AS requests_24h,
                            SUM(MAX(requests, 0)) AS requests_30d,
                            COALESCE(SUM(MAX(refused, 0)) FILTER (WHERE hour >= ?), 0)
                                AS refused_24h
                     FROM keygate_usage
                     WHERE key_id IN (SELECT value FROM json_each(?)) AND hour >= ?
                     GROUP BY key_id
                     ORDER BY key_id",
                )
                .bind(day)
                .bind(day)
                .bind(ids)
                .bind(to_micros(month_since))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(totals_from_row).collect()
    }

    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query("DELETE FROM keygate_usage WHERE hour < ?")
                    .bind(to_micros(before))
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let insert = audit_query(event)?;
        self.run(insert.execute(&self.pool)).await?;
        Ok(())
    }

    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        let rows = self
            .run(
                sqlx::query(
                    "SELECT key_id, action, at, org, actor, detail FROM keygate_audit \
                     WHERE key_id = ? ORDER BY seq",
                )
                .bind(key_id)
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use keygate::PagePosition;

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
