//! `/healthz` (JSON) and `/metrics` (OpenMetrics text), served by
//! `peerup_net::http` (hyper) on the relay's runtime, meant for 127.0.0.1.
//!
//! `/metrics` encodes the relay's one registry
//! ([`Relay::metrics_registry`]): libp2p's families (`libp2p_*`, recorded
//! by the relay's event loop) and the relay's own `peerup_relay_*`, which
//! [`StatsCollector`] reads from [`RelayStats`] at each scrape, so every
//! count is kept once (docs/METRICS.md lists them).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use peerup_net::http::{self, Reply, Routes};
use peerup_net::runtime::Runtime;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::Relay;
use crate::server::RelayStats;

/// The `/healthz` document.
pub fn healthz(relay: &Relay) -> serde_json::Value {
    let s = relay.stats();
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
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

/// The `/metrics` document (OpenMetrics text, ending in `# EOF`).
pub fn metrics(relay: &Relay) -> String {
    http::encode(relay.metrics_registry())
}

/// The `peerup_relay_*` families, read from [`RelayStats`] when the
/// registry is encoded.
pub struct StatsCollector {
    stats: Arc<RelayStats>,
    started: Instant,
    running: Box<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for StatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsCollector").finish_non_exhaustive()
    }
}

impl StatsCollector {
    /// Reads `stats`; `running` says whether the relay runs.
    pub(crate) fn new(
        stats: Arc<RelayStats>,
        started: Instant,
        running: impl Fn() -> bool + Send + Sync + 'static,
    ) -> Self {
        StatsCollector {
            stats,
            started,
            running: Box::new(running),
        }
    }
}

/// A `peerup_relay_*` family: its name (a counter's without `_total`,
/// which the encoder adds), help, and value.
enum Row {
    Gauge(&'static str, &'static str, u64),
    Counter(&'static str, &'static str, u64),
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows = [
            Row::Gauge(
                "peerup_relay_up",
                "1 while the relay runs",
                u64::from((self.running)()),
            ),
            Row::Gauge(
                "peerup_relay_uptime_seconds",
                "seconds since start",
                self.started.elapsed().as_secs(),
            ),
            Row::Gauge(
                "peerup_relay_connected_peers",
                "peers connected now",
                g(&s.connected_peers),
            ),
            Row::Gauge(
                "peerup_relay_reservations",
                "reservations held now",
                g(&s.reservations),
            ),
            // `peerup_relay_reservations_total` until OpenMetrics: a
            // counter's family takes its name without `_total`, which the
            // gauge above holds.
            Row::Counter(
                "peerup_relay_reservations_accepted",
                "reservations accepted (renewals excluded)",
                g(&s.reservations_total),
            ),
            Row::Counter(
                "peerup_relay_reservations_denied",
                "reservations refused",
                g(&s.reservations_denied),
            ),
            Row::Gauge(
                "peerup_relay_circuits",
                "circuits open now",
                g(&s.active_circuits),
            ),
            // `peerup_relay_circuits_total` before, as above.
            Row::Counter(
                "peerup_relay_circuits_opened",
                "circuits opened",
                g(&s.circuits_total),
            ),
            Row::Counter(
                "peerup_relay_circuits_denied",
                "circuit requests refused",
                g(&s.circuits_denied),
            ),
            Row::Counter(
                "peerup_relay_circuits_cut",
                "circuits cut by a limit or an error",
                g(&s.circuits_cut),
            ),
            Row::Counter(
                "peerup_relay_denied_connections",
                "connections denied by gating",
                g(&s.denied),
            ),
            Row::Counter(
                "peerup_relay_refused_connections",
                "inbound connections refused by a connection limit",
                s.limits.total(),
            ),
            Row::Counter(
                "peerup_relay_refused_connections_per_ip",
                "inbound connections refused in their handshake: too many from one IP",
                g(&s.limits.refused_per_ip),
            ),
            Row::Counter(
                "peerup_relay_expired_peers",
                "peers disconnected because their expires= passed",
                g(&s.expired),
            ),
            Row::Counter(
                "peerup_relay_paired",
                "machines that joined with a pairing code",
                g(&s.paired),
            ),
            Row::Counter(
                "peerup_relay_pairing_failed",
                "pairing attempts refused",
                g(&s.pairing_failed),
            ),
            Row::Counter(
                "peerup_relay_sent_bytes",
                "bytes sent to peers (relayed traffic)",
                g(&s.meter.outbound),
            ),
            Row::Counter(
                "peerup_relay_received_bytes",
                "bytes received from peers",
                g(&s.meter.inbound),
            ),
        ];
        for row in rows {
            match row {
                Row::Gauge(name, help, v) => {
                    let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)?;
                }
                Row::Counter(name, help, v) => {
                    let m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    ConstCounter::new(v).encode(m)?;
                }
            }
        }
        Ok(())
    }
}

/// What the relay's health server answers.
struct RelayRoutes(Relay);

impl Routes for RelayRoutes {
    fn get(&self, path: &str) -> Option<Reply> {
        match path {
            "/healthz" => Some(Reply::json(&healthz(&self.0))),
            "/metrics" => Some(Reply::metrics(self.0.metrics_registry())),
            _ => None,
        }
    }

    fn is_serving(&self) -> bool {
        self.0.is_running()
    }
}

/// Serves `/healthz` and `/metrics` on `addr` until the relay stops;
/// returns the bound address. The bounds are `peerup_net::http`'s: 32
/// connections at once, 5 s each, 8 KiB of request head.
///
/// # Errors
/// The bind error (address in use).
pub async fn serve(rt: Arc<dyn Runtime>, relay: Relay, addr: SocketAddr) -> io::Result<SocketAddr> {
    let server = http::serve(rt, addr, Arc::new(RelayRoutes(relay))).await?;
    Ok(server.local_addr())
}
