//! Where keys live: the [`KeyStore`] trait, its errors, and the in-memory implementation.
//!
//! Real stores (SQLite, PostgreSQL) live in the `keygate-sqlx` crate. A store keeps records and
//! an append-only audit trail; it never sees a plaintext key.

mod memory;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::invalidate::Invalidator;
use crate::rate_limit::RateLimit;
use crate::record::{KeyRecord, KeyStatus};

pub use memory::MemoryStore;

/// A key store failed. During verification every store error becomes a 503
/// `store_unavailable`, never a 401.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached (connection refused, pool exhausted, database down).
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// The store did not answer in time.
    #[error("key store did not answer within {0:?}")]
    Timeout(Duration),
    /// A record with the same id already exists.
    #[error("a key with id {0} already exists")]
    Conflict(String),
    /// A stored row cannot be read back as a record (bad scope, bad JSON, …).
    #[error("stored key {id} is corrupt: {reason}")]
    Corrupt {
        /// The key id of the row.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure of the backend.
    #[error("key store error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Whether a write that answered this error may have committed all the same: a timeout
    /// or a lost connection can come after the commit. [`KeyManager`](crate::KeyManager)
    /// reads the key back before it answers such a write failed.
    pub fn may_have_committed(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Timeout(_) | StoreError::Backend(_)
        )
    }
}

/// Which keys [`KeyStore::list`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only keys of this organization.
    pub org: Option<String>,
    /// Only keys of this team.
    pub team: Option<String>,
    /// Only keys of this owner.
    pub owner: Option<String>,
}

impl KeyFilter {
    /// Matches every key.
    pub fn all() -> Self {
        Self::default()
    }

    /// Matches the keys of one organization.
    pub fn org(org: impl Into<String>) -> Self {
        KeyFilter {
            org: Some(org.into()),
            ..Self::default()
        }
    }

    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &KeyRecord) -> bool {
        self.org.as_ref().is_none_or(|o| *o == record.org)
            && self
                .team
                .as_ref()
                .is_none_or(|t| record.team.as_ref() == Some(t))
            && self
                .owner
                .as_ref()
                .is_none_or(|o| record.owner.as_ref() == Some(o))
    }
}

/// One page of an organization's keys for [`KeyStore::list_page`]: newest first, ordered by
/// `created_at` then `id`, both descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// The organization whose keys are listed (always required: a page never spans tenants).
    pub org: String,
    /// Only keys of this team.
    pub team: Option<String>,
    /// Only keys with this status at `now`.
    pub status: Option<KeyStatus>,
    /// The time statuses are judged at.
    pub now: DateTime<Utc>,
    /// Only keys strictly after this position in the order (the last key of the previous page).
    pub after: Option<PagePosition>,
    /// At most this many keys.
    pub limit: u32,
}

/// A position in the newest-first order of [`PageQuery`]: the `(created_at, id)` of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagePosition {
    /// The key's creation time.
    pub created_at: DateTime<Utc>,
    /// The key's id.
    pub id: String,
}

impl PageQuery {
    /// Whether `record` belongs on a page of this query (ignoring `limit`): the reference
    /// semantics that store implementations follow in SQL.
    pub fn matches(&self, record: &KeyRecord) -> bool {
        record.org == self.org
            && self
                .team
                .as_ref()
                .is_none_or(|t| record.team.as_ref() == Some(t))
            && self.status.is_none_or(|s| record.status_at(self.now) == s)
            && self.after.as_ref().is_none_or(|p| {
                (record.created_at, record.id.as_str()) < (p.created_at, p.id.as_str())
            })
    }
}

/// A rotation for [`KeyStore::rotate`], applied in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The key being replaced.
    pub old_id: &'a str,
    /// Its successor, inserted with `rotated_from = old_id`.
    pub successor: &'a KeyRecord,
    /// When the old key stops working (the store keeps an earlier expiry if it has one).
    pub old_expires_at: DateTime<Utc>,
    /// The time the old key must still be active at.
    pub now: DateTime<Utc>,
    /// Events appended to the audit trail in the same transaction.
    pub audit: &'a [AuditEvent],
}

/// What [`KeyStore::rotate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The successor was inserted and the old key now expires after the grace period.
    Rotated,
    /// There is no key with the old id; nothing was written.
    NotFound,
    /// The old key is revoked or expired; nothing was written.
    NotActive,
    /// The old key was already rotated; nothing was written.
    AlreadyRotated,
}

/// Changes for [`KeyStore::update`]; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// A new rate limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
}

impl KeyUpdate {
    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.expires_at.is_none() && self.rate_limit.is_none()
    }

    /// Applies the update to `record` in memory (the reference semantics).
    pub fn apply_to(&self, record: &mut KeyRecord) {
        if let Some(n) = &self.name {
            record.name.clone_from(n);
        }
        if let Some(e) = self.expires_at {
            record.expires_at = e;
        }
        if let Some(l) = self.rate_limit {
            record.rate_limit = l;
        }
    }
}

