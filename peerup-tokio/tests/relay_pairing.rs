//! Relay pairing end to end on loopback, real libp2p (WIRE.md §13-§14):
//! the relay operator makes three codes; three machines that the gated
//! relay does not know each join with one and nothing else; afterwards
//! each has authorized the relay and the other two, every pair pings
//! through the relay, and a used code is refused.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use peerup_core::invite::pairing_code::PairingCode;
use peerup_core::naming::Name;
use peerup_core::pairing::tokens::GroupSpec;
use peerup_net::node::Node;
use peerup_net::node::invite::JoinError;
use peerup_net::runtime::Runtime;
use peerup_relay::{Relay, RelayOptions};
use peerup_test_kit::{key, loopback, options_from_config, temp_dir, write_config};

const LIMIT: Duration = Duration::from_secs(60);

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(peerup_tokio::TokioRuntime::current())
}

async fn gated_relay(rt: &Arc<dyn Runtime>) -> (Relay, std::path::PathBuf) {
    let dir = temp_dir("pair-relay");
    let ak = dir.join("relay_authorized_keys");
    peerup_net::fs::write_atomic(&ak, b"# machines allowed to use this relay\n").unwrap();
    let mut o = RelayOptions::new(key());
    o.listen = loopback(false);
    o.authorized_keys_path = Some(ak.clone());
    (Relay::start(rt.clone(), o).await.unwrap(), ak)
}

