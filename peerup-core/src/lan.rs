//! Peers found on the local network (mDNS), and which of their addresses
//! a node may use.
//!
//! Inputs: `handle_discovered(peer, addr)` and `handle_expired(peer, addr)`,
//! as the mDNS discoverer reports them (it refreshes a record silently and
//! reports `Expired` when a record's TTL passes unrefreshed).
//! Outputs: queries, decided against the node's [`Policy`] at the wall-clock
//! `now` the caller passes: [`Table::usable`] (the addresses of one peer to
//! dial) and [`Table::authorized`] (what `status` shows). No timers: expiry
//! is the discoverer's. [`FirstQuery`] decides when the discoverer starts.
//!
//! Every well-formed record is kept, the stranger's too, and authorization
//! is decided when an address is *used*, not when it is heard: the
//! discoverer reports a `(peer, address)` pair once and then only refreshes
//! it, so a peer dropped at discovery would stay unusable for as long as it
//! kept answering, even after a pairing authorized it; and a peer revoked
//! later must stop being dialed at once. Nothing in the table reaches the
//! swarm, the DHT or `status` unless the policy authorizes its peer at that
//! moment. The table is bounded ([`MAX_PEERS`], [`MAX_ADDRS_PER_PEER`]) so
//! a LAN flooding announcements under made-up peer IDs costs a fixed amount
//! of memory; when it is full, a new peer is taken only if it is authorized.

use core::net::{IpAddr, Ipv4Addr};
use std::collections::{BTreeMap, BTreeSet};

use multiaddr::Protocol;

use crate::authorized_keys::Status;
use crate::authz::Policy;
use crate::time::{Instant, UnixTime};
use crate::{Multiaddr, PeerId};

/// Peers the table holds at most.
pub const MAX_PEERS: usize = 256;

/// Addresses one peer may have in the table.
pub const MAX_ADDRS_PER_PEER: usize = 8;

/// What [`Table::handle_discovered`] did with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovered {
    /// A new address of the peer, kept.
    Added,
    /// Already known.
    Known,
    /// Not kept, and why.
    Ignored(Ignored),
}

/// Why a discovered record was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    /// Not a direct IP address with TCP or QUIC, ending in the peer's own
    /// `/p2p` (a relay circuit, DNS, an unspecified or multicast IP...).
    #[error("not a direct TCP or QUIC address of this peer")]
    NotDirect,
    /// The peer already has [`MAX_ADDRS_PER_PEER`] addresses.
    #[error("the peer has too many addresses already")]
    TooManyAddresses,
    /// The table holds [`MAX_PEERS`] peers and this one is not authorized.
    #[error("too many peers on the LAN")]
    Full,
}

/// The LAN records: peer to its discovered addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    peers: BTreeMap<PeerId, BTreeSet<Multiaddr>>,
}

impl Table {
    /// An empty table.
    pub fn new() -> Self {
        Table::default()
    }

    /// A record heard on the LAN: `peer` says it is at `addr`. `policy`
    /// and `now` only decide whether a new peer may take the last places
    /// of a full table.
    pub fn handle_discovered(
        &mut self,
        peer: PeerId,
        addr: Multiaddr,
        policy: &Policy,
        now: UnixTime,
    ) -> Discovered {
        if !is_direct_address_of(&peer, &addr) {
            return Discovered::Ignored(Ignored::NotDirect);
        }
        if !self.peers.contains_key(&peer)
            && self.peers.len() >= MAX_PEERS
            && !is_authorized(policy, &peer, now)
        {
            return Discovered::Ignored(Ignored::Full);
        }
        let addrs = self.peers.entry(peer).or_default();
        if addrs.contains(&addr) {
            return Discovered::Known;
        }
        if addrs.len() >= MAX_ADDRS_PER_PEER {
            return Discovered::Ignored(Ignored::TooManyAddresses);
        }
        addrs.insert(addr);
        Discovered::Added
    }

    /// A record's TTL passed: forget it. Returns whether it was known.
    pub fn handle_expired(&mut self, peer: &PeerId, addr: &Multiaddr) -> bool {
        let Some(addrs) = self.peers.get_mut(peer) else {
            return false;
        };
        let known = addrs.remove(addr);
        if addrs.is_empty() {
            self.peers.remove(peer);
        }
        known
    }

