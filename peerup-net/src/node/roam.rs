//! Roaming: when this machine's addresses change (Wi-Fi to a phone's
//! hotspot, a new DHCP lease, an interface down), every connection is
//! probed at once and the dead ones are closed within [`PROBE_TIMEOUT`],
//! instead of waiting for the periodic ping (up to 15 s) or TCP (minutes).
//!
//! The change is seen by the runtime's interface watcher
//! ([`crate::runtime::Runtime::watch_interfaces`]: `if-watch`, netlink on
//! Linux; both adapters have one), and through the listeners (libp2p's TCP
//! and QUIC transports report each address that appears or expires when
//! listening on an unspecified address). A default route that changes
//! with no address change is not seen: the periodic ping finds a path
//! that died that way (15 s). A probe opens a stream for a protocol nobody serves on that
//! one connection: any answer, "not supported" included, is a round trip
//! and proves the path alive; no answer within the timeout closes the
//! connection. Closing it is what recovers the rest: the reservation
//! machine re-reserves on a relay whose connection closed (after its 1 s
//! backoff), the next stream to a peer dials afresh (through every relay
//! at once), and peers with a proxy open at the change are dialed again
//! at once, so the next connection through a forwarded port finds a path
//! ready.
//!
//! A spurious change (a VPN or container interface appearing, a new IPv6
//! temporary address) costs one stream round trip per connection, at most
//! [`MAX_ROUNDS`] rounds per [`ROUND_WINDOW`]. A live connection is closed only if its
//! probe waits longer than [`PROBE_TIMEOUT`] (or four ping round trips):
//! possible on a slow uplink whose queue holds more than that in front of
//! the probe (a bulk upload over a phone's hotspot at the moment an
//! interface changes); what is cut then reconnects at once.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::Inner;
use super::driver::Command;
use crate::runtime::InterfaceChange;
use crate::streams::OpenError;

/// How long a probed connection has to answer, at least: four times its
/// last ping round trip when that is longer (a busy, queued path).
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A change is probed this long after it is seen, so the burst of one move
/// (an address down, another up, a route) makes one round, on the new
/// route.
pub(crate) const SETTLE: Duration = Duration::from_millis(300);
/// At most [`MAX_ROUNDS`] rounds start in any such window (a LAN neighbour
/// sending router advertisements or DHCP churn cannot make us probe back
/// to back), while a real move right after another round (the node's
/// start, a VPN) is still probed at once.
pub(crate) const ROUND_WINDOW: Duration = Duration::from_secs(30);
/// See [`ROUND_WINDOW`].
pub(crate) const MAX_ROUNDS: usize = 3;

/// The protocol probes ask for: served by nobody, answered "not supported"
/// by every libp2p peer (multistream-select), Go's and relays included.
pub(crate) const PROBE_PROTOCOL: StreamProtocol = StreamProtocol::new("/peerup/probe/1.0.0");

/// Whether a probe is running, and whether another change came meanwhile.
#[derive(Debug, Default)]
pub(crate) struct RoamState {
    running: bool,
    again: bool,
    /// Network changes seen.
    pub changes: u64,
    /// Connections closed by probes.
    pub closed: u64,
    /// When the last rounds that probed something started (at most
    /// [`MAX_ROUNDS`]).
    rounds: std::collections::VecDeque<std::time::Instant>,
    /// The machine's addresses as last seen: the interface watcher and the
    /// listeners report every address there is when they start, and an
    /// address already here is not a change.
    known: BTreeSet<IpAddr>,
}

impl RoamState {
    /// Knowing the machine's addresses now (none if they cannot be read:
    /// then the first reports count as changes, as before).
    pub(crate) fn with_current_addresses() -> Self {
        let known = if_addrs::get_if_addrs()
            .map(|ifs| ifs.iter().map(if_addrs::Interface::ip).collect())
            .unwrap_or_default();
        RoamState {
            known,
            ..RoamState::default()
        }
    }

