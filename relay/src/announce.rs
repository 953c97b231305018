//! The addresses the relay puts in its reservation answers (WIRE.md §17).
//!
//! libp2p's relay answers a reservation with the swarm's external
//! addresses, and sends none while it has none. The relay has no AutoNAT
//! to confirm an address, so it announces addresses it listens on, as
//! libp2p reports them in `NewListenAddr` (a wildcard `0.0.0.0` or `::`
//! listener is reported once per interface address, never as the wildcard
//! itself), restricted to the widest reach present:
//!
//! ```text
//!   public  >  private (RFC 1918, 100.64/10, fc00::/7)  >  loopback  >  link-local
//! ```
//!
//! A relay with a public address announces its public addresses only (a
//! private or loopback address in a circuit address that a node
//! advertises sends its peers dialing into their own networks); a relay on
//! a private network announces its private addresses (what go-libp2p,
//! which keeps public addresses only, would answer empty); a relay
//! listening on loopback only (tests, a relay behind a local tunnel)
//! announces loopback. Link-local addresses carry no zone in a multiaddr,
//! so they are announced only when there is nothing else.
//!
//! Input: the listen addresses, each time they change. Output: the swarm's
//! external addresses, changed by [`sync`] to exactly [`announced`].

use std::net::{IpAddr, Ipv4Addr};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Multiaddr, Swarm};

/// How far an address reaches, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    LinkLocal,
    Loopback,
    Private,
    Public,
}

/// The reach of `addr`'s IP address; `None` for an unspecified one
/// (never announced). An address without an IP address is taken as
/// public: there is nothing to judge it by.
fn reach(addr: &Multiaddr) -> Option<Reach> {
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    });
    let Some(ip) = ip else {
        return Some(Reach::Public);
    };
    if ip.is_unspecified() {
        return None;
    }
    Some(match ip {
        IpAddr::V4(ip) if ip.is_loopback() => Reach::Loopback,
        IpAddr::V4(ip) if ip.is_link_local() => Reach::LinkLocal,
        IpAddr::V4(ip) if ip.is_private() || is_shared(ip) => Reach::Private,
        IpAddr::V6(ip) if ip.is_loopback() => Reach::Loopback,
        IpAddr::V6(ip) if ip.is_unicast_link_local() => Reach::LinkLocal,
        IpAddr::V6(ip) if ip.is_unique_local() => Reach::Private,
        _ => Reach::Public,
    })
}

/// 100.64.0.0/10, carrier-grade NAT (`Ipv4Addr::is_shared` is unstable).
fn is_shared(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 100 && (b & 0xc0) == 64
}

/// The addresses to announce: those of `listen` with the widest reach, in
/// their order, without duplicates.
pub(crate) fn announced(listen: &[Multiaddr]) -> Vec<Multiaddr> {
    // A `/tls/ws` address at an IP fails the certificate check (which is
    // for the relay's name): nodes reach it at the name they configured.
    let listen: Vec<&Multiaddr> = listen
        .iter()
        .filter(|a| !peerup_core::config::relay::is_websocket_tls(a))
        .collect();
    let best = listen.iter().filter_map(|a| reach(a)).max();
    let mut out: Vec<Multiaddr> = Vec::new();
    for a in listen {
        if best.is_some() && reach(a) == best && !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// Makes `swarm`'s external addresses (what the relay behaviour puts in
/// its reservation answers) exactly [`announced`]`(listen)`.
pub(crate) fn sync<B: NetworkBehaviour>(swarm: &mut Swarm<B>, listen: &[Multiaddr]) {
    let want = announced(listen);
    let have: Vec<Multiaddr> = swarm.external_addresses().cloned().collect();
    if want == have {
        return;
    }
    for a in have.iter().filter(|a| !want.contains(a)) {
        swarm.remove_external_address(a);
    }
    for a in want.iter().filter(|a| !have.contains(a)) {
        swarm.add_external_address(a.clone());
    }
    tracing::info!(addrs = ?want, "addresses announced in reservation answers");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(s: &[&str]) -> Vec<Multiaddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn loopback_only_relay_announces_loopback() {
        let l = addrs(&["/ip4/127.0.0.1/tcp/7777", "/ip4/127.0.0.1/udp/7777/quic-v1"]);
        assert_eq!(announced(&l), l);
    }

    #[test]
    fn public_address_hides_private_and_loopback() {
        // What a wildcard listener reports on a server with a public
        // address, a docker bridge and IPv6.
        let l = addrs(&[
            "/ip4/127.0.0.1/tcp/7777",
            "/ip4/203.0.113.7/tcp/7777",
            "/ip4/172.17.0.1/tcp/7777",
            "/ip6/::1/tcp/7777",
            "/ip6/fe80::1/tcp/7777",
            "/ip6/2001:db8::7/tcp/7777",
            "/ip4/203.0.113.7/udp/7777/quic-v1",
        ]);
        assert_eq!(
            announced(&l),
            addrs(&[
                "/ip4/203.0.113.7/tcp/7777",
                "/ip6/2001:db8::7/tcp/7777",
                "/ip4/203.0.113.7/udp/7777/quic-v1",
            ])
        );
    }

    #[test]
    fn private_network_relay_announces_private_addresses() {
        let l = addrs(&[
            "/ip4/127.0.0.1/tcp/7777",
            "/ip4/192.168.1.5/tcp/7777",
            "/ip4/10.0.0.2/tcp/7777",
            "/ip4/100.100.1.1/tcp/7777",
            "/ip6/fd00::5/tcp/7777",
            "/ip4/169.254.0.9/tcp/7777",
        ]);
        assert_eq!(
            announced(&l),
            addrs(&[
                "/ip4/192.168.1.5/tcp/7777",
                "/ip4/10.0.0.2/tcp/7777",
                "/ip4/100.100.1.1/tcp/7777",
                "/ip6/fd00::5/tcp/7777",
            ])
        );
    }

    #[test]
    fn unspecified_is_never_announced() {
        assert!(announced(&addrs(&["/ip4/0.0.0.0/tcp/7777", "/ip6/::/tcp/7777"])).is_empty());
        assert!(announced(&[]).is_empty());
    }

    #[test]
    fn link_local_only_when_nothing_else() {
        let l = addrs(&["/ip6/fe80::1/tcp/7777", "/ip4/127.0.0.1/tcp/7777"]);
        assert_eq!(announced(&l), addrs(&["/ip4/127.0.0.1/tcp/7777"]));
        let l = addrs(&["/ip6/fe80::1/tcp/7777"]);
        assert_eq!(announced(&l), l);
    }

    #[test]
    fn duplicates_once_and_shared_range_bounds() {
        let l = addrs(&["/ip4/10.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/1"]);
        assert_eq!(announced(&l), addrs(&["/ip4/10.0.0.1/tcp/1"]));
        assert!(is_shared("100.64.0.0".parse().unwrap()));
        assert!(is_shared("100.127.255.255".parse().unwrap()));
        assert!(!is_shared("100.128.0.0".parse().unwrap()));
        assert!(!is_shared("100.63.255.255".parse().unwrap()));
    }
}
