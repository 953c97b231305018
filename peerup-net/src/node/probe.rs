//! Diagnostics for `peerup doctor` (issue 19): one connection to one
//! address, and one reservation on one relay, each reported on its own.
//!
//! [`Node::probe`] dials exactly the address given (a new connection even
//! when one to the peer exists, no other address tried), and reports the
//! time the connection took to establish (transport + security + muxer
//! handshakes), the round trip of libp2p ping's first ping on that
//! connection, and identify's `observed_addr` (what the other side saw
//! this machine come from: the input of `peerup_core::nat`). The
//! connection stays open until [`Node::close_connection`] or idle timeout.
//!
//! [`Node::reserve_on`] asks one relay for a reservation (listening on
//! its circuit address) and reports what it answered.
//!
//! Both are bounded by the caller's `limit`.

use std::time::Duration;

use futures::SinkExt;
use futures::channel::oneshot;
use libp2p::Multiaddr;
use libp2p::swarm::ConnectionId;
use peerup_core::relay_addr::RelayAddr;

use super::Node;
use super::driver::{Command, DialFailure};

/// What one connection to one address showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The connection (close it with [`Node::close_connection`]).
    pub connection: ConnectionId,
    /// From the dial to the established connection (all handshakes).
    pub connect_time: Duration,
    /// libp2p ping's round trip on this connection (`None`: the peer
    /// does not answer ping).
    pub rtt: Option<Duration>,
    /// The address the other side observed this machine at (identify).
    pub observed: Option<Multiaddr>,
    /// The other side's agent (identify).
    pub agent: String,
}

/// Why a probe failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The address does not end in `/p2p/<peer>`.
    #[error("{0}: the address must end with /p2p/<peer-id>")]
    NoPeerId(Multiaddr),
    /// The dial failed (unreachable, refused, handshake failed).
    #[error(transparent)]
    Dial(#[from] DialFailure),
    /// The connection was established and closed by the other side before
    /// identify: its gate turned this machine away (a peerup relay does
    /// so to peers not in its `relay_authorized_keys`).
    #[error(
        "the connection was closed right after the handshake ({cause}): this machine is not authorized there"
    )]
    ClosedAtOnce {
        /// Why it closed, as libp2p says.
        cause: String,
    },
    /// No answer within the limit.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// Why a reservation was not made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReserveError {
    /// The relay refused or the connection failed; the relay client's
    /// words.
    #[error("{0}")]
    Refused(String),
    /// No answer within the limit.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The node stopped.
    #[error("the node has stopped")]
    Stopped,
}

impl Node {
    /// Dials exactly `addr` (ending in `/p2p/<peer>`) on a new
    /// connection and reports it (see the module doc), within `limit`.
    ///
    /// # Errors
    /// [`ProbeError`]: the dial failed, the other side closed at once
    /// (not authorized there), or no answer within `limit`.
    pub async fn probe(&self, addr: Multiaddr, limit: Duration) -> Result<Probe, ProbeError> {
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = addr.iter().last() else {
            return Err(ProbeError::NoPeerId(addr));
        };
        let (tx, rx) = oneshot::channel();
        let sent = async {
            self.inner
                .commands
                .clone()
                .send(Command::Probe {
                    peer,
                    addr,
                    reply: tx,
                })
                .await
                .map_err(|_| ProbeError::Stopped)?;
            rx.await.map_err(|_| ProbeError::Stopped)?
        };
        self.inner
            .rt
            .timeout(limit, sent)
            .await
            .unwrap_or(Err(ProbeError::Timeout(limit)))
    }

    /// Asks `relay` for a reservation, within `limit`; returns the
    /// circuit address it gives. The reservation is kept until the node
    /// stops.
    ///
    /// # Errors
    /// [`ReserveError`]: refused (the relay's words), or no answer within
    /// `limit`.
    pub async fn reserve_on(
        &self,
        relay: &RelayAddr,
        limit: Duration,
    ) -> Result<Multiaddr, ReserveError> {
        let (tx, rx) = oneshot::channel();
        let addr = relay
            .multiaddr()
            .clone()
            .with(libp2p::multiaddr::Protocol::P2pCircuit);
        let sent = async {
            self.inner
                .commands
                .clone()
                .send(Command::Reserve { addr, reply: tx })
                .await
                .map_err(|_| ReserveError::Stopped)?;
            rx.await.map_err(|_| ReserveError::Stopped)?
        };
        self.inner
            .rt
            .timeout(limit, sent)
            .await
            .unwrap_or(Err(ReserveError::Timeout(limit)))
    }
}

/// A probe in flight, in the driver.
pub(crate) struct Pending {
    pub started: std::time::Instant,
    pub connect_time: Option<Duration>,
    pub observed: Option<Option<Multiaddr>>,
    pub agent: String,
    pub rtt: Option<Option<Duration>>,
    pub reply: oneshot::Sender<Result<Probe, ProbeError>>,
}

impl Pending {
    /// The report, once the connection is identified and pinged.
    pub(crate) fn finished(&self, connection: ConnectionId) -> Option<Probe> {
        Some(Probe {
            connection,
            connect_time: self.connect_time?,
            rtt: self.rtt?,
            observed: self.observed.clone()?,
            agent: self.agent.clone(),
        })
    }
}
