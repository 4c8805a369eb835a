//! [`Verifier`]: the verification path of DESIGN.md, in eight steps.
//!
//! 1. Extract the credential ([`extract`](crate::extract)).
//! 2. Parse and checksum ([`token::parse`]): a malformed key costs no store, cache or hash work.
//! 3. Keyed digest of the token (BLAKE3, keyed with a per-process random key).
//! 4. Record cache by id: short TTL (the revocation window), one coalesced store read on a
//!    miss, negative entries for unknown ids.
//! 5. Verdict cache by digest: argon2 only on a miss or when the stored hash changed, on the
//!    blocking pool under a semaphore (waited for at most the queue deadline), coalesced per
//!    digest; an accepted verdict slides while its key is used; rejected digests are cached
//!    briefly and repeated failures per (id, client address) and per id are throttled (429,
//!    never `invalid_key` for a secret that was not checked). Unknown ids go through the same
//!    rejection cache and throttle, so answers do not tell whether an id exists.
//! 6. Status, only *after* the secret verified; then the key's own rate limit (GCRA, per
//!    node); then scopes (checked by the caller).
//! 7. Hand out `Arc<Principal>`.
//! 8. Write-behind `last_used_at`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::{Notify, Semaphore};
use tracing::{field, Instrument};
use zeroize::Zeroizing;

use crate::cache::{
    fingerprint, CachedRecord, Generations, InvalidationTarget, Invalidator, KeyState, Verdict,
};
use crate::clock::{duration_millis, Clock, SystemClock};
use crate::error::{AuthError, Malformed};
use crate::extract::extract_credential;
use crate::flight::Flights;
use crate::hash::{Argon2Hasher, KeyHasher};
use crate::limiter::{KeyLimiter, Limiters};
use crate::principal::Principal;
use crate::record::KeyRecord;
use crate::scope::{ScopeRequirement, ScopeSet};
use crate::store::{KeyStore, StoreError};
use crate::token;
use crate::usage::{UsageRecorder, UsageSlot};

/// Narrows a key's scopes to what its owner may still do (the key acts for its owner).
///
/// Called when a record is read from the store; the answer is cached with the record for the
/// revocation window. The key's effective scopes are the intersection of its grants and the
/// returned set. An error fails the verification as `store_unavailable`.
#[async_trait]
pub trait ScopeNarrower: Send + Sync + 'static {
    /// The scopes the key's owner currently holds.
    async fn owner_scopes(&self, record: &KeyRecord) -> Result<ScopeSet, StoreError>;
}

/// Settings of a [`Verifier`]; set through [`VerifierBuilder`].
#[derive(Debug, Clone)]
struct Config {
    revocation_window: Duration,
    absent_ttl: Duration,
    verified_ttl: Duration,
    rejected_ttl: Duration,
    max_failures: u32,
    failure_window: Duration,
    /// Failures per id across all client addresses; `None`: a multiple of `max_failures`.
    id_failure_budget: Option<u32>,
    hash_queue_timeout: Duration,
    store_timeout: Duration,
    retry_after_secs: u32,
    flush_interval: Duration,
    accepted_prefixes: Option<Vec<String>>,
}

