//! # peerup-test-kit
//!
//! Scenarios written once against `peerup-net`'s `Runtime` and run under
//! every adapter (peerup-tokio's and peerup-async-std's tests), over real
//! sockets on 127.0.0.1 with an in-process relay. No sleeps are used for
//! synchronisation: every step awaits the event it needs, bounded by a
//! generous timeout that only fires when something is broken.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

pub mod hop;
pub mod metrics;
pub mod reach;
pub mod scenarios;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::{Stream, StreamExt};
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_core::authz::ServiceRule;
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::label::DnsLabel;
use peerup_net::libp2p::identity::Keypair;
use peerup_net::libp2p::{Multiaddr, PeerId};
use peerup_net::node::{Event, Node, NodeOptions, generate_identity};
use peerup_net::runtime::{Runtime, TcpStream};
use peerup_relay::{Relay, RelayOptions};
use sha2::{Digest, Sha256};

/// Upper bound for any single wait; only reached when a test is broken.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A service name (panics on an invalid one: test input).
pub fn label(s: &str) -> DnsLabel {
    DnsLabel::new(s).unwrap()
}

/// A service open to every authorized peer.
pub fn open() -> ServiceRule {
    ServiceRule {
        enabled: true,
        allowed_peers: None,
    }
}

/// An `authorized_keys` document listing `peers` (comment `test`).
pub fn doc(peers: &[PeerId]) -> Document {
    let mut d = Document::new();
    for p in peers {
        d.add(*p, Attributes::new(), Some("test")).unwrap();
    }
    d
}

/// A fresh Ed25519 identity.
pub fn key() -> Keypair {
    generate_identity().unwrap()
}

/// Listen addresses on 127.0.0.1 with a port from the OS: TCP, and QUIC
/// when `quic`.
pub fn loopback(quic: bool) -> Vec<Multiaddr> {
    let mut v = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    if quic {
        v.push("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap());
    }
    v
}

/// An in-process relay on 127.0.0.1 authorizing `authorized` (QUIC too
/// under tokio).
pub async fn start_relay(rt: &Arc<dyn Runtime>, authorized: &[PeerId]) -> Relay {
    let mut o = RelayOptions::new(key());
    o.listen = loopback(false);
    o.authorized_keys = doc(authorized);
    o.transport.quic = rt.name() == "tokio";
    Relay::start(rt.clone(), o).await.unwrap()
}

/// The relay's TCP address for nodes' configs.
pub fn relay_addr(relay: &Relay) -> RelayAddr {
    let a = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .expect("relay has a TCP address");
    RelayAddr::new(a).unwrap()
}

/// Options for a node on loopback using `relay`, authorizing `peers`.
pub fn node_options(
    rt: &Arc<dyn Runtime>,
    keypair: Keypair,
    relay: &Relay,
    peers: &[PeerId],
) -> NodeOptions {
    let mut o = NodeOptions::new(keypair)
        .with_listen(loopback(rt.name() == "tokio"))
        .with_relays(vec![relay_addr(relay)])
        .with_authorized_keys(doc(peers), None);
    o.transport.quic = rt.name() == "tokio";
    o
}

/// Waits until `events` yields one matching `pred`.
pub async fn wait_for<S>(
    rt: &Arc<dyn Runtime>,
    events: &mut S,
    what: &str,
    mut pred: impl FnMut(&Event) -> bool,
) where
    S: Stream<Item = Event> + Unpin,
{
    let found = rt
        .timeout(LIMIT, async {
            while let Some(e) = events.next().await {
                if pred(&e) {
                    return true;
                }
            }
            false
        })
        .await;
    assert_eq!(found, Some(true), "timed out waiting for {what}");
}

/// Starts a node and waits for its reservation on the relay.
pub async fn start_reserved(rt: &Arc<dyn Runtime>, options: NodeOptions) -> Node {
    let node = Node::start(rt.clone(), options).await.unwrap();
    let mut events = node.events();
    // The reservation may already be in place.
    if !node.status().relays.values().any(|r| r.reserved) {
        wait_for(rt, &mut events, "a relay reservation", |e| {
            matches!(e, Event::ReservationAccepted { .. })
        })
        .await;
    }
    node
}

/// A local TCP service that counts every byte and connection it gets, and
/// answers: for each connection, it sends `reply_len` bytes of a
/// deterministic stream while reading, then, after the client's EOF, the
/// SHA-256 of what it received, then closes.
pub struct Service {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Bytes received, over all connections.
    pub bytes: Arc<AtomicU64>,
    /// Connections accepted.
    pub connections: Arc<AtomicU64>,
    /// The byte count after every read (for awaiting progress).
    pub progress: futures::channel::mpsc::Receiver<u64>,
}

impl Service {
    /// Waits until the service has received at least `n` bytes.
    pub async fn received(&mut self, rt: &Arc<dyn Runtime>, n: u64) {
        let bytes = self.bytes.clone();
        let ok = rt
            .timeout(LIMIT, async {
                while bytes.load(Ordering::SeqCst) < n {
                    if self.progress.next().await.is_none() {
                        return false;
                    }
                }
                true
            })
            .await;
        assert_eq!(ok, Some(true), "service did not receive {n} bytes");
    }
}

/// `len` deterministic pseudo-random bytes from `seed` (xorshift).
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Starts a [`Service`] on 127.0.0.1 answering `reply_len` bytes per
/// connection.
pub async fn start_service(rt: &Arc<dyn Runtime>, reply_len: usize) -> Service {
    let mut listener = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let connections = Arc::new(AtomicU64::new(0));
    let (tx, progress) = futures::channel::mpsc::channel(1024);
    let (b, c, rt2) = (bytes.clone(), connections.clone(), rt.clone());
    rt.spawn(Box::pin(async move {
        loop {
            let Ok((tcp, _)) = rt2.accept(listener.as_mut()).await else {
                return;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let b = b.clone();
            rt2.spawn(Box::pin(serve(tcp, b, reply_len, tx.clone())));
        }
    }));
    Service {
        addr,
        bytes,
        connections,
        progress,
    }
}

async fn serve(
    tcp: Box<dyn TcpStream>,
    counter: Arc<AtomicU64>,
    reply_len: usize,
    mut progress: futures::channel::mpsc::Sender<u64>,
) {
    let (mut r, mut w) = tcp.split();
    let reader = async {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let total = counter.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                    let _ = progress.try_send(total);
                    h.update(&buf[..n]);
                }
            }
        }
        h.finalize()
    };
    let data = pattern(2, reply_len);
    let writer = async {
        for chunk in data.chunks(256 * 1024) {
            if w.write_all(chunk).await.is_err() {
                return false;
            }
        }
        true
    };
    let (digest, ok) = futures::join!(reader, writer);
    if ok {
        let _ = w.write_all(&digest).await;
        let _ = w.close().await;
    }
}

