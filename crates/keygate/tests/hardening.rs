//! Hardening, second round (issue 13): the core's findings, each with the test that failed
//! before its fix. Finding 12 (store faults that lie) is in `lifecycle_atomicity.rs`.

mod support;

use std::time::Duration;

use keygate::{AuthError, Clock, Gate, KeyStore, ScopeRequirement};
use support::Rig;

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
