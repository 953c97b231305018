//! This machine's NAT behaviour, from the addresses others observe
//! (`peerup doctor`, issue 19).
//!
//! Input: [`Observation`]s, one per connection this machine made: the
//! destination it dialed, the local socket the connection left from, and
//! the address the destination reported seeing (libp2p identify's
//! `observed_addr`). Output: [`classify`] returns a [`NatReport`], a
//! [`NatBehaviour`] per transport and one overall. No I/O, no clock: the
//! caller gathers the observations.
//!
//! The rule (RFC 4787 "mapping behaviour"): connections that leave from
//! **one local socket** to **different destinations** are compared.
//!
//! - every observer sees our own local address: no NAT on the path
//!   ([`NatBehaviour::NoNat`]; one observer is enough to tell);
//! - two or more destinations see the same external address and port:
//!   the NAT keeps one mapping per local socket
//!   ([`NatBehaviour::EndpointIndependent`]), so a hole punch (DCUtR) can
//!   work;
//! - they see different ports (or addresses): a new mapping per
//!   destination ([`NatBehaviour::EndpointDependent`], "symmetric NAT"):
//!   what the relay saw is useless to the peer, and hole punching fails;
//!   connections stay relayed;
//! - fewer than two destinations from one socket:
//!   [`NatBehaviour::Unknown`], saying what is missing.
//!
//! UDP is judged apart from TCP (a NAT may treat them differently). The
//! overall verdict is UDP's when it is known: all QUIC dials share one UDP
//! socket for sure, while a TCP dial leaves from the listen port only when
//! the transport reuses it, which the caller cannot confirm per
//! connection (`peerup doctor` passes QUIC observations only: on loopback
//! its TCP dials to two relay ports left from two ports).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use multiaddr::Protocol;

use crate::Multiaddr;

/// The transport an observation was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    /// UDP (QUIC).
    Udp,
    /// TCP (plain, or under WebSocket).
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// One connection's view of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Who observed (for the report): a relay's address, a peer.
    pub observer: String,
    /// The transport.
    pub transport: Transport,
    /// The address dialed.
    pub destination: SocketAddr,
    /// The local socket the connection left from.
    pub local: SocketAddr,
    /// The address the observer saw it come from.
    pub observed: SocketAddr,
}

impl Observation {
    /// An observation from multiaddrs: `destination` (the address dialed,
    /// `/p2p/..` and `/ws` tails allowed), `local` (the local listen
    /// address the dial left from) and `observed` (identify's).
    ///
    /// `None` when an address has no IP and port (a `/dns` name, a
    /// circuit), or the transports differ.
    pub fn from_multiaddrs(
        observer: impl Into<String>,
        destination: &Multiaddr,
        local: &Multiaddr,
        observed: &Multiaddr,
    ) -> Option<Observation> {
        let (t, destination) = socket_of(destination)?;
        let (tl, local) = socket_of(local)?;
        let (to, observed) = socket_of(observed)?;
        // One address family: a dial to the other family's address does
        // not leave from this local socket.
        let family = destination.is_ipv4();
        (t == tl && t == to && local.is_ipv4() == family && observed.is_ipv4() == family).then(
            || Observation {
                observer: observer.into(),
                transport: t,
                destination,
                local,
                observed,
            },
        )
    }
}

/// The transport and socket address at the start of a multiaddr
/// (`/ip4|ip6/<ip>/tcp|udp/<port>/...`), if it has one.
pub fn socket_of(addr: &Multiaddr) -> Option<(Transport, SocketAddr)> {
    let mut it = addr.iter();
    let ip: IpAddr = match it.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match it.next()? {
        Protocol::Tcp(port) => Some((Transport::Tcp, SocketAddr::new(ip, port))),
        Protocol::Udp(port) => Some((Transport::Udp, SocketAddr::new(ip, port))),
        _ => None,
    }
}

