//! `PostgresStore`: the shared store, with invalidations pushed through `LISTEN`/`NOTIFY`.

mod listen;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{
    AuditAction, AuditEvent, Invalidator, KeyFilter, KeyRecord, KeyStore, ScopeSet, StoreError,
};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder, Row};

use crate::error::{bounded, is_unique_violation, store_error};
use crate::options::StoreOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel on which changes are announced; the payload is the key id.
pub const NOTIFY_CHANNEL: &str = "keygate_invalidate";

/// Advisory lock taken while migrating, so concurrent starts apply each migration once.
const MIGRATION_LOCK: i64 = 0x6b65_7967_6174_6501; // "keygate\x01"

const COLUMNS: &str = "id, prefix, name, org, team, owner, scopes, metadata, hash, created_at, \
                       expires_at, revoked_at, last_used_at, rotated_from";

/// A [`KeyStore`] in PostgreSQL.
///
/// Revoke, delete, expiry changes and hash updates (so rotations too) send
/// `NOTIFY keygate_invalidate, '<id>'` in the same transaction. With
/// [`StoreOptions::notifications`] on (the default), every [`Verifier`](keygate::Verifier)
/// built on this store listens on that channel and drops the key's cached state within
/// milliseconds; when the listening connection drops it reconnects (with backoff) and drops
/// its whole record cache, since notifications may have been missed meanwhile.
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
    pool: PgPool,
    timeout: Duration,
    notifications: bool,
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
                .map_err(|e| store_error(e, timeout))?;
            let _ = probe.close().await;
            Ok(())
        })
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeout)
            .connect_lazy_with(connect);
        let store = PostgresStore {
            pool,
            timeout,
            notifications: options.notifications,
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool (for applications that keep their own tables in the same database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations that are not applied yet (what `connect` does unless
    /// [`StoreOptions::migrate`] is off). Safe to run from several processes at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout.saturating_mul(10), async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            apply_migrations(&mut tx).await.map_err(err)?;
            tx.commit().await.map_err(err)
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

    /// Runs a one-row change and, if it touched the row, announces `id` on
    /// [`NOTIFY_CHANNEL`] in the same transaction (delivered on commit).
    async fn change_and_notify(
        &self,
        id: &str,
        change: sqlx::query::Query<'_, Postgres, PgArguments>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let changed = change.execute(&mut *tx).await?.rows_affected() > 0;
            if changed {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(NOTIFY_CHANNEL)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
        .await
    }
}

async fn apply_migrations(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS keygate_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            description TEXT NOT NULL,
            checksum BYTEA NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *tx)
    .await?;
    let applied: HashMap<i64, Vec<u8>> =
        sqlx::query_as("SELECT version, checksum FROM keygate_migrations")
            .fetch_all(&mut *tx)
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
        sqlx::raw_sql(&m.sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO keygate_migrations (version, description, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .execute(&mut *tx)
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

fn record_from_row(row: &PgRow) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get("id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&id, e);
    let scopes: Vec<String> = row.try_get("scopes").map_err(get)?;
    let scopes = ScopeSet::parse(scopes).map_err(|e| corrupt(&id, e))?;
    Ok(KeyRecord {
        prefix: row.try_get("prefix").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        org: row.try_get("org").map_err(get)?,
        team: row.try_get("team").map_err(get)?,
        owner: row.try_get("owner").map_err(get)?,
        scopes,
        metadata: row.try_get("metadata").map_err(get)?,
        hash: row.try_get("hash").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
        revoked_at: row.try_get("revoked_at").map_err(get)?,
        last_used_at: row.try_get("last_used_at").map_err(get)?,
        rotated_from: row.try_get("rotated_from").map_err(get)?,
        id,
    })
}

fn audit_from_row(row: &PgRow) -> Result<AuditEvent, StoreError> {
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let action: String = row.try_get("action").map_err(get)?;
    let action = AuditAction::parse(&action)
        .ok_or_else(|| corrupt(&key_id, format!("unknown audit action {action:?}")))?;
    Ok(AuditEvent {
        action,
        at: row.try_get("at").map_err(get)?,
        org: row.try_get("org").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        detail: row.try_get("detail").map_err(get)?,
        key_id,
    })
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM keygate_keys WHERE id = $1");
        let row = self
            .run(sqlx::query(&sql).bind(id).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert(&self, r: &KeyRecord) -> Result<(), StoreError> {
        let timeout = self.timeout;
        bounded(timeout, async {
            sqlx::query(
                "INSERT INTO keygate_keys (id, prefix, name, org, team, owner, scopes, metadata, \
                 hash, created_at, expires_at, revoked_at, last_used_at, rotated_from) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&r.id)
            .bind(&r.prefix)
            .bind(&r.name)
            .bind(&r.org)
            .bind(&r.team)
            .bind(&r.owner)
            .bind(r.scopes.to_strings())
            .bind(&r.metadata)
            .bind(&r.hash)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.revoked_at)
            .bind(r.last_used_at)
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
        let mut q: QueryBuilder<'_, Postgres> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM keygate_keys WHERE TRUE"));
        if let Some(org) = &filter.org {
            q.push(" AND org = ").push_bind(org);
        }
        if let Some(team) = &filter.team {
            q.push(" AND team = ").push_bind(team);
        }
        if let Some(owner) = &filter.owner {
            q.push(" AND owner = ").push_bind(owner);
        }
        // Byte order for ids, like the other stores (the database collation may differ).
        q.push(r#" ORDER BY created_at, id COLLATE "C""#);
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let q = sqlx::query(
            "UPDATE keygate_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(at)
        .bind(id);
        self.change_and_notify(id, q).await
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let q = sqlx::query("DELETE FROM keygate_keys WHERE id = $1").bind(id);
        self.change_and_notify(id, q).await
    }

    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let q = sqlx::query("UPDATE keygate_keys SET expires_at = $1 WHERE id = $2")
            .bind(expires_at)
            .bind(id);
        self.change_and_notify(id, q).await
    }

    async fn update_hash(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        let q = sqlx::query("UPDATE keygate_keys SET hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id);
        self.change_and_notify(id, q).await
    }

    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: two array parameters, duplicates collapse to
        // their latest time, and a stored time only ever moves forward.
        let (ids, ats): (Vec<&str>, Vec<DateTime<Utc>>) =
            uses.iter().map(|(id, at)| (id.as_str(), *at)).unzip();
        self.run(
            sqlx::query(
                "UPDATE keygate_keys AS k SET last_used_at = u.at
                 FROM (SELECT id, max(at) AS at
                       FROM UNNEST($1::text[], $2::timestamptz[]) AS t(id, at)
                       GROUP BY id) AS u
                 WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)",
            )
            .bind(ids)
            .bind(ats)
            .execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.run(
            sqlx::query(
                "INSERT INTO keygate_audit (key_id, action, at, org, actor, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&event.key_id)
            .bind(event.action.as_str())
            .bind(event.at)
            .bind(&event.org)
            .bind(&event.actor)
            .bind(&event.detail)
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
                     WHERE key_id = $1 ORDER BY seq",
                )
                .bind(key_id)
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(audit_from_row).collect()
    }

    fn subscribe(&self, invalidator: Invalidator) {
        if self.notifications {
            listen::spawn(self.pool.clone(), invalidator);
        }
    }

    fn pushes_invalidations(&self) -> bool {
        self.notifications
    }
}
