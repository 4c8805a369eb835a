//! keygate soak: a bounded load against an in-process server, judged answer by answer.
//! The `keygate-soak` binary drives it; the modules are a library so the oracle can be tested.
//!
//! ```text
//! cargo run --release -p keygate-soak -- --duration 5m
//! cargo run --release -p keygate-soak -- --duration 20s            # smoke run
//! cargo run --release -p keygate-soak -- --database-url sqlite://soak.db
//! ```
//!
//! An axum server on 127.0.0.1 authenticates with keygate's `ApiKeyLayer` (short revocation
//! window, 2 s by default). Client tasks present genuine keys (active, expiring, expired,
//! revoked), forged secrets for real ids, unknown ids, malformed keys and no key, through
//! `X-Api-Key` and `Authorization: Bearer`, while a churn task creates keys, revokes them
//! (through the verifier's own manager and through one the verifier does not know, like
//! another process) and deletes long-dead ones. Every answer is judged by the [`oracle`];
//! resident memory is sampled every 10 s. The process exits non-zero on any wrong answer,
//! transport error or failed lifecycle call.

#![deny(missing_docs)]

pub mod churn;
pub mod client;
pub mod memory;
pub mod oracle;
pub mod pool;
pub mod rng;
pub mod server;
