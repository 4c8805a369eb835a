//! The actix adapter's own behaviours (the shared HTTP conformance table runs in
//! `tests/` of the workspace against both adapters).

use std::sync::Arc;

use actix_web::{test, web, App, HttpResponse};
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use keygate::{
    Argon2Hasher, Argon2Params, AuthError, ErrorResponse, KeyManager, MemoryStore, NewKey,
    RenderContext, ScopeRequirement, Verifier,
};
use keygate_actix::{ApiKeyAuth, Principal, RequireScopes, Scoped};
use serde_json::Value;

keygate::scope!(pub BoardsWrite = "boards:write");

async fn setup() -> (Verifier, String) {
    let store = Arc::new(MemoryStore::new());
    let hasher = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(store.clone()).hasher(hasher).build();
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let created = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap();
    (verifier, created.key.expose_secret().to_owned())
}

async fn me(p: Principal) -> HttpResponse {
    HttpResponse::Ok().body(p.org.to_string())
}

async fn maybe(p: Option<Principal>) -> HttpResponse {
    HttpResponse::Ok().body(p.map_or("anonymous".to_owned(), |p| p.org.to_string()))
}

async fn boards(_: Scoped<BoardsWrite>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn body_json<B: actix_web::body::MessageBody>(
    res: actix_web::dev::ServiceResponse<B>,
) -> Value {
    serde_json::from_slice(&test::read_body(res).await).unwrap()
}

#[actix_web::test]
async fn valid_key_reaches_the_handler_with_its_principal() {
    let (verifier, key) = setup().await;
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier))
            .route("/me", web::get().to(me)),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/me")
        .insert_header(("x-api-key", key))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, "acme");
}

#[actix_web::test]
async fn missing_key_is_401_with_the_envelope_not_500() {
    let (verifier, _) = setup().await;
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier))
            .route("/me", web::get().to(me)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers().get("www-authenticate").unwrap(),
        "Bearer realm=\"api\""
    );
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    let v = body_json(res).await;
    assert_eq!(v["error"]["details"]["reason"], "missing_credentials");
}

#[actix_web::test]
async fn resource_scope_guard_answers_403_naming_the_missing_scope() {
    let (verifier, key) = setup().await;
    let app = test::init_service(
        App::new().wrap(ApiKeyAuth::new(verifier)).service(
            web::resource("/entities")
                .wrap(RequireScopes::all_of(["entities:read", "entities:write"]))
                .route(web::get().to(HttpResponse::Ok)),
        ),
    )
    .await;
    let req = test::TestRequest::get()
        .uri("/entities")
        .insert_header(("authorization", format!("Bearer {key}")))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 403);
    let v = body_json(res).await;
    assert_eq!(
        v["error"]["details"]["missing"],
        serde_json::json!(["entities:write"])
    );
}

#[actix_web::test]
async fn typed_scope_extractor_answers_403_without_the_scope() {
    let (verifier, key) = setup().await;
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier))
            .route("/boards", web::post().to(boards)),
    )
    .await;
    let req = test::TestRequest::post()
        .uri("/boards")
        .insert_header(("x-api-key", key))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        body_json(res).await["error"]["details"]["required"],
        serde_json::json!(["boards:write"])
    );
}

#[actix_web::test]
async fn optional_auth_lets_anonymous_through_but_still_rejects_bad_keys() {
    let (verifier, key) = setup().await;
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier).optional())
            .route("/", web::get().to(maybe)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(test::read_body(res).await, "anonymous");
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("x-api-key", key))
        .to_request();
    assert_eq!(
        test::read_body(test::call_service(&app, req).await).await,
        "acme"
    );
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("x-api-key", "junk"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 401);
}

