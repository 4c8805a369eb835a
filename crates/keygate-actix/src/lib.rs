#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod extract;
#[cfg(feature = "keys-api")]
mod keys;
mod middleware;

pub use extract::{AuthRejection, Principal, Scoped};
#[cfg(feature = "keys-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys-api")))]
pub use keys::keys_config;
pub use middleware::{
    ApiKeyAuth, ApiKeyMiddleware, MiddlewareFuture, RequireScopes, RequireScopesMiddleware,
};

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use keygate::ErrorResponse;

/// What a guard or extractor answers when no [`ApiKeyAuth`] ran before it.
pub const MISSING_ACTIX_MIDDLEWARE: &str =
    "keygate: no ApiKeyAuth middleware in front of this route; add `.wrap(ApiKeyAuth::new(verifier))` to the App, scope or resource";

/// Copies a rendered rejection into an actix response (actix is on `http` 0.2: the edge
/// conversion lives here and nowhere else).
pub fn into_actix_response(rendered: ErrorResponse) -> HttpResponse {
    let status = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    // The headers are typed (`http` 1.x), so each is valid; it crosses to `http` 0.2 by its
    // name and bytes, repeated names included. The conversion cannot fail for a valid header,
    // but it is fallible in the types: such a header would be skipped, never a panic.
    for (name, value) in &rendered.headers {
        if let (Ok(n), Ok(mut v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            v.set_sensitive(value.is_sensitive());
            res.append_header((n, v));
        }
    }
    res.body(rendered.body)
}
