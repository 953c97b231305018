//! The one trait an async runtime implements to run peerup.
//!
//! Modelled on quinn's `Runtime`: object-safe, used as `Arc<dyn Runtime>`,
//! and small. It covers what `peerup-net` cannot do without a runtime:
//! spawning, timers, TCP sockets for the proxy, name resolution for local
//! service addresses, and the libp2p transports (TCP, QUIC, DNS), which in
//! rust-libp2p 0.57 are runtime-specific.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use peerup_core::time::UnixTime;

use futures::io::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::identity::Keypair;
use libp2p::{PeerId, Transport};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The transport a node runs on.
pub type BoxedTransport = Boxed<(PeerId, StreamMuxerBox)>;

/// A connected TCP socket as the proxy uses it.
pub trait TcpStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    /// What the OS says.
    fn set_nodelay(&self, on: bool) -> io::Result<()>;
    /// Makes the next close an abort: the peer sees a reset
    /// (`SO_LINGER` 0), not a clean end.
    ///
    /// # Errors
    /// What the OS says.
    fn set_abort_on_close(&self) -> io::Result<()>;
    /// The remote address.
    ///
    /// # Errors
    /// What the OS says.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// The local address.
    ///
    /// # Errors
    /// What the OS says.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A listening TCP socket.
pub trait TcpListener: Send + Unpin + 'static {
    /// Accepts the next connection.
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn TcpStream>, SocketAddr)>>;
    /// The bound address (with the port the OS chose for port 0).
    ///
    /// # Errors
    /// What the OS says.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Options for the libp2p transports.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Offer QUIC (where the runtime has it).
    pub quic: bool,
    /// Time for an outbound connection's security and muxer upgrade.
    pub upgrade_timeout: Duration,
    /// Time for an inbound connection's security and muxer upgrade:
    /// shorter, so a connection that never finishes its handshake gives
    /// its place among the pending ones back soon.
    pub inbound_upgrade_timeout: Duration,
    /// QUIC per-stream receive window (bytes).
    pub quic_stream_window: u32,
    /// QUIC per-connection receive window (bytes).
    pub quic_connection_window: u32,
    /// QUIC send window (bytes): what this side keeps in flight, unacknowledged,
    /// on one connection, and so the most it buffers for it.
    pub quic_send_window: u64,
    /// `SO_RCVBUF`/`SO_SNDBUF` asked for on the QUIC UDP sockets (bytes;
    /// the kernel grants at most `net.core.rmem_max`/`wmem_max`).
    pub quic_socket_buffer: usize,
    /// QUIC idle timeout.
    pub quic_idle_timeout: Duration,
    /// QUIC keep-alive interval.
    pub quic_keep_alive: Duration,
    /// QUIC's MTU discovery searches as far as each path's first link
    /// carries where it is larger than Ethernet ([`path_max_udp_payload`];
    /// ARCHITECTURE.md, "QUIC packet size"). `false`: quinn's 1,452-byte
    /// bound on every path (`PEERUP_QUIC_PATH_MTU=off` for `peerup`).
    pub quic_path_mtu: bool,
    /// The certificate a `/tls/ws` listen address serves (a relay's
    /// `network.websocket_tls`); `None`: no `wss://` listening.
    pub websocket_tls: Option<WebSocketTls>,
    /// Certificate authorities trusted for `wss://` dials besides the
    /// web's (webpki roots), DER: a private CA, or a test's own.
    pub websocket_trust: Vec<Vec<u8>>,
}

/// A TLS certificate chain and its key, DER, for `wss://` listening.
#[derive(Clone)]
pub struct WebSocketTls {
    /// The chain, leaf first.
    pub certificate_chain: Vec<Vec<u8>>,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for WebSocketTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTls")
            .field("certificates", &self.certificate_chain.len())
            .finish_non_exhaustive()
    }
}

