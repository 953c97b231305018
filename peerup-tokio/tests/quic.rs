//! QUIC with our TLS configurations (AES-GCM first where the CPU has AES,
//! through the patched libp2p-quic's `Config::with_tls_configs`) against a
//! stock rust-libp2p QUIC node (libp2p-tls's configurations, ChaCha20
//! first): both directions connect, each side learns the other's peer ID,
//! and a ping crosses the connection. A stranger's QUIC connection is
//! still refused by the node's gate. Real sockets on 127.0.0.1; every wait
//! is on an event, bounded by a limit that only fires when something is
//! broken.

use peerup_test_kit as common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use peerup_net::libp2p::identity::Keypair;
use peerup_net::libp2p::swarm::SwarmEvent;
use peerup_net::libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, ping};
use peerup_net::node::{Node, NodeOptions};
use peerup_net::runtime::Runtime;
use peerup_tokio::TokioRuntime;

const LIMIT: Duration = Duration::from_secs(20);

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

/// A stock rust-libp2p node: libp2p-quic as published (its own TLS
/// configurations), ping only.
fn stock(key: Keypair) -> Swarm<ping::Behaviour> {
    SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_quic()
        .with_behaviour(|_| ping::Behaviour::default())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Our node, listening on QUIC only, authorizing `peers`.
async fn ours(rt: &Arc<dyn Runtime>, key: Keypair, peers: &[PeerId]) -> Node {
    let o = NodeOptions::new(key)
        .with_listen(vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()])
        .with_authorized_keys(doc(peers), None);
    Node::start(rt.clone(), o).await.unwrap()
}

fn quic_addr(node: &Node) -> Multiaddr {
    node.listen_addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/quic-v1"))
        .expect("a QUIC listen address")
}

/// Drives `swarm` until a ping to `peer` succeeds; returns whether it did
/// (false: the connection closed or failed first).
async fn ping_succeeds(swarm: &mut Swarm<ping::Behaviour>, peer: PeerId) -> bool {
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(ping::Event {
                    peer: p,
                    result: Ok(_),
                    ..
                }) if p == peer => return true,
                SwarmEvent::OutgoingConnectionError { .. } => return false,
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer => return false,
                _ => {}
            }
        }
    };
    tokio::time::timeout(LIMIT, wait)
        .await
        .expect("neither a ping nor a failure within the limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_libp2p_node_dials_ours_over_quic() {
    let rt = rt();
    let stock_key = key();
    let stock_id = stock_key.public().to_peer_id();
    let node = ours(&rt, key(), &[stock_id]).await;
    let mut swarm = stock(stock_key);
    swarm
        .dial(quic_addr(&node).with(peerup_net::libp2p::multiaddr::Protocol::P2p(node.peer_id())))
        .unwrap();
    assert!(ping_succeeds(&mut swarm, node.peer_id()).await);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_dials_a_stock_libp2p_node_over_quic() {
    let rt = rt();
    let stock_key = key();
    let stock_id = stock_key.public().to_peer_id();
    let mut swarm = stock(stock_key);
    swarm
        .listen_on("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .unwrap();
    let addr = tokio::time::timeout(LIMIT, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await
    .unwrap();
    let node = ours(&rt, key(), &[stock_id]).await;
    node.add_addresses(stock_id, vec![addr]);
    let connect = node.connect(stock_id);
    let (path, pinged) = futures::join!(connect, ping_succeeds(&mut swarm, node.peer_id()));
    assert!(path.is_ok(), "{path:?}");
    assert!(pinged);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_over_quic_is_refused() {
    let rt = rt();
    let node = ours(&rt, key(), &[key().public().to_peer_id()]).await;
    let mut swarm = stock(key());
    swarm
        .dial(quic_addr(&node).with(peerup_net::libp2p::multiaddr::Protocol::P2p(node.peer_id())))
        .unwrap();
    assert!(!ping_succeeds(&mut swarm, node.peer_id()).await);
    node.shutdown().await;
}
