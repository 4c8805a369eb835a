//! A store write that commits and then times out (issue 10, item 2; issue 13, finding 12):
//! the manager reads the key back and answers what the store did, so the answer, the
//! verifier's cache, the store's audit trail (written in one transaction with each change) and
//! the audit sink all agree. A write that failed before committing is still the error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keygate::keys_api::{ApiRequest, KeysApi};
use keygate::{
    AuditAction, AuditEvent, AuditSink, ErrorResponse, KeyFilter, KeyManager, KeyRecord, KeyStore,
    KeyUpdate, ManageError, ManualClock, MemoryStore, NewKey, PageQuery, RotateOutcome, Rotation,
    StoreError, UsageCount, UsageTotals, Verifier,
};
use serde_json::Value;

/// A [`MemoryStore`] whose writes, once armed, commit and then answer
/// [`StoreError::Timeout`]: the answer is lost, the change is not. It can also fail writes
/// without committing them, and delete a key right after revoking it (as another process
/// might, between the revoke and the read after it).
#[derive(Default)]
struct CommitThenTimeout {
    inner: MemoryStore,
    armed: AtomicBool,
    failing: AtomicBool,
    delete_after_revoke: AtomicBool,
    /// A revoke or delete is lost, while the same change by someone else commits.
    someone_else_wins: AtomicBool,
}

impl CommitThenTimeout {
    /// The event as someone else's.
    fn theirs(&self, audit: &AuditEvent) -> Option<AuditEvent> {
        self.someone_else_wins
            .load(Ordering::SeqCst)
            .then(|| AuditEvent {
                actor: Some("someone-else".into()),
                ..audit.clone()
            })
    }
}

impl CommitThenTimeout {
    fn answer<T>(&self, committed: Result<T, StoreError>) -> Result<T, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Timeout(Duration::from_secs(2)));
        }
        let value = committed?;
        if self.armed.load(Ordering::SeqCst) {
            Err(StoreError::Timeout(Duration::from_secs(2)))
        } else {
            Ok(value)
        }
    }
}

#[async_trait]
impl KeyStore for CommitThenTimeout {
    async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn insert(&self, record: &KeyRecord, audit: &[AuditEvent]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return self.answer(Ok(()));
        }
        self.answer(self.inner.insert(record, audit).await)
    }
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list(filter).await
    }
    async fn list_page(&self, query: &PageQuery) -> Result<Vec<KeyRecord>, StoreError> {
        self.inner.list_page(query).await
    }
    async fn rotate(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        self.answer(self.inner.rotate(rotation).await)
    }
    async fn update(
        &self,
        id: &str,
        update: &KeyUpdate,
        audit: &AuditEvent,
    ) -> Result<Option<KeyRecord>, StoreError> {
        self.answer(self.inner.update(id, update, audit).await)
    }
    async fn revoke(
        &self,
        id: &str,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return self.answer(Ok(false));
        }
        if let Some(theirs) = self.theirs(audit) {
            self.inner.revoke(id, at, &theirs).await?;
            return Err(StoreError::Timeout(Duration::from_secs(2)));
        }
        let revoked = self.inner.revoke(id, at, audit).await;
        if self.delete_after_revoke.load(Ordering::SeqCst) {
            let deleted = AuditEvent {
                action: AuditAction::Deleted,
                ..audit.clone()
            };
            self.inner.delete(id, &deleted).await?;
        }
        self.answer(revoked)
    }
    async fn delete(&self, id: &str, audit: &AuditEvent) -> Result<bool, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return self.answer(Ok(false));
        }
        if let Some(theirs) = self.theirs(audit) {
            self.inner.delete(id, &theirs).await?;
            return Err(StoreError::Timeout(Duration::from_secs(2)));
        }
        self.answer(self.inner.delete(id, audit).await)
    }
    async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        self.answer(self.inner.set_expiry(id, expires_at).await)
    }
    async fn update_hash(
        &self,
        id: &str,
        expected: &str,
        hash: &str,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        self.inner.update_hash(id, expected, hash, audit).await
    }
    async fn touch_last_used(&self, uses: &[(String, DateTime<Utc>)]) -> Result<(), StoreError> {
        self.inner.touch_last_used(uses).await
    }
    async fn add_usage(&self, counts: &[UsageCount]) -> Result<(), StoreError> {
        self.inner.add_usage(counts).await
    }
    async fn usage(
        &self,
        key_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<UsageCount>, StoreError> {
        self.inner.usage(key_id, since).await
    }
    async fn usage_totals(
        &self,
        key_ids: &[String],
        day_since: DateTime<Utc>,
        month_since: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>, StoreError> {
        self.inner
            .usage_totals(key_ids, day_since, month_since)
            .await
    }
    async fn prune_usage(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.prune_usage(before).await
    }
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.answer(self.inner.append_audit(event).await)
    }
    async fn audit_trail(&self, key_id: &str) -> Result<Vec<AuditEvent>, StoreError> {
        self.inner.audit_trail(key_id).await
    }
}

