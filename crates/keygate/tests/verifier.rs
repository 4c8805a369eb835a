//! The verification path (`docs/architecture.md`, "The verification path"), behaviour by
//! behaviour.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use keygate::token::TokenError;
use keygate::{AuthError, KeyStore, Malformed, NewKey, ScopeRequirement, Verifier};
use support::{forge_secret, Rig};

#[tokio::test]
async fn valid_key_is_accepted_and_its_principal_carries_the_grants() {
    let rig = Rig::new();
    let (token, id) = rig
        .key_with(
            NewKey::new("svc", "acme")
                .team("core")
                .owner("ana")
                .scopes(["entities:read", "boards:write"])
                .unwrap()
                .metadata(serde_json::json!({"tier": "gold"})),
        )
        .await;
    let p = rig.verifier.verify(&token).await.unwrap();
    assert_eq!(p.id, id);
    assert_eq!(p.org, "acme");
    assert_eq!(p.team.as_deref(), Some("core"));
    assert_eq!(p.owner.as_deref(), Some("ana"));
    assert_eq!(p.environment, "mk_live");
    assert!(p.has_scope("boards:write") && !p.has_scope("boards:read"));
    assert_eq!(p.metadata["tier"], "gold");
}

/// The same id and secret under another prefix: `mk_live` → `mk_test`, `mk_liv`, `mk_livee`
/// (a shorter or longer prefix shifts where the id starts), re-checksummed.
fn under_prefix(token: &str, prefix: &str) -> String {
    let id_start = token[..token.find('.').unwrap()].rfind('_').unwrap();
    keygate::token::with_checksum(&format!(
        "{prefix}{}",
        &token[id_start..token.len() - keygate::token::CHECKSUM_LEN]
    ))
}

