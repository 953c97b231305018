//! `peerup ping`: application pings with the path (WIRE.md §3).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use peerup_core::PeerId;
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::pingpong::{self, Stats};
use peerup_net::fs::LockMode;
use peerup_net::node::PathChange;
use serde_json::json;

use crate::Global;
use crate::context;
use crate::control::{Reply, Request};

#[derive(Args, Debug)]
pub(crate) struct PingArgs {
    /// Name from the config, or peer ID.
    target: String,
    /// Number of pings.
    #[arg(short = 'c', long, default_value_t = 4)]
    count: u64,
    /// Time between pings.
    #[arg(long, default_value = "1s", value_parser = super::invite::duration_arg)]
    interval: Duration,
    /// After the last ping, if the path is still relayed, wait up to this
    /// long for hole punching to make it direct, and say which happened
    /// (a fresh connection starts relayed; the upgrade often follows
    /// within a second). 0 does not wait.
    #[arg(long, default_value = "3s", value_parser = super::invite::duration_arg)]
    upgrade_wait: Duration,
    /// Print JSON lines (one per reply, then the summary).
    #[arg(long)]
    json: bool,
}

/// Longest `--upgrade-wait`.
const MAX_UPGRADE_WAIT: Duration = Duration::from_secs(60);

struct Printer {
    json: bool,
    stats: Stats,
}

impl Printer {
    fn reply(&mut self, seq: u64, rtt: Duration, path: &str) {
        self.stats.sent();
        self.stats.received(rtt);
        if self.json {
            println!(
                "{}",
                json!({ "seq": seq, "rtt_ms": rtt.as_secs_f64() * 1000.0, "path": path })
            );
        } else {
            let p = if path == "DIRECT" {
                ConnectionPath::Direct
            } else {
                ConnectionPath::Relayed
            };
            println!("{}", pingpong::format_reply(seq, rtt, p));
        }
    }

    fn failed(&mut self, seq: u64, error: &str) {
        self.stats.sent();
        if self.json {
            println!("{}", json!({ "seq": seq, "error": error }));
        } else {
            println!("seq={seq} error: {error}");
        }
    }

    fn path_changed(&self, from: &str, to: &str, after_ms: Option<f64>) {
        if self.json {
            println!(
                "{}",
                json!({ "path_change": { "from": from, "to": to, "after_ms": after_ms } })
            );
        } else {
            match after_ms {
                Some(ms) => println!(
                    "path {from} -> {to} after {ms:.0} ms (hole punched); new streams go {to}"
                ),
                None => println!("path {from} -> {to}; new streams go {to}"),
            }
        }
    }

    fn path_stays(&self, path: &str, reason: &str) {
        if self.json {
            println!("{}", json!({ "path_stays": path, "reason": reason }));
        } else {
            println!("path stays {path}: {reason}");
        }
    }

    fn show(&mut self, reply: Reply) -> Result<()> {
        match reply {
            Reply::Pong { seq, rtt_ms, path } => {
                self.reply(seq, Duration::from_secs_f64(rtt_ms / 1000.0), &path)
            }
            Reply::PingFailed { seq, error } => self.failed(seq, &error),
            Reply::PathChanged { from, to, after_ms } => self.path_changed(&from, &to, after_ms),
            Reply::PathStays { path, reason } => self.path_stays(&path, &reason),
            Reply::Error { message } => return Err(anyhow!(message)),
            _ => {}
        }
        Ok(())
    }

