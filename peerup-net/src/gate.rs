//! Connection gating from the core's authorization policy, for nodes and
//! for the relay.
//!
//! Inbound connections are decided when they are established, after the
//! TLS or Noise handshake proved the peer's identity and before any
//! stream: an unauthorized peer's connection is denied and closed without
//! a byte of any peerup protocol. Every protocol handler checks again per stream.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use peerup_core::authz::{Decision, DenyReason, Direction, Policy};
use peerup_core::time::UnixTime;

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

/// State the gate shares with the node.
#[derive(Default)]
pub struct GateShared {
    /// Inbound connections let in only to pair.
    pub pairing_only: Mutex<HashSet<ConnectionId>>,
}

/// The gating behaviour.
pub struct Gate {
    policy: Arc<RwLock<Policy>>,
    shared: Arc<GateShared>,
}

impl Gate {
    /// A gate deciding with `policy`.
    pub fn new(policy: Arc<RwLock<Policy>>, shared: Arc<GateShared>) -> Self {
        Gate { policy, shared }
    }
}

fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
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
        let decision = self
            .policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .decide_connection(&peer, Direction::Inbound, path, now());
        match decision {
            Decision::Allow => Ok(dummy::ConnectionHandler),
            Decision::AllowUngated => {
                tracing::warn!(%peer, "connection gating is disabled: accepting an unauthenticated peer");
                Ok(dummy::ConnectionHandler)
            }
            Decision::AllowPairingOnly => {
                tracing::info!(%peer, "accepting a connection for pairing only");
                self.shared
                    .pairing_only
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(connection);
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
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) = event {
            self.shared
                .pairing_only
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&connection_id);
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
