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
use peerup_net::fs::LockMode;

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
    /// Cancel the invite the running daemon has open (its code stops
    /// working at once). An invite made without a daemon ends when its
    /// `peerup invite` ends (Ctrl-C).
    #[arg(long, conflicts_with_all = ["name", "non_interactive"])]
    cancel: bool,
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
    if let Some(qr) = crate::ui::qr(code) {
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
    if args.cancel {
        return cancel(&ctx).await;
    }
    let quiet = args.non_interactive;
    // The running daemon holds the identity: invite through it. The
    // invite lasts as long as this command: Ctrl-C (or killing it)
    // cancels it in the daemon too.
    let request = Request::Invite {
        name: args.name.clone(),
        ttl_secs: args.ttl.as_secs().max(1),
    };
    let node = match super::daemon_or_node(&ctx, &request, true, LockMode::Exclusive).await? {
        super::Through::Daemon(client) => return through_daemon(client, quiet).await,
        super::Through::Own(node) => node,
    };
    // No daemon: this command runs the node itself while it waits.
    super::wait_reserved(&node, Duration::from_secs(30)).await?;
    let invite = node.invite(InviteOptions {
        name,
        ttl: args.ttl,
        ..InviteOptions::default()
    })?;
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
            if let Some(m) = progress_text(p) {
                pb.suspend(|| eprintln!("{m}"));
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
        Err(e) => Err(e.into()),
    }
}

/// The line shown for a progress report, if any.
pub(crate) fn progress_text(p: &InviteProgress) -> Option<String> {
    match p {
        InviteProgress::AttemptFailed {
            peer,
            reason,
            attempts_left,
        } => Some(format!(
            "join attempt from {peer} failed: {reason} ({attempts_left} attempts left before the code burns)"
        )),
        InviteProgress::PeerBlocked { peer } => Some(format!(
            "refusing {peer} for the rest of this invite: too many failed attempts"
        )),
        InviteProgress::Acknowledged => Some("the joiner confirmed".to_owned()),
        _ => None,
    }
}

/// Shows the daemon's invite: the code, progress, the outcome.
async fn through_daemon(mut client: control::Client, quiet: bool) -> Result<ExitCode> {
    let mut pb = indicatif::ProgressBar::hidden();
    let result = loop {
        let reply = tokio::select! {
            r = client.next() => r?,
            _ = tokio::signal::ctrl_c() => {
                pb.finish_and_clear();
                // Dropping the connection cancels the invite in the daemon.
                drop(client);
                return Err(anyhow!("the invite was cancelled"));
            }
        };
        let Some(reply) = reply else {
            break Err(anyhow!("the daemon stopped before the invite finished"));
        };
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
                break Ok(ExitCode::SUCCESS);
            }
            Reply::Error { message } => break Err(anyhow!(message)),
            _ => {}
        }
    };
    pb.finish_and_clear();
    result
}

/// `peerup invite --cancel`.
async fn cancel(ctx: &context::Ctx) -> Result<ExitCode> {
    let Some(client) = control::connect(&ctx.socket(), &Request::CancelInvite).await? else {
        return Err(anyhow!(
            "no peerup daemon is running for {}: an invite made without a daemon ends when its `peerup invite` ends (press Ctrl-C there)",
            ctx.path.display()
        ));
    };
    let message = client.finish().await?;
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

fn paired(peer: &str, name: Option<&str>) {
    match name {
        Some(n) => println!("Paired with {n} ({peer}): added to authorized_keys and names."),
        None => println!("Paired with {peer}: added to authorized_keys."),
    }
}
