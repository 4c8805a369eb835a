//! One store test suite, written once and run against every store: `memory::*` (the
//! reference semantics), `sqlite::*` (a temporary file) and `postgres::*` (a schema of its own
//! on `KEYGATE_TEST_POSTGRES_URL`; SKIPPED, visibly, when that is unset).

mod support;

use std::sync::Arc;
use std::time::Duration;

use keygate::{
    AuditAction, AuditEvent, AuthError, KeyFilter, KeyManager, KeyStore, ManualClock, NewKey,
    ScopeSet, StoreError,
};
use serde_json::json;
use support::{record, t};

/// The cases: each takes a fresh, empty store.
mod cases {
    use super::*;

    pub(crate) async fn insert_then_get_returns_every_field(store: Arc<dyn KeyStore>) {
        let mut r = record("k1", "acme", 0);
        r.team = Some("payments".into());
        r.owner = Some("ana".into());
        r.scopes =
            ScopeSet::parse(["entities:read", "knowledge:write", "content.register"]).unwrap();
        r.metadata =
            json!({"tier": "gold", "limits": {"rpm": 600}, "tags": ["a", "b"], "ratio": 0.5});
        r.expires_at = Some(t(86_400_000));
        r.revoked_at = Some(t(5_000));
        r.last_used_at = Some(t(4_000));
        r.rotated_from = Some("k0".into());
        store.insert(&r).await.unwrap();
        assert_eq!(store.get("k1").await.unwrap(), Some(r));
    }

