//! The verifier's caches and the machinery that keeps them honest.
//!
//! - The **record cache** maps a key id to a [`CachedRecord`]: status, grants, expiry and the
//!   fingerprint of the stored hash, fresh for the revocation window (never past the key's
//!   expiry). Unknown ids are cached as absent for a short time.
//! - The **verdict cache** maps the keyed digest of a presented token to what argon2 said
//!   about it against a given stored hash (accepted for a long time, rejected for a short time).
//!
//! Freshness is judged with the verifier's [`Clock`](crate::Clock), not the cache's own timer,
//! so tests can move time. Every record carries the *generation* at which its store read
//! started; an invalidation stamps the id's stripe with a newer generation, so a store read that
//! started before a revoke can never put the pre-revoke state back (it is seen as stale and
//! read again).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::limiter::KeyLimiter;
use crate::principal::Principal;
use crate::usage::UsageSlot;

const STRIPES: usize = 1024;

/// Invalidation generations, striped by key id.
pub(crate) struct Generations {
    counter: AtomicU64,
    all: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Generations {
    pub(crate) fn new() -> Self {
        Generations {
            counter: AtomicU64::new(1),
            all: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// The generation a store read starting now is stamped with.
    pub(crate) fn current(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }

    fn stripe(&self, id: &str) -> &AtomicU64 {
        let mut h = self.hasher.build_hasher();
        h.write(id.as_bytes());
        // STRIPES is a power of two; the mask keeps the index in bounds.
        &self.stripes[(h.finish() as usize) & (STRIPES - 1)]
    }

    /// Marks every record of `id` read before now as stale.
    pub(crate) fn bump(&self, id: &str) {
        let g = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.stripe(id).fetch_max(g, Ordering::SeqCst);
    }

    /// Marks every record read before now as stale.
    pub(crate) fn bump_all(&self) {
        let g = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        self.all.fetch_max(g, Ordering::SeqCst);
    }

    /// Whether a record of `id` read at generation `read_gen` is still current.
    pub(crate) fn is_current(&self, id: &str, read_gen: u64) -> bool {
        self.all.load(Ordering::SeqCst) <= read_gen
            && self.stripe(id).load(Ordering::SeqCst) <= read_gen
    }
}

/// What the record cache holds for one key: everything needed to answer without the store.
pub(crate) struct KeyState {
    pub(crate) principal: Arc<Principal>,
    pub(crate) hash: Arc<str>,
    pub(crate) fingerprint: u64,
    pub(crate) revoked: bool,
    pub(crate) expires_at_ms: Option<i64>,
    pub(crate) usage: Arc<UsageSlot>,
    /// The key's rate-limit bucket, when it has a limit (shared with the states that refresh
    /// this one while the limit stays the same).
    pub(crate) limiter: Option<Arc<KeyLimiter>>,
}

/// A record-cache entry.
#[derive(Clone)]
pub(crate) struct CachedRecord {
    /// `None`: the id is unknown to the store (negative entry).
    pub(crate) state: Option<Arc<KeyState>>,
    /// Clock time (ms) after which the entry must be read again.
    pub(crate) fresh_until_ms: i64,
    /// Generation at which the store read started.
    pub(crate) read_gen: u64,
}

/// A verdict-cache entry: what argon2 said about one presented token.
#[derive(Clone, Copy)]
pub(crate) struct Verdict {
    pub(crate) accepted: bool,
    /// Fingerprint of the stored hash the token was checked against.
    pub(crate) fingerprint: u64,
    pub(crate) valid_until_ms: i64,
}

/// The fingerprint a verdict carries when its token named an id the store does not know.
const ABSENT: u64 = 0;

impl Verdict {
    /// Whether this verdict answers for `state` at `now`: checked against the hash the record
    /// holds now, and not yet expired.
    pub(crate) fn applies_to(&self, state: &KeyState, now: i64) -> bool {
        self.fingerprint == state.fingerprint && now < self.valid_until_ms
    }

    /// A rejection of a token whose id the store does not know, cached like a rejected
    /// secret of a known id so that both are answered alike.
    pub(crate) fn absent(valid_until_ms: i64) -> Self {
        Verdict {
            accepted: false,
            fingerprint: ABSENT,
            valid_until_ms,
        }
    }

    /// Whether this verdict is a rejection made by [`Verdict::absent`], not yet expired.
    pub(crate) fn applies_to_absent(&self, now: i64) -> bool {
        !self.accepted && self.fingerprint == ABSENT && now < self.valid_until_ms
    }
}

/// 64-bit fingerprint of a stored hash string (changes when the hash is replaced).
pub(crate) fn fingerprint(hash: &str) -> u64 {
    let d = blake3::hash(hash.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

/// The part of a verifier that invalidation reaches into.
pub(crate) trait InvalidationTarget: Send + Sync {
    fn invalidate(&self, id: &str);
    fn invalidate_all(&self);
}

/// A handle that drops cached state of a verifier: given to stores that push changes made by
/// other processes (see [`KeyStore::subscribe`](crate::KeyStore::subscribe)) and to the
/// [`KeyManager`](crate::KeyManager) so local lifecycle changes bite at once.
///
/// It holds the verifier weakly: once the verifier is dropped, calls do nothing and
/// [`Invalidator::is_alive`] turns false (listener tasks should then stop).
#[derive(Clone)]
pub struct Invalidator {
    target: Weak<dyn InvalidationTarget>,
}

impl Invalidator {
    pub(crate) fn new(target: Weak<dyn InvalidationTarget>) -> Self {
        Invalidator { target }
    }

    /// An invalidator connected to nothing (for a manager without a verifier).
    pub fn detached() -> Self {
        struct Nothing;
        impl InvalidationTarget for Nothing {
            fn invalidate(&self, _: &str) {}
            fn invalidate_all(&self) {}
        }
        let w: Weak<Nothing> = Weak::new();
        Invalidator { target: w }
    }

    /// Drops what is cached about key `id`; its next use reads the store.
    pub fn invalidate(&self, id: &str) {
        if let Some(t) = self.target.upgrade() {
            t.invalidate(id);
        }
    }

    /// Drops every cached record (e.g. after a notification listener reconnects, since
    /// notifications may have been missed).
    pub fn invalidate_all(&self) {
        if let Some(t) = self.target.upgrade() {
            t.invalidate_all();
        }
    }

    /// Whether the verifier behind this handle still exists.
    pub fn is_alive(&self) -> bool {
        self.target.strong_count() > 0
    }
}

impl std::fmt::Debug for Invalidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invalidator")
            .field("alive", &self.is_alive())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_after_a_read_started_makes_it_stale() {
        let g = Generations::new();
        let read = g.current();
        assert!(g.is_current("k1", read));
        g.bump("k1");
        assert!(!g.is_current("k1", read));
        assert!(g.is_current("k1", g.current()));
    }

    #[test]
    fn bump_all_makes_every_read_stale() {
        let g = Generations::new();
        let read = g.current();
        g.bump_all();
        assert!(!g.is_current("anything", read));
    }
}