impl WebSocketTls {
    /// Reads a PEM certificate chain and a PEM private key.
    ///
    /// # Errors
    /// What is wrong with each (no certificate, no key, bad PEM).
    pub fn from_pem(certificates: &[u8], key: &[u8]) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certificate_chain = CertificateDer::pem_slice_iter(certificates)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate file: {e}"))?;
        if certificate_chain.is_empty() {
            return Err("certificate file: no CERTIFICATE block".into());
        }
        let private_key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| format!("key file: {e} (a PEM PRIVATE KEY block)"))?
            .secret_der()
            .to_vec();
        Ok(WebSocketTls {
            certificate_chain,
            private_key,
        })
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            quic: true,
            upgrade_timeout: Duration::from_secs(10),
            inbound_upgrade_timeout: Duration::from_secs(5),
            // Windows large enough for a gigabit at 100 ms; memory is only
            // committed as data is in flight.
            quic_stream_window: 16 << 20,
            quic_connection_window: 32 << 20,
            // quinn's default (10 MB) caps one connection near 800 Mbit/s
            // at 100 ms; 16 MiB allows 1.3 Gbit/s there, and bounds what
            // a peer that stops acknowledging can make us hold per
            // connection.
            quic_send_window: 16 << 20,
            // The systems' 208 KiB default holds a handful of
            // segmentation-offloaded bursts: a receiver that falls behind
            // by more drops them, and the sender takes the loss for
            // congestion (docs/PERFORMANCE.md). What quic-go asks for, and
            // what `peerup doctor`'s udp.buffers check wants allowed.
            quic_socket_buffer: 7 << 20,
            quic_idle_timeout: Duration::from_secs(30),
            quic_keep_alive: Duration::from_secs(5),
            quic_path_mtu: true,
            websocket_tls: None,
            websocket_trust: Vec::new(),
        }
    }
}

/// The kernel's caps on UDP socket buffers, `net.core.rmem_max` and
/// `wmem_max` (bytes), or `None` where they cannot be read (not Linux).
/// What [`TransportOptions::quic_socket_buffer`] asks for is granted up to
/// these.
pub fn udp_buffer_limits() -> Option<(u64, u64)> {
    let read = |name: &str| {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(format!("/proc/sys/net/core/{name}"))
            .and_then(|f| f.take(64).read_to_string(&mut text))
            .ok()?;
        parse_sysctl(&text)
    };
    Some((read("rmem_max")?, read("wmem_max")?))
}

/// The largest UDP payload the local route to `addr` carries, where `addr`
/// is a loopback or private network's and the route's link is larger than
/// Ethernet (the loopback interface, jumbo frames, a cloud's VPC); `None`
/// for any other address (the internet's paths carry Ethernet's size or
/// less), for an Ethernet-sized link or smaller, or where it cannot be
/// read (not Linux). QUIC's MTU discovery searches up to it on such a
/// path (ARCHITECTURE.md, "QUIC packet size"). The route's MTU is read
/// from a UDP socket connected to `addr` (`IP_MTU`, `IPV6_MTU`) and
/// closed at once: no packet is sent, and a public address costs no
/// system call.
pub fn path_max_udp_payload(addr: std::net::SocketAddr) -> Option<u16> {
    if !peerup_core::wire::mtu::may_carry_more_than_ethernet(addr.ip()) {
        return None;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::net::{AddressFamily, SocketType};
        let ipv6 = addr.is_ipv6();
        let family = if ipv6 {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        // Connected at once, without a bind of its own (`connect` picks
        // the local address and port the route gives).
        let socket = rustix::net::socket(family, SocketType::DGRAM, None).ok()?;
        rustix::net::connect(&socket, &addr).ok()?;
        let mtu = if ipv6 {
            rustix::net::sockopt::ipv6_mtu(&socket)
        } else {
            rustix::net::sockopt::ip_mtu(&socket)
        }
        .ok()?;
        peerup_core::wire::mtu::max_udp_payload(mtu, ipv6)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = addr;
        None
    }
}

/// A sysctl file's number; `None` for anything else.
fn parse_sysctl(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A change of this machine's addresses, as a runtime's interface
/// watcher reports it ([`Runtime::watch_interfaces`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceChange {
    /// An address came up.
    Up(std::net::IpAddr),
    /// An address went away.
    Down(std::net::IpAddr),
}

/// An `if-watch` watcher's events as [`InterfaceChange`]s (for the
/// runtimes' [`Runtime::watch_interfaces`]); a watcher error is logged and
/// skipped.
pub fn interface_changes<S>(watcher: S) -> futures::stream::BoxStream<'static, InterfaceChange>
where
    S: futures::Stream<Item = io::Result<if_watch::IfEvent>> + Send + 'static,
{
    use futures::StreamExt;
    watcher
        .filter_map(|event| async move {
            match event {
                Ok(if_watch::IfEvent::Up(net)) => Some(InterfaceChange::Up(net.addr())),
                Ok(if_watch::IfEvent::Down(net)) => Some(InterfaceChange::Down(net.addr())),
                Err(e) => {
                    tracing::debug!(error = %e, "interface watcher");
                    None
                }
            }
        })
        .boxed()
}

/// The system's wall clock: [`Runtime::wall_clock`]'s default, and the
/// clock of commands that run no runtime (`peerup auth add --expires`).
pub fn system_wall_clock() -> UnixTime {
    UnixTime::from_system_time(std::time::SystemTime::now())
}

/// What a runtime provides.
pub trait Runtime: Send + Sync + 'static {
    /// A short name for logs (`tokio`, `async-std`).
    fn name(&self) -> &'static str;

    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<()>);

    /// The monotonic clock.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall clock, for facts that outlive the process (`expires=`,
    /// confirm deadlines). The default reads the system clock
    /// ([`system_wall_clock`]).
    fn wall_clock(&self) -> UnixTime {
        system_wall_clock()
    }

    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// Connects a TCP socket.
    fn tcp_connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpStream>>>;

    /// Binds a TCP listener.
    fn tcp_listen(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpListener>>>;

    /// Resolves `host:port` (a name such as `localhost`, or an address).
    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>>;

    /// This machine's address changes (an interface up or down, a new
    /// lease), for roaming (`node::roam`): the addresses present at the
    /// start come first, as `Up`. `None`, the default, where the runtime
    /// cannot watch; then a node sees only its listeners' addresses come
    /// and go, and a node that listens on nothing sees no change.
    fn watch_interfaces(&self) -> Option<futures::stream::BoxStream<'static, InterfaceChange>> {
        None
    }

    /// The node's transports (TCP with TLS or Noise and yamux, QUIC where
    /// available, DNS), without the relay client transport, which
    /// `peerup-net` adds. [`secure_tcp`] does the TCP upgrade.
    ///
    /// # Errors
    /// When a transport cannot be built (e.g. no DNS configuration).
    fn transport(
        &self,
        keypair: &Keypair,
        options: &TransportOptions,
    ) -> io::Result<BoxedTransport>;

    /// An mDNS discoverer announcing `local` (and the listen addresses the
    /// node hands it) on every non-loopback interface; `None` when the
    /// runtime has no mDNS (the default: libp2p-mdns 0.49 runs on tokio
    /// only).
    ///
    /// # Errors
    /// `Some(Err(..))` when it cannot start (no interface watcher).
    fn lan_discovery(&self, local: PeerId) -> Option<io::Result<Box<dyn crate::lan::Discoverer>>> {
        let _ = local;
        None
    }
}

