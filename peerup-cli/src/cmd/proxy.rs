//! `peerup proxy <target> <service> <local-port>`: a local TCP port that
//! forwards every connection to a service on a peer, for as long as the
//! command runs; with `--persist`, a forward kept in the config's
//! `forwards:` that the daemon listens on across restarts (`--list`,
//! `--remove` manage them).
//!
//! `--persist` and `--remove` edit the config under its edit lock with
//! `config::edit` (comments kept), write it atomically, then ask a running
//! daemon to apply it and to confirm the forward listens (or no longer
//! does): the command fails unless it does (the file is changed by then,
//! and the error says so). Without a daemon, the forward listens when the
//! daemon starts.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use futures::StreamExt;
use peerup_core::config::edit;
use peerup_core::config::node::{Forward, PeerRef};
use peerup_core::naming::{Name, parse_peer_id};
use peerup_core::wire::label::DnsLabel;
use peerup_net::Event;
use serde_json::{Value, json};

use crate::Global;
use crate::context::{self, Ctx};
use crate::control::{self, ForwardExpectation, Reply, Request};
use peerup_net::fs::LockMode;

#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  peerup proxy home ssh 2222             until Ctrl-C; then: ssh -p 2222 user@localhost
  peerup proxy home xrdp 13389           then: xfreerdp /v:localhost:13389
  peerup proxy 12D3KooW... web 8080 --bind 0.0.0.0
  peerup proxy home ssh 2222 --persist   kept by the daemon, across restarts
  peerup proxy home xrdp 13389 --persist --name desk
  peerup proxy --list                    kept forwards: listening? connections?
  peerup proxy --list --json
  peerup proxy --remove home-ssh-2222    or by local port: --remove 2222

A kept forward (`forwards:` in the config) is listened on by `peerup daemon`
from its start; each local connection connects to the peer then (through a
relay, or directly), so it works again as soon as the peer is back. While
the peer is unreachable a connection is closed within 15 s and the daemon
logs why. Without a daemon, configs/peerup-proxy@.service runs a plain
`peerup proxy` as a systemd user service.")]
pub(crate) struct ProxyArgs {
    /// Name from the config (e.g. home), or peer ID.
    #[arg(required_unless_present_any = ["list", "remove"])]
    target: Option<String>,
    /// Service name as defined in the target's config (e.g. ssh, xrdp).
    #[arg(required_unless_present_any = ["list", "remove"])]
    service: Option<String>,
    /// Local TCP port to listen on (1-65535).
    #[arg(required_unless_present_any = ["list", "remove"])]
    local_port: Option<u16>,
    /// Local address to listen on (0.0.0.0 exposes the port to your LAN).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Keep the forward in the config (`forwards:`) for the daemon to
    /// listen on, across restarts, instead of for as long as this command
    /// runs. A running daemon starts it at once.
    #[arg(long, conflicts_with_all = ["list", "remove"])]
    persist: bool,
    /// The persistent forward's name (a DNS label); default
    /// TARGET-SERVICE-PORT (home-ssh-2222), or SERVICE-PORT for a peer ID.
    #[arg(long, requires = "persist", value_name = "NAME")]
    name: Option<String>,
    /// List the persistent forwards; with a daemon running, whether each
    /// listens and its open connections.
    #[arg(long, conflicts_with_all = ["remove", "target"])]
    list: bool,
    /// With --list: one JSON array (name, peer, peer_id, service,
    /// local_address, enabled, listening, connections, error; the last
    /// three null without a daemon).
    #[arg(long, requires = "list")]
    json: bool,
    /// Remove a persistent forward, by name or local port; a running
    /// daemon stops listening on it (its open connections go on).
    #[arg(long, value_name = "NAME|PORT", conflicts_with = "target")]
    remove: Option<String>,
}

/// The positional arguments of a forward, checked.
struct Target {
    target: String,
    service: String,
    local_port: u16,
}

fn positional(args: &ProxyArgs) -> Result<Target> {
    let (Some(target), Some(service), Some(local_port)) =
        (args.target.clone(), args.service.clone(), args.local_port)
    else {
        bail!("give <target> <service> <local-port> (see `peerup proxy --help`)");
    };
    super::service::name_arg(&service)?;
    if local_port == 0 {
        bail!("local port must be 1-65535");
    }
    Ok(Target {
        target,
        service,
        local_port,
    })
}

pub(crate) async fn run(global: &Global, args: ProxyArgs) -> Result<ExitCode> {
    if args.list {
        let ctx = context::load(global)?;
        return list(&ctx, args.json).await;
    }
    if let Some(which) = &args.remove {
        let ctx = context::load(global)?;
        return remove(&ctx, which).await;
    }
    let t = positional(&args)?;
    if args.persist {
        let ctx = context::load(global)?;
        return persist(&ctx, &args, &t).await;
    }
    forward_now(global, &args, &t).await
}

