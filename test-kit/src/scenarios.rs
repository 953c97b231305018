//! The scenarios themselves.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_net::libp2p::Multiaddr;
use peerup_net::node::NodeOptions;

use peerup_core::wire::ConnectionPath;
use peerup_net::node::Node;
use peerup_net::runtime::Runtime;

use super::*;

/// A server holding a reservation, reached by a client through
/// `/p2p-circuit` only, proxies a TCP service: 64 MiB each way at once,
/// checksums match, and the client's half-close still lets the rest of
/// the reply through.
pub async fn relayed_proxy_64mib_with_half_close(rt: Arc<dyn Runtime>) {
    const LEN: usize = 64 << 20;
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let svc = start_service(&rt, LEN).await;
    // No listen addresses: the only path is the relay circuit.
    let home_opts = node_options(&rt, hk, &relay, &[laptop_id])
        .with_listen(vec![])
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    let laptop = Node::start(
        rt.clone(),
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();

    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let send = pattern(1, LEN);
    let (reply, digest) = exchange(stream, &send).await;
    assert_eq!(reply.len(), LEN);
    assert_eq!(sha(&reply), sha(&pattern(2, LEN)), "reply corrupted");
    assert_eq!(digest, sha(&send), "request corrupted");
    assert_eq!(svc.bytes.load(Ordering::SeqCst), LEN as u64);
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// An unauthorized client is refused at the connection level, relayed and
/// direct, and not a single byte (nor a connection) reaches the service.
pub async fn unauthorized_peer_is_denied(rt: Arc<dyn Runtime>) {
    let (hk, sk) = (key(), key());
    let (home_id, stranger_id) = (hk.public().to_peer_id(), sk.public().to_peer_id());
    // The relay lets both in; only home's own gate decides.
    let relay = start_relay(&rt, &[home_id, stranger_id]).await;
    let svc = start_service(&rt, 1024).await;
    let home_opts = node_options(&rt, hk, &relay, &[])
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    let mut home_events = home.events();

    // Relayed: the stranger has only the circuit.
    let stranger = Node::start(
        rt.clone(),
        node_options(&rt, sk.clone(), &relay, &[]).with_listen(vec![]),
    )
    .await
    .unwrap();
    let err = stranger.open_service(home_id, "data").await.unwrap_err();
    eprintln!("relayed attempt refused: {err}");
    wait_for(
        &rt,
        &mut home_events,
        "a denial of the stranger",
        |e| matches!(e, peerup_net::Event::Denied { peer, .. } if *peer == stranger_id),
    )
    .await;
    stranger.shutdown().await;

    // Direct: the stranger knows home's listen addresses, no relay.
    let mut o = NodeOptions::new(sk)
        .with_listen(vec![])
        .with_authorized_keys(doc(&[]), None);
    o.transport.quic = rt.name() == "tokio";
    let stranger = Node::start(rt.clone(), o).await.unwrap();
    let direct: Vec<Multiaddr> = home
        .listen_addrs()
        .into_iter()
        .filter(|a| !a.to_string().contains("p2p-circuit"))
        .collect();
    stranger.add_addresses(home_id, direct);
    let err = stranger.open_service(home_id, "data").await.unwrap_err();
    eprintln!("direct attempt refused: {err}");
    assert!(!home.is_authorized(&stranger_id));
    assert_eq!(
        svc.connections.load(Ordering::SeqCst),
        0,
        "a connection reached the service"
    );
    assert_eq!(
        svc.bytes.load(Ordering::SeqCst),
        0,
        "bytes reached the service"
    );
    stranger.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Removing a peer from authorized_keys closes its live proxied stream at
/// once (within 1 s), without restarting the node.
pub async fn revocation_closes_live_streams(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    // A service that sends nothing and waits for the client's EOF.
    let mut svc = start_service(&rt, 0).await;
    let home_opts = node_options(&rt, hk, &relay, &[laptop_id])
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    stream.flush().await.unwrap();
    // The bytes are through: the stream is live end to end.
    svc.received(&rt, 5).await;
    let start = rt.now();
    let change = home.reload_authorized_keys(&doc(&[]));
    // `revoked` lists the connections the node's event loop has recorded,
    // and the laptop's may not be yet (its stream can be served first);
    // `removed` always names it, and both are disconnected. The stream's
    // end below is what counts.
    assert!(change.removed.contains(&laptop_id), "{change:?}");
    let mut buf = [0u8; 16];
    let ended = rt
        .timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await;
    let took = rt.now() - start;
    eprintln!("revoked stream ended after {took:?}: {ended:?}");
    assert!(
        matches!(ended, Some(Err(_)) | Some(Ok(0))),
        "stream still open: {ended:?}"
    );
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
    assert!(!home.is_authorized(&laptop_id));
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

fn only(addrs: Vec<Multiaddr>, transport: &str) -> Vec<Multiaddr> {
    addrs
        .into_iter()
        .filter(|a| {
            let s = a.to_string();
            !s.contains("p2p-circuit") && s.contains(transport)
        })
        .collect()
}

/// Direct connections over each transport the runtime has (TCP, and QUIC
/// on tokio): the proxy and ping report DIRECT; through the relay only,
/// ping reports RELAYED.
pub async fn direct_and_relayed_paths(rt: Arc<dyn Runtime>) {
    let transports: &[&str] = if rt.name() == "tokio" {
        &["/tcp/", "/quic-v1"]
    } else {
        &["/tcp/"]
    };
    for transport in transports {
        let (hk, lk) = (key(), key());
        let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
        let svc = start_service(&rt, 4096).await;
        let mut ho = NodeOptions::new(hk)
            .with_listen(only(loopback(rt.name() == "tokio"), transport))
            .with_authorized_keys(doc(&[laptop_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap();
        ho.transport.quic = rt.name() == "tokio";
        let home = Node::start(rt.clone(), ho).await.unwrap();
        let mut lo = NodeOptions::new(lk)
            .with_listen(vec![])
            .with_authorized_keys(doc(&[home_id]), None);
        lo.transport.quic = rt.name() == "tokio";
        let laptop = Node::start(rt.clone(), lo).await.unwrap();
        laptop.add_addresses(home_id, only(home.listen_addrs(), transport));
        let stream = laptop.open_service(home_id, "data").await.unwrap();
        assert_eq!(stream.path(), ConnectionPath::Direct, "{transport}");
        let (reply, _) = exchange(stream, b"over the direct path").await;
        assert_eq!(reply.len(), 4096);
        let remote = laptop.status().peers[&home_id].connections[0]
            .remote
            .to_string();
        assert!(
            remote.contains(transport.trim_end_matches('/')),
            "{transport}: connected via {remote}"
        );
        let reply = laptop.ping(home_id).await.unwrap();
        assert_eq!(reply.path, ConnectionPath::Direct);
        eprintln!("{transport} direct ping rtt {:?}", reply.rtt);
        laptop.shutdown().await;
        home.shutdown().await;
    }
    // Relayed only: neither side listens, so no hole punch is possible.
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
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
    let reply = laptop.ping(home_id).await.unwrap();
    assert_eq!(reply.path, ConnectionPath::Relayed);
    eprintln!("relayed ping rtt {:?}", reply.rtt);
    // And the other way round, over the same circuit.
    assert_eq!(
        home.ping(laptop_id).await.unwrap().path,
        ConnectionPath::Relayed
    );
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// A peer found through the DHT by its peer ID alone: the client has no
/// relay configured, only the relay as DHT bootstrap node.
pub async fn peer_found_through_the_dht(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[laptop_id])).await;
    let mut lo = node_options(&rt, lk, &relay, &[home_id]);
    lo.relays = Vec::new();
    assert_eq!(lo.bootstrap.len(), 1);
    let laptop = Node::start(rt.clone(), lo).await.unwrap();
    let path = laptop.connect(home_id).await.unwrap();
    eprintln!("found home through the DHT; path {path}");
    assert!(laptop.status().peers.contains_key(&home_id));
    assert!(laptop.ping(home_id).await.is_ok());
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Invite and join through the relay: both sides' authorized_keys and
/// names are updated on disk, and the same code fails a second time.
pub async fn invite_and_join_through_the_relay(rt: Arc<dyn Runtime>) {
    use peerup_core::invite::InviteCode;
    use peerup_core::naming::Name;
    use peerup_net::node::invite::InviteOptions;

    let (home_dir, laptop_dir, other_dir) =
        (temp_dir("home"), temp_dir("laptop"), temp_dir("other"));
    // The relay must know the machines' keys (relay gating): create them.
    let (home_key, laptop_key, other_key) = (
        peerup_net::node::load_or_create_identity(&home_dir.join("identity.key")).unwrap(),
        peerup_net::node::load_or_create_identity(&laptop_dir.join("identity.key")).unwrap(),
        peerup_net::node::load_or_create_identity(&other_dir.join("identity.key")).unwrap(),
    );
    let ids: Vec<_> = [&home_key, &laptop_key, &other_key]
        .iter()
        .map(|k| k.public().to_peer_id())
        .collect();
    let (home_id, laptop_id, other_id) = (ids[0], ids[1], ids[2]);
    let relay = start_relay(&rt, &ids).await;
    let home_cfg = write_config(&home_dir, &relay);
    let laptop_cfg = write_config(&laptop_dir, &relay);
    let other_cfg = write_config(&other_dir, &relay);
    let home = start_reserved(&rt, options_from_config(&rt, &home_cfg)).await;
    let laptop = Node::start(rt.clone(), options_from_config(&rt, &laptop_cfg))
        .await
        .unwrap();
    assert!(!home.is_authorized(&laptop_id));

    let invite = home
        .invite(InviteOptions {
            name: Some(Name::new("home").unwrap()),
            ..InviteOptions::default()
        })
        .unwrap();
    let text = invite.code_text().to_owned();
    let code = InviteCode::decode(&text).unwrap();
    let joined = laptop
        .join(&code, Some(Name::new("laptop").unwrap()))
        .await
        .unwrap();
    assert_eq!(joined.peer, home_id);
    assert_eq!(joined.name.as_ref().map(Name::as_str), Some("home"));
    let paired = rt.timeout(LIMIT, invite.wait()).await.unwrap().unwrap();
    assert_eq!(paired.peer, laptop_id);
    assert_eq!(paired.name.as_ref().map(Name::as_str), Some("laptop"));

    // On disk, both sides.
    let home_keys = std::fs::read_to_string(home_dir.join("authorized_keys")).unwrap();
    let laptop_keys = std::fs::read_to_string(laptop_dir.join("authorized_keys")).unwrap();
    assert!(
        home_keys.contains(&format!("{laptop_id}  # laptop")),
        "{home_keys}"
    );
    assert!(
        laptop_keys.contains(&format!("{home_id}  # home")),
        "{laptop_keys}"
    );
    let parse = |p: &std::path::Path| {
        let text = std::fs::read_to_string(p).unwrap();
        peerup_core::config::Config::parse(p, &text).unwrap().0
    };
    assert_eq!(parse(&home_cfg).names.get("laptop"), Some(laptop_id));
    assert_eq!(parse(&laptop_cfg).names.get("home"), Some(home_id));
    // Live: each side now authorizes the other and resolves its name.
    assert!(home.is_authorized(&laptop_id) && laptop.is_authorized(&home_id));
    assert_eq!(laptop.resolve("home").unwrap(), home_id);
    assert!(laptop.ping(home_id).await.is_ok());

    // The same code, a second time, from another machine: refused, and
    // nothing about it is saved.
    let other = Node::start(rt.clone(), options_from_config(&rt, &other_cfg))
        .await
        .unwrap();
    let err = other
        .join(&code, Some(Name::new("intruder").unwrap()))
        .await
        .unwrap_err();
    eprintln!("second join refused: {err}");
    assert!(!home.is_authorized(&other_id));
    let home_keys = std::fs::read_to_string(home_dir.join("authorized_keys")).unwrap();
    assert!(!home_keys.contains(&other_id.to_string()));
    assert_eq!(parse(&home_cfg).names.get("intruder"), None);
    other.shutdown().await;
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
    for d in [home_dir, laptop_dir, other_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `peerup proxy`: a local TCP port forwards each accepted connection to
/// the peer's service; status lists the proxied connection while it runs.
pub async fn tcp_forwarder(rt: Arc<dyn Runtime>) {
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let mut svc = start_service(&rt, 1 << 20).await;
    let home_opts = node_options(&rt, hk, &relay, &[laptop_id])
        .with_service(label("web"), svc.addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let fwd = laptop
        .forward("127.0.0.1:0".parse().unwrap(), home_id, "web")
        .await
        .unwrap();
    for round in 0..3u64 {
        let tcp = rt.tcp_connect(fwd.local_addr()).await.unwrap();
        let mut tcp = tcp;
        tcp.write_all(b"x").await.unwrap();
        tcp.flush().await.unwrap();
        svc.received(&rt, round + 1).await;
        assert_eq!(laptop.status().proxies.len(), 1, "round {round}");
        assert_eq!(home.status().proxies.len(), 1, "round {round}");
        let (reply, digest) = exchange(tcp, b"").await;
        assert_eq!(reply.len(), 1 << 20);
        assert_eq!(sha(&reply), sha(&pattern(2, 1 << 20)));
        assert_eq!(digest, sha(b"x"));
    }
    assert_eq!(svc.connections.load(Ordering::SeqCst), 3);
    fwd.stop();
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// A relay that answers reservations with no address (a plain libp2p
/// relay without an external address, as a go-libp2p relay without a
/// public address answers; WIRE.md §17): the node's reservation holds
/// anyway, its circuit address is the relay address it dialed plus
/// `/p2p-circuit`, `status` shows it, and a second node reaches the first
/// through the circuit.
pub async fn reservation_without_addresses_uses_dialed_address(rt: Arc<dyn Runtime>) {
    use peerup_core::relay_addr::RelayAddr;
    use peerup_net::Event;
    use peerup_net::libp2p::multiaddr::Protocol;

    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = hop::BareRelay::start(&rt).await;
    let options = |k, peer| {
        let mut o = NodeOptions::new(k)
            .with_listen(vec![])
            .with_relays(vec![RelayAddr::new(relay.addr.clone()).unwrap()])
            .with_authorized_keys(doc(&[peer]), None);
        o.transport.quic = false;
        o
    };
    let svc = start_service(&rt, 4096).await;
    let home = Node::start(
        rt.clone(),
        options(hk, laptop_id)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await
    .unwrap();
    let mut events = home.events();
    // The first outcome: a circuit address, or the reservation lost
    // (what the unpatched relay client makes of the empty answer).
    let outcome = rt
        .timeout(LIMIT, async {
            while let Some(e) = events.next().await {
                match e {
                    Event::Listening { addr } if addr.iter().any(|p| p == Protocol::P2pCircuit) => {
                        return Ok(addr);
                    }
                    Event::ReservationLost { error, .. } => return Err(error),
                    _ => {}
                }
            }
            Err("event stream ended".to_owned())
        })
        .await
        .expect("timed out waiting for the reservation");
    let circuit = match outcome {
        Ok(addr) => addr,
        Err(error) => panic!("reservation lost: {error}"),
    };
    let expected = relay
        .addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(home_id));
    assert_eq!(circuit, expected);
    let state = home.status().relays[&relay.peer_id].clone();
    assert!(state.reserved, "{state:?}");
    assert_eq!(state.circuit_addr, Some(expected));

    let laptop = Node::start(rt.clone(), options(lk, home_id)).await.unwrap();
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let (reply, digest) = exchange(stream, b"through an address-less relay").await;
    assert_eq!(reply, pattern(2, 4096));
    assert_eq!(digest, sha(b"through an address-less relay"));
    laptop.shutdown().await;
    home.shutdown().await;
}

/// A peerup relay with no confirmed external address announces the
/// addresses it listens on in its reservation answers (WIRE.md §17), as a
/// client reads them off the wire: on loopback, its loopback address; on
/// the wildcard, the interface addresses of the widest reach (never the
/// wildcard, and loopback only on a host with nothing else).
pub async fn relay_announces_its_listen_addresses(rt: Arc<dyn Runtime>) {
    use peerup_net::libp2p::multiaddr::Protocol;

    let client = key();
    let client_id = client.public().to_peer_id();
    let relay = start_relay(&rt, &[client_id]).await;
    let answer = hop::reserve(&rt, &client, relay_addr(&relay).multiaddr()).await;
    assert!(!answer.is_empty(), "empty reservation answer");
    assert_eq!(answer, relay.full_addrs());
    relay.shutdown().await;

    let mut o = peerup_relay::RelayOptions::new(key());
    o.listen = vec!["/ip4/0.0.0.0/tcp/0".parse().unwrap()];
    o.authorized_keys = doc(&[client_id]);
    o.transport.quic = false;
    let relay = Relay::start(rt.clone(), o).await.unwrap();
    // Start returns with the first address; the others follow: wait until
    // every IPv4 address of the host's interfaces is reported.
    let host: Vec<std::net::Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap()
        .iter()
        .filter_map(|i| match i.ip() {
            std::net::IpAddr::V4(ip) => Some(ip),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    let mut events = relay.events();
    let reported = rt
        .timeout(LIMIT, async {
            loop {
                let all = relay.full_addrs();
                if host.iter().all(|ip| {
                    all.iter()
                        .any(|a| a.iter().any(|p| p == Protocol::Ip4(*ip)))
                }) {
                    return all;
                }
                events.next().await.expect("relay events");
            }
        })
        .await;
    let all = reported.expect("the relay reports every interface address");
    let dial = all
        .iter()
        .find(|a| a.iter().any(|p| p == Protocol::Ip4([127, 0, 0, 1].into())))
        .expect("a wildcard listener reports 127.0.0.1")
        .clone();
    let answer = hop::reserve(&rt, &client, &dial).await;
    eprintln!("a wildcard relay announces {answer:?} of {all:?}");
    assert!(!answer.is_empty(), "empty reservation answer");
    let is_loopback = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback(),
            Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    for a in &answer {
        assert!(all.contains(a), "{a} is not one of {all:?}");
        assert!(
            !is_loopback(a) || all.iter().all(is_loopback),
            "loopback {a} announced beside {all:?}"
        );
    }
    relay.shutdown().await;
}

/// The path to a peer as a fresh client sees it: the first connection goes
/// through the relay (the client knows the peer only by its circuit: the
/// relay serves no DHT and there is no LAN discovery), then the hole punch
/// (DCUtR, both on loopback, so it succeeds) adds a direct connection, and
/// [`peerup_net::node::PathWatch`] reports it with the time it took; new
/// pings take it. Where neither side listens, no hole punch can succeed,
/// and the watch says the path did not change.
pub async fn path_watch_sees_the_hole_punch(rt: Arc<dyn Runtime>) {
    let (hk, lk, hk2, lk2) = (key(), key(), key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let (home2, laptop2) = (hk2.public().to_peer_id(), lk2.public().to_peer_id());
    let mut ro = RelayOptions::new(key());
    ro.listen = loopback(false);
    ro.authorized_keys = doc(&[home_id, laptop_id, home2, laptop2]);
    ro.kad_protocol = "/peerup-test/no-dht/1.0.0".to_owned();
    let relay = Relay::start(rt.clone(), ro).await.unwrap();
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[laptop_id])).await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let mut watch = laptop.watch_path(home_id);
    assert_eq!(
        laptop.connect(home_id).await.unwrap(),
        ConnectionPath::Relayed
    );
    match watch.wait_direct(LIMIT).await {
        peerup_net::node::PathChange::Direct { after: Some(after) } => {
            eprintln!("relayed -> direct after {after:?}");
        }
        other => panic!("expected the hole punch's direct connection, got {other:?}"),
    }
    assert_eq!(laptop.path(home_id), Some(ConnectionPath::Direct));
    assert_eq!(
        laptop.ping(home_id).await.unwrap().path,
        ConnectionPath::Direct
    );
    // Once reported, the watch answers at once from the path.
    assert_eq!(
        watch.wait_direct(LIMIT).await,
        peerup_net::node::PathChange::Direct { after: None }
    );
    laptop.shutdown().await;
    home.shutdown().await;

    // Neither side listens: the path stays relayed, and the watch says so
    // when its wait ends (or the hole punch's failure, if that comes first).
    let (hk, lk, home_id, laptop_id) = (hk2, lk2, home2, laptop2);
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
    let mut watch = laptop.watch_path(home_id);
    assert_eq!(
        laptop.connect(home_id).await.unwrap(),
        ConnectionPath::Relayed
    );
    match watch.wait_direct(Duration::from_secs(2)).await {
        peerup_net::node::PathChange::NoChange { .. }
        | peerup_net::node::PathChange::HolePunchFailed { .. } => {}
        other => panic!("no hole punch can succeed here, got {other:?}"),
    }
    assert_eq!(laptop.path(home_id), Some(ConnectionPath::Relayed));
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// `Node::probe` and `Node::reserve_on` (what `peerup doctor` stands on):
/// a probe of the relay's address is a connection of its own, reporting
/// its connect time, libp2p ping's round trip, identify's observed address
/// (our own, on loopback) and the relay's agent; the relay grants a
/// reservation asked of it alone; a machine the relay does not authorize
/// sees its probe closed at once (`ClosedAtOnce`) and gets no
/// reservation; an address without `/p2p/` is refused before any dial.
pub async fn probe_and_reserve_on_one_relay(rt: Arc<dyn Runtime>) {
    use peerup_net::node::ProbeError;
    let (ak, sk) = (key(), key());
    let relay = start_relay(&rt, &[ak.public().to_peer_id()]).await;
    let addr = relay_addr(&relay);
    let a = Node::start(
        rt.clone(),
        node_options(&rt, ak, &relay, &[]).with_reservations(false),
    )
    .await
    .unwrap();
    let p = a.probe(addr.multiaddr().clone(), LIMIT).await.unwrap();
    assert!(p.rtt.is_some(), "{p:?}");
    assert!(p.agent.starts_with("relay"), "{p:?}");
    let observed = p.observed.clone().unwrap().to_string();
    assert!(observed.starts_with("/ip4/127.0.0.1/tcp/"), "{observed}");
    // A second probe is a second connection, not the first one reused.
    let q = a.probe(addr.multiaddr().clone(), LIMIT).await.unwrap();
    assert_ne!(p.connection, q.connection);
    let circuit = a.reserve_on(&addr, LIMIT).await.unwrap();
    assert!(circuit.to_string().contains("/p2p-circuit"), "{circuit}");

    let stranger = Node::start(
        rt.clone(),
        node_options(&rt, sk, &relay, &[]).with_reservations(false),
    )
    .await
    .unwrap();
    match stranger.probe(addr.multiaddr().clone(), LIMIT).await {
        Err(ProbeError::ClosedAtOnce { .. }) => {}
        other => panic!("a stranger's probe: {other:?}"),
    }
    assert!(
        stranger
            .reserve_on(&addr, Duration::from_secs(10))
            .await
            .is_err()
    );
    assert!(matches!(
        stranger.probe(addr.transport(), LIMIT).await,
        Err(ProbeError::NoPeerId(_))
    ));
    stranger.shutdown().await;
    a.shutdown().await;
    relay.shutdown().await;
}
