//! `peerup service add|remove|enable|disable|list`: the `services:` of the
//! config, applied live by a running daemon.
//!
//! Every change is checked before anything is written (the name is a DNS
//! label and not reserved, the address a `host:port`, each `--allow` a
//! peer ID or a name in `names:`), made with `config::edit` (comments and
//! layout kept; a shape it cannot edit safely is refused with its line)
//! under the config directory's edit lock, and written atomically. Then a
//! running daemon is asked to apply it and to confirm the service's new
//! state, as `auth add|remove` do: the command fails unless it did (the
//! file is changed by then, and the error says so).

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use peerup_core::config::confirm::MarkerState;
use peerup_core::config::node::{LocalAddress, PeerRef, Service};
use peerup_core::config::{WarningKind, edit};
use peerup_core::naming::{Name, parse_peer_id};
use peerup_core::wire::label::DnsLabel;
use peerup_core::wire::protocol::is_reserved_service_name;
use serde_json::json;

use crate::Global;
use crate::context::{self, Ctx};
use crate::control::{self, Request, ServiceExpectation, ServiceState};

#[derive(Subcommand, Debug)]
pub(crate) enum ServiceCommand {
    /// Expose a local TCP service to your peers (enabled at once; a running
    /// daemon serves it without a restart).
    #[command(
        after_help = "Examples:\n  peerup service add ssh localhost:22\n  peerup service add web 127.0.0.1:8080 --allow laptop\n  peerup service add rdp 192.168.1.5:3389 --allow laptop --allow 12D3KooW...\n\nPeers reach it with: peerup proxy <this-machine> <name> <local-port>"
    )]
    Add {
        /// The service's name: a DNS label (lowercase letters, digits,
        /// '-'), e.g. ssh; peers ask for it by this name.
        name: String,
        /// Where it listens on this machine: host:port (localhost:22,
        /// 192.168.1.5:3389, [::1]:8080).
        #[arg(value_name = "HOST:PORT")]
        address: String,
        /// Only this peer may use it (a peer ID, or a name from `names:`);
        /// repeat for more. Default: every authorized peer.
        #[arg(long, value_name = "PEER")]
        allow: Vec<String>,
    },
    /// Stop exposing a service and remove it from the config (a running
    /// daemon cuts its open connections).
    #[command(after_help = "Example:\n  peerup service remove web")]
    Remove {
        /// The service's name.
        name: String,
    },
    /// Serve a disabled service again.
    #[command(after_help = "Example:\n  peerup service enable web")]
    Enable {
        /// The service's name.
        name: String,
    },
    /// Keep a service in the config but refuse it (a running daemon cuts
    /// its open connections).
    #[command(after_help = "Example:\n  peerup service disable web")]
    Disable {
        /// The service's name.
        name: String,
    },
    /// List the services in the config.
    #[command(after_help = "Examples:\n  peerup service list\n  peerup service list --json")]
    List {
        /// One JSON array: name, local_address, enabled, allowed_peers
        /// (null: every authorized peer).
        #[arg(long)]
        json: bool,
    },
}

/// The `<name>` argument: a DNS label that is not one of peerup's own
/// protocols.
pub(crate) fn name_arg(text: &str) -> Result<DnsLabel> {
    let label = DnsLabel::new(text)
        .map_err(|e| anyhow!("service name {e} (a DNS label, e.g. ssh or web-1)"))?;
    if is_reserved_service_name(text) {
        bail!(
            "service name `{text}` is reserved: /peerup/{text}/1.0.0 is one of peerup's own protocols; pick another name"
        );
    }
    Ok(label)
}

/// The `<host:port>` argument.
fn address_arg(text: &str) -> Result<LocalAddress> {
    text.trim().parse().map_err(|e| anyhow!("address {e}"))
}

/// One `--allow`: a name in `names:` (kept as the name, so the config
/// reads as written), else a peer ID.
fn allow_arg(ctx: &Ctx, text: &str) -> Result<PeerRef> {
    let text = text.trim();
    if ctx.config.names.get(text).is_some()
        && let Ok(name) = Name::new(text)
    {
        return Ok(PeerRef::Name(name));
    }
    if let Ok(peer) = parse_peer_id(text) {
        return Ok(PeerRef::Id(peer));
    }
    let e = ctx.config.names.resolve(text).err().map_or_else(
        || format!("`{text}` is neither a name in names: nor a peer ID"),
        |e| e.to_string(),
    );
    Err(anyhow!(
        "--allow: {e}; pass a peer ID (peerup whoami on that machine) or pair with it first (peerup invite / join)"
    ))
}

