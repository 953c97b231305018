//! Two peers that know each other only through a relay end up with a direct
//! TCP connection over this crate's transport: both listen on TCP, the
//! first connection goes through the circuit, and DCUtR upgrades it (on
//! loopback a dial to the addresses the DHT learned can win that race; the
//! result is the same direct TCP connection). That the dials leave from
//! the listen port, which DCUtR needs across real NATs, is shown by the
//! transport's own unit test (`reuse_dial_leaves_from_the_listen_port`).

use peerup_test_kit as common;
mod support;

use std::sync::Arc;

use common::*;
use peerup_core::wire::ConnectionPath;
use peerup_net::libp2p::PeerId;
use peerup_net::node::Node;
use peerup_net::runtime::Runtime;
use support::{Tokio, rt};

/// From `laptop` (on `rt`), reach `home` (through the relay), then wait
/// for a direct connection.
async fn relayed_then_direct(rt: &Arc<dyn Runtime>, laptop: &Node, home_id: PeerId) {
    let direct = || {
        laptop.status().peers.get(&home_id).is_some_and(|p| {
            p.connections
                .iter()
                .any(|c| c.path == ConnectionPath::Direct && c.remote.to_string().contains("/tcp/"))
        })
    };
    let mut events = laptop.events();
    let first = laptop.connect(home_id).await.unwrap();
    eprintln!("first connection: {first}");
    if !direct() {
        // Every event may be the one; the status is what counts.
        wait_for(rt, &mut events, "a direct connection", |_| direct()).await;
    }
    assert_eq!(
        laptop.ping(home_id).await.unwrap().path,
        ConnectionPath::Direct
    );
}

#[async_std::test]
async fn peers_behind_a_relay_end_up_direct() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[laptop_id])).await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    relayed_then_direct(&rt, &laptop, home_id).await;
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// The same with the other peer on tokio.
#[async_std::test]
async fn peers_behind_a_relay_end_up_direct_with_tokio() {
    let (rt, tokio) = (rt(), Tokio::new());
    let trt = tokio.rt.clone();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let home_opts = node_options(&trt, hk, &relay, &[laptop_id]);
    let home = tokio
        .run(async move { start_reserved(&trt, home_opts).await })
        .await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    relayed_then_direct(&rt, &laptop, home_id).await;
    laptop.shutdown().await;
    tokio.run(async move { home.shutdown().await }).await;
    relay.shutdown().await;
}
