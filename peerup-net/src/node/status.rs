//! The snapshot of a node that `peerup status` shows: [`Status`] and the
//! state of each relay, peer, connection and proxied connection in it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use peerup_core::wire::ConnectionPath;

use super::invite;

/// A relay's reservation state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayState {
    /// Whether a reservation is held.
    pub reserved: bool,
    /// Our circuit address through it.
    pub circuit_addr: Option<Multiaddr>,
    /// The last error, when not reserved.
    pub last_error: Option<String>,
    /// Renewals so far.
    pub renewals: u64,
}

/// One connection to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Its id.
    pub id: ConnectionId,
    /// Direct or relayed.
    pub path: ConnectionPath,
    /// The remote address.
    pub remote: Multiaddr,
    /// Whether we dialed it.
    pub outbound: bool,
}

/// A connected peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerState {
    /// Its connections.
    pub connections: Vec<ConnInfo>,
    /// The last libp2p ping RTT.
    pub rtt: Option<Duration>,
    /// The connection that RTT was measured on.
    pub rtt_connection: Option<ConnectionId>,
    /// Its identify agent version.
    pub agent: Option<String>,
}

impl PeerState {
    /// Direct if any connection is direct.
    pub fn path(&self) -> Option<ConnectionPath> {
        if self
            .connections
            .iter()
            .any(|c| c.path == ConnectionPath::Direct)
        {
            Some(ConnectionPath::Direct)
        } else {
            self.connections.first().map(|c| c.path)
        }
    }
}

/// A proxied connection in progress.
#[derive(Debug, Clone)]
pub struct ProxyState {
    /// The remote peer.
    pub peer: PeerId,
    /// The service.
    pub service: String,
    /// Whether we serve it (inbound) or use it (outbound).
    pub inbound: bool,
    /// The path its stream uses.
    pub path: ConnectionPath,
    /// Byte counters.
    pub counters: Arc<crate::splice::Counters>,
}

/// A snapshot of the node for `peerup status`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Our listen addresses (circuit addresses included).
    pub listen_addrs: Vec<Multiaddr>,
    /// Reservations per relay.
    pub relays: BTreeMap<PeerId, RelayState>,
    /// Connected peers.
    pub peers: BTreeMap<PeerId, PeerState>,
    /// Exposed services: name -> local address.
    pub services: BTreeMap<String, String>,
    /// Proxied connections in progress, by id.
    pub proxies: BTreeMap<u64, ProxyState>,
    /// The open invite, if any.
    pub invite: Option<invite::InviteStatus>,
    /// Authorized peers found on the LAN (mDNS), with their addresses.
    pub lan: BTreeMap<PeerId, Vec<Multiaddr>>,
}
