//! The hostile-load scenario's attacker and witness (`tests/hostile/run.sh`
//! drives it; see docs/SECURITY.md for what it shows).
//!
//! ```text
//! hostile keys <dir>                 writes client.key and garbage.key, prints their peer IDs
//! hostile run  [options]             floods a relay and a daemon while an authorized
//!                                    client moves data through a circuit; prints JSON
//! ```
//!
//! During `run`, at once and each bounded in count and time:
//! - **raw**: TCP connections to the relay and the daemon that never say a
//!   byte (from 127.0.0.2-9), held until the server drops them;
//! - **strangers**: fresh identities completing the TLS/Noise handshake
//!   and yamux, then waiting to be thrown out by the gate;
//! - **garbage**: streams of random bytes on every protocol the relay and
//!   the daemon speak, from an authorized but misbehaving peer;
//!
//! while the authorized client, connected through the relay before the
//! flood, sends a payload through a relayed stream to an echo service
//! behind the daemon and checks it comes back intact, and pings the
//! daemon through the relay all along (the latency the flood adds).

#![allow(clippy::print_stdout, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::ConnectionPath;
use peerup_net::libp2p::core::Endpoint;
use peerup_net::libp2p::core::muxing::StreamMuxerExt;
use peerup_net::libp2p::core::transport::{DialOpts, PortUse, Transport};
use peerup_net::libp2p::identity::Keypair;
use peerup_net::libp2p::{Multiaddr, PeerId, StreamProtocol};
use peerup_net::node::NodeOptions;
use peerup_net::runtime::TransportOptions;
use peerup_tokio::Node;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn usage() -> ! {
    eprintln!(
        "usage: hostile keys <dir>\n       hostile run --relay <multiaddr> --daemon <ip:port> --home <peer-id> \
         --keys <dir> --service <name> --service-port <port> [--raw N] [--strangers N] \
         [--garbage N] [--bytes N] [--seconds N]"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("keys") => keys(Path::new(
            args.get(1).map_or_else(|| usage(), |s| s.as_str()),
        )),
        Some("run") => run(Args::parse(&args[1..])).await,
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("hostile: {e}");
        std::process::exit(1);
    }
}

fn load_key(path: &Path) -> Result<Keypair> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(peerup_core::identity::decode(&bytes)?)
}

fn keys(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for name in ["client", "garbage"] {
        let key = peerup_net::node::generate_identity()?;
        let bytes = peerup_core::identity::encode(&key).ok_or("not Ed25519")?;
        peerup_net::fs::write_atomic(&dir.join(format!("{name}.key")), bytes.as_slice())?;
        println!("{name} {}", key.public().to_peer_id());
    }
    Ok(())
}

struct Args {
    relay: RelayAddr,
    daemon: SocketAddr,
    home: PeerId,
    keys: PathBuf,
    service: String,
    service_port: u16,
    raw: usize,
    strangers: usize,
    garbage: usize,
    bytes: usize,
    seconds: u64,
}

impl Args {
    fn parse(a: &[String]) -> Args {
        let get = |k: &str| {
            a.iter()
                .position(|x| x == k)
                .and_then(|i| a.get(i + 1))
                .cloned()
        };
        let need = |k: &str| get(k).unwrap_or_else(|| usage());
        let num = |k: &str, d: usize| get(k).map_or(d, |v| v.parse().unwrap_or_else(|_| usage()));
        Args {
            relay: need("--relay").parse().unwrap_or_else(|_| usage()),
            daemon: need("--daemon").parse().unwrap_or_else(|_| usage()),
            home: need("--home").parse().unwrap_or_else(|_| usage()),
            keys: PathBuf::from(need("--keys")),
            service: need("--service"),
            service_port: need("--service-port").parse().unwrap_or_else(|_| usage()),
            raw: num("--raw", 2000),
            strangers: num("--strangers", 500),
            garbage: num("--garbage", 100),
            bytes: num("--bytes", 16 << 20),
            seconds: num("--seconds", 60) as u64,
        }
    }
}

/// An echo service on 127.0.0.1: what the daemon exposes to the client.
async fn echo_service(port: u16) -> Result<()> {
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(())
}

