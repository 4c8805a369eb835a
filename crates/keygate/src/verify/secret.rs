//! Checking a presented secret against a key's stored hash: argon2 in a hashing slot,
//! throttled per (id, client) and per id, coalesced per (token, stored hash); and upgrading a
//! stored hash made with weaker parameters.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use zeroize::Zeroizing;

use super::cache::{fingerprint, CachedKey, Digest, KeyState};
use super::hashing::TaskFailed;
use super::telemetry;
use super::throttle::IdKind;
use super::VerifierCore;
use crate::audit::{AuditAction, AuditEvent};
use crate::clock::{duration_millis, millis_to_datetime};
use crate::error::AuthError;
use crate::hash::{phc_params, HashError};

/// Why a check gave no verdict on the secret.
#[derive(Debug, thiserror::Error)]
pub(super) enum CheckFailure {
    #[error("stored hash unusable: {0}")]
    Hash(#[from] HashError),
    #[error(transparent)]
    Task(#[from] TaskFailed),
    /// The id became throttled while this check waited for a hashing slot: refused without
    /// hashing, and not cached (the secret was never checked). Carries the seconds until the
    /// failure window ends.
    #[error("key id throttled")]
    Throttled(u32),
    /// No hashing slot within the queue deadline: the secret was never checked.
    #[error("no hashing slot within the queue deadline")]
    Busy,
}

/// A presented token on the slow path: the token, its id and digest, and the client's
/// address when known.
pub(super) struct Presented<'a> {
    pub(super) token: &'a str,
    pub(super) id: &'a str,
    pub(super) digest: Digest,
    pub(super) peer: Option<IpAddr>,
}

impl VerifierCore {
    /// Whether the presented token is the secret of `entry`'s key. A throttled client gets
    /// 429 and a full hashing queue 503, never a verdict on a secret that was not checked.
    pub(super) async fn check_secret(
        &self,
        presented: &Presented<'_>,
        entry: &Arc<CachedKey>,
        key: &KeyState,
        now: i64,
    ) -> Result<bool, AuthError> {
        let &Presented {
            token,
            id,
            digest,
            peer,
        } = presented;
        if let Some(secs) = self.throttle.blocked(IdKind::Known, id, peer, now) {
            return Err(telemetry::throttled(id, secs));
        }
        let checked = self
            .checks
            .run(&(digest, key.fingerprint()), async {
                // A run that finished just before this one started has recorded its verdict.
                if entry.verified.accepts(&digest, now) {
                    return Ok(true);
                }
                if self.keys.is_rejected(&digest, key.fingerprint(), now) {
                    return Ok(false);
                }
                let ok = self
                    .hash_check(token, id, peer, key, now)
                    .await
                    .map_err(Arc::new)?;
                self.remember(id, entry, key, digest, ok, now);
                if ok && self.hasher.needs_rehash(&key.hash.to_phc()) {
                    self.spawn_upgrade(token, id, key, digest, now);
                }
                Ok(ok)
            })
            .await;
        checked.map_err(|e| match *e {
            CheckFailure::Throttled(secs) => telemetry::throttled(id, secs),
            CheckFailure::Busy => telemetry::busy(id, self.settings.retry_after_secs),
            _ => {
                tracing::error!(key_id = id, error = %e, "keygate: cannot check secret against stored hash");
                self.store_unavailable()
            }
        })
    }

    /// Records a verdict: an accepted token in the key's entry (and in the entry that replaced
    /// it meanwhile, when it holds the same hash), a rejected one in the rejections.
    fn remember(
        &self,
        id: &str,
        entry: &Arc<CachedKey>,
        key: &KeyState,
        digest: Digest,
        accepted: bool,
        now: i64,
    ) {
        if !accepted {
            let until = now.saturating_add(duration_millis(self.settings.rejected_ttl));
            self.keys.reject(digest, key.fingerprint(), until);
            return;
        }
        let until = now.saturating_add(duration_millis(self.settings.verified_ttl));
        entry.verified.record(digest, until);
        if let Some(current) = self.keys.get(id) {
            let same_hash = current.key.as_ref().is_some_and(|k| k.same_hash(key));
            if same_hash && !Arc::ptr_eq(&current, entry) {
                current.verified.record(digest, until);
            }
        }
    }

