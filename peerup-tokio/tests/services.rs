//! Services changed while the node runs (`peerup service ...` with a
//! daemon up): added, removed, disabled, re-enabled, narrowed with
//! `allowed_peers`, moved to another local address. Real nodes on
//! 127.0.0.1 (direct TCP); every wait is on an event or a stream, bounded
//! by a limit that only fires when something is broken.

use peerup_test_kit as common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::*;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_core::authz::ServiceRule;
use peerup_net::Event;
use peerup_net::libp2p::PeerId;
use peerup_net::libp2p::identity::Keypair;
use peerup_net::node::service::{OpenServiceError, ServiceStream};
use peerup_net::node::{Node, NodeOptions, ServiceRuleError, ServiceSpec};
use peerup_net::runtime::Runtime;
use peerup_tokio::TokioRuntime;

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

/// A serving node on loopback TCP, authorizing `peers`, with `services`.
async fn home(
    rt: &Arc<dyn Runtime>,
    key: Keypair,
    peers: &[PeerId],
    services: &[(&str, &Service, ServiceRule)],
) -> Node {
    let mut o = NodeOptions::new(key)
        .with_listen(loopback(false))
        .with_authorized_keys(doc(peers), None);
    o.transport.quic = false;
    for (name, svc, rule) in services {
        o = o
            .with_service(*name, svc.addr.to_string(), rule.clone())
            .unwrap();
    }
    Node::start(rt.clone(), o).await.unwrap()
}

/// A client node that only dials out, knowing `home`'s addresses.
async fn client(rt: &Arc<dyn Runtime>, key: Keypair, home: &Node) -> Node {
    let mut o = NodeOptions::new(key)
        .with_listen(vec![])
        .with_authorized_keys(doc(&[home.peer_id()]), None);
    o.transport.quic = false;
    let node = Node::start(rt.clone(), o).await.unwrap();
    node.add_addresses(home.peer_id(), home.listen_addrs());
    node
}

fn spec(svc: &Service, rule: ServiceRule) -> ServiceSpec {
    ServiceSpec {
        local: svc.addr.to_string().parse().unwrap(),
        rule,
    }
}

fn only(peers: &[PeerId]) -> ServiceRule {
    ServiceRule {
        enabled: true,
        allowed_peers: Some(peers.iter().copied().collect::<BTreeSet<_>>()),
    }
}

fn disabled() -> ServiceRule {
    ServiceRule {
        enabled: false,
        allowed_peers: None,
    }
}

/// Opens `service` on `home` and has `n` bytes reach the local service.
async fn open_and_send(
    rt: &Arc<dyn Runtime>,
    from: &Node,
    home: &Node,
    svc: &mut Service,
    n: u64,
) -> ServiceStream {
    let before = svc.bytes.load(Ordering::SeqCst);
    let mut stream = from.open_service(home.peer_id(), "data").await.unwrap();
    stream.write_all(&vec![7u8; n as usize]).await.unwrap();
    stream.flush().await.unwrap();
    svc.received(rt, before + n).await;
    stream
}

/// The stream has been cut: a read ends (reset or EOF) instead of waiting.
async fn assert_cut(rt: &Arc<dyn Runtime>, stream: &mut ServiceStream, what: &str) {
    let mut buf = [0u8; 64];
    let ended = rt.timeout(LIMIT, stream.read(&mut buf)).await;
    assert!(
        matches!(ended, Some(Err(_)) | Some(Ok(0))),
        "{what}: stream still open: {ended:?}"
    );
}

/// A stream the server takes and then refuses: the refusal is logged as
/// `DENIED` with `reason`, and the stream ends without reaching the
/// local service.
async fn assert_refused(
    rt: &Arc<dyn Runtime>,
    from: &Node,
    home: &Node,
    svc: &Service,
    reason: &str,
) {
    let connections = svc.connections.load(Ordering::SeqCst);
    let mut events = home.events();
    let mut stream = from.open_service(home.peer_id(), "data").await.unwrap();
    let _ = stream.write_all(b"let me in").await;
    wait_for(rt, &mut events, reason, |e| {
        matches!(e, Event::Denied { peer, reason: r } if *peer == from.peer_id() && r.contains(reason))
    })
    .await;
    assert_cut(rt, &mut stream, reason).await;
    assert_eq!(svc.connections.load(Ordering::SeqCst), connections);
}

async fn assert_unknown(from: &Node, home: &Node) {
    match from.open_service(home.peer_id(), "data").await {
        Err(OpenServiceError::UnknownService { service, .. }) => assert_eq!(service, "data"),
        other => panic!("expected an unknown service, got {other:?}"),
    }
}

