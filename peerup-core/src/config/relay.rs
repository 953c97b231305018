//! `relay-server.yaml`: the relay server's configuration (WIRE.md §11).
//!
//! Input: the file name (for messages) and the file's text.
//! Output: a [`RelayConfig`] with every documented default, plus
//! [`Warning`]s, or a [`ConfigError`] naming the file, field, line and
//! reason (the same diagnostics as `peerup.yaml`, see [`super::diag`]).
//!
//! ```yaml
//! version: 1
//! identity:
//!   key_file: relay_node.key
//! network:
//!   listen_addresses:          # default: TCP and QUIC on 7777, IPv4 and IPv6
//!     - /ip4/0.0.0.0/tcp/7777
//!     - /ip4/0.0.0.0/tcp/443/tls/ws   # optional: wss:// (needs websocket_tls)
//!   websocket_tls:             # required by a /tls/ws address, else absent
//!     certificate_file: fullchain.pem
//!     key_file: privkey.pem
//! discovery:
//!   network: ""                # optional DNS label
//! security:
//!   authorized_keys_file: relay_authorized_keys
//!   enable_connection_gating: true
//! resources:
//!   max_reservations: 128
//!   max_circuits: 16           # per peer
//!   buffer_size: 2048
//!   max_reservations_per_ip: 8
//!   max_reservations_per_asn: 32
//!   reservation_ttl: 1h
//!   session_duration: 0        # optional; 0 = unlimited
//!   session_data_limit: 64MB   # optional, per direction; 0 = unlimited
//!   max_pending_connections: 256        # inbound, in their handshake
//!   max_pending_connections_per_ip: 16
//!   max_inbound_connections: 1024
//!   max_connections_per_peer: 8
//!   handshake_timeout: 5s
//! health:
//!   enabled: true
//!   listen_address: 127.0.0.1:9090   # serves /healthz
//! ```
//!
//! Session limits: libp2p's own defaults (2 minutes, 128 KiB per circuit)
//! cut an SSH session almost at once. When `session_duration` or
//! `session_data_limit` is not set, a gated relay (only authorized peers)
//! has no limit, and an open relay keeps the Go limits of 10 minutes and
//! 64 MiB so a stranger cannot use it without bound; `0` always means
//! unlimited. See [`RelayConfig::session_duration`].

use core::net::SocketAddr;
use core::time::Duration;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::de::{self, TextValue};
use super::diag::{self, ConfigError, FieldPath, Warning, WarningKind};
use super::emit::{self, Out};
use super::node::multiaddrs;
use super::units::{format_duration, format_size};
use crate::Multiaddr;
use crate::wire::label::DnsLabel;

/// The default `identity.key_file` of a relay.
pub const DEFAULT_KEY_FILE: &str = "relay_node.key";
/// The default `security.authorized_keys_file` of a relay.
pub const DEFAULT_AUTHORIZED_KEYS_FILE: &str = "relay_authorized_keys";
/// The default `network.listen_addresses`: TCP and QUIC on port 7777, IPv4
/// and IPv6.
pub const DEFAULT_LISTEN_ADDRESSES: &[&str] = &[
    "/ip4/0.0.0.0/tcp/7777",
    "/ip6/::/tcp/7777",
    "/ip4/0.0.0.0/udp/7777/quic-v1",
    "/ip6/::/udp/7777/quic-v1",
];
/// The default `health.listen_address`.
pub const DEFAULT_HEALTH_ADDRESS: SocketAddr =
    SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 9090);
/// The session duration of an open (ungated) relay when none is set.
pub const OPEN_RELAY_SESSION_DURATION: Duration = Duration::from_secs(600);
/// The per-direction data limit of an open (ungated) relay when none is
/// set: 64 MiB.
pub const OPEN_RELAY_SESSION_DATA_LIMIT: u64 = 64 << 20;

/// The relay server's whole configuration. Build one with
/// [`RelayConfig::default`] and set fields, or read one with
/// [`RelayConfig::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RelayConfig {
    /// `identity:`.
    pub identity: Identity,
    /// `network:`.
    pub network: Network,
    /// `discovery:`.
    pub discovery: Discovery,
    /// `security:`.
    pub security: Security,
    /// `resources:`.
    pub resources: Resources,
    /// `health:`.
    pub health: Health,
}

/// `identity:` of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Identity {
    /// `key_file`, as written; default `relay_node.key`.
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

/// `network:` of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Network {
    /// `listen_addresses`; default [`DEFAULT_LISTEN_ADDRESSES`]. `null`
    /// means the default.
    #[serde(deserialize_with = "listen_addresses")]
    pub listen_addresses: Vec<Multiaddr>,
    /// `websocket_tls`: the certificate a `/tls/ws` (`wss://`) listen
    /// address serves; required by such an address, absent otherwise.
    pub websocket_tls: Option<WebSocketTls>,
}