/// A service of the config, or an error listing the configured ones.
fn configured<'a>(ctx: &'a Ctx, name: &DnsLabel) -> Result<&'a Service> {
    ctx.config.services.get(name).ok_or_else(|| {
        let known: Vec<String> = ctx.config.services.keys().map(ToString::to_string).collect();
        if known.is_empty() {
            anyhow!(
                "no service `{name}` in {}: no services are configured (add one with `peerup service add <name> <host:port>`)",
                ctx.path.display()
            )
        } else {
            anyhow!(
                "no service `{name}` in {} (configured: {}; see `peerup service list`)",
                ctx.path.display(),
                known.join(", ")
            )
        }
    })
}

/// Edits the config under its edit lock (re-read under it, so a pairing
/// or another command writing meanwhile is not undone) and writes it
/// atomically; returns the new text, or `None` when `change` left it
/// as it was.
pub(crate) fn edit_config(
    ctx: &Ctx,
    change: impl FnOnce(&Ctx) -> Result<String>,
) -> Result<(Ctx, Option<String>)> {
    let lock = peerup_net::fs::lock_for_edit(&ctx.path)?;
    let current = context::load_path(&ctx.path, false)?;
    let text = change(&current)?;
    if text == current.text {
        return Ok((current, None));
    }
    context::write(&ctx.path, &text)?;
    drop(lock);
    // A `config apply` not yet confirmed reverts the whole file, this
    // edit with it.
    if let Ok(paths) = peerup_net::confirm::paths(&ctx.path)
        && !matches!(
            peerup_net::confirm::read_state(&paths).marker,
            MarkerState::Absent
        )
    {
        eprintln!(
            "note: a config change is pending (`peerup config apply`): unless it is confirmed with `peerup config confirm`, the config reverts, this edit with it"
        );
    }
    Ok((current, Some(text)))
}

/// An edit's error, naming the file: a config that does not load says
/// `file:line:` itself; the others get the file in front.
pub(crate) fn edit_error(ctx: &Ctx, e: edit::EditError) -> anyhow::Error {
    match e.with_file(&ctx.path) {
        e @ edit::EditError::Invalid { .. } => anyhow!("{e}"),
        e => anyhow!("{}: {e}", ctx.path.display()),
    }
}

/// What the daemon must now expose as `name`, from the config as written.
fn expectation(ctx: &Ctx, text: &str, name: &DnsLabel) -> Result<ServiceExpectation> {
    let (config, _) = peerup_core::config::Config::parse(&ctx.path, text)?;
    let services = peerup_net::node::services_from_config(&config, &ctx.path)?;
    Ok(ServiceExpectation {
        name: name.to_string(),
        state: services.get(name).map(ServiceState::of),
    })
}

/// Asks a running daemon to apply the config now and to confirm `name`'s
/// new state; fails unless it did. Without a daemon, says when the change
/// applies.
async fn notify(ctx: &Ctx, text: &str, name: &DnsLabel, without_daemon: &str) -> Result<()> {
    let request = Request::Reload {
        expect_denied: None,
        expect_authorized: None,
        expect_service: Some(expectation(ctx, text, name)?),
        expect_forward: None,
    };
    reload_daemon(ctx, &request, without_daemon).await
}

/// Sends `request` (a reload with what the daemon must confirm) to a
/// running daemon and prints its answer; fails unless it confirmed.
/// Without a daemon, says `without_daemon`.
pub(crate) async fn reload_daemon(
    ctx: &Ctx,
    request: &Request,
    without_daemon: &str,
) -> Result<()> {
    match control::connect(&ctx.socket(), request).await? {
        Some(client) => {
            let msg = client
                .finish()
                .await
                .map_err(|e| anyhow!("{} was changed, but {e}", ctx.path.display()))?;
            println!("Running daemon: {msg}");
        }
        None => println!("No daemon is running; {without_daemon}."),
    }
    Ok(())
}

/// The config, with its warnings on stderr except "service X is
/// disabled": these commands show and set that state themselves.
fn load(global: &Global) -> Result<Ctx> {
    let ctx = context::load_path(&context::find(global)?, false)?;
    let (_, warnings) = peerup_core::config::Config::parse(&ctx.path, &ctx.text)?;
    for w in warnings {
        if !matches!(w.kind, WarningKind::ServiceDisabled { .. }) {
            eprintln!("warning: {w}");
        }
    }
    Ok(ctx)
}

