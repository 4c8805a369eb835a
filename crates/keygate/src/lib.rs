//! # keygate
//!
//! API-key authentication for Rust HTTP services: key generation in a checksummed format,
//! argon2id hashes at rest, a verifier with two caches (revocations bite within seconds while
//! argon2 runs once per key), scope guards, JSON 401/403/503 errors, a key lifecycle with an
//! audit trail, and a tower [`ApiKeyLayer`]. Adapters: `keygate-axum`, `keygate-actix`;
//! stores: `keygate-sqlx` (SQLite, PostgreSQL).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use keygate::{AuthError, KeyManager, MemoryStore, NewKey, ScopeRequirement, Verifier};
//!
//! let store = Arc::new(MemoryStore::new());
//! let verifier = Verifier::builder(store.clone()).build();
//! let manager = KeyManager::new(store).with_verifier(&verifier);
//!
//! // Shown once: only its argon2id hash is stored.
//! let created = manager
//!     .create(NewKey::new("billing-sync", "acme").owner("ana").scopes(["entities:read"])?)
//!     .await?;
//! let token = created.key.expose_secret();
//!
//! let who = verifier.authorize(token, &ScopeRequirement::all_of(["entities:read"])).await?;
//! assert_eq!((who.org.as_str(), who.owner.as_deref()), ("acme", Some("ana")));
//!
//! let denied = verifier.authorize(token, &ScopeRequirement::all_of(["boards:write"])).await;
//! assert!(matches!(denied, Err(AuthError::InsufficientScope { .. })));
//!
//! manager.revoke(&created.record.id).await?;
//! assert_eq!(verifier.verify(token).await.unwrap_err(), AuthError::RevokedKey);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[doc(hidden)]
pub mod adapter;
pub mod audit;
pub mod clock;
pub mod duration;
pub mod error;
pub mod extract;
mod flight;
pub mod gate;
pub mod hash;
mod invalidate;
pub mod keys_api;
pub mod layer;
mod limiter;
pub mod manage;
pub mod principal;
pub mod rate_limit;
pub mod record;
pub mod scope;
pub mod store;
pub mod token;
mod usage;
pub mod verify;

pub use audit::{AuditAction, AuditEvent, AuditSink, TracingAuditSink};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AuthError, ErrorRenderer, ErrorResponse, JsonRenderer, Malformed, RenderContext};
pub use gate::{AuthContext, Gate, GateCheck, PendingCheck};
pub use hash::{Argon2Hasher, Argon2Params, HashError, KeyHasher};
pub use invalidate::Invalidator;
pub use layer::{ApiKeyLayer, ApiKeyService, RequireScopesLayer, RequireScopesService};
pub use manage::{CreatedKey, KeyManager, KeyRequest, ManageError, ManagedKeys, Manager, NewKey};
pub use principal::Principal;
pub use rate_limit::RateLimit;
pub use record::{KeyRecord, KeyStatus};
pub use scope::{Requirement, Scope, ScopeError, ScopeName, ScopeRequirement, ScopeSet};
pub use store::{
    KeyFilter, KeyStore, KeyUpdate, MemoryStore, PagePosition, PageQuery, RotateOutcome, Rotation,
    StoreError, UsageCount, UsageTotals,
};
pub use token::{PlaintextKey, TokenError};
pub use usage::USAGE_RETENTION;
pub use verify::{PendingVerification, ScopeNarrower, Started, Verifier, VerifierBuilder};
