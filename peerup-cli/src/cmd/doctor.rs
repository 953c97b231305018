//! `peerup doctor`: what works and what does not, each failure with its
//! fix (issue 19). See docs/DOCTOR.md for every check.
//!
//! Order: files (config, identity key, authorized_keys, relay addresses),
//! the daemon, the UDP buffer sysctls, then the network on a short-lived
//! node of the command's own: each relay address dialed on its own
//! connection (connect time, libp2p ping round trip, the address it
//! observes us at), a reservation on each relay, the NAT's mapping
//! behaviour from those observations (`peerup_core::nat`), UPnP and
//! NAT-PMP on the default gateway, and, for a named peer, a connection
//! and its path. Everything after the files runs within `--timeout`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use futures::StreamExt;
use peerup_core::config::Config;
use peerup_core::multiaddr::Protocol;
use peerup_core::nat::{self, NatBehaviour, Observation};
use peerup_core::relay_addr::{RelayAddr, TransportKind};
use peerup_core::{Multiaddr, PeerId};
use peerup_net::fs::{FsError, LockMode};
use peerup_net::node::{
    ConnectError, Event, NodeOptions, PingError, Probe, ProbeError, Unreachable,
};
use peerup_tokio::Node;
use serde_json::{Value, json};

use crate::Global;
use crate::control::{self, Reply, Request};

/// Longest wait for one relay address or one reservation.
const STEP_LIMIT: Duration = Duration::from_secs(5);
/// How to give the NAT check the two observers it needs.
const NAT_FIX: &str = "list a relay at two QUIC addresses (two relays, or a second UDP port of one relay): `peerup relay add /ip4/<ip>/udp/<port>/quic-v1/p2p/<relay-id>` (docs/DOCTOR.md, NAT behaviour)";
/// Why TCP observations are not compared (see [`observation`]).
const TCP_NOT_COMPARED: &str = "not compared: a TCP dial's source port is not known (the transport may not reuse the listening port); QUIC addresses decide";
/// Longest wait for a DCUtR upgrade of a relayed peer connection.
const UPGRADE_WAIT: Duration = Duration::from_secs(5);

