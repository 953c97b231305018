//! The relay's swarm and event loop.
//!
//! Circuit relay v2 (hop) with the limits of `relay-server.yaml`, gated by
//! `relay_authorized_keys` at the connection level: a peer that is not
//! authorized is disconnected right after the handshake, so it can neither
//! reserve nor open a circuit, and a circuit's destination holds a
//! reservation, so it is authorized too. Identify, ping and Kademlia (server
//! mode, the network's bootstrap node) run beside it. Reservation answers
//! carry the listen addresses that [`announce`] picks (WIRE.md §17).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::identity::Keypair;
use libp2p::metrics::Recorder;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, ping, relay};
use peerup_core::authorized_keys::Document;
use peerup_core::authz::{Connection, Policy, Warning};
use peerup_core::config::RelayConfig;
use peerup_core::wire::protocol;
use peerup_net::fs::IdentityLock;
use peerup_net::gate::{Gate, GateShared, PairingFilter, Probation};
use peerup_net::limits::{ConnectionLimits, LimitStats, Limits as ConnLimits};
use peerup_net::metering::{Meter, metered};
use peerup_net::node::{
    StartError, load_authorized_keys, load_or_create_identity, read_authorized_keys,
};
use peerup_net::runtime::{Runtime, TransportOptions};
use peerup_net::streams;
use peerup_net::watch::{FileWatcher, Fingerprint};

use crate::announce;
use crate::pairing::PairingState;

/// Resource limits (WIRE.md §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Circuits per peer at once.
    pub max_circuits: usize,
    /// Reservations from one IP address at once.
    pub max_reservations_per_ip: usize,
    /// How long a reservation lasts before the client renews it.
    pub reservation_ttl: Duration,
    /// Longest circuit; `None` is unlimited.
    pub session_duration: Option<Duration>,
    /// Bytes per circuit; `None` is unlimited.
    pub session_data_limit: Option<u64>,
}

impl Default for Limits {
    /// The gated defaults: no duration or data limit (these are the owner's
    /// own machines).
    fn default() -> Self {
        Limits {
            max_reservations: 128,
            max_circuits: 16,
            max_reservations_per_ip: 8,
            reservation_ttl: Duration::from_secs(3600),
            session_duration: None,
            session_data_limit: None,
        }
    }
}

/// How a relay is started.
#[derive(Clone)]
pub struct RelayOptions {
    /// Identity.
    pub keypair: Keypair,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Gating by authorized_keys.
    pub gating: bool,
    /// The authorized peers.
    pub authorized_keys: Document,
    /// Where they live (for live reloads).
    pub authorized_keys_path: Option<PathBuf>,
    /// The fingerprint of the file's bytes behind `authorized_keys`.
    pub authorized_keys_fingerprint: Option<Fingerprint>,
    /// The lock on the identity, held while the relay runs.
    pub identity_lock: Option<Arc<IdentityLock>>,
    /// Limits.
    pub limits: Limits,
    /// DHT protocol.
    pub kad_protocol: String,
    /// Transport options.
    pub transport: TransportOptions,
    /// Limits on inbound connections (see `peerup_net::limits`).
    pub connection_limits: ConnectionLimits,
}

impl std::fmt::Debug for RelayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayOptions")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("gating", &self.gating)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RelayOptions {
    /// Defaults: gating on, nobody authorized, listening on TCP and QUIC
    /// 7777 (IPv4).
    pub fn new(keypair: Keypair) -> Self {
        RelayOptions {
            keypair,
            listen: vec![
                "/ip4/0.0.0.0/tcp/7777"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
                "/ip4/0.0.0.0/udp/7777/quic-v1"
                    .parse()
                    .unwrap_or_else(|_| Multiaddr::empty()),
            ],
            gating: true,
            authorized_keys: Document::new(),
            authorized_keys_path: None,
            authorized_keys_fingerprint: None,
            identity_lock: None,
            limits: Limits::default(),
            kad_protocol: protocol::KAD.to_owned(),
            transport: TransportOptions {
                // quinn's default: what one client's slow reading can
                // make the relay hold for its QUIC connection.
                quic_send_window: 10_000_000,
                ..TransportOptions::default()
            },
            connection_limits: ConnectionLimits::RELAY,
        }
    }

    /// Options from a parsed `relay-server.yaml` at `config_path`: reads
    /// the identity key (creating it, 0600, on first start) and the
    /// authorized keys.
    ///
    /// # Errors
    /// [`StartError`] naming the file and the problem; with gating on, a
    /// missing `relay_authorized_keys` is an error (fail closed).
    pub fn from_config(config: &RelayConfig, config_path: &Path) -> Result<Self, StartError> {
        let key_path = config.key_file_path(config_path);
        let keypair = load_or_create_identity(&key_path)?;
        let lock = peerup_net::fs::lock_identity(&key_path)?;
        let ak_path = config.authorized_keys_path(config_path);
        let gating = config.security.enable_connection_gating;
        let (doc, fingerprint) = load_authorized_keys(&ak_path, gating)?;
        let r = &config.resources;
        let mut o = RelayOptions::new(keypair);
        o.listen = config.network.listen_addresses.clone();
        o.gating = gating;
        o.authorized_keys = doc;
        o.authorized_keys_path = Some(ak_path);
        o.authorized_keys_fingerprint = Some(fingerprint);
        o.identity_lock = Some(Arc::new(lock));
        o.kad_protocol = config.kad_protocol();
        o.limits = Limits {
            max_reservations: r.max_reservations as usize,
            max_circuits: r.max_circuits as usize,
            max_reservations_per_ip: r.max_reservations_per_ip as usize,
            reservation_ttl: r.reservation_ttl,
            session_duration: config.session_duration(),
            session_data_limit: config.session_data_limit(),
        };
        o.connection_limits = ConnectionLimits {
            enabled: true,
            max_pending: r.max_pending_connections,
            max_pending_per_ip: r.max_pending_connections_per_ip,
            max_established_incoming: r.max_inbound_connections,
            max_established_per_peer: r.max_connections_per_peer,
        };
        o.transport.inbound_upgrade_timeout = r.handshake_timeout;
        if let Some((cert_path, key_path)) = config.websocket_tls_paths(config_path) {
            // The certificate is public; the key is checked like the
            // identity key (0600, owned, not in a directory others write).
            let certs = peerup_net::fs::read(&cert_path)?;
            let key = peerup_net::fs::read_private(&key_path)?;
            let bad = |path: &Path, reason: String| {
                peerup_net::fs::FsError::io(
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
                )
            };
            let tls = peerup_net::runtime::WebSocketTls::from_pem(&certs, &key).map_err(|e| {
                let path = if e.starts_with("key") {
                    &key_path
                } else {
                    &cert_path
                };
                bad(path, e)
            })?;
            o.transport.websocket_tls = Some(tls);
        }
        Ok(o)
    }
}