    /// The addresses of `peer` to dial: empty unless the policy authorizes
    /// it at `now`.
    pub fn usable(&self, peer: &PeerId, policy: &Policy, now: UnixTime) -> Vec<Multiaddr> {
        if !is_authorized(policy, peer, now) {
            return Vec::new();
        }
        self.peers
            .get(peer)
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every authorized peer on the LAN with its addresses.
    pub fn authorized(&self, policy: &Policy, now: UnixTime) -> BTreeMap<PeerId, Vec<Multiaddr>> {
        self.peers
            .iter()
            .filter(|(p, _)| is_authorized(policy, p, now))
            .map(|(p, a)| (*p, a.iter().cloned().collect()))
            .collect()
    }

    /// Peers held, authorized or not.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is held.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

/// How long the first mDNS query waits after the node's first listen
/// address: its listeners report all their addresses together, so this
/// covers the rest of them.
pub const FIRST_QUERY_SETTLE: core::time::Duration = core::time::Duration::from_millis(250);

/// The first mDNS query goes out this long after the discoverer was made
/// at the latest, listen addresses or not (a node that listens on nothing
/// still finds its peers).
pub const FIRST_QUERY_LATEST: core::time::Duration = core::time::Duration::from_secs(2);

/// When a node's mDNS discoverer starts (and sends its first query).
///
/// A discoverer answers its own query (multicast loops back to the
/// sender), and every node on the LAN takes in every answer it hears: that
/// answer is how the nodes already there learn of a newcomer. They do not
/// ask again for minutes: libp2p-mdns stops its quick probing as soon as
/// it has heard anyone. A discoverer that started before its node had
/// listen addresses answered its own query with nothing, so a home that
/// was already on the LAN did not hear a laptop that joined for five
/// minutes (the next query). Hence the first query waits for the node's
/// addresses: [`FIRST_QUERY_SETTLE`] after the first one, and never more
/// than [`FIRST_QUERY_LATEST`] after [`FirstQuery::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstQuery {
    latest: Instant,
    settled: Option<Instant>,
}

impl FirstQuery {
    /// A discoverer made at `now`, not started.
    pub fn new(now: Instant) -> Self {
        FirstQuery {
            latest: now + FIRST_QUERY_LATEST,
            settled: None,
        }
    }

    /// The node has a new listen address (a relay circuit is not one: the
    /// LAN never learns those).
    pub fn on_listen_addr(&mut self, now: Instant) {
        if self.settled.is_none() {
            self.settled = Some(now + FIRST_QUERY_SETTLE);
        }
    }