/// `network.websocket_tls:` of a relay: PEM files, relative to the
/// config file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebSocketTls {
    /// `certificate_file`: the certificate chain (PEM), leaf first, for
    /// the name nodes dial (`/dns4/<name>/tcp/443/tls/ws`).
    #[serde(deserialize_with = "de::file_path")]
    pub certificate_file: String,
    /// `key_file`: its private key (PEM, PKCS#8, PKCS#1 or SEC1); mode
    /// 0600 like the identity key.
    #[serde(deserialize_with = "de::file_path")]
    pub key_file: String,
}

impl WebSocketTls {
    /// The two files, for a config.
    pub fn new(certificate_file: impl Into<String>, key_file: impl Into<String>) -> Self {
        WebSocketTls {
            certificate_file: certificate_file.into(),
            key_file: key_file.into(),
        }
    }
}

/// Whether a listen address serves WebSocket in TLS (`/tls/ws`, `/wss`).
pub fn is_websocket_tls(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, multiaddr::Protocol::Tls | multiaddr::Protocol::Wss(_)))
}

fn listen_addresses<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Multiaddr>, D::Error> {
    de::optional_list(d).map(|l| l.unwrap_or_else(|| multiaddrs(DEFAULT_LISTEN_ADDRESSES)))
}

impl Default for Network {
    fn default() -> Self {
        Network {
            listen_addresses: multiaddrs(DEFAULT_LISTEN_ADDRESSES),
            websocket_tls: None,
        }
    }
}

/// `discovery:` of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Discovery {
    /// `network`: the private network name; `None` when absent or `""`.
    #[serde(deserialize_with = "de::network_name")]
    pub network: Option<DnsLabel>,
}

/// `security:` of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Security {
    /// `authorized_keys_file`, as written; default `relay_authorized_keys`.
    #[serde(deserialize_with = "de::file_path")]
    pub authorized_keys_file: String,
    /// `enable_connection_gating`: only authorized peers may reserve or
    /// open circuits; default true.
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

/// `resources:`: circuit relay v2 limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Resources {
    /// `max_reservations`; default 128, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_reservations: u32,
    /// `max_circuits`: per peer; default 16, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_circuits: u32,
    /// `buffer_size` in bytes; default 2048, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub buffer_size: u32,
    /// `max_reservations_per_ip`; default 8, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_reservations_per_ip: u32,
    /// `max_reservations_per_asn`; default 32, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_reservations_per_asn: u32,
    /// `reservation_ttl`; default 1 hour, never zero.
    #[serde(deserialize_with = "de::positive_duration")]
    pub reservation_ttl: Duration,
    /// `session_duration` as written: `None` when not set, `Some(ZERO)` for
    /// unlimited. See [`RelayConfig::session_duration`] for the value in
    /// effect.
    #[serde(deserialize_with = "de::optional_duration")]
    pub session_duration: Option<Duration>,
    /// `session_data_limit` in bytes per direction, as written: `None` when
    /// not set, `Some(0)` for unlimited. See
    /// [`RelayConfig::session_data_limit`].
    #[serde(deserialize_with = "de::optional_size")]
    pub session_data_limit: Option<u64>,
    /// `max_pending_connections`: inbound connections in their handshake
    /// at once; default 256, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_pending_connections: u32,
    /// `max_pending_connections_per_ip`: the same from one IP address;
    /// default 16, at least 1.
    #[serde(deserialize_with = "de::count")]
    pub max_pending_connections_per_ip: u32,
    /// `max_inbound_connections`: established connections; default 1024,
    /// at least 1 (also bounded by the descriptor limit at start).
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

impl Default for Resources {
    fn default() -> Self {
        Resources {
            max_reservations: 128,
            max_circuits: 16,
            buffer_size: 2048,
            max_reservations_per_ip: 8,
            max_reservations_per_asn: 32,
            reservation_ttl: Duration::from_secs(3600),
            session_duration: None,
            session_data_limit: None,
            max_pending_connections: 256,
            max_pending_connections_per_ip: 16,
            max_inbound_connections: 1024,
            max_connections_per_peer: 8,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// `health:`: the `/healthz` JSON endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Health {
    /// `enabled`; default true.
    pub enabled: bool,
    /// `listen_address`: an IP and port; default `127.0.0.1:9090`.
    #[serde(deserialize_with = "de::text")]
    pub listen_address: SocketAddr,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            enabled: true,
            listen_address: DEFAULT_HEALTH_ADDRESS,
        }
    }
}

