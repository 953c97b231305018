//! Connection gating from the core's authorization policy, for nodes and
//! for the relay.
//!
//! Inbound connections are decided when they are established, after the
//! TLS or Noise handshake proved the peer's identity and before any
//! stream: an unauthorized peer's connection is denied and closed without
//! a byte of any peerup protocol. Every protocol handler checks again per stream.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use either::Either;
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use peerup_core::authz::{Decision, DenyReason, Direction, Policy};
use peerup_core::pairing::enroll::{Admission, Enrollment};

use crate::runtime::Runtime;
use crate::streams::inbound_path;

/// The error a denied connection carries.
#[derive(Debug, thiserror::Error)]
#[error("peer {peer} is not authorized: {reason}")]
pub struct NotAuthorized {
    /// The peer.
    pub peer: PeerId,
    /// Why.
    pub reason: DenyReason,
}

/// Connections let in only to pair, at most, at once: a stranger holds no
/// more than that many of the established-connection places.
pub const MAX_PAIRING_CONNECTIONS: usize = 64;

/// Connections one peer may hold let in only to pair: pairing takes one.
pub const MAX_PAIRING_CONNECTIONS_PER_PEER: usize = 2;

/// State the gate shares with the node.
#[derive(Default)]
pub struct GateShared {
    /// Inbound connections let in only to pair, and their peers.
    pub pairing_only: Mutex<HashMap<ConnectionId, PeerId>>,
    /// Peers the open invite refuses (too many failed attempts): not let
    /// in to pair again until the invite ends.
    pub pairing_blocked: Mutex<HashSet<PeerId>>,
    /// The relay's strangers on probation while pairing codes are open
    /// (`None` on a node, whose invite window the limits above bound).
    pub probation: Option<Probation>,
}

/// The relay's probation ([`Enrollment`]) with the origin of its virtual
/// time.
pub struct Probation {
    machine: Mutex<Enrollment>,
    origin: std::time::Instant,
}

impl Probation {
    /// No stranger on probation; time counts from `origin`.
    pub fn new(origin: std::time::Instant) -> Self {
        Probation {
            machine: Mutex::new(Enrollment::new()),
            origin,
        }
    }

    /// `at` as the machine's instant.
    pub fn instant(&self, at: std::time::Instant) -> peerup_core::time::Instant {
        peerup_core::time::Instant::from_duration(at.saturating_duration_since(self.origin))
    }

    /// The machine's instant as a runtime instant.
    pub fn to_runtime(&self, at: peerup_core::time::Instant) -> std::time::Instant {
        self.origin + at.as_duration()
    }

