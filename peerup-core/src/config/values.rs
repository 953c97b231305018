//! The value types of `peerup.yaml` fields, each parsed from its text
//! with a typed error: [`PeerRef`] (`allowed_peers` entries), [`PeerAddr`]
//! (`discovery.bootstrap_peers`) and [`LocalAddress`] with its [`Host`]
//! (`services.<name>.local_address`). Also re-exported from
//! [`node`](super::node), where they used to live.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use super::de::TextValue;
use crate::naming::Name;
use crate::relay_addr::RelayAddr;
use crate::{Multiaddr, PeerId};

/// An entry of `allowed_peers`: a peer ID or a friendly name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerRef {
    /// A peer ID.
    Id(PeerId),
    /// A name from `names`.
    Name(Name),
}

/// A text that is neither a peer ID nor a valid name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is neither a peer ID (12D3KooW...) nor a valid name: {reason}")]
pub struct PeerRefError {
    /// The rejected text.
    pub text: String,
    /// Why it is not a name.
    pub reason: crate::naming::NameError,
}

impl FromStr for PeerRef {
    type Err = PeerRefError;
    /// A friendly name if the text is one, else a peer ID.
    ///
    /// Names first, as name resolution does: a real peer ID (`12D3KooW...`,
    /// `Qm...`) is never a valid name, but a short word may also decode as
    /// a tiny identity-multihash peer ID (`1z2z`), and in `allowed_peers`
    /// it means the name (found by a round-trip proptest).
    fn from_str(s: &str) -> Result<Self, PeerRefError> {
        match Name::new(s) {
            Ok(name) => Ok(PeerRef::Name(name)),
            Err(reason) => crate::identity::parse_peer_id_text(s)
                .map(PeerRef::Id)
                .ok_or_else(|| PeerRefError {
                    text: crate::identity::excerpt(s),
                    reason,
                }),
        }
    }
}

impl fmt::Display for PeerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerRef::Id(id) => fmt::Display::fmt(id, f),
            PeerRef::Name(n) => fmt::Display::fmt(n, f),
        }
    }
}

impl TextValue for PeerRef {
    const EXPECTING: &'static str = "a peer ID or a name from `names`";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: PeerRefError| e.to_string())
    }
}

/// A multiaddr ending in `/p2p/<peer-id>` (a DHT bootstrap peer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    addr: Multiaddr,
    peer: PeerId,
}

/// Why a multiaddr is not a [`PeerAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerAddrError {
    /// Not a multiaddr.
    #[error("`{text}` is not a valid multiaddr: {reason}")]
    Invalid {
        /// The rejected text.
        text: String,
        /// The parser's reason.
        reason: String,
    },
    /// No `/p2p/<id>` at the end.
    #[error("bootstrap peer `{text}` must end with /p2p/<peer-id>")]
    MissingPeerId {
        /// The rejected address.
        text: String,
    },
}

impl PeerAddr {
    /// Checks that `addr` ends in `/p2p/<id>`.
    ///
    /// # Errors
    /// [`PeerAddrError::MissingPeerId`] otherwise.
    pub fn new(addr: Multiaddr) -> Result<Self, PeerAddrError> {
        match addr.iter().last() {
            Some(multiaddr::Protocol::P2p(peer)) => Ok(PeerAddr { addr, peer }),
            _ => Err(PeerAddrError::MissingPeerId {
                text: addr.to_string(),
            }),
        }
    }

    /// The full multiaddr.
    pub fn multiaddr(&self) -> &Multiaddr {
        &self.addr
    }

    /// The peer ID at its end.
    pub fn peer_id(&self) -> PeerId {
        self.peer
    }
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr: Multiaddr =
            crate::identity::parse_multiaddr_text(s).map_err(|reason| PeerAddrError::Invalid {
                text: crate::identity::excerpt(s),
                reason,
            })?;
        PeerAddr::new(addr)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.addr, f)
    }
}

impl From<RelayAddr> for PeerAddr {
    fn from(r: RelayAddr) -> Self {
        PeerAddr {
            addr: r.multiaddr().clone(),
            peer: r.peer_id(),
        }
    }
}

impl TextValue for PeerAddr {
    const EXPECTING: &'static str = "a multiaddr ending in /p2p/<peer-id>";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: PeerAddrError| e.to_string())
    }
}

/// The host of a [`LocalAddress`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// A host name, as written (`localhost`, `nas.lan`).
    Name(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    Ipv6(Ipv6Addr),
}

/// `host:port` of a local TCP service: `localhost:22`, `192.168.1.5:3389`,
/// `[::1]:8080`. The port is 1-65535.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalAddress {
    host: Host,
    port: u16,
}

/// Why a text is not a `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalAddressError {
    /// No `:port`.
    #[error("`{text}` needs a port: write host:port, like localhost:22")]
    MissingPort {
        /// The rejected text.
        text: String,
    },
    /// The port is not 1-65535.
    #[error("`{text}` has an invalid port `{port}`; use 1-65535")]
    InvalidPort {
        /// The rejected text.
        text: String,
        /// The port as written.
        port: String,
    },
    /// The host is not a host name, an IPv4 address or a bracketed IPv6
    /// address.
    #[error(
        "`{text}` has an invalid host `{host}`; use a host name (localhost), an IPv4 address or [IPv6]"
    )]
    InvalidHost {
        /// The rejected text.
        text: String,
        /// The host as written.
        host: String,
    },
}

