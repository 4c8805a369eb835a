//! The store logic both SQL stores share, written once over a [`Dialect`]: reads, the
//! lifecycle writes with their audit events (and, where the dialect has them, notifications)
//! in one transaction, usage, audit and migrations. `SqliteStore` and `PostgresStore` hold a
//! [`Body`] of their dialect and hand every [`KeyStore`](keygate::KeyStore) call to it
//! ([`key_store_via_body!`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keygate::{
    AuditAction, AuditEvent, KeyFilter, KeyRecord, KeyUpdate, PageQuery, RotateOutcome, Rotation,
    ScopeSet, StoreError, UsageCount, UsageTotals,
};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, QueryBuilder, Row,
    Transaction, Type,
};

use crate::column;
use crate::common::{
    self, corrupt, insert_error, needs_migration, rotation_refusal, totals_from_row, COLUMNS,
    SELECT_BY_ID,
};
use crate::dialect::{DbQuery, Dialect, MIGRATION_LOCK};
use crate::error::{bounded, store_error};

/// A SQL store's pool and deadline, and everything it does the same way in every dialect.
#[derive(Debug)]
pub(crate) struct Body<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) timeout: Duration,
}

impl<DB: Database> Clone for Body<DB> {
    fn clone(&self) -> Self {
        Body {
            pool: self.pool.clone(),
            timeout: self.timeout,
        }
    }
}

