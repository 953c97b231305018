//! `/healthz` (JSON) and `/metrics` (Prometheus text) over a minimal
//! HTTP/1.1 server on the relay's runtime, meant for 127.0.0.1.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};
use peerup_core::time::Backoff;
use peerup_net::runtime::{Runtime, TcpStream};

use crate::Relay;

/// The `/healthz` document.
pub fn healthz(relay: &Relay) -> serde_json::Value {
    let s = relay.stats();
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "status": if relay.is_running() { "ok" } else { "stopped" },
        "peer_id": relay.peer_id().to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": relay.uptime().as_secs(),
        "gating": relay.is_gating(),
        "authorized_peers": relay.authorized_count(),
        "connected_peers": g(&s.connected_peers),
        "reservations": g(&s.reservations),
        "reservations_total": g(&s.reservations_total),
        "reservations_denied": g(&s.reservations_denied),
        "active_circuits": g(&s.active_circuits),
        "circuits_total": g(&s.circuits_total),
        "circuits_denied": g(&s.circuits_denied),
        "circuits_cut": g(&s.circuits_cut),
        "denied_connections": g(&s.denied),
        "refused_connections": s.limits.total(),
        "refused_connections_per_ip": g(&s.limits.refused_per_ip),
        "expired_peers": g(&s.expired),
        "bytes_relayed": g(&s.meter.outbound),
        "bytes_received": g(&s.meter.inbound),
    })
}

/// The `/metrics` document.
pub fn metrics(relay: &Relay) -> String {
    let s = relay.stats();
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let rows: [(&str, &str, &str, u64); 15] = [
        (
            "peerup_relay_up",
            "gauge",
            "1 while the relay runs",
            u64::from(relay.is_running()),
        ),
        (
            "peerup_relay_uptime_seconds",
            "gauge",
            "seconds since start",
            relay.uptime().as_secs(),
        ),
        (
            "peerup_relay_connected_peers",
            "gauge",
            "peers connected now",
            g(&s.connected_peers),
        ),
        (
            "peerup_relay_reservations",
            "gauge",
            "reservations held now",
            g(&s.reservations),
        ),
        (
            "peerup_relay_reservations_total",
            "counter",
            "reservations accepted",
            g(&s.reservations_total),
        ),
        (
            "peerup_relay_reservations_denied_total",
            "counter",
            "reservations refused",
            g(&s.reservations_denied),
        ),
        (
            "peerup_relay_circuits",
            "gauge",
            "circuits open now",
            g(&s.active_circuits),
        ),
        (
            "peerup_relay_circuits_total",
            "counter",
            "circuits opened",
            g(&s.circuits_total),
        ),
        (
            "peerup_relay_circuits_denied_total",
            "counter",
            "circuit requests refused",
            g(&s.circuits_denied),
        ),
        (
            "peerup_relay_denied_connections_total",
            "counter",
            "connections denied by gating",
            g(&s.denied),
        ),
        (
            "peerup_relay_refused_connections_total",
            "counter",
            "inbound connections refused by a connection limit",
            s.limits.total(),
        ),
        (
            "peerup_relay_refused_connections_per_ip_total",
            "counter",
            "inbound connections refused in their handshake: too many from one IP",
            g(&s.limits.refused_per_ip),
        ),
        (
            "peerup_relay_expired_peers_total",
            "counter",
            "peers disconnected because their expires= passed",
            g(&s.expired),
        ),
        (
            "peerup_relay_sent_bytes_total",
            "counter",
            "bytes sent to peers (relayed traffic)",
            g(&s.meter.outbound),
        ),
        (
            "peerup_relay_received_bytes_total",
            "counter",
            "bytes received from peers",
            g(&s.meter.inbound),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, value) in rows {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    out
}

/// Requests answered at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 32;

/// Serves `/healthz` and `/metrics` on `addr`; returns the bound address.
/// At most 32 requests at once, each with 5 s to finish; an
/// accept error (out of descriptors) backs off instead of spinning.
///
/// # Errors
/// The bind error (address in use).
pub async fn serve(rt: Arc<dyn Runtime>, relay: Relay, addr: SocketAddr) -> io::Result<SocketAddr> {
    let mut listener = rt.tcp_listen(addr).await?;
    let local = listener.local_addr()?;
    let rt2 = rt.clone();
    let busy = Arc::new(AtomicUsize::new(0));
    rt.spawn(Box::pin(async move {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        while relay.is_running() {
            let stream = match rt2.accept(listener.as_mut()).await {
                Ok((stream, _)) => {
                    backoff.succeed();
                    stream
                }
                Err(e) => {
                    let wait = backoff.fail();
                    tracing::warn!(error = %e, retry_in = ?wait, "health endpoint: accept failed");
                    rt2.sleep(wait).await;
                    continue;
                }
            };
            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
                busy.fetch_sub(1, Ordering::AcqRel);
                drop(stream);
                continue;
            }
            let relay = relay.clone();
            let rt3 = rt2.clone();
            let busy = busy.clone();
            rt2.spawn(Box::pin(async move {
                let _ = rt3
                    .timeout(Duration::from_secs(5), answer(stream, &relay))
                    .await;
                busy.fetch_sub(1, Ordering::AcqRel);
            }));
        }
    }));
    Ok(local)
}

async fn answer(mut stream: Box<dyn TcpStream>, relay: &Relay) -> io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = match (method, path) {
        ("GET", "/healthz") => (
            "200 OK",
            "application/json",
            healthz(relay).to_string() + "\n",
        ),
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics(relay)),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /healthz or /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.close().await
}
