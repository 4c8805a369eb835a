//! One store test suite, written once and run against every store: `memory::*` (the
//! reference semantics), `sqlite::*` (a temporary file) and `postgres::*` (a schema of its own
//! on `KEYGATE_TEST_POSTGRES_URL`; SKIPPED, visibly, when that is unset).

mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use keygate::{
    AuditAction, AuditEvent, AuthError, KeyFilter, KeyManager, KeyRecord, KeyStatus, KeyStore,
    KeyUpdate, ManualClock, NewKey, PagePosition, PageQuery, RateLimit, RotateOutcome, Rotation,
    ScopeSet, StoreError, UsageCount, UsageTotals,
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
        r.rotated_to = Some("k2".into());
        r.rate_limit = Some("1000/1m".parse().unwrap());
        store.insert(&r, &[]).await.unwrap();
        assert_eq!(store.get("k1").await.unwrap(), Some(r));
    }

    pub(crate) async fn get_of_an_unknown_id_is_none(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        assert_eq!(store.get("k2").await.unwrap(), None);
    }

    pub(crate) async fn inserting_an_existing_id_is_a_conflict_and_keeps_the_first(
        store: Arc<dyn KeyStore>,
    ) {
        let first = record("k1", "acme", 0);
        store.insert(&first, &[]).await.unwrap();
        let mut second = record("k1", "other", 1);
        second.name = "impostor".into();
        let err = store.insert(&second, &[]).await.unwrap_err();
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
        store.insert(&r, &[]).await.unwrap();
        assert_eq!(store.get("k1").await.unwrap().unwrap().hash, r.hash);
    }

    pub(crate) async fn list_orders_by_created_at_then_id_in_byte_order(store: Arc<dyn KeyStore>) {
        for (id, ms) in [("b", 2), ("z", 0), ("a", 1), ("Y", 0), ("a0", 0)] {
            store.insert(&record(id, "acme", ms), &[]).await.unwrap();
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
            store.insert(r, &[]).await.unwrap();
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
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        assert!(store
            .revoke("k1", t(10), &support::audit("k1", AuditAction::Revoked))
            .await
            .unwrap());
        assert!(store
            .revoke("k1", t(20), &support::audit("k1", AuditAction::Revoked))
            .await
            .unwrap());
        let r = store.get("k1").await.unwrap().unwrap();
        assert_eq!(r.revoked_at, Some(t(10)));
        assert!(!store
            .revoke("nope", t(30), &support::audit("nope", AuditAction::Revoked))
            .await
            .unwrap());
    }

    pub(crate) async fn insert_revoke_and_delete_append_their_events_with_the_change(
        store: Arc<dyn KeyStore>,
    ) {
        let actions = |trail: Vec<AuditEvent>| trail.into_iter().map(|e| e.action).collect();
        let created = support::audit("k1", AuditAction::Created);
        store
            .insert(&record("k1", "acme", 0), std::slice::from_ref(&created))
            .await
            .unwrap();
        assert_eq!(store.audit_trail("k1").await.unwrap(), [created]);

        let revoked = support::audit("k1", AuditAction::Revoked);
        assert!(store.revoke("k1", t(10), &revoked).await.unwrap());
        let trail: Vec<AuditAction> = actions(store.audit_trail("k1").await.unwrap());
        assert_eq!(trail, [AuditAction::Created, AuditAction::Revoked]);
        assert_eq!(store.audit_trail("k1").await.unwrap()[1], revoked);
        // A second revoke keeps the first time and appends nothing.
        assert!(store.revoke("k1", t(20), &revoked).await.unwrap());
        assert_eq!(
            store.get("k1").await.unwrap().unwrap().revoked_at,
            Some(t(10))
        );
        assert_eq!(store.audit_trail("k1").await.unwrap().len(), 2);
        // Unknown ids: nothing written.
        let nope_revoked = support::audit("nope", AuditAction::Revoked);
        assert!(!store.revoke("nope", t(30), &nope_revoked).await.unwrap());
        let nope_deleted = support::audit("nope", AuditAction::Deleted);
        assert!(!store.delete("nope", &nope_deleted).await.unwrap());
        assert!(store.audit_trail("nope").await.unwrap().is_empty());

        let deleted = support::audit("k1", AuditAction::Deleted);
        assert!(store.delete("k1", &deleted).await.unwrap());
        assert!(!store.delete("k1", &deleted).await.unwrap());
        let trail: Vec<AuditAction> = actions(store.audit_trail("k1").await.unwrap());
        assert_eq!(
            trail,
            [
                AuditAction::Created,
                AuditAction::Revoked,
                AuditAction::Deleted
            ]
        );
    }

    pub(crate) async fn an_insert_that_conflicts_appends_none_of_its_events(
        store: Arc<dyn KeyStore>,
    ) {
        let first = support::audit("k1", AuditAction::Created);
        store
            .insert(&record("k1", "acme", 0), std::slice::from_ref(&first))
            .await
            .unwrap();
        let mut second = support::audit("k1", AuditAction::Created);
        second.actor = Some("intruder".into());
        let other = support::audit("k9", AuditAction::Created);
        let err = store
            .insert(&record("k1", "acme", 5), &[second, other])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(store.audit_trail("k1").await.unwrap(), [first]);
        assert!(store.audit_trail("k9").await.unwrap().is_empty());
    }

    pub(crate) async fn delete_removes_the_key_and_reports_unknown_ids(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        store.insert(&record("k2", "acme", 1), &[]).await.unwrap();
        assert!(store
            .delete("k1", &support::audit("k1", AuditAction::Deleted))
            .await
            .unwrap());
        assert_eq!(store.get("k1").await.unwrap(), None);
        assert!(!store
            .delete("k1", &support::audit("k1", AuditAction::Deleted))
            .await
            .unwrap());
        assert_eq!(store.list(&KeyFilter::all()).await.unwrap().len(), 1);
    }

    pub(crate) async fn set_expiry_sets_and_clears_the_expiry(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        assert!(store.set_expiry("k1", Some(t(1_000))).await.unwrap());
        assert_eq!(
            store.get("k1").await.unwrap().unwrap().expires_at,
            Some(t(1_000))
        );
        assert!(store.set_expiry("k1", None).await.unwrap());
        assert_eq!(store.get("k1").await.unwrap().unwrap().expires_at, None);
        assert!(!store.set_expiry("nope", None).await.unwrap());
    }

    pub(crate) async fn update_hash_replaces_only_the_expected_hash_with_its_audit_event(
        store: Arc<dyn KeyStore>,
    ) {
        let before = record("k1", "acme", 0);
        store.insert(&before, &[]).await.unwrap();
        let rehashed = |id: &str| keygate::AuditEvent {
            key_id: id.into(),
            action: keygate::AuditAction::Rehashed,
            at: chrono::Utc::now(),
            org: "acme".into(),
            actor: None,
            detail: serde_json::json!({}),
        };
        assert!(
            !store
                .update_hash(
                    "k1",
                    "$argon2id$not-the-stored-one",
                    "$argon2id$new",
                    &rehashed("k1")
                )
                .await
                .unwrap(),
            "a hash replaced meanwhile is left alone"
        );
        assert_eq!(store.get("k1").await.unwrap().unwrap().hash, before.hash);
        assert!(store
            .update_hash("k1", &before.hash, "$argon2id$new", &rehashed("k1"))
            .await
            .unwrap());
        let after = store.get("k1").await.unwrap().unwrap();
        assert_eq!(after.hash, "$argon2id$new");
        assert_eq!(
            keygate::KeyRecord {
                hash: before.hash.clone(),
                ..after
            },
            before
        );
        assert!(!store
            .update_hash("nope", "x", "y", &rehashed("nope"))
            .await
            .unwrap());
        let trail = store.audit_trail("k1").await.unwrap();
        let actions: Vec<_> = trail.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            vec![keygate::AuditAction::Rehashed],
            "one event, for the one change"
        );
    }

    pub(crate) async fn touch_last_used_moves_times_forward_only_and_ignores_unknown_ids(
        store: Arc<dyn KeyStore>,
    ) {
        for id in ["a", "b", "c"] {
            store.insert(&record(id, "acme", 0), &[]).await.unwrap();
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
            store.insert(&record(&id, "acme", 0), &[]).await.unwrap();
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
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
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
        for e in &trail[1..3] {
            store.append_audit(e).await.unwrap();
        }
        // The delete appends its own event.
        assert!(store.delete("k1", &trail[3]).await.unwrap());
        assert_eq!(store.audit_trail("k1").await.unwrap(), trail);
        assert_eq!(store.audit_trail("k2").await.unwrap().len(), 1);
        assert!(store.audit_trail("nobody").await.unwrap().is_empty());
    }

    pub(crate) async fn parallel_inserts_and_revokes_all_land(store: Arc<dyn KeyStore>) {
        let n = 40;
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .insert(&record(&format!("k{i:02}"), "acme", i), &[])
                        .await
                })
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
                tokio::spawn(async move {
                    store
                        .revoke(
                            &format!("k{i:02}"),
                            t(1_000),
                            &support::audit(&format!("k{i:02}"), AuditAction::Revoked),
                        )
                        .await
                })
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
            // Of the two concurrent revokes of a key, exactly one wrote its event.
            let trail = store.audit_trail(&r.id).await.unwrap();
            assert_eq!(trail.len(), usize::from(i % 2 == 0), "{}: {trail:?}", r.id);
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

    // ---- rate limit and rotation link ----

    pub(crate) async fn rate_limit_and_rotated_to_round_trip_through_every_read(
        store: Arc<dyn KeyStore>,
    ) {
        let mut limited = record("k1", "acme", 0);
        limited.rate_limit = Some("10/1s".parse().unwrap());
        limited.rotated_to = Some("k2".into());
        let mut daily = record("k2", "acme", 1);
        daily.rate_limit = Some("50000/1d".parse().unwrap());
        daily.rotated_from = Some("k1".into());
        let plain = record("k3", "acme", 2);
        for r in [&limited, &daily, &plain] {
            store.insert(r, &[]).await.unwrap();
        }
        assert_eq!(store.get("k1").await.unwrap().as_ref(), Some(&limited));
        assert_eq!(store.get("k2").await.unwrap().as_ref(), Some(&daily));
        assert_eq!(store.get("k3").await.unwrap().as_ref(), Some(&plain));
        let all = [limited, daily, plain];
        assert_eq!(store.list(&KeyFilter::all()).await.unwrap(), all);
        let page = store.list_page(&page("acme", 10)).await.unwrap();
        assert_eq!(page, all.iter().rev().cloned().collect::<Vec<_>>());
    }

    // ---- pages ----

    /// A page query of `org` without filters.
    fn page(org: &str, limit: u32) -> PageQuery {
        PageQuery {
            org: org.into(),
            team: None,
            status: None,
            now: t(0),
            after: None,
            limit,
        }
    }

    /// Every page of `query` (each at most `query.limit` long), in order.
    async fn all_pages(store: &Arc<dyn KeyStore>, mut query: PageQuery) -> Vec<Vec<KeyRecord>> {
        let mut pages = Vec::new();
        loop {
            let got = store.list_page(&query).await.unwrap();
            assert!(
                got.len() <= query.limit as usize,
                "page longer than its limit"
            );
            let Some(last) = got.last() else {
                return pages;
            };
            query.after = Some(PagePosition {
                created_at: last.created_at,
                id: last.id.clone(),
            });
            pages.push(got);
            assert!(pages.len() <= 100, "paging does not end");
        }
    }

    /// `records` newest first: created_at, then id in byte order, both descending.
    fn newest_first<'a>(records: impl IntoIterator<Item = &'a KeyRecord>) -> Vec<String> {
        let mut v: Vec<&KeyRecord> = records.into_iter().collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v.into_iter().map(|r| r.id.clone()).collect()
    }

    fn ids(page: &[KeyRecord]) -> Vec<String> {
        page.iter().map(|r| r.id.clone()).collect()
    }

    pub(crate) async fn list_page_walks_one_org_newest_first_every_key_once(
        store: Arc<dyn KeyStore>,
    ) {
        // 25 keys of acme and 12 of globex, interleaved in time; several share a creation
        // time (ids then decide, in byte order: upper case before lower case), teams red and
        // blue on some.
        let mut acme = Vec::new();
        for i in 0..25_i64 {
            let id = if i % 2 == 0 {
                format!("A{i:02}")
            } else {
                format!("a{i:02}")
            };
            let mut r = record(&id, "acme", (i / 3) * 10);
            r.team = match i % 3 {
                0 => Some("red".into()),
                1 => Some("blue".into()),
                _ => None,
            };
            acme.push(r);
        }
        let mut globex = Vec::new();
        for i in 0..12_i64 {
            let mut r = record(&format!("g{i:02}"), "globex", i * 7);
            r.team = Some("red".into());
            globex.push(r);
        }
        // Inserted in an order unrelated to the page order.
        for r in acme.iter().rev().chain(&globex) {
            store.insert(r, &[]).await.unwrap();
        }

        let pages = all_pages(&store, page("acme", 7)).await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [7, 7, 7, 4]);
        let walked: Vec<KeyRecord> = pages.concat();
        assert_eq!(ids(&walked), newest_first(&acme));
        // Whole records, not just ids.
        for r in &walked {
            assert_eq!(Some(r), acme.iter().find(|a| a.id == r.id));
        }

        let mut red = page("acme", 3);
        red.team = Some("red".into());
        let red_pages = all_pages(&store, red).await;
        let red_ids: Vec<String> = red_pages.iter().flat_map(|p| ids(p)).collect();
        assert_eq!(
            red_ids,
            newest_first(acme.iter().filter(|r| r.team.as_deref() == Some("red")))
        );
        assert_eq!(red_ids.len(), 9);

        let globex_ids: Vec<String> = all_pages(&store, page("globex", 5))
            .await
            .iter()
            .flat_map(|p| ids(p))
            .collect();
        assert_eq!(globex_ids, newest_first(&globex));
        assert!(store
            .list_page(&page("nobody", 7))
            .await
            .unwrap()
            .is_empty());
        assert!(store.list_page(&page("acme", 0)).await.unwrap().is_empty());

        // A position between keys (an id that does not exist) works like any other.
        let mut after = page("acme", 100);
        after.after = Some(PagePosition {
            created_at: t(40),
            id: "B".into(),
        });
        let expected: Vec<String> = newest_first(&acme)
            .into_iter()
            .filter(|id| {
                let r = acme.iter().find(|r| &r.id == id).unwrap();
                (r.created_at, r.id.as_str()) < (t(40), "B")
            })
            .collect();
        assert_eq!(ids(&store.list_page(&after).await.unwrap()), expected);
    }

    pub(crate) async fn list_page_filters_by_status_at_its_now(store: Arc<dyn KeyStore>) {
        let now = t(1_000);
        let mut keys = Vec::new();
        let mut add = |id: &str, expires: Option<i64>, revoked: Option<i64>| {
            let mut r = record(id, "acme", keys.len() as i64);
            r.expires_at = expires.map(t);
            r.revoked_at = revoked.map(t);
            keys.push(r);
        };
        add("active-forever", None, None);
        add("active-until-later", Some(1_001), None);
        add("expired-at-now", Some(1_000), None);
        add("expired-before", Some(10), None);
        add("revoked", None, Some(500));
        add("revoked-and-expired", Some(10), Some(5));
        add("revoked-later", Some(2_000), Some(1_500)); // revoked is revoked, whenever
        for r in &keys {
            store.insert(r, &[]).await.unwrap();
        }
        store
            .insert(&record("other-org", "globex", 0), &[])
            .await
            .unwrap();

        let with = |status: Option<KeyStatus>| {
            let store = Arc::clone(&store);
            async move {
                let mut q = page("acme", 3);
                q.status = status;
                q.now = now;
                all_pages(&store, q)
                    .await
                    .iter()
                    .flat_map(|p| ids(p))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            with(Some(KeyStatus::Active)).await,
            ["active-until-later", "active-forever"]
        );
        assert_eq!(
            with(Some(KeyStatus::Expired)).await,
            ["expired-before", "expired-at-now"]
        );
        assert_eq!(
            with(Some(KeyStatus::Revoked)).await,
            ["revoked-later", "revoked-and-expired", "revoked"]
        );
        assert_eq!(with(None).await, newest_first(&keys));
        // The reference rule, key by key.
        for status in [KeyStatus::Active, KeyStatus::Expired, KeyStatus::Revoked] {
            assert_eq!(
                with(Some(status)).await,
                newest_first(keys.iter().filter(|r| r.status_at(now) == status)),
                "{status}"
            );
        }
    }

    // ---- rotation ----

    fn event(key: &str, action: AuditAction, ms: i64) -> AuditEvent {
        AuditEvent {
            key_id: key.into(),
            action,
            at: t(ms),
            org: "acme".into(),
            actor: Some("ops".into()),
            detail: json!({"by": "suite"}),
        }
    }

    /// The successor `new_id` of `old_id` and the events a rotation writes.
    fn successor_of(old: &KeyRecord, new_id: &str, ms: i64) -> (KeyRecord, Vec<AuditEvent>) {
        let mut new = record(new_id, &old.org, ms);
        new.rotated_from = Some(old.id.clone());
        new.rate_limit = old.rate_limit;
        let events = vec![
            event(new_id, AuditAction::Created, ms),
            AuditEvent {
                detail: json!({"new_id": new_id}),
                ..event(&old.id, AuditAction::Rotated, ms)
            },
        ];
        (new, events)
    }

    async fn rotate(
        store: &Arc<dyn KeyStore>,
        old: &KeyRecord,
        new_id: &str,
        now_ms: i64,
        grace_ms: i64,
    ) -> Result<RotateOutcome, StoreError> {
        let (new, events) = successor_of(old, new_id, now_ms);
        store
            .rotate(&Rotation {
                old_id: &old.id,
                successor: &new,
                old_expires_at: t(now_ms + grace_ms),
                now: t(now_ms),
                audit: &events,
            })
            .await
    }

    pub(crate) async fn rotate_inserts_the_successor_once_then_answers_already_rotated(
        store: Arc<dyn KeyStore>,
    ) {
        let mut old = record("old", "acme", 0);
        old.rate_limit = Some("1000/1m".parse().unwrap());
        store.insert(&old, &[]).await.unwrap();
        assert_eq!(
            rotate(&store, &old, "new", 100, 3_600_000).await.unwrap(),
            RotateOutcome::Rotated
        );
        let (expected_new, events) = successor_of(&old, "new", 100);
        assert_eq!(store.get("new").await.unwrap(), Some(expected_new));
        let after = store.get("old").await.unwrap().unwrap();
        assert_eq!(
            after,
            KeyRecord {
                rotated_to: Some("new".into()),
                expires_at: Some(t(100 + 3_600_000)),
                ..old.clone()
            }
        );
        assert_eq!(store.audit_trail("old").await.unwrap(), events[1..]);
        assert_eq!(store.audit_trail("new").await.unwrap(), events[..1]);

        // Again (even while the old key is still in its grace period): refused, nothing
        // written.
        assert_eq!(
            rotate(&store, &old, "newer", 200, 3_600_000).await.unwrap(),
            RotateOutcome::AlreadyRotated
        );
        assert_eq!(store.get("newer").await.unwrap(), None);
        assert_eq!(store.get("old").await.unwrap(), Some(after));
        assert!(store.audit_trail("newer").await.unwrap().is_empty());
        assert_eq!(store.audit_trail("old").await.unwrap(), events[1..]);

        // The successor itself can be rotated.
        let new = store.get("new").await.unwrap().unwrap();
        assert_eq!(
            rotate(&store, &new, "newest", 300, 0).await.unwrap(),
            RotateOutcome::Rotated
        );
        assert_eq!(
            store
                .get("newest")
                .await
                .unwrap()
                .unwrap()
                .rotated_from
                .as_deref(),
            Some("new")
        );
    }

    pub(crate) async fn rotate_keeps_an_earlier_expiry_of_the_old_key(store: Arc<dyn KeyStore>) {
        let mut soon = record("soon", "acme", 0);
        soon.expires_at = Some(t(500));
        let mut later = record("later", "acme", 0);
        later.expires_at = Some(t(500_000));
        store.insert(&soon, &[]).await.unwrap();
        store.insert(&later, &[]).await.unwrap();
        for (old, new_id) in [(&soon, "soon2"), (&later, "later2")] {
            assert_eq!(
                rotate(&store, old, new_id, 100, 60_000).await.unwrap(),
                RotateOutcome::Rotated
            );
        }
        let expiry = |id: &'static str| {
            let store = Arc::clone(&store);
            async move { store.get(id).await.unwrap().unwrap().expires_at }
        };
        assert_eq!(expiry("soon").await, Some(t(500)));
        assert_eq!(expiry("later").await, Some(t(60_100)));
    }

    pub(crate) async fn rotate_refuses_unknown_revoked_and_expired_keys_writing_nothing(
        store: Arc<dyn KeyStore>,
    ) {
        let mut revoked = record("revoked", "acme", 0);
        revoked.revoked_at = Some(t(50));
        revoked.expires_at = Some(t(1_000_000));
        let mut expired = record("expired", "acme", 0);
        expired.expires_at = Some(t(100)); // expired at exactly `now`
        let mut revoked_later = record("revoked-later", "acme", 0);
        revoked_later.revoked_at = Some(t(1_000_000)); // revoked is revoked
        for r in [&revoked, &expired, &revoked_later] {
            store.insert(r, &[]).await.unwrap();
        }
        let ghost = record("ghost", "acme", 0);
        for (old, expected) in [
            (&revoked, RotateOutcome::NotActive),
            (&expired, RotateOutcome::NotActive),
            (&revoked_later, RotateOutcome::NotActive),
            (&ghost, RotateOutcome::NotFound),
        ] {
            let new_id = format!("{}-new", old.id);
            assert_eq!(
                rotate(&store, old, &new_id, 100, 60_000).await.unwrap(),
                expected,
                "{}",
                old.id
            );
            assert_eq!(store.get(&new_id).await.unwrap(), None, "{}", old.id);
            assert!(store.audit_trail(&new_id).await.unwrap().is_empty());
            assert!(store.audit_trail(&old.id).await.unwrap().is_empty());
        }
        assert_eq!(store.get("revoked").await.unwrap(), Some(revoked));
        assert_eq!(store.get("expired").await.unwrap(), Some(expired));
        assert_eq!(store.get("ghost").await.unwrap(), None);
        assert_eq!(store.list(&KeyFilter::all()).await.unwrap().len(), 3);
    }

    pub(crate) async fn rotate_to_an_existing_id_is_a_conflict_and_writes_nothing(
        store: Arc<dyn KeyStore>,
    ) {
        let old = record("old", "acme", 0);
        let taken = record("taken", "acme", 1);
        store.insert(&old, &[]).await.unwrap();
        store.insert(&taken, &[]).await.unwrap();
        let err = rotate(&store, &old, "taken", 100, 60_000)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(id) if id == "taken"),
            "{err:?}"
        );
        assert_eq!(store.get("old").await.unwrap(), Some(old));
        assert_eq!(store.get("taken").await.unwrap(), Some(taken));
        assert!(store.audit_trail("old").await.unwrap().is_empty());
        assert!(store.audit_trail("taken").await.unwrap().is_empty());
    }

    pub(crate) async fn concurrent_rotations_of_one_key_rotate_it_exactly_once(
        store: Arc<dyn KeyStore>,
    ) {
        for round in 0..20 {
            let old = record(&format!("k{round:02}"), "acme", round);
            store.insert(&old, &[]).await.unwrap();
            let spawn = |new_id: String| {
                let (store, old) = (Arc::clone(&store), old.clone());
                tokio::spawn(async move { rotate(&store, &old, &new_id, 100, 60_000).await })
            };
            let a_id = format!("{}-a", old.id);
            let b_id = format!("{}-b", old.id);
            let (a, b) = tokio::join!(spawn(a_id.clone()), spawn(b_id.clone()));
            let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
            let winner = match (a, b) {
                (RotateOutcome::Rotated, RotateOutcome::AlreadyRotated) => &a_id,
                (RotateOutcome::AlreadyRotated, RotateOutcome::Rotated) => &b_id,
                other => panic!("round {round}: {other:?}"),
            };
            let loser = if winner == &a_id { &b_id } else { &a_id };
            let after = store.get(&old.id).await.unwrap().unwrap();
            assert_eq!(after.rotated_to.as_ref(), Some(winner), "round {round}");
            assert!(store.get(winner).await.unwrap().is_some(), "round {round}");
            assert_eq!(store.get(loser).await.unwrap(), None, "round {round}");
            let trail = store.audit_trail(&old.id).await.unwrap();
            assert_eq!(trail.len(), 1, "round {round}: {trail:?}");
            assert_eq!(trail[0].detail, json!({"new_id": winner}));
            assert!(store.audit_trail(loser).await.unwrap().is_empty());
        }
    }

    pub(crate) async fn a_rotation_racing_a_revoke_never_outlives_an_earlier_revoke(
        store: Arc<dyn KeyStore>,
    ) {
        let mut outcomes = Vec::new();
        for round in 0..20 {
            let old = record(&format!("k{round:02}"), "acme", round);
            store.insert(&old, &[]).await.unwrap();
            let new_id = format!("{}-new", old.id);
            let rotation = {
                let (store, old, new_id) = (Arc::clone(&store), old.clone(), new_id.clone());
                tokio::spawn(async move { rotate(&store, &old, &new_id, 100, 60_000).await })
            };
            let revocation = {
                let (store, id) = (Arc::clone(&store), old.id.clone());
                tokio::spawn(async move {
                    store
                        .revoke(&id, t(150), &support::audit(&id, AuditAction::Revoked))
                        .await
                })
            };
            let (rotated, revoked) = tokio::join!(rotation, revocation);
            let (rotated, revoked) = (rotated.unwrap().unwrap(), revoked.unwrap().unwrap());
            assert!(revoked, "round {round}");
            let after = store.get(&old.id).await.unwrap().unwrap();
            assert_eq!(after.revoked_at, Some(t(150)), "round {round}");
            match rotated {
                // The rotation came first: its writes are whole, and the revoke that
                // followed it stands.
                RotateOutcome::Rotated => {
                    assert_eq!(after.rotated_to.as_ref(), Some(&new_id), "round {round}");
                    assert_eq!(after.expires_at, Some(t(60_100)), "round {round}");
                    let new = store.get(&new_id).await.unwrap();
                    assert_eq!(
                        new.and_then(|n| n.rotated_from),
                        Some(old.id.clone()),
                        "round {round}"
                    );
                    // The rotation's event, then the revoke's.
                    let trail = store.audit_trail(&old.id).await.unwrap();
                    assert_eq!(trail.len(), 2, "round {round}: {trail:?}");
                    assert_eq!(trail[1].action, AuditAction::Revoked, "round {round}");
                }
                // The revoke came first: no successor, nothing of the rotation written.
                RotateOutcome::NotActive => {
                    assert_eq!(
                        after,
                        KeyRecord {
                            revoked_at: Some(t(150)),
                            ..old.clone()
                        },
                        "round {round}"
                    );
                    assert_eq!(store.get(&new_id).await.unwrap(), None, "round {round}");
                    // Only the revoke's event.
                    let trail = store.audit_trail(&old.id).await.unwrap();
                    let actions: Vec<AuditAction> = trail.iter().map(|e| e.action).collect();
                    assert_eq!(actions, [AuditAction::Revoked], "round {round}");
                    assert!(store.audit_trail(&new_id).await.unwrap().is_empty());
                }
                other => panic!("round {round}: {other:?}"),
            }
            outcomes.push(rotated);
        }
        let first = outcomes
            .iter()
            .filter(|o| **o == RotateOutcome::Rotated)
            .count();
        let _ = writeln!(
            std::io::stderr(),
            "rotate x revoke: rotation first in {first} of {} rounds",
            outcomes.len()
        );
    }

    // ---- update ----

    pub(crate) async fn update_sets_and_clears_fields_and_appends_its_audit_event(
        store: Arc<dyn KeyStore>,
    ) {
        let mut before = record("k1", "acme", 0);
        before.expires_at = Some(t(5_000));
        store.insert(&before, &[]).await.unwrap();
        store.insert(&record("k2", "acme", 1), &[]).await.unwrap();

        let limit: RateLimit = "100/1h".parse().unwrap();
        let set = KeyUpdate {
            name: Some("renamed".into()),
            expires_at: Some(Some(t(9_000))),
            rate_limit: Some(Some(limit)),
        };
        let e1 = AuditEvent {
            detail: json!({"name": "renamed"}),
            ..event("k1", AuditAction::Updated, 10)
        };
        let updated = store.update("k1", &set, &e1).await.unwrap().unwrap();
        let expected = KeyRecord {
            name: "renamed".into(),
            expires_at: Some(t(9_000)),
            rate_limit: Some(limit),
            ..before.clone()
        };
        assert_eq!(updated, expected);
        assert_eq!(store.get("k1").await.unwrap().as_ref(), Some(&expected));

        // Clearing the expiry and the rate limit leaves the name alone.
        let clear = KeyUpdate {
            name: None,
            expires_at: Some(None),
            rate_limit: Some(None),
        };
        let e2 = event("k1", AuditAction::Updated, 20);
        let cleared = store.update("k1", &clear, &e2).await.unwrap().unwrap();
        let expected = KeyRecord {
            expires_at: None,
            rate_limit: None,
            ..expected
        };
        assert_eq!(cleared, expected);
        assert_eq!(store.get("k1").await.unwrap().as_ref(), Some(&expected));

        // Only the expiry: the rest stays.
        let e3 = event("k1", AuditAction::Updated, 30);
        let only_expiry = KeyUpdate {
            expires_at: Some(Some(t(7_000))),
            ..KeyUpdate::default()
        };
        let got = store
            .update("k1", &only_expiry, &e3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            KeyRecord {
                expires_at: Some(t(7_000)),
                ..expected.clone()
            }
        );

        // An empty update changes nothing but is still on the record.
        let e4 = event("k1", AuditAction::Updated, 40);
        let same = store
            .update("k1", &KeyUpdate::default(), &e4)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(same, got);

        assert_eq!(store.audit_trail("k1").await.unwrap(), [e1, e2, e3, e4]);
        // The other key is untouched.
        assert_eq!(
            store.get("k2").await.unwrap(),
            Some(record("k2", "acme", 1))
        );
        assert!(store.audit_trail("k2").await.unwrap().is_empty());
    }

    pub(crate) async fn update_of_an_unknown_key_is_none_and_writes_nothing(
        store: Arc<dyn KeyStore>,
    ) {
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        let set = KeyUpdate {
            name: Some("x".into()),
            ..KeyUpdate::default()
        };
        for update in [set, KeyUpdate::default()] {
            let e = event("ghost", AuditAction::Updated, 10);
            assert_eq!(store.update("ghost", &update, &e).await.unwrap(), None);
        }
        assert!(store.audit_trail("ghost").await.unwrap().is_empty());
        assert_eq!(store.get("ghost").await.unwrap(), None);
        assert_eq!(
            store.get("k1").await.unwrap(),
            Some(record("k1", "acme", 0))
        );
    }

    // ---- usage ----

    /// The start of hour `h` after 2026-01-01T00:00Z.
    fn hour(h: i64) -> chrono::DateTime<chrono::Utc> {
        t(h * 3_600_000)
    }

    fn count(key: &str, h: i64, requests: u64, refused: u64) -> UsageCount {
        UsageCount {
            key_id: key.into(),
            hour: hour(h),
            requests,
            refused,
        }
    }

    pub(crate) async fn add_usage_sums_counts_of_the_same_key_and_hour(store: Arc<dyn KeyStore>) {
        store.insert(&record("k1", "acme", 0), &[]).await.unwrap();
        store
            .add_usage(&[count("k1", 0, 5, 1), count("k1", 1, 7, 0)])
            .await
            .unwrap();
        store
            .add_usage(&[
                count("k1", 0, 3, 2),
                // The same (key, hour) twice in one batch adds up too.
                count("k1", 1, 1, 1),
                count("k1", 1, 2, 0),
                // Unknown keys are counted as well (no foreign key).
                count("ghost", 0, 4, 4),
            ])
            .await
            .unwrap();
        store.add_usage(&[]).await.unwrap();
        assert_eq!(
            store.usage("k1", hour(0)).await.unwrap(),
            [count("k1", 0, 8, 3), count("k1", 1, 10, 1)]
        );
        assert_eq!(
            store.usage("ghost", hour(0)).await.unwrap(),
            [count("ghost", 0, 4, 4)]
        );
        // Like the audit trail, the counts outlive the key.
        assert!(store
            .delete("k1", &support::audit("k1", AuditAction::Deleted))
            .await
            .unwrap());
        store.add_usage(&[count("k1", 1, 1, 0)]).await.unwrap();
        assert_eq!(
            store.usage("k1", hour(0)).await.unwrap(),
            [count("k1", 0, 8, 3), count("k1", 1, 11, 1)]
        );
    }

    pub(crate) async fn huge_counts_saturate_instead_of_failing(store: Arc<dyn KeyStore>) {
        store
            .add_usage(&[count("k1", 0, u64::MAX, 1), count("k1", 0, 1, u64::MAX)])
            .await
            .unwrap();
        store
            .add_usage(&[count("k1", 0, u64::MAX, u64::MAX)])
            .await
            .unwrap();
        let rows = store.usage("k1", hour(0)).await.unwrap();
        assert_eq!(rows.len(), 1);
        // SQL stores keep signed 64-bit counts: at least i64::MAX, never wrapped.
        assert!(rows[0].requests >= i64::MAX as u64, "{rows:?}");
        assert!(rows[0].refused >= i64::MAX as u64, "{rows:?}");
    }

    pub(crate) async fn add_usage_from_two_stores_at_once_sums_exactly(
        a: Arc<dyn KeyStore>,
        b: Arc<dyn KeyStore>,
    ) {
        // Two stores on one database (two processes), 50 concurrent adds each to one hour.
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
                tokio::spawn(async move {
                    store
                        .add_usage(&[
                            count("k1", 0, 1, u64::from(i % 4 >= 2)),
                            count("k2", i % 3, 1, 0),
                        ])
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        for store in [&a, &b] {
            assert_eq!(
                store.usage("k1", hour(0)).await.unwrap(),
                [count("k1", 0, 100, 50)]
            );
            assert_eq!(
                store.usage("k2", hour(0)).await.unwrap(),
                [
                    count("k2", 0, 34, 0),
                    count("k2", 1, 33, 0),
                    count("k2", 2, 33, 0)
                ]
            );
        }
    }

    pub(crate) async fn usage_returns_one_keys_hours_since_oldest_first(store: Arc<dyn KeyStore>) {
        // Written newest first, across two batches, interleaved with other keys ("k1" sorts
        // between "k" and "k10", "k2" after).
        store
            .add_usage(&[
                count("k1", 5, 50, 5),
                count("k", 3, 9, 9),
                count("k10", 3, 9, 9),
                count("k1", 3, 30, 3),
            ])
            .await
            .unwrap();
        store
            .add_usage(&[
                count("k2", 4, 9, 9),
                count("k1", 4, 40, 4),
                count("k1", 1, 10, 1),
                count("k1", -2, 1, 0),
            ])
            .await
            .unwrap();
        assert_eq!(
            store.usage("k1", hour(3)).await.unwrap(),
            [
                count("k1", 3, 30, 3),
                count("k1", 4, 40, 4),
                count("k1", 5, 50, 5)
            ]
        );
        // `since` is inclusive, and may fall inside an hour.
        assert_eq!(
            store
                .usage("k1", hour(3) + chrono::Duration::seconds(1))
                .await
                .unwrap(),
            [count("k1", 4, 40, 4), count("k1", 5, 50, 5)]
        );
        assert_eq!(store.usage("k1", hour(-10)).await.unwrap().len(), 5);
        assert!(store.usage("k1", hour(6)).await.unwrap().is_empty());
        assert!(store.usage("nobody", hour(-10)).await.unwrap().is_empty());
    }

    pub(crate) async fn usage_totals_split_the_day_from_the_month_and_omit_keys_without_counts(
        store: Arc<dyn KeyStore>,
    ) {
        // "Now" is hour 1000: the day starts at hour 976, the month at hour 280.
        let (day, month) = (976, 280);
        store
            .add_usage(&[
                count("a", 999, 1, 1),
                count("a", day, 10, 2),
                count("a", day - 1, 100, 4), // in the month, not the day
                count("a", month, 1_000, 8),
                count("a", month - 1, 10_000, 16), // older than the month
                count("b", 500, 7, 3),             // month only
                count("c", month - 1, 5, 5),       // nothing in the month: absent
                count("d", 999, 9, 9),             // not asked for
            ])
            .await
            .unwrap();
        let ids: Vec<String> = ["a", "b", "c", "nobody"].map(String::from).into();
        let mut totals = store
            .usage_totals(&ids, hour(day), hour(month))
            .await
            .unwrap();
        totals.sort_by(|x, y| x.key_id.cmp(&y.key_id));
        assert_eq!(
            totals,
            [
                UsageTotals {
                    key_id: "a".into(),
                    requests_24h: 11,
                    requests_30d: 1_111,
                    refused_24h: 3,
                },
                UsageTotals {
                    key_id: "b".into(),
                    requests_24h: 0,
                    requests_30d: 7,
                    refused_24h: 0,
                },
            ]
        );
        assert!(store
            .usage_totals(&[], hour(day), hour(month))
            .await
            .unwrap()
            .is_empty());
    }

    pub(crate) async fn prune_usage_removes_exactly_the_hours_before_the_cut_and_counts_them(
        store: Arc<dyn KeyStore>,
    ) {
        let mut batch = Vec::new();
        for key in ["a", "b", "c"] {
            for h in 0..10 {
                batch.push(count(key, h, 1, 0));
            }
        }
        store.add_usage(&batch).await.unwrap();
        // Hours 0..=3 of three keys go; the cut (hour 4) itself stays.
        assert_eq!(store.prune_usage(hour(4)).await.unwrap(), 12);
        assert_eq!(store.prune_usage(hour(4)).await.unwrap(), 0);
        for key in ["a", "b", "c"] {
            let hours: Vec<_> = store
                .usage(key, hour(-100))
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.hour)
                .collect();
            assert_eq!(hours, (4..10).map(hour).collect::<Vec<_>>(), "{key}");
        }
        // A cut inside an hour removes the hours starting before it.
        assert_eq!(
            store
                .prune_usage(hour(5) + chrono::Duration::milliseconds(1))
                .await
                .unwrap(),
            6
        );
        assert_eq!(store.prune_usage(hour(100)).await.unwrap(), 12);
        assert!(store.usage("a", hour(-100)).await.unwrap().is_empty());
    }

    pub(crate) async fn add_usage_writes_a_batch_of_5000_rows(store: Arc<dyn KeyStore>) {
        // 1000 keys x 5 hours, written twice: once inserted, once added to.
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i:04}")).collect();
        let batch: Vec<UsageCount> = keys
            .iter()
            .flat_map(|k| (0..5).map(move |h| count(k, h, (h + 1) as u64, 1)))
            .collect();
        assert_eq!(batch.len(), 5_000);
        store.add_usage(&batch).await.unwrap();
        store.add_usage(&batch).await.unwrap();
        assert_eq!(
            store.usage("k0999", hour(0)).await.unwrap(),
            (0..5)
                .map(|h| count("k0999", h, 2 * (h + 1) as u64, 2))
                .collect::<Vec<_>>()
        );
        // The totals of all 1000 keys in one call (day: hours 3 and 4).
        let mut totals = store.usage_totals(&keys, hour(3), hour(0)).await.unwrap();
        totals.sort_by(|x, y| x.key_id.cmp(&y.key_id));
        assert_eq!(totals.len(), 1000);
        for (tot, key) in totals.iter().zip(&keys) {
            assert_eq!(
                *tot,
                UsageTotals {
                    key_id: key.clone(),
                    requests_24h: 2 * (4 + 5),
                    requests_30d: 2 * 15,
                    refused_24h: 2 * 2,
                }
            );
        }
        assert_eq!(store.prune_usage(hour(5)).await.unwrap(), 5_000);
    }
}

