//! Connection limits for nodes and relays facing the internet.
//!
//! Three layers, cheapest first:
//! 1. **per address, before the handshake**: a direct inbound connection
//!    from an address (an IPv6 /64) that already has
//!    [`ConnectionLimits::max_pending_per_ip`] connections in their
//!    handshake is closed at once, before any cryptography
//!    ([`NetworkBehaviour::handle_pending_inbound_connection`] runs when
//!    the socket is accepted).
//! 2. **pending in total**: at most [`ConnectionLimits::max_pending`]
//!    direct connections in their handshake, per transport (a QUIC
//!    Initial's source address can be forged, so a spoofed QUIC flood
//!    cannot take TCP's places); the handshake itself has a short deadline
//!    (`TransportOptions::inbound_upgrade_timeout`), so a connection that
//!    never finishes gives its place back within seconds. Relayed
//!    connections count in neither: they all come from the relay's
//!    address, the relay bounds them per peer, and a stranger filling a
//!    shared count would refuse the circuits of authorized peers.
//! 3. **established**: at most [`ConnectionLimits::max_established_incoming`]
//!    inbound connections and [`ConnectionLimits::max_established_per_peer`]
//!    per peer. Unauthorized peers never count long: the gate closes them
//!    right after the handshake.
//!
//! [`ConnectionLimits::fit_to_descriptors`] shrinks the numbers to what the
//! process's descriptor limit can hold, so a flood runs into these limits
//! and not into `EMFILE` (which would also starve the local services the
//! daemon proxies to).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{PeerId, connection_limits};

use crate::streams::path_of;

/// The numbers, as configured (`network.limits` in `peerup.yaml`,
/// `resources` in `relay-server.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Whether any limit applies (`network.resource_limits_enabled`).
    pub enabled: bool,
    /// Inbound connections in their handshake at once.
    pub max_pending: u32,
    /// Inbound connections in their handshake at once from one IP address.
    pub max_pending_per_ip: u32,
    /// Established inbound connections.
    pub max_established_incoming: u32,
    /// Established connections (either direction) to one peer.
    pub max_established_per_peer: u32,
}

impl ConnectionLimits {
    /// A home daemon's defaults: a handful of machines, a few connections
    /// each (direct, relayed, hole-punch races).
    pub const NODE: ConnectionLimits = ConnectionLimits {
        enabled: true,
        max_pending: 64,
        max_pending_per_ip: 8,
        max_established_incoming: 256,
        max_established_per_peer: 8,
    };

    /// A relay's defaults: every peer of the network connects inbound.
    pub const RELAY: ConnectionLimits = ConnectionLimits {
        enabled: true,
        max_pending: 256,
        max_pending_per_ip: 16,
        max_established_incoming: 1024,
        max_established_per_peer: 8,
    };

    /// No limits at all (`resource_limits_enabled: false`; for labs).
    pub const OFF: ConnectionLimits = ConnectionLimits {
        enabled: false,
        max_pending: u32::MAX,
        max_pending_per_ip: u32::MAX,
        max_established_incoming: u32::MAX,
        max_established_per_peer: u32::MAX,
    };