/// How the NAT in front of this machine maps its sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatBehaviour {
    /// Observers see our own address: no NAT on the path.
    NoNat {
        /// The (public) address.
        public: SocketAddr,
    },
    /// Different destinations see one external address and port.
    EndpointIndependent {
        /// The mapping.
        external: SocketAddr,
    },
    /// Different destinations see different external ports or addresses
    /// ("symmetric NAT").
    EndpointDependent {
        /// What each destination saw, in order.
        external: Vec<SocketAddr>,
    },
    /// Cannot tell; why, and what would tell.
    Unknown(String),
}

impl NatBehaviour {
    /// A short stable name: `no-nat`, `endpoint-independent`,
    /// `endpoint-dependent`, `unknown`.
    pub fn kind(&self) -> &'static str {
        match self {
            NatBehaviour::NoNat { .. } => "no-nat",
            NatBehaviour::EndpointIndependent { .. } => "endpoint-independent",
            NatBehaviour::EndpointDependent { .. } => "endpoint-dependent",
            NatBehaviour::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for NatBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatBehaviour::NoNat { public } => {
                write!(f, "no NAT (observed as {public}, our own address)")
            }
            NatBehaviour::EndpointIndependent { external } => write!(
                f,
                "endpoint-independent mapping (every destination sees {external}): hole punching can work"
            ),
            NatBehaviour::EndpointDependent { external } => {
                let list: Vec<String> = external.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "endpoint-dependent mapping (symmetric NAT: destinations see {}): hole punching fails, connections stay relayed",
                    list.join(", ")
                )
            }
            NatBehaviour::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// The verdict for one transport, and what it compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The transport.
    pub transport: Transport,
    /// The behaviour.
    pub behaviour: NatBehaviour,
    /// The observations compared: (observer, destination, observed).
    pub compared: Vec<(String, SocketAddr, SocketAddr)>,
}

/// [`classify`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatReport {
    /// Over UDP (QUIC).
    pub udp: Verdict,
    /// Over TCP.
    pub tcp: Verdict,
    /// UDP's verdict when known, else TCP's.
    pub overall: NatBehaviour,
}

/// What would give the missing observations.
pub const NEEDS_TWO: &str =
    "needs two observers: two destinations reached from the same local socket";

/// Classifies the observations (see the module doc).
pub fn classify(observations: &[Observation]) -> NatReport {
    let udp = verdict(Transport::Udp, observations);
    let tcp = verdict(Transport::Tcp, observations);
    let overall = match (&udp.behaviour, &tcp.behaviour) {
        (NatBehaviour::Unknown(u), NatBehaviour::Unknown(t)) => {
            if u == t {
                NatBehaviour::Unknown(u.clone())
            } else {
                NatBehaviour::Unknown(format!("udp: {u}; tcp: {t}"))
            }
        }
        (NatBehaviour::Unknown(_), known) => known.clone(),
        (known, _) => known.clone(),
    };
    NatReport { udp, tcp, overall }
}

