//! Key lifecycle: [`KeyManager`] creates, lists, shows, revokes, deletes and rotates keys.
//!
//! Creation returns the plaintext once ([`CreatedKey::key`]); only the hash is stored. Every
//! operation appends an [`AuditEvent`] to the store's trail and hands it to the [`AuditSink`].
//! Connected to a [`Verifier`] (see [`KeyManager::with_verifier`]), revoke, delete and rotate
//! bite on that verifier's very next request.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use chrono::{DateTime, DurationRound, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::audit::{AuditAction, AuditEvent, AuditSink, TracingAuditSink};
use crate::clock::{Clock, SystemClock};
use crate::hash::{Argon2Hasher, HashError, KeyHasher};
use crate::invalidate::Invalidator;
use crate::rate_limit::RateLimit;
use crate::record::{KeyRecord, KeyStatus};
use crate::scope::{Scope, ScopeError, ScopeSet};
use crate::store::{
    KeyFilter, KeyStore, KeyUpdate, PagePosition, PageQuery, RotateOutcome, Rotation, StoreError,
    UsageTotals,
};
use crate::token::{self, GenerateError, PlaintextKey};
use crate::verify::{HashSlots, Verifier};

mod tenant;

pub use tenant::{KeyRequest, ManagedKeys, Manager};

/// The prefix used when [`NewKey::prefix`] is not set.
pub const DEFAULT_PREFIX: &str = "mk_live";

/// Most days [`KeyManager::daily_usage`] covers: counts are kept 90 days.
pub const MAX_USAGE_DAYS: u32 = 90;

/// Longest accepted name, org, team or owner, in characters.
pub const MAX_LABEL_LEN: usize = 200;

/// A lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// No key has this id (or, through [`ManagedKeys`], none that the manager may see).
    #[error("no key with id {0}")]
    NotFound(String),
    /// A field is not acceptable; `message` says why.
    #[error("invalid {field}: {message}")]
    InvalidField {
        /// The field (`name`, `org`, `team`, `owner`, `expires_at`, `grace`, …).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The manager may not grant these scopes (it does not hold them).
    #[error("scopes not grantable by this manager: {}", list_scopes(.0))]
    NotGrantable(Vec<Scope>),
    /// The key is revoked or expired, so it cannot be rotated.
    #[error("key {id} is {status}; only active keys can be rotated")]
    NotActive {
        /// The key.
        id: String,
        /// Its status.
        status: KeyStatus,
    },
    /// The key was already rotated (its successor is `rotated_to`).
    #[error("key {0} was already rotated")]
    AlreadyRotated(String),
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
    /// No hashing slot became free within the queue deadline (the verifier's slots are busy
    /// checking secrets): retry later (503 `verifier_busy`).
    #[error("no hashing slot within the queue deadline")]
    Busy,
}

fn list_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl ManageError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ManageError::InvalidField {
            field,
            message: message.into(),
        }
    }
}

/// What to create. Build with [`NewKey::new`] and the setters.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a new key is created only by `KeyManager::create`"]
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
    /// The key's own rate limit.
    pub rate_limit: Option<RateLimit>,
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
            rate_limit: None,
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

    /// Sets the key's own rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
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
    /// New keys are hashed in these slots: the verifier's, once [`KeyManager::with_verifier`].
    slots: HashSlots,
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

