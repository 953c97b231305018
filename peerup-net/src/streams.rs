//! Raw streams for peerup's own protocols (services, ping-pong, invite).
//!
//! The same idea as `libp2p-stream` (a `Control` that opens and accepts
//! negotiated streams outside the swarm task), with what peerup needs on
//! top:
//! - **direct first**: a new outbound stream goes over a direct connection
//!   when the peer has one, so once DCUtR upgrades a relayed connection new
//!   streams leave the relay (libp2p-stream picks a connection at random);
//! - **the path is known**: both ends learn the connection and whether it
//!   is relayed, for `ping` and `status`;
//! - **bounded, not lossy, acceptance**: each protocol has a queue of
//!   [`ACCEPT_QUEUE`] streams (libp2p-stream's has none and drops streams
//!   that arrive while the accept loop is busy, which loses most of a burst
//!   of hundreds of circuits opening at once); a stream that finds the
//!   queue full is dropped and counted;
//! - several outbound negotiations in flight per connection.
//!
//! Streams work on relayed connections: rust-libp2p 0.57 has no "limited
//! connection" restriction, so every peerup protocol is usable over a
//! circuit (WIRE.md §1).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::channel::{mpsc, oneshot};
use futures::{SinkExt, StreamExt};
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, InboundUpgrade, Multiaddr, OutboundUpgrade, UpgradeInfo};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId,
    FromSwarm, NetworkBehaviour, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::protocol;

use crate::gate::GateShared;

/// Streams of one protocol that may wait for the accept loop.
pub const ACCEPT_QUEUE: usize = 4096;
/// Outbound negotiations that may wait per connection.
const OPEN_QUEUE: usize = 32;

/// The path of a connection: relayed when an address contains
/// `/p2p-circuit`.
pub fn path_of(addr: &Multiaddr) -> ConnectionPath {
    if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
        ConnectionPath::Relayed
    } else {
        ConnectionPath::Direct
    }
}

/// The path of an inbound connection, from its local and remote addresses
/// (a relayed one has `/p2p-circuit` in its local address).
pub fn inbound_path(local_addr: &Multiaddr, remote_addr: &Multiaddr) -> ConnectionPath {
    if path_of(local_addr) == ConnectionPath::Relayed
        || path_of(remote_addr) == ConnectionPath::Relayed
    {
        ConnectionPath::Relayed
    } else {
        ConnectionPath::Direct
    }
}

/// An inbound stream, negotiated.
pub struct Inbound {
    /// The remote peer.
    pub peer: PeerId,
    /// The connection it arrived on.
    pub connection: ConnectionId,
    /// Direct or relayed.
    pub path: ConnectionPath,
    /// The stream.
    pub stream: Stream,
}

/// An outbound stream, negotiated.
pub struct Outbound {
    /// The connection it was opened on.
    pub connection: ConnectionId,
    /// Direct or relayed.
    pub path: ConnectionPath,
    /// The stream.
    pub stream: Stream,
}

/// Why a stream could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// No connection to the peer.
    #[error("not connected to peer {0}")]
    NotConnected(PeerId),
    /// The peer does not serve the protocol (an unknown service, or a peer
    /// that does not run peerup).
    #[error("peer does not support {0}")]
    Unsupported(StreamProtocol),
    /// Negotiation timed out.
    #[error("stream negotiation timed out")]
    Timeout,
    /// The connection failed.
    #[error("stream failed: {0}")]
    Io(#[from] io::Error),
}

/// The protocol is already accepted by another [`Incoming`].
#[derive(Debug, thiserror::Error)]
#[error("protocol {0} is already being accepted")]
pub struct AlreadyRegistered(pub StreamProtocol);

struct Conn {
    peer: PeerId,
    path: ConnectionPath,
    order: u64,
    established: bool,
    /// Let in only to pair: serves the invite protocol alone and carries
    /// no stream of ours.
    pairing_only: bool,
    sender: mpsc::Sender<NewStream>,
}

/// Streams of one protocol waiting for their accept loop.
#[derive(Default)]
struct Queue {
    items: VecDeque<Inbound>,
    waker: Option<Waker>,
    /// Which [`Incoming`] owns it: after [`Control::stop_accepting`] the
    /// protocol may be accepted again, and the old `Incoming` must
    /// neither read nor remove the new queue.
    owner: u64,
}

#[derive(Default)]
struct Shared {
    protocols: HashMap<StreamProtocol, Queue>,
    connections: HashMap<ConnectionId, Conn>,
    next_order: u64,
    next_owner: u64,
    dropped: u64,
}

