//! `peerup auth add|list|remove|validate`: the authorized_keys file.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use peerup_core::PeerId;
use peerup_core::authorized_keys::{Attributes, Document, Status};
use peerup_core::config::units::parse_duration;
use peerup_core::time::UnixTime;
use peerup_net::runtime::system_wall_clock;

use crate::Global;
use crate::context::{self, Ctx};
use crate::control::{self, Request};

#[derive(Subcommand, Debug)]
pub(crate) enum AuthCommand {
    /// Allow a peer to connect to this machine.
    #[command(
        after_help = "Examples:\n  peerup auth add 12D3KooW... --comment laptop\n  peerup auth add 12D3KooW... --expires 2027-01-31T00:00:00Z\n  peerup auth add 12D3KooW... --expires 72h"
    )]
    Add {
        /// The peer's ID (peerup whoami on it).
        peer: String,
        /// A label (its name).
        #[arg(long)]
        comment: Option<String>,
        /// Expiry: RFC 3339 time, or a duration from now (72h).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List authorized peers.
    List,
    /// Remove a peer (by peer ID or name); a running daemon drops it at once.
    Remove {
        /// Peer ID or name.
        peer: String,
    },
    /// Check authorized_keys; every bad line is reported with its number.
    Validate,
}

fn read(ctx: &Ctx) -> Result<Document> {
    let path = ctx.authorized_keys();
    match peerup_net::fs::read_private(&path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
            Ok(Document::parse(&text))
        }
        Err(e) if e.is_not_found() => Ok(Document::new()),
        Err(e) => Err(e.into()),
    }
}

fn expiry(text: &str) -> Result<UnixTime> {
    if let Ok(t) = UnixTime::parse_rfc3339(text) {
        return Ok(t);
    }
    let d = parse_duration(text)
        .map_err(|_| anyhow!("--expires `{text}` is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a duration (72h)"))?;
    Ok(system_wall_clock().saturating_add(d))
}

/// Tells a running daemon to apply the file now, and fails unless it did:
/// the daemon confirms `peer` is now `authorized` (or not).
async fn notify(ctx: &Ctx, peer: PeerId, authorized: bool) -> Result<()> {
    let text = Some(peer.to_string());
    let request = if authorized {
        Request::Reload {
            expect_denied: None,
            expect_authorized: text,
            expect_service: None,
            expect_forward: None,
        }
    } else {
        Request::Reload {
            expect_denied: text,
            expect_authorized: None,
            expect_service: None,
            expect_forward: None,
        }
    };
    match control::connect(&ctx.socket(), &request).await? {
        Some(client) => {
            let msg = client
                .finish()
                .await
                .map_err(|e| anyhow!("{} was changed, but {e}", ctx.authorized_keys().display()))?;
            println!("Running daemon: {msg}");
        }
        None => println!("No daemon is running; it applies the file when it starts."),
    }
    Ok(())
}

pub(crate) async fn run(global: &Global, cmd: AuthCommand) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let path = ctx.authorized_keys();
    match cmd {
        AuthCommand::Add {
            peer,
            comment,
            expires,
        } => {
            let peer = super::peer_arg(&peer)?;
            let mut attrs = Attributes::new();
            if let Some(e) = expires {
                attrs = attrs.with_expires(expiry(&e)?);
            }
            let _edit = peerup_net::fs::lock_for_edit(&path)?;
            let mut doc = read(&ctx)?;
            // A peer removed from a pairing group is kept as an expired
            // line (see Remove): adding it again replaces that line.
            if doc.get(&peer).is_some_and(|e| {
                e.attributes()
                    .get(peerup_core::authorized_keys::GROUP)
                    .is_some()
                    && e.is_expired(system_wall_clock())
            }) {
                let _ = doc.remove(&peer);
            }
            if doc.contains(&peer) {
                bail!(
                    "{peer} is already in {} (remove it first to change it)",
                    path.display()
                );
            }
            doc.add(peer, attrs, comment.as_deref())
                .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            context::write(&path, &doc.render())?;
            drop(_edit);
            println!("Authorized {peer} in {}", path.display());
            notify(&ctx, peer, true).await?;
        }
        AuthCommand::List => {
            let doc = read(&ctx)?;
            let t = system_wall_clock();
            let us = super::our_peer_id(&ctx).ok();
            if doc.is_empty() {
                println!("No authorized peers in {}", path.display());
            }
            for e in doc.entries() {
                let name = super::name_of(&ctx, &e.peer()).unwrap_or_default();
                let state = match doc.status(&e.peer(), t) {
                    Status::Authorized => String::new(),
                    Status::Expired { at } => format!("  EXPIRED {at}"),
                    Status::Invalid { line } => format!("  DENIED (invalid line {line})"),
                    Status::NotListed => String::new(),
                };
                let expires = e
                    .expires()
                    .map(|x| format!("  expires {x}"))
                    .unwrap_or_default();
                let verified = match (
                    us,
                    e.attributes().get(peerup_core::authorized_keys::VERIFIED),
                ) {
                    (_, None) => "",
                    (Some(us), Some(_))
                        if e.attributes()
                            .is_verified_for(&peerup_core::verify::Code::new(&us, &e.peer())) =>
                    {
                        "  verified"
                    }
                    (_, Some(_)) => "  verified= DOES NOT MATCH (run `peerup verify` again)",
                };
                let group = e
                    .attributes()
                    .get(peerup_core::authorized_keys::GROUP)
                    .map(|g| format!("  group {g}"))
                    .unwrap_or_default();
                println!(
                    "{}  {:<12} {}{verified}{group}{expires}{state}",
                    e.peer(),
                    name,
                    e.comment().unwrap_or("")
                );
            }
            for err in doc.errors() {
                eprintln!("warning: {}: {err}", path.display());
            }
        }
        AuthCommand::Remove { peer } => {
            let peer = super::resolve(&ctx, &peer)?;
            let edit = peerup_net::fs::lock_for_edit(&path)?;
            let mut doc = read(&ctx)?;
            // A member of a relay's pairing group would come back with the
            // relay's next introduction if its line went away: its line is
            // kept, expired now, which denies it and tells introductions
            // it is known. `peerup auth add` authorizes it again.
            let grouped = doc.get(&peer).is_some_and(|e| {
                e.attributes()
                    .get(peerup_core::authorized_keys::GROUP)
                    .is_some()
            });
            if grouped {
                doc.set_expires(&peer, system_wall_clock())
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            } else {
                doc.remove(&peer)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
            }
            context::write(&path, &doc.render())?;
            drop(edit);
            if grouped {
                println!(
                    "Removed {peer}: its line in {} stays, expired now, so the relay's introductions cannot bring it back",
                    path.display()
                );
            } else {
                println!("Removed {peer} from {}", path.display());
            }
            notify(&ctx, peer, false).await?;
        }
        AuthCommand::Validate => {
            let bytes = peerup_net::fs::read_private(&path)?;
            let doc = peerup_net::node::parse_authorized_keys(&path, &bytes)?;
            println!("{}: OK ({} peers)", path.display(), doc.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
