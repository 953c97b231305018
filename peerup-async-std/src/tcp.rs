//! A libp2p TCP transport on async-io.
//!
//! rust-libp2p 0.57's `libp2p-tcp` runs on tokio only (its `Provider` trait,
//! which async-std used to implement, is private), so this is a small
//! re-implementation of it over [`async_io::Async`]`<`[`std::net::TcpStream`]`>`,
//! with `libp2p-tcp` 0.45 as the reference for behaviour:
//!
//! - **Addresses**: `/ip4/<ip>/tcp/<port>` and `/ip6/<ip>/tcp/<port>`,
//!   optionally followed by `/p2p/<peer>` when dialing. Names (`/dns*`) are
//!   resolved by the [`dns`](crate::dns) wrapper before they get here.
//! - **Listening** on a specific address reports that address
//!   ([`TransportEvent::NewAddress`]); listening on `0.0.0.0` or `::`
//!   reports one address per interface address of that IP family, and
//!   rescans the interfaces every [`INTERFACE_RESCAN`], reporting addresses
//!   that appeared or went away (`libp2p-tcp` watches netlink instead).
//! - **Port reuse**, which DCUtR's TCP hole punch depends on: listeners set
//!   `SO_REUSEADDR` and `SO_REUSEPORT`, and every address they listen on is
//!   recorded. A dial with [`PortUse::Reuse`] (the swarm's default) binds
//!   its socket, with the same options, to the port of a listener of the
//!   same IP family and loopback-ness, so the remote (a relay, a peer)
//!   observes the listen port, identify reports it as an external address
//!   candidate, and the hole-punch dials leave from it. Without a listener,
//!   or when the bind or connect is refused (`EADDRINUSE`, `EADDRNOTAVAIL`:
//!   that 4-tuple already exists), the dial falls back to a fresh port.
//! - `TCP_NODELAY` is on for every socket.
//!
//! The output, [`TcpStream`], is the async-io socket with the futures-io
//! `AsyncRead`/`AsyncWrite` that libp2p's upgrades take, and a `close`
//! that half-closes.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_io::{Async, Timer};
use futures::future::{self, BoxFuture, Ready};
use futures::io::{AsyncRead, AsyncWrite};
use futures::stream::SelectAll;
use futures::{FutureExt, Stream, StreamExt};
use libp2p::core::multiaddr::{Multiaddr, Protocol};
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use socket2::{Domain, Socket, Type};

/// How often a listener on `0.0.0.0` / `::` looks for new or removed
/// interface addresses.
pub const INTERFACE_RESCAN: Duration = Duration::from_secs(10);

/// How long a listener pauses after an accept error (out of file
/// descriptors, say) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Backlog of listening sockets, as in `libp2p-tcp`.
const BACKLOG: i32 = 1024;

/// A TCP connection: async-io's socket, except that closing it shuts down
/// the write side (`shutdown(SHUT_WR)`, a half-close the peer reads as
/// EOF, as tokio's `shutdown` does); async-io's own `close` only flushes.
#[derive(Debug)]
pub struct TcpStream {
    inner: Async<std::net::TcpStream>,
}

impl TcpStream {
    /// Wraps a connected async-io socket.
    pub fn new(inner: Async<std::net::TcpStream>) -> Self {
        TcpStream { inner }
    }

    /// The socket.
    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.inner.get_ref()
    }

    /// The async-io socket.
    pub fn into_inner(self) -> Async<std::net::TcpStream> {
        self.inner
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
    fn poll_read_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    /// Shuts down the write side only (half-close).
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        Poll::Ready(self.inner.get_ref().shutdown(Shutdown::Write))
    }
}