/// What happened at the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// Listening.
    Listening(Multiaddr),
    /// A reservation was accepted.
    ReservationAccepted {
        /// The peer.
        peer: PeerId,
        /// A renewal.
        renewed: bool,
    },
    /// A reservation was denied (a limit).
    ReservationDenied {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A reservation ended.
    ReservationClosed {
        /// The peer.
        peer: PeerId,
    },
    /// A circuit opened.
    CircuitOpened {
        /// From.
        src: PeerId,
        /// To.
        dst: PeerId,
    },
    /// A circuit request was denied.
    CircuitDenied {
        /// From.
        src: PeerId,
        /// To.
        dst: PeerId,
        /// Why.
        reason: String,
    },
    /// A circuit closed.
    CircuitClosed {
        /// From.
        src: PeerId,
        /// To.
        dst: PeerId,
        /// Why, if it was cut (a limit) or failed.
        error: Option<String>,
    },
    /// A connection was denied by gating.
    Denied {
        /// The peer.
        peer: PeerId,
    },
    /// authorized_keys was reloaded; these peers were disconnected.
    Reloaded {
        /// Disconnected peers.
        revoked: Vec<PeerId>,
    },
    /// These peers' `expires=` passed; they were disconnected.
    Expired {
        /// Disconnected peers.
        peers: Vec<PeerId>,
    },
    /// A machine joined a pairing group (it is in `relay_authorized_keys`
    /// now).
    Paired {
        /// The new member.
        peer: PeerId,
        /// Its group.
        group: String,
    },
}

/// Counters for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Connected peers.
    pub connected_peers: AtomicU64,
    /// Reservations held.
    pub reservations: AtomicU64,
    /// Reservations ever accepted (renewals excluded).
    pub reservations_total: AtomicU64,
    /// Reservations refused.
    pub reservations_denied: AtomicU64,
    /// Circuits open.
    pub active_circuits: AtomicU64,
    /// Circuits ever opened.
    pub circuits_total: AtomicU64,
    /// Circuit requests refused.
    pub circuits_denied: AtomicU64,
    /// Circuits cut by a limit or an error.
    pub circuits_cut: AtomicU64,
    /// Connections denied by gating.
    pub denied: AtomicU64,
    /// Inbound connections refused by a connection limit (per IP before
    /// the handshake, pending, established, per peer).
    pub limits: LimitStats,
    /// Peers disconnected because their `expires=` passed.
    pub expired: AtomicU64,
    /// Machines that joined with a pairing code.
    pub paired: AtomicU64,
    /// Pairing attempts refused (bad, unknown, used, burned or expired
    /// codes; late or oversized requests).
    pub pairing_failed: AtomicU64,
    /// Bytes in and out of every connection.
    pub meter: Arc<Meter>,
}

/// The relay's behaviours. The gate comes first: it records the
/// connections let in on probation (to pair) before the others hear of
/// them, and every `PairingFilter` keeps those connections from its
/// behaviour, so a stranger on probation is served relay pairing alone:
/// no reservation, no circuit, no DHT, no identify.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: ConnLimits,
    gate: Gate,
    relay: PairingFilter<relay::Behaviour>,
    identify: PairingFilter<identify::Behaviour>,
    ping: PairingFilter<ping::Behaviour>,
    kad: PairingFilter<kad::Behaviour<kad::store::MemoryStore>>,
    streams: streams::Behaviour,
}

