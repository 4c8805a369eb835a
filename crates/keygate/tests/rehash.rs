//! Stored hashes are only ever upgraded: a verifier re-hashes a key whose hash was made with
//! weaker argon2 parameters than its own, once, with a `rehashed` audit event; never the
//! reverse. Two deployments with different parameters on one store (a rolling parameter
//! change) therefore cannot re-hash every key back and forth.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keygate::{
    Argon2Hasher, Argon2Params, AuditAction, Clock, KeyManager, KeyStore, ManualClock, MemoryStore,
    NewKey, ScopeRequirement, Verifier,
};
use support::CountingHasher;

fn argon2(memory_kib: u32, iterations: u32) -> Argon2Hasher {
    Argon2Hasher::with_params(Argon2Params {
        memory_kib,
        iterations,
        parallelism: 1,
    })
    .unwrap()
}

/// A verifier on `store` whose cached verifications lapse after a minute.
fn verifier(store: &Arc<MemoryStore>, clock: &ManualClock, hasher: &CountingHasher) -> Verifier {
    Verifier::builder(store.clone())
        .clock(clock.clone())
        .hasher(hasher.clone())
        .revocation_window(Duration::from_secs(30))
        .verified_ttl(Duration::from_secs(60))
        .build()
}

async fn rehash_events(store: &MemoryStore, id: &str) -> usize {
    store
        .audit_trail(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::Rehashed)
        .count()
}

/// Lets spawned upgrade tasks run to completion (they hash on the blocking pool).
/// A store, a manual clock, a verifier whose hasher (m=128, t=2) is stronger than the one a
/// key was just created with (m=64, t=1), and that key.
struct WeakKey {
    store: Arc<MemoryStore>,
    clock: ManualClock,
    strong: CountingHasher,
    verifier: Verifier,
    created: keygate::CreatedKey,
}

async fn weak_key_under_a_strong_verifier() -> WeakKey {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let strong = CountingHasher::new(argon2(128, 2));
    let verifier = verifier(&store, &clock, &strong);
    let created = KeyManager::new(store.clone())
        .with_hasher(argon2(64, 1))
        .create(NewKey::new("old", "acme"))
        .await
        .unwrap();
    WeakKey {
        store,
        clock,
        strong,
        verifier,
        created,
    }
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Both verifiers check the key's secret with argon2 in every round (their verifications
/// lapse in between); returns the number of hashes each made.
async fn alternate(
    store: &Arc<MemoryStore>,
    first: &CountingHasher,
    second: &CountingHasher,
    rounds: usize,
) -> (String, usize, usize) {
    let clock = ManualClock::starting_now();
    let a = verifier(store, &clock, first);
    let b = verifier(store, &clock, second);
    let created = KeyManager::new(store.clone())
        .with_hasher(argon2(64, 1))
        .create(NewKey::new("rolling", "acme"))
        .await
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    let hashes_before = (first.hashes(), second.hashes());
    for _ in 0..rounds {
        a.verify(&token).await.unwrap();
        settle().await;
        b.verify(&token).await.unwrap();
        settle().await;
        clock.advance(Duration::from_secs(120));
    }
    (
        created.record.id,
        first.hashes() - hashes_before.0,
        second.hashes() - hashes_before.1,
    )
}

#[tokio::test]
async fn two_verifiers_with_different_parameters_rehash_a_key_at_most_once_and_audit_it() {
    let store = Arc::new(MemoryStore::new());
    let weak = CountingHasher::new(argon2(64, 1));
    let strong = CountingHasher::new(argon2(128, 2));
    let (id, weak_hashes, strong_hashes) = alternate(&store, &weak, &strong, 5).await;

    assert_eq!(
        (weak_hashes, strong_hashes),
        (0, 1),
        "the stronger verifier upgrades once; the weaker one never downgrades"
    );
    let stored = store.get(&id).await.unwrap().unwrap().hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=128,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(
        rehash_events(&store, &id).await,
        1,
        "one audit event, for the one upgrade"
    );
    let event = store
        .audit_trail(&id)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::Rehashed)
        .unwrap();
    assert_eq!(event.org, "acme");
    assert_eq!(event.detail["from"], "m=64,t=1,p=1");
    assert_eq!(event.detail["to"], "m=128,t=2,p=1");
    assert!(
        !event.detail.to_string().contains("argon2id$"),
        "no hash in the trail"
    );
}