    /// Runs `f` on the machine.
    pub fn with<T>(&self, f: impl FnOnce(&mut Enrollment) -> T) -> T {
        f(&mut self.machine.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl GateShared {
    /// Whether `connection` was let in only to pair.
    pub fn is_pairing_only(&self, connection: ConnectionId) -> bool {
        self.pairing_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&connection)
    }

    /// The connections let in only to pair.
    pub fn pairing_connections(&self) -> Vec<ConnectionId> {
        self.pairing_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }
}

/// The gating behaviour.
pub struct Gate {
    policy: Arc<RwLock<Policy>>,
    shared: Arc<GateShared>,
    /// Refuse connections we dial to peers that are not authorized (the
    /// relay has no reason to dial strangers; its DHT could be led to).
    outbound_gated: bool,
    /// The wall clock (`expires=`).
    rt: Arc<dyn Runtime>,
}

impl Gate {
    /// A gate deciding with `policy` at `rt`'s wall clock; connections we
    /// dial are allowed.
    pub fn new(policy: Arc<RwLock<Policy>>, shared: Arc<GateShared>, rt: Arc<dyn Runtime>) -> Self {
        Gate {
            policy,
            shared,
            outbound_gated: false,
            rt,
        }
    }

    /// Also refuses connections dialed to peers that are not authorized.
    pub fn with_outbound_gated(mut self) -> Self {
        self.outbound_gated = true;
        self
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let path = inbound_path(local_addr, remote_addr);
        // The policy stays read-locked until a pairing-only connection is
        // recorded: closing the window takes the write lock, so a
        // connection is either recorded before the window closes (and
        // closed with it) or decided after (and refused).
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        let decision =
            policy.decide_connection(&peer, Direction::Inbound, path, self.rt.wall_clock());
        match decision {
            Decision::Allow => Ok(dummy::ConnectionHandler),
            Decision::AllowUngated => {
                tracing::warn!(%peer, "connection gating is disabled: accepting an unauthenticated peer");
                Ok(dummy::ConnectionHandler)
            }
            Decision::AllowPairingOnly => {
                let deny = |why: &str| {
                    tracing::warn!(%peer, %remote_addr, "DENIED inbound connection: {why}");
                    Err(ConnectionDenied::new(NotAuthorized {
                        peer,
                        reason: DenyReason::NotListed,
                    }))
                };
                if self
                    .shared
                    .pairing_blocked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&peer)
                {
                    return deny("refused by the open invite after too many failed attempts");
                }
                let mut pairing = self
                    .shared
                    .pairing_only
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if pairing.len() >= MAX_PAIRING_CONNECTIONS {
                    return deny("too many connections let in to pair");
                }
                if pairing.values().filter(|p| **p == peer).count()
                    >= MAX_PAIRING_CONNECTIONS_PER_PEER
                {
                    return deny("too many connections from this peer let in to pair");
                }
                if let Some(probation) = &self.shared.probation {
                    // A peer whose probation ended while a connection of
                    // its is still closing waits for that close: admitting
                    // it now would let the late close end the new
                    // probation, leaving a pairing connection untimed.
                    if pairing.values().any(|p| *p == peer)
                        && !probation.with(|m| m.on_probation(&peer))
                    {
                        return deny("a previous pairing connection of this peer is still closing");
                    }
                    let now = probation.instant(self.rt.now());
                    // The policy lets strangers in only while the relay
                    // is enrolling (its pairing window is open then).
                    match probation.with(|m| m.handle_connection(now, peer, true)) {
                        Admission::Probation { .. } => {}
                        Admission::Refused(why) => return deny(&why.to_string()),
                    }
                }
                tracing::info!(%peer, "accepting a connection for pairing only");
                pairing.insert(connection, peer);
                drop(pairing);
                drop(policy);
                Ok(dummy::ConnectionHandler)
            }
            Decision::Deny(reason) => {
                tracing::warn!(%peer, %remote_addr, %reason, "DENIED inbound connection");
                Err(ConnectionDenied::new(NotAuthorized { peer, reason }))
            }
        }
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if !self.outbound_gated {
            return Ok(dummy::ConnectionHandler);
        }
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        // Decided as if the peer had dialed us: listed, valid, unexpired.
        match policy.decide_connection(
            &peer,
            Direction::Inbound,
            crate::streams::path_of(addr),
            self.rt.wall_clock(),
        ) {
            Decision::Allow | Decision::AllowUngated => Ok(dummy::ConnectionHandler),
            Decision::AllowPairingOnly | Decision::Deny(_) => {
                tracing::debug!(%peer, %addr, "not keeping a connection dialed to a peer that is not authorized");
                Err(ConnectionDenied::new(NotAuthorized {
                    peer,
                    reason: DenyReason::NotListed,
                }))
            }
        }
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        // A connection another behaviour denied after the gate let it in
        // ends with a listen failure, not a close.
        let connection = match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => connection_id,
            FromSwarm::ListenFailure(f) => f.connection_id,
            _ => return,
        };
        let stranger = self
            .shared
            .pairing_only
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&connection);
        if let (Some(peer), Some(probation)) = (stranger, &self.shared.probation) {
            probation.with(|m| m.handle_closed(&peer));
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Wraps a behaviour so that connections let in only to pair never reach
/// it: such a connection gets an inert handler (no protocol of the inner
/// behaviour is offered or run on it) and the inner behaviour never hears
/// of it. The node wraps Kademlia, identify, AutoNAT, DCUtR, ping and the
/// relay client this way, so a stranger admitted for `peerup invite` is
/// served the invite protocol and nothing else: no DHT lookups (they would
/// hand out authorized peers' addresses), no identify (it lists the
/// services), no hole punching.
///
/// Must come after [`Gate`] in the composed behaviour: the gate records
/// the pairing-only connections in [`GateShared`] as it admits them.
pub struct PairingFilter<B> {
    inner: B,
    shared: Arc<GateShared>,
    /// Connections hidden from `inner`.
    hidden: HashSet<ConnectionId>,
    /// Connections `inner` knows, per peer.
    visible: HashMap<PeerId, Vec<ConnectionId>>,
}

impl<B> PairingFilter<B> {
    /// Wraps `inner`, hiding the connections `shared` marks as pairing-only.
    pub fn new(inner: B, shared: Arc<GateShared>) -> Self {
        PairingFilter {
            inner,
            shared,
            hidden: HashSet::new(),
            visible: HashMap::new(),
        }
    }

    /// The wrapped behaviour.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The wrapped behaviour.
    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B> std::ops::Deref for PairingFilter<B> {
    type Target = B;
    fn deref(&self) -> &B {
        &self.inner
    }
}

impl<B> std::ops::DerefMut for PairingFilter<B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for PairingFilter<B> {
    type ConnectionHandler = Either<THandler<B>, dummy::ConnectionHandler>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(connection, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if self.shared.is_pairing_only(connection) {
            self.hidden.insert(connection);
            return Ok(Either::Right(dummy::ConnectionHandler));
        }
        self.inner
            .handle_established_inbound_connection(connection, peer, local_addr, remote_addr)
            .map(Either::Left)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(connection, peer, addresses, effective_role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_outbound_connection(connection, peer, addr, role_override, port_use)
            .map(Either::Left)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(mut e) => {
                if self.hidden.contains(&e.connection_id) {
                    return;
                }
                let known = self.visible.entry(e.peer_id).or_default();
                e.other_established = known.len();
                known.push(e.connection_id);
                self.inner
                    .on_swarm_event(FromSwarm::ConnectionEstablished(e));
            }
            FromSwarm::ConnectionClosed(mut e) => {
                if self.hidden.remove(&e.connection_id) {
                    return;
                }
                let remaining = match self.visible.get_mut(&e.peer_id) {
                    Some(known) => {
                        known.retain(|c| *c != e.connection_id);
                        known.len()
                    }
                    None => 0,
                };
                if remaining == 0 {
                    self.visible.remove(&e.peer_id);
                }
                e.remaining_established = remaining;
                self.inner.on_swarm_event(FromSwarm::ConnectionClosed(e));
            }
            FromSwarm::AddressChange(e) if self.hidden.contains(&e.connection_id) => {}
            FromSwarm::ListenFailure(e) => {
                // The inner behaviour saw the pending connection; the
                // failure is its to hear about too.
                self.hidden.remove(&e.connection_id);
                self.inner.on_swarm_event(FromSwarm::ListenFailure(e));
            }
            other => self.inner.on_swarm_event(other),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {
            Either::Left(e) => self.inner.on_connection_handler_event(peer, connection, e),
            Either::Right(never) => match never {},
        }
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        loop {
            let event = match self.inner.poll(cx) {
                Poll::Ready(e) => e,
                Poll::Pending => return Poll::Pending,
            };
            // An event for a handler: only ever to a connection the inner
            // behaviour knows (the swarm would hand an `Any` to a hidden
            // connection's inert handler otherwise).
            if let ToSwarm::NotifyHandler {
                peer_id,
                handler,
                event,
            } = event
            {
                let target = match handler {
                    NotifyHandler::One(c) if !self.hidden.contains(&c) => Some(c),
                    NotifyHandler::One(_) => None,
                    NotifyHandler::Any => self
                        .visible
                        .get(&peer_id)
                        .and_then(|known| known.first().copied()),
                };
                match target {
                    Some(c) => {
                        return Poll::Ready(ToSwarm::NotifyHandler {
                            peer_id,
                            handler: NotifyHandler::One(c),
                            event: Either::Left(event),
                        });
                    }
                    None => {
                        tracing::trace!(peer = %peer_id, "dropping an event for a pairing-only connection");
                        continue;
                    }
                }
            }
            return Poll::Ready(event.map_in(Either::Left));
        }
    }
}
