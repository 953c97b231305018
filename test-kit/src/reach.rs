//! Reaching a peer when the network is in the way (issue 18): a relay
//! reached over WebSocket only, and a dial that does not wait for a dead
//! relay while another one works.

use std::sync::Arc;

use peerup_core::relay_addr::{RelayAddr, TransportKind};
use peerup_core::wire::ConnectionPath;
use peerup_net::libp2p::Multiaddr;
use peerup_net::libp2p::multiaddr::Protocol;
use peerup_net::node::{Event, Node, NodeOptions};
use peerup_net::runtime::Runtime;
use peerup_relay::{Relay, RelayOptions};

use super::*;

/// A relay listening on `/ws` only (the port-443 relay, WIRE.md §16):
/// home reserves over WebSocket, the laptop reaches home's service
/// through the circuit, and both relay connections are WebSocket ones.
pub async fn proxy_through_a_websocket_relay(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let mut ro = RelayOptions::new(key());
    ro.listen = vec!["/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()];
    ro.authorized_keys = doc(&[home_id, laptop_id]);
    ro.transport.quic = false;
    let relay = Relay::start(rt.clone(), ro).await.unwrap();
    let ws = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Ws(_))))
        .expect("the relay listens on a /ws address");
    let ws = RelayAddr::new(ws).unwrap();
    assert_eq!(ws.transport_kind(), TransportKind::WebSocket);
    let svc = start_service(&rt, 1 << 20).await;
    let home = start_reserved(
        &rt,
        NodeOptions::new(hk)
            .with_listen(vec![])
            .with_relays(vec![ws.clone()])
            .with_authorized_keys(doc(&[laptop_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await;
    let laptop = Node::start(
        rt.clone(),
        NodeOptions::new(lk)
            .with_listen(vec![])
            .with_relays(vec![ws.clone()])
            .with_authorized_keys(doc(&[home_id]), None),
    )
    .await
    .unwrap();
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let send = pattern(3, 1 << 20);
    let (reply, digest) = exchange(stream, &send).await;
    assert_eq!(sha(&reply), sha(&pattern(2, 1 << 20)), "reply corrupted");
    assert_eq!(digest, sha(&send), "request corrupted");
    for node in [&home, &laptop] {
        let to_relay = &node.status().peers[&ws.peer_id()].connections;
        assert!(!to_relay.is_empty());
        for c in to_relay {
            assert!(
                c.remote.iter().any(|p| matches!(p, Protocol::Ws(_))),
                "relay connection over {}",
                c.remote
            );
        }
    }
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// A relay serving `wss://` with its own certificate (`/tls/ws`, the
/// certificate and key read from PEM as `relay-server.yaml`'s
/// `network.websocket_tls` gives them): nodes that trust the certificate
/// reserve and reach each other through it, over TLS; a node that does
/// not trust it (the web's authorities only) is refused at the TLS
/// handshake and reaches no one.
pub async fn proxy_through_a_secure_websocket_relay(rt: Arc<dyn Runtime>) {
    use peerup_net::runtime::WebSocketTls;
    let (hk, lk, sk) = (key(), key(), key());
    let (home_id, laptop_id, other_id) = (
        hk.public().to_peer_id(),
        lk.public().to_peer_id(),
        sk.public().to_peer_id(),
    );
    let cert = rcgen::generate_simple_self_signed(vec!["relay.test".to_owned()]).unwrap();
    let mut ro = RelayOptions::new(key());
    ro.listen = vec!["/ip4/127.0.0.1/tcp/0/tls/ws".parse().unwrap()];
    ro.authorized_keys = doc(&[home_id, laptop_id, other_id]);
    ro.transport.quic = false;
    ro.transport.websocket_tls = Some(
        WebSocketTls::from_pem(
            cert.cert.pem().as_bytes(),
            cert.key_pair.serialize_pem().as_bytes(),
        )
        .unwrap(),
    );
    let relay = Relay::start(rt.clone(), ro).await.unwrap();
    let listen = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Tls)))
        .expect("the relay listens on a /tls/ws address");
    let port = listen
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    // The certificate names relay.test: dial 127.0.0.1 with that SNI.
    let wss: RelayAddr = format!(
        "/ip4/127.0.0.1/tcp/{port}/tls/sni/relay.test/ws/p2p/{}",
        relay.peer_id()
    )
    .parse()
    .unwrap();
    assert_eq!(wss.transport_kind(), TransportKind::WebSocketTls);
    let trusting = |o: NodeOptions| {
        let mut o = o.with_listen(vec![]).with_relays(vec![wss.clone()]);
        o.transport.quic = false;
        o.transport.websocket_trust = vec![cert.cert.der().to_vec()];
        o
    };
    let svc = start_service(&rt, 4096).await;
    let home = start_reserved(
        &rt,
        trusting(NodeOptions::new(hk))
            .with_authorized_keys(doc(&[laptop_id, other_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await;
    let laptop = Node::start(
        rt.clone(),
        trusting(NodeOptions::new(lk)).with_authorized_keys(doc(&[home_id]), None),
    )
    .await
    .unwrap();
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    assert_eq!(exchange(stream, b"over wss").await.0.len(), 4096);
    let to_relay = &laptop.status().peers[&relay.peer_id()].connections;
    assert!(
        to_relay
            .iter()
            .all(|c| c.remote.iter().any(|p| matches!(p, Protocol::Tls))),
        "{to_relay:?}"
    );
    // A node that does not trust the certificate: no connection at all.
    let mut so = NodeOptions::new(sk)
        .with_listen(vec![])
        .with_relays(vec![wss.clone()])
        .with_authorized_keys(doc(&[home_id]), None);
    so.transport.quic = false;
    let other = Node::start(rt.clone(), so).await.unwrap();
    assert!(other.open_service(home_id, "data").await.is_err());
    assert!(other.path(relay.peer_id()).is_none());
    other.shutdown().await;
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Bad certificate material is refused with a reason, never a panic
/// (libp2p's `PrivateKey::new` panics on bytes that are no key).
pub async fn bad_websocket_certificates_are_refused(rt: Arc<dyn Runtime>) {
    use peerup_net::runtime::WebSocketTls;
    let cert = rcgen::generate_simple_self_signed(vec!["relay.test".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    let key_pem = cert.key_pair.serialize_pem();
    assert!(
        WebSocketTls::from_pem(b"", key_pem.as_bytes())
            .unwrap_err()
            .contains("certificate")
    );
    assert!(
        WebSocketTls::from_pem(pem.as_bytes(), b"junk")
            .unwrap_err()
            .contains("key")
    );
    assert!(
        WebSocketTls::from_pem(pem.as_bytes(), pem.as_bytes())
            .unwrap_err()
            .contains("key")
    );
    // DER bytes that are no key, handed over directly.
    let mut ro = RelayOptions::new(key());
    ro.listen = vec!["/ip4/127.0.0.1/tcp/0/tls/ws".parse().unwrap()];
    ro.transport.quic = false;
    ro.transport.websocket_tls = Some(WebSocketTls {
        certificate_chain: vec![cert.cert.der().to_vec()],
        private_key: vec![0x30, 0x03, 0x02, 0x01, 0x00],
    });
    assert!(Relay::start(rt.clone(), ro).await.is_err());
}

/// A relay that accepts TCP connections and never answers (a host that
/// swallows packets after the handshake), and its address under a made-up
/// peer ID. The listener lives as long as the returned value.
async fn black_hole(
    rt: &Arc<dyn Runtime>,
) -> (Box<dyn peerup_net::runtime::TcpListener>, RelayAddr) {
    let listener = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let id = key().public().to_peer_id();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}")
        .parse()
        .unwrap();
    (listener, RelayAddr::new(addr).unwrap())
}

/// Failover between relays. Home holds a reservation on two relays; the
/// laptop lists a black hole first, then both relays. Its dial does not
/// wait on the black hole (its upgrade timeout is set beyond the test's
/// limit, so a dial that waited would fail the test), reaches home, and
/// after the first relay shuts down, reaches home again through the
/// second.
pub async fn failover_between_relays(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let r1 = start_relay(&rt, &[home_id, laptop_id]).await;
    let r2 = start_relay(&rt, &[home_id, laptop_id]).await;
    let (hole_listener, hole) = black_hole(&rt).await;
    let relays = vec![hole.clone(), relay_addr(&r1), relay_addr(&r2)];
    let svc = start_service(&rt, 4096).await;
    let mut ho = NodeOptions::new(hk)
        .with_listen(vec![])
        .with_relays(relays.clone())
        .with_authorized_keys(doc(&[laptop_id]), None)
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    ho.transport.quic = false;
    let home = Node::start(rt.clone(), ho).await.unwrap();
    let mut events = home.events();
    let both = |home: &Node| {
        let s = home.status();
        [r1.peer_id(), r2.peer_id()]
            .iter()
            .all(|r| s.relays.get(r).is_some_and(|st| st.reserved))
    };
    while !both(&home) {
        wait_for(&rt, &mut events, "reservations on both relays", |e| {
            matches!(e, Event::ReservationAccepted { .. })
        })
        .await;
    }
    let mut lo = NodeOptions::new(lk)
        .with_listen(vec![])
        .with_relays(relays)
        .with_authorized_keys(doc(&[home_id]), None);
    lo.transport.quic = false;
    lo.transport.upgrade_timeout = LIMIT * 10;
    let laptop = Node::start(rt.clone(), lo).await.unwrap();

    let through = |laptop: &Node| {
        let conns = laptop.status().peers[&home_id].connections.clone();
        assert!(conns.iter().all(|c| c.path == ConnectionPath::Relayed));
        conns.iter().map(|c| c.remote.clone()).collect::<Vec<_>>()
    };
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let (reply, _) = exchange(stream, b"first").await;
    assert_eq!(reply.len(), 4096);
    eprintln!("first connection through {:?}", through(&laptop));

    // The first relay goes away, and the laptop's connections with it.
    r1.shutdown().await;
    laptop.disconnect_and_wait(home_id).await;
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let (reply, _) = exchange(stream, b"second").await;
    assert_eq!(reply.len(), 4096);
    let via = through(&laptop);
    let r2_id = r2.peer_id().to_string();
    assert!(
        via.iter().all(|a| a.to_string().contains(&r2_id)),
        "after the first relay went away, connected through {via:?}"
    );
    drop(hole_listener);
    laptop.shutdown().await;
    home.shutdown().await;
    r2.shutdown().await;
}

/// A home that restarted while its old relay connection lingers (it died
/// without a word: a crash, a power cut, a path gone silent) is reached
/// on its new reservation. The relay holds two reservations of the same
/// peer until it notices the old connection is dead; unpatched
/// libp2p-relay sent a circuit to either (a hash map's order, so a test
/// run either always or never hit the dead one) and the circuit failed
/// after the relay's 10 s STOP timeout. Patched (patches/README.md), the
/// newest reservation is used.
pub async fn a_restarted_home_is_reached_on_its_new_reservation(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let direct = relay_addr(&relay);
    let relay_tcp =
        tcp_socket_addr(direct.multiaddr()).unwrap_or_else(|| panic!("relay address {direct:?}"));
    let freezer = Freezer::start(&rt, relay_tcp).await;
    let through_freezer = RelayAddr::new(
        format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            freezer.addr.port(),
            relay.peer_id()
        )
        .parse()
        .unwrap(),
    )
    .unwrap();
    let svc = start_service(&rt, 4096).await;
    let home_options = |relay: RelayAddr| {
        let mut o = NodeOptions::new(hk.clone())
            .with_listen(vec![])
            .with_relays(vec![relay])
            .with_authorized_keys(doc(&[laptop_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap();
        o.transport.quic = false;
        o
    };
    let old = start_reserved(&rt, home_options(through_freezer)).await;
    // The old home's path goes silent, and the old home goes away: the
    // relay still holds its connection and reservation.
    freezer.freeze();
    old.shutdown().await;
    let home = start_reserved(&rt, home_options(direct.clone())).await;
    for attempt in 0..3 {
        let mut lo = NodeOptions::new(lk.clone())
            .with_listen(vec![])
            .with_relays(vec![direct.clone()])
            .with_authorized_keys(doc(&[home_id]), None);
        lo.transport.quic = false;
        let laptop = Node::start(rt.clone(), lo).await.unwrap();
        let Some(opened) = rt
            .timeout(LIMIT, laptop.open_service(home_id, "data"))
            .await
        else {
            panic!("attempt {attempt}: no circuit to the new home");
        };
        let stream = opened.unwrap_or_else(|e| panic!("attempt {attempt}: {e}"));
        assert_eq!(stream.path(), ConnectionPath::Relayed);
        assert_eq!(exchange(stream, b"hello").await.0.len(), 4096);
        laptop.shutdown().await;
    }
    home.shutdown().await;
    relay.shutdown().await;
}

/// The socket address of an `/ip4/<ip>/tcp/<port>...` address.
fn tcp_socket_addr(a: &Multiaddr) -> Option<std::net::SocketAddr> {
    match (a.iter().next(), a.iter().nth(1)) {
        (Some(Protocol::Ip4(ip)), Some(Protocol::Tcp(port))) => {
            Some(std::net::SocketAddr::from((ip, port)))
        }
        _ => None,
    }
}

/// A TCP forwarder on 127.0.0.1 in front of `target` whose connections
/// can be frozen: a frozen connection stays open and forwards nothing
/// (a path that died without a word). Connections made after a freeze
/// forward normally.
struct Freezer {
    addr: std::net::SocketAddr,
    frozen: Arc<std::sync::Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>>,
}

impl Freezer {
    async fn start(rt: &Arc<dyn Runtime>, target: std::net::SocketAddr) -> Freezer {
        use futures::io::AsyncReadExt;
        let mut listener = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen: Arc<std::sync::Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>> = Arc::default();
        let flags = frozen.clone();
        let rt2 = rt.clone();
        rt.spawn(Box::pin(async move {
            while let Ok((client, _)) = rt2.accept(listener.as_mut()).await {
                let Ok(upstream) = rt2.tcp_connect(target).await else {
                    continue;
                };
                let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
                flags.lock().unwrap().push(flag.clone());
                let (cr, cw) = client.split();
                let (ur, uw) = upstream.split();
                rt2.spawn(Box::pin(pump(cr, uw, flag.clone())));
                rt2.spawn(Box::pin(pump(ur, cw, flag)));
            }
        }));
        Freezer { addr, frozen }
    }

    /// Freezes every connection made so far.
    fn freeze(&self) {
        for f in self.frozen.lock().unwrap().iter() {
            f.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// Copies until EOF; once `frozen`, forwards nothing more and never ends
/// (both sockets stay open).
async fn pump<R, W>(mut from: R, mut to: W, frozen: Arc<std::sync::atomic::AtomicBool>)
where
    R: futures::io::AsyncRead + Unpin,
    W: futures::io::AsyncWrite + Unpin,
{
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if frozen.load(std::sync::atomic::Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.close().await;
}

/// Roaming (issue 18): after a network change, a connection whose path
/// went silent is closed by the probe and the next stream dials afresh,
/// while a live connection is left alone. The laptop reaches home through
/// a TCP forwarder whose connections can be frozen.
pub async fn a_silent_path_is_closed_after_a_network_change(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let svc = start_service(&rt, 4096).await;
    let home = Node::start(
        rt.clone(),
        NodeOptions::new(hk)
            .with_listen(loopback(false))
            .with_authorized_keys(doc(&[laptop_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await
    .unwrap();
    let home_tcp = home
        .listen_addrs()
        .into_iter()
        .find_map(|a| tcp_socket_addr(&a))
        .unwrap();
    let freezer = Freezer::start(&rt, home_tcp).await;
    let mut lo = NodeOptions::new(lk)
        .with_listen(vec![])
        .with_authorized_keys(doc(&[home_id]), None);
    lo.transport.quic = false;
    let laptop = Node::start(rt.clone(), lo).await.unwrap();
    let via: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", freezer.addr.port())
        .parse()
        .unwrap();
    laptop.add_addresses(home_id, vec![via]);
    let mut events = laptop.events();

    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(exchange(stream, b"before").await.0.len(), 4096);

    // A live path: probed and kept.
    laptop.network_changed();
    let mut outcome = None;
    // (The interface watcher's first report, at start, may probe too.)
    wait_for(&rt, &mut events, "the probe of a live path", |e| match e {
        Event::NetworkChanged { probed, closed } if *probed > 0 => {
            outcome = Some((*probed, *closed));
            true
        }
        _ => false,
    })
    .await;
    assert_eq!(outcome, Some((1, 0)), "(probed, closed) on a live path");
    assert!(laptop.path(home_id).is_some());

    // The path goes silent: the probe closes it.
    freezer.freeze();
    laptop.network_changed();
    wait_for(
        &rt,
        &mut events,
        "the probe of a silent path",
        |e| match e {
            Event::NetworkChanged { probed, closed } if *probed > 0 => {
                outcome = Some((*probed, *closed));
                true
            }
            _ => false,
        },
    )
    .await;
    assert_eq!(outcome, Some((1, 1)), "(probed, closed) on a silent path");
    if laptop.path(home_id).is_some() {
        wait_for(&rt, &mut events, "the dead connection to close", |e| {
            matches!(e, Event::Disconnected { remaining: 0, .. })
        })
        .await;
    }
    // The next stream dials a new connection (through the forwarder
    // again, whose new connections flow).
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(exchange(stream, b"after").await.0.len(), 4096);
    laptop.shutdown().await;
    home.shutdown().await;
}

/// Reads from `s` until the other side closes (or resets); returns what
/// came. Bounded by [`LIMIT`]: a connection the relay does not close fails
/// the test.
async fn until_closed(
    rt: &Arc<dyn Runtime>,
    s: &mut Box<dyn peerup_net::runtime::TcpStream>,
) -> Vec<u8> {
    use futures::io::AsyncReadExt;
    let mut got = Vec::new();
    let closed = rt
        .timeout(LIMIT, async {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
    assert!(closed.is_some(), "the relay did not close the connection");
    got
}

/// Garbage on a relay's WebSocket listener, from a stranger who never
/// authenticates: an upgrade request whose headers never end, a frame
/// header declaring 100 MiB (over the 256 KiB message cap), and a frame
/// header declaring 200 KiB followed by silence. The relay closes each
/// connection (the last at its handshake deadline), and then still
/// serves a real node over WebSocket.
pub async fn websocket_garbage_is_closed(rt: Arc<dyn Runtime>) {
    use futures::io::AsyncWriteExt;
    let hk = key();
    let home_id = hk.public().to_peer_id();
    let mut ro = RelayOptions::new(key());
    ro.listen = vec!["/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()];
    ro.authorized_keys = doc(&[home_id]);
    ro.transport.quic = false;
    ro.transport.inbound_upgrade_timeout = std::time::Duration::from_secs(2);
    let relay = Relay::start(rt.clone(), ro).await.unwrap();
    let ws = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::Ws(_))))
        .unwrap();
    let port = ws
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    let at: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    // A masked binary frame header (client frames are masked) declaring
    // `len` bytes, with no payload.
    let header = |len: u64| {
        let mut h = vec![0x82, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    };

    // Headers that never end.
    let mut s = rt.tcp_connect(at).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let filler = format!("X-Filler: {}\r\n", "a".repeat(1000));
    for _ in 0..16 {
        if s.write_all(filler.as_bytes()).await.is_err() {
            break;
        }
    }
    let answer = until_closed(&rt, &mut s).await;
    assert!(
        !answer.starts_with(b"HTTP/1.1 101"),
        "upgraded an endless request"
    );

    for (declared, what) in [
        (100u64 << 20, "100 MiB"),
        (200 << 10, "200 KiB, then silence"),
    ] {
        let mut s = rt.tcp_connect(at).await.unwrap();
        s.write_all(upgrade.as_bytes()).await.unwrap();
        // The 101 answer first, then the frame header.
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut b = [0u8; 512];
            let n = futures::io::AsyncReadExt::read(&mut s, &mut b)
                .await
                .unwrap();
            assert!(n > 0, "closed before answering the upgrade");
            seen.extend_from_slice(&b[..n]);
        }
        assert!(
            seen.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        let _ = s.write_all(&header(declared)).await;
        until_closed(&rt, &mut s).await;
        eprintln!("a frame header declaring {what}: closed");
    }

    // The relay still serves a real node over WebSocket.
    let home = start_reserved(
        &rt,
        NodeOptions::new(hk)
            .with_listen(vec![])
            .with_relays(vec![RelayAddr::new(ws).unwrap()])
            .with_authorized_keys(doc(&[]), None),
    )
    .await;
    home.shutdown().await;
    relay.shutdown().await;
}
