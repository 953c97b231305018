//! [`peerup_net::Runtime`] on async-std and async-io.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use libp2p::core::Transport as _;
use libp2p::identity::Keypair;
use peerup_net::runtime::{
    BoxFuture, BoxedTransport, InterfaceChange, Runtime, TcpListener, TcpStream, TransportOptions,
    interface_changes, or_transport, secure_tcp, secure_websocket,
};

use crate::tcp::TcpStream as AsyncStdTcp;
use crate::{dns, tcp};

type Spawner = Arc<dyn Fn(BoxFuture<()>) + Send + Sync>;

/// The async-std runtime: tasks on async-std's executor, async-io timers
/// and sockets, this crate's TCP transport (with port reuse) and DNS
/// resolution. No QUIC: that transport exists for tokio only in
/// rust-libp2p 0.57.
#[derive(Clone, Default)]
pub struct AsyncStdRuntime {
    /// `None`: `async_std::task::spawn`.
    spawner: Option<Spawner>,
}

impl fmt::Debug for AsyncStdRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncStdRuntime")
            .field("custom_spawner", &self.spawner.is_some())
            .finish()
    }
}

impl AsyncStdRuntime {
    /// Spawns on async-std's global executor, which needs no runtime
    /// context: this works from any thread, inside or outside async-std.
    pub fn new() -> Self {
        AsyncStdRuntime { spawner: None }
    }

    /// Spawns with `spawn` instead, e.g. on smol:
    /// `AsyncStdRuntime::with_spawner(|f| smol::spawn(f).detach())`.
    /// Timers and sockets are async-io's either way.
    pub fn with_spawner(spawn: impl Fn(BoxFuture<()>) + Send + Sync + 'static) -> Self {
        AsyncStdRuntime {
            spawner: Some(Arc::new(spawn)),
        }
    }
}

impl TcpStream for AsyncStdTcp {
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.get_ref().set_nodelay(on)
    }
    fn set_abort_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(self.get_ref()).set_linger(Some(Duration::ZERO))
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().local_addr()
    }
}

struct AsyncStdListener(Async<std::net::TcpListener>);

impl TcpListener for AsyncStdListener {
    fn poll_accept(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(Box<dyn TcpStream>, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, addr)) => {
                    let stream = Async::new(stream)?;
                    return Poll::Ready(Ok((Box::new(AsyncStdTcp::new(stream)), addr)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    futures::ready!(self.0.poll_readable(cx))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }
}

impl Runtime for AsyncStdRuntime {
    fn name(&self) -> &'static str {
        "async-std"
    }

    fn spawn(&self, future: BoxFuture<()>) {
        match &self.spawner {
            Some(spawn) => spawn(future),
            // Detached: the handle is dropped, the task runs on.
            None => drop(async_std::task::spawn(future)),
        }
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            Timer::at(deadline).await;
        })
    }

    fn tcp_connect(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpStream>>> {
        Box::pin(async move {
            let s = Async::<std::net::TcpStream>::connect(addr).await?;
            Ok(Box::new(AsyncStdTcp::new(s)) as Box<dyn TcpStream>)
        })
    }

    fn tcp_listen(&self, addr: SocketAddr) -> BoxFuture<io::Result<Box<dyn TcpListener>>> {
        Box::pin(async move {
            let l = Async::<std::net::TcpListener>::bind(addr)?;
            Ok(Box::new(AsyncStdListener(l)) as Box<dyn TcpListener>)
        })
    }

    fn resolve(&self, host: String, port: u16) -> BoxFuture<io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            use async_std::net::ToSocketAddrs;
            Ok((host.as_str(), port).to_socket_addrs().await?.collect())
        })
    }

    /// TCP (this crate's transport, with port reuse) with TLS or Noise and yamux,
    /// behind name resolution. `options.quic` is ignored: there is no QUIC
    /// transport off tokio.
    fn watch_interfaces(&self) -> Option<futures::stream::BoxStream<'static, InterfaceChange>> {
        match if_watch::smol::IfWatcher::new() {
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
        if options.quic {
            tracing::debug!("QUIC is tokio-only in rust-libp2p 0.57: TCP only on async-std");
        }
        let tcp = secure_tcp(tcp::Transport::new(), keypair, options)?;
        // WebSocket first: it takes only `/ws` addresses, and resolves
        // their host names itself (`secure_websocket`).
        let ws = secure_websocket(dns::Transport::new(tcp::Transport::new()), keypair, options)?;
        Ok(or_transport(ws, dns::Transport::new(tcp).boxed()))
    }
}

#[cfg(test)]
mod tests {
    use futures::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn rt() -> Arc<dyn Runtime> {
        Arc::new(AsyncStdRuntime::new())
    }

    #[async_std::test]
    async fn sockets_connect_accept_and_half_close() {
        let rt = rt();
        let mut l = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (mut c, (mut s, from)) =
            futures::join!(async { rt.tcp_connect(addr).await.unwrap() }, async {
                rt.accept(l.as_mut()).await.unwrap()
            });
        assert_eq!(from, c.local_addr().unwrap());
        assert_eq!(s.peer_addr().unwrap(), c.local_addr().unwrap());
        c.set_nodelay(true).unwrap();
        c.write_all(b"abc").await.unwrap();
        c.close().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"abc");
        // The write side of `s` is still open after the client's EOF.
        s.write_all(b"back").await.unwrap();
        drop(s);
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"back");
    }

    #[async_std::test]
    async fn abort_on_close_resets_the_peer() {
        let rt = rt();
        let mut l = rt.tcp_listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let (mut c, (s, _)) =
            futures::join!(async { rt.tcp_connect(addr).await.unwrap() }, async {
                rt.accept(l.as_mut()).await.unwrap()
            });
        s.set_abort_on_close().unwrap();
        drop(s);
        let mut buf = [0u8; 8];
        let e = c.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    #[async_std::test]
    async fn timers_and_resolution() {
        let rt = rt();
        let start = Instant::now();
        rt.sleep(Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(
            rt.timeout(Duration::from_millis(10), futures::future::pending::<()>())
                .await,
            None
        );
        let addrs = rt.resolve("localhost".into(), 80).await.unwrap();
        assert!(addrs.iter().any(|a| a.ip().is_loopback() && a.port() == 80));
        assert_eq!(
            rt.resolve("::1".into(), 22).await.unwrap(),
            vec!["[::1]:22".parse().unwrap()]
        );
    }

    #[test]
    fn custom_spawner_is_used() {
        let (tx, rx) = std::sync::mpsc::channel();
        let rt = AsyncStdRuntime::with_spawner(move |f| {
            tx.send(()).unwrap();
            std::thread::spawn(move || async_io::block_on(f));
        });
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        rt.spawn(Box::pin(async move {
            done_tx.send(()).unwrap();
        }));
        rx.recv().unwrap();
        done_rx.recv().unwrap();
        assert_eq!(rt.name(), "async-std");
    }
}