/// Added while running: reachable at once. Moved to another local
/// address: new streams reach the new one, the open one is cut. Removed:
/// its open stream is cut and the next open hears "no such service".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_added_live_is_reachable_and_removed_one_is_refused() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let laptop_id = lk.public().to_peer_id();
    let home = home(&rt, hk, &[laptop_id], &[]).await;
    let laptop = client(&rt, lk, &home).await;
    assert_unknown(&laptop, &home).await;

    let mut svc = start_service(&rt, 0).await;
    let change = home
        .apply_services(BTreeMap::from([(label("data"), spec(&svc, open()))]))
        .unwrap();
    assert_eq!(change.added, vec![label("data")]);
    assert!(change.removed.is_empty() && change.changed.is_empty());
    assert_eq!(home.services(), BTreeSet::from(["data".to_owned()]));
    assert_eq!(home.status().services["data"], svc.addr.to_string());
    let mut first = open_and_send(&rt, &laptop, &home, &mut svc, 1000).await;
    // Applying the same again changes nothing and cuts nothing.
    let same = home
        .apply_services(BTreeMap::from([(label("data"), spec(&svc, open()))]))
        .unwrap();
    assert!(same.is_empty() && same.cut == 0, "{same:?}");

    // Another local address: a new stream goes there, the open one is cut.
    let mut moved = start_service(&rt, 0).await;
    let change = home
        .apply_services(BTreeMap::from([(label("data"), spec(&moved, open()))]))
        .unwrap();
    assert_eq!(change.changed, vec![label("data")]);
    assert_eq!(change.cut, 1);
    assert_cut(&rt, &mut first, "moved").await;
    let mut second = open_and_send(&rt, &laptop, &home, &mut moved, 500).await;
    assert_eq!(svc.connections.load(Ordering::SeqCst), 1);

    // Removed: the open stream is cut, and the service is unknown.
    let change = home.apply_services(BTreeMap::new()).unwrap();
    assert_eq!(change.removed, vec![label("data")]);
    assert_eq!(change.cut, 1);
    assert_cut(&rt, &mut second, "removed").await;
    assert!(home.services().is_empty());
    assert!(home.service_rule("data").is_none());
    assert_unknown(&laptop, &home).await;
    assert!(!home.unexpose_service("data"));

    // And it can be exposed again under the same name at once.
    home.expose_service("data", &svc.addr.to_string(), open())
        .unwrap();
    let _third = open_and_send(&rt, &laptop, &home, &mut svc, 10).await;
    assert!(home.unexpose_service("data"));
    assert_unknown(&laptop, &home).await;

    laptop.shutdown().await;
    home.shutdown().await;
}

/// Disabled while running: the open stream is cut, new ones are refused
/// (DENIED: disabled); enabled again: served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_service_cuts_and_refuses_until_enabled() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let laptop_id = lk.public().to_peer_id();
    let mut svc = start_service(&rt, 0).await;
    let home = home(&rt, hk, &[laptop_id], &[("data", &svc, open())]).await;
    let laptop = client(&rt, lk, &home).await;
    let mut stream = open_and_send(&rt, &laptop, &home, &mut svc, 1000).await;

    let cut = home.set_service_rule("data", disabled()).unwrap();
    assert_eq!(cut, 1);
    assert_cut(&rt, &mut stream, "disabled").await;
    assert!(home.services().is_empty(), "a disabled service is listed");
    assert!(!home.service_rule("data").unwrap().rule.enabled);
    assert_refused(&rt, &laptop, &home, &svc, "disabled").await;

    assert_eq!(home.set_service_rule("data", open()).unwrap(), 0);
    let _again = open_and_send(&rt, &laptop, &home, &mut svc, 10).await;
    assert!(matches!(
        home.set_service_rule("nosuch", open()),
        Err(ServiceRuleError::NotExposed { .. })
    ));

    laptop.shutdown().await;
    home.shutdown().await;
}

/// `allowed_peers` narrowed while running: the peer left out loses its
/// open stream and is refused; the one still listed keeps its stream and
/// opens new ones. Widened again: both are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_peers_change_takes_effect_live() {
    let rt = rt();
    let (hk, lk, pk) = (key(), key(), key());
    let (laptop_id, phone_id) = (lk.public().to_peer_id(), pk.public().to_peer_id());
    let mut svc = start_service(&rt, 0).await;
    let home = home(&rt, hk, &[laptop_id, phone_id], &[("data", &svc, open())]).await;
    let laptop = client(&rt, lk, &home).await;
    let phone = client(&rt, pk, &home).await;
    let mut from_laptop = open_and_send(&rt, &laptop, &home, &mut svc, 100).await;
    let mut from_phone = open_and_send(&rt, &phone, &home, &mut svc, 100).await;

    let change = home
        .apply_services(BTreeMap::from([(
            label("data"),
            spec(&svc, only(&[phone_id])),
        )]))
        .unwrap();
    assert_eq!(change.changed, vec![label("data")]);
    assert_eq!(change.cut, 1);
    assert_cut(&rt, &mut from_laptop, "laptop left out").await;
    // The phone's stream goes on.
    let before = svc.bytes.load(Ordering::SeqCst);
    from_phone.write_all(b"still here").await.unwrap();
    from_phone.flush().await.unwrap();
    svc.received(&rt, before + 10).await;
    assert_refused(&rt, &laptop, &home, &svc, "allowed_peers").await;
    let _phone_again = open_and_send(&rt, &phone, &home, &mut svc, 10).await;

    // Widened: the laptop is served again; the phone kept its stream.
    let change = home
        .apply_services(BTreeMap::from([(label("data"), spec(&svc, open()))]))
        .unwrap();
    assert_eq!(change.cut, 0);
    let _laptop_again = open_and_send(&rt, &laptop, &home, &mut svc, 10).await;
    let before = svc.bytes.load(Ordering::SeqCst);
    from_phone.write_all(b"and now").await.unwrap();
    from_phone.flush().await.unwrap();
    svc.received(&rt, before + 7).await;

    phone.shutdown().await;
    laptop.shutdown().await;
    home.shutdown().await;
}
