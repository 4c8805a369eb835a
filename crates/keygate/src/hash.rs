//! Hashing of stored keys: the [`KeyHasher`] trait and its argon2id implementation.
//!
//! Only a hash of the full token is ever stored. [`Argon2Hasher`] produces PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$…`) with OWASP's parameters by default. When the
//! configured parameters change, [`KeyHasher::needs_rehash`] tells the verifier to upgrade a
//! stored hash after its next successful verification.

use std::fmt;

use std::sync::{Arc, Mutex, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Hashing failed for a reason other than a wrong secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The stored hash cannot be parsed (corrupt row, unknown algorithm).
    #[error("stored hash is not a valid PHC string for this hasher: {0}")]
    Malformed(String),
    /// The hasher itself failed (bad parameters, no memory, no randomness).
    #[error("hashing failed: {0}")]
    Internal(String),
}

/// Computes and checks stored key hashes. Both calls are CPU-heavy by design; the verifier
/// runs them on the blocking pool, at most N at once.
pub trait KeyHasher: Send + Sync + 'static {
    /// Hashes `secret` to a self-describing string (a PHC string for argon2).
    fn hash(&self, secret: &[u8]) -> Result<String, HashError>;

    /// Whether `secret` matches `stored`. A wrong secret is `Ok(false)`, not an error.
    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError>;

    /// Whether `stored` was made with *weaker* parameters than the current ones, and should be
    /// replaced after the next successful verification. It must never answer `true` both
    /// ways for two hashers, or two deployments sharing a store (say, during a parameter
    /// change) would re-hash every key back and forth.
    fn needs_rehash(&self, stored: &str) -> bool {
        let _ = stored;
        false
    }
}

/// argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "config", derive(serde::Deserialize))]
#[cfg_attr(feature = "config", serde(deny_unknown_fields))]
pub struct Argon2Params {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Iterations (OWASP: 2).
    pub iterations: u32,
    /// Parallelism (OWASP: 1).
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's recommendation: m=19456 KiB, t=2, p=1.
    pub const OWASP: Argon2Params = Argon2Params {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

impl Argon2Params {
    /// The strongest parameters a stored hash may name by default (m = 256 MiB, t = 16,
    /// p = 16): a row claiming more is refused as corrupt instead of costing each forged
    /// request that much memory and time. [`Argon2Hasher::with_stored_limit`] changes it; a
    /// hasher always accepts its own parameters.
    pub const STORED_LIMIT: Argon2Params = Argon2Params {
        memory_kib: 262_144,
        iterations: 16,
        parallelism: 16,
    };

    /// Whether any of `self` is above the same parameter of `limit`.
    fn exceeds(&self, limit: &Argon2Params) -> bool {
        self.memory_kib > limit.memory_kib
            || self.iterations > limit.iterations
            || self.parallelism > limit.parallelism
    }

    /// The larger of each parameter.
    fn max(self, other: Argon2Params) -> Argon2Params {
        Argon2Params {
            memory_kib: self.memory_kib.max(other.memory_kib),
            iterations: self.iterations.max(other.iterations),
            parallelism: self.parallelism.max(other.parallelism),
        }
    }

    /// Whether hashes made with `self` are weaker than hashes made with `other`: no more
    /// memory and no more iterations, and less of at least one. Parameters that trade one for
    /// the other (say m=19456,t=2 against m=47104,t=1, both OWASP's) are neither weaker nor
    /// stronger, so an upgrade never goes back and forth. Parallelism does not count.
    pub fn is_weaker_than(&self, other: &Argon2Params) -> bool {
        self.memory_kib <= other.memory_kib
            && self.iterations <= other.iterations
            && (self.memory_kib < other.memory_kib || self.iterations < other.iterations)
    }
}

impl fmt::Display for Argon2Params {
    /// As in a PHC string: `m=19456,t=2,p=1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "m={},t={},p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// argon2id [`KeyHasher`].
///
/// Verification reuses its argon2 working memory (19 MiB per check with OWASP parameters)
/// from a small pool shared by clones, instead of allocating and freeing it per check: freed
/// blocks that size are kept by the allocator's per-thread arenas, and a busy service's
/// resident memory would grow with the number of blocking threads that ever hashed.
#[derive(Clone)]
pub struct Argon2Hasher {
    argon: Argon2<'static>,
    params: Argon2Params,
    stored_limit: Argon2Params,
    pool: Arc<BlockPool>,
}

/// Most working-memory buffers kept for reuse (more only while more checks run at once).
const POOL_MAX: usize = 16;

/// argon2 working memory kept between checks.
#[derive(Default)]
struct BlockPool(Mutex<Vec<Vec<Block>>>);

impl BlockPool {
    /// A buffer of exactly `len` blocks: a pooled one when there is one of that size.
    fn take(&self, len: usize) -> Vec<Block> {
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match pool.iter().position(|b| b.len() == len) {
            Some(i) => pool.swap_remove(i),
            None => {
                drop(pool);
                vec![Block::default(); len]
            }
        }
    }

    /// Takes `blocks` back, wiped: they held the working state of a hashed secret.
    fn give(&self, mut blocks: Vec<Block>) {
        wipe(&mut blocks);
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_MAX {
            pool.push(blocks);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Argon2Hasher {
    /// A hasher with OWASP parameters.
    pub fn new() -> Self {
        // The OWASP constants are valid argon2 parameters; `with_params` only fails on
        // values outside argon2's limits.
        Self::with_params(Argon2Params::OWASP).unwrap_or_else(|_| Self {
            argon: Argon2::default(),
            params: Argon2Params::OWASP,
            stored_limit: Argon2Params::STORED_LIMIT,
            pool: Arc::default(),
        })
    }

    /// A hasher with custom parameters.
    ///
    /// # Errors
    /// When argon2 refuses the parameters (e.g. memory below 8 × parallelism KiB).
    pub fn with_params(params: Argon2Params) -> Result<Self, HashError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| HashError::Internal(e.to_string()))?;
        Ok(Argon2Hasher {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
            params,
            stored_limit: Argon2Params::STORED_LIMIT.max(params),
            pool: Arc::default(),
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Refuses stored hashes naming stronger parameters than `limit` (or than this hasher's
    /// own, whichever is larger) with [`HashError::Malformed`], which the verifier answers as
    /// a store fault (503, logged). Default: [`Argon2Params::STORED_LIMIT`].
    pub fn with_stored_limit(mut self, limit: Argon2Params) -> Self {
        self.stored_limit = limit.max(self.params);
        self
    }

    /// The strongest parameters a stored hash may name.
    pub fn stored_limit(&self) -> Argon2Params {
        self.stored_limit
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .finish()
    }
}

impl KeyHasher for Argon2Hasher {
    fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        use argon2::password_hash::phc::{Output, ParamsString, Salt};
        let internal = |e: &dyn fmt::Display| HashError::Internal(e.to_string());
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| internal(&e))?;
        let params = self.argon.params().clone();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let mut blocks = self.pool.take(params.block_count());
        let hashed =
            self.argon
                .hash_password_into_with_memory(secret, &salt, &mut out, &mut blocks);
        self.pool.give(blocks);
        hashed.map_err(|e| internal(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| internal(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| internal(&e))?),
            hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
        };
        Ok(phc.to_string())
    }

    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError> {
        let Some(named) = phc_params(stored) else {
            return Err(HashError::Malformed(
                "expected $argon2id$v=19$m=…,t=…,p=…$salt$hash".into(),
            ));
        };
        if named.exceeds(&self.stored_limit) {
            // Checked before anything is allocated: a tampered row must not make every
            // forged request allocate gigabytes.
            return Err(HashError::Malformed(format!(
                "its parameters {named} exceed the accepted {}",
                self.stored_limit
            )));
        }
        let malformed = |e: &dyn fmt::Display| HashError::Malformed(e.to_string());
        let phc = PasswordHash::new(stored).map_err(|e| malformed(&e))?;
        let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
            return Err(HashError::Malformed(
                "the hash has no salt or output".into(),
            ));
        };
        // The stored hash's own parameters (they may predate the configured ones).
        let params = Params::try_from(&phc).map_err(|e| malformed(&e))?;
        let blocks_len = params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut out = [0u8; 64];
        let out = out
            .get_mut(..expected.len())
            .ok_or_else(|| HashError::Malformed("output longer than 64 bytes".into()))?;
        // Only buffers of this hasher's own size are pooled: hashes made with other
        // parameters (older ones, or rows naming many different sizes) must not make the
        // pool keep up to POOL_MAX buffers of up to the stored limit each.
        let pooled = blocks_len == self.argon.params().block_count();
        let mut blocks = if pooled {
            self.pool.take(blocks_len)
        } else {
            vec![Block::default(); blocks_len]
        };
        let hashed = argon.hash_password_into_with_memory(secret, salt.as_ref(), out, &mut blocks);
        if pooled {
            self.pool.give(blocks);
        } else {
            wipe(&mut blocks);
        }
        hashed.map_err(|e| malformed(&e))?;
        Ok(bool::from(out.ct_eq(expected.as_bytes())))
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        phc_params(stored).is_some_and(|p| p.is_weaker_than(&self.params))
    }
}

/// Reads the parameters out of `$argon2id$v=19$m=…,t=…,p=…$…`; `None` for anything else.
pub(crate) fn phc_params(phc: &str) -> Option<Argon2Params> {
    let mut parts = phc.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
        return None;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in parts.next()?.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => {}
        }
    }
    Some(Argon2Params {
        memory_kib: m?,
        iterations: t?,
        parallelism: p?,
    })
}

/// A stored hash as the verifier's cache keeps it. The hashes [`Argon2Hasher`] makes
/// (`$argon2id$v=19$m=…,t=…,p=…$` with a 16-byte salt and a 32-byte output, iterations and
/// parallelism below 65,536) are kept decoded, 56 bytes inline instead of a ~100-byte string on
/// the heap; anything else (another hasher's format, other lengths) is kept as stored. Decoded only when encoding it back gives the very
/// same string, so [`StoredHash::to_phc`] always answers the stored text byte for byte (the
/// store compares it when a hash is upgraded).
#[derive(PartialEq, Eq)]
pub(crate) enum StoredHash {
    /// The canonical argon2id form, decoded.
    Argon2id(Argon2idHash),
    /// Any other stored string, as it was stored, with its fingerprint (BLAKE3, computed once).
    Other(Box<str>, u64),
}

/// The parts of a canonical argon2id PHC string. The memory is never zero (argon2 needs at
/// least 8 KiB per lane), which leaves [`StoredHash`] room for its other variant: 56 bytes in
/// all.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Argon2idHash {
    memory_kib: std::num::NonZeroU32,
    iterations: u16,
    parallelism: u16,
    salt: [u8; 16],
    output: [u8; 32],
}

impl StoredHash {
    /// The cached form of the stored string `phc`.
    pub(crate) fn new(phc: String) -> Self {
        match Argon2idHash::decode(&phc) {
            Some(h) if h.encode() == phc => StoredHash::Argon2id(h),
            _ => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&blake3::hash(phc.as_bytes()).as_bytes()[..8]);
                StoredHash::Other(phc.into_boxed_str(), u64::from_le_bytes(b).max(1))
            }
        }
    }

