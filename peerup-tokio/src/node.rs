//! The tokio-native face of a peerup node: [`Node`] wraps
//! `peerup-net`'s runtime-agnostic node and gives it tokio types. Every
//! method delegates to that node ([`Node::net`]).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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
    ServiceSpec, StartError, Status,
};
use peerup_net::runtime::Runtime;
use peerup_net::streams::OpenError;
use tokio::io::ReadBuf;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::runtime::TokioRuntime;

/// A running peerup node on tokio. Clone it freely (clones share the
/// node); [`Node::shutdown`] stops it. Its streams implement tokio's I/O
/// traits (and futures').
#[derive(Clone, Debug)]
pub struct Node {
    inner: peerup_net::Node,
}

impl Node {
    /// Starts a node on the current tokio runtime: binds the listen
    /// addresses, exposes the configured services, and spawns the event
    /// loop. Returns once every listen address is bound.
    ///
    /// # Errors
    /// [`StartError`]: transports, a listen address in use, a service.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start(options: NodeOptions) -> Result<Node, StartError> {
        let rt: Arc<dyn Runtime> = Arc::new(TokioRuntime::current());
        Ok(Node {
            inner: peerup_net::Node::start(rt, options).await?,
        })
    }

    peerup_net::adapter_node_methods!();

    /// Opens a stream to `service` on `peer` (connecting first, retrying),
    /// usable with tokio's and futures' `AsyncRead`/`AsyncWrite`.
    ///
    /// # Errors
    /// [`OpenServiceError`]: an invalid name or an unknown service fails
    /// at once.
    pub async fn open_service(
        &self,
        peer: PeerId,
        service: impl IntoServiceName,
    ) -> Result<ServiceStream, OpenServiceError> {
        Ok(ServiceStream {
            inner: self.inner.open_service(peer, service).await?.compat(),
        })
    }
}

/// A stream to a peer's service. `shutdown()` (tokio) or `close()`
/// (futures) half-closes it: the service sees EOF and can still answer.
#[derive(Debug)]
pub struct ServiceStream {
    inner: Compat<peerup_net::node::ServiceStream>,
}

impl ServiceStream {
    /// Direct or relayed.
    pub fn path(&self) -> ConnectionPath {
        self.inner.get_ref().path()
    }

    /// The peer.
    pub fn peer(&self) -> PeerId {
        self.inner.get_ref().peer()
    }

    /// The runtime-agnostic stream (futures I/O traits).
    pub fn into_inner(self) -> peerup_net::node::ServiceStream {
        self.inner.into_inner()
    }
}

impl tokio::io::AsyncRead for ServiceStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ServiceStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl futures::io::AsyncRead for ServiceStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.inner.get_mut()).poll_read(cx, buf)
    }
}

impl futures::io::AsyncWrite for ServiceStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.inner.get_mut()).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.inner.get_mut()).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.inner.get_mut()).poll_close(cx)
    }
}
