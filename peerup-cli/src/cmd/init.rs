//! `peerup init`: config directory, identity key, config and
//! authorized_keys, by a wizard or fully from flags.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use peerup_core::config::{default_config_dir, render_template};
use peerup_core::relay_addr::{self, RelayAddr, RelayInputError};

use crate::Global;
use crate::context;

#[derive(Args, Debug)]
pub(crate) struct InitArgs {
    /// Directory for config.yaml, identity.key and authorized_keys
    /// (default: ~/.config/peerup, or the directory of --config).
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Relay address: a multiaddr, IP, IP:PORT or [IPv6]:PORT.
    #[arg(long, value_name = "ADDRESS")]
    relay: Option<String>,
    /// The relay's peer ID, when --relay is not a full multiaddr.
    #[arg(long, value_name = "PEER_ID")]
    relay_peer_id: Option<String>,
    /// Don't ask anything (use the flags and defaults).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Overwrite an existing config.yaml (the identity key and
    /// authorized_keys are always kept).
    #[arg(long)]
    force: bool,
}

const AUTHORIZED_KEYS_HEADER: &str = "# Peers allowed to connect to this machine: <peer-id>  [expires=<RFC 3339>]  # name\n\
# Add with `peerup auth add <peer-id> --comment <name>` or pair with `peerup invite` / `peerup join`.\n";

/// Where init writes: `--dir`, else the directory of `--config`, else
/// `~/.config/peerup`.
pub(crate) fn target_dir(global: &Global, dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_owned());
    }
    if let Some(c) = &global.config {
        return Ok(c
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned));
    }
    let home = context::home().ok_or_else(|| anyhow!("$HOME is not set; pass --dir <path>"))?;
    Ok(default_config_dir(&home))
}

/// The config file init writes in `dir`.
pub(crate) fn target_config(global: &Global, dir: &Path) -> PathBuf {
    match &global.config {
        Some(c)
            if c.parent()
                .map(|p| p == dir || p.as_os_str().is_empty())
                .unwrap_or(false) =>
        {
            dir.join(c.file_name().map_or_else(
                || std::ffi::OsString::from("config.yaml"),
                ToOwned::to_owned,
            ))
        }
        _ => dir.join("config.yaml"),
    }
}

fn parse_relay(input: &str, peer_id: Option<&str>, interactive: bool) -> Result<RelayAddr> {
    let given = peer_id.map(super::peer_arg).transpose()?;
    match relay_addr::parse_input(input, given) {
        Ok(r) => Ok(r),
        Err(RelayInputError::MissingPeerId { .. }) if interactive => {
            let id: String = dialoguer::Input::new()
                .with_prompt("Relay peer ID (printed by peerup-relay at start)")
                .interact_text()
                .map_err(|e| anyhow!("reading the relay peer ID: {e}"))?;
            Ok(relay_addr::parse_input(
                input,
                Some(super::peer_arg(id.trim())?),
            )?)
        }
        Err(e) => Err(anyhow!("--relay: {e}")),
    }
}

/// Creates (or completes) a config directory. Returns the config path.
pub(crate) fn create(
    dir: &Path,
    config_path: &Path,
    relays: &[RelayAddr],
    force: bool,
) -> Result<peerup_core::PeerId> {
    if config_path.exists() && !force {
        bail!(
            "{} already exists; pass --force to overwrite it (the identity key and authorized_keys are kept)",
            config_path.display()
        );
    }
    peerup_net::fs::ensure_private_dir(dir)?;
    let key = dir.join("identity.key");
    let keypair = peerup_net::node::load_or_create_identity(&key)?;
    let ak = dir.join("authorized_keys");
    if !ak.exists() {
        context::write(&ak, AUTHORIZED_KEYS_HEADER)?;
    }
    let text = render_template("identity.key", relays, None);
    // The template must load: never leave a config the daemon rejects.
    peerup_core::config::Config::parse(config_path, &text)
        .map_err(|e| anyhow!("internal: generated config: {e}"))?;
    context::write(config_path, &text)?;
    Ok(keypair.public().to_peer_id())
}

pub(crate) async fn run(global: &Global, args: InitArgs) -> Result<ExitCode> {
    let interactive = !args.yes && crate::ui::interactive();
    let dir = target_dir(global, args.dir.as_deref())?;
    let config_path = target_config(global, &dir);
    if config_path.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it (the identity key and authorized_keys are kept)",
            config_path.display()
        );
    }
    let relay_input = match (&args.relay, interactive) {
        (Some(r), _) => Some(r.clone()),
        (None, true) => {
            let r: String = dialoguer::Input::new()
                .with_prompt("Relay address (multiaddr, IP or IP:PORT; empty to add one later)")
                .allow_empty(true)
                .interact_text()
                .map_err(|e| anyhow!("reading the relay address: {e}"))?;
            Some(r).filter(|r| !r.trim().is_empty())
        }
        (None, false) => None,
    };
    let relays = match relay_input {
        Some(input) => vec![parse_relay(
            &input,
            args.relay_peer_id.as_deref(),
            interactive,
        )?],
        None => Vec::new(),
    };
    let peer = create(&dir, &config_path, &relays, args.force)?;
    println!("Created {}", config_path.display());
    println!(
        "Identity: {} (keep it private)",
        dir.join("identity.key").display()
    );
    println!("Peers:    {}", dir.join("authorized_keys").display());
    println!();
    println!("Your peer ID: {peer}");
    println!(
        "Share it with the machines that should reach this one, and authorize it on your relay:"
    );
    println!("  peerup-relay authorize {peer}");
    if relays.is_empty() {
        println!();
        println!("No relay configured yet: peerup relay add <address> --peer-id <relay-peer-id>");
    }
    println!();
    println!(
        "Next: pair with another machine (peerup invite / peerup join), then run peerup daemon."
    );
    Ok(ExitCode::SUCCESS)
}
