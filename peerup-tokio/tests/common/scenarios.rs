//! The scenarios themselves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use peerup_core::authz::ServiceRule;
use peerup_core::wire::label::DnsLabel;
use peerup_core::wire::pingpong::Path;
use peerup_net::node::Node;
use peerup_net::runtime::Runtime;

use super::*;

fn label(s: &str) -> DnsLabel {
    DnsLabel::new(s).unwrap()
}

fn open() -> ServiceRule {
    ServiceRule {
        enabled: true,
        allowed_peers: None,
    }
}

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
        .with_service(label("data"), svc.addr.to_string(), open());
    let home = start_reserved(&rt, home_opts).await;
    let laptop = Node::start(
        rt.clone(),
        node_options(&rt, lk, &relay, &[home_id]).with_listen(vec![]),
    )
    .await
    .unwrap();

    let stream = laptop.open_service(home_id, "data").await.unwrap();
    assert_eq!(stream.path(), Path::Relayed);
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
