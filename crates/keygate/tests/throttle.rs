//! The failure throttle cannot lock a real key out: verdicts of keys in use slide, wrong
//! secrets are counted per (id, client address), a throttled client gets 429
//! `too_many_attempts` (never `invalid_key` for a secret that was not checked), unknown ids
//! are throttled exactly like known ones, and waiting for a hashing slot is bounded.
//!
//! Every test runs on the manual clock and counts argon2 runs with the counting hasher.

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use keygate::{AuthError, KeyStore, Principal};
use support::{forge_secret, Rig};

const MINUTE: Duration = Duration::from_secs(60);

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// The real key's client.
fn owner() -> Option<IpAddr> {
    ip("203.0.113.7")
}

/// Someone who knows the key's id (it is public) but not its secret.
fn forger() -> Option<IpAddr> {
    ip("198.51.100.66")
}

/// Sends `n` forged secrets for the id of `token` from `peer`; each must be refused as a wrong
/// secret or throttled, never accepted.
async fn forge(rig: &Rig, token: &str, peer: Option<IpAddr>, seeds: std::ops::Range<u32>) {
    for seed in seeds {
        let answer = rig
            .verifier
            .verify_from(&forge_secret(token, seed), peer)
            .await;
        assert!(
            matches!(
                answer,
                Err(AuthError::InvalidKey | AuthError::TooManyAttempts { .. })
            ),
            "forged secret {seed}: {answer:?}"
        );
    }
}

/// The answer to the correct secret: never `invalid_key`, whatever others did.
async fn real(rig: &Rig, token: &str, peer: Option<IpAddr>) -> Result<Arc<Principal>, AuthError> {
    let answer = rig.verifier.verify_from(token, peer).await;
    assert_ne!(
        answer.as_ref().err(),
        Some(&AuthError::InvalidKey),
        "the correct secret was answered invalid_key"
    );
    answer
}

#[tokio::test]
async fn a_key_in_use_keeps_its_verdict_so_forgeries_from_elsewhere_cost_it_no_argon2_run() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    real(&rig, &token, owner()).await.unwrap();
    assert_eq!(rig.hasher.verify_count(), 1);
    // Used every five minutes for 61 minutes: past the one-hour verdict TTL.
    for _ in 0..13 {
        rig.clock.advance(5 * MINUTE);
        real(&rig, &token, owner()).await.unwrap();
    }
    assert_eq!(
        rig.hasher.verify_count(),
        1,
        "the verdict slid: no re-check"
    );
    forge(&rig, &token, forger(), 0..100).await;
    let hashed = rig.hasher.verify_count();
    assert_eq!(
        hashed,
        1 + 10,
        "the forger's own ten failures, then throttled"
    );
    real(&rig, &token, owner()).await.unwrap();
    assert_eq!(
        rig.hasher.verify_count(),
        hashed,
        "no argon2 run for the real key"
    );
}

#[tokio::test]
async fn a_lapsed_verdict_is_checked_again_despite_forgeries_from_another_address() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    real(&rig, &token, owner()).await.unwrap();
    // Unused for 61 minutes: the verdict lapsed (as after a restart or an eviction).
    rig.clock.advance(61 * MINUTE);
    forge(&rig, &token, forger(), 0..100).await;
    let hashed = rig.hasher.verify_count();
    real(&rig, &token, owner()).await.unwrap();
    assert_eq!(
        rig.hasher.verify_count(),
        hashed + 1,
        "one argon2 run for the real key"
    );
}

#[tokio::test]
async fn forgeries_from_the_keys_own_address_get_429_with_retry_after_until_the_window_passes() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    real(&rig, &token, owner()).await.unwrap();
    rig.clock.advance(61 * MINUTE);
    forge(&rig, &token, owner(), 0..100).await;
    let hashed = rig.hasher.verify_count();
    let answer = real(&rig, &token, owner()).await.unwrap_err();
    assert_eq!(
        answer,
        AuthError::TooManyAttempts {
            retry_after_secs: 60
        }
    );
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.reason(), "too_many_attempts");
    assert_eq!(rig.hasher.verify_count(), hashed, "refused without hashing");
    rig.clock.advance(59 * Duration::from_secs(1));
    assert_eq!(
        real(&rig, &token, owner()).await.unwrap_err(),
        AuthError::TooManyAttempts {
            retry_after_secs: 1
        }
    );
    rig.clock.advance(Duration::from_secs(1));
    real(&rig, &token, owner()).await.unwrap();
    assert_eq!(rig.hasher.verify_count(), hashed + 1);
}