/// Requests of one key in one UTC hour: what [`KeyStore::add_usage`] adds and
/// [`KeyStore::usage`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCount {
    /// The key.
    pub key_id: String,
    /// The start of the hour (minutes, seconds and below are zero).
    pub hour: DateTime<Utc>,
    /// Accepted requests.
    pub requests: u64,
    /// Refused requests of a parsed key of this id (wrong secret, expired, revoked, missing
    /// scope, rate limited).
    pub refused: u64,
}

/// One key's request totals over the last day and the last 30 days
/// ([`KeyStore::usage_totals`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// The key.
    pub key_id: String,
    /// Accepted requests in hours starting at or after `day_since`.
    pub requests_24h: u64,
    /// Accepted requests in hours starting at or after `month_since`.
    pub requests_30d: u64,
    /// Refused requests in hours starting at or after `day_since`.
    pub refused_24h: u64,
}

/// Storage of key records and their audit trail.
///
/// Implementations must be cheap to share (`Arc<dyn KeyStore>`), must return within a bounded
/// time (map their own timeouts to [`StoreError::Timeout`]), and must never log hashes.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The record with this id, or `None`.
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Stores a new record and appends `audit` in one transaction; [`StoreError::Conflict`]
    /// (nothing written) if the id exists.
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError>;

    /// Records matching `filter`, ordered by `created_at` then `id`, oldest first.
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError>;

    /// One page of an organization's keys (see [`PageQuery`]). Implementations answer from
    /// an index, not a scan of every key.
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError>;

    /// Rotates a key in one transaction: only when the old key is still active at
    /// `rotation.now` and not rotated yet, inserts the successor, sets the old key's
    /// `rotated_to` and expiry, and appends the audit events; otherwise writes nothing.
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError>;

    /// Applies `update` and appends `audit` in one transaction; the updated record, or `None`
    /// (nothing written) if there is no such key.
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError>;

    /// Marks the key revoked at `at` (keeps the row) and appends `audit`, in one transaction.
    /// Returns `false` (nothing written) if there is no such key. Revoking an already revoked
    /// key keeps the first revocation time, appends nothing and returns `true`.
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Removes the record and appends `audit`, in one transaction. Returns `false` (nothing
    /// written) if there was no such key. The audit trail stays.
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError>;

    /// Sets or clears the expiry. Returns `false` if there is no such key.
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Replaces the stored hash `expected` with `hash` (an upgrade to stronger hashing
    /// parameters) and appends `audit` to the trail, in one transaction. Returns `false`, and
    /// changes nothing, when there is no such key or its hash is no longer `expected` (rotated,
    /// or upgraded by another process meanwhile).
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Records last-use times for many keys at once (one batched write). Unknown ids are
    /// ignored; a time older than the stored one does not move it back.
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError>;

    /// Adds request counts (one batched write). Counts for an existing (key, hour) are added
    /// to, never overwritten, so several processes writing for the same hour sum correctly.
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError>;

    /// The hourly counts of one key for hours starting at or after `since`, oldest first.
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError>;

    /// Totals for each of `key_ids` that has counts (one query; keys without any are
    /// absent). `day_since` and `month_since` are hour starts.
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError>;

    /// Removes the counts of hours starting before `before`; how many rows went.
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Appends a lifecycle event to the audit trail.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;

    /// The audit trail of one key, oldest first (also after the key was deleted).
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError>;

    /// Called once by each verifier built on this store. A store that can push changes made
    /// by other processes (PostgreSQL LISTEN/NOTIFY) starts forwarding them to `invalidator`
    /// here; the default does nothing and the verifier relies on its revocation window.
    fn subscribe(&self, invalidator: Invalidator) {
        let _ = invalidator;
    }

    /// Whether changes are pushed to subscribers (see [`KeyStore::subscribe`]).
    fn pushes_invalidations(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: KeyStore + ?Sized> KeyStore for std::sync::Arc<T> {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        (**self).get(id).await
    }
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        (**self).insert(record, audit).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list(filter).await
    }
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list_page(query).await
    }
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        (**self).rotate(rotation).await
    }
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        (**self).update(id, update, audit).await
    }
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        (**self).revoke(id, at, audit).await
    }
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        (**self).delete(id, audit).await
    }
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        (**self).set_expiry(id, expires_at).await
    }
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        (**self).update_hash(id, expected, hash, audit).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        (**self).touch_last_used(uses).await
    }
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        (**self).add_usage(counts).await
    }
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        (**self).usage(key_id, since).await
    }
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        (**self).usage_totals(key_ids, day_since, month_since).await
    }
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        (**self).prune_usage(before).await
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        (**self).append_audit(event).await
    }
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        (**self).audit_trail(key_id).await
    }
    fn subscribe(&self, invalidator: Invalidator) {
        (**self).subscribe(invalidator)
    }
    fn pushes_invalidations(&self) -> bool {
        (**self).pushes_invalidations()
    }
}
