//! The relay server, on 127.0.0.1, with real peerup nodes as clients.

use peerup_test_kit as common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::label::DnsLabel;
use peerup_net::Event;
use peerup_net::libp2p::PeerId;
use peerup_net::node::Node;
use peerup_net::runtime::Runtime;
use peerup_relay::{Limits, Relay, RelayEvent, RelayOptions};
use peerup_tokio::TokioRuntime;
use sha2::{Digest, Sha256};

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

async fn relay_with(rt: &Arc<dyn Runtime>, authorized: &[PeerId], limits: Limits) -> Relay {
    let mut o = RelayOptions::new(key());
    o.listen = loopback(false);
    o.authorized_keys = doc(authorized);
    o.limits = limits;
    Relay::start(rt.clone(), o).await.unwrap()
}

async fn relay_event<F: FnMut(&RelayEvent) -> bool>(
    rt: &Arc<dyn Runtime>,
    events: &mut futures::channel::mpsc::Receiver<RelayEvent>,
    what: &str,
    mut pred: F,
) -> RelayEvent {
    let found = rt
        .timeout(LIMIT, async {
            while let Some(e) = events.next().await {
                if pred(&e) {
                    return Some(e);
                }
            }
            None
        })
        .await
        .flatten();
    found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// A deterministic byte stream, generated chunk by chunk.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }

    fn digest(seed: u64, len: usize) -> Vec<u8> {
        let mut p = Pattern(seed);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len());
            p.fill(&mut buf[..n]);
            h.update(&buf[..n]);
            left -= n;
        }
        h.finalize().to_vec()
    }
}

/// A service that echoes SHA-256 digests: it reads everything while sending
/// `len` pattern bytes (seed 7), then sends the digest of what it read.
async fn streaming_service(rt: &Arc<dyn Runtime>, len: usize) -> std::net::SocketAddr {
    let mut listener = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rt2 = rt.clone();
    rt.spawn(Box::pin(async move {
        while let Ok((tcp, _)) = rt2.accept(listener.as_mut()).await {
            rt2.spawn(Box::pin(async move {
                let (mut r, mut w) = tcp.split();
                let reader = async {
                    let mut h = Sha256::new();
                    let mut buf = vec![0u8; 256 << 10];
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => return h.finalize(),
                            Ok(n) => h.update(&buf[..n]),
                        }
                    }
                };
                let writer = async {
                    let mut p = Pattern(7);
                    let mut buf = vec![0u8; 256 << 10];
                    let mut left = len;
                    while left > 0 {
                        let n = left.min(buf.len());
                        p.fill(&mut buf[..n]);
                        if w.write_all(&buf[..n]).await.is_err() {
                            return false;
                        }
                        left -= n;
                    }
                    true
                };
                let (digest, ok) = futures::join!(reader, writer);
                if ok {
                    let _ = w.write_all(&digest).await;
                    let _ = w.close().await;
                }
            }));
        }
    }));
    addr
}

/// Sends `len` pattern bytes (seed 3) and half-closes while reading the
/// reply; returns (reply length, SHA-256 of the reply minus its last 32
/// bytes, those 32 bytes).
async fn stream_exchange<S>(stream: S, len: usize) -> (usize, Vec<u8>, Vec<u8>)
where
    S: futures::io::AsyncRead + futures::io::AsyncWrite + Unpin,
{
    let (mut r, mut w) = stream.split();
    let writer = async {
        let mut p = Pattern(3);
        let mut buf = vec![0u8; 256 << 10];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len());
            p.fill(&mut buf[..n]);
            w.write_all(&buf[..n]).await.unwrap();
            left -= n;
        }
        w.close().await.unwrap();
    };
    let reader = async {
        let mut h = Sha256::new();
        let mut tail: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 32 {
                let cut = tail.len() - 32;
                h.update(&tail[..cut]);
                tail.drain(..cut);
            }
        }
        (total, h.finalize().to_vec(), tail)
    };
    let ((), out) = futures::join!(writer, reader);
    out
}