    /// When the discoverer starts.
    pub fn due_at(&self) -> Instant {
        self.settled.map_or(self.latest, |s| s.min(self.latest))
    }
}

/// Listed in `authorized_keys`, valid and unexpired: the only peers whose
/// LAN addresses are used. With gating off too: discovery is not a reason
/// to dial a stranger.
fn is_authorized(policy: &Policy, peer: &PeerId, now: UnixTime) -> bool {
    policy.status(peer, now) == Status::Authorized
}

/// `/ip4|ip6/<unicast>/tcp/<port>/p2p/<peer>` or
/// `/ip4|ip6/<unicast>/udp/<port>/quic-v1/p2p/<peer>`, and nothing else.
pub fn is_direct_address_of(peer: &PeerId, addr: &Multiaddr) -> bool {
    let parts: Vec<Protocol<'_>> = addr.iter().collect();
    let ip = match parts.first() {
        Some(Protocol::Ip4(ip)) => IpAddr::V4(*ip),
        Some(Protocol::Ip6(ip)) => IpAddr::V6(*ip),
        _ => return false,
    };
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
        return false;
    }
    match parts.as_slice() {
        [_, Protocol::Tcp(port), Protocol::P2p(p)]
        | [_, Protocol::Udp(port), Protocol::QuicV1, Protocol::P2p(p)] => *port != 0 && p == peer,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::Document;

    const HOME: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const STRANGER: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    #[test]
    fn the_first_query_waits_for_the_listen_addresses_but_not_for_ever() {
        let t0 = Instant::ZERO + core::time::Duration::from_secs(100);
        let ms = core::time::Duration::from_millis;
        let mut q = FirstQuery::new(t0);
        assert_eq!(q.due_at(), t0 + FIRST_QUERY_LATEST, "no address yet");
        q.on_listen_addr(t0 + ms(30));
        assert_eq!(q.due_at(), t0 + ms(30) + FIRST_QUERY_SETTLE);
        q.on_listen_addr(t0 + ms(40));
        assert_eq!(
            q.due_at(),
            t0 + ms(30) + FIRST_QUERY_SETTLE,
            "settled from the first address, not pushed back by the next"
        );
        let mut late = FirstQuery::new(t0);
        late.on_listen_addr(t0 + ms(1900));
        assert_eq!(late.due_at(), t0 + FIRST_QUERY_LATEST, "never later");
    }

    fn id(s: &str) -> PeerId {
        s.parse().unwrap()
    }

    fn policy(text: &str) -> Policy {
        Policy::new(true, &Document::parse(text)).0
    }

    fn addr(peer: &str, rest: &str) -> Multiaddr {
        format!("{rest}/p2p/{peer}").parse().unwrap()
    }

    const NOW: UnixTime = UnixTime::from_secs(1_000_000);

    #[test]
    fn uses_only_authorized_peers_addresses() {
        let p = policy(&format!("{HOME}\n"));
        let mut t = Table::new();
        let home = addr(HOME, "/ip4/192.168.50.2/tcp/4001");
        let stranger = addr(STRANGER, "/ip4/192.168.50.4/tcp/4001");
        assert_eq!(
            t.handle_discovered(id(HOME), home.clone(), &p, NOW),
            Discovered::Added
        );
        assert_eq!(
            t.handle_discovered(id(STRANGER), stranger, &p, NOW),
            Discovered::Added
        );
        assert_eq!(t.usable(&id(HOME), &p, NOW), vec![home.clone()]);
        assert!(t.usable(&id(STRANGER), &p, NOW).is_empty());
        assert_eq!(
            t.authorized(&p, NOW),
            BTreeMap::from([(id(HOME), vec![home])])
        );
    }

    #[test]
    fn a_peer_authorized_after_discovery_becomes_usable() {
        let mut t = Table::new();
        let a = addr(STRANGER, "/ip4/192.168.50.4/udp/4001/quic-v1");
        t.handle_discovered(id(STRANGER), a.clone(), &policy(""), NOW);
        assert!(t.usable(&id(STRANGER), &policy(""), NOW).is_empty());
        // Paired later: the record heard before is used now (the
        // discoverer never reports a refreshed record again).
        let paired = policy(&format!("{STRANGER}\n"));
        assert_eq!(t.usable(&id(STRANGER), &paired, NOW), vec![a]);
    }

    #[test]
    fn revoked_and_expired_peers_are_not_used() {
        let mut t = Table::new();
        let a = addr(HOME, "/ip4/192.168.50.2/tcp/4001");
        let p = policy(&format!("{HOME} expires=1970-01-12T13:46:40Z\n"));
        t.handle_discovered(id(HOME), a.clone(), &p, NOW);
        assert_eq!(
            t.usable(&id(HOME), &p, UnixTime::from_secs(999_999)),
            vec![a]
        );
        assert!(
            t.usable(&id(HOME), &p, NOW).is_empty(),
            "expires is exclusive"
        );
        assert!(t.usable(&id(HOME), &policy(""), NOW).is_empty());
        let invalid = policy(&format!("{HOME}\n{HOME} expires=garbage\n"));
        assert!(t.usable(&id(HOME), &invalid, NOW).is_empty());
    }

    #[test]
    fn gating_off_still_uses_only_listed_peers() {
        let p = Policy::new(false, &Document::parse("")).0;
        let mut t = Table::new();
        t.handle_discovered(
            id(STRANGER),
            addr(STRANGER, "/ip4/192.168.50.4/tcp/1"),
            &p,
            NOW,
        );
        assert!(t.usable(&id(STRANGER), &p, NOW).is_empty());
    }

    #[test]
    fn expired_records_are_forgotten() {
        let p = policy(&format!("{HOME}\n"));
        let mut t = Table::new();
        let a = addr(HOME, "/ip4/192.168.50.2/tcp/4001");
        let b = addr(HOME, "/ip4/192.168.50.2/udp/4001/quic-v1");
        t.handle_discovered(id(HOME), a.clone(), &p, NOW);
        t.handle_discovered(id(HOME), b.clone(), &p, NOW);
        assert_eq!(
            t.handle_discovered(id(HOME), a.clone(), &p, NOW),
            Discovered::Known
        );
        assert!(t.handle_expired(&id(HOME), &a));
        assert!(!t.handle_expired(&id(HOME), &a));
        assert_eq!(t.usable(&id(HOME), &p, NOW), vec![b.clone()]);
        assert!(t.handle_expired(&id(HOME), &b));
        assert!(t.is_empty());
    }

    #[test]
    fn refuses_addresses_that_are_not_direct_addresses_of_the_peer() {
        let p = policy(&format!("{HOME}\n"));
        let relay = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";
        for bad in [
            format!("/ip4/192.168.50.2/tcp/4001/p2p/{STRANGER}"),
            "/ip4/192.168.50.2/tcp/4001".to_owned(),
            format!("/ip4/0.0.0.0/tcp/4001/p2p/{HOME}"),
            format!("/ip4/224.0.0.251/tcp/4001/p2p/{HOME}"),
            format!("/ip4/255.255.255.255/tcp/4001/p2p/{HOME}"),
            format!("/ip6/::/tcp/4001/p2p/{HOME}"),
            format!("/ip4/192.168.50.2/tcp/0/p2p/{HOME}"),
            format!("/dns4/home.lan/tcp/4001/p2p/{HOME}"),
            format!("/ip4/192.168.50.2/udp/4001/p2p/{HOME}"),
            format!("/ip4/192.168.50.2/tcp/4001/ws/p2p/{HOME}"),
            format!("/ip4/203.0.113.7/tcp/7777/p2p/{relay}/p2p-circuit/p2p/{HOME}"),
        ] {
            let a: Multiaddr = bad.parse().unwrap();
            assert_eq!(
                Table::new().handle_discovered(id(HOME), a, &p, NOW),
                Discovered::Ignored(Ignored::NotDirect),
                "{bad}"
            );
        }
        for good in [
            format!("/ip4/192.168.50.2/tcp/4001/p2p/{HOME}"),
            format!("/ip6/fe80::1/udp/4001/quic-v1/p2p/{HOME}"),
            format!("/ip4/127.0.0.1/tcp/4001/p2p/{HOME}"),
        ] {
            assert!(
                is_direct_address_of(&id(HOME), &good.parse().unwrap()),
                "{good}"
            );
        }
    }

    fn peer(n: u32) -> PeerId {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&n.to_be_bytes());
        libp2p_identity::Keypair::ed25519_from_bytes(seed)
            .unwrap()
            .public()
            .to_peer_id()
    }