#[actix_web::test]
async fn optional_auth_with_a_requirement_answers_anonymous_requests_401() {
    let (verifier, key) = setup().await;
    let app = test::init_service(
        App::new()
            .wrap(
                ApiKeyAuth::new(verifier)
                    .optional()
                    .require(ScopeRequirement::all_of(["entities:read"])),
            )
            .route("/", web::get().to(maybe)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        body_json(res).await["error"]["details"]["reason"],
        "missing_credentials"
    );
    let req = test::TestRequest::get()
        .uri("/")
        .insert_header(("x-api-key", key))
        .to_request();
    assert_eq!(
        test::read_body(test::call_service(&app, req).await).await,
        "acme"
    );
}

#[actix_web::test]
async fn an_extractor_without_the_middleware_names_it() {
    let app = test::init_service(App::new().route("/me", web::get().to(me))).await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(res.status(), 500);
    let v = body_json(res).await;
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ApiKeyAuth"));
}

#[actix_web::test]
async fn a_custom_renderer_shapes_middleware_and_guard_errors() {
    let (verifier, key) = setup().await;
    let renderer = |e: &AuthError, _: &RenderContext<'_>| ErrorResponse {
        status: e.status(),
        headers: HeaderMap::from_iter([(CONTENT_TYPE, HeaderValue::from_static("text/plain"))]),
        body: format!("nope: {}", e.reason()).into(),
    };
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier).renderer(renderer))
            .route("/boards", web::post().to(boards)),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::post().uri("/boards").to_request()).await;
    assert_eq!(test::read_body(res).await, "nope: missing_credentials");
    let req = test::TestRequest::post()
        .uri("/boards")
        .insert_header(("x-api-key", key))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 403);
    assert_eq!(test::read_body(res).await, "nope: insufficient_scope");
}

/// The same id with another secret (and a valid checksum).
fn forged(token: &str, n: usize) -> String {
    let dot = token.find('.').unwrap();
    let secret: String = std::iter::repeat_n('Z', keygate::token::SECRET_LEN - 3)
        .chain(format!("{n:03}").chars())
        .collect();
    keygate::token::with_checksum(&format!("{}.{secret}", &token[..dot]))
}

#[actix_web::test]
async fn a_throttled_peer_address_gets_429_with_retry_after_while_another_address_passes() {
    let store = Arc::new(MemoryStore::new());
    let hasher = Argon2Hasher::with_params(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    })
    .unwrap();
    let verifier = Verifier::builder(store.clone())
        .hasher(hasher)
        .failure_throttle(3, std::time::Duration::from_secs(60))
        .build();
    let manager = KeyManager::new(store).with_verifier(&verifier);
    let key = manager
        .create(NewKey::new("k", "acme").scopes(["entities:read"]).unwrap())
        .await
        .unwrap()
        .key
        .expose_secret()
        .to_owned();
    let app = test::init_service(
        App::new()
            .wrap(ApiKeyAuth::new(verifier))
            .route("/me", web::get().to(me)),
    )
    .await;
    let get_me = |key: &str, from: &str| {
        test::TestRequest::get()
            .uri("/me")
            .insert_header(("x-api-key", key.to_owned()))
            .peer_addr(from.parse().unwrap())
            .to_request()
    };
    let forger = "198.51.100.66:40000";
    for n in 0..3 {
        let res = test::call_service(&app, get_me(&forged(&key, n), forger)).await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            body_json(res).await["error"]["details"]["reason"],
            "invalid_key"
        );
    }
    let res = test::call_service(&app, get_me(&forged(&key, 3), forger)).await;
    assert_eq!(res.status(), 429);
    let retry: u32 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(!res.headers().contains_key("www-authenticate"));
    let body = body_json(res).await;
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS");
    assert_eq!(body["error"]["details"]["reason"], "too_many_attempts");

    // The real key from the throttled address: 429, never invalid_key.
    let res = test::call_service(&app, get_me(&key, forger)).await;
    assert_eq!(res.status(), 429);
    let res = test::call_service(&app, get_me(&key, "203.0.113.7:50000")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, "acme");
}
