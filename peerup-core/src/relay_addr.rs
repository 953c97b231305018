//! Relay addresses, and the flexible input of `peerup relay add`.
//!
//! A relay address in config is a full multiaddr ending in the relay's peer
//! ID: `/ip4/203.0.113.7/tcp/7777/p2p/12D3KooW...` (a `/dns4/...` host, IPv6
//! and `/udp/7777/quic-v1` work too), or a WebSocket one (WIRE.md §16):
//! `/ip4/203.0.113.7/tcp/443/ws/p2p/...`, or with TLS,
//! `/dns4/relay.example.com/tcp/443/tls/ws/p2p/...` (also written `/wss`).
//! Nothing else may follow the transport: an address this node could not
//! dial is refused where it is read, not when the dial fails.
//!
//! `peerup relay add` also takes short forms and builds the multiaddr:
//!
//! | input | becomes |
//! |---|---|
//! | `/ip4/1.2.3.4/tcp/7777/p2p/ID` | as is |
//! | `1.2.3.4` | `/ip4/1.2.3.4/tcp/7777/p2p/ID` |
//! | `1.2.3.4:9000` | `/ip4/1.2.3.4/tcp/9000/p2p/ID` |
//! | `[2001:db8::1]:9000` | `/ip6/2001:db8::1/tcp/9000/p2p/ID` |
//! | `2001:db8::1`, `[2001:db8::1]` | `/ip6/2001:db8::1/tcp/7777/p2p/ID` |
//! | `ws://1.2.3.4:443` | `/ip4/1.2.3.4/tcp/443/ws/p2p/ID` |
//! | `ws://relay.example.com` | `/dns/relay.example.com/tcp/80/ws/p2p/ID` |
//! | `wss://relay.example.com` | `/dns/relay.example.com/tcp/443/tls/ws/p2p/ID` |
//!
//! A short form needs the peer ID from `--peer-id` (the caller may prompt
//! for it on [`RelayInputError::MissingPeerId`]); a host name is refused
//! with the multiaddr to write instead, because a short form cannot say
//! whether the name is IPv4 or IPv6.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

use multiaddr::Protocol;

use crate::config::values::is_host_name;
use crate::{Multiaddr, PeerId};

/// The relay's default port, TCP and UDP.
pub const DEFAULT_PORT: u16 = 7777;

/// A relay's full address: a transport multiaddr ending in `/p2p/<relay>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RelayAddr {
    addr: Multiaddr,
    peer: PeerId,
}

/// Why a multiaddr is not a usable relay address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayAddrError {
    /// Not a multiaddr at all.
    #[error("`{text}` is not a valid multiaddr: {reason}")]
    Invalid {
        /// The rejected text.
        text: String,
        /// The parser's reason.
        reason: String,
    },
    /// No `/p2p/<peer-id>` at the end.
    #[error("relay address `{text}` must end with /p2p/<relay-peer-id>")]
    MissingPeerId {
        /// The rejected address.
        text: String,
    },
    /// Does not start with `/ip4`, `/ip6`, `/dns`, `/dns4` or `/dns6`.
    #[error("relay address `{text}` must start with /ip4/, /ip6/, /dns/, /dns4/ or /dns6/")]
    NoHost {
        /// The rejected address.
        text: String,
    },
    /// No `/tcp/<port>` or `/udp/<port>/quic-v1` after the host.
    #[error("relay address `{text}` needs a transport: /tcp/<port> or /udp/<port>/quic-v1")]
    NoTransport {
        /// The rejected address.
        text: String,
    },
    /// Something other than `/ws`, `/wss` or `/tls/ws` after the
    /// transport.
    #[error(
        "relay address `{text}` has `{extra}` after its transport; only /ws, /wss or /tls/ws (WebSocket) may follow /tcp/<port>, and nothing may follow /udp/<port>/quic-v1"
    )]
    Unsupported {
        /// The rejected address.
        text: String,
        /// What follows the transport.
        extra: String,
    },
    /// Port 0 cannot be dialed.
    #[error("relay address `{text}` has port 0; use the relay's real port (default 7777)")]
    PortZero {
        /// The rejected address.
        text: String,
    },
    /// A circuit address is not a relay's own address.
    #[error("relay address `{text}` contains /p2p-circuit; give the relay's own address")]
    Circuit {
        /// The rejected address.
        text: String,
    },
}