pub(crate) async fn run(global: &Global, cmd: ServiceCommand) -> Result<ExitCode> {
    let ctx = load(global)?;
    match cmd {
        ServiceCommand::Add {
            name,
            address,
            allow,
        } => {
            let label = name_arg(&name)?;
            let local = address_arg(&address)?;
            let allowed = allow
                .iter()
                .map(|a| allow_arg(&ctx, a))
                .collect::<Result<Vec<_>>>()?;
            let mut service = Service::new(local.clone());
            service.allowed_peers = (!allowed.is_empty()).then_some(allowed);
            let (ctx, text) = edit_config(&ctx, |current| {
                if let Some(existing) = current.config.services.get(&label) {
                    if *existing == service {
                        return Ok(current.text.clone());
                    }
                    if !existing.enabled {
                        bail!(
                            "service `{name}` is already in {}, disabled (-> {}); serve it again with `peerup service enable {name}`, or remove it first with `peerup service remove {name}` to change it",
                            current.path.display(),
                            existing.local_address
                        );
                    }
                    bail!(
                        "service `{name}` is already in {} (-> {}); remove it first with `peerup service remove {name}` to change it",
                        current.path.display(),
                        existing.local_address
                    );
                }
                edit::add_service(&current.text, &label, &service)
                    .map_err(|e| edit_error(current, e))
            })?;
            match &text {
                Some(_) => println!("Added service {label} -> {local} to {}", ctx.path.display()),
                None => println!(
                    "Service {label} -> {local} is already in {}; nothing to change",
                    ctx.path.display()
                ),
            }
            let text = text.unwrap_or_else(|| ctx.text.clone());
            notify(&ctx, &text, &label, "it exposes the service when it starts").await?;
            println!("Peers reach it with: peerup proxy <this-machine> {label} <local-port>");
        }
        ServiceCommand::Remove { name } => {
            let label = name_arg(&name)?;
            let (ctx, text) = edit_config(&ctx, |current| {
                configured(current, &label)?;
                edit::remove_service(&current.text, &label).map_err(|e| edit_error(current, e))
            })?;
            println!("Removed service {label} from {}", ctx.path.display());
            let text = text.unwrap_or_else(|| ctx.text.clone());
            notify(&ctx, &text, &label, "nothing else to do").await?;
        }
        ServiceCommand::Enable { name } => set_enabled(&ctx, &name, true).await?,
        ServiceCommand::Disable { name } => set_enabled(&ctx, &name, false).await?,
        ServiceCommand::List { json } => list(&ctx, json),
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(ctx: &Ctx, name: &str, enabled: bool) -> Result<()> {
    let label = name_arg(name)?;
    let (ctx, text) = edit_config(ctx, |current| {
        configured(current, &label)?;
        edit::set_service_enabled(&current.text, &label, enabled)
            .map_err(|e| edit_error(current, e))
    })?;
    let state = if enabled { "enabled" } else { "disabled" };
    match &text {
        Some(_) => println!("Service {label} {state} in {}", ctx.path.display()),
        None => println!(
            "Service {label} is already {state} in {}; nothing to change",
            ctx.path.display()
        ),
    }
    let text = text.unwrap_or_else(|| ctx.text.clone());
    let without = if enabled {
        "it serves the service when it starts"
    } else {
        "nothing else to do"
    };
    notify(&ctx, &text, &label, without).await
}

fn list(ctx: &Ctx, json: bool) {
    let services = &ctx.config.services;
    let allowed = |s: &Service| {
        s.allowed_peers
            .as_ref()
            .map(|list| list.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    if json {
        let v: Vec<serde_json::Value> = services
            .iter()
            .map(|(name, s)| {
                json!({
                    "name": name.as_str(),
                    "local_address": s.local_address.to_string(),
                    "enabled": s.enabled,
                    "allowed_peers": allowed(s),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return;
    }
    if services.is_empty() {
        println!(
            "No services in {} (add one: peerup service add ssh localhost:22)",
            ctx.path.display()
        );
        return;
    }
    let rows: Vec<[String; 4]> = services
        .iter()
        .map(|(name, s)| {
            [
                name.to_string(),
                s.local_address.to_string(),
                if s.enabled { "enabled" } else { "disabled" }.to_owned(),
                allowed(s).map_or_else(
                    || "every authorized peer".to_owned(),
                    |l| {
                        if l.is_empty() {
                            "nobody".to_owned()
                        } else {
                            l.join(", ")
                        }
                    },
                ),
            ]
        })
        .collect();
    let header = ["NAME", "LOCAL ADDRESS", "STATE", "ALLOWED"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([header[i].len()])
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    println!(
        "{:<w0$}  {:<w1$}  {:<w2$}  {}",
        header[0], header[1], header[2], header[3]
    );
    for r in &rows {
        println!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
    }
}
