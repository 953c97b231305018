//! `peerup verify <peer>`: the verification code of this machine and a
//! peer (WIRE.md §15), compared by a person on both screens; a match is
//! recorded as `verified=` on the peer's `authorized_keys` line.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use peerup_core::authorized_keys::{Document, VERIFIED};
use peerup_core::verify::Code;

use crate::Global;
use crate::context::{self, Ctx};

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The peer: a name from the config or a peer ID.
    peer: String,
    /// Record the match without asking (after comparing the codes).
    #[arg(long, conflicts_with = "show")]
    yes: bool,
    /// Only show the code.
    #[arg(long)]
    show: bool,
}

fn read(ctx: &Ctx) -> Result<Document> {
    let path = ctx.authorized_keys();
    match peerup_net::fs::read_private(&path) {
        Ok(bytes) => Ok(Document::parse(&String::from_utf8_lossy(&bytes))),
        Err(e) if e.is_not_found() => Ok(Document::new()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn run(global: &Global, args: &VerifyArgs) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let us = super::our_peer_id(&ctx)?;
    let peer = super::resolve(&ctx, &args.peer)?;
    if peer == us {
        bail!("{} is this machine; verify another one", args.peer);
    }
    let code = Code::new(&us, &peer);
    let label =
        super::name_of(&ctx, &peer).map_or_else(|| peer.to_string(), |n| format!("{n} ({peer})"));
    println!("Verification code with {label}:\n");
    println!("    {}    {}\n", code.emoji_text(), code.number_text());
    println!(
        "On the other machine, `peerup verify {us}` must show the same code: compare all four emoji and the number (the number alone is too short to prove anything)."
    );
    if args.show {
        return Ok(ExitCode::SUCCESS);
    }
    let path = ctx.authorized_keys();
    let doc = read(&ctx)?;
    let Some(entry) = doc.get(&peer) else {
        bail!(
            "{peer} is not in {}: pair with it first (`peerup invite` / `peerup join`)",
            path.display()
        );
    };
    if entry.attributes().is_verified_for(&code) {
        println!("Already verified.");
        return Ok(ExitCode::SUCCESS);
    }
    let confirmed = if args.yes {
        true
    } else if crate::ui::interactive() {
        dialoguer::Confirm::new()
            .with_prompt("Does the other machine show exactly these four emoji and this number?")
            .default(false)
            .interact()
            .map_err(|e| anyhow!("reading the answer: {e}"))?
    } else {
        bail!(
            "compare the codes on both machines, then run `peerup verify {} --yes` (no terminal to ask on)",
            args.peer
        );
    };
    if !confirmed {
        println!(
            "Not verified. If the codes differ, someone may stand between the two machines: remove the peer (`peerup auth remove {}`) and pair again.",
            args.peer
        );
        return Ok(ExitCode::FAILURE);
    }
    let edit = peerup_net::fs::lock_for_edit(&path)?;
    let mut doc = read(&ctx)?;
    doc.set_attribute(&peer, VERIFIED, &code.verified_value())
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    context::write(&path, &doc.render())?;
    drop(edit);
    println!(
        "Verified {label}: recorded {VERIFIED}={} in {}",
        code.verified_value(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
