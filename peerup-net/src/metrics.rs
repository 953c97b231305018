//! A node's metrics: libp2p's own (swarm, identify, DCUtR, Kademlia,
//! ping, through `libp2p-metrics`) and peerup's, in one
//! `prometheus_client` registry per node (docs/METRICS.md lists them all).
//!
//! The driver records every swarm and behaviour event here; the service,
//! proxy and invite code update peerup's families where things happen.
//! Labels stay few: a connection path, a result, a deny reason (a fixed
//! set), a service name (exposed services and the services of configured
//! forwards and proxies), a relay (configured relays only). A remote peer
//! is never a label, except a relay.
//!
//! [`crate::http`] serves the registry; [`crate::Node::encode_metrics`]
//! encodes it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use peerup_core::authz::DenyReason;
use peerup_core::wire::ConnectionPath;

/// `path="direct"|"relayed"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    /// The connection's path.
    pub path: &'static str,
}

/// `result="success"|"failure"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// How it went.
    pub result: &'static str,
}

/// An inbound stream's decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    /// `service` for a service stream, `ping` for ping-pong.
    pub kind: &'static str,
    /// The service's name (empty for ping-pong).
    pub service: String,
    /// `accepted` or `denied`.
    pub decision: &'static str,
    /// Why it was denied (see [`deny_reason`]); empty when accepted.
    pub reason: &'static str,
}

/// A proxied connection's service and direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyBytesLabels {
    /// The service (ours for an inbound connection, the peer's for an
    /// outbound one).
    pub service: String,
    /// `inbound` (a peer uses our service) or `outbound` (we use a
    /// peer's).
    pub side: &'static str,
    /// `sent` (local TCP to the peer) or `received` (peer to local TCP).
    pub direction: &'static str,
}

/// A proxied connection's service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    /// As in [`ProxyBytesLabels`].
    pub service: String,
    /// As in [`ProxyBytesLabels`].
    pub side: &'static str,
}

/// An invite's role and result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InviteLabels {
    /// `inviter` (`peerup invite`) or `joiner` (`peerup join`).
    pub role: &'static str,
    /// `paired`, `failed`, `expired`, `burned`, `cancelled` or `stopped`.
    pub result: &'static str,
}

/// `role="inviter"|"joiner"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// As in [`InviteLabels`].
    pub role: &'static str,
}

/// `relay=<peer id>`: a configured relay.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RelayLabel {
    /// The relay's peer ID.
    pub relay: String,
}

/// The `result` of an inviter's invite.
pub const INVITER_RESULTS: [&str; 6] = [
    "paired",
    "failed",
    "expired",
    "burned",
    "cancelled",
    "stopped",
];
/// The `result` of a joiner's invite.
pub const JOINER_RESULTS: [&str; 2] = ["paired", "failed"];