    #[test]
    fn bounded_against_a_flood_but_authorized_peers_still_fit() {
        let p = policy(&format!("{HOME}\n"));
        let mut t = Table::new();
        for n in 0..MAX_PEERS as u32 + 10 {
            let q = peer(n);
            t.handle_discovered(
                q,
                format!("/ip4/10.0.0.1/tcp/1/p2p/{q}").parse().unwrap(),
                &p,
                NOW,
            );
        }
        assert_eq!(t.len(), MAX_PEERS);
        let q = peer(100_000);
        assert_eq!(
            t.handle_discovered(
                q,
                format!("/ip4/10.0.0.1/tcp/1/p2p/{q}").parse().unwrap(),
                &p,
                NOW
            ),
            Discovered::Ignored(Ignored::Full)
        );
        let home = addr(HOME, "/ip4/192.168.50.2/tcp/4001");
        assert_eq!(
            t.handle_discovered(id(HOME), home.clone(), &p, NOW),
            Discovered::Added
        );
        assert_eq!(t.usable(&id(HOME), &p, NOW), vec![home]);
        for port in 2..=MAX_ADDRS_PER_PEER as u16 {
            assert_eq!(
                t.handle_discovered(
                    id(HOME),
                    addr(HOME, &format!("/ip4/192.168.50.2/tcp/{port}")),
                    &p,
                    NOW
                ),
                Discovered::Added
            );
        }
        assert_eq!(
            t.handle_discovered(id(HOME), addr(HOME, "/ip4/192.168.50.2/tcp/9999"), &p, NOW),
            Discovered::Ignored(Ignored::TooManyAddresses)
        );
    }
}
