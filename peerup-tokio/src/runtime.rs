//! [`peerup_net::Runtime`] on tokio.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::io::{AsyncRead, AsyncWrite};
use libp2p::core::Transport;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::identity::Keypair;
use libp2p::{dns, quic, tcp};
use peerup_net::runtime::{
    BoxFuture, BoxedTransport, InterfaceChange, Runtime, TcpListener, TcpStream, TransportOptions,
    interface_changes, or_transport, secure_tcp, secure_websocket,
};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The tokio runtime: tasks on the current tokio runtime, tokio timers and
/// sockets, libp2p's tokio TCP, QUIC and DNS transports.
#[derive(Debug, Clone)]
pub struct TokioRuntime {
    handle: tokio::runtime::Handle,
}

impl TokioRuntime {
    /// The runtime of the calling context.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn current() -> Self {
        TokioRuntime {
            handle: tokio::runtime::Handle::current(),
        }
    }

    /// A specific runtime.
    pub fn with_handle(handle: tokio::runtime::Handle) -> Self {
        TokioRuntime { handle }
    }
}

/// A tokio TCP socket as `peerup-net` uses it.
pub struct TokioTcp {
    inner: Compat<tokio::net::TcpStream>,
}

impl TokioTcp {
    /// Wraps a tokio stream.
    pub fn new(stream: tokio::net::TcpStream) -> Self {
        TokioTcp {
            inner: stream.compat(),
        }
    }

    fn socket(&self) -> &tokio::net::TcpStream {
        self.inner.get_ref()
    }
}

impl AsyncRead for TokioTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TokioTcp {
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
    /// Shuts down the write side only (half-close).
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl TcpStream for TokioTcp {
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.socket().set_nodelay(on)
    }
    fn set_abort_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(self.socket()).set_linger(Some(std::time::Duration::ZERO))
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket().peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket().local_addr()
    }
}

struct TokioListener(tokio::net::TcpListener);

impl TcpListener for TokioListener {
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn TcpStream>, SocketAddr)>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(s, a)| (Box::new(TokioTcp::new(s)) as Box<dyn TcpStream>, a))
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Runtime for TokioRuntime {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn spawn(&self, future: BoxFuture<()>) {
        self.handle.spawn(future);
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn tcp_connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpStream>>> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect(addr).await?;
            Ok(Box::new(TokioTcp::new(s)) as Box<dyn TcpStream>)
        })
    }

    fn tcp_listen(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpListener>>> {
        Box::pin(async move {
            let l = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TokioListener(l)) as Box<dyn TcpListener>)
        })
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }

    fn watch_interfaces(&self) -> Option<futures::stream::BoxStream<'static, InterfaceChange>> {
        // The netlink socket registers with the runtime's reactor.
        let _guard = self.handle.enter();
        match if_watch::tokio::IfWatcher::new() {
            Ok(watcher) => Some(interface_changes(watcher)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch network interfaces; roaming is noticed by pings only");
                None
            }
        }
    }

    fn transport(
        &self,
        keypair: &Keypair,
        options: &TransportOptions,
    ) -> io::Result<BoxedTransport> {
        let tcp = secure_tcp(
            tcp::tokio::Transport::new(tcp::Config::new().nodelay(true)),
            keypair,
            options,
        )?;
        let ip = if options.quic {
            let q = quic_config(keypair, options)?;
            // QUIC first (WIRE.md §1), then TCP.
            quic::tokio::Transport::new(q)
                .map(|(p, c), _| (p, StreamMuxerBox::new(c)))
                .or_transport(tcp)
                .map(|e, _| e.into_inner())
                .boxed()
        } else {
            tcp
        };
        // WebSocket first: it takes only `/ws` addresses, and resolves
        // their host names itself (`secure_websocket`).
        let ws = secure_websocket(
            dns::tokio::Transport::system(tcp::tokio::Transport::new(
                tcp::Config::new().nodelay(true),
            ))?,
            keypair,
            options,
        )?;
        Ok(or_transport(ws, dns::tokio::Transport::system(ip)?.boxed()))
    }

    fn lan_discovery(
        &self,
        local: libp2p::PeerId,
    ) -> Option<io::Result<Box<dyn peerup_net::lan::Discoverer>>> {
        Some(Mdns::new(local).map(|m| Box::new(m) as Box<dyn peerup_net::lan::Discoverer>))
    }
}