fn verdict(transport: Transport, all: &[Observation]) -> Verdict {
    let mine: Vec<&Observation> = all.iter().filter(|o| o.transport == transport).collect();
    // The local socket with the most distinct destinations (ties: the
    // first seen), so only connections from one socket are compared.
    let mut best: Option<(SocketAddr, usize)> = None;
    for o in &mine {
        let n = distinct_destinations(mine.iter().filter(|x| x.local == o.local));
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((o.local, n));
        }
    }
    // None: no observation of this transport.
    let Some((local, destinations)) = best else {
        return Verdict {
            transport,
            behaviour: NatBehaviour::Unknown(format!("no {transport} observation")),
            compared: Vec::new(),
        };
    };
    let group: Vec<&Observation> = mine.into_iter().filter(|o| o.local == local).collect();
    let same_as_local = |o: &&Observation| {
        o.observed.port() == o.local.port()
            && (o.observed.ip() == o.local.ip() || o.local.ip().is_unspecified())
            && !o.observed.ip().is_unspecified()
    };
    // A destination that sees our own socket reached us without a NAT (a
    // relay on the LAN): it says nothing of the NAT the others crossed.
    let natted: Vec<&Observation> = group
        .iter()
        .copied()
        .filter(|o| !same_as_local(o))
        .collect();
    let no_nat = natted.is_empty();
    let group = if no_nat { group } else { natted };
    let destinations = if no_nat {
        destinations
    } else {
        distinct_destinations(group.iter())
    };
    let compared = group
        .iter()
        .map(|o| (o.observer.clone(), o.destination, o.observed))
        .collect();
    let behaviour = if no_nat {
        NatBehaviour::NoNat {
            public: group[0].observed,
        }
    } else if destinations < 2 {
        NatBehaviour::Unknown(format!(
            "one {transport} observer ({} saw {}); {NEEDS_TWO}",
            group[0].observer, group[0].observed
        ))
    } else if group.iter().all(|o| o.observed == group[0].observed) {
        NatBehaviour::EndpointIndependent {
            external: group[0].observed,
        }
    } else {
        let mut external: Vec<SocketAddr> = Vec::new();
        for o in &group {
            if !external.contains(&o.observed) {
                external.push(o.observed);
            }
        }
        NatBehaviour::EndpointDependent { external }
    };
    Verdict {
        transport,
        behaviour,
        compared,
    }
}

fn distinct_destinations<'a>(it: impl Iterator<Item = &'a &'a Observation>) -> usize {
    let mut seen: Vec<SocketAddr> = Vec::new();
    for o in it {
        if !seen.contains(&o.destination) {
            seen.push(o.destination);
        }
    }
    seen.len()
}

/// The IPv4 default gateway in a Linux route table (`/proc/net/route`'s
/// text): the first route to `00000000` with a gateway other than
/// `00000000`. The table prints addresses as the host's integer of the
/// network-order bytes. Garbage lines are skipped.
pub fn default_gateway(route_table: &str) -> Option<Ipv4Addr> {
    route_table.lines().skip(1).find_map(|l| {
        let mut f = l.split_whitespace().skip(1);
        if f.next() != Some("00000000") {
            return None;
        }
        let gw = u32::from_str_radix(f.next()?, 16).ok()?;
        (gw != 0).then(|| Ipv4Addr::from(gw.to_ne_bytes()))
    })
}

/// Why a NAT-PMP answer gives no external address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatPmpError {
    /// Too short, or not an external address answer (opcode 128).
    NotAnAnswer {
        /// Its length.
        len: usize,
    },
    /// The gateway answered with a result code other than 0.
    Code(u16),
}

