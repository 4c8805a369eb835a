//! `PostgresStore`: the shared store, with invalidations pushed through `LISTEN`/`NOTIFY`.

mod listen;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{
    AuditAction, AuditEvent, Invalidator, KeyFilter, KeyRecord, KeyStatus, KeyStore, KeyUpdate,
    PageQuery, RotateOutcome, Rotation, ScopeSet, StoreError, UsageCount, UsageTotals,
};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow, PgSslMode};
use sqlx::{ConnectOptions, Connection, Postgres, QueryBuilder, Row};

use crate::column;
use crate::common::{
    self, corrupt, insert_error, needs_migration, rotation_refusal, totals_from_row, COLUMNS,
};
use crate::error::{bounded, store_error};
use crate::options::StoreOptions;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel on which changes are announced; the payload is the key id.
pub const NOTIFY_CHANNEL: &str = "keygate_invalidate";

/// Advisory lock taken while migrating, so concurrent starts apply each migration once.
const MIGRATION_LOCK: i64 = 0x6b65_7967_6174_6501; // "keygate\x01"

/// A [`KeyStore`] in PostgreSQL.
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
/// URL's host; `prefer` (the default) encrypts when the server offers TLS. With sqlx 0.8 and
/// the rustls release in this workspace's lockfile, `verify-ca` checks the host name as well,
/// like `verify-full`. The listener's connection uses the same settings. A handshake refused
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
    pool: PgPool,
    timeout: Duration,
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
            pool,
            timeout,
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
        common::run(self.timeout, fut).await
    }

    /// Runs a one-row change and, if it touched the row, announces `id` on
    /// [`NOTIFY_CHANNEL`] in the same transaction (delivered on commit).
    /// Runs `change` of key `id` and, when it changed a row, appends `audit` and notifies
    /// the other processes, in one transaction: `false` (and nothing written) when no row
    /// changed.
    async fn change_with_audit(
        &self,
        id: &str,
        change: sqlx::query::Query<'_, Postgres, PgArguments>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            let changed = change.execute(&mut *tx).await.map_err(err)?.rows_affected() > 0;
            if !changed {
                tx.rollback().await.map_err(err)?;
                return Ok(false);
            }
            audit_query(audit).execute(&mut *tx).await.map_err(err)?;
            notify(&mut tx, id).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn change_and_notify(
        &self,
        id: &str,
        change: sqlx::query::Query<'_, Postgres, PgArguments>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let changed = change.execute(&mut *tx).await?.rows_affected() > 0;
            if changed {
                notify(&mut tx, id).await?;
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
        if !needs_migration(&applied, m)? {
            continue;
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
        rotated_to: row.try_get("rotated_to").map_err(get)?,
        rate_limit: column::rate_limit(&id, row.try_get("rate_limit").map_err(get)?)?,
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

fn usage_from_row(row: &PgRow) -> Result<UsageCount, StoreError> {
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let requests: i64 = row.try_get("requests").map_err(get)?;
    let refused: i64 = row.try_get("refused").map_err(get)?;
    Ok(UsageCount {
        hour: row.try_get("hour").map_err(get)?,
        requests: column::count_out(requests),
        refused: column::count_out(refused),
        key_id,
    })
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// The `INSERT` of a new record (run on the pool, or inside a rotation's transaction).
fn insert_query(r: &KeyRecord) -> PgQuery<'_> {
    sqlx::query(
        "INSERT INTO keygate_keys (id, prefix, name, org, team, owner, scopes, metadata, hash, \
         created_at, expires_at, revoked_at, last_used_at, rotated_from, rotated_to, rate_limit) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
    .bind(&r.rotated_to)
    .bind(column::rate_limit_text(r.rate_limit))
}

/// The `INSERT` of an audit event.
fn audit_query(event: &AuditEvent) -> PgQuery<'_> {
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
}

/// Announces a change of `id` on [`NOTIFY_CHANNEL`] (delivered when the transaction commits).
async fn notify(conn: &mut sqlx::PgConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The query of one page (see [`PageQuery`]), after `head` (empty, or `EXPLAIN ` in tests).
/// `org = $1` (and `team = $2`) then the position select a range of
/// `keygate_keys_org_page` (`keygate_keys_org_team_page`), read backwards for the order; ids
/// compare in byte order (`COLLATE "C"`, the collation of those indexes) like in every store.
fn page_query<'a>(head: &str, q: &'a PageQuery) -> QueryBuilder<'a, Postgres> {
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

#[async_trait]
impl KeyStore for PostgresStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM keygate_keys WHERE id = $1");
        let row = self
            .run(sqlx::query(&sql).bind(id).fetch_optional(&self.pool))
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn insert(&self, r: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // The record and its events commit together; an error, the deadline or a
            // cancelled caller drops the transaction, which rolls it back.
            let mut tx = self.pool.begin().await.map_err(err)?;
            insert_query(r)
                .execute(&mut *tx)
                .await
                .map_err(|e| insert_error(e, &r.id, timeout))?;
            for event in audit {
                audit_query(event).execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
        .await
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        // Byte order for ids, like the other stores (the database collation may differ).
        let mut q = common::list_query::<Postgres>(filter, r#"id COLLATE "C""#);
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        let mut q = page_query("", query);
        let rows = self.run(q.build().fetch_all(&self.pool)).await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let old_id = rotation.old_id;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // `FOR UPDATE` locks the old row before it is checked: a concurrent revoke or
            // rotation of it waits for this transaction, and this one waits for theirs and
            // then reads what they committed. A refusal, an error, the deadline or a cancelled
            // caller drops the transaction, which rolls it back.
            let mut tx = self.pool.begin().await.map_err(err)?;
            let old = sqlx::query(
                "SELECT rotated_to, revoked_at, expires_at FROM keygate_keys \
                 WHERE id = $1 FOR UPDATE",
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
            let revoked_at: Option<DateTime<Utc>> = old.try_get("revoked_at").map_err(get)?;
            let expires_at: Option<DateTime<Utc>> = old.try_get("expires_at").map_err(get)?;
            let refusal = rotation_refusal(
                rotated_to.is_some(),
                revoked_at.is_some(),
                expires_at,
                rotation.now,
            );
            if let Some(refusal) = refusal {
                tx.rollback().await.map_err(err)?;
                return Ok(refusal);
            }
            insert_query(rotation.successor)
                .execute(&mut *tx)
                .await
                .map_err(|e| insert_error(e, &rotation.successor.id, timeout))?;
            let ends = rotation.old_expires_at;
            sqlx::query("UPDATE keygate_keys SET rotated_to = $1, expires_at = $2 WHERE id = $3")
                .bind(&rotation.successor.id)
                .bind(expires_at.map_or(ends, |e| e.min(ends)))
                .bind(old_id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            for event in rotation.audit {
                audit_query(event).execute(&mut *tx).await.map_err(err)?;
            }
            // The old key's expiry changed.
            notify(&mut tx, old_id).await.map_err(err)?;
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
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            let row = if update.is_empty() {
                let sql = format!("SELECT {COLUMNS} FROM keygate_keys WHERE id = $1");
                sqlx::query(&sql).bind(id).fetch_optional(&mut *tx).await
            } else {
                let mut q: QueryBuilder<'_, Postgres> =
                    QueryBuilder::new("UPDATE keygate_keys SET ");
                let mut set = q.separated(", ");
                if let Some(name) = &update.name {
                    set.push("name = ").push_bind_unseparated(name);
                }
                if let Some(expires_at) = update.expires_at {
                    set.push("expires_at = ").push_bind_unseparated(expires_at);
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
            audit_query(audit).execute(&mut *tx).await.map_err(err)?;
            if !update.is_empty() {
                notify(&mut tx, id).await.map_err(err)?;
            }
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
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            // A concurrent revoke of the same row waits for this one's commit, then finds
            // `revoked_at` set: exactly one of them writes the time and the event.
            let revoked = sqlx::query(
                "UPDATE keygate_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected()
                > 0;
            let exists = revoked
                || sqlx::query("SELECT 1 FROM keygate_keys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?
                    .is_some();
            if !exists {
                tx.rollback().await.map_err(err)?;
                return Ok(false);
            }
            if revoked {
                audit_query(audit).execute(&mut *tx).await.map_err(err)?;
            }
            // Already revoked: the first time stays, no second event; the notification is
            // sent again, as it always was for a revoke of an existing key.
            notify(&mut tx, id).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM keygate_keys WHERE id = $1").bind(id);
        self.change_with_audit(id, change, audit).await
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

    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("UPDATE keygate_keys SET hash = $1 WHERE id = $2 AND hash = $3")
            .bind(hash)
            .bind(id)
            .bind(expected);
        self.change_with_audit(id, change, audit).await
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

    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: four array parameters (no bind-variable limit),
        // merged to one row per (key, hour) first (an upsert may not meet a row twice) and
        // inserted in (key, hour) order, so concurrent batches lock shared rows in one order
        // and cannot deadlock; an existing row is added to under its row lock.
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
        let sql = format!(
            r#"INSERT INTO keygate_usage AS u (key_id, hour, requests, refused)
               SELECT key_id, hour, requests, refused
               FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[])
                   AS t(key_id, hour, requests, refused)
               ORDER BY key_id COLLATE "C", hour
               ON CONFLICT (key_id, hour) DO UPDATE SET requests = {}, refused = {}"#,
            column::saturating_add_sql("u.requests", "excluded.requests"),
            column::saturating_add_sql("u.refused", "excluded.refused"),
        );
        self.run(
            sqlx::query(&sql)
                .bind(ids)
                .bind(hours)
                .bind(requests)
                .bind(refused)
                .execute(&self.pool),
        )
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
                     WHERE key_id = $1 AND hour >= $2 ORDER BY hour",
                )
                .bind(key_id)
                .bind(since)
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
        // One query; the ids travel as one array. Each row is clamped at 0 like a single
        // read; the sums are NUMERIC, capped at the largest BIGINT.
        let cap = |sum: &str| format!("LEAST(COALESCE({sum}, 0), {})::int8", i64::MAX);
        let sql = format!(
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
        );
        let rows = self
            .run(
                sqlx::query(&sql)
                    .bind(key_ids)
                    .bind(day_since)
                    .bind(month_since)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(totals_from_row).collect()
    }

    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query("DELETE FROM keygate_usage WHERE hour < $1")
                    .bind(before)
                    .execute(&self.pool),
            )
            .await?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.run(audit_query(event).execute(&self.pool)).await?;
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
            let listen = listen::Listen {
                connect: self.pool.connect_options(),
                connect_timeout: self.timeout,
                heartbeat: self.heartbeat,
            };
            listen::spawn(listen, invalidator);
        }
    }

    fn pushes_invalidations(&self) -> bool {
        self.notifications
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use keygate::PagePosition;

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
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
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
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await;
    }
}