/// A libp2p TCP transport on async-io with port reuse (see the [module
/// docs](self)).
pub struct Transport {
    port_reuse: PortReuse,
    listeners: SelectAll<Listener>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("listeners", &self.listeners.len())
            .field("port_reuse", &self.port_reuse.addrs())
            .finish()
    }
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport {
    /// A transport with no listener. Does no I/O.
    pub fn new() -> Self {
        Transport {
            port_reuse: PortReuse::default(),
            listeners: SelectAll::new(),
        }
    }

    fn listen(&mut self, id: ListenerId, addr: SocketAddr) -> io::Result<Listener> {
        let socket = new_socket(addr)?;
        set_reuse_port(&socket)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let listener: std::net::TcpListener = socket.into();
        let bound = listener.local_addr()?;
        let socket = Async::new_nonblocking(listener)?;
        tracing::debug!(%bound, "TCP listening");
        let mut l = Listener {
            id,
            socket,
            bound,
            rescan: None,
            announced: BTreeSet::new(),
            port_reuse: self.port_reuse.clone(),
            pending: VecDeque::new(),
            pause: None,
            closed: false,
            waker: None,
        };
        if bound.ip().is_unspecified() {
            l.rescan = Some(Timer::interval(INTERFACE_RESCAN));
            l.scan_interfaces();
        } else {
            l.announce(bound.ip());
        }
        Ok(l)
    }
}

impl libp2p::core::Transport for Transport {
    type Output = TcpStream;
    type Error = io::Error;
    type ListenerUpgrade = Ready<io::Result<TcpStream>>;
    type Dial = BoxFuture<'static, io::Result<TcpStream>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        let Some(socket_addr) = socket_addr(&addr, false) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let listener = self
            .listen(id, socket_addr)
            .map_err(TransportError::Other)?;
        self.listeners.push(listener);
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        match self.listeners.iter_mut().find(|l| l.id == id && !l.closed) {
            Some(l) => {
                l.close();
                true
            }
            None => false,
        }
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        let Some(remote) = socket_addr(&addr, true) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        // Chosen now, when the listeners are known; the connect itself
        // happens when the future is polled, as `Transport::dial` requires.
        let local = match opts.port_use {
            PortUse::Reuse => self.port_reuse.local_dial_addr(remote.ip()),
            PortUse::New => None,
        };
        Ok(dial(remote, local).boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        match self.listeners.poll_next_unpin(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(event),
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

/// Connects to `remote`, from `local` (a listen port) if given, falling
/// back to a fresh port when that local address cannot be used.
async fn dial(remote: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    if let Some(local) = local {
        match connect(remote, Some(local)).await {
            Ok(s) => {
                tracing::trace!(%remote, %local, "dialed from the listen port");
                return Ok(s);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
                ) =>
            {
                tracing::debug!(%remote, %local, error = %e, "port reuse refused, dialing from a new port");
            }
            Err(e) => return Err(e),
        }
    }
    connect(remote, None).await
}

async fn connect(remote: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let socket = new_socket(remote)?;
    if let Some(local) = local {
        set_reuse_port(&socket)?;
        socket.bind(&local.into())?;
    }
    match socket.connect(&remote.into()) {
        Ok(()) => {}
        Err(e) if is_in_progress(&e) => {}
        Err(e) => return Err(e),
    }
    let stream = Async::new_nonblocking(std::net::TcpStream::from(socket))?;
    // Writable means the handshake finished, one way or the other;
    // SO_ERROR tells which.
    stream.writable().await?;
    match stream.get_ref().take_error()? {
        Some(e) => Err(e),
        None => Ok(TcpStream::new(stream)),
    }
}

/// A non-blocking TCP socket with `SO_REUSEADDR` and `TCP_NODELAY`.
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        // `::` must not also take the IPv4 port: each family has its own
        // listener (and its own port-reuse entry).
        socket.set_only_v6(true)?;
    }
    socket.set_tcp_nodelay(true)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

#[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos")))))]
fn set_reuse_port(_: &Socket) -> io::Result<()> {
    // No SO_REUSEPORT here; SO_REUSEADDR is all there is.
    Ok(())
}

fn is_in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

/// The socket address of `/ip4|ip6/<ip>/tcp/<port>`, with a trailing
/// `/p2p/<peer>` accepted when `dialing`. Anything else (names, other
/// transports, `/p2p-circuit`) is not this transport's.
fn socket_addr(addr: &Multiaddr, dialing: bool) -> Option<SocketAddr> {
    let mut iter = addr.iter();
    let ip: IpAddr = match iter.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Tcp(port) = iter.next()? else {
        return None;
    };
    match iter.next() {
        None => {}
        Some(Protocol::P2p(_)) if dialing && iter.next().is_none() => {}
        Some(_) => return None,
    }
    Some(SocketAddr::new(ip, port))
}

fn multiaddr(addr: SocketAddr) -> Multiaddr {
    Multiaddr::empty()
        .with(addr.ip().into())
        .with(Protocol::Tcp(addr.port()))
}

/// The listen addresses a dial may bind to, shared by the transport and
/// its listeners (which unregister their addresses when they go away).
#[derive(Debug, Clone, Default)]
struct PortReuse {
    addrs: Arc<RwLock<BTreeSet<SocketAddr>>>,
}

impl PortReuse {
    fn register(&self, addr: SocketAddr) {
        self.addrs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr);
    }

    fn unregister(&self, addr: SocketAddr) {
        self.addrs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&addr);
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.addrs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// The local address for a dial to `remote`: the wildcard address of
    /// its family with the port of a listener of the same family and
    /// loopback-ness (a loopback listener's port is of no use to reach
    /// another machine, and the other way round).
    fn local_dial_addr(&self, remote: IpAddr) -> Option<SocketAddr> {
        let addrs = self.addrs.read().unwrap_or_else(PoisonError::into_inner);
        let listen = addrs.iter().find(|a| {
            a.is_ipv4() == remote.is_ipv4() && a.ip().is_loopback() == remote.is_loopback()
        })?;
        let any: IpAddr = if remote.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        Some(SocketAddr::new(any, listen.port()))
    }
}

type Event = TransportEvent<Ready<io::Result<TcpStream>>, io::Error>;

/// One listening socket, as a stream of transport events.
struct Listener {
    id: ListenerId,
    socket: Async<std::net::TcpListener>,
    /// The bound address, possibly `0.0.0.0` / `::`.
    bound: SocketAddr,
    /// For a wildcard listener: when to look at the interfaces again.
    rescan: Option<Timer>,
    /// The addresses reported with `NewAddress` and registered for port
    /// reuse (with the listener's port).
    announced: BTreeSet<IpAddr>,
    port_reuse: PortReuse,
    pending: VecDeque<Event>,
    /// Set after an accept error.
    pause: Option<Timer>,
    closed: bool,
    /// Woken by `close`, so the `ListenerClosed` event goes out.
    waker: Option<Waker>,
}

impl Listener {
    fn announce(&mut self, ip: IpAddr) {
        let addr = SocketAddr::new(ip, self.bound.port());
        if self.announced.insert(ip) {
            self.port_reuse.register(addr);
            tracing::debug!(%addr, "new TCP listen address");
            self.pending.push_back(TransportEvent::NewAddress {
                listener_id: self.id,
                listen_addr: multiaddr(addr),
            });
        }
    }

