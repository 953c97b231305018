//! Holding up on the open internet (issue 15): revocation that does not
//! fail open, `expires=` on time, connection limits, pairing connections
//! that reach the invite protocol only, revoked proxies cut on both sides.
//! Real nodes and a relay on 127.0.0.1; every wait is on an event, bounded
//! by a limit that only fires when something is broken.

use peerup_test_kit as common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use common::*;
use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_core::invite::InviteCode;
use peerup_core::naming::Name;
use peerup_core::time::UnixTime;
use peerup_net::Event;
use peerup_net::libp2p::StreamProtocol;
use peerup_net::limits::ConnectionLimits;
use peerup_net::node::Node;
use peerup_net::node::invite::{InviteError, InviteOptions};
use peerup_net::runtime::Runtime;
use peerup_net::streams::OpenError;
use peerup_relay::{Relay, RelayEvent, RelayOptions};
use peerup_tokio::TokioRuntime;
use tokio::io::AsyncReadExt as _;

fn rt() -> Arc<dyn Runtime> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    Arc::new(TokioRuntime::current())
}

fn wall() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

async fn relay_event(
    rt: &Arc<dyn Runtime>,
    events: &mut futures::channel::mpsc::Receiver<RelayEvent>,
    what: &str,
    mut pred: impl FnMut(&RelayEvent) -> bool,
) -> RelayEvent {
    rt.timeout(LIMIT, async {
        while let Some(e) = events.next().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await
    .flatten()
    .unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Item 1: one invalid line anywhere in authorized_keys no longer makes a
/// reload fail (keeping the removed peer in): the file is loaded line by
/// line, the removal applies, and the peer's live stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_applies_despite_an_invalid_line() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let dir = temp_dir("invalid-line");
    let ak = dir.join("authorized_keys");
    let other = key().public().to_peer_id();
    let bad = format!("{laptop_id}  # laptop\n{other}  expires=next-week\n");
    peerup_net::fs::write_atomic(&ak, bad.as_bytes()).unwrap();
    let doc = peerup_net::node::read_authorized_keys(&ak, bad.as_bytes()).unwrap();
    let mut svc = start_service(&rt, 0).await;
    let home_opts = node_options(&rt, hk, &relay, &[])
        .with_authorized_keys(doc, Some(ak.clone()))
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    assert!(
        home.is_authorized(&laptop_id),
        "a bad line elsewhere locked the laptop out"
    );
    assert!(
        !home.is_authorized(&other),
        "a peer named on a bad line got in"
    );
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    stream.flush().await.unwrap();
    svc.received(&rt, 5).await;

    // `peerup auth remove laptop`, with the bad line still there.
    let removed = format!("{other}  expires=next-week\n");
    peerup_net::fs::write_atomic(&ak, removed.as_bytes()).unwrap();
    let change = home.reload_authorized_keys_if_changed().unwrap().unwrap();
    assert_eq!(change.revoked, vec![laptop_id]);
    assert!(!home.is_authorized(&laptop_id));
    let mut buf = [0u8; 16];
    let ended = rt.timeout(LIMIT, stream.read(&mut buf)).await;
    assert!(
        matches!(ended, Some(Err(_)) | Some(Ok(0))),
        "stream still open: {ended:?}"
    );
    // Nothing changed since: the next check loads nothing.
    assert!(home.reload_authorized_keys_if_changed().unwrap().is_none());
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 2, node: an `expires=` cuts the peer when it passes, not at the
/// next periodic check (an hour away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_cuts_a_peer_on_time_at_the_node() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    let mut svc = start_service(&rt, 0).await;
    let mut keys = Document::new();
    let expires = wall().saturating_add(Duration::from_secs(3));
    keys.add(laptop_id, Attributes::new().with_expires(expires), None)
        .unwrap();
    let mut home_opts = node_options(&rt, hk, &relay, &[])
        .with_authorized_keys(keys, None)
        .with_service(label("data"), svc.addr.to_string(), open())
        .unwrap();
    home_opts.reservation_interval = Duration::from_secs(3600);
    let home = start_reserved(&rt, home_opts).await;
    let mut events = home.events();
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(b"hi").await.unwrap();
    stream.flush().await.unwrap();
    svc.received(&rt, 2).await;
    wait_for(
        &rt,
        &mut events,
        "the laptop cut at its expiry",
        |e| matches!(e, Event::AuthorizedKeysReloaded { revoked } if revoked.contains(&laptop_id)),
    )
    .await;
    assert!(wall() >= expires, "cut before its expiry");
    let mut buf = [0u8; 4];
    let ended = rt.timeout(LIMIT, stream.read(&mut buf)).await;
    assert!(matches!(ended, Some(Err(_)) | Some(Ok(0))), "{ended:?}");
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 2, relay: an expired peer loses its reservation when its
/// `expires=` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_cuts_a_reservation_on_time_at_the_relay() {
    let rt = rt();
    let hk = key();
    let home_id = hk.public().to_peer_id();
    let mut keys = Document::new();
    let expires = wall().saturating_add(Duration::from_secs(3));
    keys.add(home_id, Attributes::new().with_expires(expires), None)
        .unwrap();
    let mut o = RelayOptions::new(key());
    o.listen = loopback(false);
    o.authorized_keys = keys;
    let relay = Relay::start(rt.clone(), o).await.unwrap();
    let mut events = relay.events();
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[])).await;
    let e = relay_event(&rt, &mut events, "the expiry", |e| {
        matches!(e, RelayEvent::Expired { .. })
    })
    .await;
    assert_eq!(
        e,
        RelayEvent::Expired {
            peers: vec![home_id]
        }
    );
    assert!(wall() >= expires);
    assert_eq!(relay.stats().expired.load(Ordering::Relaxed), 1);
    assert!(!relay.is_authorized(&home_id));
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 3: connections that never finish their handshake, all from one
/// address, are refused before any cryptography beyond the per-IP limit;
/// an authorized peer from another address still reserves meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_one_address_are_capped() {
    let rt = rt();
    let hk = key();
    let home_id = hk.public().to_peer_id();
    let mut o = RelayOptions::new(key());
    o.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    o.authorized_keys = doc(&[home_id]);
    o.connection_limits = ConnectionLimits {
        max_pending_per_ip: 4,
        ..ConnectionLimits::RELAY
    };
    let relay = Relay::start(rt.clone(), o).await.unwrap();
    let port = relay
        .listen_addrs()
        .iter()
        .find_map(|a| {
            a.iter().find_map(|p| match p {
                peerup_net::libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
                _ => None,
            })
        })
        .unwrap();
    // 32 sockets from 127.0.0.2 that connect and say nothing.
    let mut held = Vec::new();
    for _ in 0..32 {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        held.push(s.connect(([127, 0, 0, 1], port).into()).await.unwrap());
    }
    // The relay refuses those beyond the fourth at once, and drops the
    // four others when their handshake's deadline passes: every socket
    // sees its end.
    rt.timeout(LIMIT, async {
        for s in &mut held {
            let mut b = [0u8; 1];
            let _ = s.read(&mut b).await;
        }
    })
    .await
    .expect("a stalled connection was kept past its handshake deadline");
    assert_eq!(
        relay.stats().limits.refused_per_ip.load(Ordering::Relaxed),
        28
    );
    // Meanwhile an authorized peer from 127.0.0.1 reserves as usual.
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[])).await;
    drop(held);
    home.shutdown().await;
    relay.shutdown().await;
}