/// Keeps every event the manager hands to its audit sink.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<AuditAction>>>);

impl AuditSink for Sink {
    fn record(&self, event: &AuditEvent) {
        self.0.lock().unwrap().push(event.action);
    }
}

impl Sink {
    fn actions(&self) -> Vec<AuditAction> {
        self.0.lock().unwrap().clone()
    }
}

struct Fixture {
    store: Arc<CommitThenTimeout>,
    sink: Sink,
    verifier: Verifier,
    manager: KeyManager,
    api: KeysApi,
}

fn fixture() -> Fixture {
    let store = Arc::new(CommitThenTimeout::default());
    let sink = Sink::default();
    let verifier = Verifier::builder(store.clone())
        .clock(ManualClock::starting_now())
        // Long enough that only an invalidation can make a cached key fail.
        .revocation_window(Duration::from_secs(3600))
        .build();
    let manager = KeyManager::new(store.clone())
        .with_verifier(&verifier)
        .with_actor("ops")
        .with_audit_sink(sink.clone());
    let api = KeysApi::new(manager.clone(), verifier.clone());
    Fixture {
        store,
        sink,
        verifier,
        manager,
        api,
    }
}

impl Fixture {
    async fn key(&self, name: &str, scopes: &[&str]) -> (String, String) {
        let created = self
            .manager
            .create(
                NewKey::new(name, "acme")
                    .scopes(scopes.iter().copied())
                    .unwrap(),
            )
            .await
            .unwrap();
        (
            created.key.expose_secret().to_owned(),
            created.record.id.clone(),
        )
    }

    async fn call(&self, key: &str, method: &str, path: &str) -> ErrorResponse {
        let headers = [("x-api-key", key.as_bytes())];
        self.api
            .handle(&ApiRequest::new(method, path, &headers))
            .await
    }

    async fn actions(&self, id: &str) -> Vec<AuditAction> {
        self.store
            .audit_trail(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

fn body(r: &ErrorResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_revoke_that_commits_then_times_out_answers_200_bites_at_once_and_is_audited_once() {
    let f = fixture();
    let (admin, admin_id) = f.key("admin", &["keys:manage"]).await;
    let (token, id) = f.key("ci", &["boards:read"]).await;
    // Cached as active by the verifier before the revoke.
    assert!(f.verifier.verify(&token).await.is_ok());

    f.store.armed.store(true, Ordering::SeqCst);
    let r = f
        .call(&admin, "POST", &format!("/api/v1/keys/{id}/revoke"))
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(body(&r)["status"], "revoked");

    // The store holds the revocation: the very next verification refuses the key.
    assert_eq!(
        f.verifier.verify(&token).await.unwrap_err().reason(),
        "revoked_key"
    );
    let trail = f.store.audit_trail(&id).await.unwrap();
    let revoked: Vec<&AuditEvent> = trail
        .iter()
        .filter(|e| e.action == AuditAction::Revoked)
        .collect();
    assert_eq!(revoked.len(), 1, "{trail:?}");
    assert_eq!(revoked[0].actor, Some(format!("key:{admin_id}")));

    // A retry answers the revoked key and writes no second event.
    f.store.armed.store(false, Ordering::SeqCst);
    let again = f
        .call(&admin, "POST", &format!("/api/v1/keys/{id}/revoke"))
        .await;
    assert_eq!(again.status, 200, "{}", body(&again));
    assert_eq!(body(&again)["status"], "revoked");
    assert_eq!(
        f.actions(&id).await,
        [AuditAction::Created, AuditAction::Revoked]
    );
}

#[tokio::test]
async fn a_manager_revoke_that_commits_then_times_out_is_answered_revoked_with_a_complete_trail() {
    let f = fixture();
    let (token, id) = f.key("ci", &["boards:read"]).await;
    assert!(f.verifier.verify(&token).await.is_ok());

    f.store.armed.store(true, Ordering::SeqCst);
    let revoked = f.manager.revoke(&id).await.expect("the revoke committed");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Revoked]
    );
    assert_eq!(
        f.verifier.verify(&token).await.unwrap_err().reason(),
        "revoked_key"
    );
    let retried = f.manager.revoke(&id).await.unwrap();
    assert!(retried.revoked_at.is_some());
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Revoked]
    );
    assert_eq!(
        f.actions(&id).await,
        [AuditAction::Created, AuditAction::Revoked]
    );
    let trail = f.store.audit_trail(&id).await.unwrap();
    assert_eq!(trail[1].actor.as_deref(), Some("ops"));
}

