//! The traffic both quickstarts' `tests/metrics.rs` send before reading `GET /metrics`, over
//! any [`AppUnderTest`] (the conformance crate's axum and actix drivers). Included with
//! `#[path]` by those tests only (it needs `keygate-conformance`, which demo-api cannot
//! depend on); `metrics_doc.rs` must be included beside it as `metrics_doc`.
#![allow(dead_code)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use demo_api::DemoState;
use keygate::{Argon2Hasher, HashError, KeyHasher, KeyManager, NewKey, Verifier};
use keygate_conformance::{AppUnderTest, TestRequest};
use tokio::sync::oneshot;

use crate::metrics_doc;

/// The default argon2 hasher, whose next check, once armed, waits inside its hashing slot
/// until released: so a second secret finds no slot (`verifier_busy`) with no race.
#[derive(Debug, Default)]
pub(crate) struct GatedHasher {
    inner: Argon2Hasher,
    gate: Mutex<Option<(oneshot::Sender<()>, mpsc::Receiver<()>)>>,
}

impl GatedHasher {
    /// Arms the gate: the receiver resolves when the next check has started (holding the
    /// slot); sending on (or dropping) the sender lets it finish.
    fn arm(&self) -> (oneshot::Receiver<()>, mpsc::Sender<()>) {
        let (entered_tx, entered) = oneshot::channel();
        let (release, release_rx) = mpsc::channel();
        *self.gate.lock().unwrap_or_else(PoisonError::into_inner) = Some((entered_tx, release_rx));
        (entered, release)
    }
}

impl KeyHasher for GatedHasher {
    fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        self.inner.hash(secret)
    }

    fn verify(&self, secret: &[u8], stored: &str) -> Result<bool, HashError> {
        let gate = self
            .gate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((entered, release)) = gate {
            let _ = entered.send(());
            // Bounded, so a failed test cannot leave a blocking thread behind for ever.
            let _ = release.recv_timeout(Duration::from_secs(60));
        }
        self.inner.verify(secret, stored)
    }

    fn needs_rehash(&self, stored: &str) -> bool {
        self.inner.needs_rehash(stored)
    }
}

/// The state the app under test is built from, and what the traffic needs.
pub(crate) struct Setup {
    pub(crate) state: DemoState,
    hasher: Arc<GatedHasher>,
    /// Three valid keys, each verified cold at least once.
    keys: [String; 3],
    /// A token of the first key's id with a wrong secret (valid checksum), and a second one.
    wrong_secrets: [String; 2],
}

/// A verifier over an in-memory store with three keys: one hashing slot that a second
/// secret waits 50 ms for, and a client throttled after one wrong secret.
pub(crate) async fn setup() -> Setup {
    let store = demo_api::open_store("memory:").await.unwrap();
    let hasher = Arc::new(GatedHasher::default());
    let verifier = Verifier::builder(store.clone())
        .shared_hasher(hasher.clone())
        .hash_concurrency(1)
        .hash_queue_timeout(Duration::from_millis(50))
        .failure_throttle(1, Duration::from_secs(60))
        .build();
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let mut keys = Vec::new();
    for name in ["first", "second", "third"] {
        let created = manager
            .create(
                NewKey::new(name, "acme")
                    .scopes(demo_api::DEMO_SCOPES)
                    .unwrap(),
            )
            .await
            .unwrap();
        keys.push(created.key.expose_secret().to_owned());
    }
    let first = keygate::token::parse(&keys[0]).unwrap();
    let wrong = |c: &str| {
        keygate::token::with_checksum(&format!(
            "{}_{}.{}",
            first.prefix(),
            first.id(),
            c.repeat(keygate::token::SECRET_LEN)
        ))
    };
    let wrong_secrets = [wrong("W"), wrong("V")];
    Setup {
        state: DemoState::new(verifier),
        hasher,
        keys: keys.try_into().unwrap(),
        wrong_secrets,
    }
}

fn me(key: Option<&str>) -> TestRequest {
    let req = TestRequest::get("/api/v1/me");
    match key {
        Some(k) => req.header("x-api-key", k),
        None => req,
    }
}

