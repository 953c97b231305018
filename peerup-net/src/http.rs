//! The small HTTP server behind `/healthz` and `/metrics`, shared by the
//! relay and the daemon.
//!
//! hyper's HTTP/1.1 server ([`hyper::server::conn::http1`]) does the
//! protocol; this module gives it the runtime's TCP streams through [`Io`],
//! an adapter from futures-io `AsyncRead`/`AsyncWrite` to
//! [`hyper::rt::Read`]/[`hyper::rt::Write`], and bounds every connection:
//!
//! - at most [`MAX_CLIENTS`] connections are served at once; one more is
//!   closed at once (the listen backlog holds the rest of a burst);
//! - each connection has [`DEADLINE`] to send its request and read the
//!   answer, after which it is dropped (the runtime's timeout, so hyper
//!   needs no timer of its own);
//! - a request head larger than [`MAX_REQUEST`] is answered
//!   `431 Request Header Fields Too Large` and the connection closed;
//! - one request per connection (no keep-alive); a request body is never
//!   read.
//!
//! What is served comes from a [`Routes`]: `GET` of a path it knows is
//! answered `200`, of any other path `404`, any other method `405`.
//!
//! The metrics themselves live in one `prometheus_client` registry per
//! process ([`crate::metrics`] for a node, the relay's own for a relay);
//! [`Reply::metrics`] encodes one as OpenMetrics text.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{AbortHandle, Abortable};
use futures::io::{AsyncRead, AsyncWrite};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use peerup_core::time::Backoff;
use prometheus_client::registry::Registry;

use crate::limits::Slot;
use crate::runtime::{Runtime, TcpStream};

/// Connections served at once; one more is closed at once.
pub const MAX_CLIENTS: usize = 32;
/// Time a connection has to send its request and read the answer.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read, in bytes
/// (hyper's smallest buffer limit).
pub const MAX_REQUEST: usize = 8192;

/// The content type of `/metrics`.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A `200` answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its body.
    pub body: Bytes,
}

impl Reply {
    /// A JSON document (a newline is added).
    pub fn json(value: &serde_json::Value) -> Self {
        Reply {
            content_type: "application/json",
            body: Bytes::from(value.to_string() + "\n"),
        }
    }

    /// The registry's metrics as OpenMetrics text (ending in `# EOF`).
    pub fn metrics(registry: &Registry) -> Self {
        Reply {
            content_type: OPENMETRICS,
            body: Bytes::from(encode(registry)),
        }
    }
}

/// The registry's metrics as OpenMetrics text (ending in `# EOF`).
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        // Only a `fmt::Write` error, which a String never returns.
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}

/// What a server answers.
pub trait Routes: Send + Sync + 'static {
    /// The answer to `GET path` (the path without its query), or `None`
    /// for `404`.
    fn get(&self, path: &str) -> Option<Reply>;

    /// Whether to go on accepting connections (checked after each
    /// accept); default always.
    fn is_serving(&self) -> bool {
        true
    }
}

/// A running server. Dropping it leaves the server running; [`Server::stop`]
/// stops accepting (connections being answered finish within
/// [`DEADLINE`]).
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: AbortHandle,
}

impl Server {
    /// The bound address (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and closes the listener.
    pub fn stop(&self) {
        self.stop.abort();
    }
}

/// Serves `routes` over HTTP/1.1 on `addr`, within the bounds in the
/// module docs. An accept error (out of descriptors) backs off, 10 ms
/// doubling to 1 s, instead of spinning.
///
/// # Errors
/// The bind error (address in use, not an address of this machine).
pub async fn serve(
    rt: Arc<dyn Runtime>,
    addr: SocketAddr,
    routes: Arc<dyn Routes>,
) -> io::Result<Server> {
    let mut listener = rt.tcp_listen(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, registration) = AbortHandle::new_pair();
    let busy = Arc::new(AtomicUsize::new(0));
    let rt2 = rt.clone();
    let accept_loop = async move {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        while routes.is_serving() {
            let (stream, _) = rt2
                .accept_backing_off(listener.as_mut(), &mut backoff, "health endpoint")
                .await;
            // (One accept task: nothing takes a slot between the check
            // and the take.)
            if busy.load(Ordering::Acquire) >= MAX_CLIENTS {
                tracing::debug!(%local_addr, "health endpoint: too many clients; closing one");
                drop(stream);
                continue;
            }
            let routes = routes.clone();
            let rt3 = rt2.clone();
            // Released however the task ends (a panic included).
            let slot = Slot::take(&busy);
            let loopback = local_addr.ip().is_loopback();
            rt2.spawn(Box::pin(async move {
                let _slot = slot;
                if rt3
                    .timeout(DEADLINE, answer(stream, routes, loopback))
                    .await
                    .is_none()
                {
                    tracing::debug!("health endpoint: client too slow; closed");
                }
            }));
        }
    };
    rt.spawn(Box::pin(async move {
        let _ = Abortable::new(accept_loop, registration).await;
    }));
    Ok(Server { local_addr, stop })
}