/// Builds a [`Verifier`]. Every setting has a production default.
pub struct VerifierBuilder {
    store: Arc<dyn KeyStore>,
    hasher: Arc<dyn KeyHasher>,
    clock: Arc<dyn Clock>,
    narrower: Option<Arc<dyn ScopeNarrower>>,
    record_capacity: u64,
    verdict_capacity: u64,
    hash_concurrency: usize,
    config: Config,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("config", &self.config)
            .field("record_capacity", &self.record_capacity)
            .field("verdict_capacity", &self.verdict_capacity)
            .field("hash_concurrency", &self.hash_concurrency)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// How long a cached record (status, grants) is trusted before the store is read again:
    /// the worst-case delay before a revoke made by *another* process bites (default 30 s).
    pub fn revocation_window(mut self, d: Duration) -> Self {
        self.config.revocation_window = d;
        self
    }
    /// How long an unknown id is remembered as unknown (default 5 s).
    pub fn absent_ttl(mut self, d: Duration) -> Self {
        self.config.absent_ttl = d;
        self
    }
    /// How long a secret checked against a stored hash stays checked (default 1 h).
    pub fn verified_ttl(mut self, d: Duration) -> Self {
        self.config.verified_ttl = d;
        self
    }
    /// How long a rejected token is answered without hashing it again (default 60 s).
    pub fn rejected_ttl(mut self, d: Duration) -> Self {
        self.config.rejected_ttl = d;
        self
    }
    /// After `max` wrong secrets for one id from one client address within `window`, that
    /// client's further secrets for the id that are not verified yet are answered 429
    /// `too_many_attempts` (with `Retry-After`) without hashing, until the window ends (default
    /// 10 per 60 s). When the adapter does not know the client's address, all such clients of
    /// an id share one count. Secrets already verified keep working, and a correct secret is
    /// never answered `invalid_key` because of anyone's failures. Unknown ids are counted the
    /// same way.
    pub fn failure_throttle(mut self, max: u32, window: Duration) -> Self {
        self.config.max_failures = max;
        self.config.failure_window = window;
        self
    }
    /// Most wrong secrets hashed for one id within the failure window across *all* client
    /// addresses (default 4 × the per-client `max` of [`failure_throttle`](Self::failure_throttle)).
    /// Bounds the argon2 work that forging from many addresses can cause: once spent, every
    /// client's not-yet-verified secrets for the id are answered 429 `too_many_attempts` until
    /// the window ends (verified secrets keep working).
    pub fn id_failure_budget(mut self, max: u32) -> Self {
        self.config.id_failure_budget = Some(max);
        self
    }
    /// Longest wait for a hashing slot (see [`hash_concurrency`](Self::hash_concurrency))
    /// before answering 503 `verifier_busy` with `Retry-After` (default 2 s). A request
    /// admitted after waiting is answered from a record no older than the revocation window.
    pub fn hash_queue_timeout(mut self, d: Duration) -> Self {
        self.config.hash_queue_timeout = d;
        self
    }
    /// Longest wait for a store read before answering 503 (default 2 s).
    pub fn store_timeout(mut self, d: Duration) -> Self {
        self.config.store_timeout = d;
        self
    }
    /// `Retry-After` seconds on 503 `store_unavailable` and `verifier_busy` (default 5).
    pub fn retry_after_secs(mut self, secs: u32) -> Self {
        self.config.retry_after_secs = secs;
        self
    }
    /// How often last-use times are written (default 60 s).
    pub fn last_used_flush_interval(mut self, d: Duration) -> Self {
        self.config.flush_interval = d;
        self
    }
    /// Accept only keys with these prefixes; others are `malformed_key` (default: any).
    pub fn accept_prefixes<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.accepted_prefixes = Some(prefixes.into_iter().map(Into::into).collect());
        self
    }
    /// Maximum number of cached records (default 100 000).
    pub fn record_capacity(mut self, n: u64) -> Self {
        self.record_capacity = n;
        self
    }
    /// Maximum number of cached verdicts (default 200 000).
    pub fn verdict_capacity(mut self, n: u64) -> Self {
        self.verdict_capacity = n;
        self
    }
    /// Most argon2 computations at once (default: the number of CPUs).
    pub fn hash_concurrency(mut self, n: usize) -> Self {
        self.hash_concurrency = n.max(1);
        self
    }
    /// The hasher (default [`Argon2Hasher`] with OWASP parameters). New parameters make
    /// verified keys with older hashes get re-hashed.
    pub fn hasher(mut self, hasher: impl KeyHasher) -> Self {
        self.hasher = Arc::new(hasher);
        self
    }
    /// The hasher, shared.
    pub fn shared_hasher(mut self, hasher: Arc<dyn KeyHasher>) -> Self {
        self.hasher = hasher;
        self
    }
    /// The clock (default the system clock; [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// Narrow keys to their owner's current scopes.
    pub fn scope_narrower(mut self, narrower: impl ScopeNarrower) -> Self {
        self.narrower = Some(Arc::new(narrower));
        self
    }

    /// Builds the verifier. Inside a tokio runtime it also starts the last-used flusher
    /// (stopped by [`Verifier::shutdown`] or when the verifier is dropped), and subscribes to
    /// the store's change notifications when it pushes them.
    pub fn build(self) -> Verifier {
        let c = &self.config;
        let housekeeping = |d: Duration| d.saturating_mul(2).max(Duration::from_secs(1));
        let records = moka::sync::Cache::builder()
            .max_capacity(self.record_capacity)
            .time_to_live(housekeeping(c.revocation_window.max(c.absent_ttl)))
            .build();
        let verdicts = moka::sync::Cache::builder()
            .max_capacity(self.verdict_capacity)
            .time_to_live(housekeeping(c.verified_ttl.max(c.rejected_ttl)))
            .build();
        let failures = moka::sync::Cache::builder()
            .max_capacity(self.record_capacity)
            .time_to_live(housekeeping(c.failure_window))
            .build();
        let id_failures = moka::sync::Cache::builder()
            .max_capacity(self.record_capacity)
            .time_to_live(housekeeping(c.failure_window))
            .build();
        let limiters = Limiters::new(
            self.record_capacity,
            c.revocation_window,
            Arc::clone(&self.clock),
        );
        let mut digest_key = Zeroizing::new([0u8; 32]);
        if token::os_random(&mut digest_key[..]).is_err() {
            // Without OS randomness the digest key falls back to process-unique data; digests
            // are only ever compared inside this process, so this weakens nothing persistent.
            let seed = format!("{:?}{:?}", Instant::now(), std::thread::current().id());
            *digest_key = *blake3::hash(seed.as_bytes()).as_bytes();
        }
        let inner = Arc::new(Inner {
            store: self.store,
            hasher: self.hasher,
            clock: self.clock,
            narrower: self.narrower,
            digest_key,
            records,
            verdicts,
            record_flights: Flights::new(),
            hash_flights: Flights::new(),
            failures,
            id_failures,
            generations: Arc::new(Generations::new()),
            limiters,
            hash_permits: Arc::new(Semaphore::new(self.hash_concurrency)),
            usage: UsageRecorder::default(),
            stop: Arc::new(Notify::new()),
            config: self.config,
        });
        let verifier = Verifier { inner };
        verifier.spawn_flusher();
        verifier.inner.store.subscribe(verifier.invalidator());
        verifier
    }
}

