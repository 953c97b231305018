//! A peerup node: the reusable library behind `peerup daemon`, `proxy`,
//! `ping`, `invite` and `join`, and other people's programs.
//!
//! [`Node::start`] builds the swarm on the given [`Runtime`] and spawns its
//! event loop; the returned [`Node`] is a cheap handle (clone it freely).
//! Streams are opened and accepted outside the event loop, so a proxied
//! connection never waits on the swarm task.

mod behaviour;
mod driver;
pub mod invite;
mod options;
mod path_watch;
mod ping;
mod probe;
mod relay_pair;
mod roam;
pub mod service;
mod service_name;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{AbortHandle, Abortable};
use futures::{SinkExt, StreamExt};
use libp2p::core::Transport;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, relay};
use peerup_core::authorized_keys::Document;
use peerup_core::authz::{Change, Connection, Direction, Policy, Warning};
use peerup_core::naming::{Names, ResolveError};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::time::UnixTime;
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::label::DnsLabel;

use self::behaviour::{Behaviour, Parts};
pub use self::driver::DialFailure;
use self::driver::{Command, Driver};
pub use self::options::{NodeOptions, ServiceSpec, load_authorized_keys, services_from_config};
pub use self::path_watch::{PathChange, PathWatch};
pub use self::ping::{PingError, PingReply};
pub use self::probe::{Probe, ProbeError, ReserveError};
pub use self::relay_pair::RelayJoined;
pub use self::service::{Forwarder, ServiceRuleError, ServiceStream, ServicesChange};
pub use self::service_name::{IntoServiceName, InvalidService, InvalidServiceName};
pub use self::status::{ConnInfo, PeerState, ProxyState, RelayState, Status};
use crate::error::RandomError;
use crate::fs::{self, FsError};
pub use crate::fs::{
    AuthorizedKeysError, AuthorizedKeysFault, IdentityError, generate_identity,
    load_or_create_identity, parse_authorized_keys, read_authorized_keys,
};
use crate::gate::GateShared;
pub use crate::gate::NotAuthorized;
use crate::runtime::{BoxFuture, Runtime, secure_tcp};
use crate::streams::Control;
use crate::watch::Fingerprint;

/// The version in identify's agent string (`peerup/<version>`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long start waits for one more listen address after the last one.
const LISTEN_QUIET: Duration = Duration::from_millis(200);

/// Longest wait for a relay's identify before dialing a circuit through
/// it (see `Node::wait_identified`).
const IDENTIFY_WAIT: Duration = Duration::from_secs(3);

