//! The tokio-native face of a peerup node.

use std::io;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use libp2p::PeerId;
use peerup_net::node::service::OpenServiceError;
use peerup_net::node::{NodeOptions, StartError};
use peerup_net::runtime::Runtime;
use tokio::io::ReadBuf;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::runtime::TokioRuntime;

/// A running peerup node on tokio. Everything of
/// [`peerup_net::Node`] is available through `Deref`; the methods here
/// return tokio types.
#[derive(Clone, Debug)]
pub struct Node {
    inner: peerup_net::Node,
}

impl Deref for Node {
    type Target = peerup_net::Node;
    fn deref(&self) -> &peerup_net::Node {
        &self.inner
    }
}

impl Node {
    /// Starts a node on the current tokio runtime.
    ///
    /// # Errors
    /// [`StartError`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start(options: NodeOptions) -> Result<Node, StartError> {
        let rt: Arc<dyn Runtime> = Arc::new(TokioRuntime::current());
        Ok(Node {
            inner: peerup_net::Node::start(rt, options).await?,
        })
    }

    /// The runtime-agnostic node.
    pub fn net(&self) -> &peerup_net::Node {
        &self.inner
    }

    /// Opens a stream to `service` on `peer`, usable with tokio's and
    /// futures' `AsyncRead`/`AsyncWrite`.
    ///
    /// # Errors
    /// [`OpenServiceError`].
    pub async fn open_service(
        &self,
        peer: PeerId,
        service: &str,
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
    pub fn path(&self) -> peerup_core::wire::ConnectionPath {
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
