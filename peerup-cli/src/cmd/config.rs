//! `peerup config validate|show|rollback|apply|confirm` (WIRE.md §10).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use peerup_core::config::Config;
use peerup_core::config::confirm::Confirm;
use peerup_net::runtime::system_wall_clock;

use crate::Global;
use crate::context::{self, Ctx};
use crate::control::{self, Request};

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigCommand {
    /// Check the config and the files it names.
    Validate,
    /// Print the config with every default filled in.
    Show,
    /// Restore the last-known-good config (archived when the daemon ran on a
    /// confirmed config).
    Rollback,
    /// Swap in a new config that reverts unless confirmed in time.
    #[command(
        after_help = "Example (on a remote machine):\n  peerup config apply new.yaml --confirm-timeout 5m\n  peerup ping home          # still reachable?\n  peerup config confirm     # keep it; otherwise it reverts after 5m"
    )]
    Apply {
        /// The new config file.
        new: PathBuf,
        /// How long until an unconfirmed change reverts.
        #[arg(long, default_value = "5m", value_parser = super::invite::duration_arg)]
        confirm_timeout: Duration,
    },
    /// Keep a config applied with `apply`.
    Confirm,
}

fn validate(ctx: &Ctx) -> Result<()> {
    let key = ctx.config.key_file_path(&ctx.path);
    match peerup_net::fs::read_private(&key) {
        Ok(bytes) => {
            peerup_core::identity::decode(&bytes).map_err(|e| anyhow!("{}: {e}", key.display()))?;
        }
        Err(e) if e.is_not_found() => eprintln!(
            "note: {} does not exist yet (created on first start)",
            key.display()
        ),
        Err(e) => bail!("{e}"),
    }
    let ak = ctx.authorized_keys();
    match peerup_net::fs::read_private(&ak) {
        Ok(bytes) => {
            peerup_net::node::parse_authorized_keys(&ak, &bytes)?;
        }
        Err(e) if e.is_not_found() && ctx.config.security.enable_connection_gating => bail!(
            "{}: missing, and connection gating is on: the daemon would refuse to start (create it with `peerup auth add`)",
            ak.display()
        ),
        Err(e) if e.is_not_found() => {}
        Err(e) => bail!("{e}"),
    }
    Ok(())
}

pub(crate) async fn run(global: &Global, cmd: ConfigCommand) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let paths = peerup_net::confirm::paths(&ctx.path)?;
    match cmd {
        ConfigCommand::Validate => {
            validate(&ctx)?;
            println!("{}: OK", ctx.path.display());
        }
        ConfigCommand::Show => {
            println!("# {} (defaults filled in)", ctx.path.display());
            print!("{}", ctx.config.render());
        }
        ConfigCommand::Rollback => {
            let archive = match peerup_net::fs::read(&paths.last_good) {
                Ok(b) => Some(b),
                Err(e) if e.is_not_found() => None,
                Err(e) => bail!("{e}"),
            };
            if let Some(a) = &archive {
                let text = String::from_utf8_lossy(a);
                Config::parse(&paths.last_good, &text)
                    .map_err(|e| anyhow!("the archived config does not load: {e}"))?;
            }
            let mut m = Confirm::offline(
                ctx.path.clone(),
                paths.clone(),
                &peerup_net::confirm::read_state(&paths),
            );
            m.rollback(archive.as_deref())?;
            peerup_net::confirm::drain(&mut m)?;
            println!(
                "Restored the last-known-good config to {}",
                ctx.path.display()
            );
            restart_daemon(&ctx).await?;
        }
        ConfigCommand::Apply {
            new,
            confirm_timeout,
        } => {
            let bytes = std::fs::read(&new).map_err(|e| anyhow!("{}: {e}", new.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("{}: not UTF-8 text", new.display()))?;
            // Validate as it will live: at the config's path, so relative
            // paths resolve the same way.
            let (_, warnings) = Config::parse(&new, &text)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            let mut m = Confirm::offline(
                ctx.path.clone(),
                paths.clone(),
                &peerup_net::confirm::read_state(&paths),
            );
            m.apply(
                system_wall_clock(),
                ctx.text.as_bytes(),
                text.as_bytes(),
                confirm_timeout,
            )?;
            peerup_net::confirm::drain(&mut m)?;
            let deadline = m
                .pending_deadline()
                .map(|d| d.to_string())
                .unwrap_or_default();
            println!("Applied {} to {}.", new.display(), ctx.path.display());
            println!(
                "Run `peerup config confirm` before {deadline} to keep it; otherwise it reverts."
            );
            restart_daemon(&ctx).await?;
        }
        ConfigCommand::Confirm => {
            if let Some(client) = control::connect(&ctx.socket(), &Request::Confirm).await? {
                println!("{}", client.finish().await?);
            } else {
                let mut m = Confirm::offline(
                    ctx.path.clone(),
                    paths.clone(),
                    &peerup_net::confirm::read_state(&paths),
                );
                m.confirm(ctx.text.as_bytes())?;
                peerup_net::confirm::drain(&mut m)?;
                println!(
                    "Config confirmed: {} stays, and is now the last-known-good.",
                    ctx.path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks a running daemon to exit so its service manager restarts it on the
/// config now on disk.
async fn restart_daemon(ctx: &Ctx) -> Result<()> {
    if let Some(client) = control::connect(&ctx.socket(), &Request::Restart).await? {
        let msg = client.finish().await?;
        println!("Running daemon: {msg} (its service manager starts it again).");
    } else {
        println!(
            "No daemon is running; the change applies when it starts (e.g. sudo systemctl restart peerup)."
        );
    }
    Ok(())
}
