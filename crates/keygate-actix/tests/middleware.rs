//! The actix adapter's own behaviours (the shared HTTP conformance table runs in
//! `tests/` of the workspace against both adapters).

use std::sync::Arc;

use actix_web::{test, web, App, HttpResponse};
use keygate::{
    Argon2Hasher, Argon2Params, AuthError, ErrorResponse, KeyManager, MemoryStore, NewKey,
    RenderContext, Verifier,
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
    HttpResponse::Ok().body(p.org.clone())
}

async fn maybe(p: Option<Principal>) -> HttpResponse {
    HttpResponse::Ok().body(p.map_or("anonymous".to_owned(), |p| p.org.clone()))
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
        headers: vec![("content-type", "text/plain".to_owned())],
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
