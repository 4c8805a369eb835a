//! [`Verifier`]: from a presented token to a [`Principal`], or why not.
//!
//! A verification takes these steps (`docs/architecture.md` draws them):
//!
//! 1. Parse and checksum ([`token::parse`]): a malformed key costs no store, cache or hash work.
//! 2. Keyed digest of the token (BLAKE3, keyed with a per-process random key).
//! 3. The key's cache entry by id (`verify/cache.rs`): fresh for the revocation window; on a miss, one
//!    coalesced store read (`verify/load.rs`); unknown ids are cached as absent briefly.
//! 4. The secret: answered from the entry when this token was verified against the stored hash
//!    (the verification slides while the key is used) or rejected recently; otherwise argon2
//!    in a bounded hashing slot (`verify/hashing.rs`), throttled per (id, client address) and per id
//!    (`verify/throttle.rs`), coalesced per token (`verify/secret.rs`).
//! 5. Status, only *after* the secret verified; then the key's own rate limit (GCRA, per
//!    node); scopes are checked by the caller ([`Verifier::require`]).
//! 6. Usage counted on the entry's atomics; written behind with the last-use time (`usage`).
//!
//! Steps 1–5 run synchronously when the entry is fresh and the token's verdict is in it —
//! the hot path: a keyed hash and a cache read. Otherwise the fast path hands what it found
//! (id, digest, entry) to the slow path as a [`PendingVerification`], which resumes from there.

mod builder;
mod cache;
#[cfg(feature = "config")]
mod config;
mod hashing;
mod intern;
mod load;
mod secret;
mod telemetry;
mod throttle;

use std::net::IpAddr;
use std::sync::Arc;

use tracing::Instrument;
use zeroize::{Zeroize, Zeroizing};

pub use builder::VerifierBuilder;
#[cfg(feature = "config")]
pub use config::VerifierConfig;
pub(crate) use hashing::HashSlots;
pub use load::ScopeNarrower;

use self::builder::Settings;
use self::cache::{CachedKey, Digest, KeyCache};
use self::secret::Presented;
use self::telemetry::CacheKind;
use crate::clock::{duration_millis, Clock};
use crate::error::{AuthError, Malformed};
use crate::extract::extract_credential;
use crate::flight::Flights;
use crate::hash::KeyHasher;
use crate::invalidate::{InvalidationTarget, Invalidator};
use crate::limiter::Limiters;
use crate::principal::Principal;
use crate::scope::ScopeRequirement;
use crate::store::{KeyStore, StoreError};
use crate::token;
use crate::usage::UsageWriter;

/// Verifies API keys against a [`KeyStore`], with one cache entry per key.
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
    core: Arc<VerifierCore>,
}

/// Everything the clones of one [`Verifier`] share.
pub(crate) struct VerifierCore {
    store: Arc<dyn KeyStore>,
    hasher: Arc<dyn KeyHasher>,
    clock: Arc<dyn Clock>,
    narrower: Option<Arc<dyn ScopeNarrower>>,
    digest_key: Zeroizing<[u8; 32]>,
    keys: Arc<KeyCache>,
    /// One store read per id at a time.
    loads: Flights<String, Result<Arc<CachedKey>, Arc<StoreError>>>,
    /// One argon2 run per (token digest, fingerprint of the stored hash) at a time.
    checks: Flights<(Digest, u64), Result<bool, Arc<secret::CheckFailure>>>,
    throttle: throttle::Throttle,
    /// Rate-limit buckets of recently cached keys, so a record refresh keeps its bucket.
    limiters: Limiters,
    /// Shared strings and scope sets of the cached keys.
    interner: intern::Interner,
    slots: HashSlots,
    usage: Arc<UsageWriter<CachedKey>>,
    settings: Settings,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (keys, rejections) = self.core.keys.counts();
        f.debug_struct("Verifier")
            .field("settings", &self.core.settings)
            .field("cached_keys", &keys)
            .field("cached_rejections", &rejections)
            .finish_non_exhaustive()
    }
}

