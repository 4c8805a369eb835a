//! The verifier's cache: **one entry per key id**, and a short-lived cache of rejected tokens.
//!
//! A [`CachedKey`] holds what the store said about an id (status and expiry, grants, the stored
//! hash kept decoded), the key's usage counters since the last flush, and (the first 128 bits
//! of the digest of) the one token verified against that hash, with how long that verification stands. It is fresh for the
//! revocation window (never past the key's expiry); an id the store does not know is cached as
//! absent for a short time.
//!
//! The layout is kept small (one cached key is one entry of 152 bytes plus its principal):
//! known keys are keyed by an 8-byte [`IdHash`] (their id is stored once, in the principal;
//! every lookup compares it, so two ids with one hash only cost a miss);
//! the stored hash is a [`StoredHash`] (56 bytes inline for argon2id); status and expiry share
//! one word; the usage counters are inline, not a separate allocation.
//!
//! Rejected tokens are kept apart, by the keyed digest of the token, for a short time: a
//! client retrying a wrong secret costs a cache read, not an argon2 run.
//!
//! Entries leave by eviction (capacity) or replacement; a stale one stays until then. An entry
//! whose key was used since the last usage flush also stays alive in the usage recorder's
//! queue until that flush (at most one flush interval, 60 s by default, and the queue is
//! flushed at once when it holds as many entries as the cache): what the queue pins beyond the
//! cache is at most the capacity again.
//!
//! Freshness is judged with the verifier's [`Clock`](crate::Clock), not the cache's own timer,
//! so tests can move time. Every entry carries the *generation* at which its store read
//! started; an invalidation stamps the id's stripe with a newer generation, so a store read that
//! started before a revoke can never put the pre-revoke state back (it is seen as stale and
//! read again). A stale entry stays in the cache until it is replaced: its verified token is
//! carried over to the entry read after it when the stored hash did not change.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::hash::StoredHash;
use crate::limiter::KeyLimiter;
use crate::principal::Principal;
use crate::usage::{CountedKey, UsageCounters};

/// The keyed BLAKE3 digest of a presented token.
pub(crate) type Digest = [u8; 32];

/// What a cache entry keeps of the digest of its verified token: the first 128 bits. The
/// digest is keyed with a per-process secret key, so a forged token matches the kept half
/// with probability 2^-128 per try: BLAKE3's own claimed security level, far out of reach
/// online (MAC tags truncated to 128 bits are common practice, e.g. HMAC-SHA-256-128 in
/// IPsec). Half a digest keeps [`CachedKey`] at 152 bytes: one 176-byte allocation per cached
/// key instead of 192 (BENCHMARKS.md, "Memory per cached key").
type KeptDigest = [u8; 16];

#[inline]
fn kept(digest: &Digest) -> KeptDigest {
    let (first, _) = digest.split_first_chunk::<16>().unwrap_or((&[0; 16], &[]));
    *first
}

const STRIPES: usize = 1024;

/// A key id's hash with the cache's per-process random seed: the key of its cache entry and
/// the stripe of its generation (the id is hashed once per request for both).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct IdHash(u64);

