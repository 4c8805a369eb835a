//! Hardening, second round (issue 13): the core's findings, each with the test that failed
//! before its fix. Finding 12 (store faults that lie) is in `lifecycle_atomicity.rs`.

mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use keygate::{AuthError, Clock, Gate, KeyStore, ScopeRequirement};
use support::{Capture, Rig};

// Finding 3: an optional gate with a scope requirement.

#[tokio::test]
async fn an_optional_gate_with_a_requirement_refuses_anonymous_requests() {
    let rig = Rig::new();
    let gate = Gate::new(rig.verifier.clone())
        .optional()
        .require(ScopeRequirement::all_of(["entities:read"]));
    let none: [&[u8]; 0] = [];
    let answer = gate.check(none, none).await;
    assert!(
        matches!(answer, Err(AuthError::MissingCredentials)),
        "anonymous on a route that requires a scope: {answer:?}"
    );
    // Without a requirement, the optional gate still lets anonymous requests through.
    let open = Gate::new(rig.verifier.clone()).optional();
    assert!(matches!(open.check(none, none).await, Ok(None)));
    // And a key with the scope passes the optional gate with the requirement.
    let (token, _) = rig.key().await;
    let principal = gate.check([token.as_bytes()], none).await.unwrap();
    assert!(principal.is_some());
}

#[test]
fn empty_scope_requirements_are_refused_where_they_are_built() {
    let empty: [&str; 0] = [];
    let all = ScopeRequirement::try_all_of(empty);
    let any = ScopeRequirement::try_any_of(empty);
    assert!(all.is_err(), "all_of([]) would accept every key: {all:?}");
    assert!(any.is_err(), "any_of([]) would accept every key: {any:?}");
    let message = all.unwrap_err().to_string();
    assert!(message.contains("at least one scope"), "{message}");
    assert!(std::panic::catch_unwind(|| ScopeRequirement::all_of(empty)).is_err());
    assert!(std::panic::catch_unwind(|| ScopeRequirement::any_of(empty)).is_err());
}

// Finding 4: zero windows.

#[tokio::test]
async fn a_zero_revocation_window_reads_the_store_once_per_request() {
    let rig = Rig::with(|b| b.revocation_window(Duration::ZERO));
    let (token, id) = rig.key().await;
    // The first verification runs argon2 and re-reads the record it waited for: two reads.
    let before = rig.store.get_count();
    rig.verifier.verify(&token).await.unwrap();
    let first = rig.store.get_count() - before;
    assert!(first <= 2, "first verification: {first} store reads");
    for n in 1..=10 {
        let before = rig.store.get_count();
        rig.verifier.verify(&token).await.unwrap();
        let reads = rig.store.get_count() - before;
        assert_eq!(reads, 1, "request {n}: {reads} store reads");
    }
    assert_eq!(rig.hasher.verify_count(), 1, "the verdict is carried over");
    // Zero means every request sees the store: a revoke made behind the verifier's back
    // (no invalidation) bites at the next request.
    rig.store
        .inner
        .revoke(&id, rig.clock.now(), &support::revoked_event(&id))
        .await
        .unwrap();
    assert!(matches!(
        rig.verifier.verify(&token).await,
        Err(AuthError::RevokedKey)
    ));
}

#[tokio::test]
async fn a_zero_absent_ttl_reads_the_store_once_per_unknown_id() {
    let rig = Rig::with(|b| b.absent_ttl(Duration::ZERO));
    let unknown = keygate::token::generate("mk_live").unwrap();
    for n in 1..=5 {
        let before = rig.store.get_count();
        let answer = rig.verifier.verify(unknown.expose_secret()).await;
        assert!(matches!(answer, Err(AuthError::InvalidKey)), "{answer:?}");
        let reads = rig.store.get_count() - before;
        assert_eq!(reads, 1, "request {n}: {reads} store reads");
    }
}

// Finding 5: stored argon2 parameters are bounded.

#[tokio::test]
async fn a_stored_hash_with_huge_argon2_parameters_is_a_store_fault_not_an_allocation() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let record = rig.store.inner.get(&id).await.unwrap().unwrap();
    // A tampered row: m=640000 (625 MiB of argon2 memory per check, above the limit).
    let tampered = record.hash.replacen(",t=", "0000,t=", 1);
    assert!(tampered.contains("0000,t="), "{tampered}");
    let event = support::revoked_event(&id);
    assert!(rig
        .store
        .inner
        .update_hash(&id, &record.hash, &tampered, &event)
        .await
        .unwrap());
    let answer = rig.verifier.verify(&token).await;
    assert!(
        matches!(answer, Err(AuthError::StoreUnavailable { .. })),
        "{answer:?}"
    );
}

