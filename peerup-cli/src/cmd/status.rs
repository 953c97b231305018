//! `peerup status`: the running daemon's state.

use peerup_core::multiaddr::Protocol;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Args;
use peerup_tokio::Node;
use serde_json::{Value, json};

use crate::Global;
use crate::context::{self, Ctx};
use crate::control::{self, Reply, Request};

#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The status document (`peerup status --json`).
pub(crate) fn document(node: &Node, ctx: &Ctx, uptime: Duration) -> Value {
    let s = node.status();
    let name = |p: &peerup_core::PeerId| super::name_of(ctx, p);
    let relays: Vec<Value> = ctx
        .config
        .relay
        .addresses
        .iter()
        .map(|r| {
            let st = s.relays.get(&r.peer_id()).cloned().unwrap_or_default();
            let conn = s.peers.get(&r.peer_id());
            // Whether this address is the one the relay connection uses
            // (a relay listed at several addresses has one connection).
            let transport = r.transport();
            let in_use = conn.is_some_and(|p| {
                p.connections.iter().any(|c| {
                    let mut remote = c.remote.clone();
                    if matches!(remote.iter().last(), Some(Protocol::P2p(_))) {
                        remote.pop();
                    }
                    remote == transport
                })
            });
            json!({
                "address": r.to_string(),
                "peer_id": r.peer_id().to_string(),
                "transport": r.transport_kind().to_string(),
                "connected": conn.is_some_and(|p| !p.connections.is_empty()),
                "in_use": in_use,
                "rtt_ms": conn.and_then(|p| p.rtt).map(|d| d.as_secs_f64() * 1000.0),
                "reserved": st.reserved,
                "circuit_address": st.circuit_addr.map(|a| a.to_string()),
                "error": st.last_error,
            })
        })
        .collect();
    let relay_ids: Vec<_> = ctx
        .config
        .relay
        .addresses
        .iter()
        .map(|r| r.peer_id())
        .collect();
    let keys = node.authorized_keys();
    let verified = |p: &peerup_core::PeerId| {
        keys.get(p).is_some_and(|e| {
            e.attributes()
                .is_verified_for(&peerup_core::verify::Code::new(&node.peer_id(), p))
        })
    };
    let peers: Vec<Value> = s
        .peers
        .iter()
        .filter(|(p, _)| !relay_ids.contains(p))
        .map(|(p, st)| {
            json!({
                "peer_id": p.to_string(),
                "name": name(p),
                "verified": verified(p),
                "path": st.path().map(|p| p.to_string()),
                "rtt_ms": st.rtt.map(|r| r.as_secs_f64() * 1000.0),
                "authorized": node.is_authorized(p),
                "agent": st.agent,
                "connections": st.connections.iter().map(|c| json!({
                    "path": c.path.to_string(),
                    "remote": c.remote.to_string(),
                    "direction": if c.outbound { "outbound" } else { "inbound" },
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let services: Vec<Value> = s
        .services
        .iter()
        .map(|(n, a)| json!({ "name": n, "local_address": a }))
        .collect();
    let proxies: Vec<Value> = s
        .proxies
        .values()
        .map(|p| {
            json!({
                "peer_id": p.peer.to_string(),
                "name": name(&p.peer),
                "service": p.service,
                "direction": if p.inbound { "inbound" } else { "outbound" },
                "path": p.path.to_string(),
                "bytes_sent": p.counters.sent.load(Ordering::Relaxed),
                "bytes_received": p.counters.received.load(Ordering::Relaxed),
            })
        })
        .collect();
    let invite = s.invite.as_ref().map(|i| {
        json!({
            "expires_at": i.expires_at.to_string(),
            "failed_attempts": i.failed_attempts,
            "attempts_left": i.attempts_left,
            "sessions": i.sessions,
            "blocked_peers": i.blocked_peers,
        })
    });
    json!({
        "peer_id": node.peer_id().to_string(),
        "version": crate::VERSION,
        "invite": invite,
        "refused_connections": {
            "per_ip": node.limit_stats().refused_per_ip.load(Ordering::Relaxed),
            "limits": node.limit_stats().refused_count.load(Ordering::Relaxed),
        },
        "config": ctx.path.display().to_string(),
        "uptime_seconds": uptime.as_secs(),
        "listen_addresses": s.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "relays": relays,
        "peers": peers,
        "services": services,
        "proxies": proxies,
        "lan": s.lan.iter().map(|(p, addrs)| json!({
            "peer_id": p.to_string(),
            "name": name(p),
            "addresses": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn text(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    out.push_str(&format!("Peer ID:   {}\n", s(&v["peer_id"])));
    out.push_str(&format!("Config:    {}\n", s(&v["config"])));
    out.push_str(&format!(
        "Uptime:    {}\n",
        crate::ui::human(Duration::from_secs(
            v["uptime_seconds"].as_u64().unwrap_or(0)
        ))
    ));
    for a in v["listen_addresses"].as_array().into_iter().flatten() {
        out.push_str(&format!("Listen:    {}\n", s(a)));
    }
    for r in v["relays"].as_array().into_iter().flatten() {
        let state = if r["reserved"].as_bool() == Some(true) {
            "reserved".to_owned()
        } else {
            format!(
                "NOT reserved ({})",
                r["error"].as_str().unwrap_or("connecting")
            )
        };
        // The round trip is the relay's; show it on the address in use.
        let via = match (r["in_use"].as_bool(), r["rtt_ms"].as_f64()) {
            (Some(true), Some(rtt)) => format!(" in use, rtt {rtt:.1}ms"),
            (Some(true), None) => " in use".to_owned(),
            _ => String::new(),
        };
        out.push_str(&format!("Relay:     {} [{state}]{via}\n", s(&r["address"])));
    }
    let peers = v["peers"].as_array().cloned().unwrap_or_default();
    if peers.is_empty() {
        out.push_str("Peers:     none connected\n");
    }
    for p in &peers {
        let rtt = p["rtt_ms"]
            .as_f64()
            .map_or("-".to_owned(), |r| format!("{r:.1}ms"));
        let label = p["name"]
            .as_str()
            .map_or(s(&p["peer_id"]), |n| format!("{n} ({})", s(&p["peer_id"])));
        let verified = if p["verified"].as_bool() == Some(true) {
            " verified"
        } else {
            ""
        };
        out.push_str(&format!(
            "Peer:      {label} [{}] rtt {rtt}{verified}\n",
            s(&p["path"])
        ));
    }
    for l in v["lan"].as_array().into_iter().flatten() {
        let label = l["name"]
            .as_str()
            .map_or(s(&l["peer_id"]), |n| format!("{n} ({})", s(&l["peer_id"])));
        let addrs: Vec<String> = l["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        out.push_str(&format!("LAN:       {label} at {}\n", addrs.join(", ")));
    }
    if let Some(i) = v["invite"].as_object() {
        out.push_str(&format!(
            "Invite:    open until {}, {} failed attempt(s), {} join(s) in progress, {} peer(s) refused (cancel: peerup invite --cancel)\n",
            i["expires_at"].as_str().unwrap_or("-"),
            i["failed_attempts"],
            i["sessions"],
            i["blocked_peers"]
        ));
    }
    let services = v["services"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        out.push_str("Services:  none\n");
    }
    for svc in &services {
        out.push_str(&format!(
            "Service:   {} -> {}\n",
            s(&svc["name"]),
            s(&svc["local_address"])
        ));
    }
    for f in v["forwards"].as_array().into_iter().flatten() {
        let state = if f["enabled"] == false {
            "disabled".to_owned()
        } else if f["listening"] == true {
            format!("listening, {} open", f["connections"])
        } else {
            format!("NOT listening: {}", s(&f["error"]))
        };
        out.push_str(&format!(
            "Forward:   {} {} -> {} service {} [{state}]\n",
            s(&f["name"]),
            s(&f["local_address"]),
            s(&f["peer"]),
            s(&f["service"])
        ));
    }
    for p in v["proxies"].as_array().into_iter().flatten() {
        let who = p["name"].as_str().map_or(s(&p["peer_id"]), str::to_owned);
        out.push_str(&format!(
            "Proxy:     {} {} {who} [{}] sent {} B, received {} B\n",
            s(&p["direction"]),
            s(&p["service"]),
            s(&p["path"]),
            p["bytes_sent"],
            p["bytes_received"]
        ));
    }
    out
}

pub(crate) async fn run(global: &Global, args: StatusArgs) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    let Some(mut client) = control::connect(&ctx.socket(), &Request::Status).await? else {
        return Err(anyhow!(
            "no peerup daemon is running for {} (start it with `peerup daemon`)",
            ctx.path.display()
        ));
    };
    while let Some(reply) = client.next().await? {
        match reply {
            Reply::Status { status } => {
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                } else {
                    print!("{}", text(&status));
                }
                return Ok(ExitCode::SUCCESS);
            }
            Reply::Error { message } => return Err(anyhow!(message)),
            _ => {}
        }
    }
    Err(anyhow!(
        "the daemon closed the connection without answering"
    ))
}
