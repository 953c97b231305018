//! Byte counting for every connection of a transport (the relay's
//! `/metrics` and `/healthz` report bytes relayed with it).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use libp2p::PeerId;
use libp2p::core::Transport;
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent, SubstreamBox};

use crate::runtime::BoxedTransport;

/// Bytes through every stream of every connection.
#[derive(Debug, Default)]
pub struct Meter {
    /// Bytes read from peers.
    pub inbound: AtomicU64,
    /// Bytes written to peers.
    pub outbound: AtomicU64,
}

/// Wraps `transport` so every stream's bytes are counted in `meter`.
pub fn metered(transport: BoxedTransport, meter: Arc<Meter>) -> BoxedTransport {
    transport
        .map(move |(peer, muxer): (PeerId, StreamMuxerBox), _| {
            (
                peer,
                StreamMuxerBox::new(Metered {
                    inner: muxer,
                    meter: meter.clone(),
                }),
            )
        })
        .boxed()
}

struct Metered {
    inner: StreamMuxerBox,
    meter: Arc<Meter>,
}

impl StreamMuxer for Metered {
    type Substream = Counted;
    type Error = io::Error;

    fn poll_inbound(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Counted>> {
        let meter = self.meter.clone();
        Pin::new(&mut self.inner)
            .poll_inbound(cx)
            .map_ok(|s| Counted { inner: s, meter })
    }

    fn poll_outbound(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Counted>> {
        let meter = self.meter.clone();
        Pin::new(&mut self.inner)
            .poll_outbound(cx)
            .map_ok(|s| Counted { inner: s, meter })
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<StreamMuxerEvent>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

struct Counted {
    inner: SubstreamBox,
    meter: Arc<Meter>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.meter.inbound.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.meter.outbound.fetch_add(n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
