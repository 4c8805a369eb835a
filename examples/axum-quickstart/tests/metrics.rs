//! `GET /metrics` on the axum quickstart, in-process: after traffic it lists every metric of
//! the README's Metrics table, and nothing keygate emits that the table lacks.

#[path = "../../demo-api/tests/support/metrics_doc.rs"]
mod metrics_doc;
#[path = "../../demo-api/tests/support/metrics_traffic.rs"]
mod metrics_traffic;

use keygate_conformance::AxumApp;

#[tokio::test]
async fn metrics_after_traffic_list_every_documented_metric() {
    let setup = metrics_traffic::setup().await;
    let app = AxumApp::quickstart(setup.state.clone());
    metrics_traffic::traffic_then_metrics(&app, &setup).await;
}
