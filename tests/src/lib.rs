//! # keygate-conformance
//!
//! One table of HTTP cases ([`table`]) that every keygate adapter's demo API must pass, run
//! through a small driver trait ([`AppUnderTest`]) with framework-free requests and
//! responses, so the axum and actix quickstarts answer exactly alike.
//!
//! To run the table against an application:
//!
//! 1. Build a [`Fixture`] (`Fixture::new().await`): a verifier over an in-memory store that
//!    fails on demand, the keys the cases use (valid, read-only, other org, expired,
//!    revoked, …) and the items seeded per organization.
//! 2. Build the app from `fixture.state` (a [`demo_api::DemoState`]), e.g.
//!    `axum_quickstart::app(fixture.state.clone())`.
//! 3. Drive it with an [`AppUnderTest`]: [`drivers::AxumApp`] and [`drivers::ActixApp`]
//!    exist; another adapter needs a few lines (copy method, path, headers and body into the
//!    framework's test request; copy status, headers and body back).
//! 4. `assert_conformance(&app, &fixture).await` runs every case, in order, and panics with
//!    the list of every failed case and why.
//! 5. `assert_parity(&a, &b, &fixture).await` runs every case through two apps, each case
//!    sent first to one app and then the other in turn, and panics listing every case they
//!    answer differently ([`parity`]). Build both apps over `fixture.state`, or each over its
//!    own `fixture.fresh_state().await` to compare the answers of apps meeting every key cold.
//!
//! The table ([`table`]) is the base cases followed by the [`hostile`] ones. While each case
//! is served, the fixture's [`CountingStore`] records the store calls: no case may write, and
//! a missing or malformed credential may not even read ([`StoreAccess`]).
//!
//! Besides each case's own expectations, every response is checked against the rules all
//! responses share (see [`driver::common_checks`]): JSON content type; on errors one
//! `x-request-id` equal to `meta.requestId`, an RFC 3339 `meta.timestamp`, an `error.code`
//! and `error.message`; `WWW-Authenticate` on 401/403 and `Retry-After` on 503.
//!
//! [`wire`] holds a tiny HTTP/1.1 client (and a parser for the quickstarts' printed `curl`
//! lines) for tests against a real socket.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod case;
pub mod driver;
pub mod drivers;
pub mod fixture;
pub mod hostile;
pub mod keys;
pub mod parity;
pub mod store;
pub mod wire;

pub use case::{base_cases, table, BodyCheck, Case, Expect, HeaderCheck, StoreAccess};
pub use driver::{
    assert_conformance, run_cases, run_table, AppUnderTest, Failure, TestRequest, TestResponse,
};
pub use drivers::{ActixApp, AxumApp};
pub use fixture::{Fixture, Keys};
pub use hostile::hostile_cases;
pub use keys::{run_keys_table, KeysReport};
pub use parity::assert_parity;
pub use store::{CountingStore, FailingStore, StoreActivity, StoreCall};
