//! The Keys API table against both quickstarts' applications (issue 10), in-process.

use keygate_conformance::drivers::actix_quickstart;
use keygate_conformance::{run_keys_table, AxumApp, Fixture};

#[tokio::test]
async fn axum_quickstart_passes_the_keys_api_table() {
    let fixture = Fixture::new().await;
    let app = AxumApp::quickstart(fixture.state.clone());
    let report = run_keys_table(&app, &fixture).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
}

#[actix_web::test]
async fn actix_quickstart_passes_the_keys_api_table() {
    let fixture = Fixture::new().await;
    let app = actix_quickstart(fixture.state.clone()).await;
    let report = run_keys_table(&app, &fixture).await;
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
}