fn check_label(field: &'static str, value: &str, max_len: usize) -> Result<(), ManageError> {
    if value.trim().is_empty() {
        return Err(ManageError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max_len {
        return Err(ManageError::invalid(
            field,
            format!("is longer than {max_len} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ManageError::invalid(field, "contains control characters"));
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
            slots: HashSlots::per_cpu(),
            audit: Arc::new(TracingAuditSink),
            invalidator: Invalidator::detached(),
            clock: Arc::new(SystemClock),
            actor: None,
        }
    }

    /// Shares the verifier's hasher, hashing slots and clock, and invalidates its caches on
    /// revoke, delete and rotate. New keys are then hashed in the slots that check secrets,
    /// so creating keys cannot add argon2 runs beyond the verifier's bound.
    pub fn with_verifier(mut self, verifier: &Verifier) -> Self {
        self.invalidator = verifier.invalidator();
        self.hasher = Arc::clone(verifier.hasher());
        self.slots = verifier.hash_slots().clone();
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

    fn event(&self, record: &KeyRecord, action: AuditAction, detail: Value) -> AuditEvent {
        AuditEvent {
            key_id: record.id.clone(),
            action,
            at: self.clock.now(),
            org: record.org.clone(),
            actor: self.actor.clone(),
            detail,
        }
    }

    /// Creates a key. The plaintext is in the result and nowhere else.
    pub async fn create(&self, new: NewKey) -> Result<CreatedKey, ManageError> {
        let created = self.prepare(new, None).await?;
        let record = &created.record;
        let event = self.event(record, AuditAction::Created, created_detail(record));
        // The record and its "created" event are written in one transaction.
        let inserted = self
            .store
            .insert(record, std::slice::from_ref(&event))
            .await;
        // A negative cache entry for this id (someone probed it) must not hide the new key;
        // invalidate even when the write failed: it may have committed before the error.
        self.invalidator.invalidate(&record.id);
        if let Err(e) = inserted {
            self.settle(e, &record.id, |found| {
                found.is_some_and(|r| r.hash == record.hash)
            })
            .await?;
        }
        self.audit.record(&event);
        Ok(created)
    }

    /// A write answered `error`: whether it committed all the same decides the answer. When
    /// the error may come after a commit (see [`StoreError::may_have_committed`]), the key is
    /// read back and `done` tells whether it shows the write; then the write is answered as
    /// done (`Ok` with what was read), otherwise the error is. So the answer, the caches
    /// (invalidated by the caller either way) and the audit sink agree with the store.
    ///
    /// `done` must recognise *this* write exactly (the new key's salted hash, the successor's
    /// id): for changes someone else could also have made, see [`KeyManager::settle_by_event`].
    async fn settle(
        &self,
        error: StoreError,
        id: &str,
        done: impl FnOnce(Option<&KeyRecord>) -> bool,
    ) -> Result<Option<KeyRecord>, ManageError> {
        if error.may_have_committed() {
            if let Ok(found) = self.store.get(id).await {
                if done(found.as_ref()) {
                    warn_committed(id, &error);
                    return Ok(found);
                }
            }
        }
        // The write may still commit after this read: what a verifier caches meanwhile must
        // not outlive it.
        self.invalidator.invalidate(id);
        Err(error.into())
    }

    /// [`KeyManager::settle`] for a revoke, delete or update: the write committed iff the
    /// store's trail holds *its* audit event (written in the same transaction), so a change
    /// someone else made meanwhile, or values the key already had, are not mistaken for it.
    async fn settle_by_event(
        &self,
        error: StoreError,
        event: &AuditEvent,
    ) -> Result<(), ManageError> {
        let id = event.key_id.as_str();
        if error.may_have_committed() {
            if let Ok(trail) = self.store.audit_trail(id).await {
                if trail.iter().any(|e| same_event(e, event)) {
                    warn_committed(id, &error);
                    return Ok(());
                }
            }
        }
        self.invalidator.invalidate(id);
        Err(error.into())
    }

    /// Validates `new`, generates the token and hashes it: the record to store, not stored yet.
    async fn prepare(
        &self,
        new: NewKey,
        rotated_from: Option<String>,
    ) -> Result<CreatedKey, ManageError> {
        check_label("name", &new.name, MAX_LABEL_LEN)?;
        check_label("org", &new.org, MAX_LABEL_LEN)?;
        if let Some(t) = &new.team {
            check_label("team", t, MAX_LABEL_LEN)?;
        }
        if let Some(o) = &new.owner {
            check_label("owner", o, MAX_LABEL_LEN)?;
        }
        let now = self.clock.now();
        if new.expires_at.is_some_and(|e| e <= now) {
            return Err(ManageError::invalid("expires_at", "must be in the future"));
        }
        let prefix = new.prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
        let key = token::generate(&prefix)?;
        let hasher = Arc::clone(&self.hasher);
        let secret = zeroize::Zeroizing::new(key.expose_secret().as_bytes().to_vec());
        let slot = self.slots.acquire().await.map_err(|_| ManageError::Busy)?;
        let hash = slot
            .run(move || hasher.hash(&secret))
            .await
            .map_err(|e| HashError::Internal(e.to_string()))??;
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
            rotated_to: None,
            rate_limit: new.rate_limit,
        };
        Ok(CreatedKey { key, record })
    }

    /// Keys matching `filter`, oldest first.
    pub async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, ManageError> {
        Ok(self.store.list(filter).await?)
    }

    /// One page of an organization's keys, newest first, and where the next page starts
    /// (`None` on the last page).
    pub async fn list_page(
        &self,
        query: &PageQuery,
    ) -> Result<(Vec<KeyRecord>, Option<PagePosition>), ManageError> {
        // One more than asked tells whether another page follows.
        let probe = PageQuery {
            limit: query.limit.saturating_add(1),
            ..query.clone()
        };
        let mut keys = self.store.list_page(&probe).await?;
        let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
        let next = if keys.len() > limit {
            keys.truncate(limit);
            keys.last().map(|r| PagePosition {
                created_at: r.created_at,
                id: r.id.clone(),
            })
        } else {
            None
        };
        Ok((keys, next))
    }

    /// One key.
    pub async fn show(&self, id: &str) -> Result<KeyRecord, ManageError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ManageError::NotFound(id.to_owned()))
    }

    /// [`KeyManager::show`]; an unknown id is also dropped from the verifier's cache (a
    /// delete that reported an error may have committed since).
    async fn show_invalidating(&self, id: &str) -> Result<KeyRecord, ManageError> {
        let shown = self.show(id).await;
        if matches!(shown, Err(ManageError::NotFound(_))) {
            self.invalidator.invalidate(id);
        }
        shown
    }

    /// The key's status now.
    pub fn status(&self, record: &KeyRecord) -> KeyStatus {
        record.status_at(self.clock.now())
    }

    /// The time this manager's clock reads.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Revokes a key: it stops working at once for connected verifiers (within their
    /// revocation window elsewhere) and stays listed for audit. Revoking a revoked key
    /// changes nothing and writes no audit event.
    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, ManageError> {
        let before = self.show_invalidating(id).await?;
        if before.revoked_at.is_some() {
            // Perhaps a revoke that reported an error and committed later: whatever a
            // verifier cached meanwhile goes.
            self.invalidator.invalidate(id);
            return Ok(before);
        }
        let now = self.clock.now();
        // The revocation and its event are written in one transaction, so a revoke that
        // committed and then failed (and is retried, taking the early return above) still
        // left its event in the trail.
        let event = self.event(&before, AuditAction::Revoked, Value::Null);
        let written = self.store.revoke(id, now, &event).await;
        // Invalidate even when the write failed: it may have committed before the error.
        self.invalidator.invalidate(id);
        let revoked = match written {
            Ok(revoked) => revoked,
            Err(e) => {
                self.settle_by_event(e, &event).await?;
                true
            }
        };
        if !revoked {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.audit.record(&event);
        match self.show(id).await {
            Ok(record) => Ok(record),
            // Deleted (or unreadable) since: the revoke happened all the same.
            Err(_) => Ok(KeyRecord {
                revoked_at: Some(now),
                ..before
            }),
        }
    }

    /// Deletes a key. Its audit trail stays.
    pub async fn delete(&self, id: &str) -> Result<(), ManageError> {
        let record = self.show_invalidating(id).await?;
        let event = self.event(
            &record,
            AuditAction::Deleted,
            json!({ "name": record.name }),
        );
        // The removal and its event are written in one transaction.
        let written = self.store.delete(id, &event).await;
        // Invalidate even when the write failed: it may have committed before the error.
        self.invalidator.invalidate(id);
        let deleted = match written {
            Ok(deleted) => deleted,
            Err(e) => {
                self.settle_by_event(e, &event).await?;
                true
            }
        };
        if !deleted {
            return Err(ManageError::NotFound(id.to_owned()));
        }
        self.audit.record(&event);
        Ok(())
    }

    /// Sets or clears a key's expiry.
    pub async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<KeyRecord, ManageError> {
        self.update(
            id,
            &KeyUpdate {
                expires_at: Some(expires_at),
                ..KeyUpdate::default()
            },
        )
        .await
    }

    /// Renames a key, changes or clears its expiry and its rate limit, in one write with its
    /// audit event. An empty update changes nothing.
    pub async fn update(&self, id: &str, update: &KeyUpdate) -> Result<KeyRecord, ManageError> {
        if let Some(name) = &update.name {
            check_label("name", name, MAX_LABEL_LEN)?;
        }
        if update.is_empty() {
            return self.show(id).await;
        }
        let before = self.show(id).await?;
        let action = if update.name.is_none() && update.rate_limit.is_none() {
            AuditAction::ExpiryChanged
        } else {
            AuditAction::Updated
        };
        let event = self.event(&before, action, update_detail(update));
        let written = self.store.update(id, update, &event).await;
        self.invalidator.invalidate(id);
        let updated = match written {
            Ok(updated) => updated,
            Err(e) => {
                self.settle_by_event(e, &event).await?;
                self.store.get(id).await?
            }
        };
        let record = updated.ok_or_else(|| ManageError::NotFound(id.to_owned()))?;
        self.audit.record(&event);
        Ok(record)
    }

    /// Rotates a key: a new key with the same name, org, team, owner, scopes, expiry, prefix,
    /// rate limit and metadata; the old one keeps working for `grace`, then expires (never
    /// later than its own expiry). One store transaction checks that the old key is still
    /// active and not rotated yet, so a second rotation answers
    /// [`ManageError::AlreadyRotated`] and a rotation never outlives a revocation that came
    /// first ([`ManageError::NotActive`]).
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey, ManageError> {
        let old = self.show(id).await?;
        let now = self.clock.now();
        if old.rotated_to.is_some() {
            return Err(ManageError::AlreadyRotated(id.to_owned()));
        }
        match old.status_at(now) {
            KeyStatus::Active => {}
            status => {
                return Err(ManageError::NotActive {
                    id: id.to_owned(),
                    status,
                })
            }
        }
        let grace = chrono::Duration::from_std(grace)
            .map_err(|_| ManageError::invalid("grace", "is too long"))?;
        let old_ends = now
            .checked_add_signed(grace)
            .ok_or_else(|| ManageError::invalid("grace", "is too long"))?;
        let new = NewKey {
            name: old.name.clone(),
            org: old.org.clone(),
            team: old.team.clone(),
            owner: old.owner.clone(),
            scopes: old.scopes.clone(),
            expires_at: old.expires_at,
            prefix: Some(old.prefix.clone()),
            metadata: old.metadata.clone(),
            rate_limit: old.rate_limit,
        };
        let created = self.prepare(new, Some(old.id.clone())).await?;
        let old_ends = old.expires_at.map_or(old_ends, |e| e.min(old_ends));
        let events = [
            self.event(
                &created.record,
                AuditAction::Created,
                created_detail(&created.record),
            ),
            self.event(
                &old,
                AuditAction::Rotated,
                json!({ "new_id": created.record.id, "old_expires_at": old_ends }),
            ),
        ];
        let outcome = self
            .store
            .rotate(&Rotation {
                old_id: id,
                successor: &created.record,
                old_expires_at: old_ends,
                now,
                audit: &events,
            })
            .await;
        self.invalidator.invalidate(id);
        self.invalidator.invalidate(&created.record.id);
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                let new_id = created.record.id.as_str();
                self.settle(e, id, |found| {
                    found.is_some_and(|r| r.rotated_to.as_deref() == Some(new_id))
                })
                .await?;
                RotateOutcome::Rotated
            }
        };
        match outcome {
            RotateOutcome::Rotated => {}
            RotateOutcome::NotFound => return Err(ManageError::NotFound(id.to_owned())),
            RotateOutcome::AlreadyRotated => {
                return Err(ManageError::AlreadyRotated(id.to_owned()))
            }
            RotateOutcome::NotActive => {
                let status = self
                    .show(id)
                    .await
                    .map_or(KeyStatus::Revoked, |r| r.status_at(self.clock.now()));
                return Err(ManageError::NotActive {
                    id: id.to_owned(),
                    status,
                });
            }
        }
        for e in &events {
            self.audit.record(e);
        }
        Ok(created)
    }

    /// Request totals of `ids` over the last 24 hours and 30 days (hourly buckets ending with
    /// the current hour); keys without counts are absent.
    pub async fn usage_totals(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, UsageTotals>, ManageError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let hour = hour_start(self.clock.now());
        let day_since = hour - chrono::Duration::hours(23);
        let month_since = hour - chrono::Duration::hours(30 * 24 - 1);
        Ok(self
            .store
            .usage_totals(ids, day_since, month_since)
            .await?
            .into_iter()
            .map(|t| (t.key_id.clone(), t))
            .collect())
    }

    /// Requests and refusals of key `id` per UTC day, for the last `days` days including
    /// today (1 to [`MAX_USAGE_DAYS`]; outside that, the nearest), oldest first, one entry per
    /// day (days without traffic are zero).
    pub async fn daily_usage(&self, id: &str, days: u32) -> Result<Vec<DailyUsage>, ManageError> {
        let today = self.clock.now().date_naive();
        let back = chrono::Days::new(u64::from(days.clamp(1, MAX_USAGE_DAYS)) - 1);
        let first = today.checked_sub_days(back).unwrap_or(today);
        let since = first.and_time(chrono::NaiveTime::MIN).and_utc();
        let mut out: Vec<DailyUsage> = first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|day| DailyUsage {
                day,
                requests: 0,
                refused: 0,
            })
            .collect();
        for c in self.store.usage(id, since).await? {
            let i = (c.hour.date_naive() - first).num_days();
            if let Some(d) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                d.requests = d.requests.saturating_add(c.requests);
                d.refused = d.refused.saturating_add(c.refused);
            }
        }
        Ok(out)
    }

    /// The audit trail of a key (also after deletion).
    pub async fn audit_trail(&self, id: &str) -> Result<Vec<AuditEvent>, ManageError> {
        Ok(self.store.audit_trail(id).await?)
    }
}

