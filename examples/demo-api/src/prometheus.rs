//! `GET /metrics`: keygate's metrics (emitted through the `metrics` facade) in Prometheus text,
//! rendered by `metrics-exporter-prometheus` without an HTTP listener of its own.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Where the quickstarts serve the metrics. Unauthenticated in the demo: a real deployment
/// protects it or serves it on a separate, internal listener.
pub const METRICS_PATH: &str = "/metrics";

/// `Content-Type` of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Bucket bounds (seconds) of the `*_seconds` histograms: a store read (sub-millisecond to
/// the store timeout) and an argon2 run (tens of milliseconds). Buckets, unlike client-side
/// quantiles, can be summed across nodes.
pub const SECONDS_BUCKETS: [f64; 13] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// How often histogram samples not yet scraped are folded into their buckets, so memory stays
/// bounded however rarely `/metrics` is scraped.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The handle that renders this process's metrics. The first call installs the Prometheus
/// recorder as the process's global `metrics` recorder (and starts a thread doing its upkeep);
/// later calls return the same handle. When another global recorder was installed first, the
/// handle is that of a recorder of its own that nothing records into: its render is empty.
///
/// Call it before serving traffic: what keygate emits before a recorder is installed is lost.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| match builder().install_recorder() {
            Ok(handle) => {
                let upkeep = handle.clone();
                // A plain thread: the quickstarts run on different runtimes (tokio, actix).
                let spawned = std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    });
                // Without the thread, rendering on each scrape still does the upkeep.
                drop(spawned);
                handle
            }
            Err(_) => builder().build_recorder().handle(),
        })
        .clone()
}

fn builder() -> PrometheusBuilder {
    // Only fails on an empty bucket list, which SECONDS_BUCKETS is not.
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .unwrap_or_else(|_| PrometheusBuilder::new())
}
