//! A key's own rate limit (GCRA, per node): enforced after the secret and the status, before
//! scopes, on the synchronous fast path and the async path alike; answered 429
//! `rate_limited` with `Retry-After`, `RateLimit-Policy` and `RateLimit`; kept across record
//! refreshes; changed at once by an update through a connected manager.
//!
//! Every test runs on the manual clock: no sleeps.

mod support;

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use keygate::{ApiKeyLayer, AuthError, KeyUpdate, NewKey, RateLimit};
use support::Rig;
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

fn limit(s: &str) -> RateLimit {
    s.parse().unwrap()
}

fn new_key(name: &str, limit_: Option<&str>) -> NewKey {
    let k = NewKey::new(name, "acme").scopes(["entities:read"]).unwrap();
    match limit_ {
        Some(l) => k.rate_limit(limit(l)),
        None => k,
    }
}

/// Verifies `token` `n` times; returns how many were let through before the first refusal
/// (and checks every refusal is `rate_limited`).
async fn accepted(rig: &Rig, token: &str, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        match rig.verifier.verify(token).await {
            Ok(_) => ok += 1,
            Err(AuthError::RateLimited { .. }) => {}
            Err(e) => panic!("unexpected refusal: {e:?}"),
        }
    }
    ok
}

async fn ok(_req: Request<()>) -> Result<Response<Bytes>, Infallible> {
    Ok(Response::new(Bytes::from_static(b"ok")))
}

fn get(token: &str) -> Request<()> {
    Request::builder()
        .uri("/")
        .header("x-api-key", token)
        .body(())
        .unwrap()
}

#[tokio::test]
async fn a_limit_of_5_per_second_lets_exactly_5_through_answers_429_with_the_headers_and_one_more_after_200_ms(
) {
    let rig = Rig::new();
    let (token, _) = rig.key_with(new_key("limited", Some("5/1s"))).await;
    let mut svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(ok));
    for i in 0..5 {
        let res = svc.ready().await.unwrap().call(get(&token)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "request {i}");
    }
    let res = svc.ready().await.unwrap().call(get(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let h = res.headers();
    assert_eq!(h["retry-after"], "1");
    assert_eq!(h["ratelimit-policy"], "\"key\";q=5;w=1");
    assert_eq!(h["ratelimit"], "\"key\";r=0;t=1");
    let body: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(body["error"]["details"]["reason"], "rate_limited");

    rig.clock.advance(Duration::from_millis(200));
    let res = svc.ready().await.unwrap().call(get(&token)).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "one cell came back after 200 ms"
    );
    let res = svc.ready().await.unwrap().call(get(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "and only one");
}

#[tokio::test]
async fn the_cached_fast_path_enforces_the_limit_too() {
    let rig = Rig::new();
    let (token, _) = rig.key_with(new_key("limited", Some("3/1m"))).await;
    rig.verifier.verify(&token).await.unwrap();
    for _ in 0..2 {
        let answer = rig
            .verifier
            .verify_cached(&token)
            .expect("both caches are warm");
        answer.unwrap();
    }
    let answer = rig
        .verifier
        .verify_cached(&token)
        .expect("both caches are warm");
    assert_eq!(
        answer.unwrap_err(),
        AuthError::RateLimited {
            limit: limit("3/1m"),
            retry_after_secs: 20,
        }
    );
}

#[tokio::test]
async fn a_record_refresh_does_not_reset_the_bucket() {
    let rig = Rig::new();
    let (token, _) = rig.key_with(new_key("limited", Some("10/1h"))).await;
    assert_eq!(accepted(&rig, &token, 10).await, 10);
    let reads = rig.store.gets.load(Ordering::SeqCst);
    // Past the 30 s revocation window: the record is read from the store again.
    rig.clock.advance(Duration::from_secs(31));
    assert!(matches!(
        rig.verifier.verify(&token).await,
        Err(AuthError::RateLimited { .. })
    ));
    assert!(
        rig.store.gets.load(Ordering::SeqCst) > reads,
        "the record was refreshed"
    );
    // Refreshed twice more: still spent (one cell comes back every 6 minutes).
    rig.clock.advance(Duration::from_secs(31));
    assert_eq!(accepted(&rig, &token, 3).await, 0);
}

#[tokio::test]
async fn changing_the_limit_through_the_manager_applies_on_the_next_request() {
    let rig = Rig::new();
    let (token, id) = rig.key_with(new_key("limited", Some("2/1h"))).await;
    assert_eq!(accepted(&rig, &token, 3).await, 2);
    let raise = KeyUpdate {
        rate_limit: Some(Some(limit("5/1h"))),
        ..KeyUpdate::default()
    };
    rig.manager.update(&id, &raise).await.unwrap();
    assert_eq!(
        accepted(&rig, &token, 6).await,
        5,
        "a new limit starts a new, full bucket"
    );
    match rig.verifier.verify(&token).await {
        Err(AuthError::RateLimited { limit: l, .. }) => assert_eq!(l, limit("5/1h")),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    let remove = KeyUpdate {
        rate_limit: Some(None),
        ..KeyUpdate::default()
    };
    rig.manager.update(&id, &remove).await.unwrap();
    assert_eq!(accepted(&rig, &token, 50).await, 50, "no limit, no refusal");
}

#[tokio::test]
async fn a_key_without_a_limit_is_never_limited() {
    let rig = Rig::new();
    let (token, _) = rig.key_with(new_key("unlimited", None)).await;
    assert_eq!(accepted(&rig, &token, 1_000).await, 1_000);
}

#[tokio::test]
async fn two_keys_limits_are_independent() {
    let rig = Rig::new();
    let (a, _) = rig.key_with(new_key("a", Some("2/1m"))).await;
    let (b, _) = rig.key_with(new_key("b", Some("2/1m"))).await;
    assert_eq!(accepted(&rig, &a, 5).await, 2);
    assert_eq!(
        accepted(&rig, &b, 5).await,
        2,
        "a spending its limit left b's alone"
    );
}

#[tokio::test]
async fn the_limit_is_checked_after_the_status_so_a_revoked_key_spends_nothing() {
    let rig = Rig::new();
    let (token, id) = rig.key_with(new_key("limited", Some("1/1h"))).await;
    rig.manager.revoke(&id).await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            rig.verifier.verify(&token).await.unwrap_err(),
            AuthError::RevokedKey
        );
    }
}

#[tokio::test]
async fn a_request_refused_for_its_scopes_still_spends_a_request_of_the_limit() {
    let rig = Rig::new();
    let (token, _) = rig.key_with(new_key("limited", Some("1/1h"))).await;
    let write = keygate::ScopeRequirement::all_of(["entities:write"]);
    assert!(matches!(
        rig.verifier.authorize(&token, &write).await,
        Err(AuthError::InsufficientScope { .. })
    ));
    let read = keygate::ScopeRequirement::all_of(["entities:read"]);
    assert!(matches!(
        rig.verifier.authorize(&token, &read).await,
        Err(AuthError::RateLimited { .. })
    ));
}
