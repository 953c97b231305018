//! `peerup.yaml`: a node's configuration (WIRE.md §9, version 1).
//!
//! Input: the file name (for messages) and the file's text.
//! Output: a [`Config`] holding every field with its documented default,
//! plus [`Warning`]s (unknown keys, risky settings), or a [`ConfigError`]
//! naming the file, field, line and reason.
//!
//! ```yaml
//! version: 1                  # optional; a newer version is refused
//! identity:
//!   key_file: identity.key    # relative to this file's directory
//! network:
//!   listen_addresses: [/ip4/0.0.0.0/tcp/0, /ip4/0.0.0.0/udp/0/quic-v1, /ip6/::/tcp/0, /ip6/::/udp/0/quic-v1]
//!   force_private_reachability: false
//!   resource_limits_enabled: true  # false: none of the limits below
//!   max_pending_connections: 64    # inbound, in their handshake
//!   max_pending_connections_per_ip: 8
//!   max_inbound_connections: 256
//!   max_connections_per_peer: 8
//!   handshake_timeout: 5s          # inbound TLS/Noise + yamux
//! relay:
//!   addresses: [/ip4/203.0.113.7/tcp/7777/p2p/12D3KooW...]
//!   reservation_interval: 2m  # Go duration, > 0
//! discovery:
//!   rendezvous: peerup-default-network
//!   network: ""               # optional DNS label: /peerup/<network>/kad/1.0.0
//!   bootstrap_peers: []       # empty: use the relays
//!   mdns: true                # find authorized peers on the LAN (mDNS)
//! security:
//!   authorized_keys_file: authorized_keys
//!   enable_connection_gating: true
//! protocols:
//!   ping_pong: {enabled: true, id: /pingpong/1.0.0}
//! services:                   # name: a DNS label, not `kad` or `invite`
//!   ssh:
//!     enabled: true
//!     local_address: localhost:22
//!     allowed_peers: [laptop] # optional: peer IDs or names below
//! forwards:                   # local ports the daemon keeps forwarded (at most 256)
//!   home-ssh:                 # name: a DNS label (`peerup proxy --remove home-ssh`)
//!     peer: home              # a name below, or a peer ID
//!     service: ssh            # the service's name in the peer's config
//!     local_address: 127.0.0.1:2222  # IP:port the daemon listens on, port 1-65535
//!     enabled: true           # optional, default true
//! names:
//!   laptop: 12D3KooW...
//! metrics:                    # optional; absent: no metrics endpoint
//!   listen_address: 127.0.0.1:9091  # serves /metrics and /healthz
//!   allow_remote: false       # true to allow a non-loopback address
//! ```
//!
//! Keys are validated where they are read, so a bad value is reported at
//! its own line; `allowed_peers` and `forwards.<name>.peer` names are
//! resolved against `names` after the whole file is read, and two
//! forwards may not listen on one local address (the same port on the same
//! IP, or on an unspecified IP such as `0.0.0.0`, which takes the port on
//! every address). Repeated keys are errors, not silent overrides.
//! [`Config::render`] writes a file that parses back to the same value, and
//! [`render_template`] the commented file `peerup init` writes.

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::de::{self, Text, TextValue};
use super::diag::{self, ConfigError, FieldPath, Warning, WarningKind};
use super::emit::{self, Out};
use super::units::format_duration;
pub use super::values::{
    Host, LocalAddress, LocalAddressError, PeerAddr, PeerAddrError, PeerRef, PeerRefError,
};
use crate::naming::{Name, Names, ResolveError};
use crate::relay_addr::RelayAddr;
use crate::wire::label::DnsLabel;
use crate::wire::protocol::{PING_PONG, is_reserved_service_name, is_valid_protocol_id};
use crate::{Multiaddr, PeerId};

/// A node's whole configuration. Build one with [`Config::default`] and
/// set fields, or read one with [`Config::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Config {
    /// `identity:`.
    pub identity: Identity,
    /// `network:`.
    pub network: Network,
    /// `relay:`.
    pub relay: Relay,
    /// `discovery:`.
    pub discovery: Discovery,
    /// `security:`.
    pub security: Security,
    /// `protocols:`.
    pub protocols: Protocols,
    /// `services:`: exposed TCP services by name.
    pub services: BTreeMap<DnsLabel, Service>,
    /// `forwards:`: local ports the daemon keeps forwarded to peers'
    /// services, by name; at most [`MAX_FORWARDS`].
    pub forwards: BTreeMap<DnsLabel, Forward>,
    /// `names:`: friendly names of peers.
    pub names: Names,
    /// `metrics:`: the daemon's `/metrics` and `/healthz` endpoint;
    /// `None` (absent or `null`) turns it off.
    pub metrics: Option<Metrics>,
}