impl dyn Runtime {
    /// A future that completes after `d`.
    pub fn sleep(&self, d: Duration) -> BoxFuture<()> {
        self.sleep_until(self.now() + d)
    }

    /// Runs `future` with a deadline; `None` when it passed.
    pub async fn timeout<F: Future>(&self, d: Duration, future: F) -> Option<F::Output> {
        use futures::future::{Either, select};
        let future = std::pin::pin!(future);
        match select(future, self.sleep(d)).await {
            Either::Left((out, _)) => Some(out),
            Either::Right(((), _)) => None,
        }
    }

    /// Accepts the next TCP connection.
    pub async fn accept(
        &self,
        listener: &mut dyn TcpListener,
    ) -> io::Result<(Box<dyn TcpStream>, SocketAddr)> {
        futures::future::poll_fn(|cx| listener.poll_accept(cx)).await
    }

    /// Accepts the next TCP connection, waiting out failures: out of file
    /// descriptors, accept fails at once every time, so each failure
    /// waits (`backoff`, which a success resets) instead of spinning, with
    /// a warning naming `what` listens.
    pub async fn accept_backing_off(
        &self,
        listener: &mut dyn TcpListener,
        backoff: &mut peerup_core::time::Backoff,
        what: &str,
    ) -> (Box<dyn TcpStream>, SocketAddr) {
        loop {
            match self.accept(listener).await {
                Ok(accepted) => {
                    backoff.succeed();
                    return accepted;
                }
                Err(e) => {
                    let wait = backoff.fail();
                    tracing::warn!(error = %e, retry_in = ?wait, "{what}: accept failed");
                    self.sleep(wait).await;
                }
            }
        }
    }
}

/// The yamux settings peerup uses.
pub fn yamux_config() -> libp2p::yamux::Config {
    let mut c = libp2p::yamux::Config::default();
    // Windows tune themselves (256 KiB per stream, growing with the
    // bandwidth-delay product, up to 1 GiB per connection). More streams
    // than the default 512: each proxied TCP connection is a stream.
    c.set_max_num_streams(2048);
    c
}

/// The largest WebSocket message a node accepts, in bytes, dialed or
/// accepted. A message carries what the security layer writes at once: a
/// Noise frame (at most 65,537 bytes) or TLS records (16 KiB each), from
/// rust, Go and js peers alike; 256 KiB leaves room and bounds what a
/// stranger can make a relay hold per connection before authentication
/// (libp2p's default is 256 MiB; with the patched soketto, memory grows
/// only as bytes arrive anyway).
pub const WEBSOCKET_MAX_MESSAGE: usize = 256 << 10;

