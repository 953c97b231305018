//! The node's event loop: the one task that owns the `Swarm`.
//!
//! It applies commands from [`super::Node`] handles, keeps a reservation
//! on every relay (the core's `reservation::Reservations` decides when to
//! dial, listen and retry; this loop feeds it the swarm's events and
//! carries out its outputs), feeds identify into the DHT, records
//! connections, paths and RTTs for `status`, and publishes events.

use std::collections::HashMap;
use std::num::NonZeroU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::metrics::Recorder;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, ping, relay};
use peerup_core::reservation::{Output as Reservation, Reservations};
use peerup_core::time::Instant as CoreInstant;
use peerup_core::wire::ConnectionPath;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::{ConnInfo, Event, Inner};
use crate::streams::inbound_path;

/// Longest sleep of the expiry timer.
const EXPIRY_RECHECK: Duration = Duration::from_secs(60);

pub(crate) enum Command {
    Dial {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        /// Also the addresses the behaviours know (the DHT's, identify's);
        /// off for a circuit through one given relay.
        extend: bool,
        reply: oneshot::Sender<Result<(), DialFailure>>,
    },
    /// Connects to `peer` unless already connected or dialing; in the
    /// latter case waits for that dial.
    EnsureConnected {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<(), DialFailure>>,
    },
    FindPeer {
        peer: PeerId,
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    AddAddresses {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
    },
    Disconnect {
        peer: PeerId,
    },
    /// Reserve on this relay now (we were just authorized there).
    RetryRelay {
        relay: PeerId,
    },
    CloseConnection {
        connection: ConnectionId,
    },
    /// A diagnostic connection to exactly `addr` (`Node::probe`).
    Probe {
        peer: PeerId,
        addr: Multiaddr,
        reply: oneshot::Sender<Result<super::probe::Probe, super::probe::ProbeError>>,
    },
    /// Listen on a relay's circuit address (`Node::reserve_on`).
    Reserve {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<Multiaddr, super::probe::ReserveError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

pub(crate) struct Driver {
    pub swarm: Swarm<Behaviour>,
    pub inner: Arc<Inner>,
    pub commands: mpsc::Receiver<Command>,
    /// The relays' reservations, on the core's clock: `origin` is its
    /// zero.
    reservations: Reservations<ListenerId>,
    origin: Instant,
    dials: HashMap<ConnectionId, (PeerId, oneshot::Sender<Result<(), DialFailure>>)>,
    finds: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Vec<Multiaddr>>)>,
    /// Callers waiting for a dial someone else started.
    waiting: HashMap<PeerId, Vec<oneshot::Sender<Result<(), DialFailure>>>>,
    /// Diagnostic connections in flight (`Node::probe`).
    probes: HashMap<ConnectionId, super::probe::Pending>,
    /// Reservations asked for by `Node::reserve_on`, by their listener.
    reserves: HashMap<ListenerId, oneshot::Sender<Result<Multiaddr, super::probe::ReserveError>>>,
}

impl Driver {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        inner: Arc<Inner>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        // Only the relays we hold reservations on are managed here.
        let reserved = if inner.options.reserve {
            inner.options.relays.clone()
        } else {
            Vec::new()
        };
        // One entry, so one reservation, per relay peer (see the core
        // module for why).
        let origin = inner.rt.now();
        let reservations = Reservations::new(
            inner.peer_id,
            &reserved,
            inner.options.reservation_interval,
            CoreInstant::ZERO,
        );
        Driver {
            swarm,
            inner,
            commands,
            reservations,
            origin,
            dials: HashMap::new(),
            finds: HashMap::new(),
            waiting: HashMap::new(),
            probes: HashMap::new(),
            reserves: HashMap::new(),
        }
    }

    /// Connects to every relay and the bootstrap peers.
    pub(crate) fn start(&mut self) {
        for addr in self.inner.options.bootstrap.clone() {
            if let Some(Protocol::P2p(peer)) = addr.iter().last() {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
        }
        self.reservations.handle_start();
        self.drain_reservations();
    }

    /// Now on the reservation machine's clock.
    fn core_now(&self) -> CoreInstant {
        CoreInstant::from_duration(self.inner.rt.now().saturating_duration_since(self.origin))
    }

    /// Carries out the reservation machine's outputs, reporting a dial or
    /// listen that fails at once before taking the next output.
    fn drain_reservations(&mut self) {
        while let Some(out) = self.reservations.poll_output() {
            match out {
                Reservation::Dial { relay, addrs } => {
                    // One address at a time, in the config's order: the
                    // first that works carries the reservation, so which
                    // transport the relay connection uses (and so which
                    // observed address DCUtR offers) is the one configured
                    // first, as `Node::connect` picks it, not the winner of
                    // a race.
                    let opts = DialOpts::peer_id(relay)
                        .addresses(addrs)
                        .override_dial_concurrency_factor(NonZeroU8::MIN)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .build();
                    if let Err(e) = self.swarm.dial(opts) {
                        let error = describe(&e);
                        tracing::debug!(relay = %relay, %error, "dialing relay");
                        let now = self.core_now();
                        self.reservations.handle_dial_failed(now, &relay, error);
                    }
                }
                Reservation::Bootstrap { relay, addr } => {
                    // The relay is a bootstrap node of the DHT.
                    self.swarm.behaviour_mut().kad.add_address(&relay, addr);
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
                Reservation::Listen { relay, addr } => match self.swarm.listen_on(addr) {
                    Ok(id) => self.reservations.handle_listening(&relay, id),
                    Err(e) => {
                        let now = self.core_now();
                        self.reservations.handle_listen_failed(
                            now,
                            &relay,
                            crate::error::chain(&e),
                        );
                    }
                },
                Reservation::Lost {
                    relay,
                    error,
                    retry_in,
                } => {
                    tracing::warn!(relay = %relay, %error, ?retry_in, "no reservation on relay");
                    self.inner.metrics.set_reserved(&relay, false);
                    self.inner.update(|s| {
                        let r = s.relays.entry(relay).or_default();
                        r.reserved = false;
                        r.last_error = Some(error.clone());
                    });
                    self.inner.publish(Event::ReservationLost { relay, error });
                }
                Reservation::Reserved { relay, addr } => {
                    self.inner.metrics.set_reserved(&relay, true);
                    self.inner.update(|s| {
                        let r = s.relays.entry(relay).or_default();
                        r.reserved = true;
                        r.last_error = None;
                        r.circuit_addr = Some(addr.clone());
                    });
                }
            }
        }
    }

    fn next_deadline_without_expiry(&self) -> Option<Instant> {
        self.reservations
            .poll_timeout()
            .map(|t| self.origin + t.as_duration())
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.next_deadline_without_expiry(), self.expiry_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the next `expires=` in authorized_keys passes: its peer is cut
    /// then, not at the next periodic check. Re-armed at least every
    /// [`EXPIRY_RECHECK`], so a step of the wall clock is noticed.
    fn expiry_deadline(&self) -> Option<Instant> {
        let wall = self.inner.wall_clock();
        let next = self.inner.policy().next_expiry(wall)?;
        // A millisecond past the instant: the wall clock is read again
        // when the timer fires, and `expires` is exclusive.
        let wait = wall.until(next).min(EXPIRY_RECHECK) + Duration::from_millis(1);
        Some(self.inner.rt.now() + wait)
    }

    fn on_timer(&mut self) {
        let now = self.core_now();
        // Cheap, and the only way an `expires=` takes effect mid-connection.
        self.inner.revalidate_policy();
        // Due retries, then the periodic check (the relay client renews
        // reservations by itself; this catches any relay without a live
        // listener).
        self.reservations.handle_timeout(now);
        self.drain_reservations();
    }

    /// Runs until shutdown.
    pub(crate) async fn run(mut self) {
        self.start();
        let mut revalidated = self.inner.wall_clock();
        loop {
            // Timers are checked here too, not only when their branch wins
            // the select: a swarm that always has an event ready (a flood)
            // would otherwise starve them, and an expired peer stay in.
            let wall = self.inner.wall_clock();
            if self
                .inner
                .policy()
                .next_expiry(revalidated)
                .is_some_and(|at| at <= wall)
            {
                self.inner.revalidate_policy();
            }
            revalidated = wall;
            if self
                .next_deadline_without_expiry()
                .is_some_and(|at| self.inner.rt.now() >= at)
            {
                self.on_timer();
            }
            let mut timer = match self.next_deadline() {
                Some(deadline) => self.inner.rt.sleep_until(deadline),
                None => futures::future::pending().boxed(),
            }
            .fuse();
            futures::select_biased! {
                cmd = self.commands.next() => match cmd {
                    Some(Command::Shutdown { reply }) => {
                        self.shutdown();
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.on_command(cmd),
                    None => {
                        self.shutdown();
                        return;
                    }
                },
                event = self.swarm.select_next_some() => self.on_event(event),
                () = timer => self.on_timer(),
            }
        }
    }

    fn shutdown(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        for (_, (_, reply)) in self.dials.drain() {
            let _ = reply.send(Err(DialFailure::ShuttingDown));
        }
        self.inner.publish(Event::Stopped);
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial {
                peer,
                addrs,
                extend,
                reply,
            } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let opts = DialOpts::peer_id(peer).addresses(addrs);
                let opts = if extend {
                    opts.extend_addresses_through_behaviour()
                } else {
                    opts
                };
                let opts = opts.condition(PeerCondition::Always).build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (peer, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(DialFailure::Dial(Arc::new(e))));
                    }
                }
            }
            Command::EnsureConnected { peer, addrs, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (peer, reply));
                    }
                    Err(DialError::DialPeerConditionFalse(_)) => {
                        self.waiting.entry(peer).or_default().push(reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(DialFailure::Dial(Arc::new(e))));
                    }
                }
            }
            Command::FindPeer { peer, reply } => {
                let q = self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                self.finds.insert(q, (peer, reply));
            }
            Command::AddAddresses { peer, addrs } => {
                for a in addrs {
                    self.swarm.add_peer_address(peer, a);
                }
            }
            Command::RetryRelay { relay } => {
                self.reservations.handle_retry_now(&relay);
                self.drain_reservations();
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::CloseConnection { connection } => {
                self.swarm.close_connection(connection);
            }
            Command::Probe { peer, addr, reply } => {
                // Probes whose caller gave up: their connections go.
                let abandoned: Vec<ConnectionId> = self
                    .probes
                    .iter()
                    .filter(|(_, p)| p.reply.is_canceled())
                    .map(|(c, _)| *c)
                    .collect();
                for c in abandoned {
                    self.probes.remove(&c);
                    self.swarm.close_connection(c);
                }
                let opts = DialOpts::peer_id(peer)
                    .addresses(vec![addr])
                    .condition(PeerCondition::Always)
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.probes.insert(
                            id,
                            super::probe::Pending {
                                started: self.inner.rt.now(),
                                connect_time: None,
                                observed: None,
                                agent: String::new(),
                                rtt: None,
                                reply,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Err(DialFailure::Dial(Arc::new(e)).into()));
                    }
                }
            }
            Command::Reserve { addr, reply } => match self.swarm.listen_on(addr) {
                Ok(id) => {
                    self.reserves.insert(id, reply);
                }
                Err(e) => {
                    let _ = reply.send(Err(super::probe::ReserveError::Refused(
                        crate::error::chain(&e),
                    )));
                }
            },
            Command::Shutdown { .. } => {}
        }
    }

    /// Answers a probe once its connection is identified and pinged.
    fn finish_probe(&mut self, connection: ConnectionId) {
        if let Some(report) = self
            .probes
            .get(&connection)
            .and_then(|p| p.finished(connection))
            && let Some(p) = self.probes.remove(&connection)
        {
            let _ = p.reply.send(Ok(report));
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let libp2p_metrics = &self.inner.metrics.libp2p;
        if crate::metrics::record_swarm_event(&event) {
            libp2p_metrics.record(&event);
        }
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => libp2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => libp2p_metrics.record(e),
            _ => {}
        }
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                tracing::info!(%address, "listening");
                if let Some(reply) = self.reserves.remove(&listener_id) {
                    let _ = reply.send(Ok(address.clone()));
                }
                // A relay's circuit address: the reservation is made.
                self.reservations
                    .handle_listen_addr(&listener_id, address.clone());
                self.drain_reservations();
                self.inner.update(|s| s.listen_addrs.push(address.clone()));
                super::roam::on_listen_addr_change(&self.inner, &address, false);
                self.inner.publish(Event::Listening { addr: address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!(%address, "no longer listening");
                self.inner
                    .update(|s| s.listen_addrs.retain(|a| *a != address));
                super::roam::on_listen_addr_change(&self.inner, &address, true);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                let error = match reason {
                    Ok(()) => "relay connection closed".to_owned(),
                    Err(e) => crate::error::chain(&e),
                };
                if let Some(reply) = self.reserves.remove(&listener_id) {
                    let _ = reply.send(Err(super::probe::ReserveError::Refused(error.clone())));
                }
                let now = self.core_now();
                self.reservations
                    .handle_listener_closed(now, &listener_id, error);
                self.drain_reservations();
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(error = %crate::error::chain(&error), "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(p) = self.probes.get_mut(&connection_id) {
                    p.connect_time = Some(self.inner.rt.now().saturating_duration_since(p.started));
                }
                self.on_established(peer_id, connection_id, &endpoint, num_established.get());
                self.reservations.handle_connected(&peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                let cause = cause.map(|c| crate::error::chain(&c));
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                let metrics = &self.inner.metrics;
                if let Some(p) = self.probes.remove(&connection_id) {
                    let _ = p.reply.send(Err(super::probe::ProbeError::ClosedAtOnce {
                        cause: cause
                            .clone()
                            .unwrap_or_else(|| "closed by the other side".to_owned()),
                    }));
                }
                self.inner.update(|s| {
                    if let Some(p) = s.peers.get_mut(&peer_id) {
                        if let Some(c) = p.connections.iter().find(|c| c.id == connection_id) {
                            metrics.connections_on(c.path).dec();
                        }
                        p.connections.retain(|c| c.id != connection_id);
                        if p.connections.is_empty() {
                            s.peers.remove(&peer_id);
                        }
                    }
                });
                self.inner.publish(Event::Disconnected {
                    peer: peer_id,
                    remaining: num_established as usize,
                });
                // A relay closing before identify: its gate turned us away.
                let now = self.core_now();
                self.reservations
                    .handle_connection_closed(now, &peer_id, num_established, cause);
                self.drain_reservations();
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let msg = DialFailure::Dial(Arc::new(error));
                if let Some(p) = self.probes.remove(&connection_id) {
                    let _ = p.reply.send(Err(msg.clone().into()));
                }
                if let Some(peer) = peer_id
                    && !self.swarm.is_connected(&peer)
                    && !self.dials.values().any(|(p, _)| *p == peer)
                {
                    for w in self.waiting.remove(&peer).unwrap_or_default() {
                        let _ = w.send(Err(msg.clone()));
                    }
                }
                if let Some((peer, reply)) = self.dials.remove(&connection_id) {
                    if self.swarm.is_connected(&peer) {
                        let _ = reply.send(Ok(()));
                    } else {
                        let _ = reply.send(Err(msg.clone()));
                    }
                }
                if let Some(peer) = peer_id {
                    let now = self.core_now();
                    self.reservations
                        .handle_dial_failed(now, &peer, msg.to_string());
                    self.drain_reservations();
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error,
                send_back_addr,
                ..
            } => {
                let msg = crate::error::chain(&error);
                tracing::debug!(peer = ?peer_id, %send_back_addr, error = %msg, "incoming connection failed");
                if let libp2p::swarm::ListenError::Denied { cause } = &error
                    && self.inner.limit_stats.record(cause)
                {
                    // A limit, not the gate: counted, not an event each.
                } else if let (Some(peer), libp2p::swarm::ListenError::Denied { .. }) =
                    (peer_id, &error)
                {
                    self.inner.publish(Event::Denied { peer, reason: msg });
                }
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour(event),
            _ => {}
        }
    }

    fn on_established(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
        count: u32,
    ) {
        let (path, addr, outbound) = match endpoint {
            ConnectedPoint::Dialer { address, .. } => {
                (crate::streams::path_of(address), address.clone(), true)
            }
            ConnectedPoint::Listener {
                local_addr,
                send_back_addr,
            } => (
                inbound_path(local_addr, send_back_addr),
                send_back_addr.clone(),
                false,
            ),
        };
        tracing::info!(%peer, %path, %addr, "connected");
        let upgraded = path == ConnectionPath::Direct
            && self.inner.snapshot(|s| {
                s.peers.get(&peer).is_some_and(|p| {
                    p.connections
                        .iter()
                        .any(|c| c.path == ConnectionPath::Relayed)
                })
            });
        self.inner.metrics.connections_on(path).inc();
        self.inner.update(|s| {
            s.peers.entry(peer).or_default().connections.push(ConnInfo {
                id,
                path,
                remote: addr.clone(),
                outbound,
            });
        });
        if let Some((_, reply)) = self.dials.remove(&id) {
            let _ = reply.send(Ok(()));
        }
        for w in self.waiting.remove(&peer).unwrap_or_default() {
            let _ = w.send(Ok(()));
        }
        // Any other dial to this peer is satisfied too.
        let done: Vec<ConnectionId> = self
            .dials
            .iter()
            .filter(|(_, (p, _))| *p == peer)
            .map(|(c, _)| *c)
            .collect();
        for c in done {
            if let Some((_, reply)) = self.dials.remove(&c) {
                let _ = reply.send(Ok(()));
            }
        }
        self.inner.publish(Event::Connected {
            peer,
            path,
            connections: count as usize,
        });
        if upgraded {
            tracing::info!(%peer, "direct connection established (hole punched)");
            self.inner.publish(Event::Upgraded { peer });
        }
        // Pairing-only peers are not revalidated here: the gate decided.
    }

    fn on_behaviour(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                connection_id,
            }) => {
                if let Some(p) = self.probes.get_mut(&connection_id) {
                    p.observed = Some(Some(info.observed_addr.clone()));
                    p.agent = info.agent_version.clone();
                    self.finish_probe(connection_id);
                }
                let kad_proto = self.inner.kad_protocol.clone();
                if info.protocols.contains(&kad_proto) {
                    for a in &info.listen_addrs {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, a.clone());
                    }
                }
                self.inner.update(|s| {
                    if let Some(p) = s.peers.get_mut(&peer_id) {
                        p.agent = Some(info.agent_version.clone());
                    }
                });
                // A relay we dialed: listen on its circuit now.
                self.reservations.handle_identified(&peer_id);
                self.drain_reservations();
            }
            BehaviourEvent::Relay(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "reservation accepted");
                }
                self.inner.metrics.set_reserved(&relay_peer_id, true);
                self.inner.update(|s| {
                    let r = s.relays.entry(relay_peer_id).or_default();
                    r.reserved = true;
                    r.last_error = None;
                    r.renewals += u64::from(renewal);
                });
                if !renewal {
                    self.inner.publish(Event::ReservationAccepted {
                        relay: relay_peer_id,
                    });
                }
            }
            BehaviourEvent::Dcutr(e) => {
                self.inner.metrics.hole_punch(e.result.is_ok());
                match e.result {
                    Ok(_) => tracing::info!(peer = %e.remote_peer_id, "hole punch succeeded"),
                    Err(err) => {
                        tracing::debug!(peer = %e.remote_peer_id, error = %err, "hole punch failed");
                        self.inner.publish(Event::HolePunchFailed {
                            peer: e.remote_peer_id,
                            error: crate::error::chain(&err),
                        });
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Ok(rtt),
            }) => {
                if let Some(p) = self.probes.get_mut(&connection) {
                    p.rtt.get_or_insert(Some(rtt));
                    self.finish_probe(connection);
                }
                self.inner.update(|s| {
                    if let Some(p) = s.peers.get_mut(&peer) {
                        p.rtt = Some(rtt);
                        p.rtt_connection = Some(connection);
                    }
                });
            }
            BehaviourEvent::Ping(ping::Event {
                connection,
                result: Err(ref error),
                ..
            }) if self.probes.contains_key(&connection)
                && !matches!(error, ping::Failure::Timeout) =>
            {
                // A peer without ping: the probe reports no round trip.
                if let Some(p) = self.probes.get_mut(&connection) {
                    p.rtt.get_or_insert(None);
                }
                self.finish_probe(connection);
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error @ ping::Failure::Timeout),
            }) => {
                // libp2p's ping does not close a dead connection itself.
                // Only a timeout says the path is dead (not a peer without
                // the protocol, nor a stream error).
                tracing::info!(%peer, ?connection, %error, "ping failed: closing the connection (a dead path)");
                self.swarm.close_connection(connection);
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(r),
                step,
                ..
            }) => {
                let peers = match r {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                if let Some((target, _)) = self.finds.get(&id) {
                    let target = *target;
                    let found: Vec<Multiaddr> = peers
                        .into_iter()
                        .filter(|p| p.peer_id == target)
                        .flat_map(|p| p.addrs)
                        .collect();
                    if !found.is_empty() || step.last {
                        if let Some((_, reply)) = self.finds.remove(&id) {
                            let _ = reply.send(found);
                        }
                        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            q.finish();
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Why the driver's dial failed; every caller waiting on the same
/// connection gets a copy (hence the `Arc`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DialFailure {
    /// The node stopped while dialing.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// libp2p's dial error, each address with its cause.
    #[error("{}", describe(.0))]
    Dial(Arc<DialError>),
}

impl DialFailure {
    /// libp2p's error, when the dial itself failed.
    pub fn dial_error(&self) -> Option<&DialError> {
        match self {
            DialFailure::Dial(e) => Some(e),
            DialFailure::ShuttingDown => None,
        }
    }
}

/// One line: each address tried and why it failed (libp2p's own text is
/// a debug list).
fn describe(e: &DialError) -> String {
    match e {
        DialError::Transport(errors) => {
            let parts: Vec<String> = errors
                .iter()
                .map(|(addr, err)| format!("{addr}: {}", crate::error::chain(err)))
                .collect();
            format!("could not connect: {}", parts.join("; "))
        }
        other => crate::error::chain(other),
    }
}
