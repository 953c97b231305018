//! The async-std face of a peerup node: [`Node`] wraps `peerup-net`'s
//! runtime-agnostic node, started on [`AsyncStdRuntime`]. Every method
//! delegates to that node ([`Node::net`]).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use peerup_core::authorized_keys::Document;
use peerup_core::authz::{Change, ServiceRule};
use peerup_core::invite::InviteCode;
use peerup_core::naming::{Name, Names, ResolveError};
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::ConnectionPath;
use peerup_net::limits::LimitStats;
use peerup_net::node::invite::{
    Invite, InviteError, InviteOptions, InviteStatus, JoinError, Paired,
};
use peerup_net::node::service::OpenServiceError;
use peerup_net::node::{
    ConnectError, Event, Forwarder, IntoServiceName, NodeOptions, PingError, PingReply,
    ServiceStream, StartError, Status,
};
use peerup_net::runtime::Runtime;
use peerup_net::streams::OpenError;

use crate::runtime::AsyncStdRuntime;

/// A running peerup node on async-std (or smol, see
/// [`AsyncStdRuntime::with_spawner`]). Clone it freely (clones share the
/// node); [`Node::shutdown`] stops it. Its streams use the futures-io
/// traits that async-std and smol use, so nothing needs converting.
#[derive(Clone, Debug)]
pub struct Node {
    inner: peerup_net::Node,
}