/// peerup's node metrics (the families docs/METRICS.md documents), plus
/// libp2p's recorder. Clones share the counters.
#[derive(Clone)]
pub struct NodeMetrics {
    /// libp2p's recorder (`libp2p_*` families).
    pub libp2p: std::sync::Arc<libp2p::metrics::Metrics>,
    /// `peerup_connections{path}`.
    pub connections: Family<PathLabel, Gauge>,
    /// `peerup_hole_punches_total{result}`.
    pub hole_punches: Family<ResultLabel, Counter>,
    /// `peerup_streams_total{kind,service,decision,reason}`.
    pub streams: Family<StreamLabels, Counter>,
    /// `peerup_proxy_bytes_total{service,side,direction}`.
    pub proxy_bytes: Family<ProxyBytesLabels, Counter>,
    /// `peerup_proxies{service,side}`.
    pub proxies: Family<ProxyLabels, Gauge>,
    /// `peerup_invite_attempts_total{role}`.
    pub invite_attempts: Family<RoleLabel, Counter>,
    /// `peerup_invites_total{role,result}`.
    pub invites: Family<InviteLabels, Counter>,
    /// `peerup_relay_reserved{relay}`.
    pub relay_reserved: Family<RelayLabel, Gauge>,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl NodeMetrics {
    /// Registers every family in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let libp2p = std::sync::Arc::new(libp2p::metrics::Metrics::new(registry));
        let m = NodeMetrics {
            libp2p,
            connections: register(
                registry,
                "peerup_connections",
                "Open connections to peers, by path (direct or relayed)",
            ),
            hole_punches: register(
                registry,
                "peerup_hole_punches",
                "Hole punches (DCUtR) finished, by result",
            ),
            streams: register(
                registry,
                "peerup_streams",
                "Inbound streams accepted or denied, by kind, service and deny reason",
            ),
            proxy_bytes: register(
                registry,
                "peerup_proxy_bytes",
                "Bytes copied by proxied connections, by service, side and direction",
            ),
            proxies: register(
                registry,
                "peerup_proxies",
                "Proxied connections open now, by service and side",
            ),
            invite_attempts: register(
                registry,
                "peerup_invite_attempts",
                "Invite handshakes begun (an inviter counts each joiner's stream)",
            ),
            invites: register(
                registry,
                "peerup_invites",
                "Invites finished, by role and result",
            ),
            relay_reserved: register(
                registry,
                "peerup_relay_reserved",
                "1 while a reservation is held on the relay, else 0 (configured relays)",
            ),
        };
        // Every series that is a fixed set starts at 0, so a dashboard
        // sees it before the first event.
        for path in ["direct", "relayed"] {
            let _ = m.connections.get_or_create(&PathLabel { path });
        }
        for result in ["success", "failure"] {
            let _ = m.hole_punches.get_or_create(&ResultLabel { result });
        }
        for role in ["inviter", "joiner"] {
            let _ = m.invite_attempts.get_or_create(&RoleLabel { role });
        }
        for (role, results) in [
            ("inviter", INVITER_RESULTS.as_slice()),
            ("joiner", JOINER_RESULTS.as_slice()),
        ] {
            for &result in results {
                let _ = m.invites.get_or_create(&InviteLabels { role, result });
            }
        }
        m
    }

    /// The connection gauge of `path`.
    pub fn connections_on(&self, path: ConnectionPath) -> Gauge {
        self.connections
            .get_or_create(&PathLabel {
                path: path_label(path),
            })
            .clone()
    }

    /// Counts an inbound stream's decision: `None` accepted, else why not.
    pub fn stream(&self, kind: &'static str, service: &str, denied: Option<&DenyReason>) {
        self.streams
            .get_or_create(&StreamLabels {
                kind,
                service: service.to_owned(),
                decision: if denied.is_some() {
                    "denied"
                } else {
                    "accepted"
                },
                reason: denied.map_or("", deny_reason),
            })
            .inc();
    }

    /// The byte counters (sent, received) and the open gauge of a proxied
    /// connection.
    pub fn proxy(&self, service: &str, inbound: bool) -> (Counter, Counter, Gauge) {
        let side = if inbound { "inbound" } else { "outbound" };
        let bytes = |direction| {
            self.proxy_bytes
                .get_or_create(&ProxyBytesLabels {
                    service: service.to_owned(),
                    side,
                    direction,
                })
                .clone()
        };
        let open = self
            .proxies
            .get_or_create(&ProxyLabels {
                service: service.to_owned(),
                side,
            })
            .clone();
        (bytes("sent"), bytes("received"), open)
    }

    /// Counts a hole punch that finished.
    pub fn hole_punch(&self, succeeded: bool) {
        let result = if succeeded { "success" } else { "failure" };
        self.hole_punches
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// Counts an invite handshake begun, as `role` (inviter or joiner).
    pub fn invite_attempt(&self, role: &'static str) {
        self.invite_attempts
            .get_or_create(&RoleLabel { role })
            .inc();
    }

    /// Counts an invite's result.
    pub fn invite(&self, role: &'static str, result: &'static str) {
        self.invites
            .get_or_create(&InviteLabels { role, result })
            .inc();
    }

    /// Sets a relay's reservation state.
    pub fn set_reserved(&self, relay: &libp2p::PeerId, reserved: bool) {
        self.relay_reserved
            .get_or_create(&RelayLabel {
                relay: relay.to_string(),
            })
            .set(i64::from(reserved));
    }
}

/// A new metric, registered in `registry` under `name`.
fn register<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: prometheus_client::registry::Metric + Default + Clone,
{
    let m = M::default();
    registry.register(name, help, m.clone());
    m
}

/// A node's `/healthz` document: `status` (`ok` while the node runs),
/// `peer_id`, `listen_addresses`, `connected_peers`, `relays` (configured
/// and reserved), `reserved_relays`, `services`, `open_proxies`.
pub fn healthz(node: &crate::Node) -> serde_json::Value {
    // Counted under the state's lock: no copy of the whole status.
    let (listen, peers, reserved, services, proxies) = node.inner().snapshot(|s| {
        (
            s.listen_addrs.len(),
            s.peers.len(),
            s.relays.values().filter(|r| r.reserved).count(),
            s.services.len(),
            s.proxies.len(),
        )
    });
    serde_json::json!({
        "status": if node.is_running() { "ok" } else { "stopped" },
        "peer_id": node.peer_id().to_string(),
        "listen_addresses": listen,
        "connected_peers": peers,
        "relays": node.options().relays.len(),
        "reserved_relays": reserved,
        "services": services,
        "open_proxies": proxies,
    })
}

/// What a node's metrics server answers: `/metrics` and `/healthz`.
struct NodeRoutes(crate::Node);

impl crate::http::Routes for NodeRoutes {
    fn get(&self, path: &str) -> Option<crate::http::Reply> {
        match path {
            "/metrics" => Some(crate::http::Reply::metrics(self.0.metrics_registry())),
            "/healthz" => Some(crate::http::Reply::json(&healthz(&self.0))),
            _ => None,
        }
    }