/// Plain `peerup proxy`: forwards for as long as the command runs.
async fn forward_now(global: &Global, args: &ProxyArgs, t: &Target) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let peer = super::resolve(&ctx, &t.target)?;
    let bind = SocketAddr::new(args.bind, t.local_port);
    let label =
        super::name_of(&ctx, &peer).map_or_else(|| peer.to_string(), |n| format!("{n} ({peer})"));
    // With a daemon running, it holds the identity: the port is forwarded
    // by the daemon for as long as this command runs.
    let request = Request::Proxy {
        target: peer.to_string(),
        service: t.service.clone(),
        bind: bind.to_string(),
    };
    let node = match super::daemon_or_node(&ctx, &request, false, LockMode::Shared).await? {
        super::Through::Daemon(client) => {
            return through_daemon(client, &label, t).await;
        }
        super::Through::Own(node) => node,
    };
    let forwarder = node.forward(bind, peer, &t.service).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "local port {} is already in use on {}; pick another port",
                t.local_port,
                args.bind
            )
        } else {
            anyhow!("cannot listen on {bind}: {e}")
        }
    })?;
    println!(
        "Forwarding {} -> {label} service {}",
        forwarder.local_addr(),
        t.service
    );
    hints(t);
    println!("Ctrl-C to stop.");
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

fn hints(t: &Target) {
    match t.service.as_str() {
        "ssh" => println!("Then: ssh -p {} user@localhost", t.local_port),
        "xrdp" | "rdp" => println!("Then: xfreerdp /v:localhost:{}", t.local_port),
        _ => {}
    }
}

