//! The keys the clients present: created, revoked and retired by the churn task.
//!
//! Tokens are secrets: they stay in memory and are never printed; reports name ids only.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::oracle::{KeyFacts, Revocation};
use crate::rng::Rng;

/// One key the clients may present.
#[derive(Debug)]
pub struct PooledKey {
    /// The plaintext token.
    pub token: String,
    /// Two fixed wrong-secret tokens for the same id, reused so most forgeries hit the
    /// rejected-verdict cache (fresh forgeries are made by the clients too).
    pub forged: [String; 2],
    facts: Mutex<KeyFacts>,
}

impl PooledKey {
    /// A key as created.
    pub fn new(token: String, facts: KeyFacts, rng: &mut Rng) -> Self {
        let forged = [forge(&token, rng), forge(&token, rng)];
        PooledKey {
            token,
            forged,
            facts: Mutex::new(facts),
        }
    }

    /// What is known about the key now.
    pub fn facts(&self) -> KeyFacts {
        lock(&self.facts).clone()
    }

    /// The key's id.
    pub fn id(&self) -> String {
        lock(&self.facts).id.clone()
    }

    /// Records that the key's deletion starts now.
    pub fn set_deleted(&self, at_ms: i64) {
        lock(&self.facts).deleted_ms = Some(at_ms);
    }

    /// Records that a revocation started or finished.
    pub fn set_revocation(&self, r: Revocation) {
        lock(&self.facts).revoked = Some(r);
    }
}

/// Locks, ignoring poisoning: a panicking client must not hide the counts of the others.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shared set of keys.
#[derive(Debug, Default)]
pub struct Pool {
    keys: Mutex<Vec<Arc<PooledKey>>>,
}

impl Pool {
    /// Adds a key.
    pub fn publish(&self, key: Arc<PooledKey>) {
        lock(&self.keys).push(key);
    }

    /// A random key, if any.
    pub fn pick(&self, rng: &mut Rng) -> Option<Arc<PooledKey>> {
        let keys = lock(&self.keys);
        if keys.is_empty() {
            return None;
        }
        Some(Arc::clone(&keys[rng.below(keys.len())]))
    }

    /// Every key (a snapshot).
    pub fn all(&self) -> Vec<Arc<PooledKey>> {
        lock(&self.keys).clone()
    }

    /// Removes and returns the keys for which `retire` says yes.
    pub fn retire(&self, mut retire: impl FnMut(&KeyFacts) -> bool) -> Vec<Arc<PooledKey>> {
        let mut keys = lock(&self.keys);
        let mut gone = Vec::new();
        keys.retain(|k| {
            if retire(&k.facts()) {
                gone.push(Arc::clone(k));
                false
            } else {
                true
            }
        });
        gone
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    /// Whether the pool holds no key.
    pub fn is_empty(&self) -> bool {
        lock(&self.keys).is_empty()
    }
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random base62 secret of the right length.
pub fn random_secret(rng: &mut Rng) -> String {
    (0..keygate::token::SECRET_LEN)
        .map(|_| char::from(BASE62[rng.below(BASE62.len())]))
        .collect()
}

/// The same prefix and id with a fresh random secret and a valid checksum: passes every check
/// before argon2.
pub fn forge(token: &str, rng: &mut Rng) -> String {
    let dot = token.find('.').map_or(token.len(), |d| d);
    keygate::token::with_checksum(&format!("{}.{}", &token[..dot], random_secret(rng)))
}

/// A well-formed key with a random id the store does not know.
pub fn unknown_id(rng: &mut Rng) -> String {
    let id: String = (0..keygate::token::ID_LEN)
        .map(|_| char::from(b"0123456789abcdef"[rng.below(16)]))
        .collect();
    keygate::token::with_checksum(&format!("mk_live_{id}.{}", random_secret(rng)))
}

/// A credential that is not a key: a real token with one character changed (the checksum
/// catches it), or printable garbage.
pub fn malformed(token: Option<&str>, rng: &mut Rng) -> String {
    match token {
        Some(t) if rng.below(2) == 0 => {
            let mut b = t.as_bytes().to_vec();
            let i = rng.below(b.len());
            let c = BASE62[rng.below(BASE62.len())];
            b[i] = if b[i] == c { b'_' } else { c };
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => (0..1 + rng.below(100))
            .map(|_| char::from(b'!' + rng.below(94) as u8))
            .collect(),
    }
}