/// The default `metrics.listen_address`.
pub const DEFAULT_METRICS_ADDRESS: SocketAddr =
    SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 9091);

/// `metrics:`: where the daemon serves `/metrics` (OpenMetrics) and
/// `/healthz` (docs/METRICS.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Metrics {
    /// `listen_address`: an IP and port; default `127.0.0.1:9091`. Not a
    /// loopback address only with `allow_remote: true`: the metrics name
    /// relays' peer IDs and the services.
    #[serde(deserialize_with = "de::text")]
    pub listen_address: SocketAddr,
    /// `allow_remote`: allow a `listen_address` that is not loopback;
    /// default false.
    pub allow_remote: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen_address: DEFAULT_METRICS_ADDRESS,
            allow_remote: false,
        }
    }
}

/// `identity:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Identity {
    /// `key_file`, as written (relative to the config file's directory);
    /// default `identity.key`. See [`Config::key_file_path`].
    #[serde(deserialize_with = "de::file_path")]
    pub key_file: String,
}

impl Default for Identity {
    fn default() -> Self {
        Identity {
            key_file: DEFAULT_KEY_FILE.to_owned(),
        }
    }
}

/// The default `identity.key_file`.
pub const DEFAULT_KEY_FILE: &str = "identity.key";
/// The default `security.authorized_keys_file`.
pub const DEFAULT_AUTHORIZED_KEYS_FILE: &str = "authorized_keys";
/// The default `discovery.rendezvous`.
pub const DEFAULT_RENDEZVOUS: &str = "peerup-default-network";
/// The default `relay.reservation_interval`.
pub const DEFAULT_RESERVATION_INTERVAL: Duration = Duration::from_secs(120);
/// The default `network.listen_addresses`: any port, TCP and QUIC, IPv4
/// and IPv6.
pub const DEFAULT_LISTEN_ADDRESSES: &[&str] = &[
    "/ip4/0.0.0.0/tcp/0",
    "/ip4/0.0.0.0/udp/0/quic-v1",
    "/ip6/::/tcp/0",
    "/ip6/::/udp/0/quic-v1",
];

/// Parses a list of multiaddrs known to be valid.
pub(crate) fn multiaddrs(list: &[&str]) -> Vec<Multiaddr> {
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

/// `network:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Network {
    /// `listen_addresses`; default [`DEFAULT_LISTEN_ADDRESSES`]. `null`
    /// means the default, `[]` means none.
    #[serde(deserialize_with = "listen_addresses")]
    pub listen_addresses: Vec<Multiaddr>,
    /// `force_private_reachability`: act as if behind NAT (CGNAT);
    /// default false.
    pub force_private_reachability: bool,
    /// `resource_limits_enabled`: the connection limits below; default
    /// true (`false` turns every one of them off).
    pub resource_limits_enabled: bool,
    /// `max_pending_connections`: inbound connections in their handshake
    /// at once; default 64, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_pending_connections: u32,
    /// `max_pending_connections_per_ip`: the same from one IP address
    /// (relayed connections excepted); default 8, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_pending_connections_per_ip: u32,
    /// `max_inbound_connections`: established inbound connections; default
    /// 256, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_inbound_connections: u32,
    /// `max_connections_per_peer`; default 8, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_connections_per_peer: u32,
    /// `handshake_timeout`: time for an inbound connection's security and
    /// multiplexer handshake; default 5 s, never zero.
    #[serde(deserialize_with = "de::positive_duration")]
    pub handshake_timeout: Duration,
}

fn listen_addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Multiaddr>, D::Error> {
    de::optional_list(d).map(|l| l.unwrap_or_else(|| multiaddrs(DEFAULT_LISTEN_ADDRESSES)))
}

impl Default for Network {
    fn default() -> Self {
        Network {
            listen_addresses: multiaddrs(DEFAULT_LISTEN_ADDRESSES),
            force_private_reachability: false,
            resource_limits_enabled: true,
            max_pending_connections: 64,
            max_pending_connections_per_ip: 8,
            max_inbound_connections: 256,
            max_connections_per_peer: 8,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// `relay:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Relay {
    /// `addresses`: relays to reserve a slot on; default none.
    #[serde(deserialize_with = "de::list")]
    pub addresses: Vec<RelayAddr>,
    /// `reservation_interval`: how often to refresh reservations; default
    /// 2 minutes, never zero.
    #[serde(deserialize_with = "de::positive_duration")]
    pub reservation_interval: Duration,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            addresses: Vec::new(),
            reservation_interval: DEFAULT_RESERVATION_INTERVAL,
        }
    }
}

