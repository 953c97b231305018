//! The shared integration scenarios (written once against `Runtime`, in
//! `test-kit/`, the `peerup-test-kit` crate) under async-std: every one of them.

use peerup_test_kit as common;
mod support;

use support::rt;

#[async_std::test]
async fn relayed_proxy_64mib_with_half_close() {
    common::scenarios::relayed_proxy_64mib_with_half_close(rt()).await;
}

#[async_std::test]
async fn unauthorized_peer_is_denied() {
    common::scenarios::unauthorized_peer_is_denied(rt()).await;
}

#[async_std::test]
async fn revocation_closes_live_streams() {
    common::scenarios::revocation_closes_live_streams(rt()).await;
}

#[async_std::test]
async fn direct_and_relayed_paths() {
    common::scenarios::direct_and_relayed_paths(rt()).await;
}

#[async_std::test]
async fn peer_found_through_the_dht() {
    common::scenarios::peer_found_through_the_dht(rt()).await;
}

#[async_std::test]
async fn invite_and_join_through_the_relay() {
    common::scenarios::invite_and_join_through_the_relay(rt()).await;
}

#[async_std::test]
async fn tcp_forwarder() {
    common::scenarios::tcp_forwarder(rt()).await;
}

#[async_std::test]
async fn reservation_without_addresses_uses_dialed_address() {
    common::scenarios::reservation_without_addresses_uses_dialed_address(rt()).await;
}

#[async_std::test]
async fn relay_announces_its_listen_addresses() {
    common::scenarios::relay_announces_its_listen_addresses(rt()).await;
}

#[async_std::test]
async fn path_watch_sees_the_hole_punch() {
    common::scenarios::path_watch_sees_the_hole_punch(rt()).await;
}

#[async_std::test]
async fn probe_and_reserve_on_one_relay() {
    common::scenarios::probe_and_reserve_on_one_relay(rt()).await;
}

/// The scenarios above, in the order of `common/scenarios.rs`.
const RUN: &[&str] = &[
    "relayed_proxy_64mib_with_half_close",
    "unauthorized_peer_is_denied",
    "revocation_closes_live_streams",
    "direct_and_relayed_paths",
    "peer_found_through_the_dht",
    "invite_and_join_through_the_relay",
    "tcp_forwarder",
    "reservation_without_addresses_uses_dialed_address",
    "relay_announces_its_listen_addresses",
    "path_watch_sees_the_hole_punch",
    "probe_and_reserve_on_one_relay",
];

/// A scenario added to the shared file fails this until it runs here too.
#[test]
fn every_shared_scenario_runs_under_async_std() {
    let shared: Vec<&str> = include_str!("../../test-kit/src/scenarios.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("pub async fn "))
        .filter_map(|rest| rest.split('(').next())
        .collect();
    assert_eq!(shared, RUN, "run every shared scenario under async-std");
}

#[async_std::test]
async fn proxy_through_a_websocket_relay() {
    common::reach::proxy_through_a_websocket_relay(rt()).await;
}

#[async_std::test]
async fn failover_between_relays() {
    common::reach::failover_between_relays(rt()).await;
}

#[async_std::test]
async fn a_silent_path_is_closed_after_a_network_change() {
    common::reach::a_silent_path_is_closed_after_a_network_change(rt()).await;
}

#[async_std::test]
async fn proxy_through_a_secure_websocket_relay() {
    common::reach::proxy_through_a_secure_websocket_relay(rt()).await;
}

#[async_std::test]
async fn bad_websocket_certificates_are_refused() {
    common::reach::bad_websocket_certificates_are_refused(rt()).await;
}

#[async_std::test]
async fn websocket_garbage_is_closed() {
    common::reach::websocket_garbage_is_closed(rt()).await;
}
