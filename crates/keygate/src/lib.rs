#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
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
mod grpc;
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
pub use grpc::GrpcRenderer;
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
