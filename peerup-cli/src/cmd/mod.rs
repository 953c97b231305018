//! The commands.

pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod init;
pub(crate) mod invite;
pub(crate) mod join;
pub(crate) mod ping;
pub(crate) mod proxy;
pub(crate) mod relay;
pub(crate) mod service;
pub(crate) mod status;
pub(crate) mod verify;

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use peerup_core::PeerId;
use peerup_core::naming::parse_peer_id;
use peerup_net::fs::{FsError, LockMode};
use peerup_net::node::{Event, NodeOptions, StartError};
use peerup_tokio::Node;

use crate::context::Ctx;
use crate::control;
use crate::{Command, Global};

/// The runtime's worker threads unless `PEERUP_WORKER_THREADS` says
/// otherwise. A proxy (and every other client command) takes one: one
/// proxied connection rides one libp2p connection, whose encryption and
/// framing are one task, so more workers add cross-thread wake-ups, not
/// speed (`peerup-bench` on 2 cores: 15-20% less CPU per GiB, direct TCP
/// +18%, direct QUIC +32%; docs/PERFORMANCE.md). The daemon takes two
/// where there are two cores: it faces strangers, whose handshakes cost
/// CPU before the gate closes them, and serves several peers at once.
/// The demo keeps a worker per core, as before: it runs a relay and two
/// nodes in one process, whose transfers it times.
fn worker_threads(command: &Command) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("PEERUP_WORKER_THREADS") {
        Err(std::env::VarError::NotPresent) => Ok(match command {
            Command::Daemon => cores.min(2),
            Command::Demo(_) => cores,
            _ => 1,
        }),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=256).contains(&n) => Ok(n),
            _ => Err(anyhow!(
                "PEERUP_WORKER_THREADS={v:?}: not a number of threads from 1 to 256 (unset it for the default: 1, the daemon 2)"
            )),
        },
        Err(e) => Err(anyhow!("PEERUP_WORKER_THREADS: {e}")),
    }
}

/// Whether QUIC's MTU discovery may search past Ethernet's 1,452 bytes on
/// a path whose first link carries more (jumbo frames, loopback; on by
/// default, ARCHITECTURE.md "QUIC packet size"): `PEERUP_QUIC_PATH_MTU=off`
/// keeps every path at Ethernet's size (to compare, as `peerup-bench`
/// does, or where such a link misbehaves).
fn quic_path_mtu() -> Result<bool> {
    quic_path_mtu_from(std::env::var("PEERUP_QUIC_PATH_MTU"))
}

fn quic_path_mtu_from(var: Result<String, std::env::VarError>) -> Result<bool> {
    match var {
        Err(std::env::VarError::NotPresent) => Ok(true),
        Ok(v) => match v.trim() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(anyhow!(
                "PEERUP_QUIC_PATH_MTU={v:?}: `on` or `off` (unset it for the default, on; \
                 off keeps QUIC's packets at Ethernet's 1,452 bytes on every path)"
            )),
        },
        Err(e) => Err(anyhow!("PEERUP_QUIC_PATH_MTU: {e}")),
    }
}

