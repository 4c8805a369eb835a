//! The in-process drivers of the adapters under test: [`AxumApp`] runs an axum `Router`
//! through `tower::ServiceExt::oneshot`, [`ActixApp`] runs an actix service through
//! `actix_web::test`. Each copies the framework-free request in and the response out, and
//! nothing else, so a difference between two apps is the apps' own.
//!
//! Adding an adapter means adding a driver here (a dozen lines) and a test file that runs
//! [`assert_conformance`](crate::assert_conformance) and [`assert_parity`](crate::assert_parity)
//! with it.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use axum::body::Body;
use axum::Router;
use demo_api::DemoState;
use tower::ServiceExt;

use crate::driver::{AppUnderTest, TestRequest, TestResponse};

/// Largest response body a driver reads.
const MAX_BODY: usize = 1 << 20;

/// An axum `Router`, driven in-process.
#[derive(Debug, Clone)]
pub struct AxumApp(pub Router);

impl AxumApp {
    /// The axum quickstart's router over `state`.
    pub fn quickstart(state: DemoState) -> Self {
        AxumApp(axum_quickstart::app(state))
    }
}

impl AppUnderTest for AxumApp {
    #[allow(clippy::expect_used)]
    async fn send(&self, r: TestRequest) -> TestResponse {
        use axum::http::{HeaderName, HeaderValue, Method, Request};
        let mut req = Request::builder()
            .method(Method::from_bytes(r.method.as_bytes()).expect("a case's method is valid"))
            .uri(&r.path);
        for (name, value) in &r.headers {
            req = req.header(
                HeaderName::from_bytes(name.as_bytes()).expect("a case's header name is valid"),
                HeaderValue::from_bytes(value)
                    .expect("a case's header value is one the http crate accepts"),
            );
        }
        let req = req
            .body(Body::from(r.body))
            .expect("a case's request builds");
        let res = self
            .0
            .clone()
            .oneshot(req)
            .await
            .expect("an axum router never fails");
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let body = axum::body::to_bytes(res.into_body(), MAX_BODY)
            .await
            .expect("the response body can be read");
        TestResponse {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}

/// An actix service (an `App` after `actix_web::test::init_service`), driven in-process.
/// Its futures are not `Send`: run it inside `#[actix_web::test]`.
pub struct ActixApp<S>(pub S);

impl<S> std::fmt::Debug for ActixApp<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActixApp")
    }
}

/// The actix quickstart's `App` over `state`, initialised for in-process requests.
pub async fn actix_quickstart(
    state: DemoState,
) -> ActixApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let app = actix_web::App::new().configure(move |c| actix_quickstart::configure(c, state));
    ActixApp(actix_web::test::init_service(app).await)
}

impl<S, B> AppUnderTest for ActixApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    #[allow(clippy::expect_used)]
    async fn send(&self, r: TestRequest) -> TestResponse {
        use actix_web::http::header::{HeaderName, HeaderValue};
        use actix_web::http::Method;
        use actix_web::test;
        let mut req = test::TestRequest::default()
            .method(Method::from_bytes(r.method.as_bytes()).expect("a case's method is valid"))
            .uri(&r.path);
        for (name, value) in &r.headers {
            req = req.append_header((
                HeaderName::from_bytes(name.as_bytes()).expect("a case's header name is valid"),
                HeaderValue::from_bytes(value)
                    .expect("a case's header value is one the http crate accepts"),
            ));
        }
        let res = test::call_service(&self.0, req.set_payload(r.body).to_request()).await;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
            .collect();
        let body = test::read_body(res).await.to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// The actix quickstart over `state` served by a real `HttpServer` (one worker, no signal
/// handling) on a free port of 127.0.0.1: its address and the handle that stops it. Call
/// inside `#[actix_web::test]`.
#[allow(clippy::expect_used)]
pub fn serve_actix_quickstart(state: DemoState) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address")
        .to_string();
    let server = actix_web::HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new().configure(move |c| actix_quickstart::configure(c, state))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("actix-web accepts the listener")
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, handle)
}