#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Also check this peer (a name from the config, or a peer ID): can it
    /// be reached, over which path, and why not.
    peer: Option<String>,
    /// Print one JSON document ({checks, nat, relays, peer}).
    #[arg(long)]
    json: bool,
    /// Bound on the network checks (relays, NAT, UPnP, the peer).
    #[arg(long, default_value = "15s", value_parser = super::invite::duration_arg)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }

    fn json(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

struct Check {
    id: String,
    status: Status,
    detail: String,
    fix: Option<String>,
}

/// `text` with control characters escaped: details quote what relays,
/// peers and gateways sent (an observed address, a close reason), and a
/// terminal escape sequence in them could rewrite the report on screen.
fn printable(text: String) -> String {
    if !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[derive(Default)]
struct Report {
    checks: Vec<Check>,
    json: bool,
}

impl Report {
    fn add(
        &mut self,
        id: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        let c = Check {
            id: id.into(),
            status,
            detail: printable(detail.into()),
            fix: fix.map(printable),
        };
        if !self.json {
            println!("{:<4}  {:<22} {}", c.status.text(), c.id, c.detail);
            if let Some(f) = &c.fix {
                println!("      {:<22} fix: {f}", "");
            }
        }
        self.checks.push(c);
    }

    fn ok(&mut self, id: impl Into<String>, detail: impl Into<String>) {
        self.add(id, Status::Ok, detail, None);
    }

    fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// Splits an error text of the form `<what> - fix with: <command>`.
fn split_fix(text: &str) -> (String, Option<String>) {
    match text.split_once(" - fix with: ") {
        Some((d, f)) => (d.to_owned(), Some(f.to_owned())),
        None => match text.split_once(" - move the file") {
            Some((d, f)) => (d.to_owned(), Some(format!("move the file{f}"))),
            None => (text.to_owned(), None),
        },
    }
}

fn fs_check(r: &mut Report, id: &str, e: &FsError) {
    let (detail, fix) = split_fix(&e.to_string());
    r.add(id, Status::Fail, detail, fix);
}

pub(crate) async fn run(global: &Global, args: DoctorArgs) -> Result<ExitCode> {
    let mut r = Report {
        json: args.json,
        ..Report::default()
    };
    let mut doc = serde_json::Map::new();
    let config = files(global, &mut r);
    let mut relays_json = Vec::new();
    let mut nat_json = Value::Null;
    let mut peer_json = Value::Null;
    let mut upnp_json = Value::Null;
    buffers(&mut r);
    if let Some((path, config)) = config {
        let deadline = Instant::now() + args.timeout;
        let daemon = daemon_status(&mut r, &path).await;
        let net = network(
            &mut r,
            &path,
            &config,
            daemon.as_ref(),
            args.peer.as_deref(),
            deadline,
        )
        .await;
        relays_json = net.relays;
        nat_json = net.nat;
        peer_json = net.peer;
        upnp_json = net.upnp;
        doc.insert("peer_id".into(), json!(net.us.map(|p| p.to_string())));
        doc.insert("config".into(), json!(path.display().to_string()));
    } else {
        r.add(
            "network",
            Status::Skip,
            "not checked: the config does not load",
            Some("fix the config first (see above)".into()),
        );
    }
    let failed = r.failed();
    if args.json {
        doc.insert(
            "checks".into(),
            Value::Array(
                r.checks
                    .iter()
                    .map(|c| json!({"id": c.id, "status": c.status.json(), "detail": c.detail, "fix": c.fix}))
                    .collect(),
            ),
        );
        doc.insert("nat".into(), nat_json);
        doc.insert("relays".into(), Value::Array(relays_json));
        doc.insert("peer".into(), peer_json);
        doc.insert("gateway".into(), upnp_json);
        doc.insert("ok".into(), json!(!failed));
        println!("{}", serde_json::to_string_pretty(&Value::Object(doc))?);
    } else {
        let (fails, warns) = r.checks.iter().fold((0, 0), |(f, w), c| match c.status {
            Status::Fail => (f + 1, w),
            Status::Warn => (f, w + 1),
            _ => (f, w),
        });
        println!(
            "\n{} check(s): {fails} failed, {warns} warning(s){}",
            r.checks.len(),
            if fails == 0 {
                ""
            } else {
                " - see the fixes above"
            }
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ------------------------------------------------------------- files

/// The config, identity key, authorized_keys and relay address checks;
/// the config when it loads.
fn files(global: &Global, r: &mut Report) -> Option<(std::path::PathBuf, Config)> {
    let path = match crate::context::find(global) {
        Ok(p) => p,
        Err(e) => {
            r.add(
                "config",
                Status::Fail,
                format!("{e:#}"),
                Some("create one with `peerup init`, or name it with --config <path>".into()),
            );
            return None;
        }
    };
    let bytes = match peerup_net::fs::read_private(&path) {
        Ok(b) => b,
        Err(e) => {
            fs_check(r, "config", &e);
            return None;
        }
    };
    let Ok(text) = String::from_utf8(bytes) else {
        r.add(
            "config",
            Status::Fail,
            format!("{}: not UTF-8 text", path.display()),
            Some(format!("edit {} (it must be YAML text)", path.display())),
        );
        return None;
    };
    let config = match Config::parse(&path, &text) {
        Ok((c, warnings)) => {
            r.ok("config", format!("{} loads", path.display()));
            for w in warnings {
                r.add(
                    "config.warning",
                    Status::Warn,
                    w.to_string(),
                    Some(format!("edit {}", path.display())),
                );
            }
            c
        }
        Err(e) => {
            r.add(
                "config",
                Status::Fail,
                e.to_string(),
                Some(format!(
                    "edit {} at the field named; `peerup config validate` checks it again",
                    path.display()
                )),
            );
            return None;
        }
    };
    let key = config.key_file_path(&path);
    match peerup_net::fs::read_private(&key) {
        Ok(b) => match peerup_core::identity::decode(&b) {
            Ok(k) => r.ok("identity", format!("{} ({}), mode and owner fine", key.display(), k.public().to_peer_id())),
            Err(e) => r.add("identity", Status::Fail, format!("{}: {e}", key.display()), Some("restore the key from a backup, or move it away and run `peerup init` (a new identity: peers must authorize it again)".into())),
        },
        Err(e) if e.is_not_found() => r.add("identity", Status::Warn, format!("{} does not exist yet", key.display()), Some("run `peerup init` (or `peerup daemon` creates it)".into())),
        Err(e) => fs_check(r, "identity", &e),
    }
    let ak = config.authorized_keys_path(&path);
    let gating = config.security.enable_connection_gating;
    match peerup_net::fs::read_private(&ak) {
        Ok(b) => match peerup_net::node::parse_authorized_keys(&ak, &b) {
            Ok(d) => {
                let n = d.entries().count();
                if n == 0 {
                    r.add("authorized_keys", Status::Warn, format!("{}: no peer authorized: nobody can connect", ak.display()), Some("pair with `peerup invite` / `peerup join`, or `peerup auth add <peer-id>`".into()));
                } else {
                    r.ok(
                        "authorized_keys",
                        format!("{}: {n} peer(s), every line valid", ak.display()),
                    );
                }
            }
            Err(e) => r.add(
                "authorized_keys",
                Status::Fail,
                e.to_string(),
                Some(format!(
                    "edit {} at the line named, or remove it with `peerup auth remove`",
                    ak.display()
                )),
            ),
        },
        Err(e) if e.is_not_found() && gating => r.add(
            "authorized_keys",
            Status::Fail,
            format!(
                "{}: missing, and connection gating is on: the daemon refuses to start",
                ak.display()
            ),
            Some("create it with `peerup auth add <peer-id>` or pair with `peerup invite`".into()),
        ),
        Err(e) if e.is_not_found() => r.add(
            "authorized_keys",
            Status::Warn,
            format!(
                "{}: missing (gating is off: any peer may connect)",
                ak.display()
            ),
            None,
        ),
        Err(e) => fs_check(r, "authorized_keys", &e),
    }
    if !gating {
        r.add(
            "gating",
            Status::Warn,
            "connection gating is DISABLED: any peer can connect",
            Some(format!(
                "set security.enable_connection_gating: true in {}",
                path.display()
            )),
        );
    }
    if config.relay.addresses.is_empty() {
        r.add(
            "relay.addresses",
            Status::Fail,
            "no relay address configured: peers behind NAT cannot reach this machine",
            Some("peerup relay add <relay-multiaddr>".into()),
        );
    } else {
        let list: Vec<String> = config
            .relay
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect();
        r.ok(
            "relay.addresses",
            format!("{} valid: {}", list.len(), list.join(", ")),
        );
    }
    Some((path, config))
}

/// The UDP receive and send buffer limits QUIC wants.
fn buffers(r: &mut Report) {
    // What peerup's QUIC sockets ask for (7 MiB, as quic-go).
    let want = u64::try_from(peerup_net::runtime::TransportOptions::default().quic_socket_buffer)
        .unwrap_or(u64::MAX);
    match peerup_net::runtime::udp_buffer_limits() {
        Some((rm, wm)) if rm >= want && wm >= want => {
            r.ok("udp.buffers", format!("net.core.rmem_max={rm}, wmem_max={wm}"));
        }
        Some((rm, wm)) => r.add(
            "udp.buffers",
            Status::Warn,
            format!("net.core.rmem_max={rm}, wmem_max={wm}: below the {want} bytes QUIC asks for (QUIC throughput suffers)"),
            Some("sudo sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000; to keep it, put `net.core.rmem_max=7500000` and `net.core.wmem_max=7500000` in /etc/sysctl.d/60-peerup.conf".into()),
        ),
        _ => r.add("udp.buffers", Status::Skip, "cannot read /proc/sys/net/core/rmem_max (not Linux?)", None),
    }
}

/// Whether a daemon answers on the control socket; its status document.
async fn daemon_status(r: &mut Report, path: &Path) -> Option<Value> {
    let socket = crate::context::control_socket(path);
    let answer = tokio::time::timeout(Duration::from_secs(3), async {
        let mut c = control::connect(&socket, &Request::Status).await?;
        if let Some(c) = c.as_mut() {
            while let Some(reply) = c.next().await? {
                if let Reply::Status { status } = reply {
                    return Ok::<_, anyhow::Error>(Some(status));
                }
            }
        }
        Ok(None)
    })
    .await;
    match answer {
        Ok(Ok(Some(s))) => {
            r.ok(
                "daemon",
                format!(
                    "running (control socket {}), up {} s",
                    socket.display(),
                    s["uptime_seconds"]
                ),
            );
            Some(s)
        }
        Ok(Ok(None)) => {
            r.add("daemon", Status::Warn, format!("not running (no answer on {}): this machine is not reachable by its peers", socket.display()), Some("start it: `peerup daemon`, or `sudo systemctl enable --now peerup` (configs/peerup.service)".into()));
            None
        }
        Ok(Err(e)) => {
            r.add(
                "daemon",
                Status::Fail,
                format!("{e:#}"),
                Some("run doctor as the daemon's user".into()),
            );
            None
        }
        Err(_) => {
            r.add(
                "daemon",
                Status::Fail,
                format!(
                    "{} accepts but does not answer within 3 s: the daemon is stuck",
                    socket.display()
                ),
                Some("see its log (`journalctl -u peerup`) and restart it".into()),
            );
            None
        }
    }
}

// ------------------------------------------------------------- network

#[derive(Default)]
struct Net {
    us: Option<PeerId>,
    relays: Vec<Value>,
    nat: Value,
    peer: Value,
    upnp: Value,
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The doctor's node: the config's settings (relays, DHT, gating,
/// authorized_keys, names, ping-pong, limits) with its identity, listening
/// on ephemeral TCP and QUIC ports (the NAT check compares connections
/// from one socket), no services, no mDNS, no reservation of its own (the
/// doctor asks for one explicitly), and no file to write to (an
/// introduction stays in memory). Holds the identity's exclusive lock
/// when it can (nothing else runs with it): then it may test a
/// reservation.
fn doctor_node_options(path: &Path, config: &Config) -> Result<(NodeOptions, Result<(), String>)> {
    let key = config.key_file_path(path);
    // Read only: the doctor writes nothing (a missing key is the
    // identity check's FAIL, with `peerup init` as the fix).
    let keypair = peerup_net::fs::load_identity(&key)?;
    let lock = peerup_net::fs::lock_identity_as(&key, LockMode::Exclusive);
    let mut o = NodeOptions::from_config_with(config, path, keypair)?.with_reservations(false);
    o.listen = super::one_shot_listen(config);
    o.mdns = false;
    o.authorized_keys_path = None;
    o.config_path = None;
    o.authorized_keys_fingerprint = None;
    let lock = match lock {
        Ok(l) => {
            o.identity_lock = Some(Arc::new(l));
            Ok(())
        }
        Err(FsError::IdentityInUse { holder, .. }) => {
            Err(holder.unwrap_or_else(|| "another process".into()))
        }
        Err(e) => return Err(e.into()),
    };
    Ok((o, lock))
}

async fn network(
    r: &mut Report,
    path: &Path,
    config: &Config,
    daemon: Option<&Value>,
    peer: Option<&str>,
    deadline: Instant,
) -> Net {
    let mut net = Net::default();
    let gateway = tokio::spawn(gateway_checks(
        remaining(deadline).min(Duration::from_secs(3)),
    ));
    let (options, lock) = match doctor_node_options(path, config) {
        Ok(x) => x,
        Err(e) => {
            // A file check above has said why (and its fix) already; a
            // key not made yet is not made here (the doctor writes
            // nothing).
            if r.failed() || !config.key_file_path(path).exists() {
                r.add(
                    "network",
                    Status::Skip,
                    format!(
                        "relays, NAT and peer not checked: {}",
                        split_fix(&format!("{e:#}")).0
                    ),
                    Some(
                        "fix the files above first (`peerup init` makes a missing identity)".into(),
                    ),
                );
            } else {
                let (detail, fix) = split_fix(&format!("cannot start a node: {e:#}"));
                r.add("node", Status::Fail, detail, fix);
            }
            net.upnp = finish_gateway(r, gateway).await;
            return net;
        }
    };
    let node = match Node::start(options).await {
        Ok(n) => n,
        Err(e) => {
            r.add(
                "node",
                Status::Fail,
                format!("cannot start a node: {}", peerup_net::error::chain(&e)),
                Some(
                    "the error names what failed; the doctor listens on a free TCP and UDP port, so check that this user may open sockets (ulimit -n, a sandbox)".into(),
                ),
            );
            net.upnp = finish_gateway(r, gateway).await;
            return net;
        }
    };
    net.us = Some(node.peer_id());
    let pb = (!r.json).then(|| crate::ui::spinner("Checking the relays..."));
    // Every relay address at once, each on its own connection.
    let probes = futures::future::join_all(config.relay.addresses.iter().map(|a| {
        let node = node.clone();
        let limit = remaining(deadline).min(STEP_LIMIT);
        async move {
            (
                a.clone(),
                node.net().probe(a.multiaddr().clone(), limit).await,
            )
        }
    }))
    .await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let local = node.listen_addrs();
    let mut observations = Vec::new();
    // The relays reached at one address at least.
    let reached: BTreeSet<PeerId> = probes
        .iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(addr, _)| addr.peer_id())
        .collect();
    for (addr, result) in &probes {
        let kind = addr.transport_kind();
        let id = format!("relay.{kind}");
        let reachable_at_all = reached.contains(&addr.peer_id());
        match result {
            Ok(p) => {
                r.ok(id, probe_text(addr, p));
                if let Some(o) = observation(addr, p, &local) {
                    observations.push(o);
                }
            }
            Err(e) => {
                let (detail, fix) = probe_failure(addr, e, node.peer_id());
                // One address of a relay failing while another works: the
                // relay is usable, the address is not.
                let status = if reachable_at_all && !matches!(e, ProbeError::ClosedAtOnce { .. }) {
                    Status::Warn
                } else {
                    Status::Fail
                };
                r.add(id, status, detail, Some(fix));
            }
        }
        net.relays.push(json!({
            "address": addr.to_string(),
            "peer_id": addr.peer_id().to_string(),
            "transport": kind.to_string(),
            "reachable": result.is_ok(),
            "connect_ms": result.as_ref().ok().map(|p| ms(p.connect_time)),
            "rtt_ms": result.as_ref().ok().and_then(|p| p.rtt).map(ms),
            "rtt_method": "libp2p ping on this connection",
            "observed": result.as_ref().ok().and_then(|p| p.observed.as_ref()).map(ToString::to_string),
            "agent": result.as_ref().ok().map(|p| p.agent.clone()),
            "error": result.as_ref().err().map(|e| e.to_string()),
        }));
    }
    reservations(
        r,
        &node,
        config,
        daemon,
        &lock,
        &reached,
        &mut net.relays,
        deadline,
    )
    .await;
    net.nat = nat_check(r, &observations);
    net.upnp = finish_gateway(r, gateway).await;
    if let Some(target) = peer {
        net.peer = peer_check(r, &node, config, target, deadline).await;
    }
    for (_, p) in probes {
        if let Ok(p) = p {
            node.close_connection(p.connection);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), node.shutdown()).await;
    net
}

fn probe_text(addr: &RelayAddr, p: &Probe) -> String {
    let rtt = p.rtt.map_or("no ping answer".to_owned(), |d| {
        format!("ping rtt {:.1} ms", ms(d))
    });
    let seen = p
        .observed
        .as_ref()
        .map_or(String::new(), |o| format!(", sees us at {o}"));
    format!(
        "{addr}: reachable over {}: connected in {:.1} ms, {rtt}{seen}",
        addr.transport_kind(),
        ms(p.connect_time)
    )
}

fn port_of(addr: &RelayAddr) -> String {
    addr.multiaddr()
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(p) => Some(format!("TCP port {p}")),
            Protocol::Udp(p) => Some(format!("UDP port {p}")),
            _ => None,
        })
        .unwrap_or_else(|| "its port".into())
}

fn probe_failure(addr: &RelayAddr, e: &ProbeError, us: PeerId) -> (String, String) {
    let kind = addr.transport_kind();
    match e {
        ProbeError::ClosedAtOnce { .. } => (
            format!(
                "{addr}: the relay closed the connection right after the handshake: most likely this machine ({us}) is not in its relay_authorized_keys (or the relay allows fewer connections per peer than this machine now holds)"
            ),
            format!(
                "ask the relay's operator to run `peerup-relay authorize {us}`, or join with a relay pairing code: `peerup join <code>`; if it is authorized, the operator can raise the relay's connection limit per peer"
            ),
        ),
        ProbeError::Timeout(d) => (
            format!("{addr}: no answer over {kind} within {} s", d.as_secs_f64()),
            format!(
                "is the relay running, and is {} open in every firewall on the way (try `nc -vz{} <host> <port>`)?",
                port_of(addr),
                if kind == TransportKind::Quic { "u" } else { "" }
            ),
        ),
        other => (
            format!("{addr}: unreachable over {kind}: {other}"),
            format!(
                "is the relay running and listening on this address, and is {} open in every firewall on the way?",
                port_of(addr)
            ),
        ),
    }
}

/// A QUIC probe's observation, with our side of its connection: the
/// listening UDP socket, which every QUIC dial leaves from. TCP probes
/// give none: a TCP dial leaves from the listening port only when the
/// transport reuses it, and on a loopback test it did not (two relay
/// ports saw two source ports with no NAT at all), so comparing them
/// would call any NAT symmetric.
fn observation(addr: &RelayAddr, p: &Probe, local: &[Multiaddr]) -> Option<Observation> {
    let observed = p.observed.as_ref()?;
    let (transport, dest) = nat::socket_of(addr.multiaddr())?;
    if transport != nat::Transport::Udp {
        return None;
    }
    // The listening socket of the destination's family (a dial to the
    // other family leaves from another socket).
    let local = local.iter().find(|l| {
        !l.iter().any(|p| matches!(p, Protocol::P2pCircuit))
            && nat::socket_of(l)
                .is_some_and(|(t, a)| t == transport && a.is_ipv4() == dest.is_ipv4())
    })?;
    Observation::from_multiaddrs(addr.to_string(), addr.multiaddr(), local, observed)
}

#[allow(clippy::too_many_arguments)]
async fn reservations(
    r: &mut Report,
    node: &Node,
    config: &Config,
    daemon: Option<&Value>,
    lock: &Result<(), String>,
    reached: &BTreeSet<PeerId>,
    relays_json: &mut [Value],
    deadline: Instant,
) {
    // One check per relay (a reservation is per relay, not per address).
    let mut seen = Vec::new();
    for addr in &config.relay.addresses {
        let relay = addr.peer_id();
        if seen.contains(&relay) {
            continue;
        }
        seen.push(relay);
        let id = "relay.reservation";
        let reachable = reached.contains(&relay);
        let outcome: Value;
        if let Some(status) = daemon {
            // The daemon holds the identity and its reservations: ask it.
            let st = status["relays"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|x| x["peer_id"] == relay.to_string());
            match st {
                Some(s) if s["reserved"] == true => {
                    r.ok(
                        id,
                        format!(
                            "relay {relay}: the daemon holds a reservation ({})",
                            s["circuit_address"].as_str().unwrap_or("-")
                        ),
                    );
                    outcome = json!({"held": true, "by": "daemon", "circuit_address": s["circuit_address"], "error": null});
                }
                Some(s) => {
                    let err = s["error"].as_str().unwrap_or("connecting").to_owned();
                    r.add(
                        id,
                        Status::Fail,
                        format!("relay {relay}: the daemon holds no reservation: {err}"),
                        Some(reservation_fix(&err, node.peer_id())),
                    );
                    outcome = json!({"held": false, "by": "daemon", "error": err});
                }
                None => {
                    r.add(id, Status::Warn, format!("relay {relay}: the running daemon does not use it (started before it was added?)"), Some("restart the daemon: `sudo systemctl restart peerup`".into()));
                    outcome = json!({"held": false, "by": "daemon", "error": "not in the daemon's relays"});
                }
            }
        } else if let Err(holder) = lock {
            r.add(id, Status::Skip, format!("relay {relay}: not tested: the identity is in use by {holder} (a reservation here would take over its own)"), None);
            outcome = json!({"held": null, "error": format!("identity in use by {holder}")});
        } else if !reachable {
            r.add(
                id,
                Status::Skip,
                format!("relay {relay}: not tested: no address of it answered (see above)"),
                None,
            );
            outcome = json!({"held": null, "error": "relay unreachable"});
        } else {
            match node
                .net()
                .reserve_on(addr, remaining(deadline).min(STEP_LIMIT))
                .await
            {
                Ok(circuit) => {
                    r.ok(id, format!("relay {relay}: reservation accepted: peers reach this machine at {circuit}"));
                    outcome = json!({"held": true, "by": "doctor", "circuit_address": circuit.to_string(), "error": null});
                }
                Err(e) => {
                    let err = e.to_string();
                    r.add(
                        id,
                        Status::Fail,
                        format!("relay {relay}: reservation refused: {err}"),
                        Some(reservation_fix(&err, node.peer_id())),
                    );
                    outcome = json!({"held": false, "by": "doctor", "error": err});
                }
            }
        }
        for v in relays_json
            .iter_mut()
            .filter(|v| v["peer_id"] == relay.to_string())
        {
            v["reservation"] = outcome.clone();
        }
    }
}

fn reservation_fix(error: &str, us: PeerId) -> String {
    let e = error.to_ascii_lowercase();
    if e.contains("permission")
        || e.contains("denied")
        || e.contains("closed")
        || e.contains("authoriz")
    {
        format!(
            "this machine is not authorized on the relay: ask its operator to run `peerup-relay authorize {us}`, or use relay pairing (`peerup join <code>`)"
        )
    } else if e.contains("limit") || e.contains("resource") {
        "the relay is full (its reservation limits): ask its operator to raise relay limits in relay-server.yaml".into()
    } else {
        "see the relay checks above; `peerup daemon -v` logs the reservation attempts".into()
    }
}

fn nat_check(r: &mut Report, observations: &[Observation]) -> Value {
    let report = nat::classify(observations);
    let compared = |v: &nat::Verdict| -> Vec<Value> {
        v.compared
            .iter()
            .map(|(o, d, s)| json!({"observer": o, "destination": d.to_string(), "observed": s.to_string()}))
            .collect()
    };
    let what = |v: &nat::Verdict| -> String {
        let list: Vec<String> = v
            .compared
            .iter()
            .map(|(_, d, s)| format!("{d} saw {s}"))
            .collect();
        if list.is_empty() {
            String::new()
        } else {
            format!(" [{} compared: {}]", v.transport, list.join("; "))
        }
    };
    let detail = if observations.is_empty() {
        "unknown: no QUIC relay address answered (only QUIC ones are compared: all QUIC dials leave from one UDP socket)".to_owned()
    } else {
        format!("{}{}", report.udp.behaviour, what(&report.udp))
    };
    match &report.udp.behaviour {
        NatBehaviour::NoNat { .. } | NatBehaviour::EndpointIndependent { .. } => r.ok("nat", detail.clone()),
        NatBehaviour::EndpointDependent { .. } => r.add(
            "nat",
            Status::Warn,
            detail.clone(),
            Some("connections stay relayed (they work, through the relay's bandwidth); for direct ones: enable UPnP/NAT-PMP on the router, forward a port to this machine and list it in network.listen_addresses, or use a network without symmetric NAT".into()),
        ),
        NatBehaviour::Unknown(_) => r.add("nat", Status::Warn, detail.clone(), Some(NAT_FIX.to_owned())),
    }
    json!({
        "behaviour": report.udp.behaviour.kind(),
        "detail": detail,
        "udp": {"behaviour": report.udp.behaviour.kind(), "detail": report.udp.behaviour.to_string(), "compared": compared(&report.udp)},
        "tcp": {"behaviour": "unknown", "detail": TCP_NOT_COMPARED, "compared": []},
    })
}

// ------------------------------------------------------------- the peer

async fn peer_check(
    r: &mut Report,
    node: &Node,
    config: &Config,
    target: &str,
    deadline: Instant,
) -> Value {
    let peer = match config.names.resolve(target) {
        Ok(p) => p,
        Err(e) => {
            r.add(
                "peer",
                Status::Fail,
                e.to_string(),
                Some(
                    "use a name from `names:` in the config (see `peerup auth list`) or a peer ID"
                        .into(),
                ),
            );
            return json!({"target": target, "reachable": false, "error": e.to_string()});
        }
    };
    let label = if target == peer.to_string() {
        target.to_owned()
    } else {
        format!("{target} ({peer})")
    };
    if !node.is_authorized(&peer) {
        r.add(
            "peer.authorized",
            Status::Fail,
            format!(
                "{label} is not in this machine's authorized_keys: its connections are refused here"
            ),
            Some(if target == peer.to_string() {
                format!("peerup auth add {peer}")
            } else {
                format!("peerup auth add {peer} --comment {target}")
            }),
        );
    } else {
        r.ok("peer.authorized", format!("{label} is in authorized_keys"));
    }
    let pb = (!r.json).then(|| crate::ui::spinner(&format!("Connecting to {target}...")));
    let mut events = node.events();
    let connected = tokio::time::timeout(remaining(deadline), node.connect(peer)).await;
    let mut out = json!({"target": target, "peer_id": peer.to_string(), "error": null});
    let path = match connected {
        Ok(Ok(path)) => path,
        Ok(Err(e)) => {
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            let (detail, fix) = connect_failure(target, &e);
            r.add("peer.reachable", Status::Fail, detail.clone(), Some(fix));
            out["reachable"] = json!(false);
            out["error"] = json!(detail);
            return out;
        }
        Err(_) => {
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            let detail = format!("{target}: no connection within the doctor's --timeout");
            r.add("peer.reachable", Status::Fail, detail.clone(), Some(format!("is `peerup daemon` running on {target}? a longer --timeout tells a slow path from none")));
            out["reachable"] = json!(false);
            out["error"] = json!(detail);
            return out;
        }
    };
    // A connection is not yet an answer: a peer's gate lets the
    // handshake finish and closes the connection at once. Its ping-pong
    // answer is (WIRE.md §3).
    let ping = tokio::time::timeout(
        remaining(deadline).max(Duration::from_secs(2)),
        node.ping(peer),
    )
    .await;
    let rtt_ms = match ping {
        Ok(Ok(p)) => Some(ms(p.rtt)),
        Ok(Err(PingError::Unsupported(_))) => None,
        refused => {
            if let Some(pb) = pb {
                pb.finish_and_clear();
            }
            let why = match refused {
                Ok(Err(e)) => e.to_string(),
                _ => "no ping-pong answer within the doctor's --timeout".to_owned(),
            };
            let us = node.peer_id();
            let detail = format!(
                "{target}: a {path} connection opened, then {why}: {target} does not accept this machine"
            );
            r.add(
                "peer.reachable",
                Status::Fail,
                detail.clone(),
                Some(format!("on {target}, authorize this machine: `peerup auth add {us}`, or pair again with `peerup invite` / `peerup join`")),
            );
            out["reachable"] = json!(false);
            out["path"] = json!(path.to_string());
            out["error"] = json!(detail);
            return out;
        }
    };
    let mut path_now = node.path(peer).unwrap_or(path).to_string();
    let mut upgraded = false;
    if path_now != "DIRECT" {
        if let Some(pb) = &pb {
            pb.set_message(format!("Connected to {target} through a relay; waiting for a direct connection (hole punch)..."));
        }
        let wait = remaining(deadline).min(UPGRADE_WAIT);
        upgraded = tokio::time::timeout(wait, async {
            while let Some(e) = events.next().await {
                if matches!(e, Event::Upgraded { peer: p } if p == peer) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
            || node.path(peer) == Some(peerup_core::wire::ConnectionPath::Direct);
        if upgraded {
            path_now = "DIRECT".into();
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let rtt_text = rtt_ms.map_or("no ping-pong answer (disabled on it)".to_owned(), |m| {
        format!("ping-pong rtt {m:.1} ms")
    });
    if path_now == "DIRECT" {
        r.ok(
            "peer.reachable",
            format!(
                "{target}: connected DIRECT{}, {rtt_text}",
                if upgraded {
                    " (hole punched from a relayed connection)"
                } else {
                    ""
                }
            ),
        );
    } else {
        r.add(
            "peer.reachable",
            Status::Warn,
            format!("{target}: connected RELAYED, {rtt_text}; no direct connection within {} s (hole punch failed or still trying)", UPGRADE_WAIT.as_secs()),
            Some("it works through the relay; see the nat check above: an endpoint-dependent (symmetric) NAT on either side keeps it relayed".into()),
        );
    }
    out["reachable"] = json!(true);
    out["path"] = json!(path_now);
    out["upgraded"] = json!(upgraded);
    out["rtt_ms"] = json!(rtt_ms);
    out
}

fn connect_failure(target: &str, e: &ConnectError) -> (String, String) {
    let text = peerup_net::error::chain(e);
    let fix = match e {
        ConnectError::Unreachable {
            reason: Unreachable::RelayRefused { us, .. },
            ..
        } => format!(
            "this machine is not authorized on the relay: ask its operator to run `peerup-relay authorize {us}`"
        ),
        ConnectError::Unreachable {
            reason: Unreachable::ClosedAtOnce,
            ..
        } => format!(
            "{target} refuses this machine: on {target}, run `peerup auth add <this machine's peer ID: peerup whoami>`, or pair again with `peerup invite`/`peerup join`"
        ),
        ConnectError::Unreachable {
            reason: Unreachable::NoRelay,
            ..
        } => "no relay answered: see the relay checks above".into(),
        _ if text.contains("NO_RESERVATION")
            || text.contains("NoReservation")
            || text.contains("no reservation") =>
        {
            format!(
                "{target} holds no reservation on the relay: is `peerup daemon` running on {target}, with the same relay?"
            )
        }
        _ => format!("is `peerup daemon` running on {target}, and does it use the same relay?"),
    };
    (format!("{target}: unreachable: {text}"), fix)
}

// ------------------------------------------------------------- gateway

struct Gateway {
    upnp: Result<String, String>,
    natpmp: Result<String, String>,
    gateway: Option<Ipv4Addr>,
}

async fn gateway_checks(limit: Duration) -> Gateway {
    let gateway = default_gateway();
    let upnp = tokio::task::spawn_blocking(move || {
        let opts = igd_next::SearchOptions {
            timeout: Some(limit),
            single_search_timeout: Some(limit),
            ..Default::default()
        };
        match igd_next::search_gateway(opts) {
            Ok(g) => Ok(match g.get_external_ip() {
                Ok(ip) => format!("UPnP IGD at {} (external address {ip})", g.addr),
                Err(_) => format!("UPnP IGD at {}", g.addr),
            }),
            // A read timeout is the search's "nobody answered".
            Err(igd_next::SearchError::IoError(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(format!(
                    "no answer to the SSDP search within {} s",
                    limit.as_secs_f64()
                ))
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let natpmp = tokio::task::spawn_blocking(move || natpmp(gateway, limit));
    let upnp = tokio::time::timeout(limit + Duration::from_secs(1), upnp).await;
    let natpmp = tokio::time::timeout(limit + Duration::from_secs(1), natpmp).await;
    Gateway {
        upnp: match upnp {
            Ok(Ok(x)) => x,
            _ => Err(format!("no answer within {} s", limit.as_secs_f64())),
        },
        natpmp: match natpmp {
            Ok(Ok(x)) => x,
            _ => Err(format!("no answer within {} s", limit.as_secs_f64())),
        },
        gateway,
    }
}

async fn finish_gateway(r: &mut Report, task: tokio::task::JoinHandle<Gateway>) -> Value {
    let Ok(g) = task.await else {
        return Value::Null;
    };
    let fix = || {
        Some("not required (relays work without it); for direct connections through a strict NAT, enable UPnP or NAT-PMP on the router".to_owned())
    };
    match &g.upnp {
        Ok(d) => r.ok("gateway.upnp", format!("available: {d}")),
        Err(e) => r.add(
            "gateway.upnp",
            Status::Warn,
            format!("no UPnP gateway found: {e}"),
            fix(),
        ),
    }
    match &g.natpmp {
        Ok(d) => r.ok("gateway.natpmp", format!("available: {d}")),
        Err(e) => r.add(
            "gateway.natpmp",
            Status::Warn,
            format!("no NAT-PMP answer: {e}"),
            fix(),
        ),
    }
    json!({
        "default_gateway": g.gateway.map(|g| g.to_string()),
        "upnp": g.upnp.as_ref().ok(),
        "upnp_error": g.upnp.as_ref().err(),
        "natpmp": g.natpmp.as_ref().ok(),
        "natpmp_error": g.natpmp.as_ref().err(),
    })
}

/// The IPv4 default gateway from /proc/net/route (Linux).
fn default_gateway() -> Option<Ipv4Addr> {
    nat::default_gateway(&std::fs::read_to_string("/proc/net/route").ok()?)
}

/// NAT-PMP (RFC 6886): an external address request (version 0, opcode
/// 0) to the gateway's port 5351; the answer (opcode 128) carries the
/// result code and the external address.
fn natpmp(gateway: Option<Ipv4Addr>, limit: Duration) -> Result<String, String> {
    let gw = gateway.ok_or("no IPv4 default gateway")?;
    let s = UdpSocket::bind(SocketAddr::from(([0, 0, 0, 0], 0))).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(limit)).map_err(|e| e.to_string())?;
    s.connect((gw, 5351)).map_err(|e| e.to_string())?;
    s.send(&[0, 0]).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 16];
    let n = s.recv(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
            "gateway {gw} did not answer within {} s",
            limit.as_secs_f64()
        ),
        _ => format!("gateway {gw}: {e}"),
    })?;
    match nat::natpmp_external_address(&buf[..n]) {
        Ok(external) => Ok(format!("gateway {gw}, external address {external}")),
        Err(nat::NatPmpError::NotAnAnswer { len }) => {
            Err(format!("gateway {gw}: not a NAT-PMP answer ({len} bytes)"))
        }
        Err(nat::NatPmpError::Code(code)) => {
            Err(format!("gateway {gw} answered with result code {code}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a relay or gateway sent cannot drive the terminal: control
    /// characters come out escaped, the rest as it was.
    #[test]
    fn details_are_printable() {
        assert_eq!(printable("plain ünïcode".into()), "plain ünïcode");
        assert_eq!(
            printable("/dns/a\u{1b}[2J\u{1b}[1;1Hok/udp/1".into()),
            "/dns/a\\u{1b}[2J\\u{1b}[1;1Hok/udp/1"
        );
        assert_eq!(printable("a\nb\rc\u{7}".into()), "a\\nb\\rc\\u{7}");
    }
}