/// The external address in a NAT-PMP answer to an external address
/// request (RFC 6886 §3.2: version, opcode 128, result code, seconds,
/// address; 12 bytes).
///
/// # Errors
/// [`NatPmpError`].
pub fn natpmp_external_address(answer: &[u8]) -> Result<Ipv4Addr, NatPmpError> {
    match answer {
        [_, 128, c0, c1, _, _, _, _, a, b, c, d, ..] => match u16::from_be_bytes([*c0, *c1]) {
            0 => Ok(Ipv4Addr::new(*a, *b, *c, *d)),
            code => Err(NatPmpError::Code(code)),
        },
        _ => Err(NatPmpError::NotAnAnswer { len: answer.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn obs(t: Transport, dest: &str, local: &str, observed: &str) -> Observation {
        Observation {
            observer: format!("relay {dest}"),
            transport: t,
            destination: sa(dest),
            local: sa(local),
            observed: sa(observed),
        }
    }

    #[test]
    fn same_port_to_two_destinations_is_endpoint_independent() {
        let r = classify(&[
            obs(
                Transport::Udp,
                "198.51.100.1:7777",
                "10.2.0.2:40000",
                "198.51.100.12:40000",
            ),
            obs(
                Transport::Udp,
                "198.51.100.1:7778",
                "10.2.0.2:40000",
                "198.51.100.12:40000",
            ),
        ]);
        assert_eq!(
            r.overall,
            NatBehaviour::EndpointIndependent {
                external: sa("198.51.100.12:40000")
            }
        );
        assert_eq!(r.udp.compared.len(), 2);
    }

    #[test]
    fn different_ports_to_two_destinations_is_endpoint_dependent() {
        let r = classify(&[
            obs(
                Transport::Udp,
                "198.51.100.1:7777",
                "10.2.0.2:40000",
                "198.51.100.12:1024",
            ),
            obs(
                Transport::Udp,
                "198.51.100.1:7778",
                "10.2.0.2:40000",
                "198.51.100.12:2048",
            ),
        ]);
        assert_eq!(r.overall.kind(), "endpoint-dependent");
        assert!(r.overall.to_string().contains("symmetric"));
    }

    #[test]
    fn one_observer_is_unknown_and_says_what_would_tell() {
        let r = classify(&[obs(
            Transport::Udp,
            "198.51.100.1:7777",
            "10.2.0.2:40000",
            "198.51.100.12:1024",
        )]);
        match &r.overall {
            NatBehaviour::Unknown(why) => assert!(why.contains("needs two observers"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn own_address_seen_is_no_nat_even_with_one_observer() {
        let r = classify(&[obs(
            Transport::Udp,
            "127.0.0.1:7777",
            "127.0.0.1:40000",
            "127.0.0.1:40000",
        )]);
        assert_eq!(
            r.overall,
            NatBehaviour::NoNat {
                public: sa("127.0.0.1:40000")
            }
        );
    }

    #[test]
    fn the_same_destination_twice_is_one_observer() {
        let r = classify(&[
            obs(
                Transport::Tcp,
                "198.51.100.1:7777",
                "10.2.0.2:40000",
                "198.51.100.12:1",
            ),
            obs(
                Transport::Tcp,
                "198.51.100.1:7777",
                "10.2.0.2:40000",
                "198.51.100.12:2",
            ),
        ]);
        assert_eq!(r.tcp.behaviour.kind(), "unknown");
    }

    #[test]
    fn different_local_sockets_are_not_compared() {
        // Two TCP dials without port reuse: each from its own port.
        let r = classify(&[
            obs(
                Transport::Tcp,
                "198.51.100.1:7777",
                "10.2.0.2:40000",
                "198.51.100.12:40000",
            ),
            obs(
                Transport::Tcp,
                "198.51.100.1:443",
                "10.2.0.2:40001",
                "198.51.100.12:40001",
            ),
        ]);
        assert_eq!(r.tcp.behaviour.kind(), "unknown");
    }

    #[test]
    fn udp_decides_over_tcp_when_known() {
        let r = classify(&[
            obs(
                Transport::Udp,
                "198.51.100.1:7777",
                "10.2.0.2:4000",
                "198.51.100.12:4000",
            ),
            obs(
                Transport::Udp,
                "198.51.100.1:7778",
                "10.2.0.2:4000",
                "198.51.100.12:4000",
            ),
            obs(
                Transport::Tcp,
                "198.51.100.1:7777",
                "10.2.0.2:5000",
                "198.51.100.12:9",
            ),
            obs(
                Transport::Tcp,
                "198.51.100.1:443",
                "10.2.0.2:5000",
                "198.51.100.12:10",
            ),
        ]);
        assert_eq!(r.overall.kind(), "endpoint-independent");
        assert_eq!(r.tcp.behaviour.kind(), "endpoint-dependent");
    }

    #[test]
    fn tcp_decides_when_udp_is_unknown() {
        let r = classify(&[
            obs(
                Transport::Tcp,
                "198.51.100.1:7777",
                "10.2.0.2:5000",
                "198.51.100.12:9",
            ),
            obs(
                Transport::Tcp,
                "198.51.100.1:443",
                "10.2.0.2:5000",
                "198.51.100.12:10",
            ),
        ]);
        assert_eq!(r.overall.kind(), "endpoint-dependent");
    }

    #[test]
    fn nothing_observed_is_unknown() {
        assert_eq!(classify(&[]).overall.kind(), "unknown");
    }

    #[test]
    fn observation_from_multiaddrs() {
        let m = |s: &str| s.parse::<Multiaddr>().expect("test multiaddr");
        let o = Observation::from_multiaddrs(
            "relay",
            &m("/ip4/198.51.100.1/tcp/443/ws/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"),
            &m("/ip4/10.2.0.2/tcp/5000"),
            &m("/ip4/198.51.100.12/tcp/6000/ws"),
        )
        .expect("observation");
        assert_eq!(o.transport, Transport::Tcp);
        assert_eq!(o.destination, sa("198.51.100.1:443"));
        assert!(
            Observation::from_multiaddrs(
                "relay",
                &m("/ip4/198.51.100.1/udp/7777/quic-v1"),
                &m("/ip4/10.2.0.2/tcp/5000"),
                &m("/ip4/198.51.100.12/udp/1/quic-v1"),
            )
            .is_none()
        );
    }

    /// A dual-stack list: an IPv6 observation never joins an IPv4
    /// socket's comparison, so no NAT is not called symmetric.
    #[test]
    fn families_are_not_mixed() {
        let v4: Multiaddr = "/ip4/198.51.100.1/udp/7777/quic-v1".parse().unwrap();
        let v6: Multiaddr = "/ip6/2001:db8::1/udp/7777/quic-v1".parse().unwrap();
        let local: Multiaddr = "/ip4/0.0.0.0/udp/4000/quic-v1".parse().unwrap();
        let seen6: Multiaddr = "/ip6/2001:db8::2/udp/5555/quic-v1".parse().unwrap();
        let seen4: Multiaddr = "/ip4/203.0.113.1/udp/4000/quic-v1".parse().unwrap();
        assert!(Observation::from_multiaddrs("v6", &v6, &local, &seen6).is_none());
        let o = Observation::from_multiaddrs("v4", &v4, &local, &seen4).unwrap();
        assert!(matches!(
            classify(&[o]).udp.behaviour,
            NatBehaviour::NoNat { .. }
        ));
    }

    /// A relay on the LAN sees our own socket; one on the internet sees
    /// the NAT's: that is one observation through the NAT, not a
    /// symmetric NAT.
    #[test]
    fn a_lan_observer_is_left_out_of_the_mapping() {
        let lan = obs_at(
            "lan",
            "192.168.1.1:7777",
            "192.168.1.5:4000",
            "192.168.1.5:4000",
        );
        let net = obs_at(
            "net",
            "198.51.100.1:7777",
            "192.168.1.5:4000",
            "203.0.113.1:61000",
        );
        let r = classify(&[lan, net.clone()]);
        assert!(
            matches!(r.udp.behaviour, NatBehaviour::Unknown(_)),
            "{:?}",
            r.udp
        );
        let net2 = obs_at(
            "net2",
            "198.51.100.2:7777",
            "192.168.1.5:4000",
            "203.0.113.1:61000",
        );
        let r = classify(&[net, net2]);
        assert!(
            matches!(r.udp.behaviour, NatBehaviour::EndpointIndependent { .. }),
            "{:?}",
            r.udp
        );
    }

    fn obs_at(who: &str, dest: &str, local: &str, seen: &str) -> Observation {
        Observation {
            observer: who.into(),
            transport: Transport::Udp,
            destination: sa(dest),
            local: sa(local),
            observed: sa(seen),
        }
    }

    /// The route table: the default route's gateway, whatever else the
    /// table holds; garbage gives none, never a panic.
    #[test]
    fn default_gateway_from_the_route_table() {
        let header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n";
        // As the kernel prints 192.168.1.1 on this host.
        let gw = format!("{:08X}", u32::from_ne_bytes([192, 168, 1, 1]));
        let table = format!(
            "{header}eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\neth0\t00000000\t{gw}\t0003\t0\t0\t0\t00000000\n"
        );
        assert_eq!(default_gateway(&table), Some(Ipv4Addr::new(192, 168, 1, 1)));
        for garbage in [
            "",
            header,
            &format!("{header}eth0\n"),
            &format!("{header}eth0\t00000000\n"),
            &format!("{header}eth0\t00000000\tzz\n"),
            &format!("{header}eth0\t00000000\t00000000\n"),
            &format!("{header}\u{1b}\t00000000\t1FFFFFFFF\n"),
        ] {
            assert_eq!(default_gateway(garbage), None, "{garbage:?}");
        }
    }

    /// NAT-PMP answers: the external address from a valid one (extra
    /// bytes ignored), an error for a short, foreign or failed one.
    #[test]
    fn natpmp_answers() {
        let ok = [0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 7];
        assert_eq!(
            natpmp_external_address(&ok),
            Ok(Ipv4Addr::new(203, 0, 113, 7))
        );
        let mut long = ok.to_vec();
        long.extend([1, 2, 3, 4]);
        assert_eq!(
            natpmp_external_address(&long),
            Ok(Ipv4Addr::new(203, 0, 113, 7))
        );
        assert_eq!(
            natpmp_external_address(&[]),
            Err(NatPmpError::NotAnAnswer { len: 0 })
        );
        assert_eq!(
            natpmp_external_address(&ok[..11]),
            Err(NatPmpError::NotAnAnswer { len: 11 })
        );
        let mut other = ok;
        other[1] = 129;
        assert_eq!(
            natpmp_external_address(&other),
            Err(NatPmpError::NotAnAnswer { len: 12 })
        );
        let mut failed = ok;
        failed[3] = 3;
        assert_eq!(natpmp_external_address(&failed), Err(NatPmpError::Code(3)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn any_obs() -> impl Strategy<Value = Observation> {
            (any::<bool>(), 0u8..4, 0u8..3, 0u16..4).prop_map(|(udp, d, l, o)| Observation {
                observer: format!("o{d}"),
                transport: if udp { Transport::Udp } else { Transport::Tcp },
                destination: SocketAddr::new([198, 51, 100, 1].into(), 7000 + u16::from(d)),
                local: SocketAddr::new([10, 0, 0, 2].into(), 4000 + u16::from(l)),
                observed: SocketAddr::new([203, 0, 113, 1].into(), 9000 + o),
            })
        }

        proptest! {
            /// Any bytes, any text: an answer or an error, never a panic.
            #[test]
            fn gateway_parsers_take_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64), text in ".{0,200}") {
                let _ = natpmp_external_address(&bytes);
                let _ = default_gateway(&text);
            }


            /// A verdict of independence or dependence always rests on two
            /// or more destinations from one local socket, and matches
            /// whether their observed addresses agree.
            #[test]
            fn verdicts_rest_on_two_destinations(v in proptest::collection::vec(any_obs(), 0..12)) {
                let r = classify(&v);
                for verdict in [&r.udp, &r.tcp] {
                    let dests: Vec<_> = verdict.compared.iter().map(|c| c.1).collect();
                    let mut distinct = dests.clone();
                    distinct.sort();
                    distinct.dedup();
                    let all_same = verdict.compared.iter().all(|c| c.2 == verdict.compared[0].2);
                    match &verdict.behaviour {
                        NatBehaviour::EndpointIndependent { .. } => prop_assert!(distinct.len() >= 2 && all_same),
                        NatBehaviour::EndpointDependent { .. } => prop_assert!(distinct.len() >= 2 && !all_same),
                        NatBehaviour::NoNat { .. } => prop_assert!(false, "no observation here is of the local address"),
                        NatBehaviour::Unknown(_) => prop_assert!(distinct.len() < 2),
                    }
                }
            }
        }
    }
}