/// Why a node could not start (or an operation on files failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The identity key is unusable.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `authorized_keys` has errors.
    #[error(transparent)]
    AuthorizedKeys(#[from] AuthorizedKeysError),
    /// Gating is on but there is no `authorized_keys` file.
    #[error(
        "connection gating is enabled but {} does not exist; create it (add peers with `peerup auth add <peer-id>` or `peerup-relay authorize <peer-id>`, or pair with `peerup invite`) or set security.enable_connection_gating: false",
        path.display()
    )]
    MissingAuthorizedKeys {
        /// The expected file.
        path: PathBuf,
    },
    /// A service's `allowed_peers` names a peer the config does not know.
    #[error("{}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: ResolveError,
    },
    /// A transport could not be built.
    #[error("cannot set up transports")]
    Transport(#[source] std::io::Error),
    /// The DHT protocol name is not a protocol name.
    #[error("invalid DHT protocol")]
    DhtProtocol(#[source] libp2p::swarm::InvalidProtocol),
    /// A listen address could not be used.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A service could not be exposed.
    #[error("cannot expose service `{name}`")]
    Service {
        /// The service.
        name: String,
        /// Why.
        #[source]
        source: ServiceError,
    },
    /// mDNS is on and this runtime has none.
    #[error(
        "LAN discovery (mDNS) is not available on the {runtime} runtime; set discovery.mdns: false"
    )]
    NoLanDiscovery {
        /// The runtime's name.
        runtime: &'static str,
    },
    /// mDNS is on and could not start.
    #[error("cannot start LAN discovery (mDNS); set discovery.mdns: false to run without it")]
    LanDiscovery(#[source] std::io::Error),
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a service could not be exposed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The name is not a DNS label.
    #[error("not a valid service name: {0}")]
    InvalidName(peerup_core::wire::label::LabelError),
    /// The local address does not parse.
    #[error(transparent)]
    LocalAddress(#[from] peerup_core::config::node::LocalAddressError),
    /// The name is one of peerup's own protocols.
    #[error("the name is reserved for peerup's own protocols")]
    Reserved,
    /// The protocol ID built from the name is invalid.
    #[error("not a valid protocol name")]
    Protocol(#[source] libp2p::swarm::InvalidProtocol),
    /// Something already serves this protocol.
    #[error("already exposed")]
    AlreadyExposed,
}

/// Something that happened in the node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Listening on an address (a circuit address once a reservation holds).
    Listening {
        /// The address.
        addr: Multiaddr,
    },
    /// A relay accepted our reservation.
    ReservationAccepted {
        /// The relay.
        relay: PeerId,
    },
    /// A relay reservation was lost or refused; it is retried with backoff.
    ReservationLost {
        /// The relay.
        relay: PeerId,
        /// Why.
        error: String,
    },
    /// A connection to a peer was established.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Its path.
        path: ConnectionPath,
        /// Connections to the peer now.
        connections: usize,
    },
    /// The network changed (an address came or went, or
    /// [`Node::network_changed`]) and every connection was probed.
    NetworkChanged {
        /// Connections probed.
        probed: usize,
        /// Of those, closed because they did not answer (dead paths).
        closed: usize,
    },
    /// A relayed peer is now also reachable directly (hole punched).
    Upgraded {
        /// The peer.
        peer: PeerId,
    },
    /// A hole punch (DCUtR) to a relayed peer failed; traffic stays on the
    /// relay.
    HolePunchFailed {
        /// The peer.
        peer: PeerId,
        /// Why, as libp2p says it.
        error: String,
    },
    /// A proxied TCP connection started: a local client through a forward
    /// (`inbound` false) or a peer's stream to an exposed service (`inbound`
    /// true), on a stream of the connection whose path is given.
    ProxyOpened {
        /// The node's id for it (as in [`Status::proxies`]).
        id: u64,
        /// The peer.
        peer: PeerId,
        /// The service.
        service: String,
        /// Served here (true) or forwarded to the peer (false).
        inbound: bool,
        /// The path of the stream's connection; a stream stays on it.
        path: ConnectionPath,
    },
    /// A proxied TCP connection ended.
    ProxyClosed {
        /// The id of its [`Event::ProxyOpened`].
        id: u64,
        /// Bytes from the local TCP side to the peer.
        sent: u64,
        /// Bytes from the peer to the local TCP side.
        received: u64,
    },
    /// A connection closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Connections left to it.
        remaining: usize,
    },
    /// An inbound connection or stream was denied.
    Denied {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// authorized_keys was reloaded; `revoked` peers were disconnected.
    AuthorizedKeysReloaded {
        /// Disconnected peers.
        revoked: Vec<PeerId>,
    },
    /// A condition to warn about (gating disabled, nobody authorized...).
    Warning(String),
    /// A relay introduced members of a pairing group we joined; they are
    /// authorized now.
    Introduced {
        /// The group.
        group: String,
        /// The peers added.
        peers: Vec<PeerId>,
    },
    /// The node stopped.
    Stopped,
}

/// What the node shares between its handles and its event loop.
pub(crate) struct Inner {
    pub rt: Arc<dyn Runtime>,
    pub options: NodeOptions,
    pub peer_id: PeerId,
    pub kad_protocol: StreamProtocol,
    pub commands: mpsc::Sender<Command>,
    pub control: Control,
    pub policy: Arc<RwLock<Policy>>,
    pub gate: Arc<GateShared>,
    pub names: RwLock<Names>,
    /// The current authorized_keys (as last loaded or saved).
    pub ak_doc: Mutex<Document>,
    /// The fingerprint of the authorized_keys bytes last loaded or saved.
    pub ak_fingerprint: Mutex<Option<Fingerprint>>,
    pub state: Mutex<Status>,
    pub subscribers: Mutex<Vec<mpsc::Sender<Event>>>,
    pub tasks: Mutex<BTreeMap<String, AbortHandle>>,
    /// Cancels the open invite, if any.
    pub invite_cancel: Mutex<Option<AbortHandle>>,
    /// Inbound connections refused by a connection limit.
    pub limit_stats: Arc<crate::limits::LimitStats>,
    /// Proxied connections by id: their peer, the service they serve,
    /// and what cuts them.
    pub proxy_cancels: Mutex<BTreeMap<u64, service::ProxyCancel>>,
    /// The services exposed now (as started, then as changed live).
    pub services: Mutex<BTreeMap<DnsLabel, ServiceSpec>>,
    /// Every running task, so shutdown can abort them; each removes
    /// itself when it ends.
    pub all_tasks: Arc<Mutex<BTreeMap<u64, AbortHandle>>>,
    pub next_id: AtomicU64,
    /// Probes after a network change (`roam`).
    pub roam: Mutex<roam::RoamState>,
    /// What LAN discovery heard (see [`crate::lan`]).
    pub lan: crate::lan::SharedTable,
    /// The node's metric families ([`crate::metrics`]), registered in
    /// `registry`.
    pub metrics: crate::metrics::NodeMetrics,
    /// The node's one metrics registry ([`Node::metrics_registry`]).
    pub registry: prometheus_client::registry::Registry,
}

