//! Persistent forwards (`forwards:`, `peerup proxy --persist`): a local
//! port kept by a daemon-like node across the restarts of either side,
//! reaching a peer's echo service through an in-process relay on
//! 127.0.0.1 (relay circuits only: neither node listens directly, so the
//! path that comes back is the one a NATed machine has).
//!
//! What is shown: a connection through the forward reaches the service;
//! while the serving peer is down a local connection is closed (reset or
//! EOF) instead of hanging, and nothing is left open; once the peer is
//! back (same identity, a new reservation) the next local connection works
//! through the same forward; and a restarted forwarding node listens on
//! the same port again. Every wait is on an event or a socket, bounded by
//! a limit that only fires when something is broken; nothing asserts how
//! long a step took.

use peerup_test_kit as common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use peerup_net::Event;
use peerup_net::libp2p::PeerId;
use peerup_net::libp2p::identity::Keypair;
use peerup_net::node::service::OpenServiceError;
use peerup_net::node::{Forwarder, Node};
use peerup_net::runtime::Runtime;
use peerup_relay::Relay;
use peerup_tokio::TokioRuntime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

/// An echo service on 127.0.0.1.
async fn echo() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// The serving peer ("home"): relay-only, reserved, exposing `echo`.
async fn home(
    rt: &Arc<dyn Runtime>,
    key: Keypair,
    relay: &Relay,
    laptop: PeerId,
    svc: SocketAddr,
) -> Node {
    start_reserved(
        rt,
        node_options(rt, key, relay, &[laptop])
            .with_listen(vec![])
            .with_service(label("echo"), svc.to_string(), open())
            .unwrap(),
    )
    .await
}

/// The forwarding node ("laptop", the daemon's role): relay-only client.
async fn laptop(rt: &Arc<dyn Runtime>, key: Keypair, relay: &Relay, home: PeerId) -> Node {
    Node::start(
        rt.clone(),
        node_options(rt, key, relay, &[home]).with_listen(vec![]),
    )
    .await
    .unwrap()
}

/// Sends `data` through the forward, half-closes, reads the echo.
async fn through(port: u16, data: &[u8]) -> Vec<u8> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(data).await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        back
    };
    tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("the forward did not answer")
}

/// A local connection while the peer is unreachable: accepted, then
/// closed by the forward (reset or EOF, never data), instead of hanging.
async fn closed_while_down(port: u16) {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        // What a client sends first (an SSH banner, say) goes nowhere.
        let _ = s.write_all(b"SSH-2.0-test\r\n").await;
        let mut buf = [0u8; 64];
        s.read(&mut buf).await
    };
    match tokio::time::timeout(LIMIT, attempt).await {
        Ok(Ok(0) | Err(_)) => {}
        Ok(Ok(n)) => panic!("got {n} bytes from a peer that is down"),
        Err(_) => panic!("the local connection hung while the peer was down"),
    }
}

/// Waits until the forwarder holds no connection.
async fn idle(rt: &Arc<dyn Runtime>, f: &Forwarder) {
    let done = rt
        .timeout(LIMIT, async {
            while f.open_connections() > 0 {
                rt.sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    assert!(
        done.is_some(),
        "{} connection(s) left open",
        f.open_connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_forward_survives_restarts_of_either_side() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let svc = echo().await;
    let home1 = home(&rt, hk.clone(), &relay, laptop_id, svc).await;
    let node = laptop(&rt, lk.clone(), &relay, home_id).await;
    let forward = node
        .forward("127.0.0.1:0".parse().unwrap(), home_id, "echo")
        .await
        .unwrap();
    let port = forward.local_addr().port();

    // Through the forward, over a relay circuit.
    assert_eq!(through(port, b"first").await, b"first");
    idle(&rt, &forward).await;

    // The serving peer stops: the forwarding node sees it go...
    let mut events = node.events();
    home1.shutdown().await;
    if node.path(home_id).is_some() {
        wait_for(
            &rt,
            &mut events,
            "home's connection to end",
            |e| matches!(e, Event::Disconnected { peer, remaining: 0 } if *peer == home_id),
        )
        .await;
    }
    // ...and a local connection meanwhile is closed, not left hanging,
    // and leaves nothing open behind it.
    closed_while_down(port).await;
    idle(&rt, &forward).await;

    // Home comes back with the same identity (a new reservation, new
    // ports): the next local connection reaches it through the same
    // forward, with no reconnect loop of the forward's own.
    let home2 = home(&rt, hk.clone(), &relay, laptop_id, svc).await;
    assert_eq!(through(port, b"second").await, b"second");
    idle(&rt, &forward).await;

    // The forwarding side restarts (the daemon's restart): the same
    // identity listens on the same port again, and it works.
    drop(forward);
    node.shutdown().await;
    let node = laptop(&rt, lk, &relay, home_id).await;
    let bind: SocketAddr = ([127, 0, 0, 1], port).into();
    let forward = node.forward(bind, home_id, "echo").await.unwrap();
    assert_eq!(forward.local_addr(), bind);
    assert_eq!(through(port, b"third").await, b"third");

    drop(forward);
    node.shutdown().await;
    home2.shutdown().await;
    relay.shutdown().await;
}

/// A peer that is not there: opening its service within a deadline gives
/// up at the deadline, saying so, before its retries run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_service_within_a_deadline_gives_up_at_it() {
    let rt = rt();
    let (ak, lk) = (key(), key());
    let (absent, laptop_id) = (ak.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[absent, laptop_id]).await;
    let node = laptop(&rt, lk, &relay, absent).await;
    match node
        .open_service_within(absent, "echo", Duration::from_secs(3))
        .await
    {
        Err(OpenServiceError::Failed { last, .. }) => {
            assert!(last.contains("gave up after 3s"), "{last}");
        }
        other => panic!("expected a failure at the deadline, got {other:?}"),
    }
    node.shutdown().await;
    relay.shutdown().await;
}

/// A forward closed with `close` has let go of its port when `close`
/// returns: the daemon moves a forward, or changes one in place, by
/// closing it and listening again at once. On one thread, so that the
/// accept task cannot drop its socket behind `close`'s back: `close`
/// must wait for it.
#[tokio::test(flavor = "current_thread")]
async fn a_closed_forward_frees_its_port_at_once() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let svc = echo().await;
    let home = home(&rt, hk, &relay, laptop_id, svc).await;
    let node = laptop(&rt, lk, &relay, home_id).await;
    let mut forward = node
        .forward("127.0.0.1:0".parse().unwrap(), home_id, "echo")
        .await
        .unwrap();
    let bind = forward.local_addr();
    // While it listens, its port is taken.
    assert!(node.forward(bind, home_id, "echo").await.is_err());
    for round in 0..20 {
        forward.close().await;
        forward = match node.forward(bind, home_id, "echo").await {
            Ok(f) => f,
            Err(e) => panic!("round {round}: the port is still taken: {e}"),
        };
    }
    assert_eq!(through(bind.port(), b"moved").await, b"moved");
    drop(forward);
    node.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}
