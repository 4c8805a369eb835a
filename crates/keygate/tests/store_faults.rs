//! Store faults that are not outages: a stored hash that is not a PHC string, and a
//! `ScopeNarrower` (the application's hook, read with the record) that fails or hangs. Both
//! are faults of the key store, answered 503 `store_unavailable` with `Retry-After`, never
//! 401: the caller may hold a perfectly good key. The fault is logged with the key id and
//! nothing secret, and it is not remembered: the next request asks again.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use keygate::{
    ApiKeyLayer, AuditAction, AuditEvent, AuthError, KeyRecord, KeyStore, ScopeNarrower, ScopeSet,
    StoreError,
};
use support::{forge_secret, Capture, Rig};
use tower::{service_fn, ServiceBuilder, ServiceExt};

async fn ok(_: Request<()>) -> Result<Response<Bytes>, Infallible> {
    Ok(Response::new(Bytes::from_static(b"ok")))
}

/// One request with `X-Api-Key: token` through the tower layer over `rig`'s verifier.
async fn send(rig: &Rig, token: &str) -> Response<Bytes> {
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(ok));
    let req = Request::builder()
        .uri("/")
        .header("x-api-key", token)
        .body(())
        .unwrap();
    svc.oneshot(req).await.unwrap()
}

/// A 503 `store_unavailable` answer with `Retry-After` and no authentication challenge.
fn assert_store_unavailable(res: &Response<Bytes>, what: &str) {
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(
        body["error"]["code"], "SERVICE_UNAVAILABLE",
        "{what}: {body}"
    );
    assert_eq!(
        body["error"]["details"]["reason"], "store_unavailable",
        "{what}: {body}"
    );
    assert!(res.headers().contains_key("retry-after"), "{what}");
    assert!(
        !res.headers().contains_key("www-authenticate"),
        "{what}: a store fault is not an authentication failure"
    );
}

/// The tests here run one at a time: each captures logs with a subscriber of its own
/// thread, and `tracing` caches per call site whether anyone listens, so a call site first
/// reached on one thread while another thread installs its subscriber can be missed.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Logs at every level into a buffer, for this thread (the tests run on one thread).
fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

/// The secret part of a token: everything after the `.`.
fn secret_of(token: &str) -> &str {
    &token[token.find('.').unwrap() + 1..]
}