macro_rules! suite {
    (
        $($case:ident),* $(,)?
        // Cases that take two stores on one database (two processes); the memory store has
        // no database to share, so it is passed twice.
        ; two_stores: $($pair:ident),* $(,)?
    ) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::cases::$case(super::support::memory()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pair() {
                    let store = super::support::memory();
                    super::cases::$pair(std::sync::Arc::clone(&store), store).await;
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
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pair() {
                    let (a, _dir, url) = super::support::sqlite().await;
                    let b = keygate_sqlx::SqliteStore::connect(&url).await.unwrap();
                    super::cases::$pair(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
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
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pair() {
                    let Some(pg) = super::support::Pg::fixture(
                        concat!("store_suite::postgres::", stringify!($pair)),
                    ).await else {
                        return;
                    };
                    let a = pg.store(keygate_sqlx::StoreOptions::default()).await;
                    let b = pg.store(keygate_sqlx::StoreOptions::default()).await;
                    super::cases::$pair(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
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
    insert_revoke_and_delete_append_their_events_with_the_change,
    an_insert_that_conflicts_appends_none_of_its_events,
    set_expiry_sets_and_clears_the_expiry,
    update_hash_replaces_only_the_expected_hash_with_its_audit_event,
    touch_last_used_moves_times_forward_only_and_ignores_unknown_ids,
    touch_last_used_writes_a_large_batch,
    audit_trail_is_per_key_in_order_and_outlives_the_key,
    parallel_inserts_and_revokes_all_land,
    manager_and_verifier_run_the_whole_lifecycle,
    rate_limit_and_rotated_to_round_trip_through_every_read,
    list_page_walks_one_org_newest_first_every_key_once,
    list_page_filters_by_status_at_its_now,
    rotate_inserts_the_successor_once_then_answers_already_rotated,
    rotate_keeps_an_earlier_expiry_of_the_old_key,
    rotate_refuses_unknown_revoked_and_expired_keys_writing_nothing,
    rotate_to_an_existing_id_is_a_conflict_and_writes_nothing,
    concurrent_rotations_of_one_key_rotate_it_exactly_once,
    a_rotation_racing_a_revoke_never_outlives_an_earlier_revoke,
    update_sets_and_clears_fields_and_appends_its_audit_event,
    update_of_an_unknown_key_is_none_and_writes_nothing,
    add_usage_sums_counts_of_the_same_key_and_hour,
    huge_counts_saturate_instead_of_failing,
    usage_returns_one_keys_hours_since_oldest_first,
    usage_totals_split_the_day_from_the_month_and_omit_keys_without_counts,
    prune_usage_removes_exactly_the_hours_before_the_cut_and_counts_them,
    add_usage_writes_a_batch_of_5000_rows;
    two_stores: add_usage_from_two_stores_at_once_sums_exactly,
);
