//! `/metrics` and `/healthz` (relay and node) under async-std: the same
//! HTTP server (hyper over the runtime's TCP streams) on another runtime.

use peerup_test_kit as common;
mod support;

use support::rt;

#[async_std::test]
async fn dashboard_metrics_are_exported() {
    common::metrics::dashboard_metrics_are_exported(rt()).await;
}

#[async_std::test]
async fn metrics_http_errors_and_bounds() {
    common::metrics::metrics_http_errors_and_bounds(rt()).await;
}
