//! The async-std face of a peerup node.

use std::ops::Deref;
use std::sync::Arc;

use libp2p::PeerId;
use libp2p::multiaddr::Protocol;
use peerup_net::node::service::OpenServiceError;
use peerup_net::node::{NodeOptions, ServiceStream, StartError};
use peerup_net::runtime::Runtime;

use crate::runtime::AsyncStdRuntime;

/// A running peerup node on async-std. Everything of [`peerup_net::Node`]
/// is available through `Deref`; its streams already use the futures-io
/// traits that async-std (and smol) use, so nothing needs converting.
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

    /// The runtime-agnostic node.
    pub fn net(&self) -> &peerup_net::Node {
        &self.inner
    }

    /// Opens a stream to `service` on `peer`; it implements futures-io's
    /// `AsyncRead` and `AsyncWrite` (`futures::io::copy`,
    /// `async_std::io::copy`, ...), and `close()` half-closes it: the
    /// service sees EOF and can still answer.
    ///
    /// # Errors
    /// [`OpenServiceError`].
    pub async fn open_service(
        &self,
        peer: PeerId,
        service: &str,
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