impl Shared {
    fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
        shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn supported(&mut self) -> Vec<StreamProtocol> {
        self.protocols.keys().cloned().collect()
    }

    fn register(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        path: ConnectionPath,
        pairing_only: bool,
    ) -> mpsc::Receiver<NewStream> {
        let (sender, receiver) = mpsc::channel(OPEN_QUEUE);
        self.next_order += 1;
        let order = self.next_order;
        self.connections.insert(
            connection,
            Conn {
                peer,
                path,
                order,
                established: false,
                pairing_only,
                sender,
            },
        );
        receiver
    }

    fn on_inbound(&mut self, inbound: Inbound, protocol: StreamProtocol) {
        match self.protocols.get_mut(&protocol) {
            // A burst of streams (hundreds of circuits opening at once)
            // waits here for the accept loop instead of being dropped.
            Some(q) if q.items.len() < ACCEPT_QUEUE => {
                q.items.push_back(inbound);
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
            }
            Some(_) => {
                self.dropped += 1;
                tracing::warn!(%protocol, "accept queue full; dropping an inbound stream");
            }
            None => tracing::debug!(%protocol, "no acceptor; dropping inbound stream"),
        }
    }

    /// The connection to open a stream on: a direct one if any (the newest),
    /// else the newest relayed one.
    fn pick(
        &self,
        peer: PeerId,
    ) -> Option<(ConnectionId, ConnectionPath, mpsc::Sender<NewStream>)> {
        self.connections
            .iter()
            .filter(|(_, c)| {
                c.peer == peer && c.established && !c.pairing_only && !c.sender.is_closed()
            })
            .max_by_key(|(_, c)| (c.path == ConnectionPath::Direct, c.order))
            .map(|(id, c)| (*id, c.path, c.sender.clone()))
    }
}

/// A handle to open and accept streams; cheap to clone.
#[derive(Clone)]
pub struct Control {
    shared: Arc<Mutex<Shared>>,
}

impl Control {
    /// Opens a stream for `protocol` on the best connection to `peer` (no
    /// dialing: connect first).
    ///
    /// # Errors
    /// [`OpenError`].
    pub async fn open(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Outbound, OpenError> {
        let picked = Shared::lock(&self.shared).pick(peer);
        let (connection, path, mut sender) = picked.ok_or(OpenError::NotConnected(peer))?;
        let (tx, rx) = oneshot::channel();
        sender
            .send(NewStream {
                protocol,
                reply: tx,
            })
            .await
            .map_err(|_| {
                OpenError::Io(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection closed",
                ))
            })?;
        let stream = rx.await.map_err(|_| {
            OpenError::Io(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection closed",
            ))
        })??;
        Ok(Outbound {
            connection,
            path,
            stream,
        })
    }

    /// Opens a stream for `protocol` on one given connection (a probe of
    /// that connection: any answer, "not supported" included, proves it
    /// alive).
    ///
    /// # Errors
    /// [`OpenError`]; `NotConnected` when the connection is not (or no
    /// longer) established.
    pub async fn open_on(
        &self,
        peer: PeerId,
        connection: ConnectionId,
        protocol: StreamProtocol,
    ) -> Result<Outbound, OpenError> {
        let picked = Shared::lock(&self.shared)
            .connections
            .get(&connection)
            .filter(|c| c.established && !c.sender.is_closed())
            .map(|c| (c.path, c.sender.clone()));
        let (path, mut sender) = picked.ok_or(OpenError::NotConnected(peer))?;
        let (tx, rx) = oneshot::channel();
        let closed = || {
            OpenError::Io(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection closed",
            ))
        };
        sender
            .send(NewStream {
                protocol,
                reply: tx,
            })
            .await
            .map_err(|_| closed())?;
        let stream = rx.await.map_err(|_| closed())??;
        Ok(Outbound {
            connection,
            path,
            stream,
        })
    }

    /// The established connections (not those let in only to pair), with
    /// their peers.
    pub fn all_connections(&self) -> Vec<(PeerId, ConnectionId)> {
        Shared::lock(&self.shared)
            .connections
            .iter()
            .filter(|(_, c)| c.established && !c.pairing_only)
            .map(|(id, c)| (c.peer, *id))
            .collect()
    }

    /// Starts accepting `protocol`. Dropping the [`Incoming`] stops it.
    ///
    /// # Errors
    /// [`AlreadyRegistered`] when another `Incoming` accepts it.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<Incoming, AlreadyRegistered> {
        let mut shared = Shared::lock(&self.shared);
        if shared.protocols.contains_key(&protocol) {
            return Err(AlreadyRegistered(protocol));
        }
        shared.next_owner += 1;
        let owner = shared.next_owner;
        shared.protocols.insert(
            protocol.clone(),
            Queue {
                owner,
                ..Queue::default()
            },
        );
        Ok(Incoming {
            shared: self.shared.clone(),
            protocol,
            owner,
            done: false,
        })
    }

    /// Stops accepting `protocol` now, whoever holds its [`Incoming`]: new
    /// streams are no longer negotiated (the peer hears "not supported"),
    /// the streams still queued are reset, and the `Incoming` ends. The
    /// protocol can be accepted again at once. Returns whether it was
    /// accepted.
    pub fn stop_accepting(&self, protocol: &StreamProtocol) -> bool {
        let removed = Shared::lock(&self.shared).protocols.remove(protocol);
        match removed {
            Some(mut q) => {
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
                true
            }
            None => false,
        }
    }

    /// The established connections to `peer`: `(connection, path)`.
    pub fn connections(&self, peer: PeerId) -> Vec<(ConnectionId, ConnectionPath)> {
        let shared = Shared::lock(&self.shared);
        let mut v: Vec<_> = shared
            .connections
            .iter()
            .filter(|(_, c)| c.peer == peer && c.established)
            .map(|(id, c)| (c.order, *id, c.path))
            .collect();
        v.sort_by_key(|(order, _, _)| *order);
        v.into_iter().map(|(_, id, p)| (id, p)).collect()
    }

    /// The best path to `peer` right now (direct if any direct connection).
    pub fn path(&self, peer: PeerId) -> Option<ConnectionPath> {
        Shared::lock(&self.shared).pick(peer).map(|(_, p, _)| p)
    }

    /// Inbound streams dropped because an accept queue was full.
    pub fn dropped(&self) -> u64 {
        Shared::lock(&self.shared).dropped
    }
}

