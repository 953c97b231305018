//! The shared integration scenarios under tokio.

mod common;

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
async fn relayed_proxy_64mib_with_half_close() {
    common::scenarios::relayed_proxy_64mib_with_half_close(rt()).await;
}
