//! The conformance table against the axum quickstart's router, in-process.

use keygate_conformance::{assert_conformance, AxumApp, Fixture};

#[tokio::test]
async fn axum_quickstart_passes_every_conformance_case() {
    let fixture = Fixture::new().await;
    let app = AxumApp::quickstart(fixture.state.clone());
    assert_conformance(&app, &fixture).await;
}

/// The same table over a real socket (hyper's HTTP/1 parser in front): duplicated headers,
/// raw non-ASCII bytes and a 10 KB header arrive as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_quickstart_passes_every_conformance_case_over_a_real_socket() {
    let fixture = Fixture::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum_quickstart::app(fixture.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let wire = keygate_conformance::wire::WireApp {
        addr: addr.to_string(),
    };
    assert_conformance(&wire, &fixture).await;
}