/// A verification the cached path could not answer: what it found (the token's id and
/// digest, the key's entry when there was one), for the slow path to resume from.
///
/// Made by [`Verifier::start`]; finish it with [`Verifier::resume`]. It owns a copy of the
/// token (wiped when dropped), so it can move into a `'static` future. Boxed, so that the
/// hot path's answers stay small.
pub struct PendingVerification(Box<Found>);

/// What a [`PendingVerification`] carries.
struct Found {
    /// The verifier whose cache the entry came from: resumed on another one, the verification
    /// starts over there.
    origin: Arc<VerifierCore>,
    token: Zeroizing<String>,
    id: Box<str>,
    digest: Digest,
    entry: Option<Arc<CachedKey>>,
    span: tracing::Span,
}

impl std::fmt::Debug for PendingVerification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingVerification")
            .field("key_id", &self.0.id)
            .finish_non_exhaustive()
    }
}

/// What [`Verifier::start`] found.
#[derive(Debug)]
pub enum Started {
    /// Answered from the cache (or refused as malformed) without awaiting.
    Answered(Result<Arc<Principal>, AuthError>),
    /// A cache missed: [`Verifier::resume`] reads the store and checks the secret as needed.
    Pending(PendingVerification),
}

impl Verifier {
    /// Verifies a token: the principal, or why not. Scopes are not checked here; see
    /// [`Verifier::authorize`]. Every accepted verification spends one request of the key's
    /// own [`RateLimit`](crate::RateLimit), if it has one; once spent, the answer is
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
        match self.start_from(token, || peer) {
            Started::Answered(answer) => answer,
            // Boxed: the slow path's state (store read, argon2, coalescing) would otherwise
            // make every verification's future, cached ones included, kilobytes large.
            Started::Pending(pending) => Box::pin(self.resume(pending, peer)).await,
        }
    }

    /// The synchronous part of a verification: the answer when the key's entry is fresh and
    /// holds this token's verdict (or the token is malformed), else what was found, for
    /// [`Verifier::resume`]. [`Verifier::start_from`] is the same for callers that know the
    /// client's address (keygate's middleware use it).
    pub fn start(&self, token: &str) -> Started {
        self.started(token, None::<fn() -> Option<IpAddr>>)
    }

    /// [`Verifier::start`] for a token presented by the client at the address `peer` gives
    /// (see [`Verifier::verify_from`]): it also answers, without a wait, a client throttled
    /// for the token's id whose secret is not verified yet (429 `too_many_attempts`, what
    /// [`Verifier::resume`] would answer before any store read or hashing), known id or not.
    /// During a forged-secret flood every request of the flood ends here. `peer` is called only
    /// then: a key whose verdict is cached never reads the client's address.
    pub fn start_from(&self, token: &str, peer: impl FnOnce() -> Option<IpAddr>) -> Started {
        self.started(token, Some(peer))
    }

    fn started(&self, token: &str, peer: Option<impl FnOnce() -> Option<IpAddr>>) -> Started {
        let span = telemetry::verify_span();
        match self.core.start(token, &span, peer) {
            Started::Answered(answer) => {
                Started::Answered(telemetry::report_outcome(&span, answer))
            }
            pending => pending,
        }
    }

    /// Finishes a verification [`Verifier::start`] could not answer: reads the store and runs
    /// argon2 as needed, from where the cached path stopped. `peer` is the client's address
    /// when the adapter knows it (see [`Verifier::verify_from`]).
    pub async fn resume(
        &self,
        pending: PendingVerification,
        peer: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let span = pending.0.span.clone();
        let answer = self
            .core
            .resume(pending, peer)
            .instrument(span.clone())
            .await;
        telemetry::report_outcome(&span, answer)
    }

    /// The answer without awaiting, when it needs none (see [`Verifier::start`]); `None` when
    /// a cache missed.
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Principal>, AuthError>> {
        match self.start(token) {
            Started::Answered(answer) => Some(answer),
            Started::Pending(_) => None,
        }
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

    /// Extracts the credential from header values (see [`extract_credential`]) and verifies
    /// it.
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
    /// refused by the route (a missing scope, a spent rate limit) as refused instead.
    ///
    /// The request is counted once either way. Its acceptance is taken back from the key's
    /// cache entry, which holds it even when the entry was replaced since the verification (the
    /// entry replacing it, a fresher read of the key or its upgraded hash, takes over the
    /// counts not yet written). When there is none to take back (a usage flush wrote the
    /// acceptance already, or the entry holding it was evicted from the cache), the request
    /// stays counted as accepted.
    pub fn record_refusal(&self, id: &str) {
        if let Some(entry) = self.core.keys.get(id) {
            self.core.usage.recorder.reclassify_as_refused(&entry);
        }
    }

    /// A handle that drops this verifier's cached state for a key (or all keys).
    pub fn invalidator(&self) -> Invalidator {
        let target: Arc<dyn InvalidationTarget> = Arc::clone(&self.core.keys) as _;
        Invalidator::new(Arc::downgrade(&target))
    }

    /// Writes pending last-use times and usage counts now, in one batched store call each.
    /// Returns how many keys' last-use times were written.
    pub async fn flush_last_used(&self) -> Result<usize, StoreError> {
        self.core.usage.flush().await
    }

    /// Number of keys whose last use is waiting to be written.
    pub fn pending_last_used(&self) -> usize {
        self.core.usage.recorder.pending()
    }

    /// Graceful shutdown: stops the background flusher and writes pending last-use times and
    /// usage counts, retrying while the store fails for up to
    /// [`shutdown_flush_deadline`](VerifierBuilder::shutdown_flush_deadline). Returns how
    /// many keys' last-use times were written; on an error, an error log line has said how
    /// many last-use times and usage rows were not.
    pub async fn shutdown(&self) -> Result<usize, StoreError> {
        self.core.usage.stop();
        self.core
            .usage
            .final_flush(self.core.settings.shutdown_flush_deadline)
            .await
    }

    /// The store this verifier reads.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.core.store
    }

    /// The hasher this verifier checks secrets with.
    pub fn hasher(&self) -> &Arc<dyn KeyHasher> {
        &self.core.hasher
    }

    /// The clock this verifier reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.core.clock
    }

    /// The configured revocation window.
    pub fn revocation_window(&self) -> std::time::Duration {
        self.core.settings.revocation_window
    }

    /// Number of cached keys and of cached rejected tokens (approximate; for metrics and
    /// benchmarks).
    pub fn cached_entries(&self) -> (u64, u64) {
        self.core.keys.counts()
    }

    /// The hashing slots this verifier runs argon2 in (key managers share them).
    pub(crate) fn hash_slots(&self) -> &HashSlots {
        &self.core.slots
    }
}

