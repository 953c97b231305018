//! Helpers of this crate's integration tests (the shared scenarios' own
//! helpers are in `test-kit/`, the `peerup-test-kit` crate).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;

use peerup_async_std::AsyncStdRuntime;
use peerup_net::runtime::Runtime;
use peerup_tokio::TokioRuntime;

/// The async-std runtime, with test logging (`RUST_LOG`).
pub fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(AsyncStdRuntime::new())
}

/// A tokio runtime on threads of its own, beside the test's async-std.
/// Every call into a tokio node goes through [`Tokio::run`]: tokio timers
/// need their runtime's context.
pub struct Tokio {
    runtime: Option<tokio::runtime::Runtime>,
    /// `peerup-tokio`'s runtime on it.
    pub rt: Arc<dyn Runtime>,
}

impl Tokio {
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let rt: Arc<dyn Runtime> = Arc::new(TokioRuntime::with_handle(runtime.handle().clone()));
        assert_eq!(rt.name(), "tokio");
        Tokio {
            runtime: Some(runtime),
            rt,
        }
    }

    /// Runs `f` on a tokio thread and awaits its result from async-std.
    pub async fn run<T: Send + 'static>(&self, f: impl Future<Output = T> + Send + 'static) -> T {
        let handle = self.runtime.as_ref().unwrap().spawn(f);
        handle.await.unwrap()
    }
}

impl Drop for Tokio {
    fn drop(&mut self) {
        if let Some(r) = self.runtime.take() {
            r.shutdown_background();
        }
    }
}
