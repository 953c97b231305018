//! A tokio node and an async-std node talking to each other, through a
//! relay on either runtime and directly over TCP each way. The tokio side
//! runs on a tokio runtime of its own threads; the test itself runs on
//! async-std, and every call into a tokio node is made on a tokio thread
//! (tokio timers need their runtime's context).

use peerup_test_kit as common;
mod support;

use std::sync::atomic::Ordering;

use common::*;
use peerup_core::wire::ConnectionPath;
use peerup_net::node::{Node, NodeOptions};
use support::{Tokio, rt};

/// The relay and the server on tokio; the client on async-std, through
/// the circuit only: 64 MiB each way at once with half-close, checksums
/// match.
#[async_std::test]
async fn relayed_64mib_from_async_std_to_tokio() {
    const LEN: usize = 64 << 20;
    let (art, tokio) = (rt(), Tokio::new());
    let trt = tokio.rt.clone();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let (relay, home, svc) = tokio
        .run(async move {
            let relay = start_relay(&trt, &[home_id, laptop_id]).await;
            let svc = start_service(&trt, LEN).await;
            let o = node_options(&trt, hk, &relay, &[laptop_id])
                .with_listen(vec![])
                .with_service(label("data"), svc.addr.to_string(), open())
                .unwrap();
            let home = start_reserved(&trt, o).await;
            (relay, home, svc)
        })
        .await;
    // The async-std crate's own API.
    let laptop = peerup_async_std::Node::start(
        node_options(&art, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();
    assert_eq!(laptop.runtime().name(), "async-std");
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Relayed);
    let send = pattern(1, LEN);
    let (reply, digest) = exchange(stream, &send).await;
    assert_eq!(reply.len(), LEN);
    assert_eq!(sha(&reply), sha(&pattern(2, LEN)), "reply corrupted");
    assert_eq!(digest, sha(&send), "request corrupted");
    assert_eq!(svc.bytes.load(Ordering::SeqCst), LEN as u64);
    laptop.shutdown().await;
    tokio
        .run(async move {
            home.shutdown().await;
            relay.shutdown().await;
        })
        .await;
}

/// The other way round: the relay and the server on async-std, the client
/// on tokio.
#[async_std::test]
async fn relayed_from_tokio_to_async_std() {
    const LEN: usize = 16 << 20;
    let (art, tokio) = (rt(), Tokio::new());
    let trt = tokio.rt.clone();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&art, &[home_id, laptop_id]).await;
    let svc = start_service(&art, LEN).await;
    let home = start_reserved(
        &art,
        node_options(&art, hk, &relay, &[laptop_id])
            .with_listen(vec![])
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await;
    let laptop_opts = node_options(&trt, lk, &relay, &[home_id]).with_listen(vec![]);
    let (path, reply, digest) = tokio
        .run(async move {
            let laptop = Node::start(trt, laptop_opts).await.unwrap();
            let stream = laptop.open_service(home_id, "data").await.unwrap();
            let path = stream.path();
            let (reply, digest) = exchange(stream, &pattern(1, LEN)).await;
            assert_eq!(
                laptop.ping(home_id).await.unwrap().path,
                ConnectionPath::Relayed
            );
            laptop.shutdown().await;
            (path, reply, digest)
        })
        .await;
    assert_eq!(path, ConnectionPath::Relayed);
    assert_eq!(reply.len(), LEN);
    assert_eq!(sha(&reply), sha(&pattern(2, LEN)), "reply corrupted");
    assert_eq!(digest, sha(&pattern(1, LEN)), "request corrupted");
    home.shutdown().await;
    relay.shutdown().await;
}

/// Direct TCP, each runtime dialing the other's listener: the async-std
/// transport accepts a tokio dialer, and dials a tokio listener (skipping
/// its QUIC address, which it cannot dial). The dialing side never
/// listens, so each connection is the direction under test.
#[async_std::test]
async fn direct_tcp_both_ways() {
    let (art, tokio) = (rt(), Tokio::new());
    let trt = tokio.rt.clone();

    // tokio dials async-std.
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let svc = start_service(&art, 4096).await;
    let home = peerup_async_std::Node::start(
        NodeOptions::new(hk)
            .with_listen(loopback(false))
            .with_authorized_keys(doc(&[laptop_id]), None)
            .with_service(label("data"), svc.addr.to_string(), open())
            .unwrap(),
    )
    .await
    .unwrap();
    let home_addrs = home.listen_addrs();
    assert!(!home_addrs.is_empty());
    let t = trt.clone();
    tokio
        .run(async move {
            let laptop = Node::start(
                t,
                NodeOptions::new(lk)
                    .with_listen(vec![])
                    .with_authorized_keys(doc(&[home_id]), None),
            )
            .await
            .unwrap();
            laptop.add_addresses(home_id, home_addrs);
            let stream = laptop.open_service(home_id, "data").await.unwrap();
            assert_eq!(stream.path(), ConnectionPath::Direct);
            let (reply, digest) = exchange(stream, b"from tokio").await;
            assert_eq!(sha(&reply), sha(&pattern(2, 4096)));
            assert_eq!(digest, sha(b"from tokio"));
            assert_eq!(
                laptop.ping(home_id).await.unwrap().path,
                ConnectionPath::Direct
            );
            laptop.shutdown().await;
        })
        .await;
    home.shutdown().await;

    // async-std dials tokio, given every address of it, QUIC included.
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let t = trt.clone();
    let (home, home_addrs) = tokio
        .run(async move {
            let svc = start_service(&t, 4096).await;
            let home = Node::start(
                t,
                NodeOptions::new(hk)
                    .with_listen(loopback(true))
                    .with_authorized_keys(doc(&[laptop_id]), None)
                    .with_service(label("data"), svc.addr.to_string(), open())
                    .unwrap(),
            )
            .await
            .unwrap();
            let addrs = home.listen_addrs();
            (home, addrs)
        })
        .await;
    assert!(
        home_addrs
            .iter()
            .any(|a| a.to_string().contains("/quic-v1"))
    );
    let laptop = peerup_async_std::Node::start(
        NodeOptions::new(lk)
            .with_listen(vec![])
            .with_authorized_keys(doc(&[home_id]), None),
    )
    .await
    .unwrap();
    laptop.add_addresses(home_id, home_addrs);
    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), ConnectionPath::Direct);
    let (reply, digest) = exchange(stream, b"from async-std").await;
    assert_eq!(sha(&reply), sha(&pattern(2, 4096)));
    assert_eq!(digest, sha(b"from async-std"));
    let conns = laptop.status().peers[&home_id].connections.clone();
    assert!(
        !conns.is_empty() && conns.iter().all(|c| c.remote.to_string().contains("/tcp/")),
        "{conns:?}"
    );
    assert_eq!(
        laptop.ping(home_id).await.unwrap().path,
        ConnectionPath::Direct
    );
    laptop.shutdown().await;
    tokio.run(async move { home.shutdown().await }).await;
}