    fn expire(&mut self, ip: IpAddr) {
        let addr = SocketAddr::new(ip, self.bound.port());
        if self.announced.remove(&ip) {
            self.port_reuse.unregister(addr);
            tracing::debug!(%addr, "expired TCP listen address");
            self.pending.push_back(TransportEvent::AddressExpired {
                listener_id: self.id,
                listen_addr: multiaddr(addr),
            });
        }
    }

    /// Brings the announced addresses in line with the interfaces'
    /// addresses of the listener's IP family.
    fn scan_interfaces(&mut self) {
        let now: BTreeSet<IpAddr> = match if_addrs::get_if_addrs() {
            Ok(ifs) => ifs
                .iter()
                .map(if_addrs::Interface::ip)
                .filter(|ip| ip.is_ipv4() == self.bound.is_ipv4())
                .collect(),
            Err(error) => {
                self.pending.push_back(TransportEvent::ListenerError {
                    listener_id: self.id,
                    error,
                });
                return;
            }
        };
        let gone: Vec<IpAddr> = self.announced.difference(&now).copied().collect();
        for ip in gone {
            self.expire(ip);
        }
        for ip in now {
            self.announce(ip);
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        // No dial may take the port from now on.
        for ip in std::mem::take(&mut self.announced) {
            self.port_reuse
                .unregister(SocketAddr::new(ip, self.bound.port()));
        }
        self.pending.push_back(TransportEvent::ListenerClosed {
            listener_id: self.id,
            reason: Ok(()),
        });
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn accepted(&self, stream: std::net::TcpStream, remote: SocketAddr) -> io::Result<Event> {
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?;
        let stream = TcpStream::new(Async::new(stream)?);
        tracing::debug!(%remote, %local, "incoming TCP connection");
        Ok(TransportEvent::Incoming {
            listener_id: self.id,
            upgrade: future::ok(stream),
            local_addr: multiaddr(local),
            send_back_addr: multiaddr(remote),
        })
    }

    fn error(&mut self, error: io::Error) -> Event {
        self.pause = Some(Timer::after(ACCEPT_ERROR_PAUSE));
        TransportEvent::ListenerError {
            listener_id: self.id,
            error,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for ip in &self.announced {
            self.port_reuse
                .unregister(SocketAddr::new(*ip, self.bound.port()));
        }
    }
}

impl Stream for Listener {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let this = &mut *self;
        if let Some(event) = this.pending.pop_front() {
            return Poll::Ready(Some(event));
        }
        if this.closed {
            return Poll::Ready(None);
        }
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            this.waker = Some(cx.waker().clone());
        }
        if let Some(pause) = this.pause.as_mut() {
            if pause.poll_unpin(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        if let Some(rescan) = this.rescan.as_mut()
            && rescan.poll_next_unpin(cx).is_ready()
        {
            this.scan_interfaces();
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(event));
            }
        }
        loop {
            match this.socket.get_ref().accept() {
                Ok((stream, remote)) => {
                    let event = this
                        .accepted(stream, remote)
                        .unwrap_or_else(|e| this.error(e));
                    return Poll::Ready(Some(event));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match this.socket.poll_readable(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => return Poll::Ready(Some(this.error(e))),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Some(this.error(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use futures::future::poll_fn;
    use futures::io::{AsyncReadExt, AsyncWriteExt};
    use libp2p::core::Endpoint;
    use libp2p::core::Transport as _;

    use super::*;

    fn opts(port_use: PortUse) -> DialOpts {
        DialOpts {
            role: Endpoint::Dialer,
            port_use,
        }
    }

    async fn next_event(t: &mut Transport) -> Event {
        let deadline = Instant::now() + Duration::from_secs(10);
        futures::select! {
            e = poll_fn(|cx| Pin::new(&mut *t).poll(cx)).fuse() => e,
            _ = FutureExt::fuse(Timer::at(deadline)) => panic!("no transport event"),
        }
    }

    async fn listen(t: &mut Transport, addr: &str) -> (ListenerId, SocketAddr) {
        let id = ListenerId::next();
        t.listen_on(id, addr.parse().unwrap()).unwrap();
        let addr = next_event(t).await.into_new_address().unwrap();
        (id, socket_addr(&addr, false).unwrap())
    }

    async fn accept(t: &mut Transport) -> (TcpStream, Multiaddr) {
        loop {
            if let TransportEvent::Incoming {
                upgrade,
                send_back_addr,
                ..
            } = next_event(t).await
            {
                return (upgrade.await.unwrap(), send_back_addr);
            }
        }
    }

    #[test]
    fn parses_only_ip_tcp_addresses() {
        let ok = |s: &str, dialing| socket_addr(&s.parse().unwrap(), dialing);
        assert_eq!(
            ok("/ip4/127.0.0.1/tcp/4001", false),
            Some("127.0.0.1:4001".parse().unwrap())
        );
        assert_eq!(
            ok("/ip6/::1/tcp/4001", false),
            Some("[::1]:4001".parse().unwrap())
        );
        let p2p = "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        assert_eq!(ok(p2p, true), Some("1.2.3.4:1".parse().unwrap()));
        assert_eq!(ok(p2p, false), None);
        for no in [
            "/ip4/1.2.3.4/udp/1/quic-v1",
            "/dns4/example.com/tcp/1",
            "/ip4/1.2.3.4/tcp/1/ws",
            "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
            "/tcp/1",
        ] {
            assert_eq!(ok(no, true), None, "{no}");
        }
    }

    #[test]
    fn dial_and_listen_move_bytes_both_ways() {
        async_io::block_on(async {
            let mut server = Transport::new();
            let (_, addr) = listen(&mut server, "/ip4/127.0.0.1/tcp/0").await;
            let mut client = Transport::new();
            let dial = client.dial(multiaddr(addr), opts(PortUse::Reuse)).unwrap();
            let (mut dialed, (mut accepted, _)) =
                futures::join!(async { dial.await.unwrap() }, accept(&mut server));
            dialed.write_all(b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            accepted.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            accepted.write_all(b"pong").await.unwrap();
            dialed.close().await.unwrap();
            dialed.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"pong");
            // The half-close arrived as EOF.
            assert_eq!(accepted.read(&mut buf).await.unwrap(), 0);
            assert!(dialed.get_ref().nodelay().unwrap());
            assert!(accepted.get_ref().nodelay().unwrap());
        });
    }

    #[test]
    fn reuse_dial_leaves_from_the_listen_port() {
        async_io::block_on(async {
            let mut server = Transport::new();
            let (_, server_addr) = listen(&mut server, "/ip4/127.0.0.1/tcp/0").await;
            let mut client = Transport::new();
            let (_, client_addr) = listen(&mut client, "/ip4/127.0.0.1/tcp/0").await;

            let dial = client
                .dial(multiaddr(server_addr), opts(PortUse::Reuse))
                .unwrap();
            let (dialed, (_accepted, seen)) =
                futures::join!(async { dial.await.unwrap() }, accept(&mut server));
            // What the server observes is the client's listen port: what
            // identify reports and DCUtR punches with.
            assert_eq!(dialed.get_ref().local_addr().unwrap(), client_addr);
            assert_eq!(seen, multiaddr(client_addr));

            // The same 4-tuple cannot be made twice: falls back to a new port.
            let dial = client
                .dial(multiaddr(server_addr), opts(PortUse::Reuse))
                .unwrap();
            let (second, _) = futures::join!(async { dial.await.unwrap() }, accept(&mut server));
            assert_ne!(
                second.get_ref().local_addr().unwrap().port(),
                client_addr.port()
            );

            // PortUse::New never binds the listen port.
            let dial = client
                .dial(multiaddr(server_addr), opts(PortUse::New))
                .unwrap();
            drop(dialed);
            let (fresh, _) = futures::join!(async { dial.await.unwrap() }, accept(&mut server));
            assert_ne!(
                fresh.get_ref().local_addr().unwrap().port(),
                client_addr.port()
            );
        });
    }

    #[test]
    fn removed_listener_closes_and_frees_its_port_for_reuse() {
        async_io::block_on(async {
            let mut t = Transport::new();
            let (id, addr) = listen(&mut t, "/ip4/127.0.0.1/tcp/0").await;
            assert_eq!(t.port_reuse.addrs(), vec![addr]);
            assert!(t.remove_listener(id));
            match next_event(&mut t).await {
                TransportEvent::ListenerClosed {
                    listener_id,
                    reason: Ok(()),
                } => assert_eq!(listener_id, id),
                other => panic!("{other:?}"),
            }
            assert!(t.port_reuse.addrs().is_empty());
            assert!(!t.remove_listener(id));
        });
    }

    #[test]
    fn wildcard_listener_reports_interface_addresses() {
        async_io::block_on(async {
            let mut t = Transport::new();
            let (_, first) = listen(&mut t, "/ip4/0.0.0.0/tcp/0").await;
            assert!(first.is_ipv4() && !first.ip().is_unspecified());
            assert!(
                t.port_reuse
                    .addrs()
                    .contains(&SocketAddr::new(Ipv4Addr::LOCALHOST.into(), first.port())),
                "loopback is an interface: {:?}",
                t.port_reuse.addrs()
            );
            // Reachable through loopback.
            let dial = Transport::new()
                .dial(
                    multiaddr(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), first.port())),
                    opts(PortUse::New),
                )
                .unwrap();
            let _ = futures::join!(async { dial.await.unwrap() }, accept(&mut t));
        });
    }

    #[test]
    fn refuses_what_it_cannot_dial() {
        let mut t = Transport::new();
        for a in ["/ip4/0.0.0.0/tcp/1", "/ip4/127.0.0.1/tcp/0", "/dns/x/tcp/1"] {
            assert!(matches!(
                t.dial(a.parse().unwrap(), opts(PortUse::Reuse)),
                Err(TransportError::MultiaddrNotSupported(_))
            ));
        }
    }

    #[test]
    fn connection_refused_is_an_error() {
        async_io::block_on(async {
            // A port that was just free.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dial = Transport::new()
                .dial(
                    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
                    opts(PortUse::Reuse),
                )
                .unwrap();
            assert!(dial.await.is_err());
        });
    }
}
