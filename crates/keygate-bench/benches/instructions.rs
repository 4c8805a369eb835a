//! Instruction counts of keygate's hot paths under valgrind (callgrind), with gungraun:
//! deterministic where wall-clock benchmarks are noisy, so a change of a few instructions shows.
//!
//! - `parse`: `keygate::token::parse` of a well-formed key;
//! - `verify_cached`: `Verifier::verify_cached` of a valid key whose record and verdict are
//!   cached (the synchronous fast path the layers take first);
//! - `layer_cached`: one request through `ApiKeyLayer` around a trivial service, valid cached
//!   key, polled to completion;
//! - `reject_garbage`: `Verifier::verify` of a 200-byte garbage token (malformed, no store or
//!   hash work);
//! - `layer_reject_garbage`: the same token through `ApiKeyLayer`, answered 401 with the JSON
//!   envelope (what each request of the harness's garbage flood costs);
//! - `layer_reject_throttled`: a fresh forged secret for the cached key's id through
//!   `ApiKeyLayer`, from a client whose failures are throttled: answered 429 with no argon2
//!   run (each request of the harness's forged-secret flood once its first failures are in).
//!
//! Each setup (not measured) stores one fixed key (the same in every run, so that
//! data-dependent branches take the same turns) in a `MemoryStore`, hashed with a cheap
//! argon2id (m=8 KiB, t=1, p=1: only the cold path, not measured here, depends on it); warms
//! the caches with one `verify` on a throwaway current-thread tokio runtime; runs the caches'
//! pending maintenance, so that the measured call does not; and ends with a few calls of the
//! measured path (first-call costs paid, allocator cache primed). The verifier is built outside
//! any runtime, so it spawns no background flusher; the measured futures complete on their
//! first poll (a no-op waker, no executor); fixtures are leaked, so no teardown is measured.
//! Two runs give the same counts.
//!
//! Needs valgrind and the runner of the same version as the `gungraun` dev-dependency:
//!
//! ```sh
//! cargo install gungraun-runner --version 0.20.0 --locked
//! cargo bench -p keygate-bench --bench instructions
//! ```
//!
//! `cargo test` does not run this target (`test = false` in Cargo.toml).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use gungraun::{library_benchmark, library_benchmark_group, main};
use keygate::{
    token, ApiKeyLayer, ApiKeyService, Argon2Hasher, Argon2Params, KeyHasher, KeyRecord, KeyStore,
    MemoryStore, ScopeSet, Verifier,
};
use tower::util::ServiceFn;

/// Polls `fut` once: every measured path answers without waiting, so `Pending` means the
/// benchmark is not measuring what it claims (a cache miss) and stops it.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the measured future did not complete on its first poll"),
    }
}

/// A verifier over a `MemoryStore` holding one valid key, and that key.
#[derive(Debug)]
struct Fixture {
    verifier: Verifier,
    token: String,
}

/// The benchmarks' key: fixed, so that data-dependent branches (character classes, checksum
/// digits) take the same turns in every run.
fn fixed_token() -> String {
    token::with_checksum(&format!(
        "mk_live_0123456789abcdef.{}",
        "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcD"
    ))
}

/// Stores the key and verifies it once (record and verdict cached). The verifier is built
/// outside the runtime: no background flusher.
fn fixture() -> Fixture {
    let cheap = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    })
    .expect("argon2 parameters");
    let token = fixed_token();
    let parsed = token::parse(&token).expect("well-formed key");
    let record = KeyRecord {
        id: parsed.id().to_owned(),
        prefix: parsed.prefix().to_owned(),
        name: "bench".into(),
        org: "acme".into(),
        team: None,
        owner: None,
        scopes: ScopeSet::parse(["entities:read"]).expect("scopes"),
        metadata: serde_json::Value::Null,
        hash: cheap.hash(token.as_bytes()).expect("hash"),
        created_at: chrono::Utc::now(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        rotated_from: None,
        rotated_to: None,
        rate_limit: None,
    };
    let store = Arc::new(MemoryStore::new());
    let verifier = Verifier::builder(store.clone()).hasher(cheap).build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        store.insert(&record, &[]).await.expect("insert key");
        verifier.verify(&token).await.expect("valid key");
    });
    drop(rt);
    Fixture { verifier, token }
}

/// Warm-up calls of the measured path, the last thing each setup does: first-call costs
/// (tracing callsite registration, lazy statics) are paid, and the allocator's per-thread cache
/// holds the chunks the measured call allocates, whatever the setup's threads left behind.
const WARM_UP: usize = 3;

fn setup_parse() -> &'static str {
    let token: &'static str = fixed_token().leak();
    assert!(token::parse(token).is_ok());
    token
}

fn setup_verify_cached() -> &'static Fixture {
    let f = Box::leak(Box::new(fixture()));
    for _ in 0..WARM_UP {
        assert!(matches!(f.verifier.verify_cached(&f.token), Some(Ok(_))));
    }
    f
}

type Answer = std::future::Ready<Result<http::Response<bytes::Bytes>, Infallible>>;
type Guarded = ApiKeyService<ServiceFn<fn(http::Request<()>) -> Answer>>;

/// The trivial service behind the layer.
fn ok(_req: http::Request<()>) -> Answer {
    std::future::ready(Ok(http::Response::new(bytes::Bytes::new())))
}

