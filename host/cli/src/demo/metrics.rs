//! `GET /metrics`: the host's engine-call counters and latency histograms in Prometheus text,
//! rendered on request by `metrics-exporter-prometheus` (no listener of its own).

use axum::{Router, extract::State, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sessionkit::observe::OPERATION_SECONDS;

use crate::failure::Failure;

/// The installed recorder, which renders what it recorded.
pub(crate) type Metrics = PrometheusHandle;

/// Bucket bounds of the engine-call latency histogram, in seconds: 20 µs (an in-process cache)
/// to 5 s (a database's call timeout).
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.25,
    1.0, 5.0,
];

/// Installs the Prometheus recorder as the process's `metrics` recorder.
///
/// # Errors
///
/// [`Failure::Input`] when the buckets are refused or a recorder is already installed.
pub(crate) fn install() -> Result<Metrics, Failure> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(OPERATION_SECONDS.to_owned()),
            &LATENCY_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| Failure::Input(format!("cannot install the metrics recorder: {error}")))
}

/// The `/metrics` route.
pub(crate) fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

/// Prometheus' text exposition format.
async fn render(State(metrics): State<Metrics>) -> ([(http::HeaderName, &'static str); 1], String) {
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
}
