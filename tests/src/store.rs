//! Store wrappers the fixture stacks under its verifier: [`FailingStore`] fails reads of
//! chosen ids as if the database were down; [`CountingStore`] records every call, so a case
//! can prove which store work (if any) a request caused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{
    AuditEvent, KeyFilter, KeyRecord, KeyStore, KeyUpdate, MemoryStore, PageQuery, RotateOutcome,
    Rotation, StoreError, UsageCount, UsageTotals,
};

/// A [`MemoryStore`] whose reads of chosen key ids fail as if the database were down.
#[derive(Debug, Default)]
pub struct FailingStore {
    inner: MemoryStore,
    unavailable: Mutex<HashSet<String>>,
}

impl FailingStore {
    /// Every later read of key `id` fails with [`StoreError::Unavailable`].
    pub fn fail_reads_of(&self, id: &str) {
        self.unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned());
    }

    fn fails(&self, id: &str) -> bool {
        self.unavailable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }
}

#[async_trait]
impl KeyStore for FailingStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        if self.fails(id) {
            return Err(StoreError::Unavailable(
                "conformance: simulated outage".into(),
            ));
        }
        self.inner.get(id).await
    }
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        self.inner.insert(record, audit).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(filter).await
    }
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_page(query).await
    }
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        self.inner.rotate(rotation).await
    }
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.update(id, update, audit).await
    }
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.inner.revoke(id, at, audit).await
    }
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        self.inner.delete(id, audit).await
    }
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.inner.set_expiry(id, expires_at).await
    }
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.inner.update_hash(id, expected, hash, audit).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        self.inner.touch_last_used(uses).await
    }
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        self.inner.add_usage(counts).await
    }
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        self.inner.usage(key_id, since).await
    }
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        self.inner
            .usage_totals(key_ids, day_since, month_since)
            .await
    }
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_usage(before).await
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.append_audit(event).await
    }
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_trail(key_id).await
    }
}

/// One call a [`KeyStore`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreCall {
    /// [`KeyStore::get`] (read).
    Get,
    /// [`KeyStore::list`] (read).
    List,
    /// [`KeyStore::audit_trail`] (read).
    AuditTrail,
    /// [`KeyStore::insert`] (write).
    Insert,
    /// [`KeyStore::revoke`] (write).
    Revoke,
    /// [`KeyStore::delete`] (write).
    Delete,
    /// [`KeyStore::set_expiry`] (write).
    SetExpiry,
    /// [`KeyStore::update_hash`] (write).
    UpdateHash,
    /// [`KeyStore::list_page`] (read).
    ListPage,
    /// [`KeyStore::rotate`] (write).
    Rotate,
    /// [`KeyStore::update`] (write).
    Update,
    /// [`KeyStore::add_usage`] (write: the usage flush).
    AddUsage,
    /// [`KeyStore::usage`] (read).
    Usage,
    /// [`KeyStore::usage_totals`] (read).
    UsageTotals,
    /// [`KeyStore::prune_usage`] (write).
    PruneUsage,
    /// [`KeyStore::touch_last_used`] (write: the last-used flush).
    TouchLastUsed,
    /// [`KeyStore::append_audit`] (write).
    AppendAudit,
}

impl StoreCall {
    /// Whether the call changes what the store holds.
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            StoreCall::Get
                | StoreCall::List
                | StoreCall::ListPage
                | StoreCall::AuditTrail
                | StoreCall::Usage
                | StoreCall::UsageTotals
        )
    }
}

/// Where the call log of a [`CountingStore`] stood; see [`CountingStore::since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(usize);

/// The calls a store received between a [`Mark`] and now, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreActivity {
    /// Every call, in the order received.
    pub calls: Vec<StoreCall>,
}

impl StoreActivity {
    /// Number of reads (`get`, `list`, `audit_trail`).
    pub fn reads(&self) -> usize {
        self.calls.iter().filter(|c| !c.is_write()).count()
    }

    /// Number of writes (every mutating method, `touch_last_used` and `append_audit`
    /// included).
    pub fn writes(&self) -> usize {
        self.calls.iter().filter(|c| c.is_write()).count()
    }
}

/// A [`KeyStore`] that records every call before passing it to the store it wraps.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use keygate::{KeyStore, MemoryStore};
/// use keygate_conformance::store::{CountingStore, StoreCall};
///
/// let store = CountingStore::new(Arc::new(MemoryStore::new()));
/// let mark = store.mark();
/// assert!(store.get("0123456789abcdef").await.unwrap().is_none());
/// assert_eq!(store.since(mark).calls, [StoreCall::Get]);
/// # }
/// ```
pub struct CountingStore {
    inner: Arc<dyn KeyStore>,
    calls: Mutex<Vec<StoreCall>>,
}

impl std::fmt::Debug for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingStore")
            .field("calls", &self.log().len())
            .finish_non_exhaustive()
    }
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn KeyStore>) -> Self {
        CountingStore {
            inner,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<StoreCall>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, call: StoreCall) {
        self.log().push(call);
    }

    /// Where the call log stands now.
    pub fn mark(&self) -> Mark {
        Mark(self.log().len())
    }

    /// The calls received since `mark`.
    pub fn since(&self, mark: Mark) -> StoreActivity {
        StoreActivity {
            calls: self.log().get(mark.0..).unwrap_or_default().to_vec(),
        }
    }
}

#[async_trait]
impl KeyStore for CountingStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.record(StoreCall::Get);
        self.inner.get(id).await
    }
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        self.record(StoreCall::Insert);
        self.inner.insert(record, audit).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.record(StoreCall::List);
        self.inner.list(filter).await
    }
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        self.record(StoreCall::ListPage);
        self.inner.list_page(query).await
    }
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        self.record(StoreCall::Rotate);
        self.inner.rotate(rotation).await
    }
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.record(StoreCall::Update);
        self.inner.update(id, update, audit).await
    }
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.record(StoreCall::Revoke);
        self.inner.revoke(id, at, audit).await
    }
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        self.record(StoreCall::Delete);
        self.inner.delete(id, audit).await
    }
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.record(StoreCall::SetExpiry);
        self.inner.set_expiry(id, expires_at).await
    }
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.record(StoreCall::UpdateHash);
        self.inner.update_hash(id, expected, hash, audit).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        self.record(StoreCall::TouchLastUsed);
        self.inner.touch_last_used(uses).await
    }
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        self.record(StoreCall::AddUsage);
        self.inner.add_usage(counts).await
    }
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        self.record(StoreCall::Usage);
        self.inner.usage(key_id, since).await
    }
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        self.record(StoreCall::UsageTotals);
        self.inner
            .usage_totals(key_ids, day_since, month_since)
            .await
    }
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.record(StoreCall::PruneUsage);
        self.inner.prune_usage(before).await
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.record(StoreCall::AppendAudit);
        self.inner.append_audit(event).await
    }
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        self.record(StoreCall::AuditTrail);
        self.inner.audit_trail(key_id).await
    }
    fn subscribe(&self, invalidator: keygate::Invalidator) {
        self.inner.subscribe(invalidator);
    }
    fn pushes_invalidations(&self) -> bool {
        self.inner.pushes_invalidations()
    }
}