/// `discovery:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Discovery {
    /// `rendezvous`: the DHT key nodes advertise under; default
    /// `peerup-default-network`, never empty.
    #[serde(deserialize_with = "rendezvous")]
    pub rendezvous: String,
    /// `network`: a private network name (DNS label); `None` when absent or
    /// `""`. Selects the Kademlia protocol (WIRE.md §2).
    #[serde(deserialize_with = "de::network_name")]
    pub network: Option<DnsLabel>,
    /// `bootstrap_peers`: DHT bootstrap peers, each ending in `/p2p/<id>`;
    /// empty means "the relays" (see [`Config::bootstrap_peers`]).
    #[serde(deserialize_with = "de::list")]
    pub bootstrap_peers: Vec<PeerAddr>,
    /// `mdns`: find authorized peers on the local network with mDNS, and
    /// answer their queries (our peer ID and the listen addresses of the
    /// interface asked on); default true. See docs/SECURITY.md, "LAN
    /// discovery", for what it tells the network.
    pub mdns: bool,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            rendezvous: DEFAULT_RENDEZVOUS.to_owned(),
            network: None,
            bootstrap_peers: Vec::new(),
            mdns: true,
        }
    }
}

struct Rendezvous(String);

impl TextValue for Rendezvous {
    const EXPECTING: &'static str = "a rendezvous string";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Err(format!(
                "must not be empty (the default is `{DEFAULT_RENDEZVOUS}`)"
            ))
        } else {
            Ok(Rendezvous(text.to_owned()))
        }
    }
}

fn rendezvous<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de::text::<D, Rendezvous>(d).map(|r| r.0)
}

/// `security:`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Security {
    /// `authorized_keys_file`, as written; default `authorized_keys`. See
    /// [`Config::authorized_keys_path`].
    #[serde(deserialize_with = "de::file_path")]
    pub authorized_keys_file: String,
    /// `enable_connection_gating`: refuse peers not in authorized_keys at
    /// the connection level; default true.
    pub enable_connection_gating: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            authorized_keys_file: DEFAULT_AUTHORIZED_KEYS_FILE.to_owned(),
            enable_connection_gating: true,
        }
    }
}

/// `protocols:`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Protocols {
    /// `ping_pong:`.
    #[serde(deserialize_with = "de::section")]
    pub ping_pong: PingPong,
}

/// `protocols.ping_pong:` (WIRE.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PingPong {
    /// `enabled`; default true.
    pub enabled: bool,
    /// `id`: the protocol ID; default `/pingpong/1.0.0`.
    #[serde(deserialize_with = "protocol_id")]
    pub id: String,
}

impl Default for PingPong {
    fn default() -> Self {
        PingPong {
            enabled: true,
            id: PING_PONG.to_owned(),
        }
    }
}

struct ProtocolId(String);

impl TextValue for ProtocolId {
    const EXPECTING: &'static str = "a protocol ID like /pingpong/1.0.0";
    fn from_text(text: &str) -> Result<Self, String> {
        if is_valid_protocol_id(text) {
            Ok(ProtocolId(text.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not a protocol ID: it must start with `/` and be printable ASCII without spaces, at most 128 bytes (like {PING_PONG})"
            ))
        }
    }
}

fn protocol_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de::text::<D, ProtocolId>(d).map(|p| p.0)
}

/// `services.<name>:`: one exposed TCP service (WIRE.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Service {
    /// `enabled`; default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `local_address`: where the service listens on this machine;
    /// required.
    #[serde(deserialize_with = "de::text")]
    pub local_address: LocalAddress,
    /// `allowed_peers`: when set, only these peers (IDs, or names from
    /// `names`) may use the service, on top of authorized_keys.
    #[serde(default, deserialize_with = "de::optional_list")]
    pub allowed_peers: Option<Vec<PeerRef>>,
}

fn yes() -> bool {
    true
}

impl Service {
    /// An enabled service open to every authorized peer.
    pub fn new(local_address: LocalAddress) -> Self {
        Service {
            enabled: true,
            local_address,
            allowed_peers: None,
        }
    }

