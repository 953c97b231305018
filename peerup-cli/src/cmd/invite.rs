//! `peerup invite`: a one-time code (and QR code) for pairing.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use peerup_core::config::units::parse_duration;
use peerup_core::naming::Name;
use peerup_core::time::UnixTime;
use peerup_net::node::invite::{InviteOptions, InviteProgress};

use crate::Global;
use crate::context;
use crate::control::{self, Reply, Request};

#[derive(Args, Debug)]
pub(crate) struct InviteArgs {
    /// This machine's friendly name, given to the joiner (e.g. home).
    #[arg(long)]
    name: Option<String>,
    /// How long the code is valid.
    #[arg(long, default_value = "10m", value_parser = duration_arg)]
    ttl: Duration,
    /// Print only the code on stdout (no QR, no spinner) and wait.
    #[arg(long)]
    non_interactive: bool,
}

pub(crate) fn duration_arg(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        Err("must be greater than 0".into())
    } else {
        Ok(d)
    }
}

fn show_code(code: &str, expires: &str, quiet: bool) {
    if quiet {
        println!("{code}");
        let _ = std::io::stdout().flush();
        return;
    }
    println!("Invite code (valid until {expires}, one use):\n");
    println!("  {code}\n");
    if let Ok(qr) = peerup_core::qr::render(code) {
        println!("{qr}");
    }
    println!("On the other machine:  peerup join {code} --name <its-name>");
    println!();
}

fn left(expires: UnixTime) -> String {
    let now = UnixTime::from_system_time(std::time::SystemTime::now());
    crate::ui::human(now.until(expires))
}

pub(crate) async fn run(global: &Global, args: InviteArgs) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let name = args
        .name
        .as_deref()
        .map(Name::new)
        .transpose()
        .map_err(|e| anyhow!("--name: {e}"))?;
    let quiet = args.non_interactive;
    // The running daemon holds the identity: invite through it.
    let request = Request::Invite {
        name: args.name.clone(),
        ttl_secs: args.ttl.as_secs().max(1),
    };
    if let Some(mut client) = control::connect(&ctx.socket(), &request).await? {
        let mut pb = indicatif::ProgressBar::hidden();
        while let Some(reply) = client.next().await? {
            match reply {
                Reply::Code { code, expires_at } => {
                    show_code(&code, &expires_at, quiet);
                    let expires = UnixTime::parse_rfc3339(&expires_at).unwrap_or_default();
                    if !quiet {
                        pb = crate::ui::spinner("");
                        let pb2 = pb.clone();
                        tokio::spawn(async move {
                            while !pb2.is_finished() {
                                pb2.set_message(format!(
                                    "Waiting for a peer to join... ({} left)",
                                    left(expires)
                                ));
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                        });
                    }
                }
                Reply::Progress { message } => pb.suspend(|| eprintln!("{message}")),
                Reply::Paired { peer, name } => {
                    pb.finish_and_clear();
                    paired(&peer, name.as_deref());
                    return Ok(ExitCode::SUCCESS);
                }
                Reply::Error { message } => {
                    pb.finish_and_clear();
                    return Err(anyhow!(message));
                }
                _ => {}
            }
        }
        pb.finish_and_clear();
        return Err(anyhow!("the daemon stopped before the invite finished"));
    }
    // No daemon: this command runs the node itself while it waits.
    let node = super::start_node(&ctx, true).await?;
    super::wait_reserved(&node, Duration::from_secs(30)).await?;
    let invite = node
        .invite(InviteOptions {
            name,
            ttl: args.ttl,
            ..InviteOptions::default()
        })
        .map_err(|e| anyhow!("{e}"))?;
    show_code(invite.code_text(), &invite.expires_at().to_string(), quiet);
    let expires = invite.expires_at();
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        crate::ui::spinner("Waiting for a peer to join...")
    };
    let ticker = {
        let pb = pb.clone();
        tokio::spawn(async move {
            loop {
                pb.set_message(format!(
                    "Waiting for a peer to join... ({} left)",
                    left(expires)
                ));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let canceller = invite.canceller();
    let result = tokio::select! {
        r = invite.wait_with(|p| {
            if let InviteProgress::AttemptFailed { peer, reason, attempts_left } = p {
                pb.suspend(|| eprintln!("join attempt from {peer} failed: {reason} ({attempts_left} attempts left)"));
            }
        }) => r,
        _ = tokio::signal::ctrl_c() => {
            canceller.abort();
            Err(peerup_net::node::invite::InviteError::Cancelled)
        }
    };
    ticker.abort();
    pb.finish_and_clear();
    // Let the joiner's acknowledgement and connection settle before exit.
    node.shutdown().await;
    match result {
        Ok(p) => {
            paired(&p.peer.to_string(), p.name.as_ref().map(Name::as_str));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(anyhow!("{e}")),
    }
}

fn paired(peer: &str, name: Option<&str>) {
    match name {
        Some(n) => println!("Paired with {n} ({peer}): added to authorized_keys and names."),
        None => println!("Paired with {peer}: added to authorized_keys."),
    }
}