    /// A 64-bit fingerprint of the stored hash, never 0, for keying what is decided against
    /// one stored hash (rejected tokens, coalesced checks): it changes when the hash is
    /// replaced. A decoded argon2id hash folds its output (random-looking bytes), salt and
    /// parameters together, which costs a few instructions; any other string has the BLAKE3
    /// hash computed when it was read. Whether two entries hold the *same* hash is decided by
    /// equality (`==`), not by fingerprint.
    #[inline]
    pub(crate) fn fingerprint(&self) -> u64 {
        match self {
            StoredHash::Argon2id(h) => {
                let word = |bytes: &[u8]| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(bytes);
                    u64::from_le_bytes(b)
                };
                let params = (u64::from(h.memory_kib.get()) << 32)
                    | (u64::from(h.iterations) << 16)
                    | u64::from(h.parallelism);
                (word(&h.output[..8])
                    ^ word(&h.salt[..8]).rotate_left(17)
                    ^ word(&h.salt[8..]).rotate_left(41)
                    ^ params.rotate_left(29))
                .max(1)
            }
            StoredHash::Other(_, fingerprint) => *fingerprint,
        }
    }

    /// The stored string, exactly as it was stored.
    pub(crate) fn to_phc(&self) -> std::borrow::Cow<'_, str> {
        match self {
            StoredHash::Argon2id(h) => std::borrow::Cow::Owned(h.encode()),
            StoredHash::Other(s, _) => std::borrow::Cow::Borrowed(s),
        }
    }
}

impl Argon2idHash {
    fn decode(phc: &str) -> Option<Self> {
        let params = phc_params(phc)?;
        // Split at bytes, not with a `char` pattern: another use of the `char` searcher
        // changes how the compiler inlines it into token parsing, the hot path.
        let (rest, output) = last_field(phc)?;
        let (_, salt) = last_field(rest)?;
        let output = b64_decode::<32>(output)?;
        let salt = b64_decode::<16>(salt)?;
        Some(Argon2idHash {
            memory_kib: std::num::NonZeroU32::new(params.memory_kib)?,
            iterations: u16::try_from(params.iterations).ok()?,
            parallelism: u16::try_from(params.parallelism).ok()?,
            salt,
            output,
        })
    }