/// Inbound streams of one protocol. Dropping it stops accepting the
/// protocol (streams still queued are reset).
pub struct Incoming {
    shared: Arc<Mutex<Shared>>,
    protocol: StreamProtocol,
    owner: u64,
    done: bool,
}

impl futures::stream::FusedStream for Incoming {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl futures::Stream for Incoming {
    type Item = Inbound;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        let mut shared = Shared::lock(&self.shared);
        let owner = self.owner;
        let Some(q) = shared
            .protocols
            .get_mut(&self.protocol)
            .filter(|q| q.owner == owner)
        else {
            drop(shared);
            self.done = true;
            return Poll::Ready(None);
        };
        match q.items.pop_front() {
            Some(inbound) => Poll::Ready(Some(inbound)),
            None => {
                q.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut shared = Shared::lock(&self.shared);
        if shared
            .protocols
            .get(&self.protocol)
            .is_some_and(|q| q.owner == self.owner)
        {
            shared.protocols.remove(&self.protocol);
        }
    }
}

/// Reads `stream` until the writer half-closes, at most `max` bytes: a
/// one-shot request or answer (relay pairing, introductions). `None` when
/// the writer sent more, or the stream failed; the caller bounds the time.
pub async fn read_to_end_bounded<S>(stream: &mut S, max: usize) -> Option<Vec<u8>>
where
    S: futures::AsyncRead + Unpin,
{
    use futures::AsyncReadExt;
    let mut buf = Vec::with_capacity(max.min(4096));
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return Some(buf);
        }
        if buf.len() + n > max {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The behaviour; put it in the node's behaviour and keep a [`Control`].
pub struct Behaviour {
    shared: Arc<Mutex<Shared>>,
    /// Which connections were let in only to pair (they are offered
    /// `pairing_protocol` alone).
    gate: Option<Arc<GateShared>>,
    /// The protocol a pairing-only connection is offered: the invite on a
    /// node, relay pairing on the relay.
    pairing_protocol: StreamProtocol,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::new()
    }
}

impl Behaviour {
    /// A behaviour with no protocols accepted yet.
    pub fn new() -> Self {
        Behaviour {
            shared: Arc::new(Mutex::new(Shared::default())),
            gate: None,
            pairing_protocol: StreamProtocol::new(protocol::INVITE),
        }
    }

