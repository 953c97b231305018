//! [`NodeOptions`]: everything a node is started with, from code or from
//! a config file.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use peerup_core::authorized_keys::Document;
use peerup_core::authz::ServiceRule;
use peerup_core::config::{Config, LocalAddress};
use peerup_core::naming::Names;
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::label::DnsLabel;
use peerup_core::wire::protocol;

use super::{IntoServiceName, InvalidService, StartError, VERSION, read_authorized_keys};
use crate::fs::{self, IdentityLock, load_or_create_identity};
use crate::limits::ConnectionLimits;
use crate::runtime::TransportOptions;
use crate::watch::Fingerprint;

/// Reads `authorized_keys` at start (strictly: a bad line is an error
/// naming it), with the fingerprint of the bytes loaded, so a later change
/// is noticed. A missing file is an empty list with gating off, and
/// [`StartError::MissingAuthorizedKeys`] with it on. The node's and the
/// relay's start both use it.
///
/// # Errors
/// [`StartError`]: the file cannot be read, fails its permission check,
/// or has invalid lines; missing while gating.
pub fn load_authorized_keys(
    path: &FsPath,
    gating: bool,
) -> Result<(Document, Fingerprint), StartError> {
    match fs::read_private(path) {
        Ok(bytes) => Ok((read_authorized_keys(path, &bytes)?, Fingerprint::of(&bytes))),
        Err(e) if e.is_not_found() && !gating => Ok((Document::new(), Fingerprint::missing())),
        Err(e) if e.is_not_found() => Err(StartError::MissingAuthorizedKeys {
            path: path.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The services of a parsed config at `config_path`, typed for the node:
/// `allowed_peers` names resolved against the config's `names` (what
/// [`NodeOptions::from_config`] exposes at start, and what a reload gives
/// [`Node::apply_services`](super::Node::apply_services)).
///
/// # Errors
/// [`StartError::Config`] for an `allowed_peers` name missing from
/// `names` (never for a config from [`Config::parse`], which checks them).
pub fn services_from_config(
    config: &Config,
    config_path: &FsPath,
) -> Result<BTreeMap<DnsLabel, ServiceSpec>, StartError> {
    let mut services = BTreeMap::new();
    for (name, svc) in &config.services {
        let allowed =
            svc.resolve_allowed_peers(&config.names)
                .map_err(|source| StartError::Config {
                    path: config_path.to_owned(),
                    source,
                })?;
        services.insert(
            name.clone(),
            ServiceSpec {
                local: svc.local_address.clone(),
                rule: ServiceRule {
                    enabled: svc.enabled,
                    allowed_peers: allowed,
                },
            },
        );
    }
    Ok(services)
}

/// A service to expose: the local address it listens on, and who may use
/// it. Typed from the config (or [`NodeOptions::with_service`]) to the
/// socket, never turned back into text on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Where the service listens (`host:port`).
    pub local: LocalAddress,
    /// Whether it is enabled, and which peers may use it.
    pub rule: ServiceRule,
}

/// Everything a node is started with. Plain data: build it with
/// [`NodeOptions::new`] and the `with_*` methods, or from a config file with
/// [`NodeOptions::from_config`]. Other crates cannot write it as a struct
/// literal (`#[non_exhaustive]`), so adding an option is not a breaking
/// change; they can still set its fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct NodeOptions {
    /// The node's identity.
    pub keypair: Keypair,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Relays: held a reservation on (when `reserve`), and dialed through
    /// to reach peers.
    pub relays: Vec<RelayAddr>,
    /// Whether to hold reservations (be reachable through the relays). A
    /// client that only dials out (`peerup proxy`, `ping` without a daemon)
    /// does not need one.
    pub reserve: bool,
    /// How often to check that every relay holds a reservation.
    pub reservation_interval: Duration,
    /// DHT bootstrap peers (multiaddrs ending in `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// The DHT protocol (`/peerup/kad/1.0.0` or per network).
    pub kad_protocol: String,
    /// Whether inbound connections are gated by `authorized_keys`.
    pub gating: bool,
    /// The parsed `authorized_keys`.
    pub authorized_keys: Document,
    /// Where `authorized_keys` lives (for reloads and pairing), if a file.
    pub authorized_keys_path: Option<PathBuf>,
    /// The config file (names added by pairing are written to it).
    pub config_path: Option<PathBuf>,
    /// Friendly names.
    pub names: Names,
    /// Services to expose: name -> (`host:port`, rule).
    pub services: BTreeMap<DnsLabel, ServiceSpec>,
    /// The ping-pong protocol, when enabled.
    pub ping_pong: Option<String>,
    /// Skip AutoNAT and assume the node is behind NAT.
    pub force_private: bool,
    /// Identify agent version.
    pub agent_version: String,
    /// Transport settings.
    pub transport: TransportOptions,
    /// How long a connection without streams stays open.
    pub idle_timeout: Duration,
    /// Limits on inbound connections (see [`crate::limits`]).
    pub limits: ConnectionLimits,
    /// Whether to upgrade relayed connections to direct ones (DCUtR); on
    /// by default. Off, every connection through a relay stays relayed.
    pub hole_punching: bool,
    /// Whether to find authorized peers on the LAN with mDNS (and answer
    /// others' queries). Off by default here; a config turns it on with
    /// `discovery.mdns` (default true). A runtime without mDNS fails the
    /// start with [`StartError::NoLanDiscovery`].
    pub mdns: bool,
    /// The fingerprint of the `authorized_keys` bytes behind
    /// `authorized_keys`, when they came from the file: a reload happens
    /// when the file's bytes differ from exactly these.
    pub authorized_keys_fingerprint: Option<Fingerprint>,
    /// The lock on the identity, held while the node runs (taken by
    /// [`NodeOptions::from_config`]).
    pub identity_lock: Option<Arc<IdentityLock>>,
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("relays", &self.relays)
            .field("gating", &self.gating)
            .field("services", &self.services.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl NodeOptions {
    /// Defaults for an identity: listen on all interfaces (TCP and QUIC,
    /// ports chosen by the OS), no relays, gating on with nobody authorized.
    pub fn new(keypair: Keypair) -> Self {
        NodeOptions {
            keypair,
            listen: vec![
                "/ip4/0.0.0.0/tcp/0"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            relays: Vec::new(),
            reserve: true,
            reservation_interval: Duration::from_secs(120),
            bootstrap: Vec::new(),
            kad_protocol: protocol::KAD.to_owned(),
            gating: true,
            authorized_keys: Document::new(),
            authorized_keys_path: None,
            config_path: None,
            names: Names::new(),
            services: BTreeMap::new(),
            ping_pong: Some(protocol::PING_PONG.to_owned()),
            force_private: false,
            agent_version: protocol::node_agent(VERSION),
            transport: TransportOptions::default(),
            idle_timeout: Duration::from_secs(60),
            limits: ConnectionLimits::NODE,
            hole_punching: true,
            mdns: false,
            authorized_keys_fingerprint: None,
            identity_lock: None,
        }
    }

    /// Sets the connection limits.
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the listen addresses.
    pub fn with_listen(mut self, listen: Vec<Multiaddr>) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the relays.
    pub fn with_relays(mut self, relays: Vec<RelayAddr>) -> Self {
        self.bootstrap = relays.iter().map(|r| r.multiaddr().clone()).collect();
        self.relays = relays;
        self
    }

    /// Whether to hold reservations on the relays.
    pub fn with_reservations(mut self, on: bool) -> Self {
        self.reserve = on;
        self
    }

    /// Sets `authorized_keys` (and where it lives, for pairing and reloads).
    pub fn with_authorized_keys(mut self, doc: Document, path: Option<PathBuf>) -> Self {
        self.authorized_keys = doc;
        self.authorized_keys_path = path;
        self
    }

    /// Turns gating on or off.
    pub fn with_gating(mut self, on: bool) -> Self {
        self.gating = on;
        self
    }

    /// Exposes a service at start, under `name` (a [`DnsLabel`] or a text,
    /// see [`IntoServiceName`]), listening locally at `local_address`
    /// (`host:port`).
    ///
    /// # Errors
    /// [`InvalidService`] when `name` is not a DNS label or
    /// `local_address` not a `host:port`.
    pub fn with_service(
        mut self,
        name: impl IntoServiceName,
        local_address: impl AsRef<str>,
        rule: ServiceRule,
    ) -> Result<Self, InvalidService> {
        let name = name.into_service_name()?;
        let address = local_address.as_ref();
        let local = address.parse().map_err(|source| InvalidService::Address {
            name: name.clone(),
            address: address.to_owned(),
            source,
        })?;
        self.services.insert(name, ServiceSpec { local, rule });
        Ok(self)
    }

    /// Sets the names map.
    pub fn with_names(mut self, names: Names) -> Self {
        self.names = names;
        self
    }

    /// Sets the config file that pairing writes names to.
    pub fn with_config_path(mut self, path: Option<PathBuf>) -> Self {
        self.config_path = path;
        self
    }

    /// Sets transport options.
    pub fn with_transport(mut self, t: TransportOptions) -> Self {
        self.transport = t;
        self
    }

    /// Options from a parsed config at `config_path`: takes the identity's
    /// lock (exclusive: no other node may run with this identity while
    /// these options live), reads the identity key (creating it, mode
    /// 0600, if missing) and `authorized_keys`.
    ///
    /// # Errors
    /// [`StartError`] naming the file and what is wrong with it;
    /// [`FsError::IdentityInUse`](crate::fs::FsError::IdentityInUse) when another process holds the identity.
    pub fn from_config(config: &Config, config_path: &FsPath) -> Result<Self, StartError> {
        Self::from_config_as(config, config_path, fs::LockMode::Exclusive)
    }

    /// [`NodeOptions::from_config`], holding the identity in `mode`: a
    /// node that only dials out and writes nothing may share it.
    ///
    /// # Errors
    /// As [`NodeOptions::from_config`].
    pub fn from_config_as(
        config: &Config,
        config_path: &FsPath,
        mode: fs::LockMode,
    ) -> Result<Self, StartError> {
        let key_path = config.key_file_path(config_path);
        let keypair = load_or_create_identity(&key_path)?;
        let lock = fs::lock_identity_as(&key_path, mode)?;
        let mut o = Self::from_config_with(config, config_path, keypair)?;
        o.services = services_from_config(config, config_path)?;
        o.identity_lock = Some(Arc::new(lock));
        Ok(o)
    }

    /// What [`NodeOptions::from_config`] makes of the config for
    /// `keypair`, without the identity (neither loaded, created nor
    /// locked) and without the services: for a node that settles those
    /// itself (`peerup doctor`).
    ///
    /// # Errors
    /// [`StartError`] for authorized_keys.
    pub fn from_config_with(
        config: &Config,
        config_path: &FsPath,
        keypair: Keypair,
    ) -> Result<Self, StartError> {
        let ak_path = config.authorized_keys_path(config_path);
        let gating = config.security.enable_connection_gating;
        let (doc, fingerprint) = load_authorized_keys(&ak_path, gating)?;
        let names = config.names.clone();
        let mut o = NodeOptions::new(keypair);
        o.listen = config.network.listen_addresses.clone();
        o.relays = config.relay.addresses.clone();
        o.reservation_interval = config.relay.reservation_interval;
        o.bootstrap = config.bootstrap_peers();
        o.kad_protocol = config.kad_protocol();
        o.gating = gating;
        o.authorized_keys = doc;
        o.authorized_keys_path = Some(ak_path);
        o.config_path = Some(config_path.to_owned());
        o.names = names;
        o.ping_pong = config
            .protocols
            .ping_pong
            .enabled
            .then(|| config.protocols.ping_pong.id.clone());
        o.force_private = config.network.force_private_reachability;
        o.mdns = config.discovery.mdns;
        let n = &config.network;
        o.limits = if n.resource_limits_enabled {
            ConnectionLimits {
                enabled: true,
                max_pending: n.max_pending_connections,
                max_pending_per_ip: n.max_pending_connections_per_ip,
                max_established_incoming: n.max_inbound_connections,
                max_established_per_peer: n.max_connections_per_peer,
            }
        } else {
            ConnectionLimits::OFF
        };
        o.transport.inbound_upgrade_timeout = n.handshake_timeout;
        o.authorized_keys_fingerprint = Some(fingerprint);
        Ok(o)
    }
}