fn data() -> DnsLabel {
    DnsLabel::new("data").unwrap()
}

/// One circuit carries 256 MiB each way with matching checksums (Go
/// peer-up's default cuts at 64 MiB, libp2p's at 128 KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_circuit_carries_256_mib_each_way() {
    const LEN: usize = 256 << 20;
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = relay_with(&rt, &[home_id, laptop_id], Limits::default()).await;
    let svc = streaming_service(&rt, LEN).await;
    let home = start_reserved(
        &rt,
        node_options(&rt, hk, &relay, &[laptop_id])
            .with_listen(vec![])
            .with_service(data(), svc.to_string(), open())
            .unwrap(),
    )
    .await;
    let laptop = Node::start(
        rt.clone(),
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let start = rt.now();
    let (total, reply_sha, digest) = stream_exchange(stream, LEN).await;
    let took = rt.now() - start;
    eprintln!(
        "256 MiB each way through one circuit in {took:?} ({:.0} Mbit/s each way)",
        (LEN as f64 * 8.0) / took.as_secs_f64() / 1e6
    );
    assert_eq!(total, LEN + 32);
    assert_eq!(reply_sha, Pattern::digest(7, LEN), "reply corrupted");
    assert_eq!(digest, Pattern::digest(3, LEN), "request corrupted");
    assert_eq!(
        relay
            .stats()
            .circuits_cut
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// With a 2 s duration limit a circuit is cut; with limits off one
/// outlives that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_limit_cuts_circuits_and_no_limit_does_not() {
    let rt = rt();
    for limit in [Some(Duration::from_secs(2)), None] {
        let (hk, lk) = (key(), key());
        let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
        let limits = Limits {
            session_duration: limit,
            ..Limits::default()
        };
        let relay = relay_with(&rt, &[home_id, laptop_id], limits).await;
        let mut relay_events = relay.events();
        let mut svc = start_service(&rt, 0).await;
        let home = start_reserved(
            &rt,
            node_options(&rt, hk, &relay, &[laptop_id])
                .with_listen(vec![])
                .with_service(data(), svc.addr.to_string(), open())
                .unwrap(),
        )
        .await;
        let laptop = Node::start(
            rt.clone(),
            node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
        )
        .await
        .unwrap();
        let mut stream = laptop.open_service(home_id, "data").await.unwrap();
        let opened = rt.now();
        stream.write_all(b"a").await.unwrap();
        stream.flush().await.unwrap();
        svc.received(&rt, 1).await;
        match limit {
            Some(limit) => {
                let e = relay_event(&rt, &mut relay_events, "the circuit to be cut", |e| {
                    matches!(e, RelayEvent::CircuitClosed { error: Some(_), .. })
                })
                .await;
                let lived = rt.now() - opened;
                eprintln!("circuit cut after {lived:?}: {e:?}");
                assert!(
                    lived >= limit - Duration::from_millis(100),
                    "cut too early: {lived:?}"
                );
                let mut buf = [0u8; 8];
                let r = rt.timeout(LIMIT, stream.read(&mut buf)).await;
                assert!(
                    matches!(r, Some(Ok(0)) | Some(Err(_))),
                    "stream survived the cut: {r:?}"
                );
            }
            None => {
                // Outlive the 2 s limit of the other case, then use it.
                rt.sleep(Duration::from_secs(3)).await;
                stream.write_all(b"b").await.unwrap();
                stream.flush().await.unwrap();
                svc.received(&rt, 2).await;
                assert_eq!(
                    relay
                        .stats()
                        .circuits_cut
                        .load(std::sync::atomic::Ordering::SeqCst),
                    0
                );
            }
        }
        laptop.shutdown().await;
        home.shutdown().await;
        relay.shutdown().await;
    }
}

/// An unauthorized peer cannot reserve or open a circuit, and is told why;
/// removing a peer from the file at run time stops its next reservation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_peers_cannot_reserve_or_relay() {
    let rt = rt();
    let (hk, sk) = (key(), key());
    let (home_id, stranger_id) = (hk.public().to_peer_id(), sk.public().to_peer_id());
    let dir = temp_dir("relay-keys");
    let keys_path = dir.join("relay_authorized_keys");
    peerup_net::fs::write_atomic(&keys_path, doc(&[home_id]).render().as_bytes()).unwrap();
    let mut o = RelayOptions::new(key());
    o.listen = loopback(false);
    o.authorized_keys = doc(&[home_id]);
    let relay = Relay::start(rt.clone(), o).await.unwrap();
    relay.watch_authorized_keys(rt.clone(), keys_path.clone(), Duration::from_millis(100));
    let mut relay_events = relay.events();
    let home = start_reserved(
        &rt,
        node_options(&rt, hk, &relay, &[stranger_id]).with_listen(vec![]),
    )
    .await;

    // The stranger: its reservation fails with an error it can show.
    let stranger = Node::start(
        rt.clone(),
        node_options(&rt, sk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();
    let mut ev = stranger.events();
    let mut error = String::new();
    wait_for(
        &rt,
        &mut ev,
        "the stranger's reservation to fail",
        |e| match e {
            Event::ReservationLost { error: msg, .. } => {
                error = msg.clone();
                true
            }
            _ => false,
        },
    )
    .await;
    eprintln!("stranger's reservation error: {error}");
    assert!(error.contains("relay_authorized_keys"), "{error}");
    // Its circuit attempt to home fails too (home would even accept it).
    let err = stranger.connect(home_id).await.unwrap_err();
    eprintln!("stranger's circuit error: {err}");
    assert!(!stranger.status().peers.contains_key(&home_id));
    relay_event(
        &rt,
        &mut relay_events,
        "the relay denying the stranger",
        |e| matches!(e, RelayEvent::Denied { peer } if *peer == stranger_id),
    )
    .await;

    // Remove home from the file: the running relay drops it, and its next
    // reservation is refused.
    let mut home_events = home.events();
    peerup_net::fs::write_atomic(&keys_path, doc(&[]).render().as_bytes()).unwrap();
    relay_event(
        &rt,
        &mut relay_events,
        "the reload",
        |e| matches!(e, RelayEvent::Reloaded { revoked } if revoked.contains(&home_id)),
    )
    .await;
    wait_for(&rt, &mut home_events, "home losing its reservation", |e| {
        matches!(e, Event::ReservationLost { .. })
    })
    .await;
    relay_event(
        &rt,
        &mut relay_events,
        "home's next attempt being denied",
        |e| matches!(e, RelayEvent::Denied { peer } if *peer == home_id),
    )
    .await;
    assert!(!home.status().relays.values().any(|r| r.reserved));
    stranger.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The total reservation limit and the per-IP limit are enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_limits_are_enforced() {
    let rt = rt();
    for (name, limits) in [
        (
            "max_reservations",
            Limits {
                max_reservations: 1,
                ..Limits::default()
            },
        ),
        (
            "max_reservations_per_ip",
            Limits {
                max_reservations_per_ip: 1,
                ..Limits::default()
            },
        ),
    ] {
        let (ak, bk) = (key(), key());
        let (a_id, b_id) = (ak.public().to_peer_id(), bk.public().to_peer_id());
        let relay = relay_with(&rt, &[a_id, b_id], limits).await;
        let mut relay_events = relay.events();
        let a = start_reserved(&rt, node_options(&rt, ak, &relay, &[]).with_listen(vec![])).await;
        let b = Node::start(
            rt.clone(),
            node_options(&rt, bk, &relay, &[]).with_listen(vec![]),
        )
        .await
        .unwrap();
        let mut ev = b.events();
        let e = relay_event(
            &rt,
            &mut relay_events,
            "b's reservation to be denied",
            |e| matches!(e, RelayEvent::ReservationDenied { peer, .. } if *peer == b_id),
        )
        .await;
        eprintln!("{name}: {e:?}");
        wait_for(&rt, &mut ev, "b to see its reservation fail", |e| {
            matches!(e, Event::ReservationLost { .. })
        })
        .await;
        assert!(
            a.status().relays.values().any(|r| r.reserved),
            "{name}: a lost its reservation"
        );
        assert_eq!(
            relay
                .stats()
                .reservations
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{name}"
        );
        b.shutdown().await;
        a.shutdown().await;
        relay.shutdown().await;
    }
}

async fn get(rt: &Arc<dyn Runtime>, addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = rt.tcp_connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// `/healthz` counts match what the test set up; `/metrics` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_counts_match() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = relay_with(&rt, &[home_id, laptop_id], Limits::default()).await;
    let mut relay_events = relay.events();
    let addr =
        peerup_relay::health::serve(rt.clone(), relay.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let mut svc = start_service(&rt, 0).await;
    let home = start_reserved(
        &rt,
        node_options(&rt, hk, &relay, &[laptop_id])
            .with_listen(vec![])
            .with_service(data(), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await;
    let laptop = start_reserved(
        &rt,
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await;
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(&[1u8; 100_000]).await.unwrap();
    stream.flush().await.unwrap();
    svc.received(&rt, 100_000).await;

    // What the relay did, from its events: both nodes reserved; circuits
    // opened and closed (libp2p may open one each way between two peers
    // that both hold reservations).
    let (mut reserved, mut opened, mut closed) = (0, 0, 0);
    while let Ok(e) = relay_events.try_recv() {
        match e {
            RelayEvent::ReservationAccepted { renewed: false, .. } => reserved += 1,
            RelayEvent::CircuitOpened { .. } => opened += 1,
            RelayEvent::CircuitClosed { .. } => closed += 1,
            _ => {}
        }
    }
    assert_eq!(reserved, 2);
    assert!(opened >= 1);
    let body = get(&rt, addr, "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    eprintln!("{json}");
    assert_eq!(json["status"], "ok");
    assert_eq!(json["connected_peers"], 2);
    assert_eq!(json["reservations"], reserved);
    assert_eq!(json["active_circuits"], opened - closed);
    assert_eq!(json["circuits_total"], opened);
    assert!(json["bytes_relayed"].as_u64().unwrap() >= 100_000);
    let metrics = get(&rt, addr, "/metrics").await;
    assert!(
        metrics.contains("peerup_relay_reservations 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("peerup_relay_circuits {}\n", opened - closed)),
        "{metrics}"
    );
    assert!(get(&rt, addr, "/nope").await.starts_with("HTTP/1.1 404"));
    drop(stream);
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// After the relay restarts (same key, same port), a node holding a
/// reservation re-reserves and is reachable again, without restarting it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_re_reserves_after_relay_restart() {
    let rt = rt();
    let (hk, lk, rk) = (key(), key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let mut o = RelayOptions::new(rk.clone());
    o.listen = loopback(false);
    o.authorized_keys = doc(&[home_id, laptop_id]);
    let relay = Relay::start(rt.clone(), o.clone()).await.unwrap();
    // Pin the port the OS chose, for the restart.
    o.listen = relay.listen_addrs();
    let home = start_reserved(
        &rt,
        node_options(&rt, hk, &relay, &[laptop_id]).with_listen(vec![]),
    )
    .await;
    let laptop = Node::start(
        rt.clone(),
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();
    assert_eq!(
        laptop.ping(home_id).await.unwrap().path,
        ConnectionPath::Relayed
    );

    let mut ev = home.events();
    relay.shutdown().await;
    wait_for(&rt, &mut ev, "home to lose its reservation", |e| {
        matches!(e, Event::ReservationLost { .. })
    })
    .await;
    let restarted_at = rt.now();
    let relay = Relay::start(rt.clone(), o).await.unwrap();
    wait_for(&rt, &mut ev, "home to re-reserve", |e| {
        matches!(e, Event::ReservationAccepted { .. })
    })
    .await;
    eprintln!(
        "re-reserved {:?} after the relay came back",
        rt.now() - restarted_at
    );
    let reply = laptop.ping(home_id).await.unwrap();
    assert_eq!(reply.path, ConnectionPath::Relayed);
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}
