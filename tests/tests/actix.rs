//! The conformance table against the actix quickstart's service, in-process.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::{test, App};
use keygate_conformance::{assert_conformance, AppUnderTest, Fixture, TestRequest, TestResponse};

/// The actix driver: copies the framework-free request into an actix test request, runs the
/// service, copies the response back.
struct ActixApp<S>(S);

impl<S, B> AppUnderTest for ActixApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn send(&self, r: TestRequest) -> TestResponse {
        let mut req = test::TestRequest::default()
            .method(Method::from_bytes(r.method.as_bytes()).unwrap())
            .uri(&r.path);
        for (name, value) in &r.headers {
            req = req.append_header((
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
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

#[actix_web::test]
async fn actix_quickstart_passes_every_conformance_case() {
    let fixture = Fixture::new().await;
    let state = fixture.state.clone();
    let app =
        test::init_service(App::new().configure(move |c| actix_quickstart::configure(c, state)))
            .await;
    assert_conformance(&ActixApp(app), &fixture).await;
}