/// Sends traffic that makes every documented metric record something, then checks
/// `GET /metrics` against the README's table. `app` must be built from `setup.state` (which
/// installs the recorder).
pub(crate) async fn traffic_then_metrics<A: AppUnderTest>(app: &A, setup: &Setup) {
    let [first, second, third] = &setup.keys;
    let status = |r: keygate_conformance::TestResponse| r.status;

    // A valid key, cold: a record miss (a store read: keygate_store_seconds) and a verdict
    // miss (argon2: keygate_hash_seconds); then warm: both caches hit.
    assert_eq!(status(app.send(me(Some(first))).await), 200);
    assert_eq!(status(app.send(me(Some(first))).await), 200);
    // No key: refused before any verification, and counted nowhere.
    assert_eq!(status(app.send(me(None)).await), 401);
    // Not a key at all: malformed_key.
    assert_eq!(status(app.send(me(Some("mk_live_nope"))).await), 401);
    // A wrong secret: hashed and refused (invalid_key)…
    assert_eq!(
        status(app.send(me(Some(&setup.wrong_secrets[0]))).await),
        401
    );
    // …and another one from the same client: throttled without hashing (429).
    assert_eq!(
        status(app.send(me(Some(&setup.wrong_secrets[1]))).await),
        429
    );

    // The only hashing slot held by the second key's check: the third key finds none within
    // the queue timeout (503 verifier_busy), then the second key's check finishes.
    let (entered, release) = setup.hasher.arm();
    let verifier = setup.state.verifier.clone();
    let second_key = second.clone();
    let holder = tokio::spawn(async move { verifier.verify(&second_key).await.map(|_| ()) });
    entered
        .await
        .expect("the second key's check reached the hasher");
    let busy = app.send(me(Some(third))).await;
    release.send(()).unwrap();
    assert_eq!(busy.status, 503, "{}", String::from_utf8_lossy(&busy.body));
    holder.await.unwrap().unwrap();
    assert_eq!(status(app.send(me(Some(third))).await), 200);

    // The third key gets a rate limit of one request a day: one more passes, the next is 429.
    let manager = keygate::KeyManager::new(std::sync::Arc::clone(setup.state.verifier.store()))
        .with_verifier(&setup.state.verifier);
    let third_id = keygate::token::parse(third).unwrap().id().to_owned();
    let limit = keygate::KeyUpdate {
        rate_limit: Some(Some("1/1d".parse().unwrap())),
        ..keygate::KeyUpdate::default()
    };
    manager.update(&third_id, &limit).await.unwrap();
    assert_eq!(status(app.send(me(Some(third))).await), 200);
    assert_eq!(status(app.send(me(Some(third))).await), 429);

    // The write-behind of last-used times and usage counts.
    let flushed = setup.state.verifier.flush_last_used().await.unwrap();
    assert!(flushed >= 1, "a flush after accepted requests writes some");

    let res = app.send(TestRequest::get(demo_api::METRICS_PATH)).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type").as_deref(),
        Some(demo_api::METRICS_CONTENT_TYPE)
    );
    let text = String::from_utf8(res.body).unwrap();
    let documented = metrics_doc::documented();
    let problems = metrics_doc::problems(&text, &documented);
    assert!(
        problems.is_empty(),
        "GET /metrics against README's Metrics table:\n{}\n\n{text}",
        problems.join("\n")
    );
    // The traffic's answers, each counted under its own outcome.
    for outcome in [
        "ok",
        "malformed_key",
        "invalid_key",
        "too_many_attempts",
        "verifier_busy",
    ] {
        assert!(
            text.contains(&format!(
                "keygate_verifications_total{{outcome=\"{outcome}\"}}"
            )),
            "no {outcome} verification in:\n{text}"
        );
    }
    for (cache, result) in [
        ("record", "hit"),
        ("record", "miss"),
        ("verdict", "hit"),
        ("verdict", "miss"),
    ] {
        assert!(
            text.contains(&format!(
                "keygate_cache_total{{cache=\"{cache}\",result=\"{result}\"}}"
            )),
            "no {cache} {result} in:\n{text}"
        );
    }
}
