//! `peerup join`: accept an invite (code version 1, from a peer) or join a
//! relay's pairing group (version 2, from `peerup-relay pair`); creates a
//! config if none exists.
//!
//! `--non-interactive` (the Go version's flag, for scripts): the code comes
//! from the arguments or `$PEERUP_INVITE_CODE` only, nothing is asked and
//! no spinner drawn, notes go to stderr, and stdout gets one line: the
//! paired peer's ID, then its name when it gave one (for a relay's group:
//! the relay's ID, then the group).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use peerup_core::invite::{AnyCode, PairingCode};
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
    /// After joining a relay's group, do not start `peerup daemon` (it is
    /// started in the background when none runs).
    #[arg(long)]
    no_daemon: bool,
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
    let code = match AnyCode::decode(&code_text)
        .map_err(|e| anyhow!("invalid invite code: {e} (paste the whole code as one argument, quoted if it has spaces)"))?
    {
        AnyCode::Invite(c) => c,
        AnyCode::Pairing(c) => return run_pairing(global, &args, &code_text, &c).await,
    };
    let name = args
        .name
        .as_deref()
        .map(Name::new)
        .transpose()
        .map_err(|e| anyhow!("--name: {e}"))?;
    let relay = RelayAddr::new(code.relay_addr()).map_err(|e| anyhow!("invite code relay: {e}"))?;
    // A first machine: create its config from the code's relay.
    let ctx = config_for(global, &relay, "invite", quiet)?;
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

/// The daemon's answer to a relay join.
pub(crate) fn relay_joined_reply(j: &peerup_net::node::RelayJoined) -> Reply {
    Reply::RelayJoined {
        relay: j.relay.to_string(),
        group: j.group.clone(),
        members: j
            .members
            .iter()
            .map(|(p, n)| (p.to_string(), n.as_ref().map(Name::to_string)))
            .collect(),
        relay_added: j.relay_added,
    }
}

/// Loads the config, or creates one around `relay` for a first machine.
fn config_for(global: &Global, relay: &RelayAddr, what: &str, quiet: bool) -> Result<context::Ctx> {
    match context::find(global) {
        Ok(path) => context::load_path(&path, true),
        Err(_) => {
            let dir = super::init::target_dir(global, None)?;
            let path: PathBuf = super::init::target_config(global, &dir);
            let peer = super::init::create(&dir, &path, std::slice::from_ref(relay), false)?;
            let note = format!(
                "Created {} (peer ID {peer}) with the relay from the {what}",
                path.display()
            );
            if quiet {
                eprintln!("{note}");
            } else {
                println!("{note}");
            }
            context::load_path(&path, true)
        }
    }
}

/// `peerup join <version-2 code>`: joins the relay's pairing group.
async fn run_pairing(
    global: &Global,
    args: &JoinArgs,
    code_text: &str,
    code: &PairingCode,
) -> Result<ExitCode> {
    let name = args
        .name
        .as_deref()
        .map(Name::new)
        .transpose()
        .map_err(|e| anyhow!("--name: {e}"))?;
    let relay =
        RelayAddr::new(code.relay_addr()).map_err(|e| anyhow!("pairing code relay: {e}"))?;
    let quiet = args.non_interactive;
    // Notes go to stderr with --non-interactive: stdout is the result.
    let say = |text: String| {
        if quiet {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    let ctx = config_for(global, &relay, "pairing code", quiet)?;
    let us = super::our_peer_id(&ctx)?;
    let request = Request::Join {
        code: code_text.to_owned(),
        name: args.name.clone(),
    };
    let pb = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        crate::ui::spinner("Pairing with the relay...")
    };
    let (joined, daemon_running) =
        match super::daemon_or_node(&ctx, &request, false, LockMode::Exclusive).await {
            Ok(super::Through::Daemon(mut client)) => {
                let mut answer = None;
                while let Some(reply) = client.next().await? {
                    match reply {
                        Reply::RelayJoined {
                            relay,
                            group,
                            members,
                            relay_added,
                        } => {
                            answer = Some((relay, group, members, relay_added));
                            break;
                        }
                        Reply::Error { message } => {
                            pb.finish_and_clear();
                            return Err(anyhow!(message));
                        }
                        _ => {}
                    }
                }
                pb.finish_and_clear();
                let Some(a) = answer else {
                    return Err(anyhow!("the daemon stopped before the join finished"));
                };
                (a, true)
            }
            Ok(super::Through::Own(node)) => {
                let result = node.join_relay(code, name).await;
                pb.finish_and_clear();
                node.shutdown().await;
                let j = result?;
                let Reply::RelayJoined {
                    relay,
                    group,
                    members,
                    relay_added,
                } = relay_joined_reply(&j)
                else {
                    unreachable!("relay_joined_reply makes a RelayJoined")
                };
                ((relay, group, members, relay_added), false)
            }
            Err(e) => {
                pb.finish_and_clear();
                return Err(e);
            }
        };
    let (relay_id, group, members, relay_added) = joined;
    say(format!(
        "Joined pairing group {group} on relay {relay_id}: this machine is authorized there."
    ));
    if relay_added {
        say(format!("Added the relay to {}.", ctx.path.display()));
    }
    if members.is_empty() {
        say("You are the first machine of the group; the others are added as they join.".into());
    }
    for (peer, name) in &members {
        let label = name
            .as_ref()
            .map_or_else(|| peer.clone(), |n| format!("{n} ({peer})"));
        let code = peer
            .parse::<peerup_core::PeerId>()
            .map(|p| peerup_core::verify::Code::new(&us, &p));
        println!("Authorized {label} [unverified]");
        if let Ok(c) = code {
            println!(
                "  verification code: {}  {}",
                c.emoji_text(),
                c.number_text()
            );
            println!(
                "  check it shows the same with `peerup verify {us}` there, then `peerup verify {}` here",
                name.as_deref().unwrap_or(peer)
            );
        }
    }
    if daemon_running {
        if relay_added {
            say("Restart the daemon to reserve on the new relay.".into());
        }
    } else if args.no_daemon {
        say("Start the daemon to be reachable: peerup daemon".into());
    } else {
        say(start_daemon(&ctx)?);
    }
    if quiet {
        println!("{relay_id} {group}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts `peerup daemon` for this config in the background (its own
/// session, output to `daemon.log` beside the config) and waits until it
/// answers on its control socket.
fn start_daemon(ctx: &context::Ctx) -> Result<String> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow!("cannot find this program to start the daemon: {e}"))?;
    let dir = ctx
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let log_path = dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| anyhow!("{}: {e}", log_path.display()))?;
    let child = std::process::Command::new(exe)
        .arg("--config")
        .arg(&ctx.path)
        .arg("daemon")
        .stdin(std::process::Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| anyhow!("{}: {e}", log_path.display()))?,
        )
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow!("could not start the daemon ({e}); start it with `peerup daemon`"))?;
    let socket = ctx.socket();
    for _ in 0..100 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(format!(
                "Started the daemon (pid {}, log {}); run it as a service to keep it across reboots (see README).",
                child.id(),
                log_path.display()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(format!(
        "Started the daemon (pid {}), but it is not answering yet; see {}",
        child.id(),
        log_path.display()
    ))
}
