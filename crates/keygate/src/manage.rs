//! Key lifecycle: [`KeyManager`] creates, lists, shows, revokes, deletes and rotates keys.
//!
//! Creation returns the plaintext once ([`CreatedKey::key`]); only the hash is stored. Every
//! operation appends an [`AuditEvent`] to the store's trail and hands it to the [`AuditSink`].
//! Connected to a [`Verifier`] (see [`KeyManager::with_verifier`]), revoke, delete and rotate
//! bite on that verifier's very next request.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::audit::{AuditAction, AuditEvent, AuditSink, TracingAuditSink};
use crate::cache::Invalidator;
use crate::clock::{Clock, SystemClock};
use crate::hash::{Argon2Hasher, HashError, KeyHasher};
use crate::record::{KeyRecord, KeyStatus};
use crate::scope::{ScopeError, ScopeSet};
use crate::store::{KeyFilter, KeyStore, StoreError};
use crate::token::{self, GenerateError, PlaintextKey};
use crate::verify::Verifier;

/// The prefix used when [`NewKey::prefix`] is not set.
pub const DEFAULT_PREFIX: &str = "mk_live";

/// Longest accepted name, org, team or owner, in characters.
pub const MAX_LABEL_LEN: usize = 200;

/// A lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// No key has this id.
    #[error("no key with id {0}")]
    NotFound(String),
    /// An argument is not acceptable; the message says which and why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The operation makes no sense for the key's state (e.g. rotating a revoked key).
    #[error("{0}")]
    Conflict(String),
    /// A scope is not valid.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Key generation failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// What to create. Build with [`NewKey::new`] and the setters.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKey {
    /// Human name.
    pub name: String,
    /// Organization.
    pub org: String,
    /// Team.
    pub team: Option<String>,
    /// The user the key acts for.
    pub owner: Option<String>,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Token prefix (default [`DEFAULT_PREFIX`]).
    pub prefix: Option<String>,
    /// Application metadata.
    pub metadata: Value,
}

impl NewKey {
    /// A key named `name` for organization `org`, no scopes, no expiry.
    pub fn new(name: impl Into<String>, org: impl Into<String>) -> Self {
        NewKey {
            name: name.into(),
            org: org.into(),
            team: None,
            owner: None,
            scopes: ScopeSet::new(),
            expires_at: None,
            prefix: None,
            metadata: Value::Null,
        }
    }

    /// Sets the scopes (validated).
    pub fn scopes<I, S>(mut self, scopes: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.scopes = ScopeSet::parse(scopes)?;
        Ok(self)
    }