impl<DB> Body<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q String: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<DB::Time>: Encode<'q, DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    /// Runs `fut` within the store's deadline, mapping its sqlx error or the deadline.
    pub(crate) async fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        common::run(self.timeout, fut).await
    }

    /// Runs a built query on a connection of the pool.
    async fn fetch_built(&self, mut q: QueryBuilder<DB>) -> Result<Vec<DB::Row>, StoreError> {
        self.run(async {
            let mut conn = self.pool.acquire().await?;
            q.build().fetch_all(&mut *conn).await
        })
        .await
    }

    /// A write transaction: the dialect's [`Dialect::BEGIN_WRITE`] (SQLite's
    /// `BEGIN IMMEDIATE` takes the write lock up front, so a read-check-write inside it is
    /// atomic), else a plain `BEGIN`. Dropping it unfinished rolls it back.
    ///
    /// The begin runs as a task of its own, so a caller cancelled while it waits (a deadline,
    /// a dropped request) cannot abandon it half way: sqlx's PostgreSQL driver counts a
    /// transaction as open only once the server has answered `BEGIN`, and a caller dropped
    /// before that returned the connection to the pool inside a transaction nobody owned
    /// ("idle in transaction": later statements of other callers ran inside it). The task
    /// takes the answer and, its caller gone, drops the `Transaction`, which rolls it back.
    async fn begin_write(&self) -> Result<Transaction<'static, DB>, sqlx::Error> {
        let pool = self.pool.clone();
        let begin = async move {
            match DB::BEGIN_WRITE {
                Some(begin) => pool.begin_with(begin).await,
                None => pool.begin().await,
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime
                .spawn(begin)
                .await
                .unwrap_or_else(|e| Err(sqlx::Error::Io(std::io::Error::other(e)))),
            Err(_) => begin.await,
        }
    }

    /// Announces a change of `id` where the dialect does ([`Dialect::NOTIFY`]; delivered when
    /// the transaction commits).
    async fn notify(conn: &mut DB::Connection, id: &str) -> Result<(), sqlx::Error> {
        if let Some((sql, channel)) = DB::NOTIFY {
            sqlx::query(sql)
                .bind(channel)
                .bind(id)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Applies the embedded migrations that are not applied yet, in one write transaction
    /// (bounded by ten times the deadline: migrations may take longer than one request).
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout.saturating_mul(10), async {
            // A failure, the deadline or a cancelled caller drops the transaction: rolled back.
            let mut tx = self.begin_write().await.map_err(err)?;
            apply_migrations::<DB>(&mut tx).await.map_err(err)?;
            tx.commit().await.map_err(err)
        })
        .await
    }

    /// The `INSERT` of a new record (run alone, or inside a rotation's transaction).
    fn insert_query(r: &KeyRecord) -> Result<DbQuery<'_, DB>, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO keygate_keys (id, prefix, name, org, team, owner, scopes, metadata, \
             hash, created_at, expires_at, revoked_at, last_used_at, rotated_from, rotated_to, \
             rate_limit) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.id)
        .bind(&r.prefix)
        .bind(&r.name)
        .bind(&r.org)
        .bind(r.team.as_deref())
        .bind(r.owner.as_deref())
        .bind(DB::scopes(&r.scopes)?)
        .bind(DB::json(&r.metadata)?)
        .bind(&r.hash)
        .bind(DB::time(r.created_at))
        .bind(r.expires_at.map(DB::time))
        .bind(r.revoked_at.map(DB::time))
        .bind(r.last_used_at.map(DB::time))
        .bind(r.rotated_from.as_deref())
        .bind(r.rotated_to.as_deref())
        .bind(column::rate_limit_text(r.rate_limit)))
    }

    /// The `INSERT` of an audit event.
    fn audit_query(event: &AuditEvent) -> Result<DbQuery<'_, DB>, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO keygate_audit (key_id, action, at, org, actor, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&event.key_id)
        .bind(event.action.as_str())
        .bind(DB::time(event.at))
        .bind(&event.org)
        .bind(event.actor.as_deref())
        .bind(DB::json(&event.detail)?))
    }

    fn audit_queries(events: &[AuditEvent]) -> Result<Vec<DbQuery<'_, DB>>, StoreError> {
        events.iter().map(Self::audit_query).collect()
    }

    /// Runs `change` of key `id` and, when it changed a row, appends `audit` and notifies,
    /// in one write transaction: `false` (and nothing written) when no row changed.
    async fn change_with_audit(
        &self,
        id: &str,
        change: DbQuery<'_, DB>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let event = Self::audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_write().await.map_err(err)?;
            let done = change.execute(&mut *tx).await.map_err(err)?;
            if DB::rows_affected(&done) == 0 {
                tx.rollback().await.map_err(err)?;
                return Ok(false);
            }
            event.execute(&mut *tx).await.map_err(err)?;
            Self::notify(&mut tx, id).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = self
            .run(
                sqlx::query(SELECT_BY_ID)
                    .bind(id)
                    .fetch_optional(&self.pool),
            )
            .await?;
        row.as_ref().map(record_from_row::<DB>).transpose()
    }

    pub(crate) async fn insert(
        &self,
        r: &KeyRecord,
        audit: &[AuditEvent],
    ) -> Result<(), StoreError> {
        let insert = Self::insert_query(r)?;
        let events = Self::audit_queries(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // The record and its events commit together; an error, the deadline or a
            // cancelled caller drops the transaction, which rolls it back.
            let mut tx = self.begin_write().await.map_err(err)?;
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

    pub(crate) async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        let q = common::list_query::<DB>(filter, DB::ID_ORDER);
        let rows = self.fetch_built(q).await?;
        rows.iter().map(record_from_row::<DB>).collect()
    }

    pub(crate) async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = self.fetch_built(DB::page_query("", query)).await?;
        rows.iter().map(record_from_row::<DB>).collect()
    }

    pub(crate) async fn rotate(
        &self,
        rotation: &Rotation<'_>,
    ) -> Result<RotateOutcome, StoreError> {
        let successor = Self::insert_query(rotation.successor)?;
        let events = Self::audit_queries(rotation.audit)?;
        let old_id = rotation.old_id;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            // The old key is read under a lock (SQLite's write lock taken at `BEGIN
            // IMMEDIATE`, PostgreSQL's `FOR UPDATE` row lock), so no revoke or other rotation
            // of it can commit between the check and the writes. A refusal, an error, the
            // deadline or a cancelled caller drops the transaction, which rolls it back.
            let mut tx = self.begin_write().await.map_err(err)?;
            let old = sqlx::query(DB::ROTATION_READ)
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
            let revoked_at: Option<DB::Time> = old.try_get("revoked_at").map_err(get)?;
            let expires_at: Option<DB::Time> = old.try_get("expires_at").map_err(get)?;
            let expires_at = opt_time::<DB>(old_id, "expires_at", expires_at)?;
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
            successor
                .execute(&mut *tx)
                .await
                .map_err(|e| insert_error(e, &rotation.successor.id, timeout))?;
            let ends = rotation.old_expires_at;
            let ends = DB::time(expires_at.map_or(ends, |e| e.min(ends)));
            sqlx::query("UPDATE keygate_keys SET rotated_to = $1, expires_at = $2 WHERE id = $3")
                .bind(&rotation.successor.id)
                .bind(ends)
                .bind(old_id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            for event in events {
                event.execute(&mut *tx).await.map_err(err)?;
            }
            // The old key's expiry changed.
            Self::notify(&mut tx, old_id).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(RotateOutcome::Rotated)
        })
        .await
    }

    pub(crate) async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let event = Self::audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_write().await.map_err(err)?;
            let row = if update.is_empty() {
                sqlx::query(SELECT_BY_ID)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
            } else {
                let mut q: QueryBuilder<DB> = QueryBuilder::new("UPDATE keygate_keys SET ");
                let mut set = q.separated(", ");
                if let Some(name) = &update.name {
                    set.push("name = ").push_bind_unseparated(name);
                }
                if let Some(expires_at) = update.expires_at {
                    set.push("expires_at = ")
                        .push_bind_unseparated(expires_at.map(DB::time));
                }
                if let Some(limit) = update.rate_limit {
                    set.push("rate_limit = ")
                        .push_bind_unseparated(column::rate_limit_text(limit));
                }
                q.push(" WHERE id = ")
                    .push_bind(id)
                    .push(format!(" RETURNING {COLUMNS}"));
                q.build()
                    .fetch_all(&mut *tx)
                    .await
                    .map(|rows| rows.into_iter().next())
            }
            .map_err(err)?;
            let Some(row) = row else {
                tx.rollback().await.map_err(err)?;
                return Ok(None);
            };
            // A row that cannot be read back is not written either (the drop rolls back).
            let record = record_from_row::<DB>(&row)?;
            event.execute(&mut *tx).await.map_err(err)?;
            if !update.is_empty() {
                Self::notify(&mut tx, id).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok(Some(record))
        })
        .await
    }

    pub(crate) async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let event = Self::audit_query(audit)?;
        let timeout = self.timeout;
        let err = |e| store_error(e, timeout);
        bounded(timeout, async {
            let mut tx = self.begin_write().await.map_err(err)?;
            // A concurrent revoke of the same row waits for this one's commit, then finds
            // `revoked_at` set: exactly one of them writes the time and the event.
            let revoked = sqlx::query(
                "UPDATE keygate_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(DB::time(at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            let revoked = DB::rows_affected(&revoked) > 0;
            let exists = revoked
                || sqlx::query("SELECT 1 FROM keygate_keys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err)?
                    .is_some();
            if !exists || (!revoked && DB::NOTIFY.is_none()) {
                // Unknown, or already revoked with nothing to announce.
                tx.rollback().await.map_err(err)?;
                return Ok(exists);
            }
            if revoked {
                event.execute(&mut *tx).await.map_err(err)?;
            }
            // Already revoked: the first time stays, no second event; the notification is
            // sent again, as it always was for a revoke of an existing key.
            Self::notify(&mut tx, id).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        let change = sqlx::query("DELETE FROM keygate_keys WHERE id = $1").bind(id);
        self.change_with_audit(id, change, audit).await
    }

    pub(crate) async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let change = sqlx::query("UPDATE keygate_keys SET expires_at = $1 WHERE id = $2")
            .bind(expires_at.map(DB::time))
            .bind(id);
        if DB::NOTIFY.is_none() {
            // Nothing to announce: one statement, no transaction of its own.
            let done = self.run(change.execute(&self.pool)).await?;
            return Ok(DB::rows_affected(&done) > 0);
        }
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let changed = DB::rows_affected(&change.execute(&mut *tx).await?) > 0;
            if changed {
                Self::notify(&mut tx, id).await?;
            }
            tx.commit().await?;
            Ok(changed)
        })
        .await
    }

    pub(crate) async fn update_hash(
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

    pub(crate) async fn touch_last_used(
        &self,
        uses: &[(String, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let q = DB::touch_last_used(uses)?;
        self.run(q.execute(&self.pool)).await?;
        Ok(())
    }

    pub(crate) async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let q = DB::add_usage(counts)?;
        self.run(q.execute(&self.pool)).await?;
        Ok(())
    }

    pub(crate) async fn usage(
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
                .bind(DB::time(since))
                .fetch_all(&self.pool),
            )
            .await?;
        rows.iter().map(usage_from_row::<DB>).collect()
    }

    pub(crate) async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        if key_ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = DB::usage_totals(key_ids, day_since, month_since)?;
        let rows = self.run(q.fetch_all(&self.pool)).await?;
        rows.iter().map(totals_from_row).collect()
    }

    pub(crate) async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = self
            .run(
                sqlx::query("DELETE FROM keygate_usage WHERE hour < $1")
                    .bind(DB::time(before))
                    .execute(&self.pool),
            )
            .await?;
        Ok(DB::rows_affected(&done))
    }

    pub(crate) async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let insert = Self::audit_query(event)?;
        self.run(insert.execute(&self.pool)).await?;
        Ok(())
    }

    pub(crate) async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
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
        rows.iter().map(audit_from_row::<DB>).collect()
    }
}

