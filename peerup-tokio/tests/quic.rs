//! QUIC with our TLS configurations (AES-GCM first where the CPU has AES,
//! through the patched libp2p-quic's `Config::with_tls_configs`) against a
//! stock rust-libp2p QUIC node (libp2p-tls's configurations, ChaCha20
//! first): both directions connect, each side learns the other's peer ID,
//! and a ping crosses the connection. A stranger's QUIC connection is
//! still refused by the node's gate. The UDP sockets QUIC opens, to listen
//! and to dial, have the buffers asked for (the patched libp2p-quic's
//! `udp_socket_buffer`). MTU discovery searches as far as a path's link
//! carries: over loopback, larger packets than Ethernet's, both ways
//! (`path_max_udp_payload`). Real sockets on 127.0.0.1; every wait is on an
//! event, bounded by a limit that only fires when something is broken.

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

/// Taken by every test here: `the_quic_sockets_have_the_buffers_asked_for`
/// looks at every UDP socket of the process, and a stock node's (default
/// buffers) must not be open meanwhile.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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
    let _one = ONE_AT_A_TIME.lock().await;
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
    let _one = ONE_AT_A_TIME.lock().await;
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
    let _one = ONE_AT_A_TIME.lock().await;
    let rt = rt();
    let node = ours(&rt, key(), &[key().public().to_peer_id()]).await;
    let mut swarm = stock(key());
    swarm
        .dial(quic_addr(&node).with(peerup_net::libp2p::multiaddr::Protocol::P2p(node.peer_id())))
        .unwrap();
    assert!(!ping_succeeds(&mut swarm, node.peer_id()).await);
    node.shutdown().await;
}