fn node_options(key: Keypair, relay: &RelayAddr, home: PeerId) -> NodeOptions {
    let mut keys = Document::new();
    let _ = keys.add(home, Attributes::new(), Some("home"));
    let mut o = NodeOptions::new(key)
        .with_listen(vec![])
        .with_relays(vec![relay.clone()])
        .with_reservations(false)
        .with_authorized_keys(keys, None);
    o.transport.quic = false;
    // Everything through the relay: the payload must cross a circuit.
    o.hole_punching = false;
    o
}

/// Milliseconds at the given quantile of `v` (sorted in place).
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i])
}

async fn pings(client: &Node, home: PeerId, n: usize) -> (Vec<f64>, usize) {
    let mut rtts = Vec::new();
    let mut failed = 0;
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(10), client.net().ping(home)).await {
            Ok(Ok(r)) => rtts.push(r.rtt.as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    (rtts, failed)
}

async fn run(a: Args) -> Result<()> {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    echo_service(a.service_port).await?;
    let relay_peer = a.relay.peer_id();
    let (mut ip, mut port) = (None, None);
    for p in a.relay.multiaddr().iter() {
        match p {
            peerup_core::multiaddr::Protocol::Ip4(i) => ip = Some(i),
            peerup_core::multiaddr::Protocol::Tcp(t) => port = Some(t),
            _ => {}
        }
    }
    let relay_tcp = match (ip, port) {
        (Some(ip), Some(port)) => SocketAddr::from((ip, port)),
        _ => return Err("--relay must be /ip4/<ip>/tcp/<port>/p2p/<id>".into()),
    };

    // The witness: an authorized client, through the relay, before the flood.
    let client = Node::start(node_options(
        load_key(&a.keys.join("client.key"))?,
        &a.relay,
        a.home,
    ))
    .await?;
    let (mut base, base_failed) = pings(&client, a.home, 20).await;
    let payload: Vec<u8> = (0..a.bytes as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9) >> 13) as u8)
        .collect();
    let want = Sha256::digest(&payload);
    // The payload once before the flood, for comparison.
    let mut quiet = client.open_service(a.home, &a.service).await?;
    let t = Instant::now();
    let (n, digest) = echo(&mut quiet, &payload).await?;
    let quiet_secs = t.elapsed().as_secs_f64();
    if n != a.bytes || digest != want {
        return Err("the payload came back damaged before any flood".into());
    }
    let mut stream = client.open_service(a.home, &a.service).await?;
    let relayed =
        stream.path() == ConnectionPath::Relayed && quiet.path() == ConnectionPath::Relayed;
    drop(quiet);

    let stop = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();

    // The flood.
    let raw = tokio::spawn(raw_flood(a.raw, relay_tcp, a.daemon, stop));
    let strangers = tokio::spawn(stranger_flood(
        a.strangers,
        vec![
            format!("/ip4/{}/tcp/{}", relay_tcp.ip(), relay_tcp.port()).parse()?,
            format!("/ip4/{}/tcp/{}", a.daemon.ip(), a.daemon.port()).parse()?,
        ],
        stop,
    ));
    let garbage_node = Node::start(node_options(
        load_key(&a.keys.join("garbage.key"))?,
        &a.relay,
        a.home,
    ))
    .await?;
    let garbage = tokio::spawn(garbage_flood(
        garbage_node.clone(),
        a.garbage,
        relay_peer,
        a.home,
        a.service.clone(),
        stop,
    ));

    // Meanwhile: the payload through the relayed stream, and pings.
    let moved = async {
        let t = Instant::now();
        let r = echo(&mut stream, &payload).await;
        (r, t.elapsed().as_secs_f64())
    };
    let during = async {
        let mut rtts = Vec::new();
        let mut failed = 0;
        while Instant::now() < stop {
            let (r, f) = pings(&client, a.home, 1).await;
            rtts.extend(r);
            failed += f;
            tokio::time::sleep(Duration::from_millis(200)).await;
            if raw.is_finished() && strangers.is_finished() && garbage.is_finished() {
                break;
            }
        }
        (rtts, failed)
    };
    let (moved, (mut flood_rtts, flood_failed)) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(a.seconds + 30), moved),
        during
    );
    let flood_secs = started.elapsed().as_secs_f64();
    let (moved_ok, moved_bytes, transfer_secs) = match moved {
        Ok((Ok((n, digest)), secs)) => (n == a.bytes && digest == want, n, secs),
        _ => (false, 0, 0.0),
    };
    let raw = raw.await?;
    let strangers = strangers.await?;
    let garbage = garbage.await?;
    let (mut after, after_failed) = pings(&client, a.home, 5).await;
    let summary = serde_json::json!({
        "relayed_stream": relayed,
        "bytes": a.bytes,
        "bytes_back": moved_bytes,
        "checksum_intact": moved_ok,
        "transfer_seconds": transfer_secs,
        "transfer_seconds_before_the_flood": quiet_secs,
        "flood_seconds": flood_secs,
        "ping_ms": {
            "before_p50": quantile(&mut base, 0.5),
            "before_failed": base_failed,
            "during_p50": quantile(&mut flood_rtts, 0.5),
            "during_p95": quantile(&mut flood_rtts, 0.95),
            "during_count": flood_rtts.len(),
            "during_failed": flood_failed,
            "after_p50": quantile(&mut after, 0.5),
            "after_failed": after_failed,
        },
        "raw": raw,
        "strangers": strangers,
        "garbage": garbage,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    garbage_node.shutdown().await;
    client.shutdown().await;
    if !moved_ok || !relayed {
        return Err("the authorized client's transfer failed or was not relayed".into());
    }
    Ok(())
}

/// Sends `payload` through `stream` to the echo service and reads it back;
/// returns the bytes back and their SHA-256.
async fn echo(
    stream: &mut peerup_tokio::ServiceStream,
    payload: &[u8],
) -> std::io::Result<(usize, sha2::digest::Output<Sha256>)> {
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = async {
        for chunk in payload.chunks(256 << 10) {
            w.write_all(chunk).await?;
        }
        w.shutdown().await
    };
    let reader = async {
        let mut h = Sha256::new();
        let mut n = 0usize;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let k = r.read(&mut buf).await?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k;
        }
        Ok::<_, std::io::Error>((n, h.finalize()))
    };
    let (w, r) = tokio::join!(writer, reader);
    w?;
    r
}