    /// These limits shrunk to fit `descriptors` open files (the process's
    /// `RLIMIT_NOFILE`): a quarter for connections in their handshake and
    /// half for established ones, leaving the rest for the local services'
    /// sockets, files and listeners. Returns `self` unchanged when
    /// disabled.
    pub fn fit_to_descriptors(self, descriptors: u64) -> Self {
        if !self.enabled {
            return self;
        }
        let budget = descriptors.saturating_sub(64);
        let cap = |v: u32, share: u64| -> u32 {
            let most = u32::try_from(budget / share).unwrap_or(u32::MAX).max(1);
            v.min(most)
        };
        ConnectionLimits {
            enabled: true,
            max_pending: cap(self.max_pending, 4),
            max_pending_per_ip: cap(self.max_pending_per_ip, 4),
            max_established_incoming: cap(self.max_established_incoming, 2),
            max_established_per_peer: self.max_established_per_peer,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::NODE
    }
}

/// Connections refused by a limit, for logs, `status` and `/metrics`.
#[derive(Debug, Default)]
pub struct LimitStats {
    /// Refused in their handshake: too many from one IP address.
    pub refused_per_ip: AtomicU64,
    /// Refused by a libp2p count limit (pending, established, per peer).
    pub refused_count: AtomicU64,
}

impl LimitStats {
    /// Counts a refused inbound connection by the error that refused it;
    /// returns whether it was a limit (and not, say, the gate).
    pub fn record(&self, cause: &ConnectionDenied) -> bool {
        if cause.downcast_ref::<TooManyFromIp>().is_some() {
            self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
            true
        } else if cause
            .downcast_ref::<connection_limits::Exceeded>()
            .is_some()
        {
            self.refused_count.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Every refusal so far.
    pub fn total(&self) -> u64 {
        self.refused_per_ip.load(Ordering::Relaxed) + self.refused_count.load(Ordering::Relaxed)
    }
}

/// Why a connection was refused before its handshake.
#[derive(Debug, thiserror::Error)]
#[error("too many connections in their handshake from {ip} (limit {limit})")]
pub struct TooManyFromIp {
    /// The address.
    pub ip: IpAddr,
    /// The limit.
    pub limit: u32,
}

/// The limits as one behaviour: put it first in a composed behaviour.
#[derive(libp2p::swarm::NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude", to_swarm = "Infallible")]
pub struct Limits {
    pending: Toggle<PendingLimits>,
    counts: Toggle<connection_limits::Behaviour>,
}

impl Limits {
    /// The behaviour for `limits`.
    pub fn new(limits: ConnectionLimits) -> Self {
        if !limits.enabled {
            return Limits {
                pending: None.into(),
                counts: None.into(),
            };
        }
        // No total pending limit here: libp2p's counts relayed circuits
        // too, and a stranger filling it would refuse the circuits of
        // authorized peers. `PendingLimits` bounds direct connections only.
        let counts = connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(Some(limits.max_established_incoming))
            .with_max_established_per_peer(Some(limits.max_established_per_peer));
        Limits {
            pending: Some(PendingLimits::new(
                limits.max_pending,
                limits.max_pending_per_ip,
            ))
            .into(),
            counts: Some(connection_limits::Behaviour::new(counts)).into(),
        }
    }
}

/// How a direct inbound connection arrived: TCP needs a completed
/// three-way handshake from its source address; a QUIC Initial can carry
/// a forged one, so QUIC connections have budgets of their own and a
/// spoofed flood cannot take TCP's places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Tcp,
    Quic,
}

/// The address a connection counts against: the IPv4 address, or the
/// IPv6 /64 (one host commonly holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Source(Kind, IpAddr);

/// The source of a direct (not relayed) connection.
fn direct_source(local: &Multiaddr, remote: &Multiaddr) -> Option<Source> {
    if path_of(local) == peerup_core::wire::ConnectionPath::Relayed
        || path_of(remote) == peerup_core::wire::ConnectionPath::Relayed
    {
        return None;
    }
    let kind = if remote
        .iter()
        .any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic))
    {
        Kind::Quic
    } else {
        Kind::Tcp
    };
    remote.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(Source(kind, IpAddr::V4(ip))),
        Protocol::Ip6(ip) => {
            let prefix = u128::from(ip) & !((1u128 << 64) - 1);
            Some(Source(kind, IpAddr::V6(prefix.into())))
        }
        _ => None,
    })
}

/// Direct inbound connections in their handshake: at most `per_ip` from
/// one address (an IPv6 /64) and `total` in all, per transport. Relayed
/// connections are not counted: they all come from the relay's address,
/// the relay bounds them per peer, and only authorized peers hold
/// reservations on it.
pub struct PendingLimits {
    total: u32,
    per_ip: u32,
    pending: HashMap<ConnectionId, Source>,
    per_source: HashMap<Source, u32>,
    per_kind: HashMap<Kind, u32>,
}

impl PendingLimits {
    /// At most `per_ip` connections in their handshake per IP address,
    /// and `total` in all, per transport.
    pub fn new(total: u32, per_ip: u32) -> Self {
        PendingLimits {
            total: total.max(1),
            per_ip: per_ip.max(1),
            pending: HashMap::new(),
            per_source: HashMap::new(),
            per_kind: HashMap::new(),
        }
    }