    /// Offers connections that `gate` let in only to pair the invite
    /// protocol alone.
    pub fn with_gate(mut self, gate: Arc<GateShared>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Offers pairing-only connections `protocol` instead of the invite
    /// (the relay: `/peerup/relay-pair/1.0.0`).
    pub fn with_pairing_protocol(mut self, protocol: StreamProtocol) -> Self {
        self.pairing_protocol = protocol;
        self
    }

    /// A control for this behaviour.
    pub fn control(&self) -> Control {
        Control {
            shared: self.shared.clone(),
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let path = inbound_path(local_addr, remote_addr);
        let pairing_only = self
            .gate
            .as_ref()
            .is_some_and(|g| g.is_pairing_only(connection));
        let receiver = Shared::lock(&self.shared).register(peer, connection, path, pairing_only);
        let mut handler = Handler::new(peer, connection, path, self.shared.clone(), receiver);
        if pairing_only {
            handler.only = Some(self.pairing_protocol.clone());
        }
        Ok(handler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let path = path_of(addr);
        let receiver = Shared::lock(&self.shared).register(peer, connection, path, false);
        Ok(Handler::new(
            peer,
            connection,
            path,
            self.shared.clone(),
            receiver,
        ))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                if let Some(c) = Shared::lock(&self.shared)
                    .connections
                    .get_mut(&e.connection_id)
                {
                    c.established = true;
                }
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                Shared::lock(&self.shared)
                    .connections
                    .remove(&connection_id);
            }
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

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

struct NewStream {
    protocol: StreamProtocol,
    reply: oneshot::Sender<Result<Stream, OpenError>>,
}

/// The per-connection half of [`Behaviour`].
pub struct Handler {
    peer: PeerId,
    connection: ConnectionId,
    path: ConnectionPath,
    shared: Arc<Mutex<Shared>>,
    receiver: mpsc::Receiver<NewStream>,
    /// The one protocol offered, on a connection let in only to pair.
    only: Option<StreamProtocol>,
}

impl Handler {
    fn new(
        peer: PeerId,
        connection: ConnectionId,
        path: ConnectionPath,
        shared: Arc<Mutex<Shared>>,
        receiver: mpsc::Receiver<NewStream>,
    ) -> Self {
        Handler {
            peer,
            connection,
            path,
            shared,
            receiver,
            only: None,
        }
    }
}

type Reply = (StreamProtocol, oneshot::Sender<Result<Stream, OpenError>>);

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Reply;

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        let mut protocols = Shared::lock(&self.shared).supported();
        if let Some(only) = &self.only {
            protocols.retain(|p| p == only);
        }
        SubstreamProtocol::new(Upgrade { protocols }, ())
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Upgrade, Reply, Infallible>> {
        match self.receiver.poll_next_unpin(cx) {
            Poll::Ready(Some(NewStream { protocol, reply })) => {
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(
                        Upgrade {
                            protocols: vec![protocol.clone()],
                        },
                        (protocol, reply),
                    ),
                })
            }
            _ => Poll::Pending,
        }
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<'_, Upgrade, Upgrade, (), Reply>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => {
                let inbound = Inbound {
                    peer: self.peer,
                    connection: self.connection,
                    path: self.path,
                    stream,
                };
                Shared::lock(&self.shared).on_inbound(inbound, protocol);
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, _),
                info,
            }) => {
                let _ = info.1.send(Ok(stream));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: (protocol, reply),
                error,
            }) => {
                let e = match error {
                    StreamUpgradeError::Timeout => OpenError::Timeout,
                    StreamUpgradeError::NegotiationFailed => OpenError::Unsupported(protocol),
                    StreamUpgradeError::Io(e) => OpenError::Io(e),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let _ = reply.send(Err(e));
            }
            _ => {}
        }
    }
}

/// Negotiates one of a set of protocols and hands over the raw stream.
pub struct Upgrade {
    protocols: Vec<StreamProtocol>,
}

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;
    fn protocol_info(&self) -> Self::InfoIter {
        self.protocols.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;
    fn upgrade_inbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        ready(Ok((stream, info)))
    }
}

impl OutboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Infallible>>;
    fn upgrade_outbound(self, stream: Stream, info: StreamProtocol) -> Self::Future {
        ready(Ok((stream, info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn proto() -> StreamProtocol {
        StreamProtocol::new("/peerup/web/1.0.0")
    }

    #[test]
    fn stop_accepting_ends_the_incoming_and_frees_the_protocol_at_once() {
        let control = Behaviour::new().control();
        let mut first = control.accept(proto()).unwrap();
        assert!(control.accept(proto()).is_err());
        assert!(control.stop_accepting(&proto()));
        assert!(!control.stop_accepting(&proto()));
        // Accepted again before the old `Incoming` is even polled or dropped.
        let second = control.accept(proto()).unwrap();
        assert_eq!(futures::executor::block_on(first.next()).map(|_| ()), None);
        // The old one's drop leaves the new registration alone.
        drop(first);
        assert!(control.accept(proto()).is_err());
        drop(second);
        assert!(control.accept(proto()).is_ok());
    }
}
