//! LAN discovery over real libp2p on 127.0.0.1. libp2p-mdns skips
//! loopback interfaces, so the mDNS records come from a scripted
//! discoverer (what `Runtime::lan_discovery` returns); everything after
//! it (the table, the authorization filter, `Node::connect` dialing LAN
//! addresses with the relay unreachable, the gate refusing a stranger) is
//! the product's. Real mDNS is proven by tests/e2e scenario 6.

use peerup_test_kit as common;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use common::*;
use futures::StreamExt;
use futures::channel::mpsc;
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::ConnectionPath;
use peerup_net::Event;
use peerup_net::lan::{Discoverer, LanEvent};
use peerup_net::libp2p::identity::Keypair;
use peerup_net::libp2p::swarm::FromSwarm;
use peerup_net::libp2p::{Multiaddr, PeerId};
use peerup_net::node::{ConnectError, Node, NodeOptions};
use peerup_net::runtime::{BoxFuture, BoxedTransport, Runtime, TransportOptions};
use peerup_net::{TcpListener, TcpStream};
use peerup_tokio::TokioRuntime;

/// Records the test hands the node, as mDNS would; and what it was told
/// before it was first polled.
struct Scripted(mpsc::Receiver<LanEvent>, Arc<Mutex<Seen>>);

/// What a scripted discoverer saw.
#[derive(Debug, Default)]
struct Seen {
    /// Listen addresses announced to it.
    listen_addrs: usize,
    /// `listen_addrs` when it was first polled (libp2p-mdns sends its
    /// first query then).
    at_first_poll: Option<usize>,
}

impl Discoverer for Scripted {
    fn on_swarm_event(&mut self, e: FromSwarm<'_>) {
        if let FromSwarm::NewListenAddr(_) = e {
            self.1.lock().unwrap().listen_addrs += 1;
        }
    }
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<LanEvent> {
        {
            let mut seen = self.1.lock().unwrap();
            if seen.at_first_poll.is_none() {
                seen.at_first_poll = Some(seen.listen_addrs);
            }
        }
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some(e)) => Poll::Ready(e),
            _ => Poll::Pending,
        }
    }
}

/// Tokio, with a scripted discoverer as its mDNS.
struct LanRuntime {
    tokio: TokioRuntime,
    discoverer: Mutex<Option<Scripted>>,
}

impl Runtime for LanRuntime {
    fn name(&self) -> &'static str {
        "tokio"
    }
    fn spawn(&self, future: BoxFuture<()>) {
        self.tokio.spawn(future)
    }
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        self.tokio.sleep_until(deadline)
    }
    fn tcp_connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpStream>>> {
        self.tokio.tcp_connect(addr)
    }
    fn tcp_listen(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpListener>>> {
        self.tokio.tcp_listen(addr)
    }
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        self.tokio.resolve(host, port)
    }
    fn transport(&self, k: &Keypair, o: &TransportOptions) -> io::Result<BoxedTransport> {
        self.tokio.transport(k, o)
    }
    fn lan_discovery(&self, _: PeerId) -> Option<io::Result<Box<dyn Discoverer>>> {
        let d = self.discoverer.lock().unwrap().take()?;
        Some(Ok(Box::new(d)))
    }
}

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

/// A node on 127.0.0.1 with mDNS on (scripted), whose one relay refuses
/// every connection: nothing but the LAN records can reach a peer.
async fn lan_node(keypair: Keypair, authorized: &[PeerId]) -> (Node, mpsc::Sender<LanEvent>) {
    let (node, tx, _) = lan_node_listening(keypair, authorized, loopback(false)).await;
    (node, tx)
}

/// [`lan_node`] listening on `listen`, with what its discoverer saw.
async fn lan_node_listening(
    keypair: Keypair,
    authorized: &[PeerId],
    listen: Vec<Multiaddr>,
) -> (Node, mpsc::Sender<LanEvent>, Arc<Mutex<Seen>>) {
    let (tx, rx) = mpsc::channel(8);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt: Arc<dyn Runtime> = Arc::new(LanRuntime {
        tokio: TokioRuntime::current(),
        discoverer: Mutex::new(Some(Scripted(rx, seen.clone()))),
    });
    // Port 1 on loopback: connection refused at once.
    let dead = RelayAddr::new(
        format!("/ip4/127.0.0.1/tcp/1/p2p/{}", key_id(&key()))
            .parse()
            .unwrap(),
    )
    .unwrap();
    let mut o = NodeOptions::new(keypair)
        .with_listen(listen)
        .with_relays(vec![dead])
        .with_authorized_keys(doc(authorized), None);
    o.transport.quic = false;
    o.mdns = true;
    (Node::start(rt, o).await.unwrap(), tx, seen)
}

