//! # keygate-actix
//!
//! [keygate](keygate) API-key authentication for actix-web 4, in actix's own idioms:
//!
//! - [`ApiKeyAuth`]: middleware (`.wrap(...)` on an `App`, a `scope` or a `resource`) that
//!   verifies `X-Api-Key` / `Authorization: Bearer`, answers 401/503 with keygate's JSON
//!   envelope, and puts the principal in the request; [`ApiKeyAuth::optional`] lets anonymous
//!   requests through; [`ApiKeyAuth::renderer`] swaps the error renderer for everything below.
//! - [`RequireScopes`]: a per-scope/per-resource guard answering 403 `insufficient_scope`.
//! - Extractors: [`Principal`], `Option<Principal>`, and [`Scoped<S>`] for a scope declared
//!   once as a type with [`keygate::scope!`].
//! - [`AuthRejection`] implements `ResponseError` with keygate's rendering (never a 500 for
//!   an authentication failure).
//!
//! The adapter is glue: extraction, verification and error shapes are the core's.
//!
//! ```
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpResponse};
//! use keygate::{MemoryStore, Verifier};
//! use keygate_actix::{ApiKeyAuth, Principal, RequireScopes};
//!
//! keygate::scope!(pub EntitiesRead = "entities:read");
//!
//! async fn me(who: Principal) -> HttpResponse {
//!     HttpResponse::Ok().body(who.org.to_string())
//! }
//!
//! async fn entities(_: keygate_actix::Scoped<EntitiesRead>) -> HttpResponse {
//!     HttpResponse::Ok().finish()
//! }
//!
//! # #[actix_web::main] async fn main() {
//! let verifier = Verifier::builder(Arc::new(MemoryStore::new())).build();
//! let app = App::new().service(
//!     web::scope("/api")
//!         .wrap(ApiKeyAuth::new(verifier))
//!         .route("/me", web::get().to(me))
//!         .service(
//!             web::resource("/boards")
//!                 .wrap(RequireScopes::all_of(["boards:read"]))
//!                 .route(web::get().to(HttpResponse::Ok)),
//!         )
//!         .route("/entities", web::get().to(entities)),
//! );
//! let app = actix_web::test::init_service(app).await;
//! let res = actix_web::test::call_service(&app, actix_web::test::TestRequest::get().uri("/api/me").to_request()).await;
//! assert_eq!(res.status(), 401);
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod extract;
mod keys;
mod middleware;

pub use extract::{AuthRejection, Principal, Scoped};
pub use keys::keys_config;
pub use middleware::{ApiKeyAuth, ApiKeyMiddleware, RequireScopes, RequireScopesMiddleware};

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
    for (name, value) in rendered.headers {
        // A custom renderer may hand us anything: skip what is not a valid header.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            res.append_header((n, v));
        }
    }
    res.body(rendered.body)
}
