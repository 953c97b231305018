//! What the runtime adapters' `Node` types share.
//!
//! `peerup-tokio` and `peerup-async-std` each wrap [`crate::Node`] in a
//! `Node` of their own (no `Deref`: the adapter's API is documented on its
//! own). All but a few of its methods pass straight through; they are
//! written once here, as a macro each adapter expands inside its
//! `impl Node`, instead of twice by hand.

/// The pass-through methods of a runtime adapter's `Node` (everything but
/// `start` and `open_service`, whose types differ per runtime). Expand it
/// inside `impl Node { ... }` of a type with a field `inner:
/// peerup_net::Node`. The names it uses (`PeerId`, `NodeOptions`,
/// `ResolveError`, ...) resolve where it is expanded, as `macro_rules!`
/// paths do: the adapter imports them, and its docs link them from there.
#[doc(hidden)]
#[macro_export]
macro_rules! adapter_node_methods {
    () => {
        /// The runtime-agnostic node, for what this type does not wrap.
        pub fn net(&self) -> &peerup_net::Node {
            &self.inner
        }

        /// This node's peer ID.
        pub fn peer_id(&self) -> PeerId {
            self.inner.peer_id()
        }

        /// The node's metrics as OpenMetrics text (docs/METRICS.md).
        pub fn encode_metrics(&self) -> String {
            self.inner.encode_metrics()
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

        /// `authorized_keys` as last loaded.
        pub fn authorized_keys(&self) -> $crate::core::authorized_keys::Document {
            self.inner.authorized_keys()
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

        /// Stops exposing a service at once: its protocol is no longer
        /// negotiated and its proxied connections are cut on both sides.
        /// Returns whether it was exposed.
        pub fn unexpose_service(&self, name: impl IntoServiceName) -> bool {
            self.inner.unexpose_service(name)
        }

        /// Changes an exposed service's rule live (`enabled`,
        /// `allowed_peers`); its proxied connections the new rule no longer
        /// allows are cut. Returns how many were cut.
        ///
        /// # Errors
        /// [`ServiceRuleError`]($crate::node::ServiceRuleError): an invalid
        /// name, or a service that is not exposed.
        pub fn set_service_rule(
            &self,
            name: impl IntoServiceName,
            rule: ServiceRule,
        ) -> Result<usize, $crate::node::ServiceRuleError> {
            self.inner.set_service_rule(name, rule)
        }

        /// Makes the exposed services exactly `wanted` (added, removed,
        /// changed live; connections no longer allowed are cut), as the
        /// daemon does when its config changes.
        ///
        /// # Errors
        /// [`StartError::Service`] for the first service that could not be
        /// exposed; the changes before it stay made.
        pub fn apply_services(
            &self,
            wanted: std::collections::BTreeMap<$crate::core::wire::label::DnsLabel, ServiceSpec>,
        ) -> Result<$crate::node::ServicesChange, StartError> {
            self.inner.apply_services(wanted)
        }

        /// A service's local address and rule as exposed now.
        pub fn service_rule(&self, name: impl IntoServiceName) -> Option<ServiceSpec> {
            self.inner.service_rule(name)
        }

        /// Every service exposed now, enabled or not.
        pub fn service_specs(
            &self,
        ) -> std::collections::BTreeMap<$crate::core::wire::label::DnsLabel, ServiceSpec> {
            self.inner.service_specs()
        }

        /// The names of the services exposed and enabled now.
        pub fn services(&self) -> std::collections::BTreeSet<String> {
            self.inner.services()
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

        /// Watches the path to `peer`: the relayed connection, then the
        /// hole punch's direct one or its failure (make it before
        /// connecting).
        pub fn watch_path(&self, peer: PeerId) -> PathWatch {
            self.inner.watch_path(peer)
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
        pub async fn join(
            &self,
            code: &InviteCode,
            name: Option<Name>,
        ) -> Result<Paired, JoinError> {
            self.inner.join(code, name).await
        }

        /// Joins the relay's pairing group in `code` (a version-2 code from
        /// `peerup-relay pair`) and saves the relay and the members.
        ///
        /// # Errors
        /// [`JoinError`] with what to do next.
        pub async fn join_relay(
            &self,
            code: &$crate::core::invite::PairingCode,
            name: Option<Name>,
        ) -> Result<$crate::node::RelayJoined, JoinError> {
            self.inner.join_relay(code, name).await
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
    };
}

/// What an embedder of either adapter names, re-exported at both adapters'
/// roots (`pub use peerup_net::adapter::exports::*`): one list, so moving a
/// program from one runtime to the other changes the crate name only.
pub mod exports {
    pub use crate::libp2p::identity::Keypair;
    pub use crate::libp2p::{Multiaddr, PeerId, StreamProtocol};
    pub use crate::limits::{ConnectionLimits, LimitStats};
    pub use crate::node::invite::{
        Invite, InviteError, InviteOptions, InviteProgress, InviteStatus, JoinError, Paired,
    };
    pub use crate::node::service::{Forwarder, OpenServiceError};
    pub use crate::node::{
        ConnectError, Event, IntoServiceName, InvalidService, InvalidServiceName, NodeOptions,
        PathChange, PathWatch, PingError, PingReply, ServiceRuleError, ServiceSpec, ServicesChange,
        StartError, Status, generate_identity, load_or_create_identity, services_from_config,
    };
    pub use crate::runtime::{Runtime, TransportOptions};
    pub use crate::streams::OpenError;
    pub use peerup_core::authorized_keys::{Attributes, Document};
    pub use peerup_core::authz::{Change, ServiceRule};
    pub use peerup_core::invite::InviteCode;
    pub use peerup_core::naming::{Name, Names, ResolveError};
    pub use peerup_core::relay_addr::RelayAddr;
    pub use peerup_core::wire::ConnectionPath;
    pub use peerup_core::wire::label::{DnsLabel, LabelError};
}
