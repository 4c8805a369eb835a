//! # demo-api
//!
//! Everything the keygate quickstarts (axum, actix) share, free of any web framework, so that
//! each quickstart is only routing and glue:
//!
//! - [`Args`]: `--database-url` (else `KEYGATE_DATABASE_URL`, else `sqlite://keygate.db`),
//!   `--addr` (default `127.0.0.1:3000`), `--revocation-ttl` (default `30s`, or
//!   `KEYGATE_REVOCATION_TTL`), and `--config FILE` (or `KEYGATE_CONFIG`): a TOML file setting
//!   any of them, below the flags and the environment, and the tables `[verifier]`
//!   (`keygate::VerifierConfig`) and `[store]` (`keygate_sqlx::StoreOptions`).
//! - [`open_verifier`] (store and verifier from [`Args`]), [`open_store`] and
//!   [`build_verifier`].
//! - [`bootstrap_demo_keys`] and [`banner`]: on an empty store, one key with every demo scope
//!   for org `demo`, printed once with ready `curl` lines, and a management key for the keys
//!   page.
//! - [`metrics_handle`]: keygate's metrics in Prometheus text for `GET /metrics`
//!   ([`METRICS_PATH`], [`METRICS_CONTENT_TYPE`]), the recorder installed once per process.
//! - [`Items`]: the in-memory items repository; every read and write is per organization, and
//!   each organization keeps at most [`MAX_ITEMS_PER_COLLECTION`] items per collection
//!   ([`CollectionFull`]: 409 `collection_full`).
//! - JSON shapes: [`Me`], [`Health`], [`Item`], [`ItemList`], [`NewItem`] and the
//!   [`BodyError`] answered (in keygate's error envelope) for a bad request body.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use demo_api::{Collection, DemoState, NewItem};
//! let store = demo_api::open_store("memory:").await.unwrap();
//! let state = DemoState::new(demo_api::build_verifier(store, std::time::Duration::from_secs(30)));
//! let new = NewItem::from_json(Some(b"application/json"), br#"{"name":"first"}"#).unwrap();
//! let item = state.items.create(Collection::Boards, "acme", "key-id", new).unwrap();
//! assert_eq!(state.items.list(Collection::Boards, "acme"), vec![item]);
//! assert!(state.items.list(Collection::Boards, "globex").is_empty());
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod body;
mod bootstrap;
mod items;
mod prometheus;
mod shape;
mod shutdown;
mod store;

use std::sync::Arc;

pub use args::{Args, DEFAULT_ADDR, DEFAULT_DATABASE_URL, DEFAULT_REVOCATION_TTL};
pub use body::{error_response, method_not_allowed, not_found, BodyError, MAX_NAME_LEN};
pub use bootstrap::{
    banner, bootstrap_demo_keys, DemoKeys, DEMO_KEY_NAME, DEMO_ORG, DEMO_SCOPES,
    MANAGEMENT_KEY_NAME,
};
pub use items::{Collection, CollectionFull, Item, Items, MAX_ITEMS_PER_COLLECTION};
pub use keygate_sqlx::redact_url;
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use prometheus::{metrics_handle, METRICS_CONTENT_TYPE, METRICS_PATH, SECONDS_BUCKETS};
pub use shape::{Health, ItemList, Me, NewItem};
pub use shutdown::shutdown_signal;
pub use store::{build_verifier, flush_on_shutdown, open_store, open_verifier};

keygate::scope! {
    /// `entities:read`
    pub EntitiesRead = "entities:read";
    /// `entities:write`
    pub EntitiesWrite = "entities:write";
    /// `knowledge:read`
    pub KnowledgeRead = "knowledge:read";
    /// `knowledge:write`
    pub KnowledgeWrite = "knowledge:write";
    /// `boards:read`
    pub BoardsRead = "boards:read";
    /// `boards:write`
    pub BoardsWrite = "boards:write";
}

/// What a demo server's handlers share: the verifier (behind the authentication layer), the
/// items repository and the Keys API.
#[derive(Clone, Debug)]
pub struct DemoState {
    /// The verifier the authentication layer/middleware uses.
    pub verifier: keygate::Verifier,
    /// The items, per organization.
    pub items: Arc<Items>,
    /// The Keys API and page over the verifier's store.
    pub keys: keygate::keys_api::KeysApi,
}

impl DemoState {
    /// A state with an empty repository; the Keys API manages the verifier's store.
    pub fn new(verifier: keygate::Verifier) -> Self {
        DemoState {
            keys: keygate::keys_api::KeysApi::for_verifier(&verifier),
            verifier,
            items: Arc::new(Items::default()),
        }
    }
}
