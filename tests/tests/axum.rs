//! The conformance table against the axum quickstart's router, in-process.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::Router;
use keygate_conformance::{
    assert_conformance, table, AppUnderTest, Fixture, TestRequest, TestResponse,
};
use tower::ServiceExt;

/// The axum driver: copies the framework-free request into an `http` request, runs the
/// router, copies the response back.
struct AxumApp(Router);

impl AppUnderTest for AxumApp {
    async fn send(&self, r: TestRequest) -> TestResponse {
        let mut req = Request::builder()
            .method(Method::from_bytes(r.method.as_bytes()).unwrap())
            .uri(&r.path);
        for (name, value) in &r.headers {
            req = req.header(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let res = self
            .0
            .clone()
            .oneshot(req.body(Body::from(r.body)).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        TestResponse {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}

#[tokio::test]
async fn axum_quickstart_passes_every_conformance_case() {
    let fixture = Fixture::new().await;
    let app = AxumApp(axum_quickstart::app(fixture.state.clone()));
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

#[tokio::test]
async fn the_table_covers_every_row_of_the_design_error_table() {
    let fixture = Fixture::new().await;
    let cases = table(&fixture.keys);
    for (status, reason) in [
        (401, "missing_credentials"),
        (401, "malformed_key"),
        (401, "invalid_key"),
        (401, "expired_key"),
        (401, "revoked_key"),
        (403, "insufficient_scope"),
        (503, "store_unavailable"),
        (400, "invalid_json"),
    ] {
        assert!(
            cases
                .iter()
                .any(|c| c.expect.status == status && c.expect.reason == Some(reason)),
            "no case for {status} {reason}"
        );
    }
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

/// Not (yet) in the shared table: the actix quickstart still answers these with an empty
/// body. `demo_api::{not_found, method_not_allowed}` give any adapter the envelope.
#[tokio::test]
async fn axum_quickstart_answers_unknown_routes_and_methods_in_the_envelope() {
    use keygate_conformance::driver::check;
    use keygate_conformance::{Case, Expect};
    let fixture = Fixture::new().await;
    let app = AxumApp(axum_quickstart::app(fixture.state.clone()));
    let key = fixture.keys.full.clone();
    let cases = [
        Case {
            name: "unknown route: 404 in the envelope",
            request: TestRequest::get("/api/v1/nothing-here").header("x-api-key", &key),
            expect: Expect::error(404, "NOT_FOUND", "not_found"),
        },
        Case {
            name: "unsupported method: 405 in the envelope",
            request: TestRequest::new("DELETE", "/api/v1/entities").header("x-api-key", &key),
            expect: Expect::error(405, "METHOD_NOT_ALLOWED", "method_not_allowed"),
        },
    ];
    for case in &cases {
        let res = app.send(case.request.clone()).await;
        let problems = check(case, &res);
        assert!(problems.is_empty(), "{}: {problems:?}", case.name);
    }
}
