//! Hashing of stored keys: the [`KeyHasher`] trait and its argon2id implementation.
//!
//! Only a hash of the full token is ever stored. [`Argon2Hasher`] produces PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$…`) with OWASP's parameters by default. When the
//! configured parameters change, [`KeyHasher::needs_rehash`] tells the verifier to upgrade a
//! stored hash after its next successful verification.

use std::fmt;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashing failed for a reason other than a wrong secret.
#[derive(Debug, thiserror::Error)]
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

    /// Whether `stored` was made with other parameters than the current ones, and should be
    /// replaced after the next successful verification.
    fn needs_rehash(&self, stored: &str) -> bool {
        let _ = stored;
        false
    }
}

/// argon2id parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// argon2id [`KeyHasher`].
#[derive(Clone)]
pub struct Argon2Hasher {
    argon: Argon2<'static>,
    params: Argon2Params,
}

impl Argon2Hasher {
    /// A hasher with OWASP parameters.
    pub fn new() -> Self {
        // The OWASP constants are valid argon2 parameters; `with_params` only fails on
        // values outside argon2's limits.
        Self::with_params(Argon2Params::OWASP).unwrap_or_else(|_| Self {
            argon: Argon2::default(),
            params: Argon2Params::OWASP,
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
        })
    }

    /// The parameters new hashes are made with.
    pub fn params(&self) -> Argon2Params {
        self.params
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
        self.argon
            .hash_password(secret)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Internal(e.to_string()))
    }

    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError> {
        if parse_phc_params(stored).is_none() {
            return Err(HashError::Malformed(
                "expected $argon2id$v=19$m=…,t=…,p=…$salt$hash".into(),
            ));
        }
        match self.argon.verify_password(secret, stored) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(HashError::Malformed(e.to_string())),
        }
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        parse_phc_params(stored) != Some(self.params)
    }
}

/// Reads the parameters out of `$argon2id$v=19$m=…,t=…,p=…$…`; `None` for anything else.
fn parse_phc_params(phc: &str) -> Option<Argon2Params> {
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
    fn corrupt_hash_is_an_error_not_a_mismatch() {
        assert!(matches!(
            cheap().verify(b"x", "not a phc string"),
            Err(HashError::Malformed(_))
        ));
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
}
