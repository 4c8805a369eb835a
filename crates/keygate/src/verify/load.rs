//! Reading a key's record into the cache: one coalesced store read per id, never caching a
//! state that a concurrent change made stale, narrowed to its owner's scopes when configured.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::cache::{CachedKey, KeyState};
use super::telemetry::{self, CacheKind};
use super::VerifierCore;
use crate::clock::duration_millis;
use crate::error::AuthError;
use crate::hash::StoredHash;
use crate::principal::Principal;
use crate::record::KeyRecord;
use crate::scope::ScopeSet;
use crate::store::StoreError;

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

/// How many times a read is retried when changes keep making it stale before it is used.
const STALE_READS: usize = 3;

impl VerifierCore {
    /// The entry of `id` read from the store (the cached one was missing or stale): one read
    /// per id at a time, whoever asks.
    pub(super) async fn load(
        &self,
        id: &str,
        span: &tracing::Span,
    ) -> Result<Arc<CachedKey>, AuthError> {
        telemetry::cache_lookup(span, CacheKind::Record, false);
        let key = id.to_owned();
        for _ in 0..STALE_READS {
            let entry = self
                .loads
                .run(&key, async {
                    // A run that finished just before this one started has cached its read.
                    let cached = self.keys.get(id);
                    if let Some(c) = &cached {
                        if self.keys.is_fresh(id, c, self.clock.now_millis()) {
                            return Ok(Arc::clone(c));
                        }
                    }
                    let entry = Arc::new(self.read(id, cached.as_deref()).await.map_err(Arc::new)?);
                    // The counts of the entry it replaces come along (looked up again: the
                    // entry may have changed during the read), so that a request that entry
                    // admitted is reclassified here if its route refuses it.
                    if let Some(replaced) = self.keys.get(id) {
                        self.usage.recorder.carry_over(&replaced, &entry);
                    }
                    self.keys.insert(id, Arc::clone(&entry));
                    Ok(entry)
                })
                .await
                .map_err(|e| {
                    tracing::warn!(key_id = id, error = %e, "keygate: key store read failed");
                    self.store_unavailable()
                })?;
            // Read for this request (or by a run it joined): usable now however short the
            // revocation window, unless a change to the key raced the read.
            if self.keys.is_current(id, &entry) {
                return Ok(entry);
            }
            // The key changed while it was being read: never answer from the older state.
        }
        // Changes keep racing our reads; answer from one more read without caching it.
        let previous = self.keys.get(id);
        self.read(id, previous.as_deref())
            .await
            .map(Arc::new)
            .map_err(|_| self.store_unavailable())
    }

    /// One store read of `id`, stamped with the generation at which it started; the token
    /// verified in `previous` is carried over when the stored hash is the same.
    async fn read(&self, id: &str, previous: Option<&CachedKey>) -> Result<CachedKey, StoreError> {
        let read_gen = self.keys.generation();
        let timeout = self.settings.store_timeout;
        let started = Instant::now();
        let record = tokio::time::timeout(timeout, self.store.get(id))
            .await
            .map_err(|_| StoreError::Timeout(timeout))??;
        telemetry::store_read(started);
        let now = self.clock.now_millis();
        let Some(record) = record.filter(|r| r.id == id) else {
            let fresh_until = now.saturating_add(duration_millis(self.settings.absent_ttl));
            return Ok(CachedKey::new(None, fresh_until, read_gen, None));
        };
        let scopes = match &self.narrower {
            None => record.scopes.clone(),
            Some(n) => {
                let owner = tokio::time::timeout(timeout, n.owner_scopes(&record))
                    .await
                    .map_err(|_| StoreError::Timeout(timeout))??;
                record.scopes.intersection(&owner)
            }
        };
        let expires_at_ms = record.expires_at.map(|t| t.timestamp_millis());
        let mut fresh_until = now.saturating_add(duration_millis(self.settings.revocation_window));
        if let Some(e) = expires_at_ms.filter(|&e| e > now) {
            fresh_until = fresh_until.min(e);
        }
        let state = self.key_state(record, scopes, expires_at_ms);
        Ok(CachedKey::new(Some(state), fresh_until, read_gen, previous))
    }

    /// What the cache keeps of a stored record.
    fn key_state(
        &self,
        record: KeyRecord,
        scopes: ScopeSet,
        expires_at_ms: Option<i64>,
    ) -> KeyState {
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
            id: id.into(),
            name: name.into(),
            org: self.interner.label(org),
            team: team.map(Into::into),
            owner: owner.map(Into::into),
            scopes: self.interner.scopes(&scopes),
            environment: self.interner.label(prefix),
            expires_at,
            metadata: metadata.into(),
        });
        KeyState::new(
            principal,
            StoredHash::new(hash),
            revoked_at.is_some(),
            expires_at_ms,
            limiter,
        )
    }
}