struct Inner {
    store: Arc<dyn KeyStore>,
    hasher: Arc<dyn KeyHasher>,
    clock: Arc<dyn Clock>,
    narrower: Option<Arc<dyn ScopeNarrower>>,
    digest_key: Zeroizing<[u8; 32]>,
    records: moka::sync::Cache<String, CachedRecord>,
    verdicts: moka::sync::Cache<[u8; 32], Verdict>,
    /// One store read per id at a time.
    record_flights: Flights<String, Result<CachedRecord, Arc<StoreError>>>,
    /// One argon2 run per digest at a time.
    /// (digest, fingerprint of the stored hash it is checked against).
    hash_flights: Flights<([u8; 32], u64), Result<Verdict, Arc<HashFailure>>>,
    /// Failures per (id, client address); `None` when the adapter does not know the address.
    failures: moka::sync::Cache<(String, Option<IpAddr>), Arc<FailureWindow>>,
    /// Failures per id, from every client address.
    id_failures: moka::sync::Cache<String, Arc<FailureWindow>>,
    generations: Arc<Generations>,
    /// Rate-limit buckets of recently cached keys, so a record refresh keeps its bucket.
    limiters: Limiters,
    hash_permits: Arc<Semaphore>,
    usage: UsageRecorder,
    stop: Arc<Notify>,
    config: Config,
}

/// Wrong secrets counted in one failure window (per client, or per id).
struct FailureWindow {
    started_ms: AtomicI64,
    count: AtomicU32,
}

impl FailureWindow {
    fn new(now: i64) -> Arc<Self> {
        Arc::new(FailureWindow {
            started_ms: AtomicI64::new(now),
            count: AtomicU32::new(0),
        })
    }

    /// `Some(seconds until the window ends)` when `limit` failures were counted in the window
    /// running at `now`.
    fn blocks(&self, now: i64, window_ms: i64, limit: u32) -> Option<u32> {
        let left = self
            .started_ms
            .load(Ordering::Relaxed)
            .saturating_add(window_ms)
            .saturating_sub(now);
        (left > 0 && self.count.load(Ordering::Relaxed) >= limit).then(|| {
            // Whole seconds, rounded up: retrying earlier would be refused again.
            u32::try_from(left.saturating_add(999) / 1000).unwrap_or(u32::MAX)
        })
    }

    /// Counts one failure at `now`, starting a new window when the last one ended; returns
    /// the count in the window.
    fn count_failure(&self, now: i64, window_ms: i64) -> u32 {
        if now.saturating_sub(self.started_ms.load(Ordering::Relaxed)) >= window_ms {
            self.started_ms.store(now, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed).saturating_add(1)
    }

    /// Takes back one counted failure.
    fn forgive(&self) {
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Verifies API keys against a [`KeyStore`], with the two caches of DESIGN.md.
///
/// Cheap to clone (one `Arc`); share one per process.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use keygate::{KeyManager, MemoryStore, NewKey, Verifier};
///
/// let store = Arc::new(MemoryStore::new());
/// let verifier = Verifier::builder(store.clone()).build();
/// let manager = KeyManager::new(store).with_verifier(&verifier);
/// let created = manager
///     .create(NewKey::new("ci", "acme").scopes(["entities:read"]).unwrap())
///     .await
///     .unwrap();
/// let principal = verifier.verify(created.key.expose_secret()).await.unwrap();
/// assert_eq!(principal.org, "acme");
/// # }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .field("cached_records", &self.inner.records.entry_count())
            .field("cached_verdicts", &self.inner.verdicts.entry_count())
            .finish_non_exhaustive()
    }
}

/// How a verification ended, for metrics and the tracing span.
/// The span of one verification (key id, outcome, cache hit or miss; never the secret).
fn verify_span() -> tracing::Span {
    tracing::debug_span!(
        "keygate.verify",
        key_id = field::Empty,
        outcome = field::Empty,
        cache = field::Empty
    )
}

/// Records a verification's outcome on its span and in the metrics.
fn finish(
    span: &tracing::Span,
    result: Result<Arc<Principal>, AuthError>,
) -> Result<Arc<Principal>, AuthError> {
    let outcome = outcome_label(&result);
    span.record("outcome", outcome);
    metrics::counter!("keygate_verifications_total", "outcome" => outcome).increment(1);
    result
}

fn outcome_label(r: &Result<Arc<Principal>, AuthError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.reason(),
    }
}

impl Verifier {
    /// Starts building a verifier over `store`.
    pub fn builder(store: Arc<dyn KeyStore>) -> VerifierBuilder {
        VerifierBuilder {
            store,
            hasher: Arc::new(Argon2Hasher::new()),
            clock: Arc::new(SystemClock),
            narrower: None,
            record_capacity: 100_000,
            verdict_capacity: 200_000,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            config: Config {
                revocation_window: Duration::from_secs(30),
                absent_ttl: Duration::from_secs(5),
                verified_ttl: Duration::from_secs(3600),
                rejected_ttl: Duration::from_secs(60),
                max_failures: 10,
                failure_window: Duration::from_secs(60),
                id_failure_budget: None,
                hash_queue_timeout: Duration::from_secs(2),
                store_timeout: Duration::from_secs(2),
                retry_after_secs: 5,
                flush_interval: Duration::from_secs(60),
                accepted_prefixes: None,
            },
        }
    }