    /// The peers allowed to use the service: `None` when every authorized
    /// peer is, else the set from `allowed_peers` with names resolved.
    ///
    /// # Errors
    /// [`ResolveError`] for a name not in `names` (never for a config from
    /// [`Config::parse`], which checks them).
    pub fn resolve_allowed_peers(
        &self,
        names: &Names,
    ) -> Result<Option<BTreeSet<PeerId>>, ResolveError> {
        let Some(list) = &self.allowed_peers else {
            return Ok(None);
        };
        list.iter()
            .map(|r| match r {
                PeerRef::Id(id) => Ok(*id),
                PeerRef::Name(n) => names.get(n.as_str()).ok_or_else(|| ResolveError {
                    target: n.to_string(),
                    known: names.iter().map(|(n, _)| n.to_string()).collect(),
                }),
            })
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Some)
    }
}

/// A service name key: a DNS label that is not reserved.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ServiceName(DnsLabel);

impl TextValue for ServiceName {
    const EXPECTING: &'static str = "a service name (a DNS label like `ssh`)";
    fn from_text(text: &str) -> Result<Self, String> {
        if is_reserved_service_name(text) {
            return Err(format!(
                "service name `{text}` is reserved: /peerup/{text}/1.0.0 is one of peerup's own protocols; pick another name"
            ));
        }
        DnsLabel::new(text)
            .map(ServiceName)
            .map_err(|e| format!("service name {e}"))
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

fn services<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<DnsLabel, Service>, D::Error> {
    de::strict_map::<D, ServiceName, Service>(d)
        .map(|m| m.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// The most entries `forwards:` may hold: each is a listening socket and
/// a task in the daemon.
pub const MAX_FORWARDS: usize = 256;

/// `forwards.<name>:`: a local TCP port the daemon keeps forwarded to a
/// peer's service (`peerup proxy <peer> <service> <port> --persist`). Every
/// connection accepted on it opens a stream to the peer's service,
/// connecting to the peer first when needed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Forward {
    /// `peer`: a peer ID, or a name from `names`; required.
    #[serde(deserialize_with = "de::text")]
    pub peer: PeerRef,
    /// `service`: the service's name in the peer's config; required.
    #[serde(deserialize_with = "service_name")]
    pub service: DnsLabel,
    /// `local_address`: the IP and port the daemon listens on (port
    /// 1-65535); required.
    #[serde(deserialize_with = "forward_address")]
    pub local_address: SocketAddr,
    /// `enabled`; default true. A disabled forward stays in the file and
    /// is not listened on.
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Forward {
    /// An enabled forward of `local_address` to `service` on `peer`.
    pub fn new(peer: PeerRef, service: DnsLabel, local_address: SocketAddr) -> Self {
        Forward {
            peer,
            service,
            local_address,
            enabled: true,
        }
    }

    /// The peer, its name resolved against `names`.
    ///
    /// # Errors
    /// [`ResolveError`] for a name not in `names` (never for a config from
    /// [`Config::parse`], which checks them).
    pub fn resolve_peer(&self, names: &Names) -> Result<PeerId, ResolveError> {
        match &self.peer {
            PeerRef::Id(id) => Ok(*id),
            PeerRef::Name(n) => names.get(n.as_str()).ok_or_else(|| ResolveError {
                target: n.to_string(),
                known: names.iter().map(|(n, _)| n.to_string()).collect(),
            }),
        }
    }

    /// Whether this forward and `other` cannot both listen: the same port
    /// on the same IP, or on an unspecified IP (`0.0.0.0`, `::`), which
    /// takes the port on every address.
    pub fn conflicts_with(&self, other: &Forward) -> bool {
        addresses_conflict(self.local_address, other.local_address)
    }
}

/// Whether two listening addresses take the same port (see
/// [`Forward::conflicts_with`]).
pub fn addresses_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn service_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DnsLabel, D::Error> {
    de::text::<D, ServiceName>(d).map(|s| s.0)
}

/// `forwards.<name>.local_address`: an IP and a port that is not 0.
struct ForwardAddress(SocketAddr);

impl TextValue for ForwardAddress {
    const EXPECTING: &'static str = "an IP address and port, like 127.0.0.1:2222";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.parse::<SocketAddr>() {
            Ok(a) if a.port() != 0 => Ok(ForwardAddress(a)),
            Ok(_) => Err(format!(
                "`{text}` has port 0; the daemon needs a fixed port (1-65535) to listen on"
            )),
            Err(_) => Err(format!(
                "`{}` is not an IP address and port; write it like 127.0.0.1:2222 or [::1]:2222 (an IP, not a host name)",
                crate::identity::excerpt(text)
            )),
        }
    }
}

fn forward_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    de::text::<D, ForwardAddress>(d).map(|a| a.0)
}

/// A forward name key: a DNS label.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ForwardName(DnsLabel);

impl TextValue for ForwardName {
    const EXPECTING: &'static str = "a forward name (a DNS label like `home-ssh`)";
    fn from_text(text: &str) -> Result<Self, String> {
        DnsLabel::new(text)
            .map(ForwardName)
            .map_err(|e| format!("forward name {e}"))
    }
}

impl fmt::Display for ForwardName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

fn forwards<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<DnsLabel, Forward>, D::Error> {
    de::strict_map::<D, ForwardName, Forward>(d)
        .map(|m| m.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A `names:` value: a peer ID.
struct NameTarget(PeerId);

impl<'de> Deserialize<'de> for NameTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Text::<PeerId>::deserialize(d).map(|t| NameTarget(t.0))
    }
}

fn names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
    de::strict_map::<D, Name, NameTarget>(d).map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// The document as read, before cross-field checks.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    /// Checked before this pass (see `diag::parse_document`).
    #[serde(rename = "version")]
    _version: Option<u64>,
    #[serde(deserialize_with = "de::section")]
    identity: Identity,
    #[serde(deserialize_with = "de::section")]
    network: Network,
    #[serde(deserialize_with = "de::section")]
    relay: Relay,
    #[serde(deserialize_with = "de::section")]
    discovery: Discovery,
    #[serde(deserialize_with = "de::section")]
    security: Security,
    #[serde(deserialize_with = "de::section")]
    protocols: Protocols,
    #[serde(deserialize_with = "services")]
    services: BTreeMap<DnsLabel, Service>,
    #[serde(deserialize_with = "forwards")]
    forwards: BTreeMap<DnsLabel, Forward>,
    #[serde(deserialize_with = "names")]
    names: Names,
    #[serde(deserialize_with = "de::optional")]
    metrics: Option<Metrics>,
}

