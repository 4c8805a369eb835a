//! The Keys API and page ([`keygate::keys_api`]) as an actix-web service configuration.

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use keygate::keys_api::{ApiRequest, KeysApi, MAX_BODY_BYTES};

use crate::into_actix_response;

/// Routes the Keys API (at [`KeysApi::api_base`], default `/api/v1/keys`) and the page (at
/// [`KeysApi::page_base`], default `/keys`): `App::new().configure(keys_config(api))`. It
/// authenticates on its own (a management key, or the application's sessions), so it needs
/// no `ApiKeyAuth` in front of it.
///
/// ```
/// use std::sync::Arc;
/// use keygate::{keys_api::KeysApi, KeyManager, MemoryStore, Verifier};
///
/// let store = Arc::new(MemoryStore::new());
/// let verifier = Verifier::builder(store.clone()).build();
/// let keys = KeysApi::new(KeyManager::new(store).with_verifier(&verifier), verifier);
/// let app = actix_web::App::new().configure(keygate_actix::keys_config(keys));
/// ```
pub fn keys_config(api: KeysApi) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        for base in [api.api_base().to_owned(), api.page_base().to_owned()] {
            for path in [base.clone(), format!("{base}/{{rest:.*}}")] {
                let api = api.clone();
                cfg.route(
                    &path,
                    web::route().to(move |req: HttpRequest, body: Payload| {
                        let api = api.clone();
                        async move { serve(&api, req, body).await }
                    }),
                );
            }
        }
    }
}

async fn serve(api: &KeysApi, req: HttpRequest, body: Payload) -> HttpResponse {
    let body = body.to_bytes_limited(MAX_BODY_BYTES).await;
    let headers: Vec<(&str, &[u8])> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    let host = req.connection_info().host().to_owned();
    let request = ApiRequest::new(req.method().as_str(), req.path(), &headers)
        .query(req.query_string())
        .peer(req.peer_addr().map(|a| a.ip()))
        .authority(Some(&host));
    let request = match &body {
        Ok(Ok(bytes)) => request.body(bytes),
        _ => request.oversized_body(),
    };
    into_actix_response(api.handle(&request).await)
}
