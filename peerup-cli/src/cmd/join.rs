//! `peerup join`: accept an invite; creates a config if none exists.
//!
//! `--non-interactive` (the Go version's flag, for scripts): the code comes
//! from the arguments or `$PEERUP_INVITE_CODE` only, nothing is asked and
//! no spinner drawn, notes go to stderr, and stdout gets one line: the
//! paired peer's ID, then its name when it gave one.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use peerup_core::invite::InviteCode;
use peerup_core::naming::Name;
use peerup_core::relay_addr::RelayAddr;
use peerup_net::fs::LockMode;

use crate::Global;
use crate::context;
use crate::control::{Reply, Request};

#[derive(Args, Debug)]
pub(crate) struct JoinArgs {
    /// The invite code (its groups may be given as separate words); else
    /// $PEERUP_INVITE_CODE, else standard input (or a prompt on a
    /// terminal).
    #[arg(value_name = "CODE", num_args = 0..)]
    code: Vec<String>,
    /// This machine's friendly name, given to the inviter (e.g. laptop).
    #[arg(long)]
    name: Option<String>,
    /// For scripts: take the code from the arguments or
    /// $PEERUP_INVITE_CODE only, never prompt or read stdin, and print only
    /// the result on stdout: `<peer-id> [<name>]`, one line.
    #[arg(long)]
    non_interactive: bool,
}

fn read_code(args: &JoinArgs) -> Result<String> {
    if !args.code.is_empty() {
        return Ok(args.code.join(" "));
    }
    if let Ok(c) = std::env::var("PEERUP_INVITE_CODE")
        && !c.trim().is_empty()
    {
        return Ok(c);
    }
    if args.non_interactive {
        return Err(anyhow!(
            "no invite code: with --non-interactive, pass it as an argument or in $PEERUP_INVITE_CODE (nothing is asked and stdin is not read)"
        ));
    }
    if crate::ui::interactive() {
        let c: String = dialoguer::Input::new()
            .with_prompt("Invite code")
            .interact_text()
            .map_err(|e| anyhow!("reading the invite code: {e}"))?;
        return Ok(c);
    }
    let mut c = String::new();
    std::io::stdin()
        .read_to_string(&mut c)
        .map_err(|e| anyhow!("reading the invite code from stdin: {e}"))?;
    if c.trim().is_empty() {
        return Err(anyhow!(
            "no invite code: pass it as an argument, in $PEERUP_INVITE_CODE, or on stdin"
        ));
    }
    Ok(c)
}

pub(crate) async fn run(global: &Global, args: JoinArgs) -> Result<ExitCode> {
    let quiet = args.non_interactive;
    let code_text = read_code(&args)?;
    let code = InviteCode::decode(&code_text)
        .map_err(|e| anyhow!("invalid invite code: {e} (paste the whole code as one argument, quoted if it has spaces)"))?;
    let name = args
        .name
        .as_deref()
        .map(Name::new)
        .transpose()
        .map_err(|e| anyhow!("--name: {e}"))?;
    let relay = RelayAddr::new(code.relay_addr()).map_err(|e| anyhow!("invite code relay: {e}"))?;
    // A first machine: create its config from the code's relay.
    let ctx = match context::find(global) {
        Ok(path) => context::load_path(&path, true)?,
        Err(_) => {
            let dir = super::init::target_dir(global, None)?;
            let path: PathBuf = super::init::target_config(global, &dir);
            let peer = super::init::create(&dir, &path, std::slice::from_ref(&relay), false)?;
            let note = format!(
                "Created {} (peer ID {peer}) with the relay from the invite",
                path.display()
            );
            if quiet {
                eprintln!("{note}");
            } else {
                println!("{note}");
            }
            context::load_path(&path, true)?
        }
    };
    if !ctx
        .config
        .relay
        .addresses
        .iter()
        .any(|r| r.peer_id() == relay.peer_id())
    {
        eprintln!(
            "note: the inviter's relay {relay} is not in your config; add it with `peerup relay add {relay}`"
        );
    }
    let request = Request::Join {
        code: code_text.clone(),
        name: args.name.clone(),
    };
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        crate::ui::spinner("Connecting to the inviter through the relay...")
    };
    let node = match super::daemon_or_node(&ctx, &request, false, LockMode::Exclusive).await {
        Ok(super::Through::Daemon(mut client)) => {
            while let Some(reply) = client.next().await? {
                match reply {
                    Reply::Paired { peer, name } => {
                        pb.finish_and_clear();
                        joined(&peer, name.as_deref(), quiet);
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
            return Err(anyhow!("the daemon stopped before the join finished"));
        }
        Ok(super::Through::Own(node)) => node,
        Err(e) => {
            pb.finish_and_clear();
            return Err(e);
        }
    };
    let result = node.join(&code, name).await;
    pb.finish_and_clear();
    node.shutdown().await;
    let p = result?;
    joined(
        &p.peer.to_string(),
        p.name.as_ref().map(Name::as_str),
        quiet,
    );
    Ok(ExitCode::SUCCESS)
}

/// Says who was paired: for people, with what to try next; with
/// `--non-interactive`, as `<peer-id> [<name>]` alone (a name never holds
/// a space).
fn joined(peer: &str, name: Option<&str>, quiet: bool) {
    if quiet {
        match name {
            Some(n) => println!("{peer} {n}"),
            None => println!("{peer}"),
        }
        return;
    }
    match name {
        Some(n) => {
            println!("Joined {n} ({peer}): added to authorized_keys and names.");
            println!("Try: peerup ping {n}");
        }
        None => println!("Joined {peer}: added to authorized_keys."),
    }
}