    /// Whether `ip` appearing (`gone` false) or going says the network
    /// changed; remembers it either way. An address that appears and was
    /// already known is no change: the watchers' report of what was there
    /// at the node's start. A 1,000-node benchmark saw two probe rounds
    /// per node at start, which, under load, closed live connections whose
    /// probes waited longer than their timeout.
    ///
    /// An IPv6 link-local address appearing is no change either: the
    /// address list read at the start leaves them out (`if-addrs`), and
    /// one appears with every interface that comes up, whose routable
    /// address, if it brings a new route, is the change. One going away
    /// is a change, as any.
    pub(crate) fn note(&mut self, ip: IpAddr, gone: bool) -> bool {
        if gone {
            self.known.remove(&ip);
            true
        } else if matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()) {
            false
        } else {
            self.known.insert(ip)
        }
    }
}

/// Whether a listen address coming or going says the machine's own
/// network changed: it has an IP address of an interface, not loopback
/// and not a relay circuit (those come and go with reservations).
fn local_ip(addr: &Multiaddr) -> Option<IpAddr> {
    let mut ip = None;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => return None,
            Protocol::Ip4(a) if ip.is_none() => ip = Some(IpAddr::V4(a)),
            Protocol::Ip6(a) if ip.is_none() => ip = Some(IpAddr::V6(a)),
            _ => {}
        }
    }
    ip.filter(|ip| !ip.is_loopback())
}

/// Follows the runtime's interface watcher, if it has one, for as long
/// as the node runs.
pub(crate) fn watch(inner: &Arc<Inner>) {
    let Some(mut changes) = inner.rt.watch_interfaces() else {
        return;
    };
    let task = inner.clone();
    inner.spawn_tracked(
        None,
        Box::pin(async move {
            use futures::StreamExt;
            while let Some(change) = changes.next().await {
                let (ip, gone) = match change {
                    InterfaceChange::Up(ip) => (ip, false),
                    InterfaceChange::Down(ip) => (ip, true),
                };
                if !ip.is_loopback() && noted(&task, ip, gone) {
                    on_change(&task, &ip.to_string(), gone);
                }
            }
        }),
    );
}

/// The driver saw `addr` appear or expire.
pub(crate) fn on_listen_addr_change(inner: &Arc<Inner>, addr: &Multiaddr, expired: bool) {
    if let Some(ip) = local_ip(addr)
        && noted(inner, ip, expired)
    {
        on_change(inner, &addr.to_string(), expired);
    }
}

/// [`RoamState::note`].
fn noted(inner: &Arc<Inner>, ip: IpAddr, gone: bool) -> bool {
    inner
        .roam
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .note(ip, gone)
}

/// An address of this machine came or went: probe (once more if a probe
/// is running).
pub(crate) fn on_change(inner: &Arc<Inner>, addr: &str, gone: bool) {
    {
        let mut st = inner.roam.lock().unwrap_or_else(|e| e.into_inner());
        st.changes += 1;
        if st.running {
            st.again = true;
            return;
        }
        st.running = true;
    }
    tracing::debug!(%addr, gone, "address changed");
    let task = inner.clone();
    inner.spawn_tracked(
        None,
        Box::pin(async move {
            loop {
                // Settle, and keep to MAX_ROUNDS per ROUND_WINDOW.
                let oldest = {
                    let st = task.roam.lock().unwrap_or_else(|e| e.into_inner());
                    (st.rounds.len() >= MAX_ROUNDS)
                        .then(|| st.rounds.front().copied())
                        .flatten()
                };
                let mut at = task.rt.now() + SETTLE;
                if let Some(oldest) = oldest {
                    at = at.max(oldest + ROUND_WINDOW);
                }
                task.rt.sleep_until(at).await;
                let started = task.rt.now();
                let probed = probe_all(&task).await;
                let again = {
                    let mut st = task.roam.lock().unwrap_or_else(|e| e.into_inner());
                    if probed > 0 {
                        if st.rounds.len() >= MAX_ROUNDS {
                            st.rounds.pop_front();
                        }
                        st.rounds.push_back(started);
                    }
                    st.running = st.again;
                    std::mem::take(&mut st.again)
                };
                if !again {
                    break;
                }
            }
        }),
    );
}