// Finding 6: serializing a record never writes its hash.

#[tokio::test]
async fn a_serialized_key_record_never_carries_its_hash() {
    let rig = Rig::new();
    let (_, id) = rig.key().await;
    let record = rig.manager.show(&id).await.unwrap();
    assert!(record.hash.starts_with("$argon2id$"));
    let json = serde_json::to_value(&record).unwrap();
    assert!(json.get("hash").is_none(), "{json}");
    let listed =
        serde_json::to_string(&rig.manager.list(&Default::default()).await.unwrap()).unwrap();
    assert!(!listed.contains("argon2"), "{listed}");
    assert_eq!(json["id"], id.as_str(), "the rest is serialized");
}

// Finding 9: the final flush at shutdown retries within its deadline and says what it lost.

/// Lets spawned tasks run on the paused runtime.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_final_flush_that_fails_is_retried_until_the_store_answers() {
    let rig = Rig::with(|b| b.shutdown_flush_deadline(Duration::from_secs(10)));
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    tokio::time::pause();
    rig.store.failing.store(true, SeqCst);
    let verifier = rig.verifier.clone();
    let shutdown = tokio::spawn(async move { verifier.shutdown().await });
    settle().await;
    tokio::time::advance(Duration::from_secs(2)).await;
    settle().await;
    assert!(!shutdown.is_finished(), "a failed final flush is retried");
    assert!(rig.store.touch_batches().is_empty());
    rig.store.failing.store(false, SeqCst);
    tokio::time::advance(Duration::from_secs(3)).await;
    settle().await;
    assert_eq!(shutdown.await.unwrap().unwrap(), 1, "written on a retry");
    let stored = rig.store.inner.get(&id).await.unwrap().unwrap();
    assert!(stored.last_used_at.is_some());
}

#[tokio::test]
async fn a_final_flush_that_keeps_failing_gives_up_at_its_deadline_and_reports_what_is_lost() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let rig = Rig::with(|b| b.shutdown_flush_deadline(Duration::from_secs(10)));
    let (token, _) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    tokio::time::pause();
    rig.store.failing.store(true, SeqCst);
    let started = tokio::time::Instant::now();
    let answer = rig.verifier.shutdown().await;
    assert!(answer.is_err(), "{answer:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited <= Duration::from_secs(13),
        "gave up after {waited:?} of a 10 s deadline"
    );
    let log = capture.text();
    assert!(
        log.contains("not written at shutdown") && log.contains("last_used=1"),
        "{log}"
    );
}

/// Many threads use one key while flushes run: every count and the latest use time reach the
/// store (the counters are read by the flush with the ordering `touch` publishes them with).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_counted_while_flushes_run_are_all_written_with_the_latest_time() {
    const TASKS: u64 = 4;
    const USES: u64 = 5_000;
    let rig = Rig::with(|b| b.revocation_window(Duration::from_secs(3600)));
    let (token, id) = rig.key().await;
    let since = rig.clock.now() - chrono::Duration::days(1);
    let users: Vec<_> = (0..TASKS)
        .map(|_| {
            let (verifier, clock, token) = (rig.verifier.clone(), rig.clock.clone(), token.clone());
            tokio::spawn(async move {
                for _ in 0..USES {
                    clock.advance(Duration::from_millis(1));
                    verifier.verify(&token).await.unwrap();
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut flushes = 0;
    while !users.iter().all(|u| u.is_finished()) {
        rig.verifier.flush_last_used().await.unwrap();
        flushes += 1;
        tokio::task::yield_now().await;
    }
    for u in users {
        u.await.unwrap();
    }
    rig.verifier.shutdown().await.unwrap();
    let last_use = rig.clock.now();
    let counts = rig.store.inner.usage(&id, since).await.unwrap();
    let requests: u64 = counts.iter().map(|c| c.requests).sum();
    assert_eq!(requests, TASKS * USES, "after {flushes} flushes");
    let stored = rig.store.inner.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_used_at.map(|t| t.timestamp_millis()),
        Some(last_use.timestamp_millis())
    );
}
