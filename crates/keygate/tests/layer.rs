//! The tower layers over `http` 1.x, without any web framework.

mod support;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LINK};
use http::{Request, Response, StatusCode};
use keygate::{
    ApiKeyLayer, AuthError, ErrorResponse, Principal, RenderContext, RequireScopesLayer,
    ScopeRequirement,
};
use support::Rig;
use tower::{service_fn, ServiceBuilder, ServiceExt};

async fn echo_org(req: Request<()>) -> Result<Response<Bytes>, Infallible> {
    let org = req
        .extensions()
        .get::<Arc<Principal>>()
        .map_or("anonymous".to_owned(), |p| p.org.to_string());
    Ok(Response::new(Bytes::from(org)))
}

fn get(headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().uri("/");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn json(res: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(res.body()).unwrap()
}

#[tokio::test]
async fn valid_key_reaches_the_service_with_its_principal() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(echo_org));
    let res = svc.oneshot(get(&[("x-api-key", &token)])).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.body(), "acme");
}

#[tokio::test]
async fn missing_key_is_401_and_the_request_id_is_echoed() {
    let rig = Rig::new();
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(echo_org));
    let res = svc
        .oneshot(get(&[("x-request-id", "abc-42")]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-request-id"], "abc-42");
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(json(&res)["meta"]["requestId"], "abc-42");
}

#[tokio::test]
async fn scope_layer_answers_403_with_the_missing_scope() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .layer(RequireScopesLayer::all_of(["entities:write"]))
        .service(service_fn(echo_org));
    let res = svc
        .oneshot(get(&[("authorization", &format!("Bearer {token}"))]))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&res)["error"]["details"]["missing"],
        serde_json::json!(["entities:write"])
    );
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
}

#[tokio::test]
async fn scope_layer_without_the_auth_layer_names_the_missing_layer() {
    let svc = ServiceBuilder::new()
        .layer(RequireScopesLayer::all_of(["entities:read"]))
        .service(service_fn(echo_org));
    let res = svc.oneshot(get(&[])).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(json(&res)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ApiKeyLayer"));
}

#[tokio::test]
async fn optional_layer_lets_anonymous_requests_through_but_not_bad_keys() {
    let rig = Rig::new();
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()).optional())
        .service(service_fn(echo_org));
    let res = svc.clone().oneshot(get(&[])).await.unwrap();
    assert_eq!(res.body(), "anonymous");
    let res = svc.oneshot(get(&[("x-api-key", "nope")])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&res)["error"]["details"]["reason"], "malformed_key");
}

#[tokio::test]
async fn an_optional_layer_with_a_requirement_answers_anonymous_requests_401() {
    let rig = Rig::new();
    let svc = ServiceBuilder::new()
        .layer(
            ApiKeyLayer::new(rig.verifier.clone())
                .optional()
                .require(ScopeRequirement::all_of(["entities:read"])),
        )
        .service(service_fn(echo_org));
    let res = svc.clone().oneshot(get(&[])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json(&res)["error"]["details"]["reason"],
        "missing_credentials"
    );
    let (token, _) = rig.key().await;
    let res = svc.oneshot(get(&[("x-api-key", &token)])).await.unwrap();
    assert_eq!(res.body(), "acme");
}

#[tokio::test]
async fn a_custom_renderers_headers_reach_the_response_intact() {
    let rig = Rig::new();
    let renderer = |e: &AuthError, _: &RenderContext<'_>| {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append(LINK, HeaderValue::from_static("</docs/auth>; rel=\"help\""));
        headers.append(LINK, HeaderValue::from_static("</keys>; rel=\"related\""));
        headers.insert("x-denied-by", HeaderValue::from_static("custom"));
        ErrorResponse {
            status: e.status(),
            headers,
            body: Bytes::from_static(b"denied"),
        }
    };
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()).renderer(renderer))
        .service(service_fn(echo_org));
    let res = svc.oneshot(get(&[])).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/plain");
    assert_eq!(res.headers()["x-denied-by"], "custom");
    let links: Vec<_> = res.headers().get_all(LINK).iter().collect();
    assert_eq!(
        links,
        ["</docs/auth>; rel=\"help\"", "</keys>; rel=\"related\""]
    );
    assert_eq!(res.headers().len(), 4, "{:?}", res.headers());
    assert_eq!(res.body(), "denied");
}

#[tokio::test]
async fn a_store_outage_is_503_with_retry_after() {
    let rig = Rig::new();
    let (token, _) = rig.key().await;
    rig.store
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(rig.verifier.clone()))
        .service(service_fn(echo_org));
    let res = svc.oneshot(get(&[("x-api-key", &token)])).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(
        json(&res)["error"]["details"]["reason"],
        "store_unavailable"
    );
}