/// Invalidation generations, striped by key id.
pub(crate) struct Generations {
    counter: AtomicU64,
    all: AtomicU64,
    stripes: Box<[AtomicU64]>,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Generations {
            counter: AtomicU64::new(1),
            all: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The generation a store read starting now is stamped with.
    pub(crate) fn current(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }

    #[inline]
    fn stripe(&self, id: IdHash) -> &AtomicU64 {
        // STRIPES is a power of two; the mask keeps the index in bounds.
        &self.stripes[(id.0 as usize) & (STRIPES - 1)]
    }

    /// Marks every entry of the id read before now as stale.
    pub(crate) fn bump(&self, id: IdHash) {
        let g = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.stripe(id).fetch_max(g, Ordering::SeqCst);
    }

    /// Marks every entry read before now as stale.
    pub(crate) fn bump_all(&self) {
        let g = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.all.fetch_max(g, Ordering::SeqCst);
    }

    /// Whether an entry of the id read at generation `read_gen` is still current.
    #[inline]
    pub(crate) fn is_current(&self, id: IdHash, read_gen: u64) -> bool {
        self.all.load(Ordering::SeqCst) <= read_gen
            && self.stripe(id).load(Ordering::SeqCst) <= read_gen
    }
}

/// What the store said about a known key: everything needed to answer without the store.
///
/// Laid out to fit a small allocation: the principal (shared with the requests it answers),
/// the stored hash decoded, the status and expiry in one word, the usage counters inline.
pub(crate) struct KeyState {
    pub(crate) principal: Arc<Principal>,
    /// The stored hash, decoded when it is a canonical argon2id string (see [`StoredHash`]).
    pub(crate) hash: StoredHash,
    /// Until when the key may be used (ms): [`NEVER`] when it does not expire, [`REVOKED`]
    /// when it is revoked.
    ends_ms: i64,
    /// Requests counted since the last flush (written behind by the usage recorder).
    pub(crate) usage: UsageCounters,
    /// The key's rate-limit bucket, when it has a limit (shared with the entries that refresh
    /// this one while the limit stays the same).
    pub(crate) limiter: Option<Arc<KeyLimiter>>,
}

/// [`KeyState`]'s end of a key that does not expire.
const NEVER: i64 = i64::MAX;
/// [`KeyState`]'s end of a revoked key (before any expiry a store can hold).
const REVOKED: i64 = i64::MIN;

impl KeyState {
    pub(crate) fn new(
        principal: Arc<Principal>,
        hash: StoredHash,
        revoked: bool,
        expires_at_ms: Option<i64>,
        limiter: Option<Arc<KeyLimiter>>,
    ) -> Self {
        let ends_ms = match (revoked, expires_at_ms) {
            (true, _) => REVOKED,
            (false, None) => NEVER,
            // Any expiry is at least REVOKED + 1: an expired key stays told apart from a
            // revoked one.
            (false, Some(e)) => e.max(REVOKED + 1),
        };
        KeyState {
            principal,
            hash,
            ends_ms,
            usage: UsageCounters::new(),
            limiter,
        }
    }

    /// Fingerprint of the stored hash: tells verifications made against another hash apart
    /// (see [`StoredHash::fingerprint`]).
    #[inline]
    pub(crate) fn fingerprint(&self) -> u64 {
        self.hash.fingerprint()
    }

    /// Whether `other` holds the very same stored hash (equality, not fingerprint: a store
    /// edit that changes only the parameters or the salt is another hash).
    #[inline]
    pub(crate) fn same_hash(&self, other: &KeyState) -> bool {
        self.hash == other.hash
    }

    #[inline]
    pub(crate) fn is_revoked(&self) -> bool {
        self.ends_ms == REVOKED
    }

    /// Whether the key (not revoked) had expired at `now`.
    #[inline]
    pub(crate) fn is_expired(&self, now: i64) -> bool {
        self.ends_ms != REVOKED && self.ends_ms <= now
    }

