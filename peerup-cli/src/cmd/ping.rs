//! `peerup ping`: application pings with the path (WIRE.md §3).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::pingpong::{self, Stats};
use peerup_net::fs::LockMode;
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
    /// Print JSON lines (one per reply, then the summary).
    #[arg(long)]
    json: bool,
}

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
    let ctx = context::load(global)?;
    let peer = super::resolve(&ctx, &args.target)?;
    let mut out = Printer {
        json: args.json,
        stats: Stats::new(),
    };
    let request = Request::Ping {
        target: peer.to_string(),
        count: args.count,
        interval_ms: u64::try_from(args.interval.as_millis()).unwrap_or(u64::MAX),
    };
    if !args.json {
        println!("PING {} ({peer})", args.target);
    }
    let node = match super::daemon_or_node(&ctx, &request, false, LockMode::Shared).await? {
        super::Through::Daemon(mut client) => {
            while let Some(reply) = client.next().await? {
                match reply {
                    Reply::Pong { seq, rtt_ms, path } => {
                        out.reply(seq, Duration::from_secs_f64(rtt_ms / 1000.0), &path)
                    }
                    Reply::PingFailed { seq, error } => out.failed(seq, &error),
                    Reply::Error { message } => return Err(anyhow!(message)),
                    _ => {}
                }
            }
            return Ok(out.summary());
        }
        super::Through::Own(node) => node,
    };
    for seq in 1..=args.count {
        if seq > 1 {
            tokio::time::sleep(args.interval).await;
        }
        match node.ping(peer).await {
            Ok(r) => out.reply(seq, r.rtt, &r.path.to_string()),
            Err(e) => out.failed(seq, &peerup_net::error::chain(&e)),
        }
    }
    node.shutdown().await;
    Ok(out.summary())
}
