//! `/metrics` and `/healthz` (relay and node) under tokio.

use peerup_test_kit as common;

use std::sync::Arc;

use peerup_net::runtime::Runtime;
use peerup_tokio::TokioRuntime;

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_metrics_are_exported() {
    common::metrics::dashboard_metrics_are_exported(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_http_errors_and_bounds() {
    common::metrics::metrics_http_errors_and_bounds(rt()).await;
}