    /// Verifies a token (steps 2–8): the principal, or why not. Scopes are not checked here;
    /// see [`Verifier::authorize`]. Every accepted verification spends one request of the
    /// key's own [`RateLimit`](crate::RateLimit), if it has one; once spent, the answer is
    /// [`AuthError::RateLimited`] until a request is free again. The client's address is not
    /// known: wrong secrets are throttled per id (see [`Verifier::verify_from`]).
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        self.verify_from(token, None).await
    }

    /// [`Verifier::verify`] for a token presented by the client at `peer` (the connection's
    /// remote address, as the adapter knows it). Wrong secrets are throttled per (id, `peer`),
    /// so failures from one client cannot stop another client's correct secret from being
    /// checked; `None` throttles per id. Answers 429 `too_many_attempts` while throttled.
    pub async fn verify_from(
        &self,
        token: &str,
        peer: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let span = verify_span();
        let result = match self.inner.verify_now(token, &span) {
            Some(answer) => answer,
            None => {
                self.inner
                    .verify(token, peer, &span)
                    .instrument(span.clone())
                    .await
            }
        };
        finish(&span, result)
    }

    /// The answer without awaiting, when it needs none: a malformed token, or a key whose
    /// record and verdict are both cached and fresh — the hot path of every request with a
    /// known key. `None` when a cache missed: call [`Verifier::verify`], which reads the store
    /// and runs argon2 as needed. Middleware uses this to skip boxing a future per request.
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Principal>, AuthError>> {
        let span = verify_span();
        let answer = self.inner.verify_now(token, &span)?;
        Some(finish(&span, answer))
    }

    /// Verifies a token and checks a scope requirement (403 when unmet).
    pub async fn authorize(
        &self,
        token: &str,
        requirement: &ScopeRequirement,
    ) -> Result<Arc<Principal>, AuthError> {
        let p = self.verify(token).await?;
        self.require(&p, requirement)?;
        Ok(p)
    }

    /// Extracts the credential from header values (see
    /// [`extract_credential`]) and verifies it.
    pub async fn verify_headers<'a, A, B>(
        &self,
        api_keys: A,
        authorizations: B,
    ) -> Result<Arc<Principal>, AuthError>
    where
        A: IntoIterator<Item = &'a [u8]>,
        B: IntoIterator<Item = &'a [u8]>,
    {
        let token = extract_credential(api_keys, authorizations)?;
        self.verify(token).await
    }

    /// A handle that drops this verifier's cached state for a key (or all keys).
    pub fn invalidator(&self) -> Invalidator {
        let target: Arc<dyn InvalidationTarget> = self.inner.clone();
        Invalidator::new(Arc::downgrade(&target))
    }

    /// Writes pending last-use times now, in one batched store call. Returns how many keys
    /// were written.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        self.inner
            .usage
            .flush(
                self.inner.store.as_ref(),
                self.inner.config.store_timeout,
                self.inner.clock.now_millis(),
            )
            .await
    }

    /// Checks `principal`'s scopes against `requirement` (403 when unmet), counting a refusal
    /// in the key's usage. Every keygate scope guard and extractor goes through here.
    pub fn require(
        &self,
        principal: &Principal,
        requirement: &ScopeRequirement,
    ) -> Result<(), AuthError> {
        let checked = principal.require(requirement);
        if checked.is_err() {
            self.record_refusal(&principal.id);
        }
        checked
    }

    /// Counts a request of key `id` that verified (and was counted as accepted) but was then
    /// refused by the route (a missing scope, a spent rate limit) as refused instead. A no-op
    /// when the key is not cached here (it is, for any key that was just verified).
    pub fn record_refusal(&self, id: &str) {
        if let Some(state) = self.inner.records.get(id).and_then(|c| c.state) {
            self.inner.usage.reclassify_as_refused(&state.usage);
        }
    }

    /// Number of keys whose last use is waiting to be written.
    pub fn pending_last_used(&self) -> usize {
        self.inner.usage.pending()
    }

    /// Graceful shutdown: stops the background flusher and writes pending last-use times.
    pub async fn shutdown(&self) -> Result<usize, StoreError> {
        self.inner.stop.notify_waiters();
        self.inner.stop.notify_one();
        self.flush_last_used().await
    }

    /// The store this verifier reads.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.inner.store
    }

    /// The hasher this verifier checks secrets with.
    pub fn hasher(&self) -> &Arc<dyn KeyHasher> {
        &self.inner.hasher
    }

    /// The clock this verifier reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The configured revocation window.
    pub fn revocation_window(&self) -> Duration {
        self.inner.config.revocation_window
    }

    /// Number of cached records and verdicts (approximate; for metrics and benchmarks).
    pub fn cached_entries(&self) -> (u64, u64) {
        (
            self.inner.records.entry_count(),
            self.inner.verdicts.entry_count(),
        )
    }

    /// Runs the caches' pending housekeeping (eviction bookkeeping). Useful before reading
    /// [`Verifier::cached_entries`].
    pub async fn run_cache_maintenance(&self) {
        self.inner.records.run_pending_tasks();
        self.inner.verdicts.run_pending_tasks();
    }

    fn spawn_flusher(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(
                "keygate: no tokio runtime at build time; call flush_last_used() yourself"
            );
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let stop = Arc::clone(&self.inner.stop);
        let every = self
            .inner
            .config
            .flush_interval
            .max(Duration::from_millis(10));
        handle.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.notified() => break,
                }
                let Some(inner) = weak.upgrade() else { break };
                // Errors are logged by the recorder and the batch retried next tick.
                let _ = inner
                    .usage
                    .flush(
                        inner.store.as_ref(),
                        inner.config.store_timeout,
                        inner.clock.now_millis(),
                    )
                    .await;
            }
        });
    }
}