impl Node {
    /// Starts a node on [`AsyncStdRuntime`].
    ///
    /// QUIC is tokio-only, so QUIC listen addresses (those of
    /// [`NodeOptions::new`] and of a `peerup.yaml` written by `peerup
    /// init`) are left out with a log line and `options.transport.quic` is
    /// turned off; the node listens on the TCP ones. Call
    /// [`peerup_net::Node::start`] with an [`AsyncStdRuntime`] to have
    /// such addresses refused instead.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(options: NodeOptions) -> Result<Node, StartError> {
        Self::start_on(AsyncStdRuntime::new(), options).await
    }

    /// [`Node::start`] on a given runtime (e.g. one with a custom spawner).
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start_on(rt: AsyncStdRuntime, options: NodeOptions) -> Result<Node, StartError> {
        let rt: Arc<dyn Runtime> = Arc::new(rt);
        Ok(Node {
            inner: peerup_net::Node::start(rt, without_quic(options)).await?,
        })
    }

    /// The runtime-agnostic node, for what this type does not wrap.
    pub fn net(&self) -> &peerup_net::Node {
        &self.inner
    }

    /// This node's peer ID.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id()
    }

    /// The runtime it runs on.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.inner.runtime()
    }

    /// The options it was started with.
    pub fn options(&self) -> &NodeOptions {
        self.inner.options()
    }

    /// A snapshot of addresses, reservations, peers, services and proxies.
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// The addresses the node listens on now.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner.listen_addrs()
    }

    /// Events from now on. Each subscriber has a bounded queue; one that
    /// does not keep up misses events rather than slowing the node.
    pub fn events(&self) -> impl futures::Stream<Item = Event> + Send + Unpin + 'static {
        self.inner.events()
    }

    /// The names map (friendly names of peers).
    pub fn names(&self) -> Names {
        self.inner.names()
    }

    /// Replaces the names map.
    pub fn load_names(&self, names: Names) {
        self.inner.load_names(names);
    }

    /// Resolves a target: a name first, then a peer ID.
    ///
    /// # Errors
    /// [`ResolveError`] listing the known names.
    pub fn resolve(&self, target: &str) -> Result<PeerId, ResolveError> {
        self.inner.resolve(target)
    }

    /// Tells the node it can reach `peer` through these relays.
    pub fn add_relay_addresses_for_peer(&self, relays: &[RelayAddr], peer: PeerId) {
        self.inner.add_relay_addresses_for_peer(relays, peer);
    }

    /// Adds known addresses of a peer.
    pub fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.inner.add_addresses(peer, addrs);
    }

    /// The best path to `peer` now (direct or relayed), if connected.
    pub fn path(&self, peer: PeerId) -> Option<ConnectionPath> {
        self.inner.path(peer)
    }

    /// Makes sure a connection to `peer` exists (known addresses, circuits
    /// through the relays, then the DHT) and returns its path.
    ///
    /// # Errors
    /// [`ConnectError::Unreachable`] saying what was tried.
    pub async fn connect(&self, peer: PeerId) -> Result<ConnectionPath, ConnectError> {
        self.inner.connect(peer).await
    }

    /// Disconnects every connection to `peer`.
    pub fn disconnect(&self, peer: PeerId) {
        self.inner.disconnect(peer);
    }

    /// Disconnects `peer` and waits (at most a few seconds) until no
    /// connection to it is left.
    pub async fn disconnect_and_wait(&self, peer: PeerId) {
        self.inner.disconnect_and_wait(peer).await;
    }

    /// Closes one connection.
    pub fn close_connection(&self, connection: ConnectionId) {
        self.inner.close_connection(connection);
    }

    /// Exposes a local TCP service (`host:port`) to authorized peers under
    /// `name` (a [`DnsLabel`](crate::DnsLabel) or a text).
    ///
    /// # Errors
    /// [`StartError::Service`] for an invalid or reserved name, an invalid
    /// address, or a service already exposed.
    pub fn expose_service(
        &self,
        name: impl IntoServiceName,
        local: &str,
        rule: ServiceRule,
    ) -> Result<(), StartError> {
        self.inner.expose_service(name, local, rule)
    }

    /// Stops exposing a service (connections in progress continue).
    pub fn unexpose_service(&self, name: impl IntoServiceName) {
        self.inner.unexpose_service(name);
    }

    /// The configured local address and rule of a service.
    pub fn service_rule(&self, name: impl IntoServiceName) -> Option<(String, ServiceRule)> {
        self.inner.service_rule(name)
    }

    /// Exposed service names.
    pub fn services(&self) -> std::collections::BTreeSet<String> {
        self.inner.services()
    }

    /// Opens a stream to `service` on `peer` (connecting first,
    /// retrying); it implements futures-io's `AsyncRead` and `AsyncWrite`
    /// (`futures::io::copy`, `async_std::io::copy`, ...), and `close()`
    /// half-closes it: the service sees EOF and can still answer.
    ///
    /// # Errors
    /// [`OpenServiceError`]: an invalid name or an unknown service fails
    /// at once.
    pub async fn open_service(
        &self,
        peer: PeerId,
        service: impl IntoServiceName,
    ) -> Result<ServiceStream, OpenServiceError> {
        self.inner.open_service(peer, service).await
    }

    /// Listens on `bind` and forwards every accepted TCP connection to
    /// `service` on `peer` (what `peerup proxy` does), until the
    /// [`Forwarder`] is stopped or dropped.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid service name; the bind error.
    pub async fn forward(
        &self,
        bind: SocketAddr,
        peer: PeerId,
        service: impl IntoServiceName,
    ) -> io::Result<Forwarder> {
        self.inner.forward(bind, peer, service).await
    }

    /// Opens a raw libp2p stream for an embedder's own `protocol` to
    /// `peer` (connecting first).
    ///
    /// # Errors
    /// [`OpenError`] (`Unsupported` when the peer does not serve it).
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<libp2p::Stream, OpenError> {
        self.inner.open_stream(peer, protocol).await
    }

    /// One application ping to `peer`.
    ///
    /// # Errors
    /// [`PingError`].
    pub async fn ping(&self, peer: PeerId) -> Result<PingReply, PingError> {
        self.inner.ping(peer).await
    }

    /// The last RTT libp2p's own ping measured to `peer`.
    pub fn libp2p_rtt(&self, peer: PeerId) -> Option<Duration> {
        self.inner.libp2p_rtt(peer)
    }

    /// Whether `peer` is authorized now.
    pub fn is_authorized(&self, peer: &PeerId) -> bool {
        self.inner.is_authorized(peer)
    }

    /// Replaces `authorized_keys` and applies it live: peers no longer
    /// authorized are disconnected at once.
    pub fn reload_authorized_keys(&self, doc: &Document) -> Change {
        self.inner.reload_authorized_keys(doc)
    }

    /// Re-reads `authorized_keys` from its file and applies it live.
    ///
    /// # Errors
    /// [`StartError`] for an unreadable or invalid file; the old policy
    /// stays in force.
    pub fn reload_authorized_keys_file(&self) -> Result<Change, StartError> {
        self.inner.reload_authorized_keys_file()
    }

    /// Reloads `authorized_keys` if its file changed since the last load;
    /// `None` when it did not.
    ///
    /// # Errors
    /// As [`Node::reload_authorized_keys_file`].
    pub fn reload_authorized_keys_if_changed(&self) -> Result<Option<Change>, StartError> {
        self.inner.reload_authorized_keys_if_changed()
    }

    /// Opens an invite: returns the code at once; the pairing happens in
    /// the background ([`Invite::wait`]).
    ///
    /// # Errors
    /// [`InviteError::NoRelay`], [`InviteError::AlreadyInviting`].
    pub fn invite(&self, options: InviteOptions) -> Result<Invite, InviteError> {
        self.inner.invite(options)
    }

    /// Cancels the open invite, if any; returns whether one was open.
    pub fn cancel_invite(&self) -> bool {
        self.inner.cancel_invite()
    }

    /// The open invite, if any.
    pub fn invite_status(&self) -> Option<InviteStatus> {
        self.inner.invite_status()
    }

    /// Joins the invite in `code` and saves the pairing.
    ///
    /// # Errors
    /// [`JoinError`] with what to do next.
    pub async fn join(&self, code: &InviteCode, name: Option<Name>) -> Result<Paired, JoinError> {
        self.inner.join(code, name).await
    }

    /// Inbound connections refused by a connection limit so far.
    pub fn limit_stats(&self) -> &LimitStats {
        self.inner.limit_stats()
    }

    /// Stops the node: closes every connection and the event loop, and
    /// aborts every service, forwarder and proxied connection.
    pub async fn shutdown(&self) {
        self.inner.shutdown().await;
    }
}

/// `options` without QUIC (see [`Node::start`]).
fn without_quic(mut options: NodeOptions) -> NodeOptions {
    let (udp, tcp): (Vec<_>, Vec<_>) = std::mem::take(&mut options.listen)
        .into_iter()
        .partition(|a| a.iter().any(|p| matches!(p, Protocol::Udp(_))));
    for a in &udp {
        tracing::info!(addr = %a, "not listening: QUIC is tokio-only, async-std has TCP");
    }
    options.listen = tcp;
    options.transport.quic = false;
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_lose_only_quic() {
        let k = peerup_net::node::generate_identity().unwrap();
        let o = without_quic(NodeOptions::new(k));
        assert_eq!(
            o.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["/ip4/0.0.0.0/tcp/0"]
        );
        assert!(!o.transport.quic);
    }
}
