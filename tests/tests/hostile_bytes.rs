//! Hostile bytes the `http` crates refuse to put in a `HeaderValue` (NUL, other control
//! characters, DEL), so the shared table cannot carry them: checked at the core level, where a
//! framework hands keygate raw header bytes, and over a raw socket, where the server's parser
//! refuses them before keygate runs.

use std::time::Duration;

use keygate::AuthError;
use keygate_conformance::wire::{self, WireApp};
use keygate_conformance::{AppUnderTest, Fixture, TestRequest};

/// The valid key with `byte` put in the middle, at the start and at the end.
fn poisoned(key: &str, byte: u8) -> Vec<Vec<u8>> {
    let k = key.as_bytes();
    let mid = k.len() / 2;
    let mut middle = k[..mid].to_vec();
    middle.push(byte);
    middle.extend_from_slice(&k[mid..]);
    let mut start = vec![byte];
    start.extend_from_slice(k);
    let mut end = k.to_vec();
    end.push(byte);
    vec![middle, start, end]
}

/// Every control byte and DEL.
fn control_bytes() -> impl Iterator<Item = u8> {
    (0u8..0x20).filter(|b| *b != b'\t').chain([0x7f])
}

#[tokio::test]
async fn control_bytes_in_either_header_are_malformed_and_touch_no_store() {
    let fixture = Fixture::new().await;
    let verifier = &fixture.state.verifier;
    let mark = fixture.counting.mark();
    let mut checked = 0;
    for byte in control_bytes() {
        for value in poisoned(&fixture.keys.full, byte) {
            let r = verifier.verify_headers([value.as_slice()], []).await;
            assert!(
                matches!(r, Err(AuthError::MalformedKey(_))),
                "X-Api-Key with byte {byte:#04x}: {r:?}"
            );
            let mut bearer = b"Bearer ".to_vec();
            bearer.extend_from_slice(&value);
            let r = verifier.verify_headers([], [bearer.as_slice()]).await;
            assert!(
                matches!(r, Err(AuthError::MalformedKey(_))),
                "Bearer with byte {byte:#04x}: {r:?}"
            );
            checked += 2;
        }
    }
    // 31 control bytes (tab is whitespace) and DEL, three positions, two headers.
    assert_eq!(checked, 32 * 3 * 2);
    let seen = fixture.counting.since(mark);
    assert!(
        seen.calls.is_empty(),
        "the store was called: {:?}",
        seen.calls
    );
}

/// Over the wire a NUL or other control byte in a header never reaches keygate: the server's
/// parser answers 400 itself. What matters is that there is an answer, that it is never a 2xx,
/// never a 5xx, and that the server keeps serving.
async fn raw_control_bytes_are_refused_and_the_server_keeps_serving(addr: String, key: &str) {
    let app = WireApp { addr: addr.clone() };
    for byte in [0x00u8, 0x01, b'\r', 0x1b, 0x7f] {
        for value in poisoned(key, byte) {
            let req = TestRequest::get("/api/v1/me").header("x-api-key", &value);
            let addr = addr.clone();
            let res = tokio::task::spawn_blocking(move || {
                wire::send(&addr, &req, Duration::from_secs(10))
            })
            .await
            .unwrap();
            // An answer is required: a dropped connection, a timeout or an unreadable reply
            // is a failure, not a pass.
            let res = res.unwrap_or_else(|e| {
                panic!("byte {byte:#04x}: no HTTP answer from the server ({e})")
            });
            assert!(
                (400..500).contains(&res.status),
                "byte {byte:#04x}: answered {}",
                res.status
            );
        }
    }
    let ok = app
        .send(TestRequest::get("/api/v1/me").header("x-api-key", key))
        .await;
    assert_eq!(ok.status, 200, "the server stopped serving valid keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_over_a_socket_refuses_raw_control_bytes() {
    let fixture = Fixture::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum_quickstart::app(fixture.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    raw_control_bytes_are_refused_and_the_server_keeps_serving(addr, &fixture.keys.full).await;
}

#[actix_web::test]
async fn actix_over_a_socket_refuses_raw_control_bytes() {
    let fixture = Fixture::new().await;
    let (addr, handle) =
        keygate_conformance::drivers::serve_actix_quickstart(fixture.state.clone());
    raw_control_bytes_are_refused_and_the_server_keeps_serving(addr, &fixture.keys.full).await;
    handle.stop(true).await;
}