/// The daemon forwards the port; this shows what it says and keeps the
/// forward alive until Ctrl-C (or the daemon stops).
async fn through_daemon(mut client: control::Client, label: &str, t: &Target) -> Result<ExitCode> {
    loop {
        let reply = tokio::select! {
            r = client.next() => r?,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        match reply {
            Some(Reply::Ok { message }) => {
                println!(
                    "{message} (through the running daemon) -> {label} service {}",
                    t.service
                );
                hints(t);
                println!("Ctrl-C to stop.");
            }
            Some(Reply::Progress { message }) => println!("{message}"),
            Some(Reply::Error { message }) => return Err(anyhow!(message)),
            Some(_) => {}
            None => {
                return Err(anyhow!(
                    "the daemon stopped; port {} is no longer forwarded",
                    t.local_port
                ));
            }
        }
    }
}

/// The `<target>` of a persistent forward as the config will say it: a
/// name from `names:` (kept as the name, so it follows the name), else a
/// peer ID.
fn peer_ref(ctx: &Ctx, text: &str) -> Result<PeerRef> {
    let text = text.trim();
    if ctx.config.names.get(text).is_some()
        && let Ok(name) = Name::new(text)
    {
        return Ok(PeerRef::Name(name));
    }
    if let Ok(peer) = parse_peer_id(text) {
        return Ok(PeerRef::Id(peer));
    }
    super::resolve(ctx, text).map(PeerRef::Id)
}

/// The default name of a persistent forward: `<target>-<service>-<port>`,
/// or `<service>-<port>` when the target is not a usable label (a peer
/// ID).
fn default_name(target: &PeerRef, service: &str, port: u16) -> Result<DnsLabel> {
    let with_target = match target {
        PeerRef::Name(n) => DnsLabel::new(&format!(
            "{}-{service}-{port}",
            n.as_str().to_ascii_lowercase()
        ))
        .ok(),
        PeerRef::Id(_) => None,
    };
    match with_target {
        Some(l) => Ok(l),
        None => DnsLabel::new(&format!("{service}-{port}"))
            .map_err(|e| anyhow!("cannot make a forward name ({e}); give one with --name")),
    }
}

/// `--persist`: the forward into `forwards:`, then applied by a running
/// daemon.
async fn persist(ctx: &Ctx, args: &ProxyArgs, t: &Target) -> Result<ExitCode> {
    let peer = peer_ref(ctx, &t.target)?;
    let service = super::service::name_arg(&t.service)?;
    let name = match &args.name {
        Some(n) => DnsLabel::new(n)
            .map_err(|e| anyhow!("--name: forward name {e} (a DNS label, e.g. home-ssh)"))?,
        None => default_name(&peer, service.as_str(), t.local_port)?,
    };
    let local = SocketAddr::new(args.bind, t.local_port);
    let forward = Forward::new(peer, service, local);
    let (ctx, text) = super::service::edit_config(ctx, |current| {
        if let Some(existing) = current.config.forwards.get(&name) {
            if *existing == forward {
                return Ok(current.text.clone());
            }
            bail!(
                "forward `{name}` is already in {} ({} -> {} service {}); remove it first with `peerup proxy --remove {name}`, or pick another --name",
                current.path.display(),
                existing.local_address,
                existing.peer,
                existing.service
            );
        }
        edit::add_forward(&current.text, &name, &forward)
            .map_err(|e| super::service::edit_error(current, e))
    })?;
    let what = format!(
        "forward {name}: {local} -> {} service {}",
        forward.peer, forward.service
    );
    match &text {
        Some(_) => println!("Added {what} to {}", ctx.path.display()),
        None => println!(
            "The {what} is already in {}; nothing to change",
            ctx.path.display()
        ),
    }
    notify(
        &ctx,
        &name,
        true,
        "the forward listens when `peerup daemon` starts",
    )
    .await?;
    hints(t);
    Ok(ExitCode::SUCCESS)
}

/// Asks a running daemon to apply the config and to confirm that `name`
/// listens (or no longer does); fails unless it did. Without a daemon,
/// says when the change applies.
async fn notify(ctx: &Ctx, name: &DnsLabel, listening: bool, without_daemon: &str) -> Result<()> {
    let request = Request::Reload {
        expect_denied: None,
        expect_authorized: None,
        expect_service: None,
        expect_forward: Some(ForwardExpectation {
            name: name.to_string(),
            listening,
        }),
    };
    super::service::reload_daemon(ctx, &request, without_daemon).await
}

/// `--remove <name|port>`.
async fn remove(ctx: &Ctx, which: &str) -> Result<ExitCode> {
    let name = pick(ctx, which)?;
    let (ctx, _) = super::service::edit_config(ctx, |current| {
        pick(current, name.as_str())?;
        edit::remove_forward(&current.text, &name)
            .map_err(|e| super::service::edit_error(current, e))
    })?;
    println!("Removed forward {name} from {}", ctx.path.display());
    notify(&ctx, &name, false, "nothing else to do").await?;
    Ok(ExitCode::SUCCESS)
}

/// The forward `which` names: a forward's name, or a local port that one
/// forward listens on.
fn pick(ctx: &Ctx, which: &str) -> Result<DnsLabel> {
    let forwards = &ctx.config.forwards;
    let known = || {
        if forwards.is_empty() {
            "no forwards are configured".to_owned()
        } else {
            let list: Vec<String> = forwards
                .iter()
                .map(|(n, f)| format!("{n} ({})", f.local_address))
                .collect();
            format!("configured: {}", list.join(", "))
        }
    };
    if let Some((name, _)) = forwards.iter().find(|(n, _)| n.as_str() == which) {
        return Ok(name.clone());
    }
    if let Ok(port) = which.parse::<u16>() {
        let on: Vec<&DnsLabel> = forwards
            .iter()
            .filter(|(_, f)| f.local_address.port() == port)
            .map(|(n, _)| n)
            .collect();
        match on.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => bail!(
                "several forwards listen on port {port} ({}); remove one by name",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    bail!(
        "no forward named or listening on `{which}` in {} ({}; see `peerup proxy --list`)",
        ctx.path.display(),
        known()
    )
}

/// `--list [--json]`: the config's forwards, with the daemon's view of
/// each when one runs.
async fn list(ctx: &Ctx, json: bool) -> Result<ExitCode> {
    let daemon = match control::connect(&ctx.socket(), &Request::Status).await? {
        Some(mut client) => loop {
            match client.next().await? {
                Some(Reply::Status { status }) => break Some(status["forwards"].clone()),
                Some(Reply::Error { message }) => return Err(anyhow!(message)),
                Some(_) => {}
                None => break None,
            }
        },
        None => None,
    };
    let live = |name: &str| -> Option<Value> {
        daemon
            .as_ref()?
            .as_array()?
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
    };
    let rows: Vec<Value> = ctx
        .config
        .forwards
        .iter()
        .map(|(name, f)| {
            let mut v = crate::forwards::entry(name, f, &ctx.config);
            let d = live(name.as_str());
            for key in ["listening", "connections", "error"] {
                v[key] = d.as_ref().map_or(Value::Null, |d| d[key].clone());
            }
            if daemon.is_some() && d.is_none() {
                // In the file, not (yet) in the daemon: a reload failed.
                v["listening"] = json!(false);
                v["error"] = json!(
                    "not loaded by the running daemon (check `peerup config validate` and its log)"
                );
            }
            v
        })
        .collect();
    if json {
        println!("{}", Value::Array(rows));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!(
            "No forwards in {} (add one: peerup proxy home ssh 2222 --persist)",
            ctx.path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|v| {
            let state = if v["enabled"] == false {
                "disabled".to_owned()
            } else if daemon.is_none() {
                "no daemon running".to_owned()
            } else if v["listening"] == true {
                format!("listening, {} open", v["connections"].as_u64().unwrap_or(0))
            } else {
                format!("NOT listening: {}", s(&v["error"]))
            };
            [
                s(&v["name"]),
                s(&v["local_address"]),
                s(&v["peer"]),
                s(&v["service"]),
                state,
            ]
        })
        .collect();
    let header = ["NAME", "LOCAL ADDRESS", "PEER", "SERVICE", "STATE"];
    let width = |i: usize| {
        table
            .iter()
            .map(|r| r[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
        header[0], header[1], header[2], header[3], header[4]
    );
    for r in &table {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0], r[1], r[2], r[3], r[4]
        );
    }
    Ok(ExitCode::SUCCESS)
}