#[tokio::test]
async fn a_create_that_commits_then_times_out_answers_the_key_with_its_created_event() {
    let f = fixture();
    f.store.armed.store(true, Ordering::SeqCst);
    let created = f
        .manager
        .create(NewKey::new("late", "acme").scopes(["boards:read"]).unwrap())
        .await
        .expect("the insert committed: its key is answered, not lost");
    f.verifier
        .verify(created.key.expose_secret())
        .await
        .expect("the key answered is the key stored");
    assert_eq!(f.sink.actions(), [AuditAction::Created]);
    let stored = f.store.list(&KeyFilter::all()).await.unwrap();
    assert_eq!(stored.len(), 1, "the insert committed");
    let trail = f.store.audit_trail(&stored[0].id).await.unwrap();
    assert_eq!(
        trail.iter().map(|e| e.action).collect::<Vec<_>>(),
        [AuditAction::Created],
        "{trail:?}"
    );
    assert_eq!(trail[0].actor.as_deref(), Some("ops"));
    assert_eq!(trail[0].org, "acme");
}

#[tokio::test]
async fn a_delete_that_commits_then_times_out_answers_deleted_with_its_deleted_event() {
    let f = fixture();
    let (token, id) = f.key("doomed", &["boards:read"]).await;
    assert!(f.verifier.verify(&token).await.is_ok());

    f.store.armed.store(true, Ordering::SeqCst);
    f.manager.delete(&id).await.expect("the delete committed");
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Deleted]
    );
    assert_eq!(
        f.store.get(&id).await.unwrap(),
        None,
        "the delete committed"
    );
    assert!(
        f.verifier.verify(&token).await.is_err(),
        "a deleted key is refused on the next verification"
    );
    assert_eq!(
        f.actions(&id).await,
        [AuditAction::Created, AuditAction::Deleted]
    );
    let trail = f.store.audit_trail(&id).await.unwrap();
    assert_eq!(trail[1].actor.as_deref(), Some("ops"));
}

#[tokio::test]
async fn a_rotation_that_commits_then_times_out_answers_the_new_key() {
    let f = fixture();
    let (_, id) = f.key("rotated", &["boards:read"]).await;
    f.store.armed.store(true, Ordering::SeqCst);
    let created = f
        .manager
        .rotate(&id, Duration::from_secs(60))
        .await
        .expect("the rotation committed");
    f.store.armed.store(false, Ordering::SeqCst);
    f.verifier
        .verify(created.key.expose_secret())
        .await
        .expect("the successor answered is the one stored");
    let old = f.manager.show(&id).await.unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some(created.record.id.as_str()));
    assert_eq!(
        f.sink.actions(),
        [
            AuditAction::Created,
            AuditAction::Created,
            AuditAction::Rotated
        ]
    );
}

