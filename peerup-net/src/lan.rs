//! LAN discovery: an mDNS discoverer (runtime-specific, from
//! [`Runtime::lan_discovery`])
//! behind a runtime-free behaviour that records what it hears in the
//! core's [`lan::Table`] and hands the swarm only the addresses of peers
//! the policy authorizes.
//!
//! libp2p-mdns is generic over a runtime `Provider` (tokio only in 0.49),
//! so this crate cannot name it: a runtime wraps it in a [`Discoverer`]
//! (the mDNS behaviour's handler is `dummy`, so the two calls below are
//! all of it that matters). [`Lan`] then:
//! - forwards swarm events to the discoverer (its listen addresses are
//!   what it announces), except relay circuit addresses: the LAN learns
//!   no relay from us;
//! - records `Discovered`/`Expired` in the table, and drops the
//!   discoverer's own `NewExternalAddrOfPeer` events, which would hand
//!   every stranger's address to every behaviour;
//! - answers `handle_pending_outbound_connection` with the table's
//!   addresses of an authorized peer, so every dial to it (by peer ID)
//!   also tries its LAN addresses;
//! - polls the discoverer (which sends its first query when first polled)
//!   only once the core's [`FirstQuery`] says so: after the node's listen
//!   addresses are known, so that its answer to its own query tells the
//!   peers already on the LAN where it is.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant as StdInstant;

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use peerup_core::authz::Policy;
use peerup_core::lan::{self, Discovered, FirstQuery};

use crate::runtime::{BoxFuture, Runtime};

/// What a discoverer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanEvent {
    /// Records heard for the first time.
    Discovered(Vec<(PeerId, Multiaddr)>),
    /// Records whose TTL passed unrefreshed.
    Expired(Vec<(PeerId, Multiaddr)>),
}

/// An mDNS discoverer as a runtime provides it (object-safe).
pub trait Discoverer: Send + 'static {
    /// A swarm event (the listen addresses to announce come from these).
    fn on_swarm_event(&mut self, event: FromSwarm<'_>);
    /// The next discovery event; registers `cx` when there is none.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<LanEvent>;
}

/// The LAN records a node keeps, shared by its behaviour and its handles.
/// Whoever holds both locks takes the policy's first, then the table's.
pub type SharedTable = Arc<Mutex<lan::Table>>;

/// The node's LAN discovery behaviour (inert without a discoverer).
pub struct Lan {
    discoverer: Option<Box<dyn Discoverer>>,
    table: SharedTable,
    policy: Arc<RwLock<Policy>>,
    rt: Arc<dyn Runtime>,
    /// Until the discoverer starts: when it does, and the timer set for it.
    waiting: Option<Waiting>,
}

/// A discoverer not started yet.
struct Waiting {
    origin: StdInstant,
    first_query: FirstQuery,
    /// The timer and the instant it was set for.
    timer: Option<(peerup_core::time::Instant, BoxFuture<()>)>,
    /// Woken when a listen address moves the start earlier.
    waker: Option<Waker>,
}

impl Waiting {
    fn now(&self, rt: &Arc<dyn Runtime>) -> peerup_core::time::Instant {
        peerup_core::time::Instant::from_duration(rt.now().saturating_duration_since(self.origin))
    }

    /// Ready when the discoverer may start.
    fn poll(&mut self, rt: &Arc<dyn Runtime>, cx: &mut Context<'_>) -> Poll<()> {
        let due = self.first_query.due_at();
        if self.now(rt) >= due {
            return Poll::Ready(());
        }
        if self.timer.as_ref().is_none_or(|(at, _)| *at != due) {
            let deadline = self.origin + due.as_duration();
            self.timer = Some((due, rt.sleep_until(deadline)));
        }
        self.waker = Some(cx.waker().clone());
        match self.timer.as_mut() {
            Some((_, timer)) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl Lan {
    /// Records what `discoverer` hears in `table`; `policy` decides which
    /// peers' addresses are used.
    pub fn new(
        discoverer: Option<Box<dyn Discoverer>>,
        table: SharedTable,
        policy: Arc<RwLock<Policy>>,
        rt: Arc<dyn Runtime>,
    ) -> Self {
        let waiting = discoverer.as_ref().map(|_| {
            let origin = rt.now();
            Waiting {
                origin,
                first_query: FirstQuery::new(peerup_core::time::Instant::ZERO),
                timer: None,
                waker: None,
            }
        });
        Lan {
            discoverer,
            table,
            policy,
            rt,
            waiting,
        }
    }

    fn on_lan_event(&mut self, event: LanEvent) {
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        let now = self.rt.wall_clock();
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            LanEvent::Discovered(records) => {
                for (peer, addr) in records {
                    let authorized = policy.status(&peer, now)
                        == peerup_core::authorized_keys::Status::Authorized;
                    match table.handle_discovered(peer, addr.clone(), &policy, now) {
                        Discovered::Added if authorized => {
                            tracing::info!(%peer, %addr, "authorized peer on the LAN");
                        }
                        Discovered::Added => {
                            tracing::debug!(%peer, %addr, "peer on the LAN is not authorized: not used");
                        }
                        Discovered::Known => {}
                        Discovered::Ignored(why) => {
                            tracing::debug!(%peer, %addr, %why, "LAN record ignored");
                        }
                    }
                }
            }
            LanEvent::Expired(records) => {
                for (peer, addr) in records {
                    if table.handle_expired(&peer, &addr) {
                        tracing::debug!(%peer, %addr, "LAN record expired");
                    }
                }
            }
        }
    }
}

fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

impl NetworkBehaviour for Lan {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let Some(peer) = peer else {
            return Ok(Vec::new());
        };
        let policy = self.policy.read().unwrap_or_else(|e| e.into_inner());
        Ok(self.table.lock().unwrap_or_else(|e| e.into_inner()).usable(
            &peer,
            &policy,
            self.rt.wall_clock(),
        ))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        let Some(d) = self.discoverer.as_mut() else {
            return;
        };
        match event {
            FromSwarm::NewListenAddr(e) if is_circuit(e.addr) => {}
            FromSwarm::ExpiredListenAddr(e) if is_circuit(e.addr) => {}
            other => {
                if let (FromSwarm::NewListenAddr(_), Some(w)) = (&other, self.waiting.as_mut()) {
                    let now = w.now(&self.rt);
                    w.first_query.on_listen_addr(now);
                    if let Some(waker) = w.waker.take() {
                        waker.wake();
                    }
                }
                d.on_swarm_event(other);
            }
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

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        if let Some(w) = self.waiting.as_mut() {
            if w.poll(&self.rt, cx).is_pending() {
                return Poll::Pending;
            }
            self.waiting = None;
        }
        loop {
            let Some(d) = self.discoverer.as_mut() else {
                return Poll::Pending;
            };
            match d.poll(cx) {
                Poll::Ready(event) => self.on_lan_event(event),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
