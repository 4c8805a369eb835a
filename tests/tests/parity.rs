//! Issue 5: both adapters answer every case of the one table the same way — status, the
//! headers that matter and the body apart from `requestId`/`timestamp` — over one state.

use keygate_conformance::drivers::actix_quickstart;
use keygate_conformance::{assert_parity, AxumApp, Fixture};

#[actix_web::test]
async fn axum_and_actix_answer_every_case_identically() {
    let fixture = Fixture::new().await;
    let axum = AxumApp::quickstart(fixture.state.clone());
    let actix = actix_quickstart(fixture.state.clone()).await;
    assert_parity(&axum, &actix, &fixture).await;
}
