//! [`SqliteStore`]: the embedded default store.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{AuditAction, AuditEvent, KeyFilter, KeyRecord, KeyStore, ScopeSet, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::error::{bounded, is_unique_violation, store_error};
use crate::options::StoreOptions;
use crate::timestamp::{from_micros, to_micros};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const COLUMNS: &str = "id, prefix, name, org, team, owner, scopes, metadata, hash, created_at, \
                       expires_at, revoked_at, last_used_at, rotated_from";

/// A [`KeyStore`] in a SQLite file (WAL mode, so the CLI and a running service can share it).
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
            .synchronous(SqliteSynchronous::Normal)
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
            let mut conn = self.pool.acquire().await.map_err(err)?;
            // IMMEDIATE takes the write lock now, so concurrent migrators queue up here.
            sqlx::raw_sql("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .map_err(err)?;
            let result = apply_migrations(&mut conn).await;
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = sqlx::raw_sql(end).execute(&mut *conn).await.map_err(err);
            result.map_err(err)?;
            ended.map(|_| ())
        })
        .await
    }

    async fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let timeout = self.timeout;
        bounded(timeout, async {
            fut.await.map_err(|e| store_error(e, timeout))
        })
        .await
    }
}

async fn apply_migrations(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
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
        match applied.get(&m.version) {
            Some(sum) if sum.as_slice() == &*m.checksum => continue,
            Some(_) => {
                return Err(sqlx::Error::Migrate(Box::new(
                    sqlx::migrate::MigrateError::VersionMismatch(m.version),
                )))
            }
            None => {}
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

fn corrupt(id: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_owned(),
        reason: reason.to_string(),
    }
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

fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(Box::new(e)))
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

    async fn insert(&self, r: &KeyRecord) -> Result<(), StoreError> {
        let scopes = json_text(&r.scopes.to_strings())?;
        let metadata = json_text(&r.metadata)?;
        let timeout = self.timeout;
        bounded(timeout, async {
            sqlx::query(
                "INSERT INTO keygate_keys (id, prefix, name, org, team, owner, scopes, metadata, \
                 hash, created_at, expires_at, revoked_at, last_used_at, rotated_from) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .execute(&self.pool)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(r.id.clone())
                } else {
                    store_error(e, timeout)
                }
            })
        })
        .await?;
        Ok(())
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q: QueryBuilder<'_, Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM keygate_keys WHERE 1 = 1"));
        if let Some(org) = &filter.org {
            q.push(" AND org = ").push_bind(org);
        }
        if let Some(team) = &filter.team {
            q.push(" AND team = ").push_bind(team);
        }
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").push_bind(owner);
        }
        q.push(" ORDER BY created_at, id");
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query(
                    "UPDATE keygate_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                )
                .bind(to_micros(at))
                .bind(id)
                .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query("DELETE FROM keygate_keys WHERE id = ?")
                    .bind(id)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
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

    async fn update_hash(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        let done = self
            .run(
                sqlx::query("UPDATE keygate_keys SET hash = ? WHERE id = ?")
                    .bind(hash)
                    .bind(id)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected() > 0)
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

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let detail = json_text(&event.detail)?;
        self.run(
            sqlx::query(
                "INSERT INTO keygate_audit (key_id, action, at, org, actor, detail) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&event.key_id)
            .bind(event.action.as_str())
            .bind(to_micros(event.at))
            .bind(&event.org)
            .bind(&event.actor)
            .bind(detail)
            .execute(&self.pool),
        )
        .await?;
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