impl InvalidationTarget for KeyCache {
    fn invalidate(&self, id: &str) {
        KeyCache::invalidate(self, id);
    }

    fn invalidate_all(&self) {
        KeyCache::invalidate_all(self);
    }
}

impl VerifierCore {
    fn store_unavailable(&self) -> AuthError {
        AuthError::StoreUnavailable {
            retry_after_secs: self.settings.retry_after_secs,
        }
    }

    /// The token's shape, checksum and prefix.
    fn parse<'t>(&self, token: &'t str) -> Result<token::ParsedToken<'t>, AuthError> {
        let parsed =
            token::parse(token).map_err(|e| AuthError::MalformedKey(Malformed::Token(e)))?;
        if let Some(accepted) = &self.settings.accepted_prefixes {
            if !accepted.iter().any(|p| p == parsed.prefix()) {
                return Err(AuthError::MalformedKey(Malformed::WrongPrefix));
            }
        }
        Ok(parsed)
    }

    /// The keyed hash of a well-formed token's prefix, id and secret, concatenated: the
    /// separators and the checksum are fixed by the rest, and leaving them out brings a key
    /// with a prefix of up to 8 bytes (`mk_live`, `mk_test`) within one BLAKE3 block (64
    /// bytes), one compression instead of two. The id and secret have fixed lengths, so the
    /// concatenation tells every well-formed token apart.
    fn digest(&self, token: &str) -> Digest {
        const SECRET_END: usize = token::CHECKSUM_LEN;
        const SECRET_START: usize = SECRET_END + token::SECRET_LEN;
        const ID_START: usize = SECRET_START + 1 + token::ID_LEN;
        const PREFIX_END: usize = ID_START + 1;
        let b = token.as_bytes();
        let n = b.len();
        let parts = n
            .checked_sub(PREFIX_END)
            .filter(|_| n <= token::MAX_TOKEN_LEN)
            .and_then(|prefix_end| {
                Some((
                    b.get(..prefix_end)?,
                    b.get(n - ID_START..n - SECRET_START - 1)?,
                    b.get(n - SECRET_START..n - SECRET_END)?,
                ))
            });
        let Some((prefix, id, secret)) = parts else {
            // Not a parsed token (never the case here; no panic either way): the whole of it.
            return *blake3::keyed_hash(&self.digest_key, b).as_bytes();
        };
        let mut input = [0u8; token::MAX_TOKEN_LEN];
        let len = prefix.len() + id.len() + secret.len();
        input[..prefix.len()].copy_from_slice(prefix);
        input[prefix.len()..prefix.len() + id.len()].copy_from_slice(id);
        input[prefix.len() + id.len()..len].copy_from_slice(secret);
        let digest = *blake3::keyed_hash(&self.digest_key, &input[..len]).as_bytes();
        // The copy of the secret is wiped, like every other copy keygate makes of it (the
        // prefix and the id are public: a volatile write per byte is spared them).
        input[prefix.len() + id.len()..len].zeroize();
        digest
    }

    /// The hot path: one parse, one keyed hash, one cache read. Answers when the entry is
    /// fresh and holds the token's verdict; otherwise hands over what it found.
    fn start(
        self: &Arc<Self>,
        token: &str,
        span: &tracing::Span,
        peer: Option<impl FnOnce() -> Option<IpAddr>>,
    ) -> Started {
        let parsed = match self.parse(token) {
            Ok(p) => p,
            Err(e) => return Started::Answered(Err(e)),
        };
        let id = parsed.id();
        let digest = self.digest(token);
        let now = self.clock.now_millis();
        let (entry, fresh) = self.keys.get_checked(id, now);
        if let Some(e) = entry.as_ref().filter(|_| fresh) {
            if let Some(answer) = self.answer_cached(e, &digest, now) {
                telemetry::record(span, "key_id", id);
                telemetry::cache_lookup(span, CacheKind::Record, true);
                if e.key.is_some() {
                    telemetry::cache_lookup(span, CacheKind::Verdict, true);
                }
                return Started::Answered(answer);
            }
            // Not verified (nor refused) yet: a throttled client is answered now, as resuming
            // would, before any store read or hashing.
            let kind = match e.key {
                Some(_) => throttle::IdKind::Known,
                None => throttle::IdKind::Unknown,
            };
            if let Some(secs) = peer.and_then(|peer| self.throttle.blocked(kind, id, peer(), now)) {
                telemetry::record(span, "key_id", id);
                telemetry::cache_lookup(span, CacheKind::Record, true);
                return Started::Answered(Err(telemetry::throttled(id, secs)));
            }
        }
        telemetry::record(span, "key_id", id);
        Started::Pending(PendingVerification(Box::new(Found {
            origin: Arc::clone(self),
            token: Zeroizing::new(token.to_owned()),
            id: id.into(),
            digest,
            entry,
            span: span.clone(),
        })))
    }

    /// The answer from a fresh entry, when it holds the token's verdict.
    #[inline]
    fn answer_cached(
        &self,
        entry: &Arc<CachedKey>,
        digest: &Digest,
        now: i64,
    ) -> Option<Result<Arc<Principal>, AuthError>> {
        let Some(key) = &entry.key else {
            // An unknown id: answered here only when this very token was refused already;
            // otherwise the slow path counts it toward the throttle like a wrong secret.
            return self
                .keys
                .is_rejected_absent(digest, now)
                .then_some(Err(AuthError::InvalidKey));
        };
        let accepted = if entry.verified.accepts(digest, now) {
            entry
                .verified
                .slide(now, duration_millis(self.settings.verified_ttl));
            true
        } else if self.keys.is_rejected(digest, key.fingerprint(), now) {
            false
        } else {
            return None;
        };
        Some(self.decide(accepted, entry, now))
    }

    /// The slow path, resumed from what [`VerifierCore::start`] found.
    async fn resume(
        &self,
        pending: PendingVerification,
        peer: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let Found {
            origin,
            token,
            id,
            digest,
            entry,
            span,
        } = *pending.0;
        // What another verifier found (its cache, its digest key) says nothing here.
        let (digest, entry) = if std::ptr::eq(Arc::as_ptr(&origin), self) {
            (digest, entry)
        } else {
            (self.digest(&token), self.keys.get(&id))
        };
        drop(origin);
        let started = self.clock.now_millis();
        let entry = match entry.filter(|e| self.keys.is_fresh(&id, e, started)) {
            Some(fresh) => {
                telemetry::cache_lookup(&span, CacheKind::Record, true);
                fresh
            }
            None => self.load(&id, &span).await?,
        };
        // Read after the store read: a key that expired meanwhile is answered expired.
        let now = self.clock.now_millis();
        if entry.key.is_none() {
            return Err(self.refuse_unknown(&id, peer, digest, now));
        }
        // Another request may have settled this token since the fast path looked.
        if let Some(answer) = self.answer_cached(&entry, &digest, now) {
            telemetry::cache_lookup(&span, CacheKind::Verdict, true);
            return answer;
        }
        telemetry::cache_lookup(&span, CacheKind::Verdict, false);
        // Boxed: the cold path's state (argon2, coalescing) would otherwise make every
        // verification's future large.
        Box::pin(self.check_and_decide(&token, &id, peer, entry, digest, now)).await
    }

    /// The secret checked by argon2, then status and rate limit. The check may have waited
    /// for a hashing slot: an accepted secret is answered from a record no older than the
    /// revocation window (read again when the one it started with aged out meanwhile).
    async fn check_and_decide(
        &self,
        token: &str,
        id: &str,
        peer: Option<IpAddr>,
        entry: Arc<CachedKey>,
        digest: Digest,
        now: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        let Some(key) = &entry.key else {
            return Err(AuthError::InvalidKey);
        };
        let presented = Presented {
            token,
            id,
            digest,
            peer,
        };
        let accepted = self.check_secret(&presented, &entry, key, now).await?;
        let later = self.clock.now_millis();
        if !accepted || self.keys.is_fresh(id, &entry, later) {
            return self.decide(accepted, &entry, later);
        }
        let span = tracing::Span::current();
        let fresh = self.load(id, &span).await?;
        let Some(fresh_key) = &fresh.key else {
            // Deleted while the secret was being checked.
            return Err(AuthError::InvalidKey);
        };
        if fresh_key.same_hash(key) || fresh.verified.accepts(&digest, later) {
            // The same stored hash (or a verification carried to the new one): proven.
            return self.decide(true, &fresh, later);
        }
        // The stored hash changed meanwhile: check against the new one, once.
        let accepted = self
            .check_secret(&presented, &fresh, fresh_key, later)
            .await?;
        self.decide(accepted, &fresh, later)
    }

    /// The answer once the secret was checked: status only after the secret verified, then
    /// the key's rate limit; the request counted in the key's usage. A request refused for its
    /// rate limit still counts as a use of the key (`last_used_at`): it was presented with its
    /// right secret.
    #[inline]
    fn decide(
        &self,
        accepted: bool,
        entry: &Arc<CachedKey>,
        now: i64,
    ) -> Result<Arc<Principal>, AuthError> {
        let Some(key) = &entry.key else {
            return Err(AuthError::InvalidKey);
        };
        let refusal = if !accepted {
            AuthError::InvalidKey
        } else if key.is_revoked() {
            // Only now, with the secret proven, may the key's state be revealed.
            AuthError::RevokedKey
        } else if key.is_expired(now) {
            AuthError::ExpiredKey
        } else {
            if let Some(limiter) = &key.limiter {
                if let Err(retry_after_secs) = limiter.check() {
                    // A use of the key (last_used_at), counted as refused.
                    self.usage.recorder.touch_refused(entry, now);
                    return Err(telemetry::rate_limited(
                        &key.principal.id,
                        limiter.limit(),
                        retry_after_secs,
                    ));
                }
            }
            self.usage.recorder.touch(entry, now);
            return Ok(Arc::clone(&key.principal));
        };
        self.usage.recorder.refuse(entry);
        Err(refusal)
    }
}
