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
//! 3. Implement [`AppUnderTest::send`] for it (a few lines: copy method, path, headers and
//!    body into the framework's test request; copy status, headers and body back).
//! 4. `assert_conformance(&app, &fixture).await` runs every case, in order, and panics with
//!    the list of every failed case and why.
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
pub mod fixture;
pub mod wire;

pub use case::{table, BodyCheck, Case, Expect, HeaderCheck};
pub use driver::{assert_conformance, run_table, AppUnderTest, Failure, TestRequest, TestResponse};
pub use fixture::{FailingStore, Fixture, Keys};