/// WebSocket (WIRE.md §16): `/tcp/<port>/ws`, and `/tls/ws` (`/wss`)
/// dialed with the web's certificate authorities (webpki roots), secured
/// and multiplexed as [`secure_tcp`] does TCP. `tcp` is a raw TCP
/// transport that resolves `/dns` itself: the WebSocket layer must see
/// the host name (TLS checks the certificate against it), so no outer
/// DNS transport may resolve it first; put this transport before the
/// others in an `or_transport` chain ([`or_transport`]).
///
/// A relay with a certificate (`options.websocket_tls`) also listens on
/// `/tls/ws`; `options.websocket_trust` adds certificate authorities for
/// dials. libp2p's own Noise or TLS runs inside either way.
///
/// # Errors
/// As [`secure_tcp`].
pub fn secure_websocket<T>(
    tcp: T,
    keypair: &Keypair,
    options: &TransportOptions,
) -> io::Result<BoxedTransport>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    use libp2p::websocket::tls;
    let mut ws = libp2p::websocket::Config::new(tcp);
    ws.set_max_data_size(WEBSOCKET_MAX_MESSAGE);
    if options.websocket_tls.is_some() || !options.websocket_trust.is_empty() {
        let mut b = tls::Config::builder();
        for der in &options.websocket_trust {
            b.add_trust(&tls::Certificate::new(der.clone()))
                .map_err(io::Error::other)?;
        }
        if let Some(t) = &options.websocket_tls {
            // `tls::PrivateKey::new` panics on bytes that are no key:
            // check them first.
            rustls::pki_types::PrivateKeyDer::try_from(t.private_key.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            b.server(
                tls::PrivateKey::new(t.private_key.clone()),
                t.certificate_chain
                    .iter()
                    .cloned()
                    .map(tls::Certificate::new),
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        ws.set_tls_config(b.finish());
    }
    secure_tcp(ws, keypair, options)
}

/// `first`, then `second` for the addresses `first` does not take.
pub fn or_transport(first: BoxedTransport, second: BoxedTransport) -> BoxedTransport {
    first
        .or_transport(second)
        .map(|either, _| either.into_inner())
        .map_err(|either| match either {
            either::Either::Left(e) | either::Either::Right(e) => e,
        })
        .boxed()
}

/// Secures and multiplexes a raw transport (TCP, or the relay client's)
/// with TLS or Noise, and yamux. TLS is offered first ([`crate::tls`]:
/// AES-GCM where the CPU has AES instructions), Noise second, as the Go
/// version and every libp2p peer speak it. Dialed connections have
/// `options.upgrade_timeout` for the handshake, accepted ones the shorter
/// `options.inbound_upgrade_timeout`.
///
/// # Errors
/// When the TLS certificate or the Noise keys cannot be derived from the
/// key.
pub fn secure_tcp<T>(
    transport: T,
    keypair: &Keypair,
    options: &TransportOptions,
) -> io::Result<BoxedTransport>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    let security = crate::tls::TlsOrNoise {
        tls: crate::tls::Config::new(keypair).map_err(io::Error::other)?,
        noise: libp2p::noise::Config::new(keypair).map_err(io::Error::other)?,
    };
    use libp2p::core::transport::timeout::TransportTimeout;
    let upgraded = transport
        .upgrade(libp2p::core::upgrade::Version::V1Lazy)
        .authenticate(security)
        .multiplex(yamux_config())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let timed = TransportTimeout::with_ingoing_timeout(
        TransportTimeout::with_outgoing_timeout(upgraded, options.upgrade_timeout),
        options.inbound_upgrade_timeout,
    );
    Ok(timed.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctl_file_reads_as_its_number_and_nothing_else() {
        assert_eq!(parse_sysctl("212992\n"), Some(212_992));
        for garbage in [
            "",
            "\n",
            "-1",
            "7.5e6",
            "4194304 4194304",
            "\u{0}\u{ff}",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_sysctl(garbage), None, "{garbage:?}");
        }
    }

    /// The route to a loopback address is the loopback interface's, read
    /// from the interface itself here; a public address asks nothing.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_loopback_path_carries_what_the_loopback_link_does() {
        let lo: u32 = std::fs::read_to_string("/sys/class/net/lo/mtu")
            .expect("the loopback interface's MTU")
            .trim()
            .parse()
            .expect("a number");
        let addr: std::net::SocketAddr = "127.0.0.1:9".parse().expect("an address");
        assert_eq!(
            path_max_udp_payload(addr),
            peerup_core::wire::mtu::max_udp_payload(lo, false)
        );
        if lo > peerup_core::wire::mtu::ETHERNET_MTU {
            assert!(path_max_udp_payload(addr).is_some_and(|p| p > 1_452));
        }
        for public in ["8.8.8.8:443", "[2606:4700::1111]:443"] {
            assert_eq!(path_max_udp_payload(public.parse().unwrap()), None);
        }
    }
}
