//! Wrong secrets are throttled per (key id, client address), the address coming from axum's
//! `ConnectInfo<SocketAddr>` (what `into_make_service_with_connect_info` inserts).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use keygate::{Argon2Hasher, Argon2Params, KeyManager, MemoryStore, NewKey, Verifier};
use keygate_axum::{ApiKeyLayer, Principal};
use serde_json::Value;
use tower::ServiceExt;

async fn app_and_key() -> (Router, String) {
    let cheap = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(Arc::new(MemoryStore::new()))
        .hasher(cheap)
        .failure_throttle(3, Duration::from_secs(60))
        .build();
    let manager = KeyManager::new(verifier.store().clone()).with_verifier(&verifier);
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|who: Principal| async move { who.org.to_string() }),
        )
        .route_layer(ApiKeyLayer::new(verifier));
    (app, created.key.expose_secret().to_owned())
}

/// The same id with another secret (and a valid checksum).
fn forged(token: &str, n: usize) -> String {
    let dot = token.find('.').unwrap();
    let secret: String = std::iter::repeat_n('Z', keygate::token::SECRET_LEN - 3)
        .chain(format!("{n:03}").chars())
        .collect();
    keygate::token::with_checksum(&format!("{}.{secret}", &token[..dot]))
}

async fn get_me(app: &Router, key: &str, from: &str) -> Response {
    let mut req = Request::get("/me")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    let addr: SocketAddr = from.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    app.clone().oneshot(req).await.unwrap()
}

async fn reason(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["error"]["details"]["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_throttled_client_address_gets_429_with_retry_after_while_another_address_passes() {
    let (app, key) = app_and_key().await;
    let forger = "198.51.100.66:40000";
    for n in 0..3 {
        let res = get_me(&app, &forged(&key, n), forger).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(reason(res).await, "invalid_key");
    }
    let res = get_me(&app, &forged(&key, 3), forger).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u32 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(!res.headers().contains_key("www-authenticate"));
    assert_eq!(reason(res).await, "too_many_attempts");

    // The real key from the throttled address: 429, never invalid_key.
    let res = get_me(&app, &key, forger).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // From another address (another port of the forger's host is the same client).
    let res = get_me(&app, &key, "203.0.113.7:50000").await;
    assert_eq!(res.status(), StatusCode::OK);
}