/// libp2p-mdns sends its first query when first polled, and the peers
/// already on the LAN learn of a newcomer from its answer to that query
/// (they stopped asking): so it is first polled once the node's listen
/// addresses are known, and (a node listening on nothing) at most
/// `FIRST_QUERY_LATEST` after the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discoverer_starts_once_the_node_has_its_listen_addresses() {
    let rt = rt();
    let (_node, _records, seen) = lan_node_listening(key(), &[], loopback(false)).await;
    until(&rt, "the discoverer's first poll", || {
        seen.lock().unwrap().at_first_poll.is_some()
    })
    .await;
    let first = seen.lock().unwrap().at_first_poll;
    assert!(
        first >= Some(1),
        "first polled before any listen address: {first:?}"
    );

    let (_node, _records, seen) = lan_node_listening(key(), &[], Vec::new()).await;
    until(
        &rt,
        "the first poll of a discoverer with no address",
        || seen.lock().unwrap().at_first_poll.is_some(),
    )
    .await;
    assert_eq!(seen.lock().unwrap().at_first_poll, Some(0));
}

fn key_id(k: &Keypair) -> PeerId {
    k.public().to_peer_id()
}

/// Polls (bounded by the kit's limit) until `f` holds: the table has no
/// event of its own to wait on.
async fn until(rt: &Arc<dyn Runtime>, what: &str, mut f: impl FnMut() -> bool) {
    let ok = rt
        .timeout(LIMIT, async {
            while !f() {
                rt.sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
    assert!(ok.is_some(), "timed out waiting for {what}");
}

fn with_p2p(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    addr.clone().with_p2p(peer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorized_lan_peer_connects_directly_with_the_relay_unreachable() {
    let rt = rt();
    let (home_key, laptop_key, stranger_key) = (key(), key(), key());
    let (home_id, laptop_id, stranger_id) = (
        key_id(&home_key),
        key_id(&laptop_key),
        key_id(&stranger_key),
    );
    let mut o = NodeOptions::new(home_key)
        .with_listen(loopback(false))
        .with_authorized_keys(doc(&[laptop_id]), None);
    o.transport.quic = false;
    let home = Node::start(rt.clone(), o).await.unwrap();
    let home_addr = with_p2p(&home.listen_addrs()[0], home_id);
    let mut home_events = home.events();

    let (laptop, records) = lan_node(laptop_key, &[home_id]).await;
    // No record yet, and the relay refuses: unreachable.
    assert!(matches!(
        laptop.connect(home_id).await,
        Err(ConnectError::Unreachable { .. })
    ));

    // Home and a stranger answer on the LAN.
    let stranger_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/9/p2p/{stranger_id}")
        .parse()
        .unwrap();
    records
        .clone()
        .try_send(LanEvent::Discovered(vec![
            (home_id, home_addr.clone()),
            (stranger_id, stranger_addr.clone()),
        ]))
        .unwrap();
    until(&rt, "home's LAN record", || {
        !laptop.lan_addresses(home_id).is_empty()
    })
    .await;
    assert_eq!(laptop.lan_addresses(home_id), vec![home_addr.clone()]);
    assert!(
        laptop.lan_addresses(stranger_id).is_empty(),
        "a stranger's record is never used"
    );
    assert_eq!(
        laptop.status().lan.keys().copied().collect::<Vec<_>>(),
        vec![home_id],
        "status shows authorized LAN peers only"
    );

    assert_eq!(
        laptop.connect(home_id).await.unwrap(),
        ConnectionPath::Direct
    );
    wait_for(&rt, &mut home_events, "home to see the laptop", |e| {
        matches!(e, Event::Connected { peer, path: ConnectionPath::Direct, .. } if *peer == laptop_id)
    })
    .await;

    // The record expires: forgotten.
    records
        .clone()
        .try_send(LanEvent::Expired(vec![(home_id, home_addr.clone())]))
        .unwrap();
    until(&rt, "home's record to expire", || {
        laptop.lan_addresses(home_id).is_empty()
    })
    .await;

    // A stranger on the LAN that knows home's peer ID dials its LAN
    // address: home's gate refuses it as before.
    let (stranger, stranger_records) = lan_node(stranger_key, &[home_id]).await;
    stranger_records
        .clone()
        .try_send(LanEvent::Discovered(vec![(home_id, home_addr)]))
        .unwrap();
    until(&rt, "the stranger's record of home", || {
        !stranger.lan_addresses(home_id).is_empty()
    })
    .await;
    // The dialer may see its connection established for the round trip
    // before the gate's close (as through a relay): what counts is that
    // home denies it and keeps no connection, and a stream cannot open.
    let _ = stranger.connect(home_id).await;
    wait_for(
        &rt,
        &mut home_events,
        "home to deny the stranger",
        |e| matches!(e, Event::Denied { peer, .. } if *peer == stranger_id),
    )
    .await;
    assert!(!home.status().peers.contains_key(&stranger_id));
    let ssh = peerup_net::libp2p::StreamProtocol::new("/peerup/ssh/1.0.0");
    assert!(stranger.open_stream(home_id, ssh).await.is_err());
    for n in [home, laptop, stranger] {
        n.shutdown().await;
    }
}
