//! What both SQL stores do the same way, whatever the dialect: the key columns, the reading
//! of rows whose columns decode alike, the migration bookkeeping, the rotation rule, the key
//! listing and the mapping of a failed insert. What differs (time and JSON columns,
//! transactions, notifications, some statements) is the `Dialect` of `dialect.rs`, implemented
//! in `sqlite.rs` and `postgres.rs`.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keygate::{KeyFilter, RotateOutcome, StoreError, UsageTotals};
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use crate::column;
use crate::error::{bounded, is_unique_violation, store_error};

/// The columns of `keygate_keys`, in the order `record_from_row` reads them, as a literal
/// (for `concat!`: sqlx takes only `&'static str` statements without an audit wrapper).
macro_rules! columns {
    () => {
        "id, prefix, name, org, team, owner, scopes, metadata, hash, created_at, expires_at, \
         revoked_at, last_used_at, rotated_from, rotated_to, rate_limit"
    };
}

/// The columns of `keygate_keys`, in the order `record_from_row` reads them.
pub(crate) const COLUMNS: &str = columns!();

/// The read of one key (`$1`: its id).
pub(crate) const SELECT_BY_ID: &str =
    concat!("SELECT ", columns!(), " FROM keygate_keys WHERE id = $1");

/// A stored value of key `id` that cannot be read.
pub(crate) fn corrupt(id: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_owned(),
        reason: reason.to_string(),
    }
}

/// Runs `fut` within `timeout`, mapping its sqlx error or the deadline to a [`StoreError`].
pub(crate) async fn run<T, F>(timeout: Duration, fut: F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    bounded(timeout, async {
        fut.await.map_err(|e| store_error(e, timeout))
    })
    .await
}

/// A failed insert of `id`: a duplicate id is a conflict.
pub(crate) fn insert_error(e: sqlx::Error, id: &str, timeout: Duration) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(id.to_owned())
    } else {
        store_error(e, timeout)
    }
}

/// Whether embedded migration `m` still has to run, given the `(version, checksum)` pairs
/// already applied; an applied version whose checksum changed is an error.
pub(crate) fn needs_migration(
    applied: &HashMap<i64, Vec<u8>>,
    m: &sqlx::migrate::Migration,
) -> Result<bool, sqlx::Error> {
    match applied.get(&m.version) {
        Some(sum) if sum.as_slice() == &*m.checksum => Ok(false),
        Some(_) => Err(sqlx::Error::Migrate(Box::new(
            sqlx::migrate::MigrateError::VersionMismatch(m.version),
        ))),
        None => Ok(true),
    }
}

/// Why a key with these columns cannot be rotated at `now`, if it cannot.
pub(crate) fn rotation_refusal(
    rotated: bool,
    revoked: bool,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<RotateOutcome> {
    if rotated {
        Some(RotateOutcome::AlreadyRotated)
    } else if !column::is_active(revoked, expires_at, now) {
        Some(RotateOutcome::NotActive)
    } else {
        None
    }
}

/// The query of [`KeyStore::list`](keygate::KeyStore::list): the keys matching `filter`,
/// oldest first, ids in byte order (`id_order` is the dialect's byte-order `id` expression).
pub(crate) fn list_query<DB>(filter: &KeyFilter, id_order: &str) -> QueryBuilder<DB>
where
    DB: Database,
    DB::Arguments: Default,
    for<'a> &'a String: Encode<'a, DB> + Type<DB>,
{
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM keygate_keys WHERE 1 = 1"));
    for (column, value) in [
        ("org", &filter.org),
        ("team", &filter.team),
        ("owner", &filter.owner),
    ] {
        if let Some(value) = value {
            q.push(format!(" AND {column} = ")).push_bind(value);
        }
    }
    q.push(format!(" ORDER BY created_at, {id_order}"));
    q
}

/// One row of usage totals (`key_id`, `requests_24h`, `requests_30d`, `refused_24h`).
pub(crate) fn totals_from_row<R>(row: &R) -> Result<UsageTotals, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let key_id: String = row.try_get("key_id").map_err(|e| corrupt("?", e))?;
    let get = |e: sqlx::Error| corrupt(&key_id, e);
    let count = |name: &str| row.try_get::<i64, _>(name).map(column::count_out);
    Ok(UsageTotals {
        requests_24h: count("requests_24h").map_err(get)?,
        requests_30d: count("requests_30d").map_err(get)?,
        refused_24h: count("refused_24h").map_err(get)?,
        key_id,
    })
}