/// libp2p-mdns on tokio as peerup-net's [`Discoverer`](peerup_net::lan::Discoverer):
/// its own swarm events dropped (peerup-net decides which discovered
/// addresses reach the swarm), `Discovered`/`Expired` passed on.
struct Mdns(libp2p::mdns::tokio::Behaviour);

impl Mdns {
    fn new(local: libp2p::PeerId) -> io::Result<Self> {
        libp2p::mdns::tokio::Behaviour::new(libp2p::mdns::Config::default(), local).map(Mdns)
    }
}

impl peerup_net::lan::Discoverer for Mdns {
    fn on_swarm_event(&mut self, event: libp2p::swarm::FromSwarm<'_>) {
        libp2p::swarm::NetworkBehaviour::on_swarm_event(&mut self.0, event);
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<peerup_net::lan::LanEvent> {
        use libp2p::mdns::Event;
        use libp2p::swarm::ToSwarm;
        use peerup_net::lan::LanEvent;
        loop {
            match libp2p::swarm::NetworkBehaviour::poll(&mut self.0, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(ToSwarm::GenerateEvent(Event::Discovered(v))) => {
                    return Poll::Ready(LanEvent::Discovered(v));
                }
                Poll::Ready(ToSwarm::GenerateEvent(Event::Expired(v))) => {
                    return Poll::Ready(LanEvent::Expired(v));
                }
                // `NewExternalAddrOfPeer` for every peer heard: dropped.
                Poll::Ready(_) => {}
            }
        }
    }
}

/// The QUIC transport's configuration for these options: our TLS
/// configurations (AES-GCM first where the CPU has AES), the windows,
/// socket buffers and timeouts of `options`, and MTU discovery as far as
/// each path's link carries (ARCHITECTURE.md, "QUIC packet size"). What
/// [`TokioRuntime`]'s transport listens and dials with.
pub fn quic_config(keypair: &Keypair, options: &TransportOptions) -> io::Result<quic::Config> {
    // libp2p's TLS handshake with AES-GCM first where the CPU
    // has AES (libp2p-tls puts ChaCha20 first; patched
    // libp2p-quic, see patches/README.md).
    let (client, server) = peerup_net::tls::Config::new(keypair)
        .map_err(io::Error::other)?
        .rustls();
    let client = quic::QuicClientConfig::try_from(client).map_err(io::Error::other)?;
    let server = quic::QuicServerConfig::try_from(server).map_err(io::Error::other)?;
    let mut q = quic::Config::new(keypair).with_tls_configs(Arc::new(client), Arc::new(server));
    q.max_stream_data = options.quic_stream_window;
    q.max_connection_data = options.quic_connection_window;
    q.max_connection_send_data = Some(options.quic_send_window);
    q.udp_socket_buffer = Some(options.quic_socket_buffer);
    note_udp_buffer_limit(options.quic_socket_buffer);
    q.max_idle_timeout = u32::try_from(options.quic_idle_timeout.as_millis()).unwrap_or(u32::MAX);
    q.keep_alive_interval = options.quic_keep_alive;
    // MTU discovery searches as far as the route's link carries where it
    // is larger than Ethernet (patched libp2p-quic; ARCHITECTURE.md, "QUIC
    // packet size"). Linux only: elsewhere the lookup knows nothing, and
    // the endpoints' larger `max_udp_payload_size` would only enlarge
    // quinn's receive buffer where there is no GRO to fill it.
    if options.quic_path_mtu && cfg!(any(target_os = "linux", target_os = "android")) {
        q.path_max_udp_payload = Some(peerup_net::runtime::path_max_udp_payload);
    }
    Ok(q)
}

/// Says so when the kernel caps the QUIC sockets' receive buffers below what
/// the transport asks for (`net.core.rmem_max`, 208 KiB on most systems):
/// QUIC still works, but a fast transfer loses packets the receiver had no
/// room for, and slows down for them (docs/PERFORMANCE.md).
fn note_udp_buffer_limit(wanted: usize) {
    let Some((max, _)) = peerup_net::runtime::udp_buffer_limits() else {
        return;
    };
    if max < u64::try_from(wanted).unwrap_or(u64::MAX) {
        tracing::info!(
            "QUIC: the kernel allows UDP receive buffers of {} KiB (net.core.rmem_max), \
             less than the {} KiB asked for, so fast QUIC transfers may lose packets; \
             to allow them: sudo sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 \
             (`peerup doctor`, udp.buffers)",
            max / 1024,
            wanted / 1024
        );
    }
}