/// Probes every connection at once; closes those that do not answer, then
/// dials again the peers that had a proxy open through one of them.
async fn probe_all(inner: &Arc<Inner>) -> usize {
    let connections = inner.control.all_connections();
    if connections.is_empty() {
        inner.publish(super::Event::NetworkChanged {
            probed: 0,
            closed: 0,
        });
        return 0;
    }
    tracing::info!(
        connections = connections.len(),
        "network changed: probing every connection"
    );
    let probes = connections.iter().map(|&(peer, connection)| async move {
        let rtt = inner.snapshot(|s| s.peers.get(&peer).and_then(|p| p.rtt));
        let timeout = rtt.map_or(PROBE_TIMEOUT, |r| PROBE_TIMEOUT.max(r * 4));
        let answer = inner
            .rt
            .timeout(
                timeout,
                inner.control.open_on(peer, connection, PROBE_PROTOCOL),
            )
            .await;
        match answer {
            // Any answer is a round trip; the stream (if any) is dropped.
            Some(Ok(_) | Err(OpenError::Unsupported(_))) => None,
            Some(Err(e)) => {
                tracing::debug!(%peer, ?connection, error = %e, "probe: connection already gone");
                None
            }
            None => {
                tracing::info!(%peer, ?connection, "probe: no answer: closing the connection (a dead path)");
                inner.command(Command::CloseConnection { connection });
                Some(peer)
            }
        }
    });
    let dead: Vec<PeerId> = futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect();
    let (probed, closed) = (connections.len(), dead.len());
    inner.publish(super::Event::NetworkChanged { probed, closed });
    if dead.is_empty() {
        return probed;
    }
    inner.roam.lock().unwrap_or_else(|e| e.into_inner()).closed += closed as u64;
    let dead: BTreeSet<PeerId> = dead.into_iter().collect();
    // Peers we had a proxy open to: dial them again now.
    let proxied: BTreeSet<PeerId> = inner.snapshot(|s| {
        s.proxies
            .values()
            .filter(|p| !p.inbound && dead.contains(&p.peer))
            .map(|p| p.peer)
            .collect()
    });
    for peer in proxied {
        let node = super::Node {
            inner: inner.clone(),
        };
        inner.spawn_tracked(
            None,
            Box::pin(async move {
                match node.connect(peer).await {
                    Ok(path) => tracing::info!(%peer, %path, "reconnected after the network change"),
                    Err(e) => {
                        tracing::info!(%peer, error = %crate::error::chain(&e), "not reachable after the network change")
                    }
                }
            }),
        );
    }
    probed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_addresses_are_a_network_change() {
        let yes = |s: &str| local_ip(&s.parse().unwrap()).is_some();
        assert!(yes("/ip4/10.2.0.2/tcp/4001"));
        assert!(yes("/ip6/2001:db8::1/udp/4001/quic-v1"));
        assert!(!yes("/ip4/127.0.0.1/tcp/4001"));
        assert!(!yes("/ip6/::1/tcp/4001"));
        assert!(!yes(
            "/ip4/198.51.100.1/tcp/7777/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL/p2p-circuit"
        ));
        assert!(!yes("/dns4/example.com/tcp/1"));
    }

    #[test]
    fn an_address_there_at_the_start_is_no_change() {
        let a: IpAddr = "10.2.0.2".parse().unwrap();
        let b: IpAddr = "192.168.1.20".parse().unwrap();
        let mut st = RoamState {
            known: [a].into(),
            ..RoamState::default()
        };
        assert!(!st.note(a, false), "the watcher's report of what was there");
        assert!(st.note(b, false), "a new address");
        assert!(!st.note(b, false), "reported again (listener and watcher)");
        assert!(st.note(a, true), "an address gone");
        assert!(st.note(a, false), "and back: a change");
        let link_local: IpAddr = "fe80::fc:ff:fe00:1".parse().unwrap();
        assert!(
            !st.note(link_local, false),
            "an interface's link-local address"
        );
        assert!(st.note(link_local, true));
    }
}
