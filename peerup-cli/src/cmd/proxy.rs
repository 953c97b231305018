//! `peerup proxy <target> <service> <local-port>`: a local TCP port that
//! forwards every connection to a service on a peer.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use futures::StreamExt;
use peerup_core::wire::label::DnsLabel;
use peerup_net::Event;

use crate::Global;
use crate::context;
use crate::control::{self, Reply, Request};
use peerup_net::fs::LockMode;

#[derive(Args, Debug)]
pub(crate) struct ProxyArgs {
    /// Name from the config (e.g. home), or peer ID.
    target: String,
    /// Service name as defined in the target's config (e.g. ssh, xrdp).
    service: String,
    /// Local TCP port to listen on.
    local_port: u16,
    /// Local address to listen on (0.0.0.0 exposes the port to your LAN).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

pub(crate) async fn run(global: &Global, args: ProxyArgs) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let peer = super::resolve(&ctx, &args.target)?;
    DnsLabel::new(&args.service).map_err(|e| anyhow!("service name: {e}"))?;
    if args.local_port == 0 {
        return Err(anyhow!("local port must be 1-65535"));
    }
    let bind = SocketAddr::new(args.bind, args.local_port);
    let label =
        super::name_of(&ctx, &peer).map_or_else(|| peer.to_string(), |n| format!("{n} ({peer})"));
    // With a daemon running, it holds the identity: the port is forwarded
    // by the daemon for as long as this command runs.
    let request = Request::Proxy {
        target: peer.to_string(),
        service: args.service.clone(),
        bind: bind.to_string(),
    };
    let node = match super::daemon_or_node(&ctx, &request, false, LockMode::Shared).await? {
        super::Through::Daemon(client) => {
            return through_daemon(client, &label, &args).await;
        }
        super::Through::Own(node) => node,
    };
    let forwarder = node.forward(bind, peer, &args.service).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "local port {} is already in use on {}; pick another port",
                args.local_port,
                args.bind
            )
        } else {
            anyhow!("cannot listen on {bind}: {e}")
        }
    })?;
    println!(
        "Forwarding {} -> {label} service {}",
        forwarder.local_addr(),
        args.service
    );
    hints(&args);
    // Connect now, so a problem shows before the first client does.
    let mut events = node.events();
    match node.connect(peer).await {
        Ok(path) => println!("Connected to {label} [{path}]"),
        Err(e) => eprintln!(
            "warning: {}; will retry for each connection",
            peerup_net::error::chain(&e)
        ),
    }
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            Some(e) = events.next() => match e {
                Event::Upgraded { peer: p } if p == peer => println!("Direct connection to {label} (hole punched)"),
                Event::Disconnected { peer: p, remaining: 0 } if p == peer => println!("Disconnected from {label}; reconnecting on the next connection"),
                _ => {}
            },
        }
    }
    forwarder.stop();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn hints(args: &ProxyArgs) {
    match args.service.as_str() {
        "ssh" => println!("Then: ssh -p {} user@localhost", args.local_port),
        "xrdp" | "rdp" => println!("Then: xfreerdp /v:localhost:{}", args.local_port),
        _ => {}
    }
    println!("Ctrl-C to stop.");
}

/// The daemon forwards the port; this shows what it says and keeps the
/// forward alive until Ctrl-C (or the daemon stops).
async fn through_daemon(
    mut client: control::Client,
    label: &str,
    args: &ProxyArgs,
) -> Result<ExitCode> {
    loop {
        let reply = tokio::select! {
            r = client.next() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        match reply {
            Some(Reply::Ok { message }) => {
                println!(
                    "{message} (through the running daemon) -> {label} service {}",
                    args.service
                );
                hints(args);
            }
            Some(Reply::Progress { message }) => println!("{message}"),
            Some(Reply::Error { message }) => return Err(anyhow!(message)),
            Some(_) => {}
            None => {
                return Err(anyhow!(
                    "the daemon stopped; port {} is no longer forwarded",
                    args.local_port
                ));
            }
        }
    }
}