impl RelayAddr {
    /// Validates a multiaddr as a relay address.
    ///
    /// # Errors
    /// [`RelayAddrError`] naming what is missing.
    pub fn new(addr: Multiaddr) -> Result<Self, RelayAddrError> {
        let text = addr.to_string();
        // Whatever its source (text, an invite code, the network), an
        // address that could not be read back from its text is refused.
        if text.len() > crate::identity::MAX_MULTIADDR_TEXT {
            return Err(RelayAddrError::Invalid {
                text: crate::identity::excerpt(&text),
                reason: format!(
                    "longer than {} characters ({} given)",
                    crate::identity::MAX_MULTIADDR_TEXT,
                    text.len()
                ),
            });
        }
        let protos: Vec<Protocol<'_>> = addr.iter().collect();
        if protos.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return Err(RelayAddrError::Circuit { text });
        }
        let Some(Protocol::P2p(peer)) = protos.last() else {
            return Err(RelayAddrError::MissingPeerId { text });
        };
        let peer = *peer;
        if protos
            .iter()
            .filter(|p| matches!(p, Protocol::P2p(_)))
            .count()
            > 1
        {
            return Err(RelayAddrError::Invalid {
                text: crate::identity::excerpt(&text),
                reason: "it names a peer ID twice (one /p2p/<id> at the end)".into(),
            });
        }
        match protos.first() {
            Some(
                Protocol::Ip4(_)
                | Protocol::Ip6(_)
                | Protocol::Dns(_)
                | Protocol::Dns4(_)
                | Protocol::Dns6(_),
            ) => {}
            _ => return Err(RelayAddrError::NoHost { text }),
        }
        let (port, rest) = match (protos.get(1), protos.get(2)) {
            (Some(Protocol::Tcp(port)), _) => (*port, &protos[2..protos.len() - 1]),
            (Some(Protocol::Udp(port)), Some(Protocol::QuicV1)) => {
                (*port, &protos[3..protos.len() - 1])
            }
            _ => return Err(RelayAddrError::NoTransport { text }),
        };
        if port == 0 {
            return Err(RelayAddrError::PortZero { text });
        }
        let tcp = matches!(protos.get(1), Some(Protocol::Tcp(_)));
        // The WebSocket path is the root: libp2p writes it raw into the
        // HTTP request line.
        let root = |p: &Protocol<'_>| match p {
            Protocol::Ws(path) | Protocol::Wss(path) => path == "/",
            _ => false,
        };
        match rest {
            [] => {}
            [ws @ (Protocol::Ws(_) | Protocol::Wss(_))]
            | [Protocol::Tls, ws @ Protocol::Ws(_)]
            | [Protocol::Tls, Protocol::Sni(_), ws @ Protocol::Ws(_)]
                if tcp && root(ws) => {}
            _ => {
                let extra: String = rest.iter().map(|p| p.to_string()).collect();
                return Err(RelayAddrError::Unsupported { text, extra });
            }
        }
        Ok(RelayAddr { addr, peer })
    }

    /// How this address is reached, for display (`status`, `doctor`).
    pub fn transport_kind(&self) -> TransportKind {
        let mut kind = TransportKind::Tcp;
        for p in self.addr.iter() {
            kind = match p {
                Protocol::QuicV1 => TransportKind::Quic,
                Protocol::Tls | Protocol::Wss(_) => TransportKind::WebSocketTls,
                Protocol::Ws(_) if kind != TransportKind::WebSocketTls => TransportKind::WebSocket,
                _ => kind,
            };
        }
        kind
    }

    /// The relay's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer
    }

    /// The full multiaddr, `/p2p/<relay>` included.
    pub fn multiaddr(&self) -> &Multiaddr {
        &self.addr
    }

    /// The address without the trailing `/p2p/<relay>`.
    pub fn transport(&self) -> Multiaddr {
        let mut a = self.addr.clone();
        a.pop();
        a
    }

    /// The circuit address through this relay to `target`:
    /// `<relay>/p2p-circuit/p2p/<target>`.
    pub fn circuit_to(&self, target: PeerId) -> Multiaddr {
        self.addr
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(target))
    }
}

/// The transport of a relay address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransportKind {
    /// `/tcp/<port>`.
    Tcp,
    /// `/udp/<port>/quic-v1`.
    Quic,
    /// `/tcp/<port>/ws`: WebSocket (libp2p's own encryption inside).
    WebSocket,
    /// `/tcp/<port>/tls/ws` or `/wss`: WebSocket in TLS.
    WebSocketTls,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Quic => "quic",
            TransportKind::WebSocket => "ws",
            TransportKind::WebSocketTls => "wss",
        })
    }
}