    /// Sets the team.
    pub fn team(mut self, team: impl Into<String>) -> Self {
        self.team = Some(team.into());
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: DateTime<Utc>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the prefix (`mk_test`, `qapi`, …).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A freshly created key: the plaintext (shown once) and the stored record.
#[derive(Debug)]
pub struct CreatedKey {
    /// The plaintext token. Show it to the user once; it cannot be recovered.
    pub key: PlaintextKey,
    /// What was stored.
    pub record: KeyRecord,
}

/// Creates and manages keys over a [`KeyStore`].
#[derive(Clone)]
pub struct KeyManager {
    store: Arc<dyn KeyStore>,
    hasher: Arc<dyn KeyHasher>,
    audit: Arc<dyn AuditSink>,
    invalidator: Invalidator,
    clock: Arc<dyn Clock>,
    actor: Option<String>,
}

impl std::fmt::Debug for KeyManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyManager")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

fn check_label(what: &str, value: &str, required: bool) -> Result<(), ManageError> {
    if required && value.trim().is_empty() {
        return Err(ManageError::InvalidInput(format!(
            "{what} must not be empty"
        )));
    }
    if value.chars().count() > MAX_LABEL_LEN {
        return Err(ManageError::InvalidInput(format!(
            "{what} is longer than {MAX_LABEL_LEN} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ManageError::InvalidInput(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

impl KeyManager {
    /// A manager over `store`, with argon2id (OWASP parameters), the tracing audit sink and
    /// the system clock.
    pub fn new(store: Arc<dyn KeyStore>) -> Self {
        KeyManager {
            store,
            hasher: Arc::new(Argon2Hasher::new()),
            audit: Arc::new(TracingAuditSink),
            invalidator: Invalidator::detached(),
            clock: Arc::new(SystemClock),
            actor: None,
        }
    }

    /// Shares the verifier's hasher and clock, and invalidates its caches on revoke, delete
    /// and rotate.
    pub fn with_verifier(mut self, verifier: &Verifier) -> Self {
        self.invalidator = verifier.invalidator();
        self.hasher = Arc::clone(verifier.hasher());
        self.clock = Arc::clone(verifier.clock());
        self
    }

    /// Invalidates through this handle on lifecycle changes.
    pub fn with_invalidator(mut self, invalidator: Invalidator) -> Self {
        self.invalidator = invalidator;
        self
    }

    /// Uses another hasher for new keys.
    pub fn with_hasher(mut self, hasher: impl KeyHasher) -> Self {
        self.hasher = Arc::new(hasher);
        self
    }

    /// Sends audit events to `sink` (they are always appended to the store's trail too).
    pub fn with_audit_sink(mut self, sink: impl AuditSink) -> Self {
        self.audit = Arc::new(sink);
        self
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Names who performs the operations, for the audit trail.
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    async fn audit(
        &self,
        record: &KeyRecord,
        action: AuditAction,
        detail: Value,
    ) -> Result<(), StoreError> {
        let event = AuditEvent {
            key_id: record.id.clone(),
            action,
            at: self.clock.now(),
            org: record.org.clone(),
            actor: self.actor.clone(),
            detail,
        };
        self.audit.record(&event);
        self.store.append_audit(&event).await
    }

    /// Creates a key. The plaintext is in the result and nowhere else.
    pub async fn create(&self, new: NewKey) -> Result<CreatedKey, ManageError> {
        self.create_inner(new, None).await
    }

    async fn create_inner(
        &self,
        new: NewKey,
        rotated_from: Option<String>,
    ) -> Result<CreatedKey, ManageError> {
        check_label("name", &new.name, true)?;
        check_label("org", &new.org, true)?;
        if let Some(t) = &new.team {
            check_label("team", t, true)?;
        }
        if let Some(o) = &new.owner {
            check_label("owner", o, true)?;
        }
        let now = self.clock.now();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(ManageError::InvalidInput(
                "expiry must be in the future".into(),
            ));
        }
        let prefix = new.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        let key = token::generate(&prefix)?;
        let hasher = Arc::clone(&self.hasher);
        let secret = zeroize::Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        let hash = match tokio::runtime::Handle::try_current() {
            Ok(h) => h
                .spawn_blocking(move || hasher.hash(&secret))
                .await
                .map_err(|e| HashError::Internal(e.to_string()))??,
            Err(_) => hasher.hash(&secret)?,
        };
        let record = KeyRecord {
            id: key.id().to_owned(),
            prefix,
            name: new.name,
            org: new.org,
            team: new.team,
            owner: new.owner,
            scopes: new.scopes,
            metadata: new.metadata,
            hash,
            created_at: now,
            expires_at: new.expires_at,
            revoked_at: None,
            last_used_at: None,
            rotated_from,
        };
        self.store.insert(&record).await?;
        // A negative cache entry for this id (someone probed it) must not hide the new key.
        self.invalidator.invalidate(&record.id);
        self.audit(
            &record,
            AuditAction::Created,
            json!({ "name": record.name, "scopes": record.scopes, "rotated_from": record.rotated_from }),
        )
        .await?;
        Ok(CreatedKey { key, record })
    }

    /// Keys matching `filter`, oldest first.
    pub async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(self.store.list(filter).await?)
    }

    /// One key.
    pub async fn show(&self, id: &str) -> Result<KeyRecord, ManageError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(id.to_owned()))
    }

    /// The key's status now.
    pub fn status(&self, record: &KeyRecord) -> KeyStatus {
        record.status_at(self.clock.now())
    }

    /// Revokes a key: it stops working at once for connected verifiers (within their
    /// revocation window elsewhere) and stays listed for audit.
    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, ManageError> {
        let now = self.clock.now();
        if !self.store.revoke(id, now).await? {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.invalidator.invalidate(id);
        let record = self.show(id).await?;
        self.audit(&record, AuditAction::Revoked, Value::Null)
            .await?;
        Ok(record)
    }

    /// Deletes a key. Its audit trail stays.
    pub async fn delete(&self, id: &str) -> Result<(), ManageError> {
        let record = self.show(id).await?;
        if !self.store.delete(id).await? {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.invalidator.invalidate(id);
        self.audit(
            &record,
            AuditAction::Deleted,
            json!({ "name": record.name }),
        )
        .await?;
        Ok(())
    }

    /// Sets or clears a key's expiry.
    pub async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<KeyRecord, ManageError> {
        if !self.store.set_expiry(id, expires_at).await? {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.invalidator.invalidate(id);
        let record = self.show(id).await?;
        self.audit(
            &record,
            AuditAction::ExpiryChanged,
            json!({ "expires_at": expires_at }),
        )
        .await?;
        Ok(record)
    }

    /// Rotates a key: a new key with the same name, org, team, owner, scopes, expiry, prefix
    /// and metadata; the old one keeps working for `grace`, then expires (never later than
    /// its own expiry). Revoked and expired keys cannot be rotated.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey, ManageError> {
        let old = self.show(id).await?;
        let now = self.clock.now();
        match old.status_at(now) {
            KeyStatus::Active => {}
            s => {
                return Err(ManageError::Conflict(format!(
                    "key {id} is {s}; only active keys can be rotated"
                )))
            }
        }
        let new = NewKey {
            name: old.name.clone(),
            org: old.org.clone(),
            team: old.team.clone(),
            owner: old.owner.clone(),
            scopes: old.scopes.clone(),
            expires_at: old.expires_at,
            prefix: Some(old.prefix.clone()),
            metadata: old.metadata.clone(),
        };
        let created = self.create_inner(new, Some(old.id.clone())).await?;
        let grace = chrono::Duration::from_std(grace)
            .map_err(|_| ManageError::InvalidInput("grace period is too long".into()))?;
        let old_ends = now
            .checked_add_signed(grace)
            .ok_or_else(|| ManageError::InvalidInput("grace period is too long".into()))?;
        let old_ends = old.expires_at.map_or(old_ends, |e| e.min(old_ends));
        self.store.set_expiry(id, Some(old_ends)).await?;
        self.invalidator.invalidate(id);
        self.audit(
            &old,
            AuditAction::Rotated,
            json!({ "new_id": created.record.id, "old_expires_at": old_ends }),
        )
        .await?;
        Ok(created)
    }

    /// The audit trail of a key (also after deletion).
    pub async fn audit_trail(&self, id: &str) -> Result<Vec<AuditEvent>, ManageError> {
        Ok(self.store.audit_trail(id).await?)
    }
}
