//! `peerup-relay pair`: the operator's side of relay pairing, spoken to
//! the running relay over its control socket (owner-only, like the
//! daemon's). The relay keeps the groups in memory; this prints them.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use peerup_core::config::units::parse_duration;
use peerup_core::pairing::tokens::{DEFAULT_TTL, GroupSpec, MAX_CODES};
use peerup_core::pairing::wire::GroupId;
use peerup_relay::Relay;

/// `peerup-relay pair` arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct PairArgs {
    /// How many machines: one code each (1 to 100).
    #[arg(long, short = 'n', default_value_t = 1, value_name = "N")]
    count: usize,
    /// How long the codes stay valid (30m, 2h, 1d; at most 7d).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    ttl: String,
    /// Authorizations the codes create end this long after each join
    /// (`expires=` on the relay); default: until removed.
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
    /// Name machines that give none `<prefix>-1`, `<prefix>-2`, ...
    #[arg(long, value_name = "PREFIX")]
    name_prefix: Option<String>,
    /// The address the codes carry (/ip4/<public-ip>/tcp/<port>): the one
    /// your machines can reach. Default: the relay's best IPv4 TCP listen
    /// address (public first).
    #[arg(long, value_name = "MULTIADDR")]
    addr: Option<String>,
    /// List the open groups instead.
    #[arg(long, conflicts_with_all = ["revoke", "count", "expires", "name_prefix", "addr"])]
    list: bool,
    /// Revoke a group: its unused codes stop working (machines that
    /// joined stay authorized; `deauthorize` removes them).
    #[arg(long, value_name = "GROUP")]
    revoke: Option<String>,
    /// Print the codes only, one per line (for scripts).
    #[arg(long)]
    quiet: bool,
}

/// A pairing operation sent to the running relay.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum PairRequest {
    Create {
        count: usize,
        ttl_secs: u64,
        expires_secs: Option<u64>,
        name_prefix: Option<String>,
        addr: Option<String>,
    },
    List,
    Revoke {
        group: String,
    },
}