/// Items 4 and 6: a cancelled invite stops at once, frees the window for
/// the next one, and `status` shows an open invite; silent streams from
/// one stranger hold one slot only, and the real joiner pairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_cancel_and_cannot_be_squatted() {
    let rt = rt();
    let (hk, lk, sk) = (key(), key(), key());
    let (home_id, laptop_id, stranger_id) = (
        hk.public().to_peer_id(),
        lk.public().to_peer_id(),
        sk.public().to_peer_id(),
    );
    let relay = start_relay(&rt, &[home_id, laptop_id, stranger_id]).await;
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[])).await;

    let first = home.invite(InviteOptions::default()).unwrap();
    let status = home.invite_status().expect("status shows the open invite");
    assert_eq!(status.expires_at, first.expires_at());
    assert!(home.cancel_invite());
    assert_eq!(
        rt.timeout(LIMIT, first.wait()).await.unwrap(),
        Err(InviteError::Cancelled)
    );
    assert!(home.invite_status().is_none());
    assert!(!home.cancel_invite(), "nothing left to cancel");

    let invite = home
        .invite(InviteOptions {
            name: Some(Name::new("home").unwrap()),
            ..InviteOptions::default()
        })
        .unwrap();
    let code = InviteCode::decode(invite.code_text()).unwrap();
    // A stranger opens many invite streams and says nothing on them.
    let stranger = Node::start(rt.clone(), node_options(&rt, sk, &relay, &[]))
        .await
        .unwrap();
    let mut silent = Vec::new();
    for _ in 0..6 {
        match stranger
            .open_stream(home_id, StreamProtocol::new("/peerup/invite/1.0.0"))
            .await
        {
            Ok(s) => silent.push(s),
            Err(e) => eprintln!("stranger's stream refused: {e}"),
        }
    }
    // The real joiner pairs all the same.
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[]))
        .await
        .unwrap();
    let joined = laptop
        .join(&code, Some(Name::new("laptop").unwrap()))
        .await
        .unwrap();
    assert_eq!(joined.peer, home_id);
    let paired = rt.timeout(LIMIT, invite.wait()).await.unwrap().unwrap();
    assert_eq!(paired.peer, laptop_id);
    drop(silent);
    laptop.shutdown().await;
    stranger.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 5: a stranger let in to pair is served the invite protocol and
