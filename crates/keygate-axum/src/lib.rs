//! # keygate-axum
//!
//! [keygate] API-key authentication for axum 0.8. The core's tower layer (here as
//! [`ApiKeyLayer`], which reads the client's address from axum's `ConnectInfo`) does the work (extraction, verification, caching, rendering); this crate
//! adds what makes it feel native in axum:
//!
//! - [`Principal`]: extractor for the verified key's principal, and `Option<Principal>` for
//!   routes behind [`ApiKeyLayer::optional`].
//! - [`Scoped<S>`]: the principal, proven to hold a scope declared once as a type with
//!   [`keygate::scope!`] — a 403 `insufficient_scope` otherwise.
//! - [`require_scopes`], [`require_any_scope`], [`require_scope`]: per-route guards for
//!   `.route_layer(...)`.
//! - [`AuthRejection`]: the extractors' rejection, an [`IntoResponse`](axum::response::IntoResponse) that answers with the
//!   renderer configured on the layer (JSON envelope, `WWW-Authenticate`, `x-request-id`).
//! - [`ApiKeyLayer`]: keygate's tower layer, reading the client's address from axum's
//!   `ConnectInfo` (serve with `into_make_service_with_connect_info::<SocketAddr>()`) so wrong
//!   secrets are throttled per key id and client address.
//! - [`Rendered`]: any rendered [`keygate::ErrorResponse`] (e.g. an application's 400 in
//!   keygate's envelope) as a response.
//!
//! An extractor or guard used on a route with no [`ApiKeyLayer`] in front of it does not
//! fail obscurely: it answers 500 with a message naming the missing layer
//! ([`MISSING_AXUM_LAYER`]).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use keygate::{MemoryStore, Verifier};
//! use keygate_axum::{require_scopes, ApiKeyLayer, Principal, Scoped};
//!
//! keygate::scope!(pub EntitiesWrite = "entities:write");
//!
//! async fn me(who: Principal) -> String {
//!     format!("{} acting for org {}", who.name, who.org)
//! }
//!
//! async fn create(who: Scoped<EntitiesWrite>) -> String {
//!     format!("{} may write entities", who.name)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let verifier = Verifier::builder(Arc::new(MemoryStore::new())).build();
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/entities", get(|| async { "[]" }).route_layer(require_scopes(["entities:read"])))
//!     .route("/entities/new", get(create))
//!     .route_layer(ApiKeyLayer::new(verifier))
//!     .route("/health", get(|| async { "ok" }));
//!
//! use tower::ServiceExt;
//! let res = app
//!     .oneshot(axum::http::Request::get("/me").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
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
mod guard;
mod keys;
mod layer;
mod response;

pub use extract::{AuthRejection, Principal, Scoped};
pub use guard::{require_any_scope, require_scope, require_scopes};
pub use keygate::RequireScopesLayer;
pub use keys::keys_router;
pub use layer::{connect_info_peer, ApiKeyLayer};
pub use response::Rendered;

/// What an extractor answers (500, `misconfigured`) when no [`ApiKeyLayer`] ran before it.
pub const MISSING_AXUM_LAYER: &str = "keygate: no ApiKeyLayer in front of this route; add `.route_layer(ApiKeyLayer::new(verifier))` (or `.layer(...)`) to the Router after the routes it protects";

/// The repository README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
