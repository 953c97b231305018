//! The adapter under smol: tasks on smol's executor (a custom spawner),
//! async-io timers and sockets as always, and no async-std executor
//! involved. Two of the shared scenarios, unchanged.

use peerup_test_kit as common;

use std::sync::Arc;

use peerup_async_std::AsyncStdRuntime;
use peerup_net::runtime::Runtime;

fn rt() -> Arc<dyn Runtime> {
    Arc::new(AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach()))
}

#[test]
fn direct_and_relayed_paths_under_smol() {
    smol::block_on(common::scenarios::direct_and_relayed_paths(rt()));
}

#[test]
fn tcp_forwarder_under_smol() {
    smol::block_on(common::scenarios::tcp_forwarder(rt()));
}
