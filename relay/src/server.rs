//! The relay's swarm and event loop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, kad, ping, relay};
use peerup_core::authorized_keys::Document;
use peerup_core::authz::{Connection, Policy};
use peerup_core::time::UnixTime;
use peerup_core::wire::protocol;
use peerup_net::gate::{Gate, GateShared};
use peerup_net::runtime::{Runtime, TransportOptions};

/// Resource limits (WIRE.md §11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Circuits per peer at once.
    pub max_circuits: usize,
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
    /// Limits.
    pub limits: Limits,
    /// DHT protocol.
    pub kad_protocol: String,
    /// Transport options.
    pub transport: TransportOptions,
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
            limits: Limits::default(),
            kad_protocol: protocol::KAD.to_owned(),
            transport: TransportOptions::default(),
        }
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
    /// A reservation was denied.
    ReservationDenied {
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
    },
    /// A circuit closed.
    CircuitClosed {
        /// From.
        src: PeerId,
        /// To.
        dst: PeerId,
        /// Why, if it failed.
        error: Option<String>,
    },
    /// A connection was denied by gating.
    Denied {
        /// The peer.
        peer: PeerId,
    },
}

/// Counters for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Connected peers.
    pub connected_peers: AtomicU64,
    /// Reservations held.
    pub reservations: AtomicU64,
    /// Circuits open.
    pub active_circuits: AtomicU64,
    /// Circuits ever opened.
    pub circuits_total: AtomicU64,
    /// Connections denied.
    pub denied: AtomicU64,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gate: Gate,
    relay: relay::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

enum Command {
    Reload(Document, oneshot::Sender<Vec<PeerId>>),
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
    #[error("cannot set up transports: {0}")]
    Transport(String),
    /// A listen address failed.
    #[error("cannot listen on {addr}: {message}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        message: String,
    },
}

fn now() -> UnixTime {
    UnixTime::from_system_time(std::time::SystemTime::now())
}

fn secs_u32(d: Option<Duration>) -> Duration {
    // libp2p sends durations as u32 seconds and panics above; "unlimited"
    // is the largest it can send (about 136 years).
    let max = Duration::from_secs(u64::from(u32::MAX));
    d.map_or(max, |d| d.min(max).max(Duration::from_secs(1)))
}