    /// argon2 in a hashing slot. The failure is counted before hashing and forgiven unless
    /// the secret proved wrong: a caller cancelled mid-hash (a closed connection) still counts, so cancelling
    /// cannot get round the throttle.
    async fn hash_check(
        &self,
        token: &str,
        id: &str,
        peer: Option<IpAddr>,
        key: &KeyState,
        now: i64,
    ) -> Result<bool, CheckFailure> {
        let slot = self.slots.acquire().await.map_err(|_| CheckFailure::Busy)?;
        // Checked again with the slot held: many wrong secrets for one id that arrive
        // together all pass the first check, and would otherwise each run argon2 in turn.
        if let Some(secs) = self
            .throttle
            .blocked(IdKind::Known, id, peer, self.clock.now_millis())
        {
            return Err(CheckFailure::Throttled(secs));
        }
        self.throttle.count_failure(IdKind::Known, id, peer, now);
        let hasher = Arc::clone(&self.hasher);
        let stored = key.hash.to_phc().into_owned();
        let secret = Zeroizing::new(token.as_bytes().to_vec());
        let started = Instant::now();
        let checked: Result<bool, CheckFailure> =
            match slot.run(move || hasher.verify(&secret, &stored)).await {
                Ok(verified) => verified.map_err(CheckFailure::from),
                Err(e) => Err(e.into()),
            };
        telemetry::hashed(started);
        // Only a wrong secret counts: a right one is forgiven, and so is a stored hash that
        // cannot be checked (a store fault, answered 503), or the right secret's holder
        // would be throttled for the store's fault.
        if !matches!(checked, Ok(false)) {
            self.throttle.forgive(id, peer);
        }
        checked
    }

    /// A token whose id the store does not know, answered exactly like a wrong secret for a
    /// known id: the same rejection cache, the same failure count, the same 429 once
    /// throttled — the answers do not tell whether an id exists.
    pub(super) fn refuse_unknown(
        &self,
        id: &str,
        peer: Option<IpAddr>,
        digest: Digest,
        now: i64,
    ) -> AuthError {
        let until = now.saturating_add(duration_millis(self.settings.rejected_ttl));
        let refused = self.keys.refuse_absent_once(digest, now, until, || {
            if let Some(secs) = self.throttle.blocked(IdKind::Unknown, id, peer, now) {
                return Err(telemetry::throttled(id, secs));
            }
            self.throttle.count_failure(IdKind::Unknown, id, peer, now);
            Ok(())
        });
        refused.err().unwrap_or(AuthError::InvalidKey)
    }

    /// Replaces a stored hash made with weaker parameters than the hasher's, after a
    /// successful verification of an active key, in the background: hashed in a slot that is
    /// free right now (an upgrade never queues ahead of requests; a busy moment just defers it
    /// to the key's next check), stored only if the hash is still the one verified, with a
    /// `rehashed` audit event in the same store transaction. The cached entry then holds the
    /// new hash with the token verified against it: the upgrade costs no second argon2 check.
    fn spawn_upgrade(&self, token: &str, id: &str, key: &KeyState, digest: Digest, now: i64) {
        if !key.is_active(now) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(slot) = self.slots.try_acquire() else {
            tracing::debug!(
                key_id = id,
                "keygate: no free hashing slot; hash upgrade deferred"
            );
            return;
        };
        let secret = Zeroizing::new(token.as_bytes().to_vec());
        let hasher = Arc::clone(&self.hasher);
        let store = Arc::clone(&self.store);
        let clock = Arc::clone(&self.clock);
        let keys = Arc::clone(&self.keys);
        let usage = Arc::clone(&self.usage);
        let id = id.to_owned();
        let org = key.principal.org.to_string();
        let old_hash = key.hash.to_phc().into_owned();
        let old_fingerprint = key.fingerprint();
        let valid_until = now.saturating_add(duration_millis(self.settings.verified_ttl));
        handle.spawn(async move {
            let Ok(Ok(new_hash)) = slot.run(move || hasher.hash(&secret)).await else {
                tracing::warn!(key_id = %id, "keygate: re-hash failed; keeping the old hash");
                return;
            };
            let describe = |phc: &str| phc_params(phc).map(|p| p.to_string());
            let event = AuditEvent {
                key_id: id.clone(),
                action: AuditAction::Rehashed,
                at: millis_to_datetime(clock.now_millis()),
                org,
                actor: None,
                detail: json!({ "from": describe(&old_hash), "to": describe(&new_hash) }),
            };
            match store.update_hash(&id, &old_hash, &new_hash, &event).await {
                Ok(true) => {
                    let new_fingerprint = fingerprint(&new_hash);
                    if let Some(current) = keys.get(&id) {
                        match current.key.as_ref().map(KeyState::fingerprint) {
                            // Read again since, with the new hash: the token is proven for it.
                            Some(f) if f == new_fingerprint => {
                                current.verified.record(digest, valid_until);
                            }
                            // Still the old hash here: the same entry, holding the new one.
                            Some(f) if f == old_fingerprint => {
                                if let Some(upgraded) =
                                    current.with_upgraded_hash(&new_hash, digest, valid_until)
                                {
                                    let upgraded = Arc::new(upgraded);
                                    usage.recorder.carry_over(&current, &upgraded);
                                    keys.insert(&id, upgraded);
                                }
                            }
                            _ => {}
                        }
                    }
                    tracing::info!(key_id = %id, "keygate: upgraded stored hash to stronger parameters");
                }
                // Replaced or deleted meanwhile: nothing to upgrade.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(key_id = %id, error = %e, "keygate: could not store upgraded hash");
                }
            }
        });
    }
}
