//! Where keys live: the [`KeyStore`] trait, its errors, and the in-memory implementation.
//!
//! Real stores (SQLite, PostgreSQL) live in the `keygate-sqlx` crate. A store keeps records and
//! an append-only audit trail; it never sees a plaintext key.

mod memory;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::cache::Invalidator;
use crate::record::KeyRecord;

pub use memory::MemoryStore;

/// A key store failed. During verification every store error becomes a 503
/// `store_unavailable`, never a 401.
#[derive(Debug, thiserror::Error)]
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

/// Storage of key records and their audit trail.
///
/// Implementations must be cheap to share (`Arc<dyn KeyStore>`), must return within a bounded
/// time (map their own timeouts to [`StoreError::Timeout`]), and must never log hashes.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The record with this id, or `None`.
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Stores a new record; [`StoreError::Conflict`] if the id exists.
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError>;

    /// Records matching `filter`, ordered by `created_at` then `id`, oldest first.
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError>;

    /// Marks the key revoked at `at` (keeps the row). Returns `false` if there is no such key.
    /// Revoking an already revoked key keeps the first revocation time and returns `true`.
    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Removes the record. Returns `false` if there was no such key. The audit trail stays.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;

    /// Sets or clears the expiry. Returns `false` if there is no such key.
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError>;

    /// Replaces the stored hash (upgrade to new hashing parameters). Returns `false` if there
    /// is no such key.
    async fn update_hash(&self, id: &str, hash: &str) -> Result<bool, StoreError>;

    /// Records last-use times for many keys at once (one batched write). Unknown ids are
    /// ignored; a time older than the stored one does not move it back.
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError>;

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
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        (**self).insert(record).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        (**self).list(filter).await
    }
    async fn revoke(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        (**self).revoke(id, at).await
    }
    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        (**self).delete(id).await
    }
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        (**self).set_expiry(id, expires_at).await
    }
    async fn update_hash(&self, id: &str, hash: &str) -> Result<bool, StoreError> {
        (**self).update_hash(id, hash).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        (**self).touch_last_used(uses).await
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