impl Inner {
    /// The runtime's wall clock.
    pub(crate) fn wall_clock(&self) -> UnixTime {
        self.rt.wall_clock()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn snapshot<T>(&self, f: impl FnOnce(&Status) -> T) -> T {
        f(&self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn publish(&self, event: Event) {
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subs.retain_mut(|s| match s.try_send(event.clone()) {
            Ok(()) => true,
            Err(e) if e.is_full() => {
                tracing::debug!("event subscriber is lagging; event dropped");
                true
            }
            Err(_) => false,
        });
    }

    pub(crate) fn authorized_keys_doc(&self) -> Document {
        self.ak_doc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_authorized_keys_doc(&self, doc: Document) {
        *self.ak_doc.lock().unwrap_or_else(|e| e.into_inner()) = doc;
    }

    pub(crate) fn set_ak_fingerprint(&self, f: Fingerprint) {
        *self
            .ak_fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    pub(crate) fn policy(&self) -> std::sync::RwLockReadGuard<'_, Policy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner())
    }

    fn policy_mut(&self) -> std::sync::RwLockWriteGuard<'_, Policy> {
        self.policy.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The live connections as the policy sees them.
    fn connections(&self) -> Vec<Connection> {
        let pairing = self
            .gate
            .pairing_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.snapshot(|s| {
            s.peers
                .iter()
                .flat_map(|(peer, p)| {
                    p.connections.iter().map(|c| Connection {
                        peer: *peer,
                        direction: if c.outbound {
                            Direction::Outbound
                        } else {
                            Direction::Inbound
                        },
                        pairing_only: pairing.contains_key(&c.id),
                    })
                })
                .collect()
        })
    }

    /// Disconnects peers the policy no longer allows (an `expires=` passed).
    pub(crate) fn revalidate_policy(&self) {
        let change = self
            .policy()
            .revalidate(self.connections(), self.wall_clock());
        self.apply_change(change);
    }

    fn apply_change(&self, change: Change) {
        for peer in &change.revoked {
            tracing::warn!(%peer, "authorization revoked: disconnecting");
            self.command(Command::Disconnect { peer: *peer });
            self.cut_proxies(peer);
        }
        // Removed peers not (yet) in our list of connections: a
        // connection admitted the moment before goes too.
        for peer in change
            .removed
            .iter()
            .filter(|p| !change.revoked.contains(p))
        {
            self.command(Command::Disconnect { peer: *peer });
            self.cut_proxies(peer);
        }
        for w in change.warnings {
            self.publish(Event::Warning(warning_text(&w)));
        }
        if !change.revoked.is_empty() {
            self.publish(Event::AuthorizedKeysReloaded {
                revoked: change.revoked,
            });
        }
    }

    /// Ends every proxied connection with `peer`, in both directions (the
    /// local TCP side sees a reset).
    pub(crate) fn cut_proxies(&self, peer: &PeerId) {
        self.cut_proxies_where(service::Cut::Revoked, |_, c| c.peer == *peer);
    }

    /// Ends the proxied connections `which` picks; returns how many.
    pub(crate) fn cut_proxies_where(
        &self,
        why: service::Cut,
        mut which: impl FnMut(u64, &service::ProxyCancel) -> bool,
    ) -> usize {
        let mut cancels = self.proxy_cancels.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<u64> = cancels
            .iter()
            .filter(|(id, c)| which(**id, c))
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(c) = cancels.remove(id) {
                let _ = c.cancel.send(why);
            }
        }
        ids.len()
    }

    /// Sends a command without waiting (the channel is bounded; a full
    /// channel means the loop is busy, and the command waits in a task).
    pub(crate) fn command(&self, cmd: Command) {
        let mut tx = self.commands.clone();
        if let Err(e) = tx.try_send(cmd)
            && e.is_full()
        {
            let cmd = e.into_inner();
            self.rt.spawn(Box::pin(async move {
                let _ = tx.send(cmd).await;
            }));
        }
    }

    /// Spawns a task that [`Node::shutdown`] aborts; `key` names it for
    /// [`Inner::tasks`] (a service's accept loop) so it can be stopped alone.
    pub(crate) fn spawn_tracked(&self, key: Option<String>, fut: BoxFuture<()>) {
        let (handle, reg) = AbortHandle::new_pair();
        let fut = Abortable::new(fut, reg);
        if let Some(k) = key
            && let Some(old) = self
                .tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(k, handle.clone())
        {
            old.abort();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.all_tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, handle);
        let all = self.all_tasks.clone();
        self.rt.spawn(Box::pin(async move {
            let _ = fut.await;
            all.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }));
    }
}

/// The text of a policy warning, as the daemon shows it.
pub fn warning_text(w: &Warning) -> String {
    match w {
        Warning::GatingDisabled => {
            "connection gating is DISABLED: any peer can connect and use ping; services still honour allowed_peers"
                .to_owned()
        }
        Warning::NoAuthorizedPeers => {
            "authorized_keys is empty: no peer can connect; pair with `peerup invite` or `peerup auth add`".to_owned()
        }
        Warning::InvalidLines { lines } => format!(
            "authorized_keys has invalid lines {lines:?}; the peers they name are denied (run `peerup auth validate`)"
        ),
        other => format!("{other:?}"),
    }
}

/// Why a peer could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// No address worked (direct, through the relays, or from the DHT).
    #[error("cannot reach peer {peer}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// What was tried and how it failed.
        #[source]
        reason: Unreachable,
    },
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// How reaching a peer failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Unreachable {
    /// Relays are configured and none answered.
    #[error("no relay is reachable")]
    NoRelay,
    /// Dialing failed.
    #[error(transparent)]
    Dial(#[from] DialFailure),
    /// Dialing failed and no relay kept our connection: the relay's gate
    /// most likely turned this machine away.
    #[error(
        "no relay kept our connection: is this machine ({us}) in the relay's relay_authorized_keys?"
    )]
    RelayRefused {
        /// This node.
        us: PeerId,
        /// The dial's failure.
        #[source]
        dial: DialFailure,
    },
    /// A connection opened and closed at once: the peer's gate.
    #[error("the peer closed the connection at once (is this machine in its authorized_keys?)")]
    ClosedAtOnce,
}

