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
    ConnectError, Event, Forwarder, IntoServiceName, NodeOptions, PathWatch, PingError, PingReply,
    ServiceSpec, ServiceStream, StartError, Status,
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
    /// such addresses refused instead. mDNS is tokio-only too (libp2p-mdns
    /// 0.49 has no async-io provider): `options.mdns` (`discovery.mdns`, on
    /// by default in a config) is turned off with a log line, so no LAN
    /// discovery runs on async-std; peers are reached through the relays.
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

    peerup_net::adapter_node_methods!();

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
    if options.mdns {
        tracing::info!("no LAN discovery: mDNS is tokio-only, async-std has none");
        options.mdns = false;
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_lose_only_quic() {
        let k = peerup_net::node::generate_identity().unwrap();
        let mut o = NodeOptions::new(k);
        o.mdns = true;
        let o = without_quic(o);
        assert!(!o.mdns);
        assert_eq!(
            o.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["/ip4/0.0.0.0/tcp/0"]
        );
        assert!(!o.transport.quic);
    }
}
