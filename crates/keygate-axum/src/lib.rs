#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod extract;
mod guard;
#[cfg(feature = "keys-api")]
mod keys;
#[cfg(feature = "axum")]
mod layer;
mod response;

pub use extract::{AuthRejection, Principal, Scoped};
pub use guard::{require_any_scope, require_scope, require_scopes};
pub use keygate::RequireScopesLayer;
#[cfg(feature = "keys-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys-api")))]
pub use keys::keys_router;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use layer::{connect_info_peer, ApiKeyLayer};
pub use response::Rendered;

/// What an extractor answers (500, `misconfigured`) when no `ApiKeyLayer` (this crate's, or
/// [`keygate::ApiKeyLayer`]) ran before it.
pub const MISSING_AXUM_LAYER: &str = "keygate: no ApiKeyLayer in front of this route; add `.route_layer(ApiKeyLayer::new(verifier))` (or `.layer(...)`) to the Router after the routes it protects";

/// The repository README's Rust examples, compiled as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExamples;