/// nothing else (no DHT, identify, ping), cannot burn the code from one
/// identity with garbage, and leaves with the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_connection_reaches_the_invite_protocol_only() {
    let rt = rt();
    let (hk, lk, sk, ak) = (key(), key(), key(), key());
    let (home_id, laptop_id, stranger_id, friend_id) = (
        hk.public().to_peer_id(),
        lk.public().to_peer_id(),
        sk.public().to_peer_id(),
        ak.public().to_peer_id(),
    );
    let relay = start_relay(&rt, &[home_id, laptop_id, stranger_id, friend_id]).await;
    let home = start_reserved(&rt, node_options(&rt, hk, &relay, &[friend_id])).await;
    let mut home_events = home.events();
    // An authorized friend connects, so home's DHT knows an address worth
    // stealing.
    let friend = Node::start(rt.clone(), node_options(&rt, ak, &relay, &[home_id]))
        .await
        .unwrap();
    friend.connect(home_id).await.unwrap();

    let invite = home.invite(InviteOptions::default()).unwrap();
    let code = InviteCode::decode(invite.code_text()).unwrap();
    let stranger = Node::start(rt.clone(), node_options(&rt, sk, &relay, &[]))
        .await
        .unwrap();
    let kad = StreamProtocol::new("/peerup/kad/1.0.0");
    for proto in [
        kad.clone(),
        StreamProtocol::new("/ipfs/id/1.0.0"),
        StreamProtocol::new("/ipfs/ping/1.0.0"),
        StreamProtocol::new("/libp2p/dcutr"),
        StreamProtocol::new("/libp2p/autonat/1.0.0"),
        StreamProtocol::new("/pingpong/1.0.0"),
    ] {
        let r = stranger.open_stream(home_id, proto.clone()).await;
        assert!(
            matches!(r, Err(OpenError::Unsupported(_))),
            "{proto} was served to a pairing-only stranger: {:?}",
            r.map(|_| ())
        );
    }
    // Nor did identify tell it anything (the services, the addresses).
    assert_eq!(
        stranger
            .status()
            .peers
            .get(&home_id)
            .and_then(|p| p.agent.clone()),
        None
    );
    // Garbage on the invite protocol: the stranger is blocked after its
    // strikes, the invite is not burned.
    for _ in 0..5 {
        if let Ok(mut s) = stranger
            .open_stream(home_id, StreamProtocol::new("/peerup/invite/1.0.0"))
            .await
        {
            // Not even the handshake's version byte.
            let _ = s.write_all(&[0x02; 64]).await;
            let _ = s.flush().await;
            let mut b = [0u8; 64];
            let _ = rt.timeout(LIMIT, s.read(&mut b)).await;
        }
    }
    wait_for(
        &rt,
        &mut home_events,
        "the stranger's disconnection",
        |e| matches!(e, Event::Disconnected { peer, remaining: 0 } if *peer == stranger_id),
    )
    .await;
    let status = home.invite_status().unwrap();
    assert_eq!(status.blocked_peers, 1);
    assert!(status.failed_attempts <= 3, "{status:?}");
    // And it is not let back in while the invite is open.
    let again = stranger
        .open_stream(home_id, StreamProtocol::new("/peerup/invite/1.0.0"))
        .await;
    assert!(again.is_err(), "a blocked stranger got a stream");

    // The real joiner pairs; the window closes.
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[]))
        .await
        .unwrap();
    laptop.join(&code, None).await.unwrap();
    rt.timeout(LIMIT, invite.wait()).await.unwrap().unwrap();
    // The paired laptop reconnects with every protocol.
    assert!(laptop.ping(home_id).await.is_ok());
    friend.shutdown().await;
    laptop.shutdown().await;
    stranger.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 7: revoking a peer ends the proxied connections it was served,