impl TextValue for SocketAddr {
    const EXPECTING: &'static str = "an IP address and port, like 127.0.0.1:9090";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|_| {
            format!(
                "`{text}` is not an IP address and port; write it like 127.0.0.1:9090 or [::1]:9090"
            )
        })
    }
}

/// The document as read.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRelayConfig {
    /// Checked before this pass (see `diag::parse_document`).
    #[serde(rename = "version")]
    _version: Option<u64>,
    #[serde(deserialize_with = "de::section")]
    identity: Identity,
    #[serde(deserialize_with = "de::section")]
    network: Network,
    #[serde(deserialize_with = "de::section")]
    discovery: Discovery,
    #[serde(deserialize_with = "de::section")]
    security: Security,
    #[serde(deserialize_with = "de::section")]
    resources: Resources,
    #[serde(deserialize_with = "de::section")]
    health: Health,
}

impl RelayConfig {
    /// Reads `relay-server.yaml` text.
    ///
    /// `file` is only used in messages. Returns the config and advice
    /// (unknown keys, gating off, an exposed health endpoint).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, the field, the line and the reason.
    pub fn parse(file: &Path, text: &str) -> Result<(RelayConfig, Vec<Warning>), ConfigError> {
        let (raw, mut warnings) = diag::parse_document::<RawRelayConfig>(file, text)?;
        let needs_tls = raw
            .network
            .listen_addresses
            .iter()
            .position(is_websocket_tls);
        match (needs_tls, &raw.network.websocket_tls) {
            (Some(i), None) => {
                let path = FieldPath::keys(&["network", "listen_addresses"]).index(i);
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    location: diag::locate(text, &path),
                    path,
                    reason: format!(
                        "`{}` serves WebSocket in TLS, which needs a certificate: add network.websocket_tls with certificate_file and key_file (PEM files; docs/RELAY.md, \"WebSocket\"), or listen on /ws",
                        raw.network.listen_addresses[i]
                    ),
                });
            }
            (None, Some(_)) => {
                let path = FieldPath::keys(&["network", "websocket_tls"]);
                return Err(ConfigError::Invalid {
                    file: file.to_owned(),
                    location: diag::locate(text, &path),
                    path,
                    reason: "a certificate with no /tls/ws listen address to serve it; add one (e.g. /ip4/0.0.0.0/tcp/443/tls/ws) or remove websocket_tls".to_owned(),
                });
            }
            _ => {}
        }
        let config = RelayConfig {
            identity: raw.identity,
            network: raw.network,
            discovery: raw.discovery,
            security: raw.security,
            resources: raw.resources,
            health: raw.health,
        };
        config.advise(file, text, &mut warnings);
        Ok((config, warnings))
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
        if !self.security.enable_connection_gating {
            warn(
                &["security", "enable_connection_gating"],
                WarningKind::RelayOpenToAll,
            );
            if self.session_duration().is_none() || self.session_data_limit().is_none() {
                warn(&["resources"], WarningKind::UnlimitedSessionsWithoutGating);
            }
        }
        if self.health.enabled && !self.health.listen_address.ip().is_loopback() {
            warn(
                &["health", "listen_address"],
                WarningKind::HealthEndpointExposed {
                    address: self.health.listen_address.to_string(),
                },
            );
        }
    }

    /// The relay's key file, resolved against the directory of
    /// `config_path` (an absolute path stays; `~` is not expanded).
    pub fn key_file_path(&self, config_path: &Path) -> PathBuf {
        super::resolve_path(config_path, &self.identity.key_file)
    }

    /// The WebSocket TLS certificate and key files, resolved like
    /// [`RelayConfig::key_file_path`].
    pub fn websocket_tls_paths(&self, config_path: &Path) -> Option<(PathBuf, PathBuf)> {
        self.network.websocket_tls.as_ref().map(|t| {
            (
                super::resolve_path(config_path, &t.certificate_file),
                super::resolve_path(config_path, &t.key_file),
            )
        })
    }

    /// The relay's authorized_keys file, resolved like
    /// [`RelayConfig::key_file_path`].
    pub fn authorized_keys_path(&self, config_path: &Path) -> PathBuf {
        super::resolve_path(config_path, &self.security.authorized_keys_file)
    }

    /// The longest a relayed session may last; `None` means unlimited.
    ///
    /// Set: `0` is unlimited, anything else is the limit. Not set:
    /// unlimited when gating is on, [`OPEN_RELAY_SESSION_DURATION`] when
    /// it is off.
    pub fn session_duration(&self) -> Option<Duration> {
        match self.resources.session_duration {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None if self.security.enable_connection_gating => None,
            None => Some(OPEN_RELAY_SESSION_DURATION),
        }
    }

    /// The most bytes a relayed session may carry in each direction;
    /// `None` means unlimited. Defaults like
    /// [`RelayConfig::session_duration`], with
    /// [`OPEN_RELAY_SESSION_DATA_LIMIT`].
    pub fn session_data_limit(&self) -> Option<u64> {
        match self.resources.session_data_limit {
            Some(0) => None,
            Some(n) => Some(n),
            None if self.security.enable_connection_gating => None,
            None => Some(OPEN_RELAY_SESSION_DATA_LIMIT),
        }
    }

    /// The private Kademlia protocol ID for `discovery.network`.
    pub fn kad_protocol(&self) -> String {
        crate::wire::protocol::kad(self.discovery.network.as_ref())
    }

    /// The config as YAML; [`RelayConfig::parse`] of the result gives
    /// `self` again.
    pub fn render(&self) -> String {
        self.emit(Out::new(false))
    }

    /// The config as a commented YAML file (for a sample or a fresh
    /// install); parses back to `self`.
    pub fn render_commented(&self) -> String {
        self.emit(Out::new(true))
    }

    fn emit(&self, mut out: Out) -> String {
        let q = emit::quote;
        let r = &self.resources;
        out.comment(0, "peerup relay server configuration (see docs/RELAY.md).");
        out.comment(
            0,
            "Relative file paths are resolved against this file's directory.",
        );
        out.field(0, "version", "1");
        out.blank();

        out.line(0, "identity:");
        out.comment(
            1,
            "The relay's Ed25519 key, created on first start (mode 0600).",
        );
        out.field(1, "key_file", &q(&self.identity.key_file));
        out.blank();

        out.line(0, "network:");
        out.list(
            1,
            "listen_addresses",
            self.network
                .listen_addresses
                .iter()
                .map(ToString::to_string),
        );
        if let Some(t) = &self.network.websocket_tls {
            out.line(1, "websocket_tls:");
            out.field(2, "certificate_file", &q(&t.certificate_file));
            out.field(2, "key_file", &q(&t.key_file));
        }
        out.blank();

        out.line(0, "discovery:");
        match &self.discovery.network {
            Some(n) => out.field(1, "network", &q(n.as_str())),
            None => {
                out.comment(
                    1,
                    "Optional private network name, the same as on the nodes.",
                );
                out.field(1, "network", "\"\"");
            }
        }
        out.blank();

        out.line(0, "security:");
        out.comment(
            1,
            "Only these peers may reserve slots and open circuits while gating is on.",
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

        out.line(0, "resources:");
        out.field(1, "max_reservations", &r.max_reservations.to_string());
        out.comment(1, "Per peer.");
        out.field(1, "max_circuits", &r.max_circuits.to_string());
        out.field(1, "buffer_size", &r.buffer_size.to_string());
        out.field(
            1,
            "max_reservations_per_ip",
            &r.max_reservations_per_ip.to_string(),
        );
        out.field(
            1,
            "max_reservations_per_asn",
            &r.max_reservations_per_asn.to_string(),
        );
        out.field(
            1,
            "reservation_ttl",
            &q(&format_duration(r.reservation_ttl)),
        );
        out.comment(
            1,
            "Per relayed session; 0 = unlimited. Unset: unlimited with gating on,",
        );
        out.comment(
            1,
            "10m and 64MB (per direction) with gating off. Sizes are binary (1MB = 1024KB).",
        );
        match r.session_duration {
            Some(d) => out.field(1, "session_duration", &q(&format_duration(d))),
            None => out.comment(1, "session_duration: \"0\""),
        }
        match r.session_data_limit {
            Some(n) => out.field(1, "session_data_limit", &q(&format_size(n))),
            None => out.comment(1, "session_data_limit: \"0\""),
        }
        out.comment(
            1,
            "Inbound connections: a flood from the internet runs into these (also capped",
        );
        out.comment(1, "by the descriptor limit at start), not into EMFILE.");
        out.field(
            1,
            "max_pending_connections",
            &r.max_pending_connections.to_string(),
        );
        out.field(
            1,
            "max_pending_connections_per_ip",
            &r.max_pending_connections_per_ip.to_string(),
        );
        out.field(
            1,
            "max_inbound_connections",
            &r.max_inbound_connections.to_string(),
        );
        out.field(
            1,
            "max_connections_per_peer",
            &r.max_connections_per_peer.to_string(),
        );
        out.field(
            1,
            "handshake_timeout",
            &q(&format_duration(r.handshake_timeout)),
        );
        out.blank();

        out.line(0, "health:");
        out.comment(
            1,
            "GET /healthz returns JSON; keep it on loopback unless a monitor needs it.",
        );
        out.field(1, "enabled", emit::boolean(self.health.enabled));
        out.field(
            1,
            "listen_address",
            &q(&self.health.listen_address.to_string()),
        );
        out.finish()
    }
}