impl FromStr for RelayAddr {
    type Err = RelayAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr: Multiaddr =
            crate::identity::parse_multiaddr_text(s.trim()).map_err(|reason| {
                RelayAddrError::Invalid {
                    text: crate::identity::excerpt(s),
                    reason,
                }
            })?;
        RelayAddr::new(addr)
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.addr, f)
    }
}

impl fmt::Debug for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayAddr({})", self.addr)
    }
}

impl serde::Serialize for RelayAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.addr)
    }
}

impl<'de> serde::Deserialize<'de> for RelayAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a `peerup relay add` input cannot become a relay address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayInputError {
    /// Nothing given.
    #[error("relay address is empty; give a multiaddr, IP or IP:PORT")]
    Empty,
    /// A full multiaddr that is not a relay address.
    #[error(transparent)]
    Addr(#[from] RelayAddrError),
    /// A short form (or a multiaddr without `/p2p/`) and no `--peer-id`.
    #[error(
        "relay address `{input}` has no peer ID; pass --peer-id <relay-peer-id> (printed by the relay at start)"
    )]
    MissingPeerId {
        /// The input as given.
        input: String,
        /// The transport address built from it, to which `/p2p/<id>` will be
        /// appended once the peer ID is known.
        transport: Multiaddr,
    },
    /// The address's `/p2p/` and `--peer-id` disagree.
    #[error("relay address `{input}` names peer {in_addr} but --peer-id says {given}")]
    PeerIdMismatch {
        /// The input as given.
        input: String,
        /// The peer ID in the address.
        in_addr: String,
        /// The peer ID given separately.
        given: String,
    },
    /// A host name in short form.
    #[error(
        "`{input}` is a host name; write it as a multiaddr, for example /dns4/{host}/tcp/{port}/p2p/<relay-peer-id>"
    )]
    HostName {
        /// The input as given.
        input: String,
        /// The host part.
        host: String,
        /// The port part, or 7777.
        port: u16,
    },
    /// An IP with a port that is not 1-65535.
    #[error("`{input}` has an invalid port `{port}`; use 1-65535 (the relay's default is 7777)")]
    InvalidPort {
        /// The input as given.
        input: String,
        /// The port text.
        port: String,
    },
    /// A `ws://` or `wss://` URL that cannot be one.
    #[error(
        "`{input}` is not a usable WebSocket URL: {reason}; for example ws://203.0.113.7:443 or wss://relay.example.com"
    )]
    Url {
        /// The input as given.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Neither a multiaddr, an IP, nor a host name.
    #[error(
        "`{input}` is not a relay address; use a multiaddr (/ip4/1.2.3.4/tcp/7777/p2p/ID), 1.2.3.4, 1.2.3.4:7777, [2001:db8::1]:7777 or ws://1.2.3.4:443"
    )]
    Unrecognized {
        /// The input as given.
        input: String,
    },
}

/// Turns `peerup relay add` input into a relay address.
///
/// `peer_id` is the `--peer-id` flag. A full multiaddr may carry its own
/// `/p2p/`; if both are given they must agree.
///
/// # Errors
/// [`RelayInputError`]; on `MissingPeerId` the caller may ask for the ID and
/// call again.
pub fn parse_input(input: &str, peer_id: Option<PeerId>) -> Result<RelayAddr, RelayInputError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(RelayInputError::Empty);
    }
    let transport = if text.starts_with('/') {
        let addr: Multiaddr = crate::identity::parse_multiaddr_text(text).map_err(|reason| {
            RelayAddrError::Invalid {
                text: crate::identity::excerpt(text),
                reason,
            }
        })?;
        if let Some(Protocol::P2p(in_addr)) = addr.iter().last() {
            if let Some(given) = peer_id
                && given != in_addr
            {
                return Err(RelayInputError::PeerIdMismatch {
                    input: input.to_owned(),
                    in_addr: in_addr.to_string(),
                    given: given.to_string(),
                });
            }
            return Ok(RelayAddr::new(addr)?);
        }
        addr
    } else {
        short_form(input, text)?
    };
    match peer_id {
        Some(peer) => Ok(RelayAddr::new(transport.with(Protocol::P2p(peer)))?),
        None => Err(RelayInputError::MissingPeerId {
            input: input.to_owned(),
            transport,
        }),
    }
}