    pub(crate) async fn get_of_an_unknown_id_is_none(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0)).await.unwrap();
        assert_eq!(store.get("k2").await.unwrap(), None);
    }

    pub(crate) async fn inserting_an_existing_id_is_a_conflict_and_keeps_the_first(
        store: Arc<dyn KeyStore>,
    ) {
        let first = record("k1", "acme", 0);
        store.insert(&first).await.unwrap();
        let mut second = record("k1", "other", 1);
        second.name = "impostor".into();
        let err = store.insert(&second).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(id) if id == "k1"),
            "{err:?}"
        );
        assert_eq!(store.get("k1").await.unwrap(), Some(first));
    }

    pub(crate) async fn hash_column_holds_long_phc_strings(store: Arc<dyn KeyStore>) {
        // A real peer shipped a 100-character column that argon2 overflowed.
        let mut r = record("k1", "acme", 0);
        r.hash = format!("$argon2id$v=19$m=65536,t=4,p=4${}", "A".repeat(600));
        store.insert(&r).await.unwrap();
        assert_eq!(store.get("k1").await.unwrap().unwrap().hash, r.hash);
    }

    pub(crate) async fn list_orders_by_created_at_then_id_in_byte_order(store: Arc<dyn KeyStore>) {
        for (id, ms) in [("b", 2), ("z", 0), ("a", 1), ("Y", 0), ("a0", 0)] {
            store.insert(&record(id, "acme", ms)).await.unwrap();
        }
        let ids: Vec<String> = store
            .list(&KeyFilter::all())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["Y", "a0", "z", "a", "b"]);
    }

    pub(crate) async fn list_filters_by_org_team_and_owner(store: Arc<dyn KeyStore>) {
        let mut a = record("a", "acme", 0);
        a.team = Some("red".into());
        a.owner = Some("ana".into());
        let mut b = record("b", "acme", 1);
        b.team = Some("blue".into());
        b.owner = Some("ana".into());
        let mut c = record("c", "globex", 2);
        c.team = Some("red".into());
        let d = record("d", "acme", 3);
        for r in [&a, &b, &c, &d] {
            store.insert(r).await.unwrap();
        }
        let ids = |f: KeyFilter| {
            let store = Arc::clone(&store);
            async move {
                store
                    .list(&f)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(ids(KeyFilter::all()).await, ["a", "b", "c", "d"]);
        assert_eq!(ids(KeyFilter::org("acme")).await, ["a", "b", "d"]);
        assert_eq!(ids(KeyFilter::org("nobody")).await, Vec::<String>::new());
        let red = KeyFilter {
            team: Some("red".into()),
            ..KeyFilter::all()
        };
        assert_eq!(ids(red).await, ["a", "c"]);
        let acme_ana_blue = KeyFilter {
            org: Some("acme".into()),
            team: Some("blue".into()),
            owner: Some("ana".into()),
        };
        assert_eq!(ids(acme_ana_blue).await, ["b"]);
    }

    pub(crate) async fn revoke_keeps_the_row_and_the_first_revocation_time(
        store: Arc<dyn KeyStore>,
    ) {
        store.insert(&record("k1", "acme", 0)).await.unwrap();
        assert!(store.revoke("k1", t(10)).await.unwrap());
        assert!(store.revoke("k1", t(20)).await.unwrap());
        let r = store.get("k1").await.unwrap().unwrap();
        assert_eq!(r.revoked_at, Some(t(10)));
        assert!(!store.revoke("nope", t(30)).await.unwrap());
    }

    pub(crate) async fn delete_removes_the_key_and_reports_unknown_ids(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0)).await.unwrap();
        store.insert(&record("k2", "acme", 1)).await.unwrap();
        assert!(store.delete("k1").await.unwrap());
        assert_eq!(store.get("k1").await.unwrap(), None);
        assert!(!store.delete("k1").await.unwrap());
        assert_eq!(store.list(&KeyFilter::all()).await.unwrap().len(), 1);
    }

    pub(crate) async fn set_expiry_sets_and_clears_the_expiry(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0)).await.unwrap();
        assert!(store.set_expiry("k1", Some(t(1_000))).await.unwrap());
        assert_eq!(
            store.get("k1").await.unwrap().unwrap().expires_at,
            Some(t(1_000))
        );
        assert!(store.set_expiry("k1", None).await.unwrap());
        assert_eq!(store.get("k1").await.unwrap().unwrap().expires_at, None);
        assert!(!store.set_expiry("nope", None).await.unwrap());
    }

    pub(crate) async fn update_hash_replaces_only_the_hash(store: Arc<dyn KeyStore>) {
        let before = record("k1", "acme", 0);
        store.insert(&before).await.unwrap();
        assert!(store.update_hash("k1", "$argon2id$new").await.unwrap());
        let after = store.get("k1").await.unwrap().unwrap();
        assert_eq!(after.hash, "$argon2id$new");
        assert_eq!(
            keygate::KeyRecord {
                hash: before.hash.clone(),
                ..after
            },
            before
        );
        assert!(!store.update_hash("nope", "x").await.unwrap());
    }

    pub(crate) async fn touch_last_used_moves_times_forward_only_and_ignores_unknown_ids(
        store: Arc<dyn KeyStore>,
    ) {
        for id in ["a", "b", "c"] {
            store.insert(&record(id, "acme", 0)).await.unwrap();
        }
        store
            .touch_last_used(&[("a".into(), t(100)), ("b".into(), t(100))])
            .await
            .unwrap();
        store
            .touch_last_used(&[
                ("a".into(), t(50)),  // older: must not move a back
                ("b".into(), t(200)), // newer: moves b
                ("b".into(), t(150)), // same batch, older than 200: ignored
                ("ghost".into(), t(300)),
            ])
            .await
            .unwrap();
        store.touch_last_used(&[]).await.unwrap();
        let last = |id: &'static str| {
            let store = Arc::clone(&store);
            async move { store.get(id).await.unwrap().unwrap().last_used_at }
        };
        assert_eq!(last("a").await, Some(t(100)));
        assert_eq!(last("b").await, Some(t(200)));
        assert_eq!(last("c").await, None);
        assert_eq!(store.get("ghost").await.unwrap(), None);
    }

    pub(crate) async fn touch_last_used_writes_a_large_batch(store: Arc<dyn KeyStore>) {
        let n = 300;
        let mut uses = Vec::new();
        for i in 0..n {
            let id = format!("k{i:04}");
            store.insert(&record(&id, "acme", 0)).await.unwrap();
            uses.push((id, t(1_000 + i)));
        }
        store.touch_last_used(&uses).await.unwrap();
        let listed = store.list(&KeyFilter::all()).await.unwrap();
        assert_eq!(listed.len(), n as usize);
        for (r, (_, at)) in listed.iter().zip(&uses) {
            assert_eq!(r.last_used_at, Some(*at), "{}", r.id);
        }
    }

    pub(crate) async fn audit_trail_is_per_key_in_order_and_outlives_the_key(
        store: Arc<dyn KeyStore>,
    ) {
        store.insert(&record("k1", "acme", 0)).await.unwrap();
        let event = |key: &str, action, ms, detail| AuditEvent {
            key_id: key.into(),
            action,
            at: t(ms),
            org: "acme".into(),
            actor: Some("ops".into()),
            detail,
        };
        let trail = [
            event("k1", AuditAction::Created, 0, json!({"name": "key k1"})),
            // Deliberately older than the first: the trail is in append order.
            event(
                "k1",
                AuditAction::ExpiryChanged,
                -5,
                json!({"expires_at": null}),
            ),
            event("k1", AuditAction::Rotated, 20, json!({"new_id": "k2"})),
            event("k1", AuditAction::Deleted, 30, serde_json::Value::Null),
        ];
        store.append_audit(&trail[0]).await.unwrap();
        store
            .append_audit(&event("k2", AuditAction::Created, 1, json!({})))
            .await
            .unwrap();
        for e in &trail[1..] {
            store.append_audit(e).await.unwrap();
        }
        assert!(store.delete("k1").await.unwrap());
        assert_eq!(store.audit_trail("k1").await.unwrap(), trail);
        assert_eq!(store.audit_trail("k2").await.unwrap().len(), 1);
        assert!(store.audit_trail("nobody").await.unwrap().is_empty());
    }

    pub(crate) async fn parallel_inserts_and_revokes_all_land(store: Arc<dyn KeyStore>) {
        let n = 40;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(
                    async move { store.insert(&record(&format!("k{i:02}"), "acme", i)).await },
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Half the keys revoked concurrently, each twice.
        let tasks: Vec<_> = (0..n)
            .filter(|i| i % 2 == 0)
            .flat_map(|i| [i, i])
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.revoke(&format!("k{i:02}"), t(1_000)).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        let listed = store.list(&KeyFilter::all()).await.unwrap();
        assert_eq!(listed.len(), n as usize);
        for (i, r) in listed.iter().enumerate() {
            assert_eq!(r.id, format!("k{i:02}"));
            assert_eq!(r.revoked_at.is_some(), i % 2 == 0, "{}", r.id);
        }
    }

    pub(crate) async fn manager_and_verifier_run_the_whole_lifecycle(store: Arc<dyn KeyStore>) {
        let clock = ManualClock::new(t(0));
        let verifier = super::support::verifier(Arc::clone(&store), &clock);
        let manager = KeyManager::new(Arc::clone(&store))
            .with_verifier(&verifier)
            .with_actor("ops");
        let created = manager
            .create(
                NewKey::new("billing", "acme")
                    .owner("ana")
                    .metadata(json!({"plan": "pro"}))
                    .scopes(["entities:read"])
                    .unwrap(),
            )
            .await
            .unwrap();
        let old = created.key.expose_secret().to_owned();
        assert_eq!(
            verifier.verify(&old).await.unwrap().owner.as_deref(),
            Some("ana")
        );

        let rotated = manager
            .rotate(&created.record.id, Duration::from_secs(3600))
            .await
            .unwrap();
        let new = rotated.key.expose_secret().to_owned();
        assert_eq!(
            rotated.record.rotated_from.as_deref(),
            Some(created.record.id.as_str())
        );
        assert_eq!(
            verifier.verify(&new).await.unwrap().metadata,
            json!({"plan": "pro"})
        );
        assert!(
            verifier.verify(&old).await.is_ok(),
            "old key works during the grace period"
        );
        clock.advance(Duration::from_secs(3601));
        assert_eq!(
            verifier.verify(&old).await.unwrap_err(),
            AuthError::ExpiredKey
        );

        manager.revoke(&rotated.record.id).await.unwrap();
        assert_eq!(
            verifier.verify(&new).await.unwrap_err(),
            AuthError::RevokedKey
        );

        let actions = |id: String| {
            let manager = manager.clone();
            async move {
                manager
                    .audit_trail(&id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.action, e.actor))
                    .collect::<Vec<_>>()
            }
        };
        let ops = Some("ops".to_owned());
        assert_eq!(
            actions(created.record.id.clone()).await,
            [
                (AuditAction::Created, ops.clone()),
                (AuditAction::Rotated, ops.clone())
            ]
        );
        assert_eq!(
            actions(rotated.record.id.clone()).await,
            [
                (AuditAction::Created, ops.clone()),
                (AuditAction::Revoked, ops)
            ]
        );
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::support::memory()).await;
                }
            )*
        }

        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir, _url) = super::support::sqlite().await;
                    super::cases::$case(std::sync::Arc::new(store)).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(pg) = super::support::Pg::fixture(
                        concat!("store_suite::postgres::", stringify!($case)),
                    ).await else {
                        return;
                    };
                    let store = pg.store(keygate_sqlx::StoreOptions::default()).await;
                    super::cases::$case(std::sync::Arc::new(store)).await;
                    pg.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    insert_then_get_returns_every_field,
    get_of_an_unknown_id_is_none,
    inserting_an_existing_id_is_a_conflict_and_keeps_the_first,
    hash_column_holds_long_phc_strings,
    list_orders_by_created_at_then_id_in_byte_order,
    list_filters_by_org_team_and_owner,
    revoke_keeps_the_row_and_the_first_revocation_time,
    delete_removes_the_key_and_reports_unknown_ids,
    set_expiry_sets_and_clears_the_expiry,
    update_hash_replaces_only_the_hash,
    touch_last_used_moves_times_forward_only_and_ignores_unknown_ids,
    touch_last_used_writes_a_large_batch,
    audit_trail_is_per_key_in_order_and_outlives_the_key,
    parallel_inserts_and_revokes_all_land,
    manager_and_verifier_run_the_whole_lifecycle,
);