impl Config {
    /// Reads `peerup.yaml` text.
    ///
    /// `file` is only used in messages. Returns the config and advice
    /// (unknown keys, no relays, gating off, disabled services...).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the field, the line and the reason:
    /// an empty file, bad YAML, a version other than 1, a bad or repeated
    /// field, an `allowed_peers` or forward `peer` name missing from
    /// `names`, more than [`MAX_FORWARDS`] forwards, two forwards on one
    /// local address, or a `metrics.listen_address` that is not loopback
    /// without `metrics.allow_remote: true`.
    pub fn parse(file: &Path, text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        let (raw, mut warnings) = diag::parse_document::<RawConfig>(file, text)?;
        let config = Config {
            identity: raw.identity,
            network: raw.network,
            relay: raw.relay,
            discovery: raw.discovery,
            security: raw.security,
            protocols: raw.protocols,
            services: raw.services,
            forwards: raw.forwards,
            names: raw.names,
            metrics: raw.metrics,
        };
        config.check_names(file, text)?;
        config.check_forwards(file, text)?;
        config.check_metrics(file, text)?;
        config.advise(file, text, &mut warnings);
        Ok((config, warnings))
    }

    fn check_names(&self, file: &Path, text: &str) -> Result<(), ConfigError> {
        for (service, s) in &self.services {
            for (i, entry) in s.allowed_peers.iter().flatten().enumerate() {
                if let PeerRef::Name(name) = entry
                    && self.names.get(name.as_str()).is_none()
                {
                    let path =
                        FieldPath::keys(&["services", service.as_str(), "allowed_peers"]).index(i);
                    return Err(ConfigError::UnknownPeerName {
                        file: file.to_owned(),
                        location: diag::locate(text, &path),
                        path,
                        name: name.to_string(),
                        known: self.names.iter().map(|(n, _)| n.to_string()).collect(),
                    });
                }
            }
        }
        for (forward, f) in &self.forwards {
            if let PeerRef::Name(name) = &f.peer
                && self.names.get(name.as_str()).is_none()
            {
                let path = FieldPath::keys(&["forwards", forward.as_str(), "peer"]);
                return Err(ConfigError::UnknownPeerName {
                    file: file.to_owned(),
                    location: diag::locate(text, &path),
                    path,
                    name: name.to_string(),
                    known: self.names.iter().map(|(n, _)| n.to_string()).collect(),
                });
            }
        }
        Ok(())
    }