impl InvalidationTarget for Inner {
    fn invalidate(&self, id: &str) {
        self.generations.bump(id);
    }

    fn invalidate_all(&self) {
        self.generations.bump_all();
        self.records.invalidate_all();
    }
}

/// Why the hash step could not give a verdict.
#[derive(Debug, thiserror::Error)]
enum HashFailure {
    #[error("stored hash unusable: {0}")]
    Hash(#[from] crate::hash::HashError),
    #[error("hash task failed: {0}")]
    Task(String),
    /// The id became throttled while this check waited for a hashing permit: refused
    /// without hashing, and not cached (the secret was never checked). Carries the seconds
    /// until the failure window ends.
    #[error("key id throttled")]
    Throttled(u32),
    /// No hashing permit within the queue deadline: the secret was never checked.
    #[error("no hashing slot within the queue deadline")]
    Busy,
}

impl Inner {
    fn store_unavailable(&self) -> AuthError {
        AuthError::StoreUnavailable {
            retry_after_secs: self.config.retry_after_secs,
        }
    }

    fn too_many_attempts(id: &str, retry_after_secs: u32) -> AuthError {
        metrics::counter!("keygate_throttled_total").increment(1);
        tracing::debug!(
            key_id = id,
            "keygate: client throttled after repeated wrong secrets for this id"
        );
        AuthError::TooManyAttempts { retry_after_secs }
    }