async fn apply_migrations<DB>(conn: &mut DB::Connection) -> Result<(), sqlx::Error>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    if let Some(lock) = DB::LOCK_MIGRATIONS {
        sqlx::query(lock)
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::raw_sql(DB::MIGRATIONS_TABLE)
        .execute(&mut *conn)
        .await?;
    let mut applied: HashMap<i64, Vec<u8>> = HashMap::new();
    for row in sqlx::query("SELECT version, checksum FROM keygate_migrations")
        .fetch_all(&mut *conn)
        .await?
    {
        applied.insert(row.try_get(0)?, row.try_get(1)?);
    }
    for m in DB::MIGRATOR.iter() {
        if !needs_migration(&applied, m)? {
            continue;
        }
        sqlx::raw_sql(m.sql.clone()).execute(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO keygate_migrations (version, description, checksum, applied_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(&*m.checksum)
        .bind(DB::time(Utc::now()))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn opt_time<DB: Dialect>(
    id: &str,
    column: &str,
    v: Option<DB::Time>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(|t| DB::time_out(id, column, t)).transpose()
}

fn record_from_row<DB>(row: &DB::Row) -> Result<KeyRecord, StoreError>
where
    DB: Dialect,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    let id: String = row.try_get("id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&id, e);
    let scopes = DB::scopes_out(&id, row.try_get("scopes").map_err(get)?)?;
    let scopes = ScopeSet::parse(scopes).map_err(|e| corrupt(&id, e))?;
    let metadata = DB::json_out(&id, "metadata", row.try_get("metadata").map_err(get)?)?;
    let created_at: DB::Time = row.try_get("created_at").map_err(get)?;
    let time = |column: &str| -> Result<Option<DateTime<Utc>>, StoreError> {
        opt_time::<DB>(&id, column, row.try_get(column).map_err(get)?)
    };
    Ok(KeyRecord {
        prefix: row.try_get("prefix").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        org: row.try_get("org").map_err(get)?,
        team: row.try_get("team").map_err(get)?,
        owner: row.try_get("owner").map_err(get)?,
        scopes,
        metadata,
        hash: row.try_get("hash").map_err(get)?,
        created_at: DB::time_out(&id, "created_at", created_at)?,
        expires_at: time("expires_at")?,
        revoked_at: time("revoked_at")?,
        last_used_at: time("last_used_at")?,
        rotated_from: row.try_get("rotated_from").map_err(get)?,
        rotated_to: row.try_get("rotated_to").map_err(get)?,
        rate_limit: column::rate_limit(&id, row.try_get("rate_limit").map_err(get)?)?,
        id,
    })
}

fn audit_from_row<DB>(row: &DB::Row) -> Result<AuditEvent, StoreError>
where
    DB: Dialect,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let action: String = row.try_get("action").map_err(get)?;
    let action = AuditAction::parse(&action)
        .ok_or_else(|| corrupt(&key_id, format!("unknown audit action {action:?}")))?;
    let at = DB::time_out(&key_id, "audit at", row.try_get("at").map_err(get)?)?;
    let detail = row.try_get("detail").map_err(get)?;
    Ok(AuditEvent {
        action,
        at,
        org: row.try_get("org").map_err(get)?,
        actor: row.try_get("actor").map_err(get)?,
        detail: DB::json_out(&key_id, "audit detail", detail)?,
        key_id,
    })
}

fn usage_from_row<DB>(row: &DB::Row) -> Result<UsageCount, StoreError>
where
    DB: Dialect,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'n> &'n str: ColumnIndex<DB::Row>,
{
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let hour = DB::time_out(&key_id, "usage hour", row.try_get("hour").map_err(get)?)?;
    let requests: i64 = row.try_get("requests").map_err(get)?;
    let refused: i64 = row.try_get("refused").map_err(get)?;
    Ok(UsageCount {
        hour,
        requests: column::count_out(requests),
        refused: column::count_out(refused),
        key_id,
    })
}

/// `impl KeyStore for $store`, every call handed to the [`Body`] in its field `$body`; the
/// items in braces (if any) are added to the impl.
macro_rules! key_store_via_body {
    ($store:ty, $body:ident $(, { $($extra:item)* })?) => {
        #[::async_trait::async_trait]
        impl ::keygate::KeyStore for $store {
            async fn get(&self, id: &str) -> Result<Option<::keygate::KeyRecord>, ::keygate::StoreError> {
                self.$body.get(id).await
            }
            async fn insert(&self, r: &::keygate::KeyRecord, audit: &[::keygate::AuditEvent]) -> Result<(), ::keygate::StoreError> {
                self.$body.insert(r, audit).await
            }
            async fn list(&self, filter: &::keygate::KeyFilter) -> Result<Vec<::keygate::KeyRecord>, ::keygate::StoreError> {
                self.$body.list(filter).await
            }
            async fn list_page(&self, query: &::keygate::PageQuery) -> Result<Vec<::keygate::KeyRecord>, ::keygate::StoreError> {
                self.$body.list_page(query).await
            }
            async fn rotate(&self, rotation: &::keygate::Rotation<'_>) -> Result<::keygate::RotateOutcome, ::keygate::StoreError> {
                self.$body.rotate(rotation).await
            }
            async fn update(&self, id: &str, update: &::keygate::KeyUpdate, audit: &::keygate::AuditEvent) -> Result<Option<::keygate::KeyRecord>, ::keygate::StoreError> {
                self.$body.update(id, update, audit).await
            }
            async fn revoke(&self, id: &str, at: ::chrono::DateTime<::chrono::Utc>, audit: &::keygate::AuditEvent) -> Result<bool, ::keygate::StoreError> {
                self.$body.revoke(id, at, audit).await
            }
            async fn delete(&self, id: &str, audit: &::keygate::AuditEvent) -> Result<bool, ::keygate::StoreError> {
                self.$body.delete(id, audit).await
            }
            async fn set_expiry(&self, id: &str, expires_at: Option<::chrono::DateTime<::chrono::Utc>>) -> Result<bool, ::keygate::StoreError> {
                self.$body.set_expiry(id, expires_at).await
            }
            async fn update_hash(&self, id: &str, expected: &str, hash: &str, audit: &::keygate::AuditEvent) -> Result<bool, ::keygate::StoreError> {
                self.$body.update_hash(id, expected, hash, audit).await
            }
            async fn touch_last_used(&self, uses: &[(String, ::chrono::DateTime<::chrono::Utc>)]) -> Result<(), ::keygate::StoreError> {
                self.$body.touch_last_used(uses).await
            }
            async fn add_usage(&self, counts: &[::keygate::UsageCount]) -> Result<(), ::keygate::StoreError> {
                self.$body.add_usage(counts).await
            }
            async fn usage(&self, key_id: &str, since: ::chrono::DateTime<::chrono::Utc>) -> Result<Vec<::keygate::UsageCount>, ::keygate::StoreError> {
                self.$body.usage(key_id, since).await
            }
            async fn usage_totals(&self, key_ids: &[String], day_since: ::chrono::DateTime<::chrono::Utc>, month_since: ::chrono::DateTime<::chrono::Utc>) -> Result<Vec<::keygate::UsageTotals>, ::keygate::StoreError> {
                self.$body.usage_totals(key_ids, day_since, month_since).await
            }
            async fn prune_usage(&self, before: ::chrono::DateTime<::chrono::Utc>) -> Result<u64, ::keygate::StoreError> {
                self.$body.prune_usage(before).await
            }
            async fn append_audit(&self, event: &::keygate::AuditEvent) -> Result<(), ::keygate::StoreError> {
                self.$body.append_audit(event).await
            }
            async fn audit_trail(&self, key_id: &str) -> Result<Vec<::keygate::AuditEvent>, ::keygate::StoreError> {
                self.$body.audit_trail(key_id).await
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use key_store_via_body;