impl LocalAddress {
    /// A validated address. A port of 0 is refused.
    ///
    /// # Errors
    /// [`LocalAddressError::InvalidPort`] for port 0,
    /// [`LocalAddressError::InvalidHost`] for a bad host name.
    pub fn new(host: Host, port: u16) -> Result<Self, LocalAddressError> {
        let text = || {
            LocalAddress {
                host: host.clone(),
                port,
            }
            .to_string()
        };
        if port == 0 {
            return Err(LocalAddressError::InvalidPort {
                text: text(),
                port: "0".to_owned(),
            });
        }
        if let Host::Name(name) = &host
            && !is_host_name(name)
        {
            return Err(LocalAddressError::InvalidHost {
                text: text(),
                host: name.clone(),
            });
        }
        Ok(LocalAddress { host, port })
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A DNS host name: dot-separated labels of letters, digits and `-`, with
/// at least one letter (so that `1.2.3` is not taken for a name).
pub(crate) fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && host.bytes().any(|b| b.is_ascii_alphabetic())
}

impl FromStr for LocalAddress {
    type Err = LocalAddressError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(LocalAddressError::MissingPort {
                text: text.to_owned(),
            });
        };
        let bad_host = || LocalAddressError::InvalidHost {
            text: text.to_owned(),
            host: host.to_owned(),
        };
        let host = if let Some(inner) = host.strip_prefix('[') {
            let ip = inner
                .strip_suffix(']')
                .and_then(|i| i.parse::<Ipv6Addr>().ok())
                .ok_or_else(bad_host)?;
            Host::Ipv6(ip)
        } else if host.contains(':') {
            // `::1:22`: an IPv6 address without brackets is ambiguous.
            if text.parse::<Ipv6Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok() {
                return Err(LocalAddressError::InvalidHost {
                    text: text.to_owned(),
                    host: format!("{host} (write IPv6 in brackets: [::1]:22)"),
                });
            }
            return Err(bad_host());
        } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
            Host::Ipv4(ip)
        } else if is_host_name(host) {
            Host::Name(host.to_owned())
        } else {
            return Err(bad_host());
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 && port.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => {
                return Err(LocalAddressError::InvalidPort {
                    text: text.to_owned(),
                    port: port.to_owned(),
                });
            }
        };
        Ok(LocalAddress { host, port })
    }
}

impl fmt::Display for LocalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Name(n) => write!(f, "{n}:{}", self.port),
            Host::Ipv4(ip) => write!(f, "{ip}:{}", self.port),
            Host::Ipv6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

impl TextValue for LocalAddress {
    const EXPECTING: &'static str = "host:port, like localhost:22";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: LocalAddressError| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses() {
        let ok = |s: &str| s.parse::<LocalAddress>().unwrap();
        assert_eq!(
            ok("localhost:22").host(),
            &Host::Name("localhost".to_owned())
        );
        assert_eq!(ok("localhost:22").port(), 22);
        assert_eq!(
            ok("192.168.1.5:3389").host(),
            &Host::Ipv4(Ipv4Addr::new(192, 168, 1, 5))
        );
        assert_eq!(ok("[::1]:8080").host(), &Host::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!(ok("[::1]:8080").to_string(), "[::1]:8080");
        assert_eq!(ok("nas.lan:65535").to_string(), "nas.lan:65535");
        let err = |s: &str| s.parse::<LocalAddress>().unwrap_err();
        assert!(matches!(
            err("localhost"),
            LocalAddressError::MissingPort { .. }
        ));
        assert!(matches!(
            err("localhost:0"),
            LocalAddressError::InvalidPort { .. }
        ));
        assert!(matches!(
            err("localhost:65536"),
            LocalAddressError::InvalidPort { .. }
        ));
        assert!(matches!(
            err("localhost:+22"),
            LocalAddressError::InvalidPort { .. }
        ));
        assert!(matches!(
            err("localhost:"),
            LocalAddressError::InvalidPort { .. }
        ));
        assert!(matches!(err(":22"), LocalAddressError::InvalidHost { .. }));
        assert!(matches!(
            err("::1:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("[::1:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("[1.2.3.4]:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("1.2.3:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("my host:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(matches!(
            err("-x:22"),
            LocalAddressError::InvalidHost { .. }
        ));
        assert!(LocalAddress::new(Host::Name("bad name".into()), 1).is_err());
        assert!(LocalAddress::new(Host::Ipv4(Ipv4Addr::LOCALHOST), 0).is_err());
        assert_eq!(
            LocalAddress::new(Host::Ipv4(Ipv4Addr::LOCALHOST), 22)
                .unwrap()
                .to_string(),
            "127.0.0.1:22"
        );
    }

    #[test]
    fn peer_refs() {
        const ID: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
        assert!(matches!(ID.parse::<PeerRef>(), Ok(PeerRef::Id(_))));
        assert!(matches!("home".parse::<PeerRef>(), Ok(PeerRef::Name(_))));
        let e = "my laptop".parse::<PeerRef>().unwrap_err();
        assert!(e.to_string().contains("neither a peer ID"), "{e}");
        assert_eq!(e.text, "my laptop");
        assert_eq!("home".parse::<PeerRef>().unwrap().to_string(), "home");
    }

    #[test]
    fn peer_addrs() {
        const ID: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
        let p: PeerAddr = format!("/dns4/boot.example/tcp/4001/p2p/{ID}")
            .parse()
            .unwrap();
        assert_eq!(p.peer_id().to_string(), ID);
        assert!(matches!(
            "/ip4/1.2.3.4/tcp/1".parse::<PeerAddr>(),
            Err(PeerAddrError::MissingPeerId { .. })
        ));
        assert!(matches!(
            "nope".parse::<PeerAddr>(),
            Err(PeerAddrError::Invalid { .. })
        ));
    }
}