    /// Steps 2 and the prefix check: the token's shape, checksum and environment.
    fn parse<'t>(&self, token: &'t str) -> Result<token::ParsedToken<'t>, AuthError> {
        let parsed =
            token::parse(token).map_err(|e| AuthError::MalformedKey(Malformed::Token(e)))?;
        if let Some(accepted) = &self.config.accepted_prefixes {
            if !accepted.iter().any(|p| p == parsed.prefix()) {
                return Err(AuthError::MalformedKey(Malformed::WrongPrefix));
            }
        }
        Ok(parsed)
    }

    /// Whether a cached record of `id` may be used at `now`: within its freshness, and read
    /// after the last change made to the key in this process.
    fn usable(&self, id: &str, c: &CachedRecord, now: i64) -> bool {
        now < c.fresh_until_ms && self.generations.is_current(id, c.read_gen)
    }

    async fn verify(
        &self,
        token: &str,
        peer: Option<IpAddr>,
        span: &tracing::Span,
    ) -> Result<Arc<Principal>, AuthError> {
        let parsed = self.parse(token)?;
        let id = parsed.id();
        span.record("key_id", id);
        let digest = *blake3::keyed_hash(&self.digest_key, token.as_bytes()).as_bytes();
        let now = self.clock.now_millis();
        let record = self.record(id, now, span).await?;
        let Some(state) = record.state.clone() else {
            return Err(self.refuse_unknown(id, peer, digest, now));
        };
        match self.verdicts.get(&digest) {
            Some(v) if v.applies_to(&state, now) => {
                metrics::counter!("keygate_cache_total", "cache" => "verdict", "result" => "hit")
                    .increment(1);
                self.slide(digest, v, now);
                self.answer(v.accepted, &state, now)
            }
            stale => {
                metrics::counter!("keygate_cache_total", "cache" => "verdict", "result" => "miss")
                    .increment(1);
                // Boxed: the cold path's state (argon2, coalescing) would otherwise make
                // every cached verification's future kilobytes large.
                if stale.is_some() {
                    self.verdicts.invalidate(&digest);
                }
                Box::pin(self.check_and_answer(token, id, peer, &record, state, digest, now)).await
            }
        }
    }

    /// Step 5 on a verdict miss, then steps 6–8. The check may have waited for a hashing slot:
    /// an accepted secret is answered from a record no older than the revocation window (read
    /// again when the one the check started with aged out or was invalidated meanwhile).
    #[allow(clippy::too_many_arguments)]
    async fn check_and_answer(
        &self,
        token: &str,
        id: &str,
        peer: Option<IpAddr>,
        record: &CachedRecord,
        state: Arc<KeyState>,
        digest: [u8; 32],
        now: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        let accepted = self
            .check_secret(token, id, peer, &state, digest, now)
            .await?;
        let later = self.clock.now_millis();
        if !accepted || self.usable(id, record, later) {
            return self.answer(accepted, &state, now);
        }
        let span = tracing::Span::current();
        let Some(fresh) = self.record(id, later, &span).await?.state else {
            // Deleted while the secret was being checked.
            return Err(AuthError::InvalidKey);
        };
        if fresh.fingerprint == state.fingerprint {
            return self.answer(true, &fresh, later);
        }
        // The stored hash changed meanwhile (a re-hash): check against the new one, once.
        let accepted = match self.verdicts.get(&digest) {
            Some(v) if v.applies_to(&fresh, later) => v.accepted,
            _ => {
                self.check_secret(token, id, peer, &fresh, digest, later)
                    .await?
            }
        };
        self.answer(accepted, &fresh, later)
    }

    /// Keeps the verdict of a key in use: an accepted verdict found with less than half its
    /// TTL left is renewed, so it lapses only once the key goes unused (at most one cache
    /// write per key per half TTL, none on other hits).
    fn slide(&self, digest: [u8; 32], v: Verdict, now: i64) {
        let ttl = duration_millis(self.config.verified_ttl);
        if v.accepted && v.valid_until_ms.saturating_sub(now) < ttl / 2 {
            self.verdicts.insert(
                digest,
                Verdict {
                    valid_until_ms: now.saturating_add(ttl),
                    ..v
                },
            );
        }
    }

    /// Step 5 for an id the store does not know, answered exactly like a wrong secret for a
    /// known id: the same rejection cache, the same failure count, the same 429 once
    /// throttled — the answers do not tell whether an id exists.
    fn refuse_unknown(
        &self,
        id: &str,
        peer: Option<IpAddr>,
        digest: [u8; 32],
        now: i64,
    ) -> AuthError {
        if self
            .verdicts
            .get(&digest)
            .is_some_and(|v| v.applies_to_absent(now))
        {
            return AuthError::InvalidKey;
        }
        if let Some(secs) = self.throttled(id, peer, now) {
            return Self::too_many_attempts(id, secs);
        }
        self.record_failure(id, peer, now);
        self.verdicts.insert(
            digest,
            Verdict::absent(now.saturating_add(duration_millis(self.config.rejected_ttl))),
        );
        AuthError::InvalidKey
    }

    /// Steps 6–8 once the secret was checked: status only after the secret verified, then
    /// the key's rate limit. A request refused for its rate limit still counts as a use of the
    /// key (`last_used_at`): the key was presented with its right secret.
    #[inline]
    fn answer(
        &self,
        accepted: bool,
        state: &Arc<KeyState>,
        now: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        let refusal = if !accepted {
            AuthError::InvalidKey
        } else if state.revoked {
            // Only now, with the secret proven, may the key's state be revealed.
            AuthError::RevokedKey
        } else if state.expires_at_ms.is_some_and(|e| e <= now) {
            AuthError::ExpiredKey
        } else {
            self.usage.touch(&state.usage, now);
            if let Some(limiter) = &state.limiter {
                if let Err(retry_after_secs) = limiter.check() {
                    // A use of the key (last_used_at), counted as refused.
                    self.usage.reclassify_as_refused(&state.usage);
                    return Err(Self::rate_limited(
                        &state.principal.id,
                        limiter,
                        retry_after_secs,
                    ));
                }
            }
            return Ok(Arc::clone(&state.principal));
        };
        self.usage.refuse(&state.usage);
        Err(refusal)
    }

    #[cold]
    fn rate_limited(id: &str, limiter: &KeyLimiter, retry_after_secs: u32) -> AuthError {
        metrics::counter!("keygate_rate_limited_total").increment(1);
        tracing::debug!(key_id = id, "keygate: key's own rate limit spent");
        AuthError::RateLimited {
            limit: limiter.limit(),
            retry_after_secs,
        }
    }

    /// The answer when it needs no await: a malformed token, or both caches fresh for it.
    /// `None`: a cache missed; [`Inner::verify`] takes over.
    fn verify_now(
        &self,
        token: &str,
        span: &tracing::Span,
    ) -> Option<Result<Arc<Principal>, AuthError>> {
        let parsed = match self.parse(token) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let id = parsed.id();
        let now = self.clock.now_millis();
        let c = self.records.get(id)?;
        if !self.usable(id, &c, now) {
            return None;
        }
        // Counted only when answering here: a miss is counted again by the slow path.
        let record_hit = || {
            span.record("key_id", id);
            span.record("cache", "hit");
            metrics::counter!("keygate_cache_total", "cache" => "record", "result" => "hit")
                .increment(1);
        };
        let digest = *blake3::keyed_hash(&self.digest_key, token.as_bytes()).as_bytes();
        let v = self.verdicts.get(&digest)?;
        let Some(state) = c.state else {
            // An unknown id: answered here only when this very token was refused already;
            // otherwise the slow path counts it toward the throttle like a wrong secret.
            if !v.applies_to_absent(now) {
                return None;
            }
            record_hit();
            return Some(Err(AuthError::InvalidKey));
        };
        if !v.applies_to(&state, now) {
            return None;
        }
        record_hit();
        metrics::counter!("keygate_cache_total", "cache" => "verdict", "result" => "hit")
            .increment(1);
        self.slide(digest, v, now);
        Some(self.answer(v.accepted, &state, now))
    }

    /// Step 4: the record of `id`, from cache or (coalesced) from the store.
    async fn record(
        &self,
        id: &str,
        now: i64,
        span: &tracing::Span,
    ) -> Result<CachedRecord, AuthError> {
        if let Some(c) = self.records.get(id) {
            if self.usable(id, &c, now) {
                metrics::counter!("keygate_cache_total", "cache" => "record", "result" => "hit")
                    .increment(1);
                span.record("cache", "hit");
                return Ok(c);
            }
            self.records.invalidate(id);
        }
        // Boxed for the same reason as the secret check: only a miss pays for its size.
        Box::pin(self.record_miss(id, span)).await
    }

    /// Step 4 on a record-cache miss: one coalesced store read, never caching a state that a
    /// concurrent change made stale.
    async fn record_miss(&self, id: &str, span: &tracing::Span) -> Result<CachedRecord, AuthError> {
        metrics::counter!("keygate_cache_total", "cache" => "record", "result" => "miss")
            .increment(1);
        span.record("cache", "miss");
        let key = id.to_owned();
        for _ in 0..3 {
            let c = self
                .record_flights
                .run(&key, async {
                    // A run that finished just before this one started has cached its read.
                    if let Some(c) = self.records.get(id) {
                        if self.usable(id, &c, self.clock.now_millis()) {
                            return Ok(c);
                        }
                    }
                    let c = self.load(id).await.map_err(Arc::new)?;
                    self.records.insert(key.clone(), c.clone());
                    Ok(c)
                })
                .await
                .map_err(|e| {
                    tracing::warn!(key_id = id, error = %e, "keygate: key store read failed");
                    self.store_unavailable()
                })?;
            let now = self.clock.now_millis();
            if self.usable(id, &c, now) {
                return Ok(c);
            }
            // The key changed while it was being read: never cache the older state.
            self.records.invalidate(id);
        }
        // Changes keep racing our reads; answer from one more read without caching it.
        self.load(id).await.map_err(|_| self.store_unavailable())
    }

    /// One store read of `id`, stamped with the generation at which it started.
    async fn load(&self, id: &str) -> Result<CachedRecord, StoreError> {
        let read_gen = self.generations.current();
        let started = Instant::now();
        let record = match tokio::time::timeout(self.config.store_timeout, self.store.get(id)).await
        {
            Ok(r) => r?,
            Err(_) => return Err(StoreError::Timeout(self.config.store_timeout)),
        };
        metrics::histogram!("keygate_store_seconds", "op" => "get")
            .record(started.elapsed().as_secs_f64());
        let now = self.clock.now_millis();
        let Some(record) = record.filter(|r| r.id == id) else {
            return Ok(CachedRecord {
                state: None,
                fresh_until_ms: now.saturating_add(duration_millis(self.config.absent_ttl)),
                read_gen,
            });
        };
        let scopes = match &self.narrower {
            None => record.scopes.clone(),
            Some(n) => {
                let owner =
                    match tokio::time::timeout(self.config.store_timeout, n.owner_scopes(&record))
                        .await
                    {
                        Ok(r) => r?,
                        Err(_) => return Err(StoreError::Timeout(self.config.store_timeout)),
                    };
                record.scopes.intersection(&owner)
            }
        };
        let expires_at_ms = record.expires_at.map(|t| t.timestamp_millis());
        let mut fresh_until_ms = now.saturating_add(duration_millis(self.config.revocation_window));
        if let Some(e) = expires_at_ms.filter(|&e| e > now) {
            fresh_until_ms = fresh_until_ms.min(e);
        }
        let KeyRecord {
            id,
            prefix,
            name,
            org,
            team,
            owner,
            metadata,
            hash,
            expires_at,
            revoked_at,
            rate_limit,
            ..
        } = record;
        let limiter = rate_limit.map(|limit| self.limiters.bucket(&id, limit));
        let principal = Arc::new(Principal {
            id,
            name,
            org,
            team,
            owner,
            scopes,
            environment: prefix,
            expires_at,
            metadata,
        });
        let state = KeyState {
            fingerprint: fingerprint(&hash),
            hash: hash.into(),
            revoked: revoked_at.is_some(),
            expires_at_ms,
            usage: UsageSlot::new(Arc::clone(&principal)),
            limiter,
            principal,
        };
        Ok(CachedRecord {
            state: Some(Arc::new(state)),
            fresh_until_ms,
            read_gen,
        })
    }

    /// Step 5 on a verdict-cache miss: argon2, throttled per (id, client) and per id,
    /// coalesced per digest. A throttled client gets 429, never a verdict on its secret.
    async fn check_secret(
        &self,
        token: &str,
        id: &str,
        peer: Option<IpAddr>,
        state: &Arc<KeyState>,
        digest: [u8; 32],
        now: i64,
    ) -> Result<bool, AuthError> {
        if let Some(secs) = self.throttled(id, peer, now) {
            return Err(Self::too_many_attempts(id, secs));
        }
        let verdict = match self
            .hash_flights
            .run(&(digest, state.fingerprint), async {
                // A run that finished just before this one started has cached its verdict.
                if let Some(v) = self.verdicts.get(&digest) {
                    if v.applies_to(state, now) {
                        return Ok(v);
                    }
                }
                let v = self
                    .run_hash(token, id, peer, state, now)
                    .await
                    .map_err(Arc::new)?;
                self.verdicts.insert(digest, v);
                if v.accepted && self.hasher.needs_rehash(&state.hash) {
                    self.spawn_rehash(token, id, digest);
                }
                Ok(v)
            })
            .await
        {
            Ok(v) => v,
            Err(e) => match *e {
                HashFailure::Throttled(secs) => return Err(Self::too_many_attempts(id, secs)),
                HashFailure::Busy => {
                    metrics::counter!("keygate_verifier_busy_total").increment(1);
                    tracing::warn!(
                        key_id = id,
                        "keygate: no hashing slot within the queue deadline"
                    );
                    return Err(AuthError::VerifierBusy {
                        retry_after_secs: self.config.retry_after_secs,
                    });
                }
                _ => {
                    tracing::error!(key_id = id, error = %e, "keygate: cannot check secret against stored hash");
                    return Err(self.store_unavailable());
                }
            },
        };
        Ok(verdict.accepted)
    }

    async fn run_hash(
        &self,
        token: &str,
        id: &str,
        peer: Option<IpAddr>,
        state: &KeyState,
        now: i64,
    ) -> Result<Verdict, HashFailure> {
        let permit = match tokio::time::timeout(
            self.config.hash_queue_timeout,
            Arc::clone(&self.hash_permits).acquire_owned(),
        )
        .await
        {
            Ok(permit) => permit.map_err(|e| HashFailure::Task(e.to_string()))?,
            Err(_) => return Err(HashFailure::Busy),
        };
        // Checked again with the permit held: many wrong secrets for one id that arrive
        // together all pass the first check, and would otherwise each run argon2 in turn.
        if let Some(secs) = self.throttled(id, peer, self.clock.now_millis()) {
            return Err(HashFailure::Throttled(secs));
        }
        // Counted as a failure before hashing and forgiven on success: a caller cancelled
        // mid-hash (a closed connection) still counts, so cancelling cannot get round the
        // throttle.
        self.record_failure(id, peer, now);
        let hasher = Arc::clone(&self.hasher);
        let stored = Arc::clone(&state.hash);
        let secret = Zeroizing::new(token.as_bytes().to_vec());
        let started = Instant::now();
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hasher.verify(&secret, &stored)
        })
        .await
        .map_err(|e| HashFailure::Task(e.to_string()))??;
        metrics::histogram!("keygate_hash_seconds").record(started.elapsed().as_secs_f64());
        if ok {
            self.forgive_failure(id, peer);
        }
        let ttl = if ok {
            self.config.verified_ttl
        } else {
            self.config.rejected_ttl
        };
        Ok(Verdict {
            accepted: ok,
            fingerprint: state.fingerprint,
            valid_until_ms: now.saturating_add(duration_millis(ttl)),
        })
    }

    /// Failures per id allowed across all client addresses in one window.
    fn id_failure_budget(&self) -> u32 {
        self.config
            .id_failure_budget
            .unwrap_or_else(|| self.config.max_failures.saturating_mul(4))
    }

    /// `Some(seconds until it may try again)` when `peer` may not have another secret for
    /// `id` checked: it spent its own failures, or the id spent its budget across all
    /// addresses.
    fn throttled(&self, id: &str, peer: Option<IpAddr>, now: i64) -> Option<u32> {
        let window = duration_millis(self.config.failure_window);
        let client = self
            .failures
            .get(&(id.to_owned(), peer))
            .and_then(|w| w.blocks(now, window, self.config.max_failures));
        let all = self
            .id_failures
            .get(id)
            .and_then(|w| w.blocks(now, window, self.id_failure_budget()));
        client.max(all)
    }

    fn record_failure(&self, id: &str, peer: Option<IpAddr>, now: i64) {
        let window = duration_millis(self.config.failure_window);
        let client = self
            .failures
            .get_with((id.to_owned(), peer), || FailureWindow::new(now))
            .count_failure(now, window);
        if client == self.config.max_failures {
            tracing::warn!(
                key_id = id,
                client = ?peer,
                failures = client,
                "keygate: throttling a client of this key id after repeated wrong secrets"
            );
        }
        let all = self
            .id_failures
            .get_with_by_ref(id, || FailureWindow::new(now))
            .count_failure(now, window);
        if all == self.id_failure_budget() {
            tracing::warn!(
                key_id = id,
                failures = all,
                "keygate: throttling every unverified client of this key id: its failure budget is spent"
            );
        }
    }

    /// Takes back the failure counted before a check that succeeded.
    fn forgive_failure(&self, id: &str, peer: Option<IpAddr>) {
        if let Some(w) = self.failures.get(&(id.to_owned(), peer)) {
            w.forgive();
        }
        if let Some(w) = self.id_failures.get(id) {
            w.forgive();
        }
    }

    /// Upgrades a stored hash made with old parameters, after a successful verification.
    fn spawn_rehash(&self, token: &str, id: &str, digest: [u8; 32]) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let secret = Zeroizing::new(token.as_bytes().to_vec());
        let hasher = Arc::clone(&self.hasher);
        let store = Arc::clone(&self.store);
        let permits = Arc::clone(&self.hash_permits);
        let id = id.to_owned();
        let verdicts = self.verdicts.clone();
        let generations = Arc::clone(&self.generations);
        let valid_until_ms = self
            .clock
            .now_millis()
            .saturating_add(duration_millis(self.config.verified_ttl));
        handle.spawn(async move {
            let Ok(permit) = permits.acquire_owned().await else { return };
            let hashed = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                hasher.hash(&secret)
            })
            .await;
            let Ok(Ok(new_hash)) = hashed else {
                tracing::warn!(key_id = %id, "keygate: re-hash failed; keeping the old hash");
                return;
            };
            match store.update_hash(&id, &new_hash).await {
                Ok(true) => {
                    // Re-read the record on next use; the new hash is already known good for
                    // this token, so that read costs no argon2.
                    generations.bump(&id);
                    verdicts.insert(
                        digest,
                        Verdict {
                            accepted: true,
                            fingerprint: fingerprint(&new_hash),
                            valid_until_ms,
                        },
                    );
                    tracing::info!(key_id = %id, "keygate: upgraded stored hash to current parameters");
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(key_id = %id, error = %e, "keygate: could not store upgraded hash"),
            }
        });
    }
}
