//! The commands.

pub(crate) mod auth;
pub(crate) mod bench;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod demo;
pub(crate) mod init;
pub(crate) mod invite;
pub(crate) mod join;
pub(crate) mod ping;
pub(crate) mod proxy;
pub(crate) mod relay;
pub(crate) mod status;

use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use peerup_core::PeerId;
use peerup_core::naming::parse_peer_id;
use peerup_net::node::{Event, NodeOptions};
use peerup_tokio::Node;

use crate::context::Ctx;
use crate::{Command, Global};

/// Runs a command on a tokio runtime.
pub(crate) fn run(global: &Global, command: Command) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        match command {
            Command::Init(a) => init::run(global, a).await,
            Command::Daemon => daemon::run(global).await,
            Command::Proxy(a) => proxy::run(global, a).await,
            Command::Ping(a) => ping::run(global, a).await,
            Command::Invite(a) => invite::run(global, a).await,
            Command::Join(a) => join::run(global, a).await,
            Command::Whoami => whoami(global),
            Command::Auth(a) => auth::run(global, a).await,
            Command::Relay(a) => relay::run(global, a).await,
            Command::Config(a) => config::run(global, a).await,
            Command::Status(a) => status::run(global, a).await,
            Command::Demo(a) => demo::run(global, a).await,
            Command::Bench(a) => bench::run(global, a).await,
            Command::Version | Command::Completions { .. } => Ok(ExitCode::SUCCESS),
        }
    })
}

fn whoami(global: &Global) -> Result<ExitCode> {
    let ctx = crate::context::load(global)?;
    let key = ctx.config.key_file_path(&ctx.path);
    let bytes = peerup_net::fs::read_private(&key).map_err(|e| {
        if e.is_not_found() {
            anyhow!(
                "no identity key at {}; run `peerup init` (or `peerup daemon` creates one)",
                key.display()
            )
        } else {
            anyhow!("{e}")
        }
    })?;
    let peer =
        peerup_core::identity::peer_id_of(&bytes).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    println!("{peer}");
    Ok(ExitCode::SUCCESS)
}

/// Resolves a command's target: a name from the config, else a peer ID.
pub(crate) fn resolve(ctx: &Ctx, target: &str) -> Result<PeerId> {
    ctx.config.names.resolve(target).map_err(|e| anyhow!("{e}"))
}

/// Parses a peer ID argument, naming the argument.
pub(crate) fn peer_arg(text: &str) -> Result<PeerId> {
    parse_peer_id(text).map_err(|e| anyhow!("{e}"))
}

/// Starts this machine's node for a one-shot command (no daemon running):
/// dials out through the relays, holds no reservation unless `reserve`.
pub(crate) async fn start_node(ctx: &Ctx, reserve: bool) -> Result<Node> {
    let options: NodeOptions = ctx.node_options()?;
    let mut options = options.with_reservations(reserve);
    // A one-shot client listens on ephemeral ports only (it must not take
    // the daemon's fixed ports, and needs no services or ping responder).
    options.listen = vec![
        "/ip4/0.0.0.0/tcp/0".parse().map_err(|e| anyhow!("{e}"))?,
        "/ip4/0.0.0.0/udp/0/quic-v1"
            .parse()
            .map_err(|e| anyhow!("{e}"))?,
    ];
    options.services.clear();
    Node::start(options).await.map_err(|e| anyhow!("{e}"))
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
/// addresses, services and relay reservations.
pub(crate) async fn start_node_full(ctx: &Ctx) -> Result<Node> {
    Node::start(ctx.node_options()?)
        .await
        .map_err(|e| anyhow!("{e}"))
}