/// What the relay answers.
#[derive(serde::Serialize, serde::Deserialize, Debug, Default)]
pub(crate) struct PairReply {
    group: Option<String>,
    codes: Vec<String>,
    expires: Option<String>,
    relay_addr: Option<String>,
    groups: Vec<GroupLine>,
    members: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct GroupLine {
    id: String,
    expires: String,
    size: usize,
    used: usize,
    burned: usize,
    members: Vec<String>,
}

fn err(message: String) -> super::ControlReply {
    super::ControlReply {
        ok: false,
        message,
        pair: None,
    }
}

/// Serves one pairing operation in the running relay.
pub(crate) async fn serve(relay: &Relay, op: PairRequest) -> super::ControlReply {
    match op {
        PairRequest::Create {
            count,
            ttl_secs,
            expires_secs,
            name_prefix,
            addr,
        } => {
            let addr = match addr
                .map(|a| a.parse::<peerup_core::Multiaddr>())
                .transpose()
            {
                Ok(a) => a,
                Err(e) => return err(format!("--addr: {e}")),
            };
            let spec = GroupSpec {
                ttl: Duration::from_secs(ttl_secs),
                authorization_ttl: expires_secs.map(Duration::from_secs),
                name_prefix,
            };
            match relay.create_pairing_group(count, spec, addr.as_ref()).await {
                Ok(g) => super::ControlReply {
                    ok: true,
                    message: format!("group {} created", g.id),
                    pair: Some(PairReply {
                        group: Some(g.id.to_string()),
                        codes: g.codes,
                        expires: Some(g.expires.to_rfc3339()),
                        relay_addr: Some(g.relay_addr.to_string()),
                        ..PairReply::default()
                    }),
                },
                Err(e) => err(peerup_net::error::chain(&e)),
            }
        }
        PairRequest::List => super::ControlReply {
            ok: true,
            message: String::new(),
            pair: Some(PairReply {
                groups: relay
                    .pairing_groups()
                    .into_iter()
                    .map(|g| GroupLine {
                        id: g.id.to_string(),
                        expires: g.expires.to_rfc3339(),
                        size: g.size,
                        used: g.used,
                        burned: g.burned,
                        members: g
                            .members
                            .iter()
                            .map(|m| format!("{} {}", m.peer, m.name))
                            .collect(),
                    })
                    .collect(),
                ..PairReply::default()
            }),
        },
        PairRequest::Revoke { group } => {
            let Ok(id) = GroupId::new(&group) else {
                return err(format!(
                    "`{group}` is not a group ID (see `peerup-relay pair --list`)"
                ));
            };
            match relay.revoke_pairing_group(&id).await {
                Some(members) => super::ControlReply {
                    ok: true,
                    message: format!("group {id} revoked"),
                    pair: Some(PairReply {
                        members: members
                            .iter()
                            .map(|m| format!("{} {}", m.peer, m.name))
                            .collect(),
                        ..PairReply::default()
                    }),
                },
                None => err(format!(
                    "no open pairing group {id} (it expired, was revoked, or the relay restarted; see `peerup-relay pair --list`)"
                )),
            }
        }
    }
}

fn seconds(flag: &str, text: &str) -> Result<u64> {
    let d = parse_duration(text)
        .map_err(|_| anyhow::anyhow!("{flag} `{text}` is not a duration (like 30m, 2h, 7d)"))?;
    Ok(d.as_secs())
}

/// Runs `peerup-relay pair`.
pub(crate) fn run(config: &Path, socket: &Path, args: &PairArgs) -> Result<()> {
    let op = if args.list {
        PairRequest::List
    } else if let Some(g) = &args.revoke {
        PairRequest::Revoke { group: g.clone() }
    } else {
        if args.count == 0 || args.count > MAX_CODES {
            bail!("--count must be 1 to {MAX_CODES} (got {})", args.count);
        }
        let ttl_secs = seconds("--ttl", &args.ttl)?;
        if ttl_secs == 0 {
            bail!(
                "--ttl must be at least 1s (default {}s)",
                DEFAULT_TTL.as_secs()
            );
        }
        PairRequest::Create {
            count: args.count,
            ttl_secs,
            expires_secs: args
                .expires
                .as_deref()
                .map(|e| seconds("--expires", e))
                .transpose()?,
            name_prefix: args.name_prefix.clone(),
            addr: args.addr.clone(),
        }
    };
    let reply = ask(config, socket, op)?;
    let pair = reply.pair.unwrap_or_default();
    if args.list {
        if pair.groups.is_empty() {
            println!("No pairing groups are open.");
        }
        for g in &pair.groups {
            println!(
                "group {}  {}/{} used, {} burned, valid until {}",
                g.id, g.used, g.size, g.burned, g.expires
            );
            for m in &g.members {
                println!("  {m}");
            }
        }
        return Ok(());
    }
    if args.revoke.is_some() {
        println!("{}", reply.message);
        if !pair.members.is_empty() {
            println!(
                "These machines joined with its codes and stay authorized (remove one with `peerup-relay deauthorize <peer-id>`):"
            );
            for m in &pair.members {
                println!("  {m}");
            }
        }
        return Ok(());
    }
    if args.quiet {
        for c in &pair.codes {
            println!("{c}");
        }
        return Ok(());
    }
    let group = pair.group.unwrap_or_default();
    let expires = pair.expires.unwrap_or_default();
    println!(
        "Pairing group {group}: {} code(s), each for one machine, valid until {expires}.",
        pair.codes.len()
    );
    if let Some(a) = &pair.relay_addr {
        println!("The codes point at {a}.");
    }
    for (i, c) in pair.codes.iter().enumerate() {
        println!("\nCode {} of {}:\n\n  {c}\n", i + 1, pair.codes.len());
        if let Some(q) = super::qr(c) {
            println!("{q}");
        }
    }
    println!("On each machine:  peerup join <code> --name <its-name>");
    println!("Revoke unused codes:  peerup-relay pair --revoke {group}");
    Ok(())
}

/// Sends `op` to the running relay and returns its answer; errors unless
/// it applied it.
fn ask(config: &Path, socket: &Path, op: PairRequest) -> Result<super::ControlReply> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the running relay on {} ({e}): `peerup-relay pair` talks to the running relay, which holds the codes in memory; start it first (`peerup-relay --config {}`, or `systemctl start peerup-relay`)",
            socket.display(),
            config.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let req = super::ControlRequest {
        pair: Some(op),
        ..super::ControlRequest::default()
    };
    let mut line = serde_json::to_string(&req)?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .with_context(|| format!("writing to {}", socket.display()))?;
    let mut answer = String::new();
    std::io::BufReader::new(&stream)
        .read_line(&mut answer)
        .with_context(|| format!("reading from {}", socket.display()))?;
    let reply: super::ControlReply = serde_json::from_str(&answer)
        .with_context(|| format!("no answer from the running relay on {}", socket.display()))?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    Ok(reply)
}