/// Replaces the stored hash of `id` with `hash`, as a damaged row would hold it.
async fn corrupt_hash(rig: &Rig, id: &str, hash: &str) {
    let record: KeyRecord = rig.store.inner.get(id).await.unwrap().unwrap();
    let event = AuditEvent {
        key_id: id.to_owned(),
        action: AuditAction::Rehashed,
        at: chrono::Utc::now(),
        org: record.org.clone(),
        actor: None,
        detail: serde_json::Value::Null,
    };
    assert!(rig
        .store
        .inner
        .update_hash(id, &record.hash, hash, &event)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_key_whose_stored_hash_is_corrupt_is_answered_503_and_logged_without_secrets() {
    let _serial = SERIAL.lock().await;
    let corrupt = [
        "not-a-phc-string",
        "",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=19456,t=2,p=1$",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$!!not*base64!!",
    ];
    for stored in corrupt {
        let (logs, _guard) = capture_logs();
        let rig = Rig::new();
        let (token, id) = rig.key().await;
        corrupt_hash(&rig, &id, stored).await;

        // The holder of the right secret, twice: the fault is not remembered as a verdict.
        for attempt in ["first", "second"] {
            let what = format!("stored hash {stored:?}, {attempt} request");
            assert_store_unavailable(&send(&rig, &token).await, &what);
        }
        // The verifier itself says the same, for a forged secret too: nothing can be
        // checked against a hash that cannot be read, so no verdict on any secret.
        let forged = forge_secret(&token, 1);
        for t in [&token, &forged] {
            let r = rig.verifier.verify(t).await;
            assert!(
                matches!(r, Err(AuthError::StoreUnavailable { .. })),
                "stored hash {stored:?}: {r:?}"
            );
        }

        let text = logs.text();
        assert!(
            text.contains("cannot check secret against stored hash") && text.contains(&id),
            "stored hash {stored:?}: the fault is logged with the key id: {text}"
        );
        for secret in [
            token.as_str(),
            secret_of(&token),
            forged.as_str(),
            secret_of(&forged),
        ] {
            assert!(
                !text.contains(secret),
                "stored hash {stored:?}: a secret is in the logs: {text}"
            );
        }
        if stored.len() > 8 {
            assert!(
                !text.contains(stored),
                "the stored hash is in the logs: {text}"
            );
        }
    }
}

const NARROW_OK: u8 = 0;
const NARROW_FAILS: u8 = 1;
const NARROW_HANGS: u8 = 2;

/// An owner directory that answers, fails or never answers, as told.
#[derive(Clone, Default)]
struct Directory(Arc<AtomicU8>);

impl Directory {
    fn set(&self, mode: u8) {
        self.0.store(mode, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ScopeNarrower for Directory {
    async fn owner_scopes(&self, _: &KeyRecord) -> Result<ScopeSet, StoreError> {
        match self.0.load(Ordering::SeqCst) {
            NARROW_OK => Ok(ScopeSet::parse(["entities:read"]).unwrap()),
            NARROW_FAILS => Err(StoreError::Unavailable("owner directory down".into())),
            _ => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn a_scope_narrower_that_fails_is_answered_503_not_401_and_not_cached() {
    let _serial = SERIAL.lock().await;
    let (logs, _guard) = capture_logs();
    let directory = Directory::default();
    let rig = Rig::with(|b| b.scope_narrower(directory.clone()));
    let (token, id) = rig.key().await;
    directory.set(NARROW_FAILS);

    assert_store_unavailable(&send(&rig, &token).await, "narrower fails");
    assert!(matches!(
        rig.verifier.verify(&token).await,
        Err(AuthError::StoreUnavailable { .. })
    ));
    let text = logs.text();
    assert!(
        text.contains("key store read failed") && text.contains(&id),
        "the failure is logged with the key id: {text}"
    );
    assert!(
        !text.contains(secret_of(&token)),
        "the secret is in the logs: {text}"
    );

    // Not cached: once the directory answers, so does the key (no time passes).
    directory.set(NARROW_OK);
    let res = send(&rig, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let p = rig.verifier.verify(&token).await.unwrap();
    assert!(p.has_scope("entities:read"));
}

#[tokio::test]
async fn a_scope_narrower_that_never_answers_is_503_after_the_store_timeout() {
    let _serial = SERIAL.lock().await;
    let directory = Directory::default();
    let rig = Rig::with(|b| {
        b.scope_narrower(directory.clone())
            .store_timeout(Duration::from_secs(2))
    });
    let (token, _) = rig.key().await;
    directory.set(NARROW_HANGS);
    // Tokio's clock from here on: it jumps to the store timeout once everything waits.
    tokio::time::pause();
    let res = tokio::time::timeout(Duration::from_secs(60), send(&rig, &token))
        .await
        .expect("answered once the store timeout passed, not left waiting");
    assert_store_unavailable(&res, "narrower hangs");
    directory.set(NARROW_OK);
    assert_eq!(send(&rig, &token).await.status(), StatusCode::OK);
}

/// A hash that cannot be checked is the store's fault, not the client's: it never counts
/// toward the throttle, so the holder of the right secret keeps getting 503 (and the key
/// works at once when the row is repaired), never 429 `too_many_attempts`.
#[tokio::test]
async fn a_corrupt_stored_hash_never_turns_into_429_for_the_right_secret() {
    let _serial = SERIAL.lock().await;
    let rig = Rig::new();
    let (token, id) = rig.key().await;
    let good = rig.store.inner.get(&id).await.unwrap().unwrap().hash;
    corrupt_hash(&rig, &id, "not-a-phc-string").await;
    for n in 1..=25 {
        assert_store_unavailable(&send(&rig, &token).await, &format!("request {n}"));
    }
    corrupt_hash(&rig, &id, &good).await;
    rig.verifier.invalidator().invalidate(&id);
    assert_eq!(send(&rig, &token).await.status(), 200);
}