/// Client side of [`Service`]: sends `send` bytes, half-closes, reads the
/// whole reply; returns (reply without the trailing digest, digest).
pub async fn exchange<S>(stream: S, send: &[u8]) -> (Vec<u8>, Vec<u8>)
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let (mut r, mut w) = stream.split();
    let writer = async {
        for chunk in send.chunks(256 * 1024) {
            w.write_all(chunk).await.unwrap();
        }
        // Half-close: the service sees EOF and still answers.
        w.close().await.unwrap();
    };
    let reader = async {
        let mut all = Vec::with_capacity(send.len() + 32);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break all;
            }
            all.extend_from_slice(&buf[..n]);
        }
    };
    let ((), mut all) = futures::join!(writer, reader);
    assert!(all.len() >= 32, "reply too short: {} bytes", all.len());
    let digest = all.split_off(all.len() - 32);
    (all, digest)
}

/// The SHA-256 of `data`.
pub fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// A fresh, private temporary directory.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "peerup-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    peerup_net::fs::ensure_private_dir(&d).unwrap();
    d
}

/// Writes a config (from the `init` template) and an empty
/// authorized_keys in `dir`; returns the config path.
pub fn write_config(dir: &std::path::Path, relay: &Relay) -> std::path::PathBuf {
    let text = peerup_core::config::render_template("identity.key", &[relay_addr(relay)], None);
    let text = text
        .replace("/ip4/0.0.0.0/tcp/0", "/ip4/127.0.0.1/tcp/0")
        .replace("/ip4/0.0.0.0/udp/0/quic-v1", "/ip4/127.0.0.1/udp/0/quic-v1");
    let path = dir.join("config.yaml");
    peerup_net::fs::write_atomic(&path, text.as_bytes()).unwrap();
    peerup_net::fs::write_atomic(
        &dir.join("authorized_keys"),
        b"# peers allowed to connect\n",
    )
    .unwrap();
    path
}

/// Options from the config at `path` (as `peerup daemon` loads it), on
/// loopback only.
pub fn options_from_config(rt: &Arc<dyn Runtime>, path: &std::path::Path) -> NodeOptions {
    let text = std::fs::read_to_string(path).unwrap();
    let (config, _) = peerup_core::config::Config::parse(path, &text).unwrap();
    let mut o = NodeOptions::from_config(&config, path).unwrap();
    o.listen = loopback(rt.name() == "tokio");
    o.transport.quic = rt.name() == "tokio";
    // The scenarios run on 127.0.0.1, which mDNS skips; it would only
    // announce the test nodes on the machine's real interfaces (and
    // async-std has none: peerup_net::Node::start refuses it there).
    o.mdns = false;
    o
}
