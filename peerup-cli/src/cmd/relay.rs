//! `peerup relay add|list|remove`: relay addresses in the config.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use peerup_core::config::edit;
use peerup_core::relay_addr::{self, RelayAddr, RelayInputError};

use crate::Global;
use crate::context;

#[derive(Subcommand, Debug)]
pub(crate) enum RelayCommand {
    /// Add a relay.
    #[command(
        after_help = "The address can be:\n  /ip4/1.2.3.4/tcp/7777/p2p/12D3KooW...   full multiaddr\n  1.2.3.4:7777                            IP:PORT (with --peer-id, or asked)\n  1.2.3.4                                 bare IP (port 7777)\n  [2001:db8::1]:7777                      IPv6\n  ws://1.2.3.4:443                        WebSocket (networks that let only web traffic out)\n  wss://relay.example.com                 WebSocket in TLS (a real certificate for that name)\n\nA relay may be added at several addresses (e.g. TCP 7777 and ws://...:443):\nthey are dialed at once and the first that connects is used. Several relays\ngive failover: the daemon keeps a reservation on each.\n\nExamples:\n  peerup relay add 203.0.113.7 --peer-id 12D3KooW...\n  peerup relay add ws://203.0.113.7:443 --peer-id 12D3KooW..."
    )]
    Add {
        /// Multiaddr, IP, IP:PORT, [IPv6]:PORT, ws://HOST:PORT, wss://HOST.
        address: String,
        /// The relay's peer ID, when the address has none.
        #[arg(long)]
        peer_id: Option<String>,
    },
    /// List configured relays.
    List,
    /// Remove a relay.
    Remove {
        /// Its multiaddr (as `peerup relay list` prints it).
        address: String,
        /// Remove even the last relay (this machine then cannot be reached
        /// from behind NAT).
        #[arg(short, long)]
        force: bool,
    },
}

fn parse(address: &str, peer_id: Option<&str>) -> Result<RelayAddr> {
    let given = peer_id.map(super::peer_arg).transpose()?;
    match relay_addr::parse_input(address, given) {
        Ok(r) => Ok(r),
        Err(RelayInputError::MissingPeerId { .. }) if crate::ui::interactive() => {
            let id: String = dialoguer::Input::new()
                .with_prompt("Relay peer ID (printed by peerup-relay at start)")
                .interact_text()
                .map_err(|e| anyhow!("reading the relay peer ID: {e}"))?;
            relay_addr::parse_input(address, Some(super::peer_arg(id.trim())?))
                .map_err(anyhow::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn run(global: &Global, cmd: RelayCommand) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    match cmd {
        RelayCommand::Add { address, peer_id } => {
            let relay = parse(&address, peer_id.as_deref())?;
            let text = edit::add_relay(&ctx.text, &relay)
                .map_err(|e| anyhow!("{}", e.with_file(&ctx.path)))?;
            context::write(&ctx.path, &text)?;
            println!("Added relay {relay} to {}", ctx.path.display());
            println!("Restart the daemon to use it.");
        }
        RelayCommand::List => {
            if ctx.config.relay.addresses.is_empty() {
                println!("No relays configured (peerup relay add <address>)");
            }
            for r in &ctx.config.relay.addresses {
                println!("{r}");
            }
        }
        RelayCommand::Remove { address, force } => {
            let relay: RelayAddr = address.trim().parse()?;
            let present = ctx
                .config
                .relay
                .addresses
                .iter()
                .any(|r| r.multiaddr() == relay.multiaddr());
            if present && ctx.config.relay.addresses.len() == 1 && !force {
                bail!(
                    "{relay} is the only relay: without one this machine cannot be reached from behind NAT; \
                     pass -f to remove it anyway"
                );
            }
            let text = edit::remove_relay(&ctx.text, &relay)
                .map_err(|e| anyhow!("{}", e.with_file(&ctx.path)))?;
            context::write(&ctx.path, &text)?;
            println!("Removed relay {relay} from {}", ctx.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
