//! [`VerifierBuilder`] and the [`Settings`] it fills in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::cache::KeyCache;
use super::hashing::HashSlots;
use super::load::ScopeNarrower;
use super::throttle::Throttle;
use super::{Verifier, VerifierCore};
use crate::clock::{Clock, SystemClock};
use crate::flight::Flights;
use crate::hash::{Argon2Hasher, KeyHasher};
use crate::limiter::Limiters;
use crate::store::KeyStore;
use crate::token;
use crate::usage::UsageWriter;

/// Settings of a [`Verifier`]; set through [`VerifierBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) revocation_window: Duration,
    pub(crate) absent_ttl: Duration,
    pub(crate) verified_ttl: Duration,
    pub(crate) rejected_ttl: Duration,
    pub(crate) max_failures: u32,
    pub(crate) failure_window: Duration,
    /// Failures per id across all client addresses; `None`: a multiple of `max_failures`.
    pub(crate) id_failure_budget: Option<u32>,
    pub(crate) hash_queue_timeout: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) retry_after_secs: u32,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown_flush_deadline: Duration,
    pub(crate) accepted_prefixes: Option<Vec<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
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
            shutdown_flush_deadline: Duration::from_secs(10),
            accepted_prefixes: None,
        }
    }
}

/// Builds a [`Verifier`]. Every setting has a production default.
#[must_use = "a builder does nothing until `build` is called"]
pub struct VerifierBuilder {
    store: Arc<dyn KeyStore>,
    pub(super) hasher: Arc<dyn KeyHasher>,
    clock: Arc<dyn Clock>,
    narrower: Option<Arc<dyn ScopeNarrower>>,
    pub(super) capacity: u64,
    pub(super) hash_concurrency: usize,
    pub(super) settings: Settings,
}

impl std::fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("settings", &self.settings)
            .field("capacity", &self.capacity)
            .field("hash_concurrency", &self.hash_concurrency)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// How long a cached record (status, grants) is trusted before the store is read again:
    /// the worst-case delay before a revoke made by *another* process bites (default 30 s).
    ///
    /// Zero means no delay: every request reads the key's record once (twice when its
    /// secret was just checked with argon2, to answer from a record read after the check);
    /// concurrent requests for one key share a read, so a request may be answered from a
    /// read that started up to one store round trip before it arrived.
    /// Verified secrets stay cached either way, so argon2 still runs once per token.
    pub fn revocation_window(mut self, d: Duration) -> Self {
        self.settings.revocation_window = d;
        self
    }
    /// How long an unknown id is remembered as unknown (default 5 s). Zero: never; each
    /// request for an unknown id reads the store once.
    pub fn absent_ttl(mut self, d: Duration) -> Self {
        self.settings.absent_ttl = d;
        self
    }
    /// How long a secret checked against a stored hash stays checked (default 1 h).
    pub fn verified_ttl(mut self, d: Duration) -> Self {
        self.settings.verified_ttl = d;
        self
    }
    /// How long a rejected token is answered without hashing it again (default 60 s).
    pub fn rejected_ttl(mut self, d: Duration) -> Self {
        self.settings.rejected_ttl = d;
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
        self.settings.max_failures = max;
        self.settings.failure_window = window;
        self
    }
    /// Most wrong secrets hashed for one id within the failure window across *all* client
    /// addresses (default 4 × the per-client `max` of [`failure_throttle`](Self::failure_throttle)).
    /// Bounds the argon2 work that forging from many addresses can cause: once spent, every
    /// client's not-yet-verified secrets for the id are answered 429 `too_many_attempts` until
    /// the window ends (verified secrets keep working).
    pub fn id_failure_budget(mut self, max: u32) -> Self {
        self.settings.id_failure_budget = Some(max);
        self
    }
    /// Longest wait for a hashing slot (see [`hash_concurrency`](Self::hash_concurrency))
    /// before answering 503 `verifier_busy` with `Retry-After` (default 2 s). A request
    /// admitted after waiting is answered from a record no older than the revocation window.
    pub fn hash_queue_timeout(mut self, d: Duration) -> Self {
        self.settings.hash_queue_timeout = d;
        self
    }
    /// Longest wait for a store read before answering 503 (default 2 s).
    pub fn store_timeout(mut self, d: Duration) -> Self {
        self.settings.store_timeout = d;
        self
    }
    /// `Retry-After` seconds on 503 `store_unavailable` and `verifier_busy` (default 5).
    pub fn retry_after_secs(mut self, secs: u32) -> Self {
        self.settings.retry_after_secs = secs;
        self
    }
    /// How often last-use times are written (default 60 s).
    pub fn last_used_flush_interval(mut self, d: Duration) -> Self {
        self.settings.flush_interval = d;
        self
    }
    /// How long [`Verifier::shutdown`] keeps retrying the final write of last-use times and
    /// usage counts while the store fails (default 10 s); past it, what could not be written
    /// is reported in an error log line and the error returned.
    pub fn shutdown_flush_deadline(mut self, d: Duration) -> Self {
        self.settings.shutdown_flush_deadline = d;
        self
    }
    /// Accept only keys with these prefixes; others are `malformed_key` (default: any).
    pub fn accept_prefixes<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.settings.accepted_prefixes = Some(prefixes.into_iter().map(Into::into).collect());
        self
    }
    /// Maximum number of cached keys (default 100 000); as many rejected tokens, and as many
    /// ids' failure counts, are kept at most.
    pub fn key_capacity(mut self, n: u64) -> Self {
        self.capacity = n;
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
        let s = &self.settings;
        let keys = KeyCache::new(self.capacity);
        let id_budget = s
            .id_failure_budget
            .unwrap_or_else(|| s.max_failures.saturating_mul(4));
        let throttle = Throttle::new(self.capacity, s.max_failures, id_budget, s.failure_window);
        let limiters = Limiters::new(self.capacity, s.revocation_window, Arc::clone(&self.clock));
        let slots = HashSlots::new(self.hash_concurrency, s.hash_queue_timeout);
        let usage = Arc::new(UsageWriter::new(
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
            s.store_timeout,
            usize::try_from(self.capacity).unwrap_or(usize::MAX),
        ));
        let flush_every = s.flush_interval;
        let core = Arc::new(VerifierCore {
            store: self.store,
            hasher: self.hasher,
            clock: self.clock,
            narrower: self.narrower,
            digest_key: digest_key(),
            keys: Arc::new(keys),
            loads: Flights::new(),
            checks: Flights::new(),
            throttle,
            limiters,
            interner: Default::default(),
            slots,
            usage,
            settings: self.settings,
        });
        core.usage.spawn_flusher(flush_every);
        let verifier = Verifier { core };
        verifier.core.store.subscribe(verifier.invalidator());
        verifier
    }
}

/// The per-process key of the token digests.
fn digest_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    if token::os_random(&mut key[..]).is_err() {
        // Without OS randomness the key falls back to process-unique data; digests are only
        // ever compared inside this process, so this weakens nothing persistent.
        let seed = format!("{:?}{:?}", Instant::now(), std::thread::current().id());
        *key = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    key
}

impl Verifier {
    /// Starts building a verifier over `store`.
    pub fn builder(store: Arc<dyn KeyStore>) -> VerifierBuilder {
        VerifierBuilder {
            store,
            hasher: Arc::new(Argon2Hasher::new()),
            clock: Arc::new(SystemClock),
            narrower: None,
            capacity: 100_000,
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            settings: Settings::default(),
        }
    }
}
