//! The axum adapter: extractors, rejections and route-layer guards, in-process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use axum::http::{Request, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use keygate::{
    Argon2Hasher, Argon2Params, AuthError, ErrorResponse, KeyManager, MemoryStore, NewKey,
    RenderContext, Verifier,
};
use keygate_axum::{
    require_any_scope, require_scope, require_scopes, ApiKeyLayer, Principal, Scoped,
    MISSING_AXUM_LAYER,
};
use serde_json::Value;
use tower::ServiceExt;

keygate::scope! {
    pub BoardsRead = "boards:read";
    pub BoardsWrite = "boards:write";
}

struct Rig {
    verifier: Verifier,
    manager: KeyManager,
}

impl Rig {
    fn new() -> Self {
        let cheap = Argon2Hasher::with_params(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let verifier = Verifier::builder(Arc::new(MemoryStore::new()))
            .hasher(cheap)
            .build();
        let manager = KeyManager::new(verifier.store().clone()).with_verifier(&verifier);
        Rig { verifier, manager }
    }

    async fn key(&self, scopes: &[&str]) -> String {
        let created = self
            .manager
            .create(NewKey::new("k", "acme").scopes(scopes).unwrap())
            .await
            .unwrap();
        created.key.expose_secret().to_owned()
    }
}

async fn whoami(who: Principal) -> String {
    format!("{}/{}", who.org, who.name)
}

async fn maybe(who: Option<Principal>) -> String {
    who.map_or_else(|| "anonymous".to_owned(), |p| p.org.to_string())
}

async fn read_boards(who: Scoped<BoardsRead>) -> String {
    format!("{} reads boards", who.org)
}

async fn call(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    app.clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text(res: Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn json(res: Response) -> Value {
    serde_json::from_str(&text(res).await).unwrap()
}

#[tokio::test]
async fn principal_extractor_hands_the_handler_the_verified_key() {
    let rig = Rig::new();
    let key = rig.key(&[]).await;
    let app = Router::new()
        .route("/me", get(whoami))
        .layer(ApiKeyLayer::new(rig.verifier.clone()));
    let res = call(&app, "GET", "/me", &[("x-api-key", &key)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "acme/k");
}

#[tokio::test]
async fn optional_principal_is_none_for_anonymous_requests_and_some_for_keys() {
    let rig = Rig::new();
    let key = rig.key(&[]).await;
    let app = Router::new()
        .route("/", get(maybe))
        .layer(ApiKeyLayer::new(rig.verifier.clone()).optional());
    assert_eq!(text(call(&app, "GET", "/", &[]).await).await, "anonymous");
    let auth = format!("Bearer {key}");
    let res = call(&app, "GET", "/", &[("authorization", &auth)]).await;
    assert_eq!(text(res).await, "acme");
}

#[tokio::test]
async fn principal_without_the_layer_is_a_500_naming_the_missing_layer() {
    let app = Router::new().route("/me", get(whoami));
    let res = call(&app, "GET", "/me", &[("x-request-id", "r-1")]).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()["x-request-id"], "r-1");
    let v = json(res).await;
    assert_eq!(v["error"]["message"], MISSING_AXUM_LAYER);
    assert!(MISSING_AXUM_LAYER.contains("ApiKeyLayer"));
    assert_eq!(v["error"]["details"]["reason"], "misconfigured");
}

#[tokio::test]
async fn optional_principal_without_the_layer_does_not_pass_as_anonymous() {
    let app = Router::new().route("/", get(maybe));
    let res = call(&app, "GET", "/", &[]).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json(res).await["error"]["message"], MISSING_AXUM_LAYER);
}

#[tokio::test]
async fn scoped_extractor_answers_403_naming_the_missing_scope() {
    let rig = Rig::new();
    let key = rig.key(&["entities:read"]).await;
    let app = Router::new()
        .route("/boards", get(read_boards))
        .layer(ApiKeyLayer::new(rig.verifier.clone()));
    let res = call(&app, "GET", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("scope=\"boards:read\""), "{challenge}");
    let v = json(res).await;
    assert_eq!(v["error"]["details"]["reason"], "insufficient_scope");
    assert_eq!(
        v["error"]["details"]["missing"],
        serde_json::json!(["boards:read"])
    );
}

#[tokio::test]
async fn scoped_extractor_lets_a_key_holding_the_scope_through() {
    let rig = Rig::new();
    let key = rig.key(&["boards:read"]).await;
    let app = Router::new()
        .route("/boards", get(read_boards))
        .layer(ApiKeyLayer::new(rig.verifier.clone()));
    let res = call(&app, "GET", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(text(res).await, "acme reads boards");
}

#[tokio::test]
async fn scoped_extractor_behind_an_optional_layer_is_401_for_anonymous_requests() {
    let rig = Rig::new();
    let app = Router::new()
        .route("/boards", get(read_boards))
        .layer(ApiKeyLayer::new(rig.verifier.clone()).optional());
    let res = call(&app, "GET", "/boards", &[]).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(res).await["error"]["details"]["reason"],
        "missing_credentials"
    );
}

#[tokio::test]
async fn route_layer_guards_apply_per_method() {
    let rig = Rig::new();
    let key = rig.key(&["boards:read"]).await;
    let app = Router::new()
        .route(
            "/boards",
            get(|| async { "list" })
                .route_layer(require_scope::<BoardsRead>())
                .merge(
                    axum::routing::post(|| async { "created" })
                        .route_layer(require_scopes(["boards:write"])),
                ),
        )
        .route_layer(ApiKeyLayer::new(rig.verifier.clone()));
    let ok = call(&app, "GET", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let denied = call(&app, "POST", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(denied).await["error"]["details"]["missing"],
        serde_json::json!(["boards:write"])
    );
}

#[tokio::test]
async fn any_scope_guard_is_satisfied_by_one_of_its_scopes() {
    let rig = Rig::new();
    let key = rig.key(&["boards:write"]).await;
    let app = Router::new()
        .route(
            "/boards",
            get(|| async { "ok" }).route_layer(require_any_scope(["boards:read", "boards:write"])),
        )
        .route_layer(ApiKeyLayer::new(rig.verifier.clone()));
    let res = call(&app, "GET", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn extractor_rejections_use_the_renderer_configured_on_the_layer() {
    let rig = Rig::new();
    let key = rig.key(&[]).await;
    let renderer = |e: &AuthError, ctx: &RenderContext<'_>| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if let Ok(id) = HeaderValue::from_str(ctx.request_id) {
            headers.insert("x-request-id", id);
        }
        ErrorResponse {
            status: e.status(),
            headers,
            body: Bytes::from(format!("custom: {}", e.reason())),
        }
    };
    let app = Router::new()
        .route("/boards", get(read_boards))
        .layer(ApiKeyLayer::new(rig.verifier.clone()).renderer(renderer));
    let res = call(&app, "GET", "/boards", &[("x-api-key", &key)]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.headers()["content-type"], "text/plain");
    assert_eq!(text(res).await, "custom: insufficient_scope");
}

#[tokio::test]
async fn route_layer_leaves_unprotected_routes_open() {
    let rig = Rig::new();
    let app = Router::new()
        .route("/me", get(whoami))
        .route_layer(ApiKeyLayer::new(rig.verifier.clone()))
        .route("/health", get(|| async { "ok" }));
    assert_eq!(
        call(&app, "GET", "/health", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        call(&app, "GET", "/me", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