/// Requests of one key on one UTC day ([`KeyManager::daily_usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyUsage {
    /// The day (UTC).
    pub day: NaiveDate,
    /// Accepted requests.
    pub requests: u64,
    /// Refused requests of a parsed key of this id.
    pub refused: u64,
}

fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::hours(1)).unwrap_or(t)
}

fn created_detail(record: &KeyRecord) -> Value {
    json!({ "name": record.name, "scopes": record.scopes, "rotated_from": record.rotated_from })
}

/// Whether `stored` (read back from a store's trail) is `ours`: the same key, action, actor,
/// organization and detail, at the same time to the millisecond (stores keep microseconds or
/// milliseconds of the nanosecond clock).
fn same_event(stored: &AuditEvent, ours: &AuditEvent) -> bool {
    stored.key_id == ours.key_id
        && stored.action == ours.action
        && stored.actor == ours.actor
        && stored.org == ours.org
        && stored.detail == ours.detail
        && (stored.at - ours.at)
            .num_microseconds()
            .is_some_and(|d| d.abs() < 1_000)
}

fn warn_committed(id: &str, error: &StoreError) {
    tracing::warn!(
        key_id = id,
        error = %error,
        "keygate: a key store write reported an error after it committed; answered as done"
    );
}

fn update_detail(update: &KeyUpdate) -> Value {
    let mut detail = serde_json::Map::new();
    if let Some(n) = &update.name {
        detail.insert("name".into(), Value::from(n.as_str()));
    }
    if let Some(e) = update.expires_at {
        detail.insert("expires_at".into(), json!(e));
    }
    if let Some(l) = update.rate_limit {
        detail.insert("rate_limit".into(), json!(l));
    }
    Value::Object(detail)
}
