//! [`Dialect`]: everything in which the SQL stores differ, in one trait implemented by the
//! sqlx database types themselves (`sqlx::Sqlite` in `sqlite.rs`, `sqlx::Postgres` in
//! `postgres.rs`). The store logic written once in `body.rs` is generic over it, so each
//! store is compiled against its own driver with its own column types: nothing is decided at
//! run time, and nothing goes through sqlx's type-erasing `Any` driver.
//!
//! Statements that only differ by placeholder style are written once with `$N` placeholders,
//! which sqlx's SQLite driver binds by number like PostgreSQL does; statements built with a
//! `QueryBuilder` get each driver's own placeholders.

use chrono::{DateTime, Utc};
use keygate::{PageQuery, ScopeSet, StoreError, UsageCount};
use sqlx::query::Query;
use sqlx::{Database, Decode, Encode, QueryBuilder, Type};

/// A query of dialect `DB` with its bound arguments.
pub(crate) type DbQuery<'q, DB> = Query<'q, DB, <DB as Database>::Arguments>;

/// What a SQL store does its own way: how values are stored, the statements whose text
/// differs beyond placeholders, and how transactions begin and announce changes.
pub(crate) trait Dialect: Database {
    /// A time column as stored: microseconds since the epoch (SQLite `INTEGER`) or a
    /// `TIMESTAMPTZ`.
    type Time: Copy
        + Send
        + 'static
        + for<'q> Encode<'q, Self>
        + for<'r> Decode<'r, Self>
        + Type<Self>;
    /// The `scopes` column as bound and read: JSON text (SQLite) or a `TEXT[]`.
    type Scopes: Send + 'static + for<'q> Encode<'q, Self> + for<'r> Decode<'r, Self> + Type<Self>;
    /// A JSON column (`metadata`, audit `detail`) as bound: JSON text (SQLite) or a borrowed
    /// `JSONB` value.
    type JsonIn<'a>: Send + 'a + Encode<'a, Self> + Type<Self>;
    /// A JSON column as read.
    type JsonOut: for<'r> Decode<'r, Self> + Type<Self>;

    /// The store's embedded migrations.
    const MIGRATOR: &'static sqlx::migrate::Migrator;
    /// Creates `keygate_migrations` if missing.
    const MIGRATIONS_TABLE: &'static str;
    /// Taken first in the migration transaction, bound to [`MIGRATION_LOCK`]
    /// (`pg_advisory_xact_lock`), when the transaction's own start does not already keep
    /// other migrators out (SQLite's `BEGIN IMMEDIATE`).
    const LOCK_MIGRATIONS: Option<&'static str>;
    /// How a write transaction begins, when not with the driver's plain `BEGIN`.
    const BEGIN_WRITE: Option<&'static str>;
    /// The statement that announces a change inside the changing transaction and the channel
    /// it is bound to (`$1`; `$2` is the key id); `None` where other processes are not told.
    const NOTIFY: Option<(&'static str, &'static str)>;
    /// The read of the key being rotated (`$1`: its id): `rotated_to`, `revoked_at`,
    /// `expires_at`, locking the row where the transaction does not lock the database.
    const ROTATION_READ: &'static str;
    /// `id` as an expression that sorts in byte order.
    const ID_ORDER: &'static str;

    /// A time as stored.
    fn time(t: DateTime<Utc>) -> Self::Time;
    /// A stored time of key `id`'s `column`; one out of range is corrupt.
    fn time_out(id: &str, column: &str, v: Self::Time) -> Result<DateTime<Utc>, StoreError>;
    /// Scopes as stored.
    fn scopes(s: &ScopeSet) -> Result<Self::Scopes, StoreError>;
    /// Stored scopes of key `id`; unreadable ones are corrupt.
    fn scopes_out(id: &str, v: Self::Scopes) -> Result<Vec<String>, StoreError>;
    /// A JSON value as stored.
    fn json(v: &serde_json::Value) -> Result<Self::JsonIn<'_>, StoreError>;
    /// A stored JSON value of key `id`'s `column`; an unreadable one is corrupt.
    fn json_out(id: &str, column: &str, v: Self::JsonOut) -> Result<serde_json::Value, StoreError>;

    /// The rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// The query of one page of keys, after `head` (empty, or an `EXPLAIN` in tests).
    fn page_query(head: &str, q: &PageQuery) -> QueryBuilder<Self>;
    /// One statement moving each key's `last_used_at` forward to its latest use in `uses`.
    fn touch_last_used(uses: &[(String, DateTime<Utc>)]) -> Result<DbQuery<'_, Self>, StoreError>;
    /// One statement adding `counts` (merged per key and hour) to `keygate_usage`.
    fn add_usage(counts: &[UsageCount]) -> Result<DbQuery<'_, Self>, StoreError>;
    /// One query of the rows `key_id`, `requests_24h`, `requests_30d`, `refused_24h` of
    /// `key_ids`, in byte order of `key_id`.
    fn usage_totals(
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<DbQuery<'_, Self>, StoreError>;
}

/// The advisory lock key bound to [`Dialect::LOCK_MIGRATIONS`]: `"keygate\x01"`.
pub(crate) const MIGRATION_LOCK: i64 = 0x6b65_7967_6174_6501;

/// A JSON value as text, for dialects that store JSON as text.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn json_text(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// The [`Dialect`] items every driver writes the same way, but generic code cannot: they
/// name methods of the driver's own types. Expands inside `impl Dialect for …`.
macro_rules! driver_glue {
    () => {
        fn rows_affected(done: &Self::QueryResult) -> u64 {
            done.rows_affected()
        }
    };
}
pub(crate) use driver_glue;