#[tokio::test]
async fn the_correct_secret_is_never_answered_invalid_key_whoever_forges() {
    // Forgers: none known (no address), the owner's own address, another address, and fifty
    // addresses that together spend the id's budget across addresses.
    let many: Vec<_> = (0..50).map(|i| ip(&format!("192.0.2.{i}"))).collect();
    let scenarios: [(&str, Vec<Option<IpAddr>>); 4] = [
        ("no address", vec![None]),
        ("own address", vec![owner()]),
        ("another address", vec![forger()]),
        ("many addresses", many),
    ];
    for (name, forgers) in scenarios {
        for lapsed in [false, true] {
            let rig = Rig::new();
            let (token, _) = rig.key().await;
            real(&rig, &token, owner()).await.unwrap();
            if lapsed {
                rig.clock.advance(61 * MINUTE);
            }
            for (i, peer) in forgers.iter().enumerate() {
                let from = u32::try_from(i).unwrap() * 100;
                forge(&rig, &token, *peer, from..from + 30).await;
            }
            // `real` asserts the answer is never invalid_key; 200 or 429, nothing else.
            for peer in [owner(), None, forger()] {
                let answer = real(&rig, &token, peer).await;
                assert!(
                    matches!(answer, Ok(_) | Err(AuthError::TooManyAttempts { .. })),
                    "{name}, lapsed {lapsed}: {answer:?}"
                );
            }
            if !lapsed {
                real(&rig, &token, owner()).await.unwrap();
            }
            rig.clock.advance(MINUTE);
            real(&rig, &token, owner()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn forging_from_many_addresses_is_bounded_by_the_ids_budget() {
    let rig = Rig::with(|b| b.failure_throttle(3, MINUTE).id_failure_budget(12));
    let (token, _) = rig.key().await;
    for i in 0..40u32 {
        forge(
            &rig,
            &token,
            ip(&format!("192.0.2.{i}")),
            i * 10..i * 10 + 5,
        )
        .await;
    }
    assert_eq!(
        rig.hasher.verify_count(),
        12,
        "the id's budget, across all addresses"
    );
}

/// (status, reason) of each answer.
async fn answers(
    rig: &Rig,
    token: &str,
    seeds: impl IntoIterator<Item = u32>,
) -> Vec<(u16, &'static str)> {
    let mut out = Vec::new();
    for seed in seeds {
        let e = rig
            .verifier
            .verify_from(&forge_secret(token, seed), forger())
            .await
            .unwrap_err();
        out.push((e.status(), e.reason()));
    }
    out
}

/// A key of the rig's store, and a well-formed key of the same prefix whose id it does not know.
async fn known_and_unknown(rig: &Rig) -> (String, String) {
    let (known, _) = rig.key().await;
    let prefix = keygate::token::parse(&known).unwrap().prefix().to_owned();
    let unknown = keygate::token::generate(&prefix).unwrap();
    (known, unknown.expose_secret().to_owned())
}

#[tokio::test]
async fn an_unknown_id_and_a_known_id_get_the_same_answers_under_forging() {
    let rig = Rig::with(|b| b.failure_throttle(3, MINUTE));
    let (known, unknown) = known_and_unknown(&rig).await;
    let unknown = unknown.as_str();

    // Twelve forged secrets, one of them sent again, then the same after the window.
    let seeds = || (0..12).chain([0]);
    let mut expected = vec![(401, "invalid_key"); 3];
    expected.extend([(429, "too_many_attempts"); 9]);
    expected.push((401, "invalid_key")); // a secret already refused stays refused
    for (name, token) in [("known", known.as_str()), ("unknown", unknown)] {
        assert_eq!(answers(&rig, token, seeds()).await, expected, "{name} id");
    }
    rig.clock.advance(MINUTE);
    for (name, token) in [("known", known.as_str()), ("unknown", unknown)] {
        assert_eq!(
            answers(&rig, token, 100..112).await,
            expected[..12],
            "{name} id, next window"
        );
    }
    assert_eq!(
        rig.hasher.verify_count(),
        6,
        "only the known id's secrets are hashed"
    );
}

/// What `Verifier::start` hands over for `token`: it must not be answerable from the cache.
fn pending(rig: &Rig, token: &str) -> keygate::PendingVerification {
    match rig.verifier.start(token) {
        keygate::Started::Pending(p) => p,
        keygate::Started::Answered(a) => panic!("answered from the cache: {a:?}"),
    }
}

#[tokio::test]
async fn a_throttled_client_is_answered_by_start_with_the_answer_resume_gives() {
    let rig = Rig::with(|b| b.failure_throttle(3, MINUTE));
    let (known, unknown) = known_and_unknown(&rig).await;
    for token in [&known, &unknown] {
        answers(&rig, token, 0..3).await;
    }
    let hashed = rig.hasher.verify_count();
    rig.clock.advance(Duration::from_secs(1));
    for (name, token) in [("known", &known), ("unknown", &unknown)] {
        let forged = forge_secret(token, 50);
        let started = match rig.verifier.start_from(&forged, forger) {
            keygate::Started::Answered(answer) => answer.err(),
            keygate::Started::Pending(_) => None,
        };
        assert_eq!(
            started,
            Some(AuthError::TooManyAttempts {
                retry_after_secs: 59
            }),
            "{name} id, throttled client"
        );
        let resumed = rig.verifier.resume(pending(&rig, &forged), forger()).await;
        assert_eq!(
            resumed.err(),
            started,
            "{name} id: the same answer as resume's"
        );
        // Another client is not throttled: its secret goes on to be checked.
        assert!(
            matches!(
                rig.verifier.start_from(&forged, owner),
                keygate::Started::Pending(_)
            ),
            "{name} id, another client"
        );
    }
    // Past the revocation window the entry is stale: resume reads the store first.
    rig.clock.advance(Duration::from_secs(30));
    for (name, token) in [("known", &known), ("unknown", &unknown)] {
        let forged = forge_secret(token, 51);
        let keygate::Started::Pending(p) = rig.verifier.start_from(&forged, forger) else {
            panic!("{name} id, stale entry: answered without reading the store");
        };
        let resumed = rig.verifier.resume(p, forger()).await;
        assert!(
            matches!(resumed, Err(AuthError::TooManyAttempts { .. })),
            "{name} id: {resumed:?}"
        );
    }
    assert_eq!(rig.hasher.verify_count(), hashed, "nothing was hashed");
    // The correct secret, verified once, is answered from the cache even for the throttled
    // client, whose address is then not read at all.
    rig.verifier.verify_from(&known, owner()).await.unwrap();
    assert!(matches!(
        rig.verifier.start_from(&known, || panic!(
            "the address was read for a cached verdict"
        )),
        keygate::Started::Answered(Ok(_))
    ));
}

/// A hasher whose checks wait until released, then check for real: holds the hashing queue.
#[derive(Clone, Default)]
struct HeldHasher {
    entered: Arc<AtomicUsize>,
    released: Arc<(Mutex<bool>, Condvar)>,
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
    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, keygate::HashError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let (lock, cv) = &*self.released;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        drop(released);
        support::cheap_argon2().verify(secret, stored)
    }
}

/// Releases the held hasher when dropped: a failing test must not leave a blocking thread
/// that the runtime waits for forever.
struct ReleaseOnDrop(HeldHasher);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Runs until `held` is inside a check: the one hashing slot is taken.
async fn hold_the_queue(
    rig: &Rig,
    held: &HeldHasher,
    token: String,
) -> tokio::task::JoinHandle<()> {
    let verifier = rig.verifier.clone();
    let task = tokio::spawn(async move {
        let _ = verifier.verify(&token).await;
    });
    while held.entered.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    task
}

/// Awaits `task` on the paused clock, stepping it 100 ms at a time (Tokio's paused clock does
/// not advance by itself while a blocking task runs); the answer and how long it took. Fails
/// past 3 s.
async fn answer_stepping_the_clock<T>(mut task: tokio::task::JoinHandle<T>) -> (T, Duration) {
    let mut waited = Duration::ZERO;
    loop {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        if task.is_finished() {
            return ((&mut task).await.unwrap(), waited);
        }
        assert!(
            waited < Duration::from_secs(3),
            "no answer past the deadline"
        );
        tokio::time::advance(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
}

#[tokio::test(start_paused = true)]
async fn a_hashing_queue_held_full_answers_503_verifier_busy_once_the_deadline_passes() {
    let held = HeldHasher::default();
    let rig = Rig::with(|b| {
        b.hasher(held.clone())
            .hash_concurrency(1)
            .hash_queue_timeout(Duration::from_secs(2))
            .retry_after_secs(5)
    });
    let _release = ReleaseOnDrop(held.clone());
    let (first, _) = rig.key().await;
    let (waiting, _) = rig.key().await;
    let holder = hold_the_queue(&rig, &held, first).await;

    let verifier = rig.verifier.clone();
    let queued = tokio::spawn(async move { verifier.verify(&waiting).await });
    let (answer, waited) = answer_stepping_the_clock(queued).await;
    assert!(
        waited >= Duration::from_secs(2),
        "answered before the deadline: {waited:?}"
    );
    let e = answer.unwrap_err();
    assert_eq!(
        e,
        AuthError::VerifierBusy {
            retry_after_secs: 5
        }
    );
    assert_eq!((e.status(), e.reason()), (503, "verifier_busy"));
    held.release();
    holder.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_request_admitted_after_waiting_for_a_hash_slot_answers_from_a_fresh_record() {
    let held = HeldHasher::default();
    let rig = Rig::with(|b| b.hasher(held.clone()).hash_concurrency(1));
    let _release = ReleaseOnDrop(held.clone());
    let (first, _) = rig.key().await;
    let (waiting, id) = rig.key().await;
    let holder = hold_the_queue(&rig, &held, first).await;

    let verifier = rig.verifier.clone();
    let queued = tokio::spawn(async move { verifier.verify(&waiting).await });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!queued.is_finished(), "waiting for the hashing slot");
    // Revoked by another process while it waits, noticed only by reading the store again.
    rig.store
        .inner
        .revoke(&id, chrono::Utc::now(), &support::revoked_event(&id))
        .await
        .unwrap();
    rig.clock.advance(Duration::from_secs(31));
    held.release();
    holder.await.unwrap();
    assert_eq!(queued.await.unwrap().unwrap_err(), AuthError::RevokedKey);
}

#[tokio::test(start_paused = true)]
async fn key_creation_hashes_in_the_verifiers_slots_and_answers_busy_past_the_deadline() {
    let held = HeldHasher::default();
    let rig = Rig::with(|b| {
        b.hasher(held.clone())
            .hash_concurrency(1)
            .hash_queue_timeout(Duration::from_secs(2))
    });
    let _release = ReleaseOnDrop(held.clone());
    let (first, _) = rig.key().await;
    let holder = hold_the_queue(&rig, &held, first).await;
    let before = rig
        .store
        .inner
        .list(&Default::default())
        .await
        .unwrap()
        .len();

    let manager = rig.manager.clone();
    let creating =
        tokio::spawn(async move { manager.create(keygate::NewKey::new("second", "acme")).await });
    let (answer, waited) = answer_stepping_the_clock(creating).await;
    assert!(
        waited >= Duration::from_secs(2),
        "created while the only hashing slot was taken: {waited:?}"
    );
    assert!(
        matches!(answer, Err(keygate::ManageError::Busy)),
        "{answer:?}"
    );
    assert_eq!(
        rig.store
            .inner
            .list(&Default::default())
            .await
            .unwrap()
            .len(),
        before,
        "nothing written"
    );
    held.release();
    holder.await.unwrap();
    rig.manager
        .create(keygate::NewKey::new("second", "acme"))
        .await
        .expect("a free slot: created");
}