impl Relay {
    /// Starts a relay on `rt`; returns once it listens.
    ///
    /// # Errors
    /// [`RelayError`].
    pub async fn start(rt: Arc<dyn Runtime>, options: RelayOptions) -> Result<Relay, RelayError> {
        let peer_id = options.keypair.public().to_peer_id();
        let (policy, warnings) = Policy::new(options.gating, &options.authorized_keys);
        for w in warnings {
            tracing::warn!(?w, "relay authorization");
        }
        let policy = Arc::new(RwLock::new(policy));
        let transport = rt
            .transport(&options.keypair, &options.transport)
            .map_err(|e| RelayError::Transport(e.to_string()))?;
        let l = &options.limits;
        let relay_config = relay::Config {
            max_reservations: l.max_reservations,
            max_reservations_per_peer: 4,
            reservation_duration: l.reservation_ttl,
            reservation_rate_limiters: Vec::new(),
            max_circuits: l
                .max_circuits
                .saturating_mul(l.max_reservations.max(1))
                .max(l.max_circuits),
            max_circuits_per_peer: l.max_circuits,
            max_circuit_duration: secs_u32(l.session_duration),
            max_circuit_bytes: l.session_data_limit.unwrap_or(0),
            circuit_src_rate_limiters: Vec::new(),
        };
        let mut relay_behaviour = relay::Behaviour::new(peer_id, relay_config);
        relay_behaviour.set_status(Some(relay::Status::Enable));
        let kad_proto = StreamProtocol::try_from_owned(options.kad_protocol.clone())
            .map_err(|e| RelayError::Transport(e.to_string()))?;
        let mut kad = kad::Behaviour::with_config(
            peer_id,
            kad::store::MemoryStore::new(peer_id),
            kad::Config::new(kad_proto.clone()),
        );
        kad.set_mode(Some(kad::Mode::Server));
        let behaviour = Behaviour {
            gate: Gate::new(policy.clone(), Arc::new(GateShared::default())),
            relay: relay_behaviour,
            identify: identify::Behaviour::new(
                identify::Config::new("/peerup/1.0.0".to_owned(), options.keypair.public())
                    .with_agent_version(protocol::relay_agent(env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
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
                    message: e.to_string(),
                })?;
        }
        let mut addrs = Vec::new();
        let mut seen = HashSet::new();
        while seen.len() < options.listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    seen.insert(listener_id);
                    swarm.add_external_address(address.clone());
                    addrs.push(address);
                }
                SwarmEvent::ListenerClosed {
                    addresses,
                    reason: Err(e),
                    ..
                } => {
                    return Err(RelayError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        message: e.to_string(),
                    });
                }
                _ => {}
            }
        }
        let (tx, rx) = mpsc::channel(16);
        let relay = Relay {
            peer_id,
            listen: Arc::new(Mutex::new(addrs)),
            commands: tx,
            stats: Arc::new(RelayStats::default()),
            events: Arc::new(Mutex::new(Vec::new())),
            started: Instant::now(),
        };
        let driver = run(swarm, relay.clone(), rx, policy, kad_proto);
        rt.spawn(Box::pin(driver));
        Ok(relay)
    }

    /// The relay's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Its listen addresses (with the OS's ports).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.listen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Full addresses a node should use: `<listen addr>/p2p/<relay>`.
    pub fn full_addrs(&self) -> Vec<Multiaddr> {
        self.listen_addrs()
            .into_iter()
            .map(|a| a.with(Protocol::P2p(self.peer_id)))
            .collect()
    }

    /// Counters.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
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
    /// are disconnected. Returns them.
    pub async fn reload_authorized_keys(&self, doc: Document) -> Vec<PeerId> {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .clone()
            .send(Command::Reload(doc, tx))
            .await
            .is_err()
        {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
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

    fn publish(&self, e: RelayEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain_mut(|s| !s.try_send(e.clone()).is_err_and(|e| e.is_disconnected()));
    }
}

async fn run(
    mut swarm: Swarm<Behaviour>,
    relay: Relay,
    mut commands: mpsc::Receiver<Command>,
    policy: Arc<RwLock<Policy>>,
    kad_proto: StreamProtocol,
) {
    let stats = relay.stats.clone();
    loop {
        futures::select_biased! {
            cmd = commands.next() => match cmd {
                Some(Command::Reload(doc, reply)) => {
                    let connected: Vec<Connection> = swarm.connected_peers().map(|p| Connection::inbound(*p)).collect();
                    let change = policy.write().unwrap_or_else(|e| e.into_inner()).reload(&doc, connected, now());
                    for p in &change.revoked {
                        let _ = swarm.disconnect_peer_id(*p);
                    }
                    let _ = reply.send(change.revoked);
                }
                Some(Command::Shutdown(reply)) => {
                    let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
                    for p in peers {
                        let _ = swarm.disconnect_peer_id(p);
                    }
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { address, .. } => {
                    swarm.add_external_address(address.clone());
                    relay.listen.lock().unwrap_or_else(|e| e.into_inner()).push(address.clone());
                    relay.publish(RelayEvent::Listening(address));
                }
                SwarmEvent::ConnectionEstablished { num_established, .. } if num_established.get() == 1 => {
                    stats.connected_peers.fetch_add(1, Ordering::Relaxed);
                }
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => {
                    stats.connected_peers.fetch_sub(1, Ordering::Relaxed);
                }
                SwarmEvent::IncomingConnectionError { peer_id: Some(peer), error: libp2p::swarm::ListenError::Denied { .. }, .. } => {
                    stats.denied.fetch_add(1, Ordering::Relaxed);
                    relay.publish(RelayEvent::Denied { peer });
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                    if info.protocols.contains(&kad_proto) =>
                {
                    for a in info.listen_addrs {
                        swarm.behaviour_mut().kad.add_address(&peer_id, a);
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Relay(e)) => on_relay(&relay, &stats, e),
                _ => {}
            },
        }
    }
}

#[allow(deprecated)]
fn on_relay(relay: &Relay, stats: &RelayStats, e: relay::Event) {
    match e {
        relay::Event::ReservationReqAccepted {
            src_peer_id,
            renewed,
        } => {
            if !renewed {
                stats.reservations.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(peer = %src_peer_id, renewed, "reservation accepted");
            relay.publish(RelayEvent::ReservationAccepted {
                peer: src_peer_id,
                renewed,
            });
        }
        relay::Event::ReservationReqDenied { src_peer_id, .. } => {
            relay.publish(RelayEvent::ReservationDenied { peer: src_peer_id });
        }
        relay::Event::ReservationClosed { .. } | relay::Event::ReservationTimedOut { .. } => {
            stats.reservations.fetch_sub(1, Ordering::Relaxed);
        }
        relay::Event::CircuitReqAccepted {
            src_peer_id,
            dst_peer_id,
        } => {
            stats.active_circuits.fetch_add(1, Ordering::Relaxed);
            stats.circuits_total.fetch_add(1, Ordering::Relaxed);
            relay.publish(RelayEvent::CircuitOpened {
                src: src_peer_id,
                dst: dst_peer_id,
            });
        }
        relay::Event::CircuitReqDenied {
            src_peer_id,
            dst_peer_id,
            ..
        } => {
            relay.publish(RelayEvent::CircuitDenied {
                src: src_peer_id,
                dst: dst_peer_id,
            });
        }
        relay::Event::CircuitClosed {
            src_peer_id,
            dst_peer_id,
            error,
        } => {
            stats.active_circuits.fetch_sub(1, Ordering::Relaxed);
            relay.publish(RelayEvent::CircuitClosed {
                src: src_peer_id,
                dst: dst_peer_id,
                error: error.map(|e| e.to_string()),
            });
        }
        _ => {}
    }
}
