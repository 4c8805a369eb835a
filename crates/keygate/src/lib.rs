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
mod audit;
mod clock;
mod duration;
mod error;
pub mod extract;
mod flight;
mod gate;
mod grpc;
mod hash;
mod invalidate;
#[cfg(feature = "keys-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "keys-api")))]
pub mod keys_api;
mod layer;
mod limiter;
mod manage;
mod principal;
mod rate_limit;
mod record;
mod scope;
mod store;
pub mod token;
mod usage;
mod verify;

// One path per item: the modules above that are private hold the API re-exported here; the
// public ones (`token`, `extract`, `keys_api`) are namespaces of their own.
/// The `http` crate (1.x) that keygate's types use ([`ErrorResponse::headers`], the tower
/// layer's requests and responses), re-exported so that a custom [`ErrorRenderer`] needs no
/// direct dependency on it (actix-web applications themselves are on `http` 0.2).
pub use http;

pub use audit::{AuditAction, AuditEvent, AuditSink, TracingAuditSink};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{
    envelope, request_id, AuthError, ErrorRenderer, ErrorResponse, JsonRenderer, Malformed,
    RenderContext, MAX_REQUEST_ID_LEN,
};
pub use gate::{AuthContext, Gate, GateCheck, PendingCheck};
pub use grpc::GrpcRenderer;
pub use hash::{Argon2Hasher, Argon2Params, HashError, KeyHasher};
pub use invalidate::Invalidator;
pub use layer::{
    check_scopes, socket_addr_peer, ApiKeyFuture, ApiKeyLayer, ApiKeyService, PeerAddr,
    RequireScopesFuture, RequireScopesLayer, RequireScopesService,
};
pub use manage::{
    CreatedKey, DailyUsage, KeyManager, KeyRequest, ManageError, ManagedKeys, Manager, NewKey,
    DEFAULT_PREFIX, MAX_LABEL_LEN, MAX_USAGE_DAYS,
};
pub use principal::{Label, Metadata, Principal, Text};
pub use rate_limit::{RateLimit, RateLimitError};
pub use record::{KeyRecord, KeyStatus};
pub use scope::{
    validate_scope, Requirement, Scope, ScopeError, ScopeName, ScopeRequirement, ScopeSet,
    MAX_SCOPE_LEN,
};
pub use store::{
    KeyFilter, KeyStore, KeyUpdate, MemoryStore, PagePosition, PageQuery, RotateOutcome, Rotation,
    StoreError, UsageCount, UsageTotals,
};
pub use usage::USAGE_RETENTION;
#[cfg(feature = "config")]
#[cfg_attr(docsrs, doc(cfg(feature = "config")))]
pub use verify::VerifierConfig;
pub use verify::{PendingVerification, ScopeNarrower, Started, Verifier, VerifierBuilder};
