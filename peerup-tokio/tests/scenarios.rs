//! The shared integration scenarios under tokio.

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
async fn relayed_proxy_64mib_with_half_close() {
    common::scenarios::relayed_proxy_64mib_with_half_close(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_peer_is_denied() {
    common::scenarios::unauthorized_peer_is_denied(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_live_streams() {
    common::scenarios::revocation_closes_live_streams(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_and_relayed_paths() {
    common::scenarios::direct_and_relayed_paths(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_found_through_the_dht() {
    common::scenarios::peer_found_through_the_dht(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_and_join_through_the_relay() {
    common::scenarios::invite_and_join_through_the_relay(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_forwarder() {
    common::scenarios::tcp_forwarder(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_without_addresses_uses_dialed_address() {
    common::scenarios::reservation_without_addresses_uses_dialed_address(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_announces_its_listen_addresses() {
    common::scenarios::relay_announces_its_listen_addresses(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_through_a_websocket_relay() {
    common::reach::proxy_through_a_websocket_relay(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_between_relays() {
    common::reach::failover_between_relays(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_path_is_closed_after_a_network_change() {
    common::reach::a_silent_path_is_closed_after_a_network_change(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_home_is_reached_on_its_new_reservation() {
    common::reach::a_restarted_home_is_reached_on_its_new_reservation(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_through_a_secure_websocket_relay() {
    common::reach::proxy_through_a_secure_websocket_relay(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_websocket_certificates_are_refused() {
    common::reach::bad_websocket_certificates_are_refused(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_garbage_is_closed() {
    common::reach::websocket_garbage_is_closed(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_watch_sees_the_hole_punch() {
    common::scenarios::path_watch_sees_the_hole_punch(rt()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_and_reserve_on_one_relay() {
    common::scenarios::probe_and_reserve_on_one_relay(rt()).await;
}