    fn summary(&self) -> ExitCode {
        if self.json {
            let rtt = self.stats.rtt();
            println!(
                "{}",
                json!({
                    "sent": self.stats.sent_count(),
                    "received": self.stats.received_count(),
                    "loss_percent": self.stats.loss_percent(),
                    "rtt_min_ms": rtt.map(|r| r.0.as_secs_f64() * 1000.0),
                    "rtt_avg_ms": rtt.map(|r| r.1.as_secs_f64() * 1000.0),
                    "rtt_max_ms": rtt.map(|r| r.2.as_secs_f64() * 1000.0),
                })
            );
        } else {
            println!("--- {} ---", self.stats.summary());
        }
        if self.stats.received_count() > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn run(global: &Global, args: PingArgs) -> Result<ExitCode> {
    if args.upgrade_wait > MAX_UPGRADE_WAIT {
        bail!("--upgrade-wait: at most {} s", MAX_UPGRADE_WAIT.as_secs());
    }
    let ctx = context::load(global)?;
    let peer = super::resolve(&ctx, &args.target)?;
    let mut out = Printer {
        json: args.json,
        stats: Stats::new(),
    };
    let request = Request::Ping {
        target: peer.to_string(),
        count: args.count,
        interval_ms: millis(args.interval),
        upgrade_wait_ms: millis(args.upgrade_wait),
    };
    if !args.json {
        println!("PING {} ({peer})", args.target);
    }
    let node = match super::daemon_or_node(&ctx, &request, false, LockMode::Shared).await? {
        super::Through::Daemon(mut client) => {
            while let Some(reply) = client.next().await? {
                out.show(reply)?;
            }
            return Ok(out.summary());
        }
        super::Through::Own(node) => node,
    };
    let plan = Plan {
        count: args.count,
        interval: args.interval,
        upgrade_wait: args.upgrade_wait,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let show = async {
        while let Some(reply) = rx.recv().await {
            out.show(reply)?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (ran, shown) = tokio::join!(pings(&node, peer, &plan, tx), show);
    node.shutdown().await;
    ran.and(shown)?;
    Ok(out.summary())
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What one `peerup ping` asks for.
pub(crate) struct Plan {
    pub count: u64,
    pub interval: Duration,
    /// See `--upgrade-wait`.
    pub upgrade_wait: Duration,
}

impl Plan {
    /// From a control request's fields (the daemon's side).
    pub(crate) fn from_request(count: u64, interval_ms: u64, upgrade_wait_ms: u64) -> Self {
        Plan {
            count,
            interval: Duration::from_millis(interval_ms),
            upgrade_wait: Duration::from_millis(upgrade_wait_ms).min(MAX_UPGRADE_WAIT),
        }
    }
}

/// The pings of one `peerup ping`, as replies, whether the daemon runs
/// them or a process of its own: each ping's reply or failure; when a
/// relayed path turns direct, when that happened; after the last ping on
/// a relayed path, up to `upgrade_wait` for the hole punch, and what came
/// of it. Stops early when `replies` is closed (the client went away).
pub(crate) async fn pings(
    node: &peerup_tokio::Node,
    peer: PeerId,
    plan: &Plan,
    replies: tokio::sync::mpsc::Sender<Reply>,
) -> Result<()> {
    let emit = async |reply: Reply| {
        replies
            .send(reply)
            .await
            .map_err(|_| anyhow!("the ping's client went away"))
    };
    let mut watch = node.watch_path(peer);
    let mut last = None;
    for seq in 1..=plan.count {
        if seq > 1 {
            tokio::time::sleep(plan.interval).await;
        }
        match node.ping(peer).await {
            Ok(r) => {
                last = Some(r.path);
                emit(Reply::Pong {
                    seq,
                    rtt_ms: r.rtt.as_secs_f64() * 1000.0,
                    path: r.path.to_string(),
                })
                .await?;
            }
            Err(e) => {
                emit(Reply::PingFailed {
                    seq,
                    error: peerup_net::error::chain(&e),
                })
                .await?
            }
        }
        if last == Some(ConnectionPath::Relayed)
            && let Some(change) = watch.take_change()
        {
            emit(path_reply(change)).await?;
            last = None;
        }
    }
    if last == Some(ConnectionPath::Relayed) && !plan.upgrade_wait.is_zero() {
        let change = watch.wait_direct(plan.upgrade_wait).await;
        emit(path_reply(change)).await?;
    }
    Ok(())
}

fn path_reply(change: PathChange) -> Reply {
    let relayed = ConnectionPath::Relayed.to_string();
    match change {
        PathChange::Direct { after } => Reply::PathChanged {
            from: relayed,
            to: ConnectionPath::Direct.to_string(),
            after_ms: after.map(|a| a.as_secs_f64() * 1000.0),
        },
        PathChange::HolePunchFailed { error } => Reply::PathStays {
            path: relayed,
            reason: format!("hole punch failed: {error}"),
        },
        PathChange::NoChange { waited } => Reply::PathStays {
            path: relayed,
            reason: format!(
                "no direct connection within {} s (the NATs on the way may not allow one; traffic stays on the relay, `peerup doctor` tells more)",
                waited.as_secs_f64()
            ),
        },
    }
}