    /// Neither revoked nor expired at `now`.
    #[inline]
    pub(crate) fn is_active(&self, now: i64) -> bool {
        self.ends_ms > now
    }
}

/// The token verified against the stored hash of the entry's key: its digest, and until when
/// the verification stands (it slides while the key is used). An entry's stored hash never
/// changes (an upgraded hash makes a new entry), so the verification is against that hash:
/// it is carried into another entry only when that entry holds the same hash. Set once per
/// entry, read with atomics: the hot path never writes to the cache.
pub(crate) struct VerifiedToken {
    digest: OnceLock<KeptDigest>,
    valid_until_ms: AtomicI64,
}

impl VerifiedToken {
    fn none() -> Self {
        VerifiedToken {
            digest: OnceLock::new(),
            valid_until_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether `digest` was verified against the entry's stored hash and still stands at
    /// `now`.
    ///
    /// The digests are compared with `==`, not in constant time: they are keyed with a
    /// per-process secret key, so learning how many leading bytes of one's own token's digest
    /// match tells nothing about any token (the verdict cache this replaces compared them by
    /// hash-map lookup, just as variable in time). The secret itself is only ever checked by
    /// argon2.
    #[inline]
    pub(crate) fn accepts(&self, digest: &Digest, now: i64) -> bool {
        match self.digest.get() {
            Some(d) => *d == kept(digest) && now < self.valid_until_ms.load(Ordering::Acquire),
            None => false,
        }
    }

    /// Records that `digest` verified against the entry's stored hash, standing until
    /// `valid_until_ms`. An entry holds one token: a key has one secret.
    pub(crate) fn record(&self, digest: Digest, valid_until_ms: i64) {
        self.record_kept(kept(&digest), valid_until_ms);
    }

    fn record_kept(&self, digest: KeptDigest, valid_until_ms: i64) {
        let d = *self.digest.get_or_init(|| digest);
        if d == digest {
            self.valid_until_ms
                .fetch_max(valid_until_ms, Ordering::AcqRel);
        }
    }

    /// Keeps the verification of a key in use: renewed to `now + ttl` once less than half of
    /// `ttl` is left, so it lapses only once the key goes unused.
    #[inline]
    pub(crate) fn slide(&self, now: i64, ttl_ms: i64) {
        let until = self.valid_until_ms.load(Ordering::Relaxed);
        if until.saturating_sub(now) < ttl_ms / 2 {
            self.valid_until_ms
                .fetch_max(now.saturating_add(ttl_ms), Ordering::AcqRel);
        }
    }

    /// This verification, carried into the entry read after this one (which holds the same
    /// stored hash).
    fn carry_into(&self, next: &VerifiedToken) {
        if let Some(d) = self.digest.get() {
            next.record_kept(*d, self.valid_until_ms.load(Ordering::Acquire));
        }
    }
}

/// The cache entry of one key id. A known key's id is its principal's (the cache is keyed by
/// the id's [`IdHash`], so the id is stored once per key).
pub(crate) struct CachedKey {
    /// `None`: the id is unknown to the store (negative entry).
    pub(crate) key: Option<KeyState>,
    /// Clock time (ms) after which the entry must be read again.
    pub(crate) fresh_until_ms: i64,
    /// Generation at which the store read started.
    pub(crate) read_gen: u64,
    /// The token verified against `key`'s hash, if any.
    pub(crate) verified: VerifiedToken,
}

impl CachedKey {
    /// A new entry; the verification of `previous` is carried over when the stored hash is
    /// the same.
    pub(crate) fn new(
        key: Option<KeyState>,
        fresh_until_ms: i64,
        read_gen: u64,
        previous: Option<&CachedKey>,
    ) -> Self {
        let verified = VerifiedToken::none();
        if let (Some(state), Some(prev)) = (&key, previous) {
            if prev.key.as_ref().is_some_and(|p| p.same_hash(state)) {
                prev.verified.carry_into(&verified);
            }
        }
        CachedKey {
            key,
            fresh_until_ms,
            read_gen,
            verified,
        }
    }
}

impl CachedKey {
    /// Whether this is the entry of the known key `id` (told apart from another id of the
    /// same hash).
    #[inline]
    fn is_known_as(&self, id: &str) -> bool {
        self.key
            .as_ref()
            .is_some_and(|k| same_id(&k.principal.id, id))
    }

    /// This entry with its key's stored hash replaced by `hash` (an upgrade this process
    /// made), holding `digest` as verified against it until `valid_until_ms`. Read generation
    /// and freshness stay those of this entry: nothing else about the key was read.
    pub(crate) fn with_upgraded_hash(
        &self,
        hash: &str,
        digest: Digest,
        valid_until_ms: i64,
    ) -> Option<CachedKey> {
        let key = self.key.as_ref()?;
        let state = KeyState {
            principal: Arc::clone(&key.principal),
            hash: StoredHash::new(hash.to_owned()),
            ends_ms: key.ends_ms,
            usage: UsageCounters::new(),
            limiter: key.limiter.clone(),
        };
        let verified = VerifiedToken::none();
        verified.record(digest, valid_until_ms);
        Some(CachedKey {
            key: Some(state),
            fresh_until_ms: self.fresh_until_ms,
            read_gen: self.read_gen,
            verified,
        })
    }
}

impl CountedKey for CachedKey {
    #[inline]
    fn counted(&self) -> Option<(&str, &UsageCounters)> {
        self.key
            .as_ref()
            .map(|k| (k.principal.id.as_str(), &k.usage))
    }
}

/// `a == b`, without a call to `memcmp` for ids of 8 to 16 bytes (the ids keygate makes are
/// 16): two overlapping 8-byte words each. On the hot path, once per request.
#[inline]
fn same_id(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map(u64::from_ne_bytes)
    };
    if (8..=16).contains(&a.len()) {
        let last = a.len() - 8;
        word(a, 0) == word(b, 0) && word(a, last) == word(b, last)
    } else {
        a == b
    }
}

/// A rejected token: the fingerprint of the hash it failed against ([`ABSENT`] when its id is
/// unknown) and until when the rejection stands.
#[derive(Clone, Copy)]
pub(crate) struct Rejection {
    fingerprint: u64,
    valid_until_ms: i64,
}

/// The fingerprint a rejection carries when its token named an id the store does not know.
const ABSENT: u64 = 0;

/// The cache of keys by id, the rejected tokens, and the generations that keep both honest.
///
/// The maps are `quick_cache` caches (S3-FIFO eviction by count): freshness is judged by the
/// entries' own times on the verifier's clock, so no timer-based expiry is needed, and its
/// per-entry overhead is a fraction of moka's (BENCHMARKS.md, "memory per cached key").
///
/// Known keys are keyed by the [`IdHash`] of their id (8 bytes, no copy of the id: the entry
/// holds it in its principal, and a lookup checks it, so two ids of the same hash are told
/// apart — the later one replaces the other, which is then read again when next used).
pub(crate) struct KeyCache {
    entries: quick_cache::sync::Cache<IdHash, Arc<CachedKey>>,
    /// Ids the store does not know, apart: attacker-chosen ids cannot evict real keys (whose
    /// entries hold their verified tokens: an eviction costs an argon2 run).
    absent: quick_cache::sync::Cache<Box<str>, Arc<CachedKey>>,
    rejections: quick_cache::sync::Cache<Digest, Rejection>,
    generations: Generations,
    /// Seeds [`IdHash`] (random per process).
    id_hasher: quick_cache::DefaultHashBuilder,
}

impl KeyCache {
    /// At most about `capacity` keys and as many rejected tokens.
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX).max(16);
        KeyCache {
            entries: quick_cache::sync::Cache::new(capacity),
            absent: quick_cache::sync::Cache::new(capacity),
            rejections: quick_cache::sync::Cache::new(capacity),
            generations: Generations::new(),
            id_hasher: quick_cache::DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn hash(&self, id: &str) -> IdHash {
        IdHash(self.id_hasher.hash_one(id))
    }

    #[inline]
    fn get_hashed(&self, id: &str, hash: IdHash) -> Option<Arc<CachedKey>> {
        match self.entries.get(&hash) {
            Some(e) if e.is_known_as(id) => Some(e),
            _ => self.absent.get(id),
        }
    }

    /// The entry of `id`, fresh or not.
    #[inline]
    pub(crate) fn get(&self, id: &str) -> Option<Arc<CachedKey>> {
        self.get_hashed(id, self.hash(id))
    }

    /// The entry of `id`, fresh or not, and whether it is fresh at `now` (see
    /// [`KeyCache::is_fresh`]): the hot path's one lookup, hashing the id once.
    #[inline]
    pub(crate) fn get_checked(&self, id: &str, now: i64) -> (Option<Arc<CachedKey>>, bool) {
        let hash = self.hash(id);
        let entry = self.get_hashed(id, hash);
        let fresh = entry.as_deref().is_some_and(|e| {
            now < e.fresh_until_ms && self.generations.is_current(hash, e.read_gen)
        });
        (entry, fresh)
    }

    /// Whether `entry` of `id` may be answered from at `now`: within its freshness, and read
    /// after the last change made to the key in this process.
    #[inline]
    pub(crate) fn is_fresh(&self, id: &str, entry: &CachedKey, now: i64) -> bool {
        now < entry.fresh_until_ms && self.is_current(id, entry)
    }

    /// Whether `entry` of `id` was read after the last change made to the key in this
    /// process: a record just read for a request may answer that request (even when a zero
    /// revocation window makes it stale at once) unless a change raced the read.
    #[inline]
    pub(crate) fn is_current(&self, id: &str, entry: &CachedKey) -> bool {
        self.generations.is_current(self.hash(id), entry.read_gen)
    }

    pub(crate) fn insert(&self, id: &str, entry: Arc<CachedKey>) {
        let hash = self.hash(id);
        if entry.key.is_some() {
            self.entries.insert(hash, entry);
            self.absent.remove(id);
        } else {
            self.absent.insert(id.into(), entry);
            self.entries.remove_if(&hash, |e| e.is_known_as(id));
        }
    }

    /// The generation a store read starting now is stamped with.
    pub(crate) fn generation(&self) -> u64 {
        self.generations.current()
    }

    /// Makes the entry of `id` stale (its next use reads the store).
    pub(crate) fn invalidate(&self, id: &str) {
        self.generations.bump(self.hash(id));
    }

    /// Makes every entry stale. Entries stay until replaced, so verified tokens carry over.
    pub(crate) fn invalidate_all(&self) {
        self.generations.bump_all();
    }

    /// Whether `digest` was rejected against the hash with `fingerprint` and the rejection
    /// still stands at `now`.
    #[inline]
    pub(crate) fn is_rejected(&self, digest: &Digest, fingerprint: u64, now: i64) -> bool {
        self.rejections
            .get(digest)
            .is_some_and(|r| r.fingerprint == fingerprint && now < r.valid_until_ms)
    }

    /// Whether `digest` names an unknown id and was refused already (still standing at `now`).
    #[inline]
    pub(crate) fn is_rejected_absent(&self, digest: &Digest, now: i64) -> bool {
        self.is_rejected(digest, ABSENT, now)
    }

    /// Remembers that `digest` failed against the hash with `fingerprint`.
    pub(crate) fn reject(&self, digest: Digest, fingerprint: u64, valid_until_ms: i64) {
        self.rejections.insert(
            digest,
            Rejection {
                fingerprint,
                valid_until_ms,
            },
        );
    }

    /// Refuses a token naming an unknown id, counting it once however many requests carry it
    /// at once: `Ok(())` (answer `invalid_key`) when it was refused already or is being
    /// refused right now; otherwise `count` runs (it counts the failure, or answers that the
    /// client is throttled) and, unless it refused, the rejection is remembered until
    /// `valid_until_ms`.
    pub(crate) fn refuse_absent_once<E>(
        &self,
        digest: Digest,
        now: i64,
        valid_until_ms: i64,
        count: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        use quick_cache::sync::GuardResult;
        let rejection = Rejection {
            fingerprint: ABSENT,
            valid_until_ms,
        };
        match self
            .rejections
            .get_value_or_guard(&digest, Some(std::time::Duration::ZERO))
        {
            GuardResult::Value(r) if r.fingerprint == ABSENT && now < r.valid_until_ms => Ok(()),
            GuardResult::Value(_) => {
                count()?;
                self.rejections.insert(digest, rejection);
                Ok(())
            }
            GuardResult::Guard(guard) => {
                count()?;
                let _ = guard.insert(rejection);
                Ok(())
            }
            // Another request is refusing this very token right now; it counts.
            GuardResult::Timeout => Ok(()),
        }
    }

    /// Number of cached keys and rejected tokens.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let n = |len: usize| u64::try_from(len).unwrap_or(u64::MAX);
        (n(self.entries.len()), n(self.rejections.len()))
    }
}

/// The fingerprint of a stored hash string, as its cached entry has it (never [`ABSENT`]: see
/// [`StoredHash::fingerprint`]).
pub(crate) fn fingerprint(hash: &str) -> u64 {
    StoredHash::new(hash.to_owned()).fingerprint()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_after_a_read_started_makes_it_stale() {
        let g = Generations::new();
        let read = g.current();
        assert!(g.is_current(IdHash(1), read));
        g.bump(IdHash(1));
        assert!(!g.is_current(IdHash(1), read));
        assert!(g.is_current(IdHash(1), g.current()));
    }

    #[test]
    fn bump_all_makes_every_read_stale() {
        let g = Generations::new();
        let read = g.current();
        g.bump_all();
        assert!(!g.is_current(IdHash(7), read));
    }

    #[test]
    fn a_verified_token_accepts_only_its_digest_and_its_time() {
        let v = VerifiedToken::none();
        assert!(!v.accepts(&[1; 32], 0));
        v.record([1; 32], 100);
        assert!(v.accepts(&[1; 32], 99));
        assert!(!v.accepts(&[1; 32], 100), "lapsed");
        assert!(!v.accepts(&[2; 32], 0), "another token");
        v.record([2; 32], 1000);
        assert!(!v.accepts(&[2; 32], 0), "one token per entry");
    }

    #[test]
    fn a_verification_slides_only_past_half_its_ttl() {
        let v = VerifiedToken::none();
        v.record([1; 32], 100);
        v.slide(40, 100);
        assert!(!v.accepts(&[1; 32], 100), "more than half left: unchanged");
        v.slide(60, 100);
        assert!(v.accepts(&[1; 32], 159));
        assert!(!v.accepts(&[1; 32], 160));
    }

    #[test]
    fn a_verification_carries_over_only_to_the_same_hash() {
        let old = known_with("k1", HASH_A);
        old.verified.record([1; 32], 100);
        let same = CachedKey::new(Some(state("k1", HASH_A)), 0, 0, Some(&old));
        assert!(same.verified.accepts(&[1; 32], 50));
        let other = CachedKey::new(Some(state("k1", HASH_B)), 0, 0, Some(&old));
        assert!(!other.verified.accepts(&[1; 32], 50));
    }

    #[test]
    fn a_verified_token_is_told_apart_by_every_byte_of_the_kept_half() {
        let v = VerifiedToken::none();
        v.record([7; 32], 100);
        assert!(v.accepts(&[7; 32], 50));
        for i in 0..16 {
            let mut other = [7; 32];
            other[i] ^= 1;
            assert!(!v.accepts(&other, 50), "byte {i}");
        }
        let mut tail = [7; 32];
        tail[16..].fill(9);
        assert!(v.accepts(&tail, 50), "the second half is not kept");
        assert!(!v.accepts(&[7; 32], 100), "lapsed");
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_stays_small() {
        // With the `Arc`'s two counts, 168 bytes: one 176-byte allocation of the system
        // allocator per cached key (BENCHMARKS.md, "Memory per cached key").
        let size = std::mem::size_of::<CachedKey>();
        assert!(size <= 152, "CachedKey is {size} bytes");
    }

    #[test]
    fn status_and_expiry_share_one_word_and_stay_apart() {
        let s = |revoked, expires| {
            let principal = state("k", HASH_A).principal;
            KeyState::new(
                principal,
                StoredHash::new(HASH_A.into()),
                revoked,
                expires,
                None,
            )
        };
        let never = s(false, None);
        assert!(!never.is_revoked() && !never.is_expired(i64::MAX - 1) && never.is_active(0));
        let expiring = s(false, Some(100));
        assert!(!expiring.is_revoked() && !expiring.is_expired(99) && expiring.is_active(99));
        assert!(expiring.is_expired(100) && !expiring.is_active(100));
        let ancient = s(false, Some(i64::MIN));
        assert!(!ancient.is_revoked() && ancient.is_expired(0));
        let revoked = s(true, Some(100));
        assert!(revoked.is_revoked() && !revoked.is_expired(200) && !revoked.is_active(0));
    }

    const HASH_A: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA";
    const HASH_B: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaB";

    fn known(id: &str) -> Arc<CachedKey> {
        Arc::new(known_with(id, HASH_A))
    }

    fn known_with(id: &str, hash: &str) -> CachedKey {
        CachedKey::new(Some(state(id, hash)), i64::MAX, 1, None)
    }

    fn state(id: &str, hash: &str) -> KeyState {
        let principal = Arc::new(Principal {
            id: id.into(),
            name: "".into(),
            org: "o".into(),
            team: None,
            owner: None,
            scopes: crate::scope::ScopeSet::new(),
            environment: "mk_test".into(),
            expires_at: None,
            metadata: serde_json::Value::Null.into(),
        });
        KeyState::new(
            principal,
            StoredHash::new(hash.to_owned()),
            false,
            None,
            None,
        )
    }

    #[test]
    fn ids_are_compared_whole() {
        for (a, b) in [
            ("", ""),
            ("a", "a"),
            ("0123456789abcdef", "0123456789abcdef"),
            ("01234567", "01234567"),
            ("0123456789ab", "0123456789ab"),
            ("0123456789abcdef0", "0123456789abcdef0"),
        ] {
            assert!(same_id(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("a", "b"),
            ("0123456789abcdef", "0123456789abcdee"),
            ("0123456789abcdef", "1123456789abcdef"),
            ("0123456789abcdef", "01234567x9abcdef"),
            ("0123456789abc", "0123456789abd"),
            ("0123456789abcdef", "0123456789abcdef0"),
            ("0123456789abcdef01", "0123456789abcdef02"),
        ] {
            assert!(!same_id(a, b), "{a} {b}");
        }
    }

    #[test]
    fn an_entry_is_found_only_under_its_own_id_even_when_another_id_has_its_hash() {
        let cache = KeyCache::new(16);
        cache.insert("k1", known("k1"));
        assert!(cache.get("k1").is_some_and(|e| e.is_known_as("k1")));
        // Another id's entry under k2's hash, as a hash collision would put it.
        cache.entries.insert(cache.hash("k2"), known("k1"));
        assert!(cache.get("k2").is_none(), "k1's entry is not k2's");
        let (entry, fresh) = cache.get_checked("k2", 0);
        assert!(entry.is_none() && !fresh);
        // An unknown id does not remove another id's entry of the same hash.
        cache.insert("k2", Arc::new(CachedKey::new(None, i64::MAX, 1, None)));
        assert!(cache.entries.get(&cache.hash("k2")).is_some());
        assert!(cache.get("k2").is_some_and(|e| e.key.is_none()));
    }
}
