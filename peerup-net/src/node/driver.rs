//! The node's event loop: the one task that owns the `Swarm`.
//!
//! It applies commands from [`super::Node`] handles, keeps a reservation
//! on every relay (re-made with backoff when a relay connection drops,
//! checked every `reservation_interval`), feeds identify into the DHT,
//! records connections, paths and RTTs for `status`, and publishes events.

use std::collections::HashMap;
use std::num::NonZeroU8;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, ping, relay};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::pingpong::Path;

use super::behaviour::{Behaviour, BehaviourEvent};
use super::{ConnInfo, Event, Inner};
use crate::streams::inbound_path;

/// Longest wait between attempts to re-reserve on a relay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First wait after a reservation is lost.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest sleep of the expiry timer.
const EXPIRY_RECHECK: Duration = Duration::from_secs(60);

pub(crate) enum Command {
    Dial {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Connects to `peer` unless already connected or dialing; in the
    /// latter case waits for that dial.
    EnsureConnected {
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        reply: oneshot::Sender<Result<(), String>>,
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
    CloseConnection {
        connection: ConnectionId,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

struct Relay {
    addr: RelayAddr,
    /// Every configured address of this relay (`addr`'s first), tried in
    /// the config's order: a relay is often listed at its TCP and QUIC
    /// addresses.
    dial_addrs: Vec<Multiaddr>,
    listener: Option<ListenerId>,
    /// When to try again, if not listening.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Waiting for identify from the relay before listening on it, so
    /// DCUtR knows our observed address.
    awaiting_identify: bool,
}

pub(crate) struct Driver {
    pub swarm: Swarm<Behaviour>,
    pub inner: Arc<Inner>,
    pub commands: mpsc::Receiver<Command>,
    relays: Vec<Relay>,
    dials: HashMap<ConnectionId, (PeerId, oneshot::Sender<Result<(), String>>)>,
    finds: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Vec<Multiaddr>>)>,
    /// Callers waiting for a dial someone else started.
    waiting: HashMap<PeerId, Vec<oneshot::Sender<Result<(), String>>>>,
    next_check: Instant,
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
        // One entry, so one reservation, per relay peer. A relay listed at
        // several addresses (its TCP and QUIC ones, as `peerup-relay`
        // prints them) must not be reserved on once per address: the relay
        // client keeps one reservation per connection, so a second circuit
        // listener replaces the first, whose listener then closes; each
        // entry would re-reserve every second, closing the other, forever.
        let mut relays: Vec<Relay> = Vec::new();
        for addr in &reserved {
            match relays
                .iter_mut()
                .find(|r| r.addr.peer_id() == addr.peer_id())
            {
                Some(r) => r.dial_addrs.push(addr.multiaddr().clone()),
                None => relays.push(Relay {
                    addr: addr.clone(),
                    dial_addrs: vec![addr.multiaddr().clone()],
                    listener: None,
                    retry_at: None,
                    backoff: MIN_BACKOFF,
                    awaiting_identify: false,
                }),
            }
        }
        let next_check = inner.rt.now() + inner.options.reservation_interval;
        Driver {
            swarm,
            inner,
            commands,
            relays,
            dials: HashMap::new(),
            finds: HashMap::new(),
            waiting: HashMap::new(),
            next_check,
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
        for i in 0..self.relays.len() {
            self.connect_relay(i);
        }
    }

    fn connect_relay(&mut self, i: usize) {
        let relay = &mut self.relays[i];
        let peer = relay.addr.peer_id();
        relay.retry_at = None;
        if self.swarm.is_connected(&peer) {
            self.listen_on_relay(i);
            return;
        }
        relay.awaiting_identify = true;
        // One address at a time, in the config's order: the first that
        // works carries the reservation, so which transport the relay
        // connection uses (and so which observed address DCUtR offers) is
        // the one configured first, as `Node::connect` picks it, not the
        // winner of a race.
        let opts = DialOpts::peer_id(peer)
            .addresses(relay.dial_addrs.clone())
            .override_dial_concurrency_factor(NonZeroU8::MIN)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(relay = %peer, error = %e, "dialing relay");
            self.relay_failed(i, e.to_string());
        }
    }

    fn listen_on_relay(&mut self, i: usize) {
        let relay = &mut self.relays[i];
        relay.awaiting_identify = false;
        if relay.listener.is_some() {
            return;
        }
        let circuit = relay.addr.multiaddr().clone().with(Protocol::P2pCircuit);
        match self.swarm.listen_on(circuit) {
            Ok(id) => relay.listener = Some(id),
            Err(e) => {
                let msg = e.to_string();
                self.relay_failed(i, msg);
            }
        }
    }

    fn relay_failed(&mut self, i: usize, error: String) {
        let now = self.inner.rt.now();
        let relay = &mut self.relays[i];
        relay.listener = None;
        relay.awaiting_identify = false;
        relay.retry_at = Some(now + relay.backoff);
        let wait = relay.backoff;
        relay.backoff = (relay.backoff * 2).min(MAX_BACKOFF);
        let peer = relay.addr.peer_id();
        tracing::warn!(relay = %peer, %error, retry_in = ?wait, "no reservation on relay");
        self.inner.update(|s| {
            let r = s.relays.entry(peer).or_default();
            r.reserved = false;
            r.last_error = Some(error.clone());
        });
        self.inner
            .publish(Event::ReservationLost { relay: peer, error });
    }

    fn next_deadline_without_expiry(&self) -> Instant {
        self.relays
            .iter()
            .filter_map(|r| r.retry_at)
            .fold(self.next_check, Instant::min)
    }

    fn next_deadline(&self) -> Instant {
        let base = self.next_deadline_without_expiry();
        match self.expiry_deadline() {
            Some(at) => base.min(at),
            None => base,
        }
    }

    /// When the next `expires=` in authorized_keys passes: its peer is cut
    /// then, not at the next periodic check. Re-armed at least every
    /// [`EXPIRY_RECHECK`], so a step of the wall clock is noticed.
    fn expiry_deadline(&self) -> Option<Instant> {
        let wall = super::now();
        let next = self.inner.policy().next_expiry(wall)?;
        // A millisecond past the instant: the wall clock is read again
        // when the timer fires, and `expires` is exclusive.
        let wait = wall.until(next).min(EXPIRY_RECHECK) + Duration::from_millis(1);
        Some(self.inner.rt.now() + wait)
    }

    fn on_timer(&mut self) {
        let now = self.inner.rt.now();
        // Cheap, and the only way an `expires=` takes effect mid-connection.
        self.inner.revalidate_policy();
        for i in 0..self.relays.len() {
            if self.relays[i].retry_at.is_some_and(|t| t <= now) {
                self.connect_relay(i);
            }
        }
        if now >= self.next_check {
            self.next_check = now + self.inner.options.reservation_interval;
            // The relay client renews reservations by itself; this catches
            // any relay without a live listener.
            for i in 0..self.relays.len() {
                let r = &self.relays[i];
                if r.listener.is_none() && r.retry_at.is_none() && !r.awaiting_identify {
                    self.connect_relay(i);
                }
            }
        }
    }

    /// Runs until shutdown.
    pub(crate) async fn run(mut self) {
        self.start();
        let mut revalidated = super::now();
        loop {
            // Timers are checked here too, not only when their branch wins
            // the select: a swarm that always has an event ready (a flood)
            // would otherwise starve them, and an expired peer stay in.
            let wall = super::now();
            if self
                .inner
                .policy()
                .next_expiry(revalidated)
                .is_some_and(|at| at <= wall)
            {
                self.inner.revalidate_policy();
            }
            revalidated = wall;
            if self.inner.rt.now() >= self.next_deadline_without_expiry() {
                self.on_timer();
            }
            let deadline = self.next_deadline();
            let mut timer = self.inner.rt.sleep_until(deadline).fuse();
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
            let _ = reply.send(Err("node is shutting down".into()));
        }
        self.inner.publish(Event::Stopped);
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial { peer, addrs, reply } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    return;
                }
                let opts = DialOpts::peer_id(peer)
                    .addresses(addrs)
                    .extend_addresses_through_behaviour()
                    .condition(PeerCondition::Always)
                    .build();
                let id = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.dials.insert(id, (peer, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(dial_error(&e)));
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
                        let _ = reply.send(Err(dial_error(&e)));
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
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::CloseConnection { connection } => {
                self.swarm.close_connection(connection);
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn relay_index(&self, peer: &PeerId) -> Option<usize> {
        self.relays.iter().position(|r| r.addr.peer_id() == *peer)
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                tracing::info!(%address, "listening");
                if let Some(i) = self
                    .relays
                    .iter()
                    .position(|r| r.listener == Some(listener_id))
                {
                    let relay = &mut self.relays[i];
                    relay.backoff = MIN_BACKOFF;
                    let peer = relay.addr.peer_id();
                    self.inner.update(|s| {
                        let r = s.relays.entry(peer).or_default();
                        r.reserved = true;
                        r.last_error = None;
                        r.circuit_addr = Some(address.clone());
                    });
                }
                self.inner.update(|s| s.listen_addrs.push(address.clone()));
                self.inner.publish(Event::Listening { addr: address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.inner
                    .update(|s| s.listen_addrs.retain(|a| *a != address));
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(i) = self
                    .relays
                    .iter()
                    .position(|r| r.listener == Some(listener_id))
                {
                    let error = match reason {
                        Ok(()) => "relay connection closed".to_owned(),
                        Err(e) => error_chain(&e),
                    };
                    self.relay_failed(i, error);
                }
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(error = %error_chain(&error), "listener error");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.on_established(peer_id, connection_id, &endpoint, num_established.get());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                let cause = cause.map(|c| error_chain(&c));
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.inner.update(|s| {
                    if let Some(p) = s.peers.get_mut(&peer_id) {
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
                if num_established == 0
                    && let Some(i) = self.relay_index(&peer_id)
                    && self.relays[i].awaiting_identify
                {
                    // Closed before identify: the relay's gate turned us away.
                    let cause = cause.unwrap_or_else(|| "connection closed".into());
                    self.relay_failed(
                        i,
                        format!(
                            "the relay closed the connection right after the handshake ({cause}); \
                             is this peer ({}) in the relay's relay_authorized_keys?",
                            self.inner.peer_id
                        ),
                    );
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                let msg = dial_error(&error);
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
                if let Some(peer) = peer_id
                    && let Some(i) = self.relay_index(&peer)
                    && !self.swarm.is_connected(&peer)
                    && self.relays[i].awaiting_identify
                {
                    self.relay_failed(i, msg);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error,
                send_back_addr,
                ..
            } => {
                let msg = error_chain(&error);
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
        let upgraded = path == Path::Direct
            && self.inner.snapshot(|s| {
                s.peers
                    .get(&peer)
                    .is_some_and(|p| p.connections.iter().any(|c| c.path == Path::Relayed))
            });
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
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
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
                if let Some(i) = self.relay_index(&peer_id)
                    && self.relays[i].awaiting_identify
                {
                    // The relay is a bootstrap node of the DHT.
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, self.relays[i].addr.multiaddr().clone());
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                    self.listen_on_relay(i);
                }
            }
            BehaviourEvent::Relay(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            }) => {
                if !renewal {
                    tracing::info!(relay = %relay_peer_id, "reservation accepted");
                }
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
            BehaviourEvent::Dcutr(e) => match e.result {
                Ok(_) => tracing::info!(peer = %e.remote_peer_id, "hole punch succeeded"),
                Err(err) => {
                    tracing::debug!(peer = %e.remote_peer_id, error = %err, "hole punch failed")
                }
            },
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Ok(rtt),
            }) => {
                self.inner.update(|s| {
                    if let Some(p) = s.peers.get_mut(&peer) {
                        p.rtt = Some(rtt);
                        p.rtt_connection = Some(connection);
                    }
                });
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let msg = inner.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        source = inner.source();
    }
    s
}

fn dial_error(e: &DialError) -> String {
    match e {
        DialError::Transport(errors) => {
            let parts: Vec<String> = errors
                .iter()
                .map(|(addr, err)| format!("{addr}: {}", error_chain(err)))
                .collect();
            format!("could not connect: {}", parts.join("; "))
        }
        other => error_chain(other),
    }
}