enum Command {
    /// Apply the document; `true` for its removals only.
    Reload(Document, bool, oneshot::Sender<Vec<PeerId>>),
    /// Open or close enrollment to match the pairing groups.
    SyncEnrollment(oneshot::Sender<()>),
    /// A probation ended: paired (`true`) or failed; close the peer's
    /// pairing-only connections.
    EndProbation(PeerId, bool),
    Shutdown(oneshot::Sender<()>),
}

/// A running relay.
#[derive(Clone)]
pub struct Relay {
    peer_id: PeerId,
    listen: Arc<Mutex<Vec<Multiaddr>>>,
    commands: mpsc::Sender<Command>,
    stats: Arc<RelayStats>,
    events: Arc<Mutex<Vec<mpsc::Sender<RelayEvent>>>>,
    started: Instant,
    gating: bool,
    limits: Limits,
    authorized: Arc<Mutex<usize>>,
    /// The fingerprint of the authorized_keys bytes last loaded.
    ak_fingerprint: Arc<Mutex<Option<Fingerprint>>>,
    /// The policy the gate decides with.
    policy: Arc<RwLock<Policy>>,
    /// Held while the relay runs.
    _identity_lock: Option<Arc<IdentityLock>>,
    /// The runtime (its wall clock decides `expires=`).
    rt: Arc<dyn Runtime>,
    /// The authorized peers as last loaded (their `group=` attributes
    /// say whom to introduce).
    doc: Arc<Mutex<Document>>,
    /// Where they live, if in a file.
    ak_path: Option<PathBuf>,
    /// Pairing groups and introductions.
    pairing: Arc<PairingState>,
    /// The gate's shared state (probation).
    gate: Arc<GateShared>,
    /// Streams (pairing, introductions).
    streams: streams::Control,
    /// The DHT protocol (its network name goes into pairing codes).
    kad_protocol: String,
    /// The relay's one metrics registry: libp2p's families and
    /// `peerup_relay_*` (read from `stats` when scraped).
    registry: Arc<prometheus_client::registry::Registry>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// Why a relay could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Transport setup failed.
    #[error("cannot set up transports")]
    Transport(#[source] std::io::Error),
    /// The DHT protocol name is not a protocol name.
    #[error("invalid DHT protocol")]
    DhtProtocol(#[source] libp2p::swarm::InvalidProtocol),
    /// A listen address failed.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Longest sleep of the expiry timer: a wall-clock step is noticed within
/// it.
const EXPIRY_RECHECK: Duration = Duration::from_secs(60);

/// libp2p sends circuit durations as u32 seconds and panics above; the
/// largest it can send (about 136 years) stands for "unlimited".
fn relay_duration(d: Option<Duration>) -> Duration {
    let max = Duration::from_secs(u64::from(u32::MAX));
    d.map_or(max, |d| d.clamp(Duration::from_secs(1), max))
}

fn warning_text(w: &Warning) -> String {
    match w {
        Warning::GatingDisabled => "connection gating is DISABLED: anyone can reserve and relay through this server \
                                    (sessions limited to 10 min and 64 MiB per direction unless configured)"
            .to_owned(),
        Warning::NoAuthorizedPeers => {
            "relay_authorized_keys is empty: no peer can use this relay (add one with `peerup-relay authorize <peer-id>`)"
                .to_owned()
        }
        Warning::InvalidLines { lines } => format!("relay_authorized_keys has invalid lines {lines:?}; the peers they name are denied (run `peerup-relay config validate`)"),
        other => format!("{other:?}"),
    }
}

impl Relay {
    /// Starts a relay on `rt`; returns once it listens.
    ///
    /// # Errors
    /// [`RelayError`].
    pub async fn start(rt: Arc<dyn Runtime>, options: RelayOptions) -> Result<Relay, RelayError> {
        let peer_id = options.keypair.public().to_peer_id();
        let (policy, warnings) = Policy::new(options.gating, &options.authorized_keys);
        for w in &warnings {
            tracing::warn!("{}", warning_text(w));
        }
        let policy = Arc::new(RwLock::new(policy));
        let stats = Arc::new(RelayStats::default());
        let transport = rt
            .transport(&options.keypair, &options.transport)
            .map_err(RelayError::Transport)?;
        let transport = metered(transport, stats.meter.clone());
        let l = &options.limits;
        let relay_config = relay::Config {
            max_reservations: l.max_reservations,
            max_reservations_per_peer: 4,
            reservation_duration: l.reservation_ttl,
            reservation_rate_limiters: Vec::new(),
            max_circuits: l.max_circuits.saturating_mul(l.max_reservations.max(1)),
            max_circuits_per_peer: l.max_circuits,
            max_circuit_duration: relay_duration(l.session_duration),
            max_circuit_bytes: l.session_data_limit.unwrap_or(0),
            circuit_src_rate_limiters: Vec::new(),
        };
        let mut relay_behaviour = relay::Behaviour::new(peer_id, relay_config);
        // Serve at once: a relay is public by definition, and without this
        // libp2p waits for a confirmed external address.
        relay_behaviour.set_status(Some(relay::Status::Enable));
        let kad_proto = StreamProtocol::try_from_owned(options.kad_protocol.clone())
            .map_err(RelayError::DhtProtocol)?;
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(kad_proto.clone()),
        );
        kad.set_mode(Some(kad::Mode::Server));
        let connection_limits = options.connection_limits;
        tracing::info!(?connection_limits, "connection limits");
        let gate_shared = Arc::new(GateShared {
            probation: Some(Probation::new(rt.now())),
            ..GateShared::default()
        });
        let g = gate_shared.clone();
        let streams = streams::Behaviour::new()
            .with_gate(g.clone())
            .with_pairing_protocol(StreamProtocol::new(protocol::RELAY_PAIR));
        let stream_control = streams.control();
        let behaviour = Behaviour {
            limits: ConnLimits::new(connection_limits),
            gate: Gate::new(policy.clone(), g.clone(), rt.clone()).with_outbound_gated(),
            relay: PairingFilter::new(relay_behaviour, g.clone()),
            identify: PairingFilter::new(
                identify::Behaviour::new(
                    identify::Config::new("/peerup/1.0.0".to_owned(), options.keypair.public())
                        .with_agent_version(protocol::relay_agent(env!("CARGO_PKG_VERSION"))),
                ),
                g.clone(),
            ),
            ping: PairingFilter::new(ping::Behaviour::new(ping::Config::new()), g.clone()),
            kad: PairingFilter::new(kad, g),
            streams,
        };
        let exec = rt.clone();
        let config = libp2p::swarm::Config::with_executor(move |f| exec.spawn(f))
            .with_idle_connection_timeout(Duration::from_secs(120));
        let mut swarm = Swarm::new(transport, behaviour, peer_id, config);
        for addr in &options.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| RelayError::Listen {
                    addr: addr.clone(),
                    source: Box::new(e),
                })?;
        }
        let mut addrs = Vec::new();
        let mut seen = HashSet::new();
        // Binding errors come from `listen_on` above; the addresses follow
        // at once, except for a listener with none to report (IPv6 on a
        // host without IPv6 addresses): stop once the events dry up. Later
        // addresses reach `listen_addrs` through the event loop.
        let deadline = rt.now() + Duration::from_secs(5);
        let mut quiet_until = rt.now() + Duration::from_millis(200);
        while seen.len() < options.listen.len() {
            let ev = rt
                .timeout(
                    deadline
                        .min(quiet_until)
                        .saturating_duration_since(rt.now()),
                    swarm.select_next_some(),
                )
                .await;
            match ev {
                None => break,
                Some(SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                }) => {
                    quiet_until = rt.now() + Duration::from_millis(200);
                    seen.insert(listener_id);
                    addrs.push(address);
                }
                Some(SwarmEvent::ListenerClosed {
                    addresses,
                    reason: Err(e),
                    ..
                }) => {
                    return Err(RelayError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        source: Box::new(e),
                    });
                }
                Some(_) => {}
            }
        }
        // Reservation answers carry these (WIRE.md §17, `announce`).
        announce::sync(&mut swarm, &addrs);
        let (tx, rx) = mpsc::channel(16);
        let started = Instant::now();
        let mut registry = prometheus_client::registry::Registry::default();
        let libp2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
        let commands = tx.clone();
        registry.register_collector(Box::new(crate::health::StatsCollector::new(
            stats.clone(),
            started,
            move || !commands.is_closed(),
        )));
        let relay = Relay {
            peer_id,
            listen: Arc::new(Mutex::new(addrs)),
            commands: tx,
            stats,
            events: Arc::new(Mutex::new(Vec::new())),
            started,
            gating: options.gating,
            limits: options.limits.clone(),
            authorized: Arc::new(Mutex::new(options.authorized_keys.len())),
            ak_fingerprint: Arc::new(Mutex::new(options.authorized_keys_fingerprint)),
            policy: policy.clone(),
            _identity_lock: options.identity_lock.clone(),
            rt: rt.clone(),
            doc: Arc::new(Mutex::new(options.authorized_keys.clone())),
            ak_path: options.authorized_keys_path.clone(),
            pairing: Arc::new(PairingState::default()),
            gate: gate_shared,
            streams: stream_control.clone(),
            kad_protocol: options.kad_protocol.clone(),
            registry: Arc::new(registry),
        };
        match stream_control.accept(StreamProtocol::new(protocol::RELAY_PAIR)) {
            Ok(incoming) => rt.spawn(Box::pin(crate::pairing::serve(relay.clone(), incoming))),
            Err(e) => tracing::error!(error = %e, "cannot serve relay pairing"),
        }
        let driver = Driver {
            swarm,
            rt: rt.clone(),
            relay: relay.clone(),
            policy,
            kad_proto,
            ip_of: HashMap::new(),
            reservations_by_ip: BTreeMap::new(),
            reserved: HashSet::new(),
            expiring: HashSet::new(),
            max_per_ip: options.limits.max_reservations_per_ip,
            metrics: libp2p_metrics,
        };
        rt.spawn(Box::pin(driver.run(rx)));
        Ok(relay)
    }

    /// The relay's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Whether gating is on.
    pub fn is_gating(&self) -> bool {
        self.gating
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `peer` may use the relay now (listed, valid, unexpired; or
    /// gating is off).
    pub fn is_authorized(&self, peer: &PeerId) -> bool {
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        !policy.is_gating()
            || policy.status(peer, self.rt.wall_clock())
                == peerup_core::authorized_keys::Status::Authorized
    }

    /// Peers in `relay_authorized_keys` (as last loaded).
    pub fn authorized_count(&self) -> usize {
        *self.authorized.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Its listen addresses (with the OS's ports).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Full addresses a node should use: `<listen addr>/p2p/<relay>`,
    /// without unspecified (0.0.0.0, ::) addresses.
    pub fn full_addrs(&self) -> Vec<Multiaddr> {
        let mut v: Vec<Multiaddr> = self
            .listen_addrs()
            .into_iter()
            .filter(|a| {
                !a.iter().any(|p| match p {
                    Protocol::Ip4(ip) => ip.is_unspecified(),
                    Protocol::Ip6(ip) => ip.is_unspecified(),
                    _ => false,
                })
            })
            .map(|a| a.with(Protocol::P2p(self.peer_id)))
            .collect();
        v.dedup();
        v
    }

    /// Counters.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }

    /// The relay's metrics registry: libp2p's families (`libp2p_*`) and
    /// the relay's (`peerup_relay_*`), as docs/METRICS.md lists them.
    pub fn metrics_registry(&self) -> &prometheus_client::registry::Registry {
        &self.registry
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Events from now on.
    pub fn events(&self) -> mpsc::Receiver<RelayEvent> {
        let (tx, rx) = mpsc::channel(1024);
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Replaces the authorized peers; connected peers no longer authorized
    /// are disconnected (their reservations and circuits end). Returns them.
    pub async fn reload_authorized_keys(&self, doc: Document) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        *self.authorized.lock().unwrap_or_else(|e| e.into_inner()) = doc.len();
        if self
            .commands
            .clone()
            .send(Command::Reload(doc, false, tx))
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Applies only what `doc` takes away (see
    /// `Policy::reload_removals`); returns the peers disconnected.
    async fn reload_removals(&self, doc: Document) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .clone()
            .send(Command::Reload(doc, true, tx))
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Re-reads `path` and applies it. Bad lines are logged and deny the
    /// peers they name; the rest applies (see
    /// [`peerup_net::node::read_authorized_keys`]).
    ///
    /// # Errors
    /// [`StartError`] for an unreadable file (permissions, size, not
    /// UTF-8); the old list stays in force.
    pub async fn reload_authorized_keys_file(
        &self,
        path: &Path,
    ) -> Result<Vec<PeerId>, StartError> {
        let bytes = match peerup_net::fs::read_private(path) {
            Ok(bytes) => bytes,
            Err(e @ (peerup_net::fs::FsError::Mode(_) | peerup_net::fs::FsError::Ownership(_))) => {
                // Not trusted to add anyone; its removals still apply.
                if let Ok(bytes) = peerup_net::fs::read(path) {
                    let doc = read_authorized_keys(path, &bytes)?;
                    let revoked = self.reload_removals(doc).await;
                    if !revoked.is_empty() {
                        tracing::warn!(
                            ?revoked,
                            "relay_authorized_keys failed its permission check: only its removals were applied"
                        );
                    }
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let doc = read_authorized_keys(path, &bytes)?;
        let revoked = self.reload_authorized_keys(doc).await;
        *self
            .ak_fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Fingerprint::of(&bytes));
        Ok(revoked)
    }

    /// Reloads `path` if its bytes differ from the ones last loaded;
    /// `None` when they do not.
    ///
    /// # Errors
    /// As [`Relay::reload_authorized_keys_file`].
    pub async fn reload_authorized_keys_if_changed(
        &self,
        path: &Path,
    ) -> Result<Option<Vec<PeerId>>, StartError> {
        let loaded = *self
            .ak_fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if loaded.is_some() && loaded == Some(Fingerprint::of_file(path)) {
            return Ok(None);
        }
        self.reload_authorized_keys_file(path).await.map(Some)
    }

    /// Reloads `path` whenever its bytes change: told at once by the
    /// platform's file notifications, and checked every `interval` too.
    pub fn watch_authorized_keys(&self, rt: Arc<dyn Runtime>, path: PathBuf, interval: Duration) {
        let relay = self.clone();
        let mut watcher = FileWatcher::new(rt.clone(), std::slice::from_ref(&path), interval);
        rt.spawn(Box::pin(async move {
            // Tried again at every poll until it works; said once.
            let mut last_error = None;
            loop {
                watcher.changed().await;
                if relay.commands.is_closed() {
                    return;
                }
                match relay.reload_authorized_keys_if_changed(&path).await {
                    Ok(Some(revoked)) => {
                        last_error = None;
                        tracing::info!(path = %path.display(), ?revoked, "relay_authorized_keys reloaded")
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let text = peerup_net::error::chain(&e);
                        if last_error.as_ref() != Some(&text) {
                            tracing::error!(error = %text, "relay_authorized_keys not reloaded, keeping the old list (the removals of a file that can be read still apply)");
                        }
                        last_error = Some(text);
                    }
                }
            }
        }));
    }

    /// Stops the relay.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .clone()
            .send(Command::Shutdown(tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Whether it is still running.
    pub fn is_running(&self) -> bool {
        !self.commands.is_closed()
    }

    /// The runtime the relay runs on.
    pub(crate) fn runtime(&self) -> Arc<dyn Runtime> {
        self.rt.clone()
    }

    pub(crate) fn pairing(&self) -> &PairingState {
        &self.pairing
    }

    pub(crate) fn kad_protocol(&self) -> &str {
        &self.kad_protocol
    }

    pub(crate) fn streams(&self) -> &streams::Control {
        &self.streams
    }

    /// `relay_authorized_keys` as last loaded.
    pub fn authorized_keys_doc(&self) -> Document {
        self.doc.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn authorized_keys_path(&self) -> Option<&Path> {
        self.ak_path.as_deref()
    }

    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        !self.streams.connections(*peer).is_empty()
    }

    /// Now, in the probation machine's time.
    pub(crate) fn probation_now(&self) -> peerup_core::time::Instant {
        match &self.gate.probation {
            Some(p) => p.instant(self.rt.now()),
            None => peerup_core::time::Instant::ZERO,
        }
    }

    /// Asks the event loop to open or close enrollment to match the
    /// groups.
    pub(crate) async fn sync_enrollment(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .clone()
            .send(Command::SyncEnrollment(tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Ends `peer`'s probation after its pairing stream.
    pub(crate) async fn end_probation(&self, peer: PeerId, paired: bool) {
        let _ = self
            .commands
            .clone()
            .send(Command::EndProbation(peer, paired))
            .await;
    }

    pub(crate) fn publish_paired(&self, peer: PeerId, group: &peerup_core::pairing::wire::GroupId) {
        self.stats.paired.fetch_add(1, Ordering::Relaxed);
        self.publish(RelayEvent::Paired {
            peer,
            group: group.as_str().to_owned(),
        });
    }

    fn publish(&self, e: RelayEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain_mut(|s| !s.try_send(e.clone()).is_err_and(|e| e.is_disconnected()));
    }
}

struct Driver {
    swarm: Swarm<Behaviour>,
    rt: Arc<dyn Runtime>,
    relay: Relay,
    policy: Arc<RwLock<Policy>>,
    kad_proto: StreamProtocol,
    ip_of: HashMap<PeerId, IpAddr>,
    reservations_by_ip: BTreeMap<IpAddr, BTreeSet<PeerId>>,
    /// Peers whose reservation is counted in the stats.
    reserved: HashSet<PeerId>,
    /// Peers cut because their authorization expired, until their last
    /// connection is closed.
    expiring: HashSet<PeerId>,
    max_per_ip: usize,
    /// libp2p's recorder: every swarm and behaviour event goes through it.
    metrics: libp2p::metrics::Metrics,
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut revalidated = self.rt.wall_clock();
        loop {
            // Checked here too, not only when the timer's branch wins the
            // select: a swarm that always has an event ready (a flood)
            // would otherwise starve it, and an expired peer keep its
            // reservation.
            let wall = self.rt.wall_clock();
            let due = self
                .policy
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .next_expiry(revalidated)
                .is_some_and(|at| at <= wall);
            if due {
                self.revalidate();
            }
            revalidated = wall;
            // The next `expires=` among the authorized peers: a peer is cut
            // at that instant, not at some later check. Re-armed at least
            // every minute, so a step of the wall clock is noticed.
            let wait = self
                .policy
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .next_expiry(self.rt.wall_clock())
                .map_or(EXPIRY_RECHECK, |at| {
                    self.rt.wall_clock().until(at).min(EXPIRY_RECHECK)
                });
            // Probations end and pairing groups expire on time too.
            let groups = self
                .relay
                .pairing
                .tokens(|t| t.next_expiry())
                .map(|at| self.rt.wall_clock().until(at));
            let wait = [Some(wait), self.probation_wait(), groups]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(EXPIRY_RECHECK);
            let mut expiry = futures::FutureExt::fuse(self.rt.sleep(wait));
            futures::select_biased! {
                cmd = commands.next() => match cmd {
                    Some(Command::Reload(doc, removals_only, reply)) => {
                        let revoked = self.reload(&doc, removals_only);
                        let _ = reply.send(revoked);
                    }
                    Some(Command::SyncEnrollment(reply)) => {
                        self.sync_enrollment();
                        let _ = reply.send(());
                    }
                    Some(Command::EndProbation(peer, paired)) => {
                        if let Some(p) = &self.relay.gate.probation {
                            p.with(|m| if paired { m.handle_paired(&peer) } else { let _ = m.handle_failed(peer); });
                        }
                        // Paired: it comes back as an authorized peer, on
                        // a connection its reservation can use. Failed: a
                        // person who mistyped reconnects.
                        self.close_pairing_connections(&peer);
                        self.sync_enrollment();
                    }
                    Some(Command::Shutdown(reply)) => {
                        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                        for p in peers {
                            let _ = self.swarm.disconnect_peer_id(p);
                        }
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_event(event),
                () = expiry => {
                    self.revalidate();
                    self.sync_enrollment();
                    self.probation_tick();
                }
            }
        }
    }

    /// Disconnects the peers whose authorization expired.
    /// The connected peers as the policy sees them: a peer whose only
    /// connections were let in on probation is a pairing-only one.
    fn connections(&self) -> Vec<Connection> {
        let strangers: HashSet<PeerId> = self
            .relay
            .gate
            .pairing_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .collect();
        self.swarm
            .connected_peers()
            .map(|p| {
                if strangers.contains(p)
                    && self
                        .relay
                        .streams
                        .connections(*p)
                        .iter()
                        .all(|(c, _)| self.relay.gate.is_pairing_only(*c))
                {
                    Connection::pairing(*p)
                } else {
                    Connection::inbound(*p)
                }
            })
            .collect()
    }

    /// Opens enrollment while some group has an unused code, closes it
    /// (and every probation) when none has.
    fn sync_enrollment(&mut self) {
        let wall = self.rt.wall_clock();
        let enrolling = self.relay.pairing.tokens(|t| {
            t.expire(wall);
            t.enrolling(wall)
        });
        let pairing = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_pairing();
        if enrolling == pairing {
            return;
        }
        if enrolling {
            tracing::info!("pairing codes are open: admitting strangers on probation to pair");
            self.policy
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .open_pairing();
            return;
        }
        tracing::info!("no pairing code is open: enrollment closed");
        let connected = self.connections();
        let change = self
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .close_pairing(connected, wall);
        for p in change.revoked {
            let _ = self.swarm.disconnect_peer_id(p);
        }
        self.probation_tick();
    }

    /// Closes the strangers whose probation is over (or all of them once
    /// enrollment closed).
    fn probation_tick(&mut self) {
        let Some(probation) = &self.relay.gate.probation else {
            return;
        };
        let enrolling = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_pairing();
        let now = probation.instant(self.rt.now());
        let due = probation.with(|m| m.handle_timeout(now, enrolling));
        for peer in due {
            tracing::info!(%peer, "probation over without pairing: closing");
            self.close_pairing_connections(&peer);
        }
    }

    /// Closes `peer`'s pairing-only connections. They leave the gate's
    /// record at once: a close that hangs (a peer that stops reading) no
    /// longer counts against the pairing limits, and its late close event
    /// cannot end a later probation of the same peer.
    fn close_pairing_connections(&mut self, peer: &PeerId) {
        let ids: Vec<libp2p::swarm::ConnectionId> = {
            let mut pairing = self
                .relay
                .gate
                .pairing_only
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let ids: Vec<_> = pairing
                .iter()
                .filter(|(_, p)| *p == peer)
                .map(|(c, _)| *c)
                .collect();
            for c in &ids {
                pairing.remove(c);
            }
            ids
        };
        for c in ids {
            self.swarm.close_connection(c);
        }
    }

    /// When the next probation ends, as a wait from now.
    fn probation_wait(&self) -> Option<Duration> {
        let probation = self.relay.gate.probation.as_ref()?;
        let at = probation.with(|m| m.next_deadline())?;
        Some(
            probation
                .to_runtime(at)
                .saturating_duration_since(self.rt.now()),
        )
    }

    fn revalidate(&mut self) {
        let connected: Vec<Connection> = self.connections();
        let change = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .revalidate(connected, self.rt.wall_clock());
        // A peer being cut stays "connected" until its close is through;
        // it is cut (and counted) once.
        let fresh: Vec<PeerId> = change
            .revoked
            .into_iter()
            .filter(|p| self.expiring.insert(*p))
            .collect();
        for p in &fresh {
            tracing::warn!(peer = %p, "authorization expired: disconnecting (its reservation and circuits end)");
            self.relay.stats.expired.fetch_add(1, Ordering::Relaxed);
            let _ = self.swarm.disconnect_peer_id(*p);
        }
        if !fresh.is_empty() {
            self.relay.publish(RelayEvent::Expired { peers: fresh });
        }
    }

    fn reload(&mut self, doc: &Document, removals_only: bool) -> Vec<PeerId> {
        if !removals_only {
            *self.relay.doc.lock().unwrap_or_else(|e| e.into_inner()) = doc.clone();
        }
        let connected: Vec<Connection> = self.connections();
        let mut policy = self.policy.write().unwrap_or_else(|e| e.into_inner());
        let change = if removals_only {
            policy.reload_removals(doc, connected, self.rt.wall_clock())
        } else {
            policy.reload(doc, connected, self.rt.wall_clock())
        };
        drop(policy);
        for w in &change.warnings {
            tracing::warn!("{}", warning_text(w));
        }
        for p in change.revoked.iter().chain(
            change
                .removed
                .iter()
                .filter(|p| !change.revoked.contains(p)),
        ) {
            tracing::warn!(peer = %p, "no longer authorized: disconnecting");
            let _ = self.swarm.disconnect_peer_id(*p);
        }
        self.relay.publish(RelayEvent::Reloaded {
            revoked: change.revoked.clone(),
        });
        change.revoked
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if peerup_net::metrics::record_swarm_event(&event) {
            self.metrics.record(&event);
        }
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            _ => {}
        }
        let stats = self.relay.stats.clone();
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut listen = self.relay.listen.lock().unwrap_or_else(|e| e.into_inner());
                if !listen.contains(&address) {
                    listen.push(address.clone());
                }
                let listen = listen.clone();
                announce::sync(&mut self.swarm, &listen);
                self.relay.publish(RelayEvent::Listening(address));
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let mut listen = self.relay.listen.lock().unwrap_or_else(|e| e.into_inner());
                listen.retain(|a| *a != address);
                let listen = listen.clone();
                announce::sync(&mut self.swarm, &listen);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if let ConnectedPoint::Listener { send_back_addr, .. } = &endpoint
                    && let Some(ip) = ip_of(send_back_addr)
                {
                    self.ip_of.insert(peer_id, ip);
                }
                if num_established.get() == 1 {
                    stats.connected_peers.fetch_add(1, Ordering::Relaxed);
                }
                // A member of a pairing group is told of the others each
                // time it connects (within the re-send window).
                if self.relay.is_authorized(&peer_id)
                    && !self
                        .relay
                        .gate
                        .probation
                        .as_ref()
                        .is_some_and(|p| p.with(|m| m.on_probation(&peer_id)))
                {
                    let relay = self.relay.clone();
                    self.rt.spawn(Box::pin(async move {
                        crate::pairing::introduce_to(&relay, peer_id).await;
                    }));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                stats.connected_peers.fetch_sub(1, Ordering::Relaxed);
                self.expiring.remove(&peer_id);
                // A reservation lives on its connection.
                self.release(&peer_id);
                self.ip_of.remove(&peer_id);
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                if stats.limits.record(&cause) {
                    tracing::debug!(%send_back_addr, reason = %cause, "inbound connection refused by a limit");
                } else if let Some(peer) = peer_id {
                    stats.denied.fetch_add(1, Ordering::Relaxed);
                    self.relay.publish(RelayEvent::Denied { peer });
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&self.kad_proto) => {
                for a in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, a);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => self.on_relay(e),
            _ => {}
        }
    }

    fn release(&mut self, peer: &PeerId) {
        for set in self.reservations_by_ip.values_mut() {
            set.remove(peer);
        }
        self.reservations_by_ip.retain(|_, s| !s.is_empty());
        if self.reserved.remove(peer) {
            let _ = self.relay.stats.reservations.fetch_update(
                Ordering::Relaxed,
                Ordering::Relaxed,
                |v| v.checked_sub(1),
            );
        }
    }

    #[allow(deprecated)]
    fn on_relay(&mut self, e: relay::Event) {
        let stats = self.relay.stats.clone();
        match e {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                if renewed {
                    return;
                }
                if let Some(ip) = self.ip_of.get(&src_peer_id).copied() {
                    let set = self.reservations_by_ip.entry(ip).or_default();
                    set.insert(src_peer_id);
                    if set.len() > self.max_per_ip {
                        // libp2p has no per-IP count limit; enforce it by
                        // ending the reservation that went over.
                        set.remove(&src_peer_id);
                        stats.reservations_denied.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(peer = %src_peer_id, %ip, limit = self.max_per_ip, "too many reservations from one IP");
                        let _ = self.swarm.disconnect_peer_id(src_peer_id);
                        self.relay.publish(RelayEvent::ReservationDenied {
                            peer: src_peer_id,
                            reason: format!(
                                "max_reservations_per_ip ({}) reached for {ip}",
                                self.max_per_ip
                            ),
                        });
                        return;
                    }
                }
                if self.reserved.insert(src_peer_id) {
                    stats.reservations.fetch_add(1, Ordering::Relaxed);
                }
                stats.reservations_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(peer = %src_peer_id, "reservation accepted");
                self.relay.publish(RelayEvent::ReservationAccepted {
                    peer: src_peer_id,
                    renewed,
                });
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                stats.reservations_denied.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %src_peer_id, ?status, "reservation denied");
                self.relay.publish(RelayEvent::ReservationDenied {
                    peer: src_peer_id,
                    reason: format!("{status:?}"),
                });
            }
            relay::Event::ReservationClosed { src_peer_id }
            | relay::Event::ReservationTimedOut { src_peer_id } => {
                self.release(&src_peer_id);
                self.relay
                    .publish(RelayEvent::ReservationClosed { peer: src_peer_id });
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                stats.active_circuits.fetch_add(1, Ordering::Relaxed);
                stats.circuits_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!(src = %src_peer_id, dst = %dst_peer_id, "circuit opened");
                self.relay.publish(RelayEvent::CircuitOpened {
                    src: src_peer_id,
                    dst: dst_peer_id,
                });
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                dst_peer_id,
                status,
            } => {
                stats.circuits_denied.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(src = %src_peer_id, dst = %dst_peer_id, ?status, "circuit denied");
                self.relay.publish(RelayEvent::CircuitDenied {
                    src: src_peer_id,
                    dst: dst_peer_id,
                    reason: format!("{status:?}"),
                });
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                let _ =
                    stats
                        .active_circuits
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
                let error = error.map(|e| peerup_net::error::chain(&e));
                if error.is_some() {
                    stats.circuits_cut.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(src = %src_peer_id, dst = %dst_peer_id, ?error, "circuit closed");
                }
                self.relay.publish(RelayEvent::CircuitClosed {
                    src: src_peer_id,
                    dst: dst_peer_id,
                    error,
                });
            }
            _ => {}
        }
    }
}