/// Whether a `Host` header may reach a server bound to loopback: an IP
/// address (any port) or `localhost`. A web page the user visits can make
/// the browser send requests to 127.0.0.1 under its own name (DNS
/// rebinding); such a request carries that name, and is refused.
pub fn loopback_host_allowed(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [v6] or [v6]:port
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok() || name.eq_ignore_ascii_case("localhost")
}

/// Answers one request on `stream`; on a `loopback` server, only for a
/// `Host` that [`loopback_host_allowed`].
async fn answer(stream: Box<dyn TcpStream>, routes: Arc<dyn Routes>, loopback: bool) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok());
        let response = if loopback && !host.is_some_and(loopback_host_allowed) {
            let mut r = Response::new(Full::new(Bytes::from_static(
                b"this endpoint answers requests for 127.0.0.1, [::1] or localhost only\n",
            )));
            *r.status_mut() = StatusCode::FORBIDDEN;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        } else {
            respond(&*routes, req.method(), req.uri().path())
        };
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST)
        .serve_connection(Io::new(stream), service);
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "health endpoint: bad request");
    }
}

/// The answer to `method path`.
fn respond(routes: &dyn Routes, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body) = if method != Method::GET {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"GET only\n"),
        )
    } else {
        match routes.get(path) {
            Some(reply) => (StatusCode::OK, reply.content_type, reply.body),
            None => (
                StatusCode::NOT_FOUND,
                "text/plain",
                Bytes::from_static(b"try /healthz or /metrics\n"),
            ),
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

/// A futures-io stream as hyper's I/O: [`hyper::rt::Read`] and
/// [`hyper::rt::Write`] over `AsyncRead` and `AsyncWrite`.
///
/// Reads go through a small buffer of initialized bytes: filling hyper's
/// uninitialized buffer directly would take `unsafe`, which this crate
/// denies, and these answers are a few kilobytes.
#[derive(Debug)]
pub struct Io<S> {
    inner: S,
}

impl<S> Io<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Io { inner }
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The most read at once.
const READ_CHUNK: usize = 4096;

impl<S: AsyncRead + Unpin> hyper::rt::Read for Io<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        match Pin::new(&mut self.inner).poll_read(cx, &mut chunk[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&chunk[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> hyper::rt::Write for Io<S> {
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
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Routes for Fixed {
        fn get(&self, path: &str) -> Option<Reply> {
            (path == "/healthz").then(|| Reply::json(&serde_json::json!({"status": "ok"})))
        }
    }

    #[test]
    fn answers_by_method_and_path() {
        let ok = respond(&Fixed, &Method::GET, "/healthz");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(
            respond(&Fixed, &Method::GET, "/nope").status(),
            StatusCode::NOT_FOUND
        );
        let post = respond(&Fixed, &Method::POST, "/healthz");
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[hyper::header::ALLOW], "GET");
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9091",
            "[::1]",
            "[::1]:80",
            "localhost",
            "LocalHost:1",
        ] {
            assert!(loopback_host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9091",
            "127.0.0.1.nip.io",
            "localhost.evil",
            "[evil]",
            "",
            "::1",
        ] {
            assert!(!loopback_host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn metrics_are_openmetrics() {
        let mut registry = Registry::default();
        let c = prometheus_client::metrics::counter::Counter::<u64>::default();
        registry.register("peerup_test", "a test counter", c.clone());
        c.inc();
        let text = encode(&registry);
        assert!(text.contains("peerup_test_total 1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