#[tokio::test]
async fn an_update_that_commits_then_times_out_answers_the_updated_key() {
    let f = fixture();
    let (_, id) = f.key("before", &["boards:read"]).await;
    f.store.armed.store(true, Ordering::SeqCst);
    let update = KeyUpdate {
        name: Some("after".into()),
        ..KeyUpdate::default()
    };
    let updated = f
        .manager
        .update(&id, &update)
        .await
        .expect("the update committed");
    assert_eq!(updated.name, "after");
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Updated]
    );
}

#[tokio::test]
async fn a_write_that_times_out_before_committing_is_the_error_and_changes_nothing() {
    let f = fixture();
    let (token, id) = f.key("kept", &["boards:read"]).await;
    f.store.failing.store(true, Ordering::SeqCst);
    for err in [
        f.manager.revoke(&id).await.map(drop).unwrap_err(),
        f.manager.delete(&id).await.unwrap_err(),
        f.manager
            .create(NewKey::new("never", "acme"))
            .await
            .map(drop)
            .unwrap_err(),
    ] {
        assert!(
            matches!(err, ManageError::Store(StoreError::Timeout(_))),
            "{err:?}"
        );
    }
    f.store.failing.store(false, Ordering::SeqCst);
    f.verifier.verify(&token).await.expect("still active");
    assert_eq!(f.store.list(&KeyFilter::all()).await.unwrap().len(), 1);
    assert_eq!(f.sink.actions(), [AuditAction::Created]);
    assert_eq!(f.actions(&id).await, [AuditAction::Created]);
}

#[tokio::test]
async fn a_revoke_whose_key_is_deleted_before_the_read_back_still_answers_revoked() {
    let f = fixture();
    let (_, id) = f.key("gone", &["boards:read"]).await;
    f.store.delete_after_revoke.store(true, Ordering::SeqCst);
    let revoked = f.manager.revoke(&id).await.expect("the revoke happened");
    assert_eq!(revoked.id, id);
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Revoked]
    );
}

/// A revoke that failed, then committed after the manager read the key back (a slow commit):
/// a verification meanwhile cached the key as active. The retry, which finds the key revoked,
/// must still drop that entry, or the key keeps working for the revocation window.
#[tokio::test]
async fn a_revoke_that_commits_after_its_read_back_bites_once_it_is_retried() {
    let f = fixture();
    let (token, id) = f.key("late", &["boards:read"]).await;
    f.store.failing.store(true, Ordering::SeqCst);
    assert!(f.manager.revoke(&id).await.is_err());
    f.store.failing.store(false, Ordering::SeqCst);
    f.verifier.verify(&token).await.expect("not revoked yet");
    // The commit lands.
    let late = keygate::AuditEvent {
        key_id: id.clone(),
        action: AuditAction::Revoked,
        at: f.manager.now(),
        org: "acme".into(),
        actor: Some("ops".into()),
        detail: Value::Null,
    };
    assert!(f
        .store
        .inner
        .revoke(&id, f.manager.now(), &late)
        .await
        .unwrap());
    let retried = f.manager.revoke(&id).await.unwrap();
    assert!(retried.revoked_at.is_some());
    assert_eq!(
        f.verifier.verify(&token).await.unwrap_err().reason(),
        "revoked_key"
    );
}

/// Our revoke or delete was lost while someone else's same change committed: the store shows
/// the change, but not ours. The answer is the error, and the audit sink hears nothing.
#[tokio::test]
async fn a_lost_write_is_not_mistaken_for_someone_elses_identical_change() {
    let f = fixture();
    let (_, revoked) = f.key("revoked by them", &["boards:read"]).await;
    let (_, deleted) = f.key("deleted by them", &["boards:read"]).await;
    f.store.someone_else_wins.store(true, Ordering::SeqCst);
    let revoke = f.manager.revoke(&revoked).await;
    assert!(
        matches!(revoke, Err(ManageError::Store(StoreError::Timeout(_)))),
        "{revoke:?}"
    );
    let delete = f.manager.delete(&deleted).await;
    assert!(
        matches!(delete, Err(ManageError::Store(StoreError::Timeout(_)))),
        "{delete:?}"
    );
    assert_eq!(
        f.sink.actions(),
        [AuditAction::Created, AuditAction::Created]
    );
}