#[tokio::test]
async fn parameters_that_trade_memory_for_time_never_rehash_each_others_keys() {
    let store = Arc::new(MemoryStore::new());
    let more_memory = CountingHasher::new(argon2(128, 1));
    let more_time = CountingHasher::new(argon2(64, 2));
    let (id, a, b) = alternate(&store, &more_memory, &more_time, 3).await;
    // The key was made with m=64,t=1: weaker than both, so the first to verify upgrades it,
    // and after that neither is weaker than the other.
    assert_eq!(a + b, 1, "one upgrade in all: {a} + {b}");
    assert_eq!(rehash_events(&store, &id).await, 1);
}

#[tokio::test]
async fn an_upgrade_costs_no_second_argon2_check_for_the_token_that_caused_it() {
    let WeakKey {
        store,
        clock,
        strong,
        verifier: v,
        created,
    } = weak_key_under_a_strong_verifier().await;
    let token = created.key.expose_secret();
    v.verify(token).await.unwrap();
    settle().await;
    assert_eq!(rehash_events(&store, &created.record.id).await, 1);
    // The record is read again (the hash changed), the verification carries over.
    clock.advance(Duration::from_secs(31));
    v.verify(token).await.unwrap();
    assert_eq!(strong.verify_count(), 1, "one argon2 check in all");
}

#[tokio::test]
async fn a_revoked_key_is_not_rehashed() {
    let WeakKey {
        store,
        strong,
        verifier: v,
        created,
        ..
    } = weak_key_under_a_strong_verifier().await;
    KeyManager::new(store.clone())
        .revoke(&created.record.id)
        .await
        .unwrap();
    assert_eq!(
        v.verify(created.key.expose_secret()).await.unwrap_err(),
        keygate::AuthError::RevokedKey
    );
    settle().await;
    assert_eq!(strong.hashes(), 0, "no upgrade hash for a revoked key");
    assert_eq!(rehash_events(&store, &created.record.id).await, 0);
}

/// Review of the compact cache entry: a stored hash whose parameters were edited in the store
/// (same salt, same output, `t=1` made `t=2`) is another hash. The token verified against the
/// old one must not be carried over to it: the next read checks the secret again (and here
/// fails, since argon2 with `t=2` gives another output).
#[tokio::test]
async fn a_stored_hash_edited_to_other_parameters_is_checked_again_not_carried_over() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::starting_now();
    let hasher = CountingHasher::new(argon2(64, 1));
    let v = verifier(&store, &clock, &hasher);
    let created = KeyManager::new(store.clone())
        .with_hasher(argon2(64, 1))
        .create(NewKey::new("edited", "acme"))
        .await
        .unwrap();
    let token = created.key.expose_secret().to_owned();
    let id = created.record.id.clone();
    v.verify(&token).await.unwrap();
    assert_eq!(hasher.verify_count(), 1);

    let old = store.get(&id).await.unwrap().unwrap().hash;
    let edited = old.replacen("t=1", "t=2", 1);
    assert_ne!(old, edited);
    let mut event = support::revoked_event(&id);
    event.action = AuditAction::Rehashed;
    assert!(store.update_hash(&id, &old, &edited, &event).await.unwrap());

    // Past the revocation window, inside the verification's lifetime: the record is read
    // again and holds the edited hash.
    clock.advance(Duration::from_secs(31));
    let answer = v.verify(&token).await;
    assert_eq!(
        hasher.verify_count(),
        2,
        "the secret is checked against the edited hash"
    );
    assert!(
        matches!(answer, Err(keygate::AuthError::InvalidKey)),
        "{answer:?}"
    );
}

/// The upgrade replaces the key's cache entry; a request admitted before it and refused by its
/// route after it (a missing scope) is counted once, as refused.
#[tokio::test]
async fn a_refusal_after_the_upgrade_replaced_the_entry_counts_the_request_once() {
    let WeakKey {
        store,
        clock,
        verifier: v,
        created,
        ..
    } = weak_key_under_a_strong_verifier().await;
    let id = &created.record.id;
    let admitted = v.verify(created.key.expose_secret()).await.unwrap();
    settle().await;
    assert_eq!(rehash_events(&store, id).await, 1);
    let denied = v.require(&admitted, &ScopeRequirement::all_of(["boards:write"]));
    assert!(denied.is_err());
    v.flush_last_used().await.unwrap();
    let rows = store
        .usage(id, clock.now() - chrono::Duration::days(1))
        .await
        .unwrap();
    let counts = rows
        .iter()
        .fold((0, 0), |(a, r), c| (a + c.requests, r + c.refused));
    assert_eq!(counts, (0, 1), "one request, refused");
}