fn tcp(ip: core::net::IpAddr, port: u16) -> Multiaddr {
    Multiaddr::from(ip).with(Protocol::Tcp(port))
}

/// `ws://host[:port][/]` and `wss://host[:port][/]`: a WebSocket relay as
/// a browser would write it. Default ports 80 and 443; a host name becomes
/// `/dns/<name>` (either address family); no path, user or query.
fn websocket_url(input: &str, text: &str) -> Option<Result<Multiaddr, RelayInputError>> {
    let (tls, rest) = if let Some(r) = strip_prefix_ignore_case(text, "wss://") {
        (true, r)
    } else {
        (false, strip_prefix_ignore_case(text, "ws://")?)
    };
    let url = |reason| {
        Some(Err(RelayInputError::Url {
            input: input.to_owned(),
            reason,
        }))
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@']) {
        return url("a path, query or user is not supported (the relay serves the root path)");
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((ip, after)) = v6.split_once(']') else {
            return url("an IPv6 address needs its closing ]");
        };
        let Ok(ip) = ip.parse::<Ipv6Addr>() else {
            return url("not an IPv6 address between [ ]");
        };
        (Multiaddr::from(core::net::IpAddr::V6(ip)), after)
    } else {
        let (h, after) = match rest.rsplit_once(':') {
            Some((h, _)) => (h, &rest[h.len()..]),
            None => (rest, ""),
        };
        if let Ok(ip) = h.parse::<Ipv4Addr>() {
            (Multiaddr::from(core::net::IpAddr::V4(ip)), after)
        } else if is_host_name(h) {
            (
                Multiaddr::empty().with(Protocol::Dns(h.to_ascii_lowercase().into())),
                after,
            )
        } else {
            return url("the host is neither an IP address nor a host name");
        }
    };
    let port = match port.strip_prefix(':') {
        None if port.is_empty() => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return url("the port must be 1-65535"),
        },
        None => return url("unexpected text after the host"),
    };
    let mut addr = host.with(Protocol::Tcp(port));
    if tls {
        addr.push(Protocol::Tls);
    }
    addr.push(Protocol::Ws("/".into()));
    Some(Ok(addr))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn short_form(input: &str, text: &str) -> Result<Multiaddr, RelayInputError> {
    if let Some(result) = websocket_url(input, text) {
        return result;
    }
    let invalid_port = |port: &str| RelayInputError::InvalidPort {
        input: input.to_owned(),
        port: port.to_owned(),
    };
    let parse_port = |port: &str| match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(invalid_port(port)),
    };
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(tcp(ip.into(), DEFAULT_PORT));
    }
    if let Ok(ip) = text.parse::<Ipv6Addr>() {
        return Ok(tcp(ip.into(), DEFAULT_PORT));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<Ipv6Addr>()
    {
        return Ok(tcp(ip.into(), DEFAULT_PORT));
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err(invalid_port("0"));
        }
        return Ok(tcp(sa.ip(), sa.port()));
    }
    // `[v6]:port` or `v4:port` with a bad port.
    if let Some((host, port)) = text.rsplit_once(':') {
        let host_ip = host.parse::<Ipv4Addr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok());
        if host_ip {
            parse_port(port)?;
            return Err(invalid_port(port));
        }
    }
    // A host name, with or without a port.
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (text, None),
    };
    if is_host_name(host) {
        let port = match port {
            Some(p) => parse_port(p)?,
            None => DEFAULT_PORT,
        };
        return Err(RelayInputError::HostName {
            input: input.to_owned(),
            host: host.to_owned(),
            port,
        });
    }
    Err(RelayInputError::Unrecognized {
        input: input.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const OTHER: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn id() -> PeerId {
        ID.parse().unwrap()
    }

    fn ok(input: &str) -> String {
        parse_input(input, Some(id())).unwrap().to_string()
    }

    #[test]
    fn short_forms_become_multiaddrs() {
        assert_eq!(ok("1.2.3.4"), format!("/ip4/1.2.3.4/tcp/7777/p2p/{ID}"));
        assert_eq!(
            ok(" 1.2.3.4:9000 "),
            format!("/ip4/1.2.3.4/tcp/9000/p2p/{ID}")
        );
        assert_eq!(
            ok("[2001:db8::1]:9000"),
            format!("/ip6/2001:db8::1/tcp/9000/p2p/{ID}")
        );
        assert_eq!(
            ok("2001:db8::1"),
            format!("/ip6/2001:db8::1/tcp/7777/p2p/{ID}")
        );
        assert_eq!(
            ok("[2001:db8::1]"),
            format!("/ip6/2001:db8::1/tcp/7777/p2p/{ID}")
        );
        assert_eq!(ok("::1"), format!("/ip6/::1/tcp/7777/p2p/{ID}"));
    }

    #[test]
    fn a_peer_id_named_twice_is_refused() {
        let twice = format!("/ip4/1.2.3.4/tcp/7777/p2p/{ID}/p2p/{ID}");
        let e = RelayAddr::new(twice.parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn full_multiaddrs() {
        let full = format!("/ip4/1.2.3.4/tcp/7777/p2p/{ID}");
        assert_eq!(parse_input(&full, None).unwrap().to_string(), full);
        assert_eq!(ok(&full), full);
        assert_eq!(
            ok("/ip4/1.2.3.4/udp/7777/quic-v1"),
            format!("/ip4/1.2.3.4/udp/7777/quic-v1/p2p/{ID}")
        );
        assert_eq!(
            ok("/dns4/relay.example.com/tcp/7777"),
            format!("/dns4/relay.example.com/tcp/7777/p2p/{ID}")
        );
        let r: RelayAddr = full.parse().unwrap();
        assert_eq!(r.peer_id(), id());
        assert_eq!(r.transport().to_string(), "/ip4/1.2.3.4/tcp/7777");
        assert_eq!(
            r.circuit_to(OTHER.parse().unwrap()).to_string(),
            format!("{full}/p2p-circuit/p2p/{OTHER}")
        );
    }

    #[test]
    fn missing_peer_id_keeps_the_transport() {
        match parse_input("1.2.3.4:7777", None) {
            Err(RelayInputError::MissingPeerId { transport, .. }) => {
                assert_eq!(transport.to_string(), "/ip4/1.2.3.4/tcp/7777")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_input("/ip4/1.2.3.4/tcp/7777", None),
            Err(RelayInputError::MissingPeerId { .. })
        ));
    }

    #[test]
    fn rejects_with_reasons() {
        let e = parse_input("relay.example.com", Some(id())).unwrap_err();
        assert!(
            matches!(&e, RelayInputError::HostName { port: 7777, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("/dns4/relay.example.com/tcp/7777/p2p/"),
            "{e}"
        );
        assert!(matches!(
            parse_input("relay.example.com:9000", None),
            Err(RelayInputError::HostName { port: 9000, .. })
        ));
        assert!(matches!(
            parse_input("1.2.3.4:0", Some(id())),
            Err(RelayInputError::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_input("1.2.3.4:70000", Some(id())),
            Err(RelayInputError::InvalidPort { .. })
        ));
        assert!(matches!(
            parse_input("[::1]:x", Some(id())),
            Err(RelayInputError::InvalidPort { .. })
        ));
        assert!(matches!(parse_input("", None), Err(RelayInputError::Empty)));
        assert!(matches!(
            parse_input("1.2.3", Some(id())),
            Err(RelayInputError::Unrecognized { .. })
        ));
        assert!(matches!(
            parse_input("not an address!", None),
            Err(RelayInputError::Unrecognized { .. })
        ));
        assert!(matches!(
            parse_input(
                &format!("/ip4/1.2.3.4/tcp/7777/p2p/{ID}"),
                Some(OTHER.parse().unwrap())
            ),
            Err(RelayInputError::PeerIdMismatch { .. })
        ));
        assert!(matches!(
            parse_input("/ip4/1.2.3.4/tcpp/1", None),
            Err(RelayInputError::Addr(RelayAddrError::Invalid { .. }))
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_input_never_panics(input in ".{0,80}", with_id in proptest::bool::ANY) {
            let _ = parse_input(&input, with_id.then(id));
        }

        #[test]
        fn short_forms_round_trip_through_display(ip in proptest::prelude::any::<[u8; 4]>(), port in 1u16..) {
            let input = format!("{}:{port}", Ipv4Addr::from(ip));
            let addr = parse_input(&input, Some(id())).unwrap();
            let again: RelayAddr = addr.to_string().parse().unwrap();
            proptest::prop_assert_eq!(&again, &addr);
            proptest::prop_assert_eq!(parse_input(&addr.to_string(), None).unwrap(), addr);
        }
    }

    #[test]
    fn websocket_addresses_and_urls() {
        for tail in ["ws", "wss", "tls/ws", "tls/sni/relay.example.com/ws"] {
            let a = format!("/dns4/relay.example.com/tcp/443/{tail}/p2p/{ID}");
            assert_eq!(ok(&a), a);
        }
        let kind = |s: &str| ok(s).parse::<RelayAddr>().unwrap().transport_kind();
        assert_eq!(kind("1.2.3.4"), TransportKind::Tcp);
        assert_eq!(kind("/ip4/1.2.3.4/udp/7777/quic-v1"), TransportKind::Quic);
        assert_eq!(kind("ws://1.2.3.4:443"), TransportKind::WebSocket);
        assert_eq!(kind("wss://relay.example.com"), TransportKind::WebSocketTls);
        assert_eq!(
            ok("ws://1.2.3.4:443"),
            format!("/ip4/1.2.3.4/tcp/443/ws/p2p/{ID}")
        );
        assert_eq!(
            ok("WS://1.2.3.4/"),
            format!("/ip4/1.2.3.4/tcp/80/ws/p2p/{ID}")
        );
        assert_eq!(
            ok("wss://Relay.Example.com"),
            format!("/dns/relay.example.com/tcp/443/tls/ws/p2p/{ID}")
        );
        assert_eq!(
            ok("ws://[2001:db8::1]:8443"),
            format!("/ip6/2001:db8::1/tcp/8443/ws/p2p/{ID}")
        );
        for bad in [
            "ws://1.2.3.4:0",
            "ws://1.2.3.4:x",
            "ws://1.2.3.4/path",
            "ws://user@host",
            "ws://[::1",
            "ws://[nope]:1",
            "ws://",
            "wss://bad_host!",
            "ws://é",
        ] {
            assert!(
                matches!(
                    parse_input(bad, Some(id())),
                    Err(RelayInputError::Url { .. })
                ),
                "{bad}"
            );
        }
        // A URL without a peer ID asks for it, like the other short forms.
        assert!(matches!(
            parse_input("ws://1.2.3.4:443", None),
            Err(RelayInputError::MissingPeerId { .. })
        ));
    }

    #[test]
    fn nothing_else_may_follow_the_transport() {
        for a in [
            format!("/ip4/1.2.3.4/tcp/7777/http/p2p/{ID}"),
            format!("/ip4/1.2.3.4/udp/7777/quic-v1/ws/p2p/{ID}"),
            format!("/ip4/1.2.3.4/tcp/7777/ws/ws/p2p/{ID}"),
            format!("/ip4/1.2.3.4/tcp/7777/tls/p2p/{ID}"),
            format!("/ip4/1.2.3.4/udp/7777/quic-v1/webtransport/p2p/{ID}"),
            format!("/ip4/1.2.3.4/tcp/443/x-parity-ws/%2Fa%0D%0AX:1/p2p/{ID}"),
        ] {
            let e = a.parse::<RelayAddr>().unwrap_err();
            assert!(
                matches!(e, RelayAddrError::Unsupported { .. }),
                "{a}: {e:?}"
            );
            assert!(e.to_string().contains("/ws"), "{e}");
        }
    }

    #[test]
    fn relay_addr_shape() {
        let bad = |s: &str| s.parse::<RelayAddr>().unwrap_err();
        assert!(matches!(
            bad(&format!("/p2p/{ID}")),
            RelayAddrError::NoHost { .. }
        ));
        assert!(matches!(
            bad(&format!("/ip4/1.2.3.4/p2p/{ID}")),
            RelayAddrError::NoTransport { .. }
        ));
        assert!(matches!(
            bad(&format!("/ip4/1.2.3.4/udp/1/p2p/{ID}")),
            RelayAddrError::NoTransport { .. }
        ));
        assert!(matches!(
            bad(&format!("/ip4/1.2.3.4/tcp/0/p2p/{ID}")),
            RelayAddrError::PortZero { .. }
        ));
        assert!(matches!(
            bad("/ip4/1.2.3.4/tcp/7777"),
            RelayAddrError::MissingPeerId { .. }
        ));
        assert!(matches!(
            bad(&format!(
                "/ip4/1.2.3.4/tcp/7777/p2p/{ID}/p2p-circuit/p2p/{OTHER}"
            )),
            RelayAddrError::Circuit { .. }
        ));
    }
}