    fn release(&mut self, connection: ConnectionId) {
        let Some(source) = self.pending.remove(&connection) else {
            return;
        };
        if let Some(n) = self.per_source.get_mut(&source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
        if let Some(n) = self.per_kind.get_mut(&source.0) {
            *n = n.saturating_sub(1);
        }
    }

    /// Direct connections in their handshake from `ip` (its /64 for
    /// IPv6) over TCP now.
    pub fn pending_from(&self, ip: &IpAddr) -> u32 {
        let key = match ip {
            IpAddr::V4(_) => *ip,
            IpAddr::V6(v6) => IpAddr::V6((u128::from(*v6) & !((1u128 << 64) - 1)).into()),
        };
        self.per_source
            .get(&Source(Kind::Tcp, key))
            .copied()
            .unwrap_or(0)
    }
}

impl NetworkBehaviour for PendingLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(source) = direct_source(local_addr, remote_addr) else {
            return Ok(());
        };
        let from_source = self.per_source.get(&source).copied().unwrap_or(0);
        if from_source >= self.per_ip {
            tracing::debug!(ip = %source.1, limit = self.per_ip, "refusing a connection: too many in their handshake from this address");
            return Err(ConnectionDenied::new(TooManyFromIp {
                ip: source.1,
                limit: self.per_ip,
            }));
        }
        let of_kind = self.per_kind.get(&source.0).copied().unwrap_or(0);
        if of_kind >= self.total {
            tracing::debug!(
                limit = self.total,
                "refusing a connection: too many in their handshake"
            );
            return Err(ConnectionDenied::new(TooManyPending { limit: self.total }));
        }
        *self.per_source.entry(source).or_insert(0) += 1;
        *self.per_kind.entry(source.0).or_insert(0) += 1;
        self.pending.insert(connection, source);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.release(connection);
        Ok(dummy::ConnectionHandler)
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
        match event {
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release(connection_id)
            }
            FromSwarm::ConnectionEstablished(e) => self.release(e.connection_id),
            _ => {}
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

/// Why a connection was refused before its handshake: too many in their
/// handshake in all.
#[derive(Debug, thiserror::Error)]
#[error("too many connections in their handshake (limit {limit})")]
pub struct TooManyPending {
    /// The limit.
    pub limit: u32,
}

/// Shared counters, cheap to clone.
pub type SharedLimitStats = Arc<LimitStats>;

/// One of a bounded count's places (a forwarder's connections, an HTTP
/// server's clients), given back when dropped, however its holder ends.
pub(crate) struct Slot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    /// Takes a place in `count`.
    pub(crate) fn take(count: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Slot(count.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_the_descriptor_limit() {
        let l = ConnectionLimits::RELAY.fit_to_descriptors(1024);
        assert_eq!(l.max_pending, 240);
        assert_eq!(l.max_pending_per_ip, 16);
        assert_eq!(l.max_established_incoming, 480);
        let roomy = ConnectionLimits::RELAY.fit_to_descriptors(1 << 20);
        assert_eq!(roomy, ConnectionLimits::RELAY);
        assert_eq!(
            ConnectionLimits::OFF.fit_to_descriptors(10),
            ConnectionLimits::OFF
        );
        // Never zero, even with next to no descriptors.
        assert_eq!(ConnectionLimits::NODE.fit_to_descriptors(16).max_pending, 1);
    }

    #[test]
    fn only_direct_connections_count_per_ip() {
        let mut b = PendingLimits::new(64, 2);
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let remote: Multiaddr = "/ip4/127.0.0.2/tcp/9".parse().unwrap();
        let relayed: Multiaddr = "/ip4/127.0.0.2/tcp/9/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL/p2p-circuit".parse().unwrap();
        let a = ConnectionId::new_unchecked(1);
        let b2 = ConnectionId::new_unchecked(2);
        let c = ConnectionId::new_unchecked(3);
        assert!(
            b.handle_pending_inbound_connection(a, &local, &remote)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(b2, &local, &remote)
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(c, &local, &remote)
                .is_err()
        );
        // Circuits all come from the relay's address: not counted.
        for n in 10..20 {
            let id = ConnectionId::new_unchecked(n);
            assert!(
                b.handle_pending_inbound_connection(id, &relayed, &remote)
                    .is_ok()
            );
        }
        // A finished handshake gives the place back.
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(b.pending_from(&ip), 2);
        b.release(a);
        assert_eq!(b.pending_from(&ip), 1);
        assert!(
            b.handle_pending_inbound_connection(c, &local, &remote)
                .is_ok()
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_quic_apart_from_tcp() {
        let mut b = PendingLimits::new(3, 2);
        let local: Multiaddr = "/ip6/::1/tcp/1".parse().unwrap();
        let id = ConnectionId::new_unchecked;
        let v6 = |last: u16| -> Multiaddr {
            format!("/ip6/2001:db8:0:1::{last:x}/tcp/9")
                .parse()
                .unwrap()
        };
        assert!(
            b.handle_pending_inbound_connection(id(1), &local, &v6(1))
                .is_ok()
        );
        assert!(
            b.handle_pending_inbound_connection(id(2), &local, &v6(2))
                .is_ok()
        );
        // A third address of the same /64 is the same source.
        assert!(
            b.handle_pending_inbound_connection(id(3), &local, &v6(3))
                .is_err()
        );
        let other: Multiaddr = "/ip6/2001:db8:0:2::1/tcp/9".parse().unwrap();
        assert!(
            b.handle_pending_inbound_connection(id(4), &local, &other)
                .is_ok()
        );
        // The total (3) is reached for TCP...
        let more: Multiaddr = "/ip4/192.0.2.1/tcp/9".parse().unwrap();
        assert!(
            b.handle_pending_inbound_connection(id(5), &local, &more)
                .is_err()
        );
        // ...but QUIC, whose source addresses can be forged, counts apart.
        let quic: Multiaddr = "/ip4/192.0.2.1/udp/9/quic-v1".parse().unwrap();
        let qlocal: Multiaddr = "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap();
        assert!(
            b.handle_pending_inbound_connection(id(6), &qlocal, &quic)
                .is_ok()
        );
    }
}
