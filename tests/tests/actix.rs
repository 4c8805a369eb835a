//! The conformance table against the actix quickstart, in-process and over a real socket.

use actix_web::{App, HttpServer};
use keygate_conformance::drivers::actix_quickstart;
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
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let state = fixture.state.clone();
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new().configure(move |c| actix_quickstart::configure(c, state))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let wire = WireApp {
        addr: addr.to_string(),
    };
    assert_conformance(&wire, &fixture).await;
    handle.stop(true).await;
}
