//! Test doubles shared by the core's integration tests: a counting hasher, store wrappers that
//! count, fail, hang or hold reads, and helpers to build a verifier on a manual clock.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::{
    Argon2Hasher, Argon2Params, AuditEvent, HashError, KeyFilter, KeyHasher, KeyManager, KeyRecord,
    KeyStore, KeyUpdate, ManualClock, MemoryStore, NewKey, PageQuery, RotateOutcome, Rotation,
    StoreError, UsageCount, UsageTotals, Verifier, VerifierBuilder,
};
use tokio::sync::Notify;

/// A `revoked` event of key `id`, for revokes written straight to a store.
pub fn revoked_event(id: &str) -> AuditEvent {
    AuditEvent {
        key_id: id.to_owned(),
        action: keygate::AuditAction::Revoked,
        at: chrono::Utc::now(),
        org: "acme".to_owned(),
        actor: None,
        detail: serde_json::Value::Null,
    }
}

/// argon2id with tiny parameters: the same code path, milliseconds faster.
pub fn cheap_argon2() -> Argon2Hasher {
    Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap()
}

/// Counts every `verify` and `hash` call of the wrapped hasher.
#[derive(Clone)]
pub struct CountingHasher {
    inner: Arc<dyn KeyHasher>,
    pub verifies: Arc<AtomicUsize>,
    pub hashes: Arc<AtomicUsize>,
}

impl CountingHasher {
    pub fn new(inner: impl KeyHasher) -> Self {
        CountingHasher {
            inner: Arc::new(inner),
            verifies: Arc::default(),
            hashes: Arc::default(),
        }
    }
    pub fn verify_count(&self) -> usize {
        self.verifies.load(Ordering::SeqCst)
    }
    pub fn hashes(&self) -> usize {
        self.hashes.load(Ordering::SeqCst)
    }
}

impl KeyHasher for CountingHasher {
    fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash(secret)
    }
    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError> {
        self.verifies.fetch_add(1, Ordering::SeqCst);
        self.inner.verify(secret, stored)
    }
    fn needs_rehash(&self, stored: &str) -> bool {
        self.inner.needs_rehash(stored)
    }
}

/// One batched last-used write.
pub type UseBatch = Vec<(String, DateTime<Utc>)>;

/// Wraps a store: counts reads and writes, can fail, hang, or hold one read.
#[derive(Default)]
pub struct TestStore {
    pub inner: MemoryStore,
    pub gets: AtomicUsize,
    pub writes: AtomicUsize,
    pub touches: Mutex<Vec<UseBatch>>,
    pub failing: AtomicBool,
    pub hanging: AtomicBool,
    /// When armed, the next `get` reads the record, signals `read_taken`, and waits for
    /// `release` before returning what it read.
    pub hold_next_get: AtomicBool,
    pub read_taken: Notify,
    pub release: Notify,
    /// When armed, the next `insert` puts the new key's id in `inserting`, signals
    /// `insert_taken`, and waits for `insert_release` before writing anything.
    pub hold_next_insert: AtomicBool,
    pub inserting: Mutex<Option<String>>,
    pub insert_taken: Notify,
    pub insert_release: Notify,
}

impl TestStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("injected failure".into()))
        } else {
            Ok(())
        }
    }
    async fn maybe_hang(&self) {
        if self.hanging.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get_count(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }
    pub fn touch_batches(&self) -> Vec<UseBatch> {
        self.touches.lock().unwrap().clone()
    }
}

#[async_trait]
impl KeyStore for TestStore {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.maybe_hang().await;
        self.check()?;
        let r = self.inner.get(id).await?;
        if self.hold_next_get.swap(false, Ordering::SeqCst) {
            self.read_taken.notify_one();
            self.release.notified().await;
        }
        Ok(r)
    }
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        self.check()?;
        if self.hold_next_insert.swap(false, Ordering::SeqCst) {
            *self.inserting.lock().unwrap() = Some(record.id.clone());
            self.insert_taken.notify_one();
            self.insert_release.notified().await;
        }
        self.wrote();
        self.inner.insert(record, audit).await
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.list(filter).await
    }
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        self.check()?;
        self.inner.list_page(query).await
    }
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.rotate(rotation).await
    }
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.update(id, update, audit).await
    }
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.revoke(id, at, audit).await
    }
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.delete(id, audit).await
    }
    async fn set_expiry(&self, id: &str, at: Option<DateTime<Utc>>) -> Result<bool, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.set_expiry(id, at).await
    }
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.wrote();
        self.inner.update_hash(id, expected, hash, audit).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        self.check()?;
        self.wrote();
        self.touches.lock().unwrap().push(uses.to_vec());
        self.inner.touch_last_used(uses).await
    }
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.add_usage(counts).await
    }
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        self.check()?;
        self.inner.usage(key_id, since).await
    }
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        self.check()?;
        self.inner
            .usage_totals(key_ids, day_since, month_since)
            .await
    }
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.prune_usage(before).await
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_audit(event).await
    }
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_trail(key_id).await
    }
}

/// A verifier, its manager, store, clock and counting hasher, wired together.
pub struct Rig {
    pub store: Arc<TestStore>,
    pub clock: ManualClock,
    pub hasher: CountingHasher,
    pub verifier: Verifier,
    pub manager: KeyManager,
}

impl Rig {
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    pub fn with(configure: impl FnOnce(VerifierBuilder) -> VerifierBuilder) -> Self {
        let store = Arc::new(TestStore::default());
        let clock = ManualClock::starting_now();
        let hasher = CountingHasher::new(cheap_argon2());
        let builder = Verifier::builder(store.clone())
            .clock(clock.clone())
            .hasher(hasher.clone())
            .revocation_window(Duration::from_secs(30));
        let verifier = configure(builder).build();
        let manager = KeyManager::new(store.clone()).with_verifier(&verifier);
        Rig {
            store,
            clock,
            hasher,
            verifier,
            manager,
        }
    }

    /// Creates a key with `entities:read` for org `acme`; returns (token, id).
    pub async fn key(&self) -> (String, String) {
        self.key_with(
            NewKey::new("test key", "acme")
                .scopes(["entities:read"])
                .unwrap(),
        )
        .await
    }

    pub async fn key_with(&self, new: NewKey) -> (String, String) {
        let created = self.manager.create(new).await.unwrap();
        (
            created.key.expose_secret().to_owned(),
            created.record.id.clone(),
        )
    }
}

/// The same prefix and id with another secret (distinct per seed) and a valid checksum.
pub fn forge_secret(token: &str, seed: u32) -> String {
    let dot = token.find('.').unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = u64::from(seed).wrapping_add(0x9E37_79B9_7F4A_7C15);
    let secret: String = (0..keygate::token::SECRET_LEN)
        .map(|_| {
            // splitmix64: a different stream for every seed.
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            alphabet[(z % 62) as usize] as char
        })
        .collect();
    keygate::token::with_checksum(&format!("{}.{}", &token[..dot], secret))
}

/// A `tracing` writer that keeps everything written, for asserting on log output.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}