    /// At most [`MAX_FORWARDS`], and no two on one local address (the
    /// later one in name order is reported, at its own line).
    fn check_forwards(&self, file: &Path, text: &str) -> Result<(), ConfigError> {
        let invalid = |path: FieldPath, reason: String| ConfigError::Invalid {
            file: file.to_owned(),
            location: diag::locate(text, &path),
            path,
            reason,
        };
        if self.forwards.len() > MAX_FORWARDS {
            return Err(invalid(
                FieldPath::keys(&["forwards"]),
                format!(
                    "{} forwards; at most {MAX_FORWARDS} are allowed",
                    self.forwards.len()
                ),
            ));
        }
        for (i, (name, f)) in self.forwards.iter().enumerate() {
            if let Some((other, o)) = self
                .forwards
                .iter()
                .take(i)
                .find(|(_, o)| o.conflicts_with(f))
            {
                return Err(invalid(
                    FieldPath::keys(&["forwards", name.as_str(), "local_address"]),
                    format!(
                        "{} takes the same port as forward `{other}` ({}); give each forward its own port",
                        f.local_address, o.local_address
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Metrics name relays' peer IDs and the services: served on a
    /// loopback address unless `allow_remote` says otherwise.
    fn check_metrics(&self, file: &Path, text: &str) -> Result<(), ConfigError> {
        match &self.metrics {
            Some(m) if !m.allow_remote && !m.listen_address.ip().is_loopback() => {
                let path = FieldPath::keys(&["metrics", "listen_address"]);
                Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    location: diag::locate(text, &path),
                    path,
                    reason: format!(
                        "{} is not a loopback address, and the metrics name relays' peer IDs and the services; \
                         use 127.0.0.1 or [::1] (a scraper elsewhere can reach it through an SSH tunnel), \
                         or set metrics.allow_remote: true to serve it there",
                        m.listen_address
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    fn advise(&self, file: &Path, text: &str, warnings: &mut Vec<Warning>) {
        let locator = diag::Locator::new(text);
        let mut warn = |keys: &[&str], kind| {
            warnings.push(Warning::at(file, &locator, FieldPath::keys(keys), kind))
        };
        for (keys, value) in [
            (&["identity", "key_file"], &self.identity.key_file),
            (
                &["security", "authorized_keys_file"],
                &self.security.authorized_keys_file,
            ),
        ] {
            if value.starts_with('~') {
                warn(
                    keys,
                    WarningKind::TildeNotExpanded {
                        value: value.clone(),
                    },
                );
            }
        }
        if self.network.listen_addresses.is_empty() {
            warn(
                &["network", "listen_addresses"],
                WarningKind::NoListenAddresses,
            );
        }
        if self.relay.addresses.is_empty() {
            warn(&["relay", "addresses"], WarningKind::NoRelayAddresses);
        }
        if !self.security.enable_connection_gating {
            warn(
                &["security", "enable_connection_gating"],
                WarningKind::ConnectionGatingDisabled,
            );
        }
        for (name, s) in &self.services {
            if !s.enabled {
                warn(
                    &["services", name.as_str(), "enabled"],
                    WarningKind::ServiceDisabled {
                        service: name.to_string(),
                    },
                );
            }
            if s.allowed_peers.as_ref().is_some_and(Vec::is_empty) {
                warn(
                    &["services", name.as_str(), "allowed_peers"],
                    WarningKind::NobodyAllowed {
                        service: name.to_string(),
                    },
                );
            }
        }
        for (name, f) in &self.forwards {
            if f.enabled && !f.local_address.ip().is_loopback() {
                warn(
                    &["forwards", name.as_str(), "local_address"],
                    WarningKind::ForwardExposed {
                        forward: name.to_string(),
                        address: f.local_address.to_string(),
                    },
                );
            }
        }
    }

    /// The identity key file: `identity.key_file` resolved against the
    /// directory of `config_path` (an absolute `key_file` stays as is;
    /// `~` is not expanded). Absolute when `config_path` is.
    pub fn key_file_path(&self, config_path: &Path) -> PathBuf {
        super::resolve_path(config_path, &self.identity.key_file)
    }

    /// The authorized_keys file, resolved like [`Config::key_file_path`].
    pub fn authorized_keys_path(&self, config_path: &Path) -> PathBuf {
        super::resolve_path(config_path, &self.security.authorized_keys_file)
    }

    /// The DHT bootstrap peers in effect: `discovery.bootstrap_peers`, or
    /// the relays when that list is empty.
    pub fn bootstrap_peers(&self) -> Vec<Multiaddr> {
        if self.discovery.bootstrap_peers.is_empty() {
            self.relay
                .addresses
                .iter()
                .map(|r| r.multiaddr().clone())
                .collect()
        } else {
            self.discovery
                .bootstrap_peers
                .iter()
                .map(|p| p.multiaddr().clone())
                .collect()
        }
    }

    /// The private Kademlia protocol ID for `discovery.network`
    /// (WIRE.md §2).
    pub fn kad_protocol(&self) -> String {
        crate::wire::protocol::kad(self.discovery.network.as_ref())
    }

    /// The config as YAML, for `peerup config show` and for writing a
    /// config back. [`Config::parse`] of the result gives `self` again.
    pub fn render(&self) -> String {
        self.emit(Out::new(false))
    }

    /// The config as a commented YAML file, for `peerup init`: every
    /// section explained, and a commented-out example when there are no
    /// services. [`Config::parse`] of the result gives `self` again.
    pub fn render_commented(&self) -> String {
        self.emit(Out::new(true))
    }

    fn emit(&self, mut out: Out) -> String {
        let q = emit::quote;
        out.comment(
            0,
            "peerup node configuration (see the README, Configuration).",
        );
        out.comment(
            0,
            "Relative file paths are resolved against this file's directory.",
        );
        out.comment(
            0,
            "Check edits with `peerup config validate` before restarting the daemon.",
        );
        out.field(0, "version", "1");
        out.blank();

        out.line(0, "identity:");
        out.comment(
            1,
            "Ed25519 private key of this node, created on first use (mode 0600).",
        );
        out.field(1, "key_file", &q(&self.identity.key_file));
        out.blank();

        out.line(0, "network:");
        out.comment(1, "Addresses to listen on; port 0 picks a free port.");
        out.list(
            1,
            "listen_addresses",
            self.network
                .listen_addresses
                .iter()
                .map(ToString::to_string),
        );
        out.comment(
            1,
            "Set true for a node behind CGNAT (Starlink, mobile networks).",
        );
        out.field(
            1,
            "force_private_reachability",
            emit::boolean(self.network.force_private_reachability),
        );
        out.comment(
            1,
            "Limits on inbound connections (false turns them off); a flood from the internet",
        );
        out.comment(1, "runs into these, not into the descriptor limit.");
        out.field(
            1,
            "resource_limits_enabled",
            emit::boolean(self.network.resource_limits_enabled),
        );
        let n = &self.network;
        out.field(
            1,
            "max_pending_connections",
            &n.max_pending_connections.to_string(),
        );
        out.field(
            1,
            "max_pending_connections_per_ip",
            &n.max_pending_connections_per_ip.to_string(),
        );
        out.field(
            1,
            "max_inbound_connections",
            &n.max_inbound_connections.to_string(),
        );
        out.field(
            1,
            "max_connections_per_peer",
            &n.max_connections_per_peer.to_string(),
        );
        out.field(
            1,
            "handshake_timeout",
            &q(&format_duration(n.handshake_timeout)),
        );
        out.blank();

        out.line(0, "relay:");
        out.comment(
            1,
            "Relay servers, each ending in /p2p/<relay-peer-id>; add with `peerup relay add`.",
        );
        if self.relay.addresses.is_empty() {
            out.comment(1, "addresses:");
            out.comment(
                1,
                "  - \"/ip4/YOUR_VPS_IP/tcp/7777/p2p/YOUR_RELAY_PEER_ID\"",
            );
        }
        out.list(
            1,
            "addresses",
            self.relay.addresses.iter().map(ToString::to_string),
        );
        out.field(
            1,
            "reservation_interval",
            &q(&format_duration(self.relay.reservation_interval)),
        );
        out.blank();

        out.line(0, "discovery:");
        out.field(1, "rendezvous", &q(&self.discovery.rendezvous));
        match &self.discovery.network {
            Some(n) => out.field(1, "network", &q(n.as_str())),
            None => out.comment(
                1,
                "Optional private network name, the same on every node: network: \"family\"",
            ),
        }
        out.comment(1, "Empty: use the relays as DHT bootstrap peers.");
        out.list(
            1,
            "bootstrap_peers",
            self.discovery
                .bootstrap_peers
                .iter()
                .map(ToString::to_string),
        );
        out.comment(
            1,
            "Find authorized peers on the local network (mDNS) and connect to them directly;",
        );
        out.comment(
            1,
            "it tells the LAN this node's peer ID and LAN addresses. false on untrusted networks.",
        );
        out.field(1, "mdns", emit::boolean(self.discovery.mdns));
        out.blank();

        out.line(0, "security:");
        out.comment(
            1,
            "Peers allowed to connect, one peer ID per line; manage with `peerup auth`.",
        );
        out.field(
            1,
            "authorized_keys_file",
            &q(&self.security.authorized_keys_file),
        );
        out.field(
            1,
            "enable_connection_gating",
            emit::boolean(self.security.enable_connection_gating),
        );
        out.blank();

        out.line(0, "protocols:");
        out.line(1, "ping_pong:");
        out.field(
            2,
            "enabled",
            emit::boolean(self.protocols.ping_pong.enabled),
        );
        out.field(2, "id", &q(&self.protocols.ping_pong.id));
        out.blank();

        if self.services.is_empty() {
            if out.comments() {
                out.comment(0, "Services to expose (server only, uncomment as needed):");
                out.comment(0, "services:");
                out.comment(0, "  ssh:");
                out.comment(0, "    enabled: true");
                out.comment(0, "    local_address: \"localhost:22\"");
                out.comment(
                    0,
                    "    # allowed_peers: [laptop]  # default: every authorized peer",
                );
                out.comment(0, "  xrdp:");
                out.comment(0, "    enabled: true");
                out.comment(0, "    local_address: \"localhost:3389\"");
            } else {
                out.field(0, "services", "{}");
            }
        } else {
            out.comment(
                0,
                "Services to expose: /peerup/<name>/1.0.0 -> local_address.",
            );
            out.line(0, "services:");
            for (name, s) in &self.services {
                out.line(1, &format!("{}:", emit::key(name.as_str())));
                out.field(2, "enabled", emit::boolean(s.enabled));
                out.field(2, "local_address", &q(&s.local_address.to_string()));
                if let Some(list) = &s.allowed_peers {
                    out.list(2, "allowed_peers", list.iter().map(ToString::to_string));
                }
            }
        }
        out.blank();

        out.comment(
            0,
            "Local ports the daemon keeps forwarded to peers' services; add with",
        );
        out.comment(
            0,
            "`peerup proxy <peer> <service> <port> --persist`, list with `peerup proxy --list`.",
        );
        if self.forwards.is_empty() {
            out.field(0, "forwards", "{}");
            if out.comments() {
                out.comment(0, " home-ssh:");
                out.comment(
                    0,
                    "   peer: \"home\"                   # a name below, or a peer ID",
                );
                out.comment(0, "   service: \"ssh\"");
                out.comment(
                    0,
                    "   local_address: \"127.0.0.1:2222\"  # then: ssh -p 2222 user@localhost",
                );
                out.comment(0, "   enabled: true");
            }
        } else {
            out.line(0, "forwards:");
            for (name, f) in &self.forwards {
                out.line(1, &format!("{}:", emit::key(name.as_str())));
                out.field(2, "peer", &q(&f.peer.to_string()));
                out.field(2, "service", &q(f.service.as_str()));
                out.field(2, "local_address", &q(&f.local_address.to_string()));
                out.field(2, "enabled", emit::boolean(f.enabled));
            }
        }
        out.blank();

        match &self.metrics {
            Some(m) => {
                out.comment(
                    0,
                    "/metrics and /healthz of the daemon (see docs/METRICS.md).",
                );
                out.line(0, "metrics:");
                out.field(1, "listen_address", &q(&m.listen_address.to_string()));
                out.field(1, "allow_remote", emit::boolean(m.allow_remote));
                out.blank();
            }
            None if out.comments() => {
                out.comment(
                    0,
                    "Metrics for Prometheus, off unless set (see docs/METRICS.md); they name relays'",
                );
                out.comment(
                    0,
                    "peer IDs and the services, so the address is loopback unless allow_remote: true.",
                );
                out.comment(0, "metrics:");
                out.comment(
                    0,
                    "  listen_address: \"127.0.0.1:9091\"  # /metrics and /healthz",
                );
                out.blank();
            }
            None => {}
        }

        out.comment(0, "Friendly names of peers (`peerup join` adds them):");
        if self.names.is_empty() {
            out.field(0, "names", "{}");
            out.comment(0, " home: \"12D3KooW...\"");
        } else {
            out.line(0, "names:");
            for (name, peer) in self.names.iter() {
                out.field(1, &emit::key(name.as_str()), &q(&peer.to_string()));
            }
        }
        out.finish()
    }
}

/// The commented `peerup.yaml` that `peerup init` writes: the defaults,
/// with `key_file`, the relay addresses and the services given (a
/// commented-out example when there are none).
///
/// The result parses back with [`Config::parse`], provided `key_file` is a
/// usable file name (not empty, no NUL).
pub fn render_template(
    key_file: &str,
    relay_addresses: &[RelayAddr],
    services: Option<&BTreeMap<DnsLabel, Service>>,
) -> String {
    let mut config = Config::default();
    config.identity.key_file = key_file.to_owned();
    config.relay.addresses = relay_addresses.to_vec();
    if let Some(s) = services {
        config.services = s.clone();
    }
    config.render_commented()
}