    fn is_serving(&self) -> bool {
        self.0.is_running()
    }
}

/// Serves the node's `/metrics` (OpenMetrics) and `/healthz` (JSON) on
/// `addr`, within [`crate::http`]'s bounds, until the node stops or the
/// server is stopped. Whether `addr` may be remote is the caller's
/// decision (the config's `metrics.allow_remote`).
///
/// # Errors
/// The bind error (address in use, not an address of this machine).
pub async fn serve(
    node: &crate::Node,
    addr: std::net::SocketAddr,
) -> std::io::Result<crate::http::Server> {
    crate::http::serve(
        node.runtime(),
        addr,
        std::sync::Arc::new(NodeRoutes(node.clone())),
    )
    .await
}

/// The `path` label of a connection path.
pub fn path_label(path: ConnectionPath) -> &'static str {
    match path {
        ConnectionPath::Direct => "direct",
        ConnectionPath::Relayed => "relayed",
    }
}

/// The `reason` label of a denial: one of a fixed set.
pub fn deny_reason(reason: &DenyReason) -> &'static str {
    match reason {
        DenyReason::NotListed => "not_listed",
        DenyReason::Expired { .. } => "expired",
        DenyReason::InvalidEntry { .. } => "invalid_entry",
        DenyReason::UnknownService { .. } => "unknown_service",
        DenyReason::ServiceDisabled { .. } => "service_disabled",
        DenyReason::NotAllowedForService { .. } => "not_allowed_for_service",
        DenyReason::NoPairing => "no_pairing",
        DenyReason::PairingOnly { .. } => "pairing_only",
        _ => "other",
    }
}

/// Whether libp2p-metrics may record this swarm event. Not
/// `NewExternalAddrCandidate`: libp2p-metrics labels it with the
/// candidate's protocol stack, and identify makes a candidate of every
/// `observed_addr` a connected peer pushes, so a peer could add series
/// (memory that is never freed) without end.
pub fn record_swarm_event<T>(event: &libp2p::swarm::SwarmEvent<T>) -> bool {
    !matches!(
        event,
        libp2p::swarm::SwarmEvent::NewExternalAddrCandidate { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_series_exist_before_any_event() {
        let mut registry = Registry::default();
        let _m = NodeMetrics::new(&mut registry);
        let text = crate::http::encode(&registry);
        for line in [
            "peerup_connections{path=\"direct\"} 0",
            "peerup_connections{path=\"relayed\"} 0",
            "peerup_hole_punches_total{result=\"failure\"} 0",
            "peerup_invite_attempts_total{role=\"joiner\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
    }

    #[test]
    fn deny_reasons_are_labelled_without_data() {
        let m = NodeMetrics::new(&mut Registry::default());
        m.stream(
            "service",
            "ssh",
            Some(&DenyReason::NotAllowedForService {
                service: "ssh".into(),
            }),
        );
        m.stream("service", "ssh", None);
        let get = |decision, reason| {
            m.streams
                .get_or_create(&StreamLabels {
                    kind: "service",
                    service: "ssh".into(),
                    decision,
                    reason,
                })
                .get()
        };
        assert_eq!(get("denied", "not_allowed_for_service"), 1);
        assert_eq!(get("accepted", ""), 1);
    }
}