/// The request of criterion's `layer_cached` (crates/keygate/benches/verify.rs).
fn request(token: &str) -> http::Request<()> {
    http::Request::builder()
        .uri("/")
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "gungraun")
        .header("accept", "*/*")
        .body(())
        .expect("request")
}

fn call(svc: Guarded, req: http::Request<()>) -> bool {
    let res = ready(tower::ServiceExt::oneshot(svc, req)).expect("infallible");
    res.status().is_success()
}

/// The guarded service, leaked like the fixture, and a request with the cached key. The
/// measured call clones the service and drops its clone, as criterion's `layer_cached` does
/// per request: no teardown of the layer or the verifier is measured.
fn setup_layer_cached() -> (&'static Guarded, http::Request<()>) {
    let f: &'static Fixture = Box::leak(Box::new(fixture()));
    let guarded: &'static Guarded = Box::leak(Box::new(
        tower::ServiceBuilder::new()
            .layer(ApiKeyLayer::new(f.verifier.clone()))
            .service(tower::service_fn(ok as fn(_) -> _)),
    ));
    let measured = request(&f.token);
    for _ in 0..WARM_UP {
        assert!(call(guarded.clone(), request(&f.token)));
    }
    (guarded, measured)
}

/// A well-formed key for the fixture's id with the `n`-th forged secret (right checksum,
/// wrong secret).
fn forged_token(n: usize) -> String {
    let secret: String = format!("{n:040}")
        .bytes()
        .map(|b| char::from(b'A' + (b - b'0')))
        .collect();
    token::with_checksum(&format!("mk_live_0123456789abcdef.{secret}"))
}

/// The guarded service over a fresh fixture, leaked.
fn guarded_service() -> &'static Guarded {
    let f: &'static Fixture = Box::leak(Box::new(fixture()));
    Box::leak(Box::new(
        tower::ServiceBuilder::new()
            .layer(ApiKeyLayer::new(f.verifier.clone()))
            .service(tower::service_fn(ok as fn(_) -> _)),
    ))
}

/// The status `guarded` answers `req` with.
fn status(guarded: &Guarded, req: http::Request<()>) -> u16 {
    ready(tower::ServiceExt::oneshot(guarded.clone(), req))
        .expect("infallible")
        .status()
        .as_u16()
}

fn setup_layer_reject_garbage() -> (&'static Guarded, http::Request<()>) {
    let guarded = guarded_service();
    let garbage = "x".repeat(200);
    for _ in 0..WARM_UP {
        assert_eq!(status(guarded, request(&garbage)), 401);
    }
    (guarded, request(&garbage))
}

/// Forged secrets for the cached key's id until the throttle answers 429 (the failures before
/// it run the cheap argon2 on this thread's runtime), then warm-up calls of the throttled path.
fn setup_layer_reject_throttled() -> (&'static Guarded, http::Request<()>) {
    let guarded = guarded_service();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut n = 0;
    let throttled = rt.block_on(async {
        for _ in 0..100 {
            n += 1;
            let res = tower::ServiceExt::oneshot(guarded.clone(), request(&forged_token(n)))
                .await
                .expect("infallible");
            if res.status() == 429 {
                return true;
            }
        }
        false
    });
    assert!(throttled, "100 forged secrets were never throttled");
    drop(rt);
    for _ in 0..WARM_UP {
        n += 1;
        assert_eq!(status(guarded, request(&forged_token(n))), 429);
    }
    (guarded, request(&forged_token(n + 1)))
}

fn setup_reject_garbage() -> (&'static Verifier, &'static str) {
    let f: &'static Fixture = Box::leak(Box::new(fixture()));
    let garbage: &'static str = "x".repeat(200).leak();
    for _ in 0..WARM_UP {
        assert!(ready(f.verifier.verify(garbage)).is_err());
    }
    (&f.verifier, garbage)
}

#[library_benchmark]
#[bench::well_formed(setup = setup_parse)]
fn parse(token: &'static str) -> bool {
    token::parse(black_box(token)).is_ok()
}

#[library_benchmark]
#[bench::valid_key(setup = setup_verify_cached)]
fn verify_cached(f: &'static Fixture) -> bool {
    f.verifier
        .verify_cached(black_box(&f.token))
        .is_some_and(|r| r.is_ok())
}

#[library_benchmark]
#[bench::valid_key(setup = setup_layer_cached)]
fn layer_cached((guarded, req): (&'static Guarded, http::Request<()>)) -> bool {
    call(black_box(guarded).clone(), black_box(req))
}

#[library_benchmark]
#[bench::x200(setup = setup_reject_garbage)]
fn reject_garbage((verifier, garbage): (&'static Verifier, &'static str)) -> bool {
    ready(verifier.verify(black_box(garbage))).is_err()
}

#[library_benchmark]
#[bench::x200(setup = setup_layer_reject_garbage)]
fn layer_reject_garbage((guarded, req): (&'static Guarded, http::Request<()>)) -> u16 {
    status(black_box(guarded), black_box(req))
}

#[library_benchmark]
#[bench::forged_secret(setup = setup_layer_reject_throttled)]
fn layer_reject_throttled((guarded, req): (&'static Guarded, http::Request<()>)) -> u16 {
    status(black_box(guarded), black_box(req))
}

library_benchmark_group!(
    name = hot_paths;
    benchmarks = parse, verify_cached, layer_cached, reject_garbage, layer_reject_garbage,
        layer_reject_throttled
);

main!(library_benchmark_groups = hot_paths);
