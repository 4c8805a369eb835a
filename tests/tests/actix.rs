//! The conformance table against the actix quickstart, in-process and over a real socket.

use keygate_conformance::drivers::{actix_quickstart, serve_actix_quickstart};
use keygate_conformance::wire::WireApp;
use keygate_conformance::{assert_conformance, Fixture};

#[actix_web::test]
async fn actix_quickstart_passes_every_conformance_case() {
    let fixture = Fixture::new().await;
    let app = actix_quickstart(fixture.state.clone()).await;
    assert_conformance(&app, &fixture).await;
}

/// The same table through actix-http's own parser: duplicated headers, raw non-ASCII bytes
/// and a 10 KB header arrive as sent.
#[actix_web::test]
async fn actix_quickstart_passes_every_conformance_case_over_a_real_socket() {
    let fixture = Fixture::new().await;
    let (addr, handle) = serve_actix_quickstart(fixture.state.clone());
    let wire = WireApp { addr };
    assert_conformance(&wire, &fixture).await;
    handle.stop(true).await;
}