/// Runs a command on a tokio runtime.
pub(crate) fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads(&command)?)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let code = rt.block_on(async move {
        match command {
            Command::Init(a) => init::run(global, a).await,
            Command::Daemon => daemon::run(global).await,
            Command::Proxy(a) => proxy::run(global, a).await,
            Command::Ping(a) => ping::run(global, a).await,
            Command::Invite(a) => invite::run(global, a).await,
            Command::Join(a) => join::run(global, a).await,
            Command::Whoami => whoami(global),
            Command::Verify(a) => verify::run(global, &a),
            Command::Auth(a) => auth::run(global, a).await,
            Command::Relay(a) => relay::run(global, a).await,
            Command::Service(a) => service::run(global, a).await,
            Command::Config(a) => config::run(global, a).await,
            Command::Status(a) => status::run(global, a).await,
            Command::Demo(a) => demo::run(global, a).await,
            Command::Doctor(a) => doctor::run(global, a).await,
            Command::Version | Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    });
    // Dropping the runtime waits for blocking threads without bound (a
    // UPnP request to a gateway that stalls, in `doctor`): the command's
    // answer is given, so wait half a second at most.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

fn whoami(global: &Global) -> Result<ExitCode> {
    let ctx = crate::context::load(global)?;
    println!("{}", our_peer_id(&ctx)?);
    Ok(ExitCode::SUCCESS)
}

/// This machine's peer ID, from its identity key.
pub(crate) fn our_peer_id(ctx: &Ctx) -> Result<PeerId> {
    let key = ctx.config.key_file_path(&ctx.path);
    let bytes = peerup_net::fs::read_private(&key).map_err(|e| {
        if e.is_not_found() {
            anyhow!(
                "no identity key at {}; run `peerup init` (or `peerup daemon` creates one)",
                key.display()
            )
        } else {
            e.into()
        }
    })?;
    peerup_core::identity::peer_id_of(&bytes).map_err(|e| anyhow!("{}: {e}", key.display()))
}

/// Resolves a command's target: a name from the config, else a peer ID.
pub(crate) fn resolve(ctx: &Ctx, target: &str) -> Result<PeerId> {
    ctx.config
        .names
        .resolve(target)
        .map_err(anyhow::Error::from)
}

/// Parses a peer ID argument, naming the argument.
pub(crate) fn peer_arg(text: &str) -> Result<PeerId> {
    parse_peer_id(text).map_err(anyhow::Error::from)
}

/// Longest wait for a starting daemon's control socket.
const DAEMON_START_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How a command reaches this machine's node.
pub(crate) enum Through {
    /// The running daemon, over its control socket.
    Daemon(control::Client),
    /// A node of the command's own (no daemon runs).
    Own(Node),
}

/// Sends `request` to this config's running daemon, or, without one,
/// starts the command's own node (see [`start_node`]). A daemon that is
/// still starting holds the identity before its control socket exists:
/// then this waits for the socket (at most a minute, with a spinner)
/// rather than fail or start a second node with the same identity.
pub(crate) async fn daemon_or_node(
    ctx: &Ctx,
    request: &control::Request,
    reserve: bool,
    mode: LockMode,
) -> Result<Through> {
    if let Some(c) = control::connect(&ctx.socket(), request).await? {
        return Ok(Through::Daemon(c));
    }
    match start_node(ctx, reserve, mode).await {
        Ok(node) => Ok(Through::Own(node)),
        Err(NodeStart::InUse { holder, message }) if holder.contains(" daemon") => {
            let pb = crate::ui::spinner(&format!(
                "Waiting for the starting peerup daemon ({holder}) to open its control socket..."
            ));
            let deadline = tokio::time::Instant::now() + DAEMON_START_WAIT;
            loop {
                if let Some(c) = control::connect(&ctx.socket(), request).await? {
                    pb.finish_and_clear();
                    return Ok(Through::Daemon(c));
                }
                if tokio::time::Instant::now() >= deadline {
                    pb.finish_and_clear();
                    return Err(anyhow!(
                        "{message}; it has not opened its control socket {} within {}s (is it stuck? see its log, or `systemctl status peerup`)",
                        ctx.socket().display(),
                        DAEMON_START_WAIT.as_secs()
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Why a command's own node did not start.
pub(crate) enum NodeStart {
    /// Another process holds the identity.
    InUse {
        /// What the lock file says about it.
        holder: String,
        /// The whole message.
        message: String,
    },
    /// Anything else.
    Other(anyhow::Error),
}

impl From<NodeStart> for anyhow::Error {
    fn from(e: NodeStart) -> Self {
        match e {
            NodeStart::InUse { message, .. } => anyhow!(message),
            NodeStart::Other(e) => e,
        }
    }
}

/// Starts this machine's node for a one-shot command (no daemon running):
/// dials out through the relays, holds no reservation unless `reserve`.
async fn start_node(ctx: &Ctx, reserve: bool, mode: LockMode) -> Result<Node, NodeStart> {
    let options = match NodeOptions::from_config_as(&ctx.config, &ctx.path, mode) {
        Ok(o) => o,
        Err(StartError::Fs(FsError::IdentityInUse { path, holder })) => {
            let e = FsError::IdentityInUse {
                path,
                holder: holder.clone(),
            };
            return Err(NodeStart::InUse {
                holder: holder.unwrap_or_default(),
                message: e.to_string(),
            });
        }
        Err(e) => return Err(NodeStart::Other(e.into())),
    };
    let mut options = options.with_reservations(reserve);
    // A one-shot client listens on ephemeral ports of the one interface
    // that leads to the relays, not on every interface: it accepts no
    // one (it has no services), and the listener exists for DCUtR, whose
    // hole punch dials from the listening port.
    options.listen = one_shot_listen(&ctx.config);
    options.services.clear();
    // No mDNS: it would announce this short-lived node to the LAN, and its
    // connect comes before any answer could; a daemon's node (reached
    // through the control socket when one runs) holds the LAN records.
    options.mdns = false;
    Node::start(options)
        .await
        .map_err(|e| NodeStart::Other(e.into()))
}

/// The listen addresses of a one-shot node: TCP and QUIC on ephemeral
/// ports of the local address the first relay is reached from (found
/// without sending anything: a connected UDP socket reports it), or of
/// 127.0.0.1 when there is no relay with an IP address.
pub(crate) fn one_shot_listen(config: &peerup_core::config::Config) -> Vec<peerup_core::Multiaddr> {
    use peerup_core::multiaddr::Protocol;
    let relay_ip = config.relay.addresses.iter().find_map(|r| {
        r.multiaddr().iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        })
    });
    let local = relay_ip
        .and_then(|ip| {
            let any: std::net::SocketAddr = if ip.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let s = std::net::UdpSocket::bind(any).ok()?;
            s.connect((ip, 7)).ok()?;
            s.local_addr().ok().map(|a| a.ip())
        })
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let ip = match local {
        std::net::IpAddr::V4(v4) => Protocol::Ip4(v4),
        std::net::IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    let base = peerup_core::Multiaddr::empty().with(ip);
    vec![
        base.clone().with(Protocol::Tcp(0)),
        base.with(Protocol::Udp(0)).with(Protocol::QuicV1),
    ]
}

/// Waits (with a spinner) until the node holds a relay reservation.
pub(crate) async fn wait_reserved(node: &Node, limit: std::time::Duration) -> Result<()> {
    use futures::StreamExt;
    if node.status().relays.values().any(|r| r.reserved) {
        return Ok(());
    }
    if node.options().relays.is_empty() {
        return Err(anyhow!(
            "no relay is configured; add one with `peerup relay add <address>`"
        ));
    }
    let pb = crate::ui::spinner("Connecting to the relay...");
    let mut events = node.events();
    let mut last_error = String::new();
    let waited = node
        .runtime()
        .timeout(limit, async {
            while let Some(e) = events.next().await {
                match e {
                    Event::ReservationAccepted { .. } => return true,
                    Event::ReservationLost { error, .. } => {
                        pb.set_message(format!("Connecting to the relay... ({error})"));
                        last_error = error;
                    }
                    _ => {}
                }
            }
            false
        })
        .await;
    pb.finish_and_clear();
    if waited == Some(true) || node.status().relays.values().any(|r| r.reserved) {
        Ok(())
    } else if last_error.is_empty() {
        Err(anyhow!(
            "no reservation on any relay within {}s",
            limit.as_secs()
        ))
    } else {
        Err(anyhow!("no reservation on any relay: {last_error}"))
    }
}

/// Friendly name of a peer, if the config has one.
pub(crate) fn name_of(ctx: &Ctx, peer: &PeerId) -> Option<String> {
    ctx.config
        .names
        .names_of(peer)
        .next()
        .map(|n| n.to_string())
}

/// Starts the node the way the daemon runs it: the config's listen
/// addresses, services and relay reservations, with the descriptor limit
/// raised as far as allowed and the connection limits fit to it (a flood
/// runs into them, not into EMFILE).
pub(crate) async fn start_node_full(ctx: &Ctx) -> Result<Node> {
    let descriptors = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the descriptor limit");
            1024
        }
    };
    let mut options = ctx.node_options()?;
    options.transport.quic_path_mtu = quic_path_mtu()?;
    options.limits = options.limits.fit_to_descriptors(descriptors);
    tracing::info!(descriptors, limits = ?options.limits, "connection limits");
    Node::start(options).await.map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    #[test]
    fn the_quic_path_mtu_switch_reads_on_off_or_nothing_and_names_itself_otherwise() {
        assert!(quic_path_mtu_from(Err(VarError::NotPresent)).unwrap());
        assert!(quic_path_mtu_from(Ok("on".into())).unwrap());
        assert!(!quic_path_mtu_from(Ok(" off\n".into())).unwrap());
        for bad in ["", "0", "false", "OFF", "no"] {
            let e = quic_path_mtu_from(Ok(bad.into())).unwrap_err().to_string();
            assert!(e.starts_with("PEERUP_QUIC_PATH_MTU="), "{e}");
            assert!(e.contains("`on` or `off`"), "{e}");
        }
        let e = quic_path_mtu_from(Err(VarError::NotUnicode("\u{fffd}".into())))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("PEERUP_QUIC_PATH_MTU:"), "{e}");
    }
}