/// A running peerup node. Clone it freely; [`Node::shutdown`] stops it.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("peer_id", &self.inner.peer_id)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Builds the swarm on `rt`, starts listening, exposes the configured
    /// services and spawns the event loop. Returns once every listen
    /// address is bound.
    ///
    /// # Errors
    /// [`StartError`]: transports, a listen address in use, a service.
    pub async fn start(rt: Arc<dyn Runtime>, options: NodeOptions) -> Result<Node, StartError> {
        let peer_id = options.keypair.public().to_peer_id();
        let (mut policy, warnings) = Policy::new(options.gating, &options.authorized_keys);
        policy.set_relays(options.relays.iter().map(RelayAddr::peer_id));
        let policy = Arc::new(RwLock::new(policy));
        let gate = Arc::new(GateShared::default());
        let (relay_transport, relay_behaviour) = relay::client::new(peer_id);
        let base = rt
            .transport(&options.keypair, &options.transport)
            .map_err(StartError::Transport)?;
        let relayed = secure_tcp(relay_transport, &options.keypair, &options.transport)
            .map_err(StartError::Transport)?;
        let transport = relayed
            .or_transport(base)
            .map(|either, _| either.into_inner())
            .boxed();
        let kad_protocol = StreamProtocol::try_from_owned(options.kad_protocol.clone())
            .map_err(StartError::DhtProtocol)?;
        let discoverer = if options.mdns {
            match rt.lan_discovery(peer_id) {
                None => {
                    return Err(StartError::NoLanDiscovery { runtime: rt.name() });
                }
                Some(d) => Some(d.map_err(StartError::LanDiscovery)?),
            }
        } else {
            None
        };
        let lan = crate::lan::SharedTable::default();
        let behaviour = Behaviour::new(Parts {
            keypair: options.keypair.clone(),
            relay: relay_behaviour,
            policy: policy.clone(),
            gate: gate.clone(),
            agent: options.agent_version.clone(),
            kad_protocol: kad_protocol.clone(),
            autonat: !options.force_private,
            hole_punching: options.hole_punching,
            limits: options.limits,
            rt: rt.clone(),
            discoverer,
            lan: lan.clone(),
        });
        let control = behaviour.streams.control();
        let exec_rt = rt.clone();
        let config = libp2p::swarm::Config::with_executor(move |fut| exec_rt.spawn(fut))
            .with_idle_connection_timeout(options.idle_timeout);
        let mut swarm = Swarm::new(transport, behaviour, peer_id, config);
        for addr in &options.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| StartError::Listen {
                    addr: addr.clone(),
                    source: Box::new(e),
                })?;
        }
        let (tx, rx) = mpsc::channel(256);
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = crate::metrics::NodeMetrics::new(&mut registry);
        if options.reserve {
            for relay in &options.relays {
                metrics.set_reserved(&relay.peer_id(), false);
            }
        }
        let inner = Arc::new(Inner {
            rt: rt.clone(),
            names: RwLock::new(options.names.clone()),
            ak_doc: Mutex::new(options.authorized_keys.clone()),
            ak_fingerprint: Mutex::new(options.authorized_keys_fingerprint),
            options,
            peer_id,
            kad_protocol,
            commands: tx,
            control,
            policy,
            gate,
            state: Mutex::new(Status::default()),
            subscribers: Mutex::new(Vec::new()),
            tasks: Mutex::new(BTreeMap::new()),
            invite_cancel: Mutex::new(None),
            proxy_cancels: Mutex::new(BTreeMap::new()),
            services: Mutex::new(BTreeMap::new()),
            limit_stats: Arc::default(),
            all_tasks: Arc::new(Mutex::new(BTreeMap::new())),
            next_id: AtomicU64::new(1),
            roam: Mutex::new(roam::RoamState::with_current_addresses()),
            lan,
            metrics,
            registry,
        });
        for w in &warnings {
            // Also published as `Event::Warning`; a daemon shows it loudly,
            // a one-shot client (ping, proxy) has no use for it.
            tracing::debug!("{}", warning_text(w));
        }
        // Wait for the listeners to bind, so errors surface here.
        let expected = inner.options.listen.len();
        let listening = wait_listening(&mut swarm, expected, &rt).await?;
        inner.update(|s| s.listen_addrs = listening);
        let driver = Driver::new(swarm, inner.clone(), rx);
        rt.spawn(Box::pin(driver.run()));
        let node = Node { inner };
        for (name, spec) in node.inner.options.services.clone() {
            node.expose(name, spec)?;
        }
        if let Some(id) = node.inner.options.ping_pong.clone() {
            node.serve_ping(&id)?;
        }
        node.serve_introductions();
        roam::watch(&node.inner);
        for w in warnings {
            node.inner.publish(Event::Warning(warning_text(&w)));
        }
        Ok(node)
    }

    /// Tells the node that the network changed (an application that gets
    /// the operating system's notice, e.g. on a phone): every connection
    /// is probed and those that do not answer within 3 s are closed, as
    /// when the node's own interface watcher sees an address come or go
    /// (see `node::roam`). Live connections are left alone.
    pub fn network_changed(&self) {
        roam::on_change(&self.inner, "(application notice)", false);
    }

    /// The node's metrics registry: libp2p's families (`libp2p_*`) and
    /// peerup's (`peerup_*`), as docs/METRICS.md lists them. Serve it with
    /// [`crate::http`], or encode it with [`Node::encode_metrics`].
    pub fn metrics_registry(&self) -> &prometheus_client::registry::Registry {
        &self.inner.registry
    }

    /// The node's metrics as OpenMetrics text (ending in `# EOF`).
    pub fn encode_metrics(&self) -> String {
        crate::http::encode(&self.inner.registry)
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The runtime it runs on.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.inner.rt.clone()
    }

    /// The options it was started with.
    pub fn options(&self) -> &NodeOptions {
        &self.inner.options
    }

    /// A snapshot of addresses, reservations, peers, services and proxies.
    pub fn status(&self) -> Status {
        let mut status = self.inner.snapshot(Clone::clone);
        // The policy before the table, always (as the behaviour takes them).
        let policy = self.inner.policy();
        status.lan = self
            .inner
            .lan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .authorized(&policy, self.inner.wall_clock());
        status
    }

    /// The LAN addresses of `peer` heard through mDNS: empty unless it is
    /// authorized now.
    pub fn lan_addresses(&self, peer: PeerId) -> Vec<Multiaddr> {
        let policy = self.inner.policy();
        self.inner
            .lan
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .usable(&peer, &policy, self.inner.wall_clock())
    }

    /// The addresses the node listens on now.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner.snapshot(|s| s.listen_addrs.clone())
    }

    /// Events from now on. Each subscriber has a bounded queue; a
    /// subscriber that does not keep up misses events rather than slowing
    /// the node.
    pub fn events(&self) -> impl futures::Stream<Item = Event> + Send + Unpin + 'static {
        let (tx, rx) = mpsc::channel(1024);
        self.inner
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// `authorized_keys` as last loaded.
    pub fn authorized_keys(&self) -> Document {
        self.inner.authorized_keys_doc()
    }

    /// The names map.
    pub fn names(&self) -> Names {
        self.inner
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the names map.
    pub fn load_names(&self, names: Names) {
        *self.inner.names.write().unwrap_or_else(|e| e.into_inner()) = names;
    }

    /// Resolves a target: a name first, then a peer ID.
    ///
    /// # Errors
    /// [`ResolveError`] listing the known names.
    pub fn resolve(&self, target: &str) -> Result<PeerId, ResolveError> {
        self.inner
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resolve(target)
    }

    /// Tells the node it can reach `peer` through these relays (adds
    /// `<relay>/p2p-circuit/p2p/<peer>` addresses).
    pub fn add_relay_addresses_for_peer(&self, relays: &[RelayAddr], peer: PeerId) {
        let addrs = relays.iter().map(|r| r.circuit_to(peer)).collect();
        self.inner.command(Command::AddAddresses { peer, addrs });
    }

    /// Adds known addresses of a peer.
    pub fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.inner.command(Command::AddAddresses { peer, addrs });
    }

    /// The best path to `peer` now, if connected.
    pub fn path(&self, peer: PeerId) -> Option<ConnectionPath> {
        self.inner.control.path(peer)
    }

    async fn dial(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), ConnectError> {
        self.dial_with(peer, addrs, true).await
    }

    /// Dials `peer` at `addrs`, and, when `extend`, at the addresses the
    /// behaviours know for it.
    async fn dial_with(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        extend: bool,
    ) -> Result<(), ConnectError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .clone()
            .send(Command::Dial {
                peer,
                addrs,
                extend,
                reply: tx,
            })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        rx.await
            .map_err(|_| ConnectError::Stopped)?
            .map_err(|e| ConnectError::Unreachable {
                peer,
                reason: e.into(),
            })
    }

    /// Connects to `peer` (a relay) at `addrs` unless a connection exists
    /// or is being made (then waits for it), and waits for its identify.
    pub(crate) async fn ensure_connected(
        &self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    ) -> Result<(), ConnectError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .clone()
            .send(Command::EnsureConnected {
                peer,
                addrs,
                reply: tx,
            })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        rx.await
            .map_err(|_| ConnectError::Stopped)?
            .map_err(|e| ConnectError::Unreachable {
                peer,
                reason: e.into(),
            })?;
        self.wait_identified(peer).await;
        Ok(())
    }

    /// Waits, at most [`IDENTIFY_WAIT`], until identify has arrived from a
    /// connected `peer` (or the connection is gone).
    ///
    /// Callers dial a circuit through the relay next, and DCUtR offers the
    /// other side the observed addresses known when that relayed
    /// connection opens: ours come from the relay's identify. A circuit
    /// dialed before it arrived offers none, its hole punch fails at once
    /// and is not retried, and the connection stays relayed even where
    /// the NATs allow a direct one (seen through real NAT, tests/e2e). The
    /// daemon waits the same way before reserving (`awaiting_identify` in
    /// the driver). Identify takes one round trip to the relay, so this
    /// polls briefly; a relay without identify costs the bound once.
    async fn wait_identified(&self, peer: PeerId) {
        let rt = &self.inner.rt;
        let deadline = rt.now() + IDENTIFY_WAIT;
        while rt.now() < deadline
            && self
                .inner
                .snapshot(|s| s.peers.get(&peer).is_some_and(|p| p.agent.is_none()))
        {
            rt.sleep(Duration::from_millis(10)).await;
        }
    }

    async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, ConnectError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .commands
            .clone()
            .send(Command::FindPeer { peer, reply: tx })
            .await
            .map_err(|_| ConnectError::Stopped)?;
        rx.await.map_err(|_| ConnectError::Stopped)
    }

    /// Makes sure a connection to `peer` exists: its LAN addresses (from
    /// mDNS, an authorized peer only) at the same time as known addresses
    /// and circuits through our relays, then a DHT lookup by peer ID.
    /// Returns the path of the best connection.
    ///
    /// # Errors
    /// [`ConnectError::Unreachable`] saying what was tried.
    pub async fn connect(&self, peer: PeerId) -> Result<ConnectionPath, ConnectError> {
        use futures::future::{Either, select};
        if let Some(p) = self.inner.control.path(peer) {
            return Ok(p);
        }
        let lan = self.lan_addresses(peer);
        if lan.is_empty() {
            return self.connect_without_lan(peer).await;
        }
        // Both at once: a LAN address can be stale (the peer left the
        // segment; its record lasts until its TTL), and a relay that does
        // not answer must not hold up a peer on the same switch.
        tracing::debug!(%peer, addrs = ?lan, "dialing the peer's LAN addresses");
        let direct = std::pin::pin!(self.dial(peer, lan));
        let relayed = std::pin::pin!(self.connect_without_lan(peer));
        match select(direct, relayed).await {
            Either::Left((direct, relayed)) => {
                if direct.is_ok()
                    && let Some(p) = self.settled_path(peer).await
                {
                    return Ok(p);
                }
                if let Err(e) = &direct {
                    tracing::info!(%peer, error = %crate::error::chain(e), "LAN addresses failed");
                }
                relayed.await
            }
            Either::Right((relayed, direct)) => match relayed {
                Ok(p) => Ok(p),
                Err(e) => {
                    if direct.await.is_ok()
                        && let Some(p) = self.settled_path(peer).await
                    {
                        return Ok(p);
                    }
                    Err(e)
                }
            },
        }
    }

    /// [`Node::connect`] without the LAN: relays, then the DHT.
    async fn connect_without_lan(&self, peer: PeerId) -> Result<ConnectionPath, ConnectError> {
        let relays = self.inner.options.relays.clone();
        let first = self.connect_through_relays(peer, &relays).await;
        if first.is_ok()
            && let Some(p) = self.settled_path(peer).await
        {
            return Ok(p);
        }
        if let Err(e) = &first {
            tracing::info!(%peer, error = %crate::error::chain(e), "no connection through the relays; asking the DHT");
        }
        let found = self.find_peer(peer).await?;
        if !found.is_empty() {
            tracing::info!(%peer, addrs = ?found, "found peer in the DHT");
            self.dial(peer, found).await?;
            if let Some(p) = self.settled_path(peer).await {
                return Ok(p);
            }
        }
        match first {
            Err(ConnectError::Unreachable {
                peer,
                reason: Unreachable::Dial(dial),
            }) if !relays.is_empty()
                && !relays.iter().any(|r| self.path(r.peer_id()).is_some()) =>
            {
                Err(ConnectError::Unreachable {
                    peer,
                    reason: Unreachable::RelayRefused {
                        us: self.inner.peer_id,
                        dial,
                    },
                })
            }
            Err(e) => Err(e),
            Ok(()) => Err(ConnectError::Unreachable {
                peer,
                reason: Unreachable::ClosedAtOnce,
            }),
        }
    }

    /// Dials `peer` through every relay at once and returns when the first
    /// circuit connects: a relay that is down, or that swallows packets,
    /// costs nothing while another works (each relay's own dial is bounded
    /// by the transport's upgrade timeout). Each relay is dialed at all its
    /// addresses at once (TCP, QUIC, WebSocket: the first that connects
    /// carries the circuit), then the circuit through it, once more if the
    /// first circuit request raced the relay connection's set-up (the
    /// relay client can lose it: "response from behaviour was canceled").
    ///
    /// `NoRelay` when no relay could be reached; otherwise the last
    /// circuit's error. With no relays configured, a plain dial (the
    /// addresses libp2p knows, e.g. from the DHT).
    async fn connect_through_relays(
        &self,
        peer: PeerId,
        relays: &[RelayAddr],
    ) -> Result<(), ConnectError> {
        if relays.is_empty() {
            return self.dial(peer, Vec::new()).await;
        }
        // One attempt per relay peer, its addresses in the configured order.
        let mut groups: Vec<(PeerId, Vec<Multiaddr>, Multiaddr)> = Vec::new();
        for r in relays {
            match groups.iter_mut().find(|g| g.0 == r.peer_id()) {
                Some(g) => g.1.push(r.multiaddr().clone()),
                None => groups.push((r.peer_id(), vec![r.multiaddr().clone()], r.circuit_to(peer))),
            }
        }
        let mut attempts: futures::stream::FuturesUnordered<_> = groups
            .into_iter()
            .map(|(relay, addrs, circuit)| async move {
                if let Err(e) = self.ensure_connected(relay, addrs).await {
                    tracing::debug!(%relay, error = %crate::error::chain(&e), "relay unreachable");
                    return Err(None);
                }
                // This relay's circuit only: the DHT's addresses for the
                // peer (other circuits among them) are for the lookup
                // after the relays.
                match self.dial_with(peer, vec![circuit.clone()], false).await {
                    Ok(()) => Ok(()),
                    Err(_) => self
                        .dial_with(peer, vec![circuit], false)
                        .await
                        .map_err(Some),
                }
            })
            .collect();
        let mut circuit_error = None;
        while let Some(result) = attempts.next().await {
            match result {
                Ok(()) => return Ok(()),
                Err(Some(e)) => circuit_error = Some(e),
                Err(None) => {}
            }
        }
        Err(circuit_error.unwrap_or(ConnectError::Unreachable {
            peer,
            reason: Unreachable::NoRelay,
        }))
    }

    /// The path once a fresh connection has survived the remote's gate:
    /// an unauthorized dialer sees its connection established and then
    /// closed within a round trip.
    async fn settled_path(&self, peer: PeerId) -> Option<ConnectionPath> {
        self.inner.control.path(peer)
    }

    /// Opens a raw stream for `protocol` to `peer` (connecting first),
    /// on its best connection: for an embedder's own protocols, and for
    /// probing what a peer serves. peerup's own protocols have their own
    /// calls ([`Node::open_service`], [`Node::ping`], [`Node::join`]).
    ///
    /// # Errors
    /// [`crate::streams::OpenError`] (`Unsupported` when the peer does not
    /// serve the protocol on that connection), or a connection failure
    /// as `Io`.
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<libp2p::Stream, crate::streams::OpenError> {
        self.connect(peer)
            .await
            .map_err(|e| crate::streams::OpenError::Io(std::io::Error::other(e)))?;
        Ok(self.inner.control.open(peer, protocol).await?.stream)
    }

    /// Disconnects every connection to `peer`.
    pub fn disconnect(&self, peer: PeerId) {
        self.inner.command(Command::Disconnect { peer });
    }

    /// Disconnects `peer` and waits (at most a few seconds) until no
    /// connection to it is left.
    pub async fn disconnect_and_wait(&self, peer: PeerId) {
        self.disconnect(peer);
        let rt = &self.inner.rt;
        let deadline = rt.now() + Duration::from_secs(5);
        while rt.now() < deadline && self.inner.snapshot(|s| s.peers.contains_key(&peer)) {
            rt.sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes one connection.
    pub fn close_connection(&self, connection: ConnectionId) {
        self.inner.command(Command::CloseConnection { connection });
    }

    /// Replaces `authorized_keys` and applies it live: peers no longer
    /// authorized are disconnected at once.
    pub fn reload_authorized_keys(&self, doc: &Document) -> Change {
        self.inner.set_authorized_keys_doc(doc.clone());
        let connections = self.inner.connections();
        let change = self
            .inner
            .policy_mut()
            .reload(doc, connections, self.inner.wall_clock());
        self.inner.apply_change(change.clone());
        self.inner.publish(Event::AuthorizedKeysReloaded {
            revoked: change.revoked.clone(),
        });
        change
    }

    /// Re-reads `authorized_keys` from its file and applies it live.
    ///
    /// # Errors
    /// [`StartError`] for an unreadable or invalid file; the old policy
    /// stays in force.
    pub fn reload_authorized_keys_file(&self) -> Result<Change, StartError> {
        let Some(path) = self.inner.options.authorized_keys_path.clone() else {
            return Ok(Change::default());
        };
        let bytes = match fs::read_private(&path) {
            Ok(bytes) => bytes,
            Err(e @ (FsError::Mode(_) | FsError::Ownership(_))) => {
                // Not trusted to add anyone, but a removal is always safe
                // to honour: a peer taken out stays out.
                if let Ok(bytes) = fs::read(&path) {
                    let doc = read_authorized_keys(&path, &bytes)?;
                    let connections = self.inner.connections();
                    let change = self.inner.policy_mut().reload_removals(
                        &doc,
                        connections,
                        self.inner.wall_clock(),
                    );
                    if !change.removed.is_empty() {
                        tracing::warn!(removed = ?change.removed, "authorized_keys failed its permission check: only its removals were applied");
                    }
                    self.inner.apply_change(change);
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let doc = read_authorized_keys(&path, &bytes)?;
        let change = self.reload_authorized_keys(&doc);
        self.inner.set_ak_fingerprint(Fingerprint::of(&bytes));
        Ok(change)
    }

    /// Reloads `authorized_keys` if the file's bytes differ from the ones
    /// last loaded (or saved by a pairing); `None` when they do not.
    ///
    /// # Errors
    /// As [`Node::reload_authorized_keys_file`].
    pub fn reload_authorized_keys_if_changed(&self) -> Result<Option<Change>, StartError> {
        let Some(path) = self.inner.options.authorized_keys_path.clone() else {
            return Ok(None);
        };
        let loaded = *self
            .inner
            .ak_fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if loaded.is_some() && loaded == Some(Fingerprint::of_file(&path)) {
            return Ok(None);
        }
        self.reload_authorized_keys_file().map(Some)
    }

    /// Whether `peer` is authorized now.
    pub fn is_authorized(&self, peer: &PeerId) -> bool {
        self.inner.policy().status(peer, self.inner.wall_clock())
            == peerup_core::authorized_keys::Status::Authorized
    }

    /// Whether the node runs ([`Node::shutdown`] not called, its event
    /// loop alive).
    pub fn is_running(&self) -> bool {
        !self.inner.commands.is_closed()
    }

    /// Stops the node: closes every connection and the event loop, and
    /// aborts every service, forwarder and proxied connection.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        let _ = self
            .inner
            .commands
            .clone()
            .send(Command::Shutdown { reply: tx })
            .await;
        let _ = rx.await;
        let tasks = std::mem::take(
            &mut *self
                .inner
                .all_tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for h in tasks.into_values() {
            h.abort();
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A service's local address and rule as exposed now (`None` for a
    /// service not exposed, or a name that is not a DNS label): the
    /// start's options, then every live change
    /// ([`Node::expose_service`], [`Node::unexpose_service`],
    /// [`Node::set_service_rule`], [`Node::apply_services`]).
    pub fn service_rule(&self, name: impl IntoServiceName) -> Option<ServiceSpec> {
        let name = name.into_service_name().ok()?;
        self.inner
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()
    }

    /// Every service exposed now, enabled or not, with its local address
    /// and rule.
    pub fn service_specs(&self) -> BTreeMap<DnsLabel, ServiceSpec> {
        self.inner
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Inbound connections refused by a connection limit so far.
    pub fn limit_stats(&self) -> &crate::limits::LimitStats {
        &self.inner.limit_stats
    }

    /// The names of the services exposed and enabled now.
    pub fn services(&self) -> BTreeSet<String> {
        self.inner
            .snapshot(|s| s.services.keys().cloned().collect())
    }
}

async fn wait_listening(
    swarm: &mut Swarm<Behaviour>,
    expected: usize,
    rt: &Arc<dyn Runtime>,
) -> Result<Vec<Multiaddr>, StartError> {
    use futures::FutureExt;
    use libp2p::swarm::SwarmEvent;
    let mut addrs = Vec::new();
    let mut listeners = std::collections::HashSet::new();
    // A bind that fails does so in `listen_on`, before this. What is left
    // to wait for is each listener's addresses, which come at once from
    // the interface list, except for a listener with none to report (a
    // wildcard IPv6 listener on a host without IPv6 addresses waited the
    // full deadline here, 5 s at every start): stop once the events dry
    // up; later addresses reach `status` through the event loop.
    let deadline = rt.now() + Duration::from_secs(5);
    let mut quiet_until = rt.now() + LISTEN_QUIET;
    while listeners.len() < expected {
        let mut timer = rt.sleep_until(deadline.min(quiet_until)).fuse();
        futures::select_biased! {
            ev = swarm.select_next_some() => match ev {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    listeners.insert(listener_id);
                    addrs.push(address);
                    quiet_until = rt.now() + LISTEN_QUIET;
                }
                SwarmEvent::ListenerClosed { addresses, reason: Err(e), .. } => {
                    return Err(StartError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        source: Box::new(e),
                    });
                }
                other => tracing::trace!(?other, "event before listening"),
            },
            () = timer => break,
        }
    }
    Ok(addrs)
}
