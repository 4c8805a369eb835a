//! The Keys API and page ([`keygate::keys_api`]) as an axum [`Router`].

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use keygate::adapter::into_http_response;
use keygate::keys_api::{ApiRequest, KeysApi, MAX_BODY_BYTES};

use crate::connect_info_peer;

/// Routes the Keys API (at [`KeysApi::api_base`], default `/api/v1/keys`) and the page (at
/// [`KeysApi::page_base`], default `/keys`); merge it into the application's router. It
/// authenticates on its own (a management key, or the application's sessions), so it needs
/// no `ApiKeyLayer` in front of it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use keygate::{keys_api::KeysApi, KeyManager, MemoryStore, Verifier};
///
/// let store = Arc::new(MemoryStore::new());
/// let verifier = Verifier::builder(store.clone()).build();
/// let keys = KeysApi::new(KeyManager::new(store).with_verifier(&verifier), verifier);
/// let app: axum::Router = axum::Router::new().merge(keygate_axum::keys_router(keys));
/// # }
/// ```
pub fn keys_router<S: Clone + Send + Sync + 'static>(api: KeysApi) -> Router<S> {
    let mut router = Router::new();
    for base in [api.api_base().to_owned(), api.page_base().to_owned()] {
        for path in [base.clone(), format!("{base}/{{*rest}}")] {
            let api = api.clone();
            router = router.route(
                &path,
                any(move |req: Request| async move { serve(&api, req).await }),
            );
        }
    }
    router
}

async fn serve(api: &KeysApi, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, MAX_BODY_BYTES).await;
    let headers: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let request = ApiRequest::new(parts.method.as_str(), parts.uri.path(), &headers)
        .query(parts.uri.query().unwrap_or(""))
        .peer(connect_info_peer(&parts.extensions))
        .authority(parts.uri.authority().map(|a| a.as_str()));
    let request = match &body {
        Ok(bytes) => request.body(bytes),
        Err(_) => request.oversized_body(),
    };
    into_http_response::<Body>(api.handle(&request).await)
}