/// on this side too: the local service sees its socket close, and
/// `status` lists no proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_the_served_side_of_proxies() {
    let rt = rt();
    let (hk, lk) = (key(), key());
    let (home_id, laptop_id) = (hk.public().to_peer_id(), lk.public().to_peer_id());
    let relay = start_relay(&rt, &[home_id, laptop_id]).await;
    // A local service that keeps every connection and reports its end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ended_tx, mut ended_rx) = futures::channel::mpsc::channel::<()>(4);
    let (accepted_tx, mut accepted_rx) = futures::channel::mpsc::channel::<()>(4);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut done = ended_tx.clone();
            let mut accepted = accepted_tx.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt as _;
                let _ = accepted.try_send(());
                let mut b = [0u8; 64];
                while let Ok(n) = s.read(&mut b).await {
                    if n == 0 {
                        break;
                    }
                }
                let _ = done.try_send(());
            });
        }
    });
    let home_opts = node_options(&rt, hk, &relay, &[laptop_id])
        .with_service(label("data"), addr.to_string(), open())
        .unwrap();
    let home = start_reserved(&rt, home_opts).await;
    let laptop = Node::start(rt.clone(), node_options(&rt, lk, &relay, &[home_id]))
        .await
        .unwrap();
    let mut stream = laptop.open_service(home_id, "data").await.unwrap();
    stream.write_all(b"x").await.unwrap();
    stream.flush().await.unwrap();
    rt.timeout(LIMIT, accepted_rx.next()).await.unwrap();
    // The service accepts before the node records the proxy (it dials the
    // service first): await the record rather than racing it.
    let listed = rt
        .timeout(LIMIT, async {
            while home.status().proxies.is_empty() {
                rt.sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    assert!(listed.is_some(), "status never listed the proxy");
    assert_eq!(home.status().proxies.len(), 1);
    home.reload_authorized_keys(&doc(&[]));
    // The served side is cut: the local socket sees its end.
    rt.timeout(LIMIT, ended_rx.next())
        .await
        .expect("the local service's socket stayed open");
    let proxies = rt
        .timeout(LIMIT, async {
            loop {
                if home.status().proxies.is_empty() {
                    return;
                }
                rt.sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    assert!(proxies.is_some(), "status still lists the proxy");
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
}

/// Item 11: a node loads authorized_keys, the file changes before the
/// node has even started (a pairing written by another process), and the
/// change is still applied: what is compared is the bytes loaded, not a
/// stamp taken later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_starting_is_not_missed() {
    let rt = rt();
    let relay = start_relay(&rt, &[]).await;
    let dir = temp_dir("start-race");
    let cfg = write_config(&dir, &relay);
    let options = options_from_config(&rt, &cfg);
    let joiner = key().public().to_peer_id();
    peerup_net::fs::write_atomic(
        &dir.join("authorized_keys"),
        format!("{joiner}  # joined meanwhile\n").as_bytes(),
    )
    .unwrap();
    let node = Node::start(rt.clone(), options).await.unwrap();
    assert!(!node.is_authorized(&joiner));
    let change = node.reload_authorized_keys_if_changed().unwrap();
    assert!(change.is_some(), "the change made during start was missed");
    assert!(node.is_authorized(&joiner));
    // A second node with the same identity cannot start beside it.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let (config, _) = peerup_core::config::Config::parse(&cfg, &text).unwrap();
    let e = peerup_net::node::NodeOptions::from_config(&config, &cfg).unwrap_err();
    assert!(
        e.to_string().contains("is running with this identity"),
        "{e}"
    );
    node.shutdown().await;
    relay.shutdown().await;
}

/// An authorized_keys file in a fresh directory, holding `text`, and a
/// watcher on it whose poll is an hour away (so only the platform's
/// notifications can wake it within a test).
fn watched_file(
    rt: &Arc<dyn Runtime>,
    tag: &str,
    text: &[u8],
) -> (std::path::PathBuf, peerup_net::watch::FileWatcher) {
    let file = temp_dir(tag).join("authorized_keys");
    peerup_net::fs::write_atomic(&file, text).unwrap();
    let watcher = peerup_net::watch::FileWatcher::new(
        rt.clone(),
        std::slice::from_ref(&file),
        Duration::from_secs(3600),
    );
    (file, watcher)
}

/// A watched file rewritten without pause (events closer together than
/// the watcher lets a burst settle) still wakes it: settling is capped,
/// where before the stream held back every reload, a revocation too, and
/// the poll with them, for as long as it lasted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_without_pause_still_wakes_the_watcher() {
    let rt = rt();
    let (file, mut watcher) = watched_file(&rt, "watch-stream", b"# 0\n");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, file) = (stop.clone(), file.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // In place (no fsync, which can stall longer than a
                // burst is let settle): a write every millisecond or so,
                // well inside the 100 ms.
                std::fs::write(&file, format!("# {i}\n")).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            i
        })
    };
    let woke = rt.timeout(LIMIT, watcher.changed()).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(
        woke.is_some(),
        "a stream of {writes} writes held the watcher back for {LIMIT:?}"
    );
}

/// Item 11: a change to a watched file is noticed by the platform's
/// notification at once (the poll here is an hour away), through an
/// atomic replace as peerup and editors write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_is_noticed_without_polling() {
    let rt = rt();
    let (file, mut watcher) = watched_file(&rt, "watch", b"# before\n");
    let waiting = tokio::spawn(async move { watcher.changed().await });
    peerup_net::fs::write_atomic(&file, b"# after\n").unwrap();
    rt.timeout(LIMIT, waiting)
        .await
        .expect("the change was not noticed")
        .unwrap();
}