/// `n` TCP connections that never say a byte, half to each target, from
/// 127.0.0.2-9; each is held until the server drops it or `stop`.
async fn raw_flood(
    n: usize,
    relay: SocketAddr,
    daemon: SocketAddr,
    stop: Instant,
) -> serde_json::Value {
    let dropped_by_server = Arc::new(AtomicU64::new(0));
    let connect_failed = Arc::new(AtomicU64::new(0));
    let held_to_the_end = Arc::new(AtomicU64::new(0));
    let tasks = futures::stream::iter(0..n)
        .map(|i| {
            let target = if i % 2 == 0 { relay } else { daemon };
            let source: SocketAddr = ([127, 0, 0, 2 + (i % 8) as u8], 0).into();
            let (dropped, failed, held) = (
                dropped_by_server.clone(),
                connect_failed.clone(),
                held_to_the_end.clone(),
            );
            async move {
                let connect = async {
                    let s = tokio::net::TcpSocket::new_v4()?;
                    s.bind(source)?;
                    s.connect(target).await
                };
                match tokio::time::timeout(Duration::from_secs(5), connect).await {
                    Ok(Ok(mut s)) => {
                        let mut b = [0u8; 1];
                        let left = stop.saturating_duration_since(Instant::now());
                        match tokio::time::timeout(left, s.read(&mut b)).await {
                            Ok(_) => dropped.fetch_add(1, Ordering::Relaxed),
                            Err(_) => held.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .buffer_unordered(n.max(1));
    tasks.collect::<Vec<()>>().await;
    serde_json::json!({
        "connections": n,
        "dropped_by_server": dropped_by_server.load(Ordering::Relaxed),
        "connect_failed": connect_failed.load(Ordering::Relaxed),
        "held_to_the_end": held_to_the_end.load(Ordering::Relaxed),
    })
}

/// `n` fresh identities complete the handshake with the targets (50 at a
/// time) and wait to be thrown out.
async fn stranger_flood(n: usize, targets: Vec<Multiaddr>, stop: Instant) -> serde_json::Value {
    let handshakes = Arc::new(AtomicU64::new(0));
    let thrown_out = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let tasks = futures::stream::iter(0..n)
        .map(|i| {
            let addr = targets[i % targets.len()].clone();
            let (hs, out, refused) = (handshakes.clone(), thrown_out.clone(), refused.clone());
            async move {
                let Ok(key) = peerup_net::node::generate_identity() else {
                    return;
                };
                let tcp = peerup_net::libp2p::tcp::tokio::Transport::new(
                    peerup_net::libp2p::tcp::Config::new(),
                );
                let Ok(mut t) =
                    peerup_net::runtime::secure_tcp(tcp, &key, &TransportOptions::default())
                else {
                    return;
                };
                let opts = DialOpts {
                    role: Endpoint::Dialer,
                    port_use: PortUse::New,
                };
                let Ok(dial) = t.dial(addr, opts) else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                match tokio::time::timeout(Duration::from_secs(10), dial).await {
                    Ok(Ok((_peer, mut muxer))) => {
                        hs.fetch_add(1, Ordering::Relaxed);
                        let left = stop.saturating_duration_since(Instant::now());
                        let closed = tokio::time::timeout(left, async {
                            loop {
                                if futures::future::poll_fn(|cx| muxer.poll_unpin(cx))
                                    .await
                                    .is_err()
                                {
                                    return;
                                }
                            }
                        })
                        .await;
                        if closed.is_ok() {
                            out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .buffer_unordered(50);
    tasks.collect::<Vec<()>>().await;
    serde_json::json!({
        "identities": n,
        "handshakes_completed": handshakes.load(Ordering::Relaxed),
        "thrown_out_by_the_gate": thrown_out.load(Ordering::Relaxed),
        "refused_or_failed": refused.load(Ordering::Relaxed),
    })
}

/// `n` streams of random bytes on each protocol of the relay and the
/// daemon, from an authorized peer.
async fn garbage_flood(
    node: Node,
    n: usize,
    relay: PeerId,
    home: PeerId,
    service: String,
    stop: Instant,
) -> serde_json::Value {
    let relay_protocols = [
        "/peerup/kad/1.0.0",
        "/ipfs/id/1.0.0",
        "/ipfs/id/push/1.0.0",
        "/ipfs/ping/1.0.0",
        "/libp2p/circuit/relay/0.2.0/hop",
    ];
    let service_protocol = format!("/peerup/{service}/1.0.0");
    let home_protocols = [
        "/peerup/kad/1.0.0",
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/libp2p/dcutr",
        "/pingpong/1.0.0",
        "/peerup/invite/1.0.0",
        service_protocol.as_str(),
    ];
    let mut per_protocol = serde_json::Map::new();
    let targets = relay_protocols
        .iter()
        .map(|p| (relay, "relay", p.to_string()))
        .chain(
            home_protocols
                .iter()
                .map(|p| (home, "daemon", p.to_string())),
        );
    for (peer, who, proto) in targets {
        let Ok(protocol) = StreamProtocol::try_from_owned(proto.clone()) else {
            continue;
        };
        let opened = AtomicU64::new(0);
        let refused = AtomicU64::new(0);
        futures::stream::iter(0..n)
            .for_each_concurrent(16, |i| {
                let (node, protocol) = (node.clone(), protocol.clone());
                let (opened, refused) = (&opened, &refused);
                async move {
                    if Instant::now() >= stop {
                        return;
                    }
                    let attempt = async {
                        let mut s = node.net().open_stream(peer, protocol).await?;
                        let junk: Vec<u8> = (0..1024u32)
                            .map(|k| (k.wrapping_mul(31).wrapping_add(i as u32 * 7)) as u8)
                            .collect();
                        let _ = s.write_all(&junk).await;
                        let _ = s.flush().await;
                        let mut b = [0u8; 256];
                        let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await;
                        let _ = s.close().await;
                        Ok::<_, peerup_net::streams::OpenError>(())
                    };
                    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                        Ok(Ok(())) => opened.fetch_add(1, Ordering::Relaxed),
                        _ => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
            .await;
        per_protocol.insert(
            format!("{who} {proto}"),
            serde_json::json!({
                "streams_opened": opened.load(Ordering::Relaxed),
                "refused": refused.load(Ordering::Relaxed),
            }),
        );
    }
    serde_json::Value::Object(per_protocol)
}