/// Waits until `node`'s authorized_keys (as loaded) holds every peer of
/// `peers`, taking introductions as they come.
async fn until_authorizes(rt: &Arc<dyn Runtime>, node: &Node, peers: &[libp2p::PeerId]) {
    let mut events = node.events();
    let done = rt
        .timeout(LIMIT, async {
            loop {
                let doc = node.authorized_keys();
                if peers.iter().all(|p| doc.contains(p)) {
                    return true;
                }
                match events.next().await {
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
    assert_eq!(
        done,
        Some(true),
        "{} never authorized {peers:?}",
        node.peer_id()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_machines_join_with_codes_and_reach_each_other() {
    let rt = rt();
    let (relay, relay_ak) = gated_relay(&rt).await;
    let group = relay
        .create_pairing_group(3, GroupSpec::default(), None)
        .await
        .unwrap();
    assert_eq!(group.codes.len(), 3);
    assert_eq!(relay.pairing_groups().len(), 1);

    let mut nodes = Vec::new();
    for (i, code) in group.codes.iter().enumerate() {
        let dir = temp_dir(&format!("pair-node{i}"));
        let config = write_config(&dir, &relay);
        let node = Node::start(rt.clone(), options_from_config(&rt, &config))
            .await
            .unwrap();
        let code = PairingCode::decode(code).unwrap();
        let name = Name::new(&format!("m{i}")).unwrap();
        let joined = node.join_relay(&code, Some(name)).await.unwrap();
        assert_eq!(joined.relay, relay.peer_id());
        assert_eq!(joined.group, group.id.as_str());
        assert_eq!(joined.group_size, 3);
        // Each hears of the ones before it in the relay's answer.
        assert_eq!(joined.members.len(), i, "{joined:?}");
        assert!(relay.is_authorized(&node.peer_id()));
        nodes.push(node);
    }
    // The relay's file holds the three, tagged with the group.
    let text = std::fs::read_to_string(&relay_ak).unwrap();
    for n in &nodes {
        let line = text
            .lines()
            .find(|l| l.contains(&n.peer_id().to_string()))
            .unwrap_or_else(|| panic!("{} not in {text}", n.peer_id()));
        assert!(
            line.contains(&format!("group={}", group.id.as_str())),
            "{line}"
        );
    }
    // Everyone knows everyone: the early ones through introductions.
    let ids: Vec<_> = nodes.iter().map(Node::peer_id).collect();
    for n in &nodes {
        let others: Vec<_> = ids.iter().copied().filter(|p| *p != n.peer_id()).collect();
        let mut all = others.clone();
        all.push(relay.peer_id());
        until_authorizes(&rt, n, &all).await;
    }
    // Each holds a reservation on the relay it was not allowed to use
    // before pairing.
    for n in &nodes {
        let mut events = n.events();
        let reserved = rt
            .timeout(LIMIT, async {
                while !n.status().relays.values().any(|r| r.reserved) {
                    events.next().await?;
                }
                Some(())
            })
            .await
            .flatten();
        assert!(reserved.is_some(), "{} never reserved", n.peer_id());
    }
    // Every member line names the group, the introduced ones too.
    for n in &nodes {
        let doc = n.authorized_keys();
        for p in ids.iter().filter(|p| **p != n.peer_id()) {
            let e = doc.get(p).unwrap();
            assert_eq!(
                e.attributes().get(peerup_core::authorized_keys::GROUP),
                Some(group.id.as_str()),
                "{} about {p}",
                n.peer_id()
            );
        }
    }
    // And every pair reaches the other through the relay.
    for a in &nodes {
        for b in &ids {
            if *b == a.peer_id() {
                continue;
            }
            // Connect first: the path settles (a relayed connection may be
            // upgraded to a direct one on loopback) before the ping.
            let path = rt.timeout(LIMIT, a.connect(*b)).await;
            assert!(
                matches!(path, Some(Ok(_))),
                "{} -> {b}: {path:?}",
                a.peer_id()
            );
            let reply = rt.timeout(LIMIT, a.ping(*b)).await;
            assert!(
                matches!(reply, Some(Ok(_))),
                "{} -> {b}: {reply:?}",
                a.peer_id()
            );
        }
    }
    // All codes used: enrollment is over, and a stranger is not even
    // let in.
    assert_eq!(relay.pairing_groups()[0].used, 3);
    let dir = temp_dir("pair-node3");
    let config = write_config(&dir, &relay);
    let late = Node::start(rt.clone(), options_from_config(&rt, &config))
        .await
        .unwrap();
    let used = PairingCode::decode(&group.codes[0]).unwrap();
    let closed = late.join_relay(&used, None).await;
    assert!(matches!(closed, Err(JoinError::RelayClosed)), "{closed:?}");
    // With another group open it is let in on probation, and the used
    // code is refused; the new one works.
    let second = relay
        .create_pairing_group(1, GroupSpec::default(), None)
        .await
        .unwrap();
    let refused = late.join_relay(&used, None).await;
    assert!(
        matches!(refused, Err(JoinError::PairingRefused)),
        "{refused:?}"
    );
    assert!(!relay.is_authorized(&late.peer_id()));
    let fresh = PairingCode::decode(&second.codes[0]).unwrap();
    let joined = late.join_relay(&fresh, None).await.unwrap();
    assert!(joined.members.is_empty());
    assert!(relay.is_authorized(&late.peer_id()));
}

/// A stranger on probation that sends garbage on the pairing stream (too
/// long, and then malformed) is answered "pairing failed", counted, and
/// not authorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_pairing_stream_is_refused() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let rt = rt();
    let (relay, _ak) = gated_relay(&rt).await;
    relay
        .create_pairing_group(1, GroupSpec::default(), None)
        .await
        .unwrap();
    let mut o = peerup_net::NodeOptions::new(key()).with_listen(loopback(false));
    o.transport.quic = false;
    let stranger = Node::start(rt.clone(), o).await.unwrap();
    let relay_addr = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .unwrap();
    stranger.add_addresses(relay.peer_id(), vec![relay_addr]);
    let proto = peerup_net::libp2p::StreamProtocol::new(peerup_core::wire::protocol::RELAY_PAIR);
    for (i, garbage) in [vec![0xAB; 4096], vec![7; 40]].into_iter().enumerate() {
        let mut s = rt
            .timeout(LIMIT, stranger.open_stream(relay.peer_id(), proto.clone()))
            .await
            .unwrap()
            .unwrap();
        // The relay stops reading at its bound; the write may fail then.
        let _ = s.write_all(&garbage).await;
        let _ = s.close().await;
        let mut answer = Vec::new();
        let _ = rt.timeout(LIMIT, s.read_to_end(&mut answer)).await;
        assert!(
            answer.is_empty() || answer[0] == 0x00,
            "garbage {i} got {answer:?}"
        );
        let failed = relay
            .stats()
            .pairing_failed
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(failed, i as u64 + 1, "garbage {i}");
        assert!(!relay.is_authorized(&stranger.peer_id()));
        // A failure ends the probation: the next attempt connects anew.
        stranger.disconnect_and_wait(relay.peer_id()).await;
    }
}