    fn encode(&self) -> String {
        let mut s = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            self.memory_kib, self.iterations, self.parallelism
        );
        b64_encode(&self.salt, &mut s);
        s.push('$');
        b64_encode(&self.output, &mut s);
        s
    }
}

/// `s` split at its last `$`.
fn last_field(s: &str) -> Option<(&str, &str)> {
    let at = s.bytes().rposition(|b| b == b'$')?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// The PHC strings' base64 alphabet (standard, written without padding).
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
}

/// Exactly `N` bytes from unpadded base64; `None` for anything else. Bits left over in the
/// last character are not checked here: [`StoredHash::new`] keeps a string decoded only when
/// it encodes back to itself.
fn b64_decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 4).div_ceil(3) {
        return None;
    }
    let mut out = [0u8; N];
    let (mut acc, mut bits, mut at) = (0u32, 0u32, 0usize);
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(at)? = (acc >> bits) as u8;
            at += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (at == N).then_some(out)
}

/// Zeroes argon2 working memory: it held state derived from a secret.
fn wipe(blocks: &mut [Block]) {
    for block in blocks {
        block.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::with_params(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn default_is_owasp_argon2id() {
        let h = Argon2Hasher::new().hash(b"k").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[test]
    fn verifies_right_and_rejects_wrong_secret() {
        let h = cheap();
        let stored = h.hash(b"right").unwrap();
        assert!(h.verify(b"right", &stored).unwrap());
        assert!(!h.verify(b"wrong", &stored).unwrap());
    }

    #[test]
    fn stored_parameters_beyond_the_limit_are_refused_without_hashing() {
        let h = cheap();
        let stored = h.hash(b"secret").unwrap();
        // A tampered row: 1 GiB of memory per check (the limit is 256 MiB).
        let tampered = stored.replace("m=64,", "m=1048576,");
        assert_ne!(tampered, stored);
        let pooled = h.pool.len();
        match h.verify(b"secret", &tampered) {
            Err(HashError::Malformed(m)) => assert!(m.contains("exceed"), "{m}"),
            other => panic!("a 1 GiB stored hash was checked: {other:?}"),
        }
        assert_eq!(h.pool.len(), pooled, "no working memory was taken for it");
        let many_passes = stored.replace("t=1,", "t=17,");
        assert!(matches!(
            h.verify(b"secret", &many_passes),
            Err(HashError::Malformed(_))
        ));
        // A hasher's own parameters are always accepted, a raised limit too.
        let roomy = h.clone().with_stored_limit(Argon2Params {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        });
        assert_eq!(roomy.stored_limit().memory_kib, 128);
        assert!(roomy.verify(b"secret", &stored).unwrap());
        let lowered = h.with_stored_limit(Argon2Params {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        });
        assert!(lowered.verify(b"secret", &stored).unwrap());
    }

    #[test]
    fn only_buffers_of_the_hashers_own_size_are_pooled() {
        let h = cheap();
        let own = h.hash(b"secret").unwrap();
        assert_eq!(h.pool.len(), 1);
        // Hashes made with other memory sizes (within the stored limit) verify, and leave
        // nothing behind in the pool.
        for m in [128, 256, 512] {
            let other = Argon2Hasher::with_params(Argon2Params {
                memory_kib: m,
                iterations: 1,
                parallelism: 1,
            })
            .unwrap()
            .hash(b"secret")
            .unwrap();
            assert!(h.verify(b"secret", &other).unwrap());
        }
        assert_eq!(h.pool.len(), 1, "only the hasher's own size is kept");
        assert!(h.verify(b"secret", &own).unwrap());
        assert_eq!(h.pool.len(), 1);
    }

    #[test]
    fn pooled_working_memory_is_wiped_after_use() {
        let h = cheap();
        let stored = h.hash(b"secret").unwrap();
        assert!(h.verify(b"secret", &stored).unwrap());
        let zero = format!("{:?}", Block::default());
        let pool = h.pool.0.lock().unwrap();
        assert_eq!(pool.len(), 1);
        let dirty = pool[0].iter().filter(|b| format!("{b:?}") != zero).count();
        assert_eq!(
            dirty, 0,
            "{dirty} blocks still hold a secret's working state"
        );
    }

    #[test]
    fn corrupt_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            cheap().verify(b"x", "not a phc string"),
            Err(HashError::Malformed(_))
        ));
    }

    #[test]
    fn hashing_and_verification_reuse_their_working_memory() {
        let h = cheap();
        assert_eq!(h.pool.len(), 0);
        let stored = h.hash(b"secret").unwrap();
        // Hashing borrowed the buffer and gave it back.
        assert_eq!(h.pool.len(), 1);
        for _ in 0..5 {
            assert!(h.verify(b"secret", &stored).unwrap());
            assert!(!h.verify(b"other", &stored).unwrap());
        }
        // One check at a time: one buffer, reused by every check (and by clones).
        assert_eq!(h.pool.len(), 1);
        assert!(h.clone().verify(b"secret", &stored).unwrap());
        assert_eq!(h.pool.len(), 1);
    }

    #[test]
    fn verifies_hashes_made_by_the_argon2_crate_itself() {
        use argon2::password_hash::PasswordHasher;
        let params = Params::new(64, 1, 1, None).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"secret")
            .unwrap()
            .to_string();
        assert!(cheap().verify(b"secret", &reference).unwrap());
        assert!(!cheap().verify(b"secreT", &reference).unwrap());
    }

    #[test]
    fn hashes_are_phc_strings_the_argon2_crate_verifies() {
        use argon2::password_hash::PasswordVerifier;
        let stored = cheap().hash(b"secret").unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{stored}"
        );
        let phc = PasswordHash::new(&stored).unwrap();
        let argon = Argon2::default();
        assert!(argon.verify_password(b"secret", &phc).is_ok());
        assert!(argon.verify_password(b"secreT", &phc).is_err());
        assert_ne!(
            stored,
            cheap().hash(b"secret").unwrap(),
            "a fresh salt every time"
        );
    }

    #[test]
    fn needs_rehash_when_parameters_changed() {
        let old = cheap().hash(b"k").unwrap();
        assert!(!cheap().needs_rehash(&old));
        let stronger = Argon2Hasher::with_params(Argon2Params {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(stronger.needs_rehash(&old));
        assert!(
            stronger.verify(b"k", &old).unwrap(),
            "old hashes still verify"
        );
    }

    #[test]
    fn only_weaker_hashes_need_a_rehash_never_both_ways() {
        let with = |memory_kib, iterations| {
            Argon2Hasher::with_params(Argon2Params {
                memory_kib,
                iterations,
                parallelism: 1,
            })
            .unwrap()
        };
        let strong = with(128, 2).hash(b"k").unwrap();
        let weak = with(64, 1).hash(b"k").unwrap();
        assert!(!with(64, 1).needs_rehash(&strong), "never downgrade");
        assert!(with(128, 2).needs_rehash(&weak));
        // A trade of memory for iterations is neither: no ping-pong between the two.
        let more_memory = with(128, 1);
        let more_time = with(64, 2);
        let a = more_memory.hash(b"k").unwrap();
        let b = more_time.hash(b"k").unwrap();
        assert!(!more_memory.needs_rehash(&b) && !more_time.needs_rehash(&a));
        assert_eq!(Argon2Params::OWASP.to_string(), "m=19456,t=2,p=1");
    }

    #[test]
    fn hashes_are_kept_decoded_and_give_back_the_very_same_string() {
        let h = cheap();
        for _ in 0..50 {
            let phc = h.hash(b"secret").unwrap();
            let stored = StoredHash::new(phc.clone());
            assert!(matches!(stored, StoredHash::Argon2id(_)), "{phc}");
            assert_eq!(stored.to_phc(), phc);
        }
        for other in [
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
            "$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$t=1,m=64,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAB$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=064,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "$argon2id$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAé",
            "plain",
            "",
        ] {
            let stored = StoredHash::new(other.to_owned());
            assert!(matches!(stored, StoredHash::Other(..)), "{other}");
            assert_eq!(stored.to_phc(), other);
        }
        for (m, t, p) in [(0, 1, 1), (8, 65_536, 1), (8, 1, 65_536)] {
            let out = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
            let phc = format!("$argon2id$v=19$m={m},t={t},p={p}$AAAAAAAAAAAAAAAAAAAAAA${out}");
            let stored = StoredHash::new(phc.clone());
            assert!(matches!(stored, StoredHash::Other(..)), "{phc}");
            assert_eq!(stored.to_phc(), phc);
        }
        assert_eq!(std::mem::size_of::<StoredHash>(), 56);
    }
}
