//! The core's `ApiKeyLayer` protecting a plain hyper 1 service (no axum, no actix) over a
//! real socket: the layer is framework-agnostic.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use keygate::{
    ApiKeyLayer, Argon2Hasher, Argon2Params, KeyManager, MemoryStore, NewKey, RequireScopesLayer,
    Verifier,
};
use keygate_conformance::wire::WireApp;
use keygate_conformance::{AppUnderTest, TestRequest};
use tower::{service_fn, ServiceBuilder};

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let who = req
        .extensions()
        .get::<Arc<keygate::Principal>>()
        .map_or_else(|| "nobody".to_owned(), |p| format!("{}/{}", p.org, p.name));
    let mut res = Response::new(Full::new(Bytes::from(format!("{{\"who\":\"{who}\"}}"))));
    res.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Serves `hello` behind `ApiKeyLayer` + `RequireScopesLayer` with nothing but hyper.
async fn serve(verifier: Verifier) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = ServiceBuilder::new()
        .layer(ApiKeyLayer::new(verifier))
        .layer(RequireScopesLayer::all_of(["boards:read"]))
        .service(service_fn(hello));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

struct Rig {
    app: WireApp,
    manager: KeyManager,
}

impl Rig {
    async fn new() -> Rig {
        let hasher = Argon2Hasher::with_params(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let verifier = Verifier::builder(Arc::new(MemoryStore::new()))
            .hasher(hasher)
            .build();
        let manager = KeyManager::new(verifier.store().clone()).with_verifier(&verifier);
        let addr = serve(verifier).await;
        Rig {
            app: WireApp {
                addr: addr.to_string(),
            },
            manager,
        }
    }

    async fn key(&self, scopes: &[&str]) -> String {
        let k = NewKey::new("hyper-client", "acme").scopes(scopes).unwrap();
        self.manager
            .create(k)
            .await
            .unwrap()
            .key
            .expose_secret()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_service_gets_the_principal_from_the_core_layer() {
    let rig = Rig::new().await;
    let key = rig.key(&["boards:read"]).await;
    let res = rig
        .app
        .send(TestRequest::get("/anything").header("x-api-key", &key))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json().unwrap()["who"], "acme/hyper-client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_service_without_a_key_gets_keygates_401_envelope() {
    let rig = Rig::new().await;
    let res = rig
        .app
        .send(TestRequest::get("/").header("x-request-id", "hyper-1"))
        .await;
    assert_eq!(res.status, 401);
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"api\"")
    );
    assert_eq!(res.header("x-request-id").as_deref(), Some("hyper-1"));
    let v = res.json().unwrap();
    assert_eq!(v["error"]["details"]["reason"], "missing_credentials");
    assert_eq!(v["meta"]["requestId"], "hyper-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_hyper_service_behind_the_scope_layer_answers_403_naming_the_scope() {
    let rig = Rig::new().await;
    let key = rig.key(&["entities:read"]).await;
    let res = rig
        .app
        .send(TestRequest::get("/").header("authorization", format!("Bearer {key}")))
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.json().unwrap()["error"]["details"]["missing"],
        serde_json::json!(["boards:read"])
    );
}