/// Every UDP socket of this process, as (local address, SO_RCVBUF,
/// SO_SNDBUF) as the kernel reports them (twice what it granted).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn udp_sockets() -> Vec<(std::net::SocketAddr, usize, usize)> {
    use std::os::fd::BorrowedFd;
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(raw) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: `raw` is open in this process (listed in /proc/self/fd),
        // owned by nodes that outlive this call, and only borrowed for the
        // getsockopt calls below; a descriptor closed meanwhile makes them
        // fail, which is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let socket = socket2::SockRef::from(&fd);
        if !matches!(socket.r#type(), Ok(t) if t == socket2::Type::DGRAM) {
            continue;
        }
        let Some(addr) = socket.local_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        // A connected UDP socket, or one not bound yet (port 0), is not
        // QUIC's (its endpoints are bound and not connected): it is a path
        // MTU lookup's, open for a moment (`path_max_udp_payload`).
        if socket.peer_addr().is_ok() || addr.port() == 0 {
            continue;
        }
        if let (Ok(rcv), Ok(snd)) = (socket.recv_buffer_size(), socket.send_buffer_size()) {
            found.push((addr, rcv, snd));
        }
    }
    found
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quic_sockets_have_the_buffers_asked_for() {
    let _one = ONE_AT_A_TIME.lock().await;
    let rt = rt();
    let (a_key, b_key) = (key(), key());
    let (a_id, b_id) = (a_key.public().to_peer_id(), b_key.public().to_peer_id());
    // A listens on QUIC; B listens on TCP only, so its QUIC dial opens a
    // socket of its own (libp2p-quic's dialer endpoint).
    let a = ours(&rt, a_key, &[b_id]).await;
    let b = Node::start(
        rt.clone(),
        NodeOptions::new(b_key)
            .with_listen(vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()])
            .with_authorized_keys(doc(&[a_id]), None),
    )
    .await
    .unwrap();
    let a_addr = quic_addr(&a);
    b.add_addresses(a_id, vec![a_addr.clone()]);
    let path = tokio::time::timeout(LIMIT, b.connect(a_id)).await.unwrap();
    assert!(path.is_ok(), "{path:?}");

    let wanted = peerup_net::runtime::TransportOptions::default().quic_socket_buffer;
    let (rmem_max, wmem_max) =
        peerup_net::runtime::udp_buffer_limits().expect("net.core.rmem_max and wmem_max");
    let cap = |max: u64| usize::try_from(max).unwrap_or(usize::MAX);
    let rcv = 2 * wanted.min(cap(rmem_max));
    let snd = 2 * wanted.min(cap(wmem_max));
    let a_port = a_addr
        .iter()
        .find_map(|p| match p {
            peerup_net::libp2p::multiaddr::Protocol::Udp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    // The multicast DNS socket (port 5353) is not QUIC's; the nodes here
    // run without it, but another test's could share the process.
    let sockets: Vec<_> = udp_sockets()
        .into_iter()
        .filter(|(addr, _, _)| addr.port() != 5353)
        .collect();
    assert!(
        sockets.iter().any(|(addr, _, _)| addr.port() == a_port),
        "A's listening socket (port {a_port}) among {sockets:?}"
    );
    assert!(
        sockets.len() >= 2,
        "A's listening socket and B's dialing socket among {sockets:?}"
    );
    for (addr, r, s) in &sockets {
        assert_eq!(
            (*r, *s),
            (rcv, snd),
            "the buffers of the UDP socket at {addr}"
        );
    }
    b.shutdown().await;
    a.shutdown().await;
}

/// MTU discovery per path (the patched libp2p-quic's
/// `path_max_udp_payload`, ARCHITECTURE.md "QUIC packet size"): loopback
/// is a link larger than Ethernet, so a connection of our configuration
/// comes to send packets as large as the loopback link carries (quinn's
/// discovery probes the bound itself last), the dialer's (its client
/// configuration) and the listener's (the server configuration chosen
/// for that incoming connection). Without the patch discovery stops at
/// 1,452 bytes; without the endpoints' 65,527-byte `max_udp_payload_size`
/// at 1,472; with a receive slot too small for one datagram, below the
/// bound: the wait below fails.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_path_carries_larger_packets_than_ethernet() {
    use futures::future::poll_fn;
    use peerup_net::libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportEvent};
    use peerup_net::libp2p::core::{Endpoint, Transport};
    use peerup_net::libp2p::quic;
    use std::pin::Pin;

    let _one = ONE_AT_A_TIME.lock().await;
    let _ = rt();
    let lo = "127.0.0.1:9".parse().unwrap();
    let bound = peerup_net::runtime::path_max_udp_payload(lo)
        .expect("Linux's loopback link is larger than Ethernet");
    let options = peerup_net::runtime::TransportOptions::default();
    let config = || peerup_tokio::quic_config(&key(), &options).unwrap();

    let mut listener = quic::tokio::Transport::new(config());
    listener
        .listen_on(
            ListenerId::next(),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        )
        .unwrap();
    let addr = tokio::time::timeout(LIMIT, async {
        loop {
            if let TransportEvent::NewAddress { listen_addr, .. } =
                poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await
            {
                break listen_addr;
            }
        }
    })
    .await
    .expect("the listener's address");
    let mut dialer = quic::tokio::Transport::new(config());
    let dial = dialer
        .dial(
            addr,
            DialOpts {
                role: Endpoint::Dialer,
                port_use: PortUse::New,
            },
        )
        .unwrap();
    let accept = async {
        loop {
            if let TransportEvent::Incoming { upgrade, .. } =
                poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await
            {
                break upgrade.await;
            }
        }
    };
    let (dialed, accepted) = tokio::time::timeout(LIMIT, futures::future::try_join(dial, accept))
        .await
        .expect("the connection within the limit")
        .expect("the connection");
    let (dialed, accepted) = (dialed.1, accepted.1);

    // quinn reports no event when discovery finds a larger MTU: its
    // figure is read until both sides have reached the path's.
    let found = tokio::time::timeout(LIMIT, async {
        loop {
            let mtus = (dialed.current_mtu(), accepted.current_mtu());
            if mtus == (bound, bound) {
                break mtus;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "MTU discovery stayed at (dialer, listener) = ({}, {}) bytes over loopback \
             (the path carries {bound})",
            dialed.current_mtu(),
            accepted.current_mtu()
        )
    });
    assert!(found.0 > 1_452, "{found:?}");
}