#[tokio::test]
async fn a_verified_secret_under_another_prefix_is_not_answered_from_the_cache() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    assert!(token.starts_with("mk_live_"), "{token}");
    rig.verifier.verify(&token).await.unwrap();
    let hashed = rig.hasher.verify_count();
    for prefix in ["mk_test", "mk_liv", "mk_livee", "mk_live_x"] {
        let other = under_prefix(&token, prefix);
        assert!(keygate::token::parse(&other).is_ok(), "{other}");
        assert!(
            rig.verifier.verify_cached(&other).is_none(),
            "{prefix}: answered from the verdict of {token}"
        );
        assert_eq!(
            rig.verifier.verify(&other).await.err(),
            Some(AuthError::InvalidKey),
            "{prefix}"
        );
    }
    assert_eq!(
        rig.hasher.verify_count(),
        hashed + 4,
        "each was checked by the hasher"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_first_verifications_run_the_hash_once() {
    let rig = Arc::new(Rig::new());
    let (token, _) = rig.key().await;
    let token: Arc<str> = token.into();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (rig, token) = (rig.clone(), token.clone());
            tokio::spawn(async move { rig.verifier.verify(&token).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(rig.hasher.verify_count(), 1);
    assert_eq!(rig.store.get_count(), 1, "store reads are coalesced too");
}

#[tokio::test]
async fn cached_verification_touches_neither_store_nor_hasher() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    let (gets, hashes) = (rig.store.get_count(), rig.hasher.verify_count());
    for _ in 0..100 {
        rig.verifier.verify(&token).await.unwrap();
    }
    assert_eq!(
        (rig.store.get_count(), rig.hasher.verify_count()),
        (gets, hashes)
    );
}

#[tokio::test]
async fn in_process_revoke_bites_on_the_next_verification() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    rig.manager.revoke(&id).await.unwrap();
    assert_eq!(
        rig.verifier.verify(&token).await,
        Err(AuthError::RevokedKey)
    );
}

#[tokio::test]
async fn revoke_by_another_process_bites_after_the_window_and_not_before() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    // Written straight to the store: this verifier is not told.
    rig.store
        .inner
        .revoke(&id, chrono::Utc::now(), &support::revoked_event(&id))
        .await
        .unwrap();
    rig.clock.advance(Duration::from_secs(29));
    assert!(
        rig.verifier.verify(&token).await.is_ok(),
        "still inside the window"
    );
    rig.clock.advance(Duration::from_secs(1));
    assert_eq!(
        rig.verifier.verify(&token).await,
        Err(AuthError::RevokedKey)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_in_flight_during_a_revoke_cannot_restore_the_old_state() {
    let rig = Arc::new(Rig::new());
    let (token, id) = rig.key().await;
    rig.store.hold_next_get.store(true, Ordering::SeqCst);
    let first = {
        let (rig, token) = (rig.clone(), token.clone());
        tokio::spawn(async move { rig.verifier.verify(&token).await })
    };
    // The store has read the active record and is holding it…
    rig.store.read_taken.notified().await;
    // …when the key is revoked.
    rig.manager.revoke(&id).await.unwrap();
    rig.store.release.notify_one();
    assert_eq!(first.await.unwrap(), Err(AuthError::RevokedKey));
    assert_eq!(
        rig.verifier.verify(&token).await,
        Err(AuthError::RevokedKey)
    );
}

#[tokio::test]
async fn expiry_bites_at_expires_at_even_for_a_cached_key() {
    let rig = Rig::new();
    let expires = rig.clock_now() + chrono::Duration::seconds(10);
    let (token, _) = rig
        .key_with(NewKey::new("short", "acme").expires_at(expires))
        .await;
    rig.verifier.verify(&token).await.unwrap();
    rig.clock.advance(Duration::from_millis(9_999));
    assert!(rig.verifier.verify(&token).await.is_ok());
    rig.clock.advance(Duration::from_millis(1));
    assert_eq!(
        rig.verifier.verify(&token).await,
        Err(AuthError::ExpiredKey)
    );
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}
impl ClockNow for Rig {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use keygate::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn revoked_or_expired_key_with_a_wrong_secret_is_just_invalid() {
    let rig = Rig::new();
    let (revoked, revoked_id) = rig.key().await;
    rig.manager.revoke(&revoked_id).await.unwrap();
    let expires = rig.clock_now() + chrono::Duration::seconds(5);
    let (expired, _) = rig
        .key_with(NewKey::new("e", "acme").expires_at(expires))
        .await;
    rig.clock.advance(Duration::from_secs(6));

    assert_eq!(
        rig.verifier.verify(&revoked).await,
        Err(AuthError::RevokedKey)
    );
    assert_eq!(
        rig.verifier.verify(&expired).await,
        Err(AuthError::ExpiredKey)
    );
    assert_eq!(
        rig.verifier.verify(&forge_secret(&revoked, 1)).await,
        Err(AuthError::InvalidKey)
    );
    assert_eq!(
        rig.verifier.verify(&forge_secret(&expired, 1)).await,
        Err(AuthError::InvalidKey)
    );
}

#[tokio::test]
async fn the_same_forged_key_is_hashed_once_per_rejection_ttl() {
    let rig = Rig::with(|b| b.rejected_ttl(Duration::from_secs(60)));
    let (token, _) = rig.key().await;
    let forged = forge_secret(&token, 7);
    for _ in 0..50 {
        assert_eq!(
            rig.verifier.verify(&forged).await,
            Err(AuthError::InvalidKey)
        );
    }
    assert_eq!(rig.hasher.verify_count(), 1);
    rig.clock.advance(Duration::from_secs(61));
    assert_eq!(
        rig.verifier.verify(&forged).await,
        Err(AuthError::InvalidKey)
    );
    assert_eq!(
        rig.hasher.verify_count(),
        2,
        "hashed again once the rejection expired"
    );
}

#[tokio::test]
async fn repeated_wrong_secrets_throttle_the_id_without_hashing() {
    let rig = Rig::with(|b| b.failure_throttle(3, Duration::from_secs(60)));
    let (token, _) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    let base = rig.hasher.verify_count();
    for seed in 0..3 {
        assert_eq!(
            rig.verifier.verify(&forge_secret(&token, seed)).await,
            Err(AuthError::InvalidKey)
        );
    }
    assert_eq!(rig.hasher.verify_count(), base + 3);
    for seed in 3..100 {
        assert_eq!(
            rig.verifier.verify(&forge_secret(&token, seed)).await,
            Err(AuthError::TooManyAttempts {
                retry_after_secs: 60
            }),
            "throttled: 429, not a verdict on a secret that was never checked"
        );
    }
    assert_eq!(
        rig.hasher.verify_count(),
        base + 3,
        "throttled: no more hashing for this id"
    );
    assert!(
        rig.verifier.verify(&token).await.is_ok(),
        "the verified key keeps working"
    );
    rig.clock.advance(Duration::from_secs(61));
    let _ = rig.verifier.verify(&forge_secret(&token, 1000)).await;
    assert_eq!(rig.hasher.verify_count(), base + 4, "the window ended");
}

/// A hasher whose checks take 20 ms, so that concurrent checks really overlap.
struct SlowHasher(support::CountingHasher);

impl keygate::KeyHasher for SlowHasher {
    fn hash(&self, secret: &[u8]) -> Result<String, keygate::HashError> {
        self.0.hash(secret)
    }
    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, keygate::HashError> {
        std::thread::sleep(Duration::from_millis(20));
        self.0.verify(secret, stored)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_secrets_arriving_together_cannot_outrun_the_throttle() {
    let counting = support::CountingHasher::new(support::cheap_argon2());
    let slow = SlowHasher(counting.clone());
    let rig = Arc::new(Rig::with(move |b| {
        b.hasher(slow)
            .failure_throttle(3, Duration::from_secs(60))
            .hash_concurrency(1)
    }));
    let (token, _) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    let base = counting.verify_count();
    let tasks: Vec<_> = (0..40)
        .map(|seed| {
            let (rig, forged) = (rig.clone(), forge_secret(&token, seed));
            tokio::spawn(async move { rig.verifier.verify(&forged).await })
        })
        .collect();
    for t in tasks {
        let answer = t.await.unwrap();
        assert!(
            matches!(
                answer,
                Err(AuthError::InvalidKey | AuthError::TooManyAttempts { .. })
            ),
            "{answer:?}"
        );
    }
    let hashed = counting.verify_count() - base;
    assert!(
        hashed <= 3 + 1,
        "40 concurrent forgeries ran {hashed} hashes; the throttle allows 3 (+1 in flight)"
    );
}

#[tokio::test]
async fn a_failing_store_is_503_never_401() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    rig.store.failing.store(true, Ordering::SeqCst);
    let err = rig.verifier.verify(&token).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable { .. }), "{err:?}");
    assert_eq!(err.status(), 503);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_times_out_as_503() {
    let rig = Rig::with(|b| b.store_timeout(Duration::from_millis(500)));
    let (token, _) = rig.key().await;
    rig.store.hanging.store(true, Ordering::SeqCst);
    let err = rig.verifier.verify(&token).await.unwrap_err();
    assert!(matches!(err, AuthError::StoreUnavailable { .. }), "{err:?}");
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_store_is_down() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    rig.verifier.verify(&token).await.unwrap();
    rig.store.failing.store(true, Ordering::SeqCst);
    assert!(rig.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn malformed_keys_cost_no_store_read_and_no_hash() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    let mut typo = token.clone().into_bytes();
    let last = typo.len() - 8;
    typo[last] = if typo[last] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    for bad in ["", "garbage", "mk_live_0123.abc", typo.as_str()] {
        assert!(
            matches!(
                rig.verifier.verify(bad).await,
                Err(AuthError::MalformedKey(_))
            ),
            "{bad}"
        );
    }
    assert_eq!((rig.store.get_count(), rig.hasher.verify_count()), (0, 0));
}

#[tokio::test]
async fn a_prefix_this_service_does_not_accept_is_malformed() {
    let rig = Rig::with(|b| b.accept_prefixes(["mk_live"]));
    let (token, _) = rig
        .key_with(NewKey::new("t", "acme").prefix("mk_test"))
        .await;
    assert_eq!(
        rig.verifier.verify(&token).await,
        Err(AuthError::MalformedKey(Malformed::WrongPrefix))
    );
    assert_eq!(rig.store.get_count(), 0);
    assert_eq!(
        rig.verifier.verify("mk_live_x").await,
        Err(AuthError::MalformedKey(Malformed::Token(TokenError::Shape)))
    );
}

#[tokio::test]
async fn unknown_ids_are_remembered_briefly() {
    let rig = Rig::with(|b| b.absent_ttl(Duration::from_secs(5)));
    let (token, _) = rig.key().await;
    let unknown = keygate::token::generate("mk_live").unwrap();
    for _ in 0..10 {
        assert_eq!(
            rig.verifier.verify(unknown.expose_secret()).await,
            Err(AuthError::InvalidKey)
        );
    }
    assert_eq!(rig.store.get_count(), 1);
    rig.clock.advance(Duration::from_secs(6));
    let _ = rig.verifier.verify(unknown.expose_secret()).await;
    assert_eq!(rig.store.get_count(), 2);
    assert!(rig.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn a_key_created_after_its_id_was_probed_works_at_once() {
    // Someone probes an id before a key with that id is stored: the unknown id is cached as
    // absent. The manager invalidates the id on create, so that negative entry cannot hide
    // the new key, even though no time passes on the clock.
    let rig = Arc::new(Rig::with(|b| b.absent_ttl(Duration::from_secs(60))));
    rig.store.hold_next_insert.store(true, Ordering::SeqCst);
    let creating = {
        let rig = rig.clone();
        tokio::spawn(async move { rig.key().await })
    };
    // The key's id is chosen and hashed; the store holds the insert before writing it.
    rig.store.insert_taken.notified().await;
    let id = rig.store.inserting.lock().unwrap().clone().unwrap();
    let probe = |seed| forge_secret(&format!("mk_live_{id}.x"), seed);

    let gets = rig.store.get_count();
    assert_eq!(
        rig.verifier.verify(&probe(1)).await,
        Err(AuthError::InvalidKey),
        "the probe is answered as an unknown key"
    );
    assert_eq!(rig.store.get_count(), gets + 1, "the probe read the store");
    // Cached as absent: another probe of the id (another secret) reads nothing.
    assert_eq!(
        rig.verifier.verify(&probe(2)).await,
        Err(AuthError::InvalidKey)
    );
    assert_eq!(
        rig.store.get_count(),
        gets + 1,
        "the unknown id is answered from the cache"
    );

    rig.store.insert_release.notify_one();
    let (token, created_id) = creating.await.unwrap();
    assert_eq!(created_id, id);
    let p = rig
        .verifier
        .verify(&token)
        .await
        .expect("the new key works at once, not after the absent TTL");
    assert_eq!(p.id, id);
}

#[tokio::test]
async fn scope_requirements_give_403_with_the_missing_scopes() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    let err = rig
        .verifier
        .authorize(
            &token,
            &ScopeRequirement::all_of(["entities:read", "entities:write"]),
        )
        .await
        .unwrap_err();
    match err {
        AuthError::InsufficientScope { missing, .. } => {
            assert_eq!(
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                ["entities:write"]
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(rig
        .verifier
        .authorize(
            &token,
            &ScopeRequirement::any_of(["entities:write", "entities:read"])
        )
        .await
        .is_ok());
}

#[tokio::test]
async fn rotation_gives_a_new_key_and_the_old_one_expires_after_the_grace() {
    let rig = Rig::new();
    let (old, old_id) = rig.key().await;
    rig.verifier.verify(&old).await.unwrap();
    let rotated = rig
        .manager
        .rotate(&old_id, Duration::from_secs(3600))
        .await
        .unwrap();
    let new = rotated.key.expose_secret().to_owned();
    assert_eq!(
        rotated.record.rotated_from.as_deref(),
        Some(old_id.as_str())
    );
    let grace_end = rig.clock_now() + chrono::Duration::seconds(3600);
    let stored = rig.store.inner.get(&old_id).await.unwrap().unwrap();
    assert_eq!(stored.expires_at, Some(grace_end));
    let p = rig.verifier.verify(&new).await.unwrap();
    assert!(p.has_scope("entities:read"));
    assert!(rig.verifier.verify(&old).await.is_ok(), "grace period");
    // The last millisecond of the grace: still accepted (read again, the cached entry is
    // older than the revocation window)…
    rig.clock.advance(Duration::from_millis(3_600_000 - 1));
    assert!(
        rig.verifier.verify(&old).await.is_ok(),
        "1 ms before the grace ends"
    );
    // …and at the end of the grace, refused, though the entry was cached a millisecond ago.
    rig.clock.advance(Duration::from_millis(1));
    assert_eq!(rig.clock_now(), grace_end);
    assert_eq!(
        rig.verifier.verify(&old).await,
        Err(AuthError::ExpiredKey),
        "at the end of the grace"
    );
    rig.clock.advance(Duration::from_secs(1));
    assert_eq!(rig.verifier.verify(&old).await, Err(AuthError::ExpiredKey));
    assert!(rig.verifier.verify(&new).await.is_ok());
}

#[tokio::test]
async fn scope_narrowing_hook_limits_a_key_to_what_its_owner_may_do() {
    struct OwnerCanOnlyRead;
    #[async_trait::async_trait]
    impl keygate::ScopeNarrower for OwnerCanOnlyRead {
        async fn owner_scopes(
            &self,
            _: &keygate::KeyRecord,
        ) -> Result<keygate::ScopeSet, keygate::StoreError> {
            Ok(keygate::ScopeSet::parse(["entities:read"]).unwrap())
        }
    }
    let rig = Rig::with(|b| b.scope_narrower(OwnerCanOnlyRead));
    let (token, _) = rig
        .key_with(
            NewKey::new("k", "acme")
                .scopes(["entities:read", "entities:write"])
                .unwrap(),
        )
        .await;
    let p = rig.verifier.verify(&token).await.unwrap();
    assert!(p.has_scope("entities:read"));
    assert!(!p.has_scope("entities:write"));
}

#[tokio::test]
async fn hashes_with_old_parameters_are_upgraded_after_a_successful_verification() {
    let store = Arc::new(keygate::MemoryStore::new());
    let old_params = keygate::KeyManager::new(store.clone()).with_hasher(support::cheap_argon2());
    let created = old_params.create(NewKey::new("k", "acme")).await.unwrap();
    let newer = keygate::Argon2Hasher::with_params(keygate::Argon2Params {
        memory_kib: 128,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(store.clone()).hasher(newer).build();
    verifier.verify(created.key.expose_secret()).await.unwrap();

    let mut upgraded = false;
    for _ in 0..200 {
        let hash = store.get(&created.record.id).await.unwrap().unwrap().hash;
        if hash.contains("m=128,") {
            upgraded = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(upgraded, "stored hash was not upgraded");
    assert!(verifier.verify(created.key.expose_secret()).await.is_ok());
}

/// The synchronous hot path (`verify_cached`; the tower layer and the actix middleware use
/// `Gate::start`, the same path) answers only what needs no store read and no hash, and hands everything else
/// to `verify`.
#[tokio::test]
async fn verify_cached_answers_only_from_fresh_caches() {
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    assert!(
        rig.verifier.verify_cached(&token).is_none(),
        "nothing is cached before the first verification"
    );
    assert!(matches!(
        rig.verifier.verify_cached("garbage"),
        Some(Err(AuthError::MalformedKey(_)))
    ));
    let reads = rig.store.gets.load(Ordering::SeqCst);
    let first = rig.verifier.verify(&token).await.unwrap();
    assert_eq!(rig.store.gets.load(Ordering::SeqCst), reads + 1);
    let hashes = rig.hasher.verify_count();

    let cached = rig.verifier.verify_cached(&token).unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &cached), "the cached principal itself");
    assert_eq!(
        rig.store.gets.load(Ordering::SeqCst),
        reads + 1,
        "no store read"
    );
    assert_eq!(rig.hasher.verify_count(), hashes, "no hash");

    // A new forged secret for the cached id needs argon2: not answered here.
    assert!(rig
        .verifier
        .verify_cached(&forge_secret(&token, 1))
        .is_none());
    // Past the revocation window the record must be read again: not answered here.
    rig.clock.advance(Duration::from_secs(30));
    assert!(rig.verifier.verify_cached(&token).is_none());
    rig.verifier.verify(&token).await.unwrap();
    assert!(rig.verifier.verify_cached(&token).unwrap().is_ok());
    // A local revoke drops the record at once: the next answer comes from the store.
    rig.manager.revoke(&id).await.unwrap();
    assert!(rig.verifier.verify_cached(&token).is_none());
    assert_eq!(
        rig.verifier.verify(&token).await.unwrap_err(),
        AuthError::RevokedKey
    );
    assert_eq!(
        rig.verifier.verify_cached(&token).unwrap().unwrap_err(),
        AuthError::RevokedKey
    );
}

/// A hasher whose checks wait until released: lets a test cancel a request mid-hash.
#[derive(Clone, Default)]
struct HeldHasher {
    entered: Arc<std::sync::atomic::AtomicUsize>,
    released: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
}

impl HeldHasher {
    fn release(&self) {
        let (lock, cv) = &*self.released;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
}

impl keygate::KeyHasher for HeldHasher {
    fn hash(&self, secret: &[u8]) -> Result<String, keygate::HashError> {
        support::cheap_argon2().hash(secret)
    }
    fn verify(&self, _: &[u8], _: &str) -> Result<bool, keygate::HashError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let (lock, cv) = &*self.released;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        Ok(false)
    }
}

/// Closing the connection while a forged secret is being hashed must not get round the
/// throttle: the attempt counts whether or not its caller waits for the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_secrets_whose_requests_are_cancelled_mid_hash_still_count_toward_the_throttle() {
    let held = HeldHasher::default();
    let rig = Rig::with(|b| {
        b.hasher(held.clone())
            .hash_concurrency(8)
            .failure_throttle(3, Duration::from_secs(60))
    });
    let (token, _) = rig.key().await;
    for seed in 0..3 {
        let verifier = rig.verifier.clone();
        let forged = forge_secret(&token, seed);
        let task = tokio::spawn(async move { verifier.verify(&forged).await });
        // Wait until this attempt is inside the hash, then drop its request.
        while held.entered.load(Ordering::SeqCst) <= seed as usize {
            tokio::task::yield_now().await;
        }
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
    held.release();
    let entered = held.entered.load(Ordering::SeqCst);
    assert_eq!(entered, 3);
    assert!(matches!(
        rig.verifier.verify(&forge_secret(&token, 99)).await,
        Err(AuthError::TooManyAttempts { .. })
    ));
    assert_eq!(
        held.entered.load(Ordering::SeqCst),
        entered,
        "the id is throttled: no further hash"
    );
}

/// A verification started on one verifier and resumed on another is answered from the
/// second one's store, never from what the first one had cached.
#[tokio::test]
async fn a_pending_verification_resumed_on_another_verifier_starts_over_there() {
    let a = Rig::new();
    let b = Rig::new();
    let (token, id) = a.key().await;
    let record = a.store.inner.get(&id).await.unwrap().unwrap();
    b.store.inner.insert(&record, &[]).await.unwrap();
    // Revoked in B's store behind B's back (another process did it): B's cache state says
    // nothing about the key either way.
    b.store
        .inner
        .revoke(&id, chrono::Utc::now(), &support::revoked_event(&id))
        .await
        .unwrap();
    // A caches the key's entry (a wrong secret reads it) but holds no verdict on the token.
    assert_eq!(
        a.verifier
            .verify(&forge_secret(&token, 1))
            .await
            .unwrap_err(),
        AuthError::InvalidKey
    );
    let keygate::Started::Pending(pending) = a.verifier.start(&token) else {
        panic!("A has no verdict on this token yet");
    };
    assert_eq!(
        b.verifier.resume(pending, None).await.unwrap_err(),
        AuthError::RevokedKey,
        "B's store revoked the key; A's cached entry must not answer for B"
    );
}
