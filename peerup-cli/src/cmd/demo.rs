//! `peerup demo`: a whole peerup network on this machine, in one command.
//!
//! An in-process relay and two nodes, "home" and "laptop", on 127.0.0.1 in
//! temporary directories; they pair with invite/join through the relay;
//! home exposes a built-in web page and an echo service. Then laptop starts
//! again as a new process would (as `peerup proxy` does): it knows home
//! only through the relay, forwards local ports to home's services, and the
//! first proxied connection goes through the relay circuit; hole punching
//! (DCUtR) then adds a direct connection, and a new proxied connection
//! takes it.
//!
//! Every line the demo prints is a [`Claim`] made from what happened: the
//! nodes' events (both ends), the relay's byte counter and the transfers'
//! own timings, recorded in a [`Log`]. What did not happen is said, and the
//! demo then exits non-zero; `report_claims_match_events` (below) checks
//! the claims against the events.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use futures::StreamExt;
use peerup_core::authz::ServiceRule;
use peerup_core::invite::InviteCode;
use peerup_core::naming::Name;
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::label::DnsLabel;
use peerup_core::{Multiaddr, PeerId};
use peerup_net::Event;
use peerup_net::node::NodeOptions;
use peerup_net::node::invite::InviteOptions;
use peerup_relay::{Relay, RelayOptions};
use peerup_tokio::{Node, TokioRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::Global;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Keep the network running and print how to reach the services with
    /// your own tools (curl, nc); Ctrl-C stops it.
    #[arg(long)]
    keep: bool,
    /// MiB to move each way through the echo service, once over the relay
    /// and once over the direct connection, for the throughput figures
    /// (1 to 4096).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    mib: u32,
    /// Also print every event home and laptop reported, with its time:
    /// the evidence the report is made from.
    #[arg(long)]
    events: bool,
}

/// Runs one step; a failure names it.
async fn step<T>(name: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(Duration::from_secs(60), f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.context(format!("demo step failed: {name}"))),
        Err(_) => bail!("demo step failed: {name}: timed out after 60 s"),
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self> {
        let d = std::env::temp_dir().join(format!("peerup-demo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        peerup_net::fs::ensure_private_dir(&d)?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const PAGE: &str = "<!doctype html><title>peerup demo</title>\
<h1>Hello from home</h1><p>This page crossed a peerup network: \
relay, hole punch, authorized_keys, and all.</p>\n";

/// The built-in web service on home.
async fn web_service() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// The built-in echo service on home.
async fn echo_service() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(addr)
}

async fn http_get(port: u16) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: home\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    Ok(body)
}

/// Sends `len` bytes through the echo and reads them back; returns the
/// time and whether the bytes matched.
async fn echo_transfer(port: u16, len: usize) -> Result<Duration> {
    let s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let (mut r, mut w) = s.into_split();
    let start = Instant::now();
    let writer = async move {
        let chunk: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await?;
            left -= n;
        }
        w.shutdown().await?;
        Ok::<_, std::io::Error>(())
    };
    let reader = async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0usize;
        let mut ok = true;
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                ok &= *b == (((got + i) % (256 * 1024)) % 251) as u8;
            }
            got += n;
        }
        Ok::<_, std::io::Error>((got, ok))
    };
    let (w, r) = tokio::join!(writer, reader);
    w?;
    let (got, ok) = r?;
    if got != len || !ok {
        bail!(
            "echo returned {got} of {len} bytes{}",
            if ok { "" } else { " with corrupted data" }
        );
    }
    Ok(start.elapsed())
}

fn node_options(dir: &std::path::Path, relay: &RelayAddr) -> Result<NodeOptions> {
    let config_path = dir.join("config.yaml");
    let text =
        peerup_core::config::render_template("identity.key", std::slice::from_ref(relay), None);
    peerup_net::fs::write_atomic(&config_path, text.as_bytes())?;
    if !dir.join("authorized_keys").exists() {
        peerup_net::fs::write_atomic(&dir.join("authorized_keys"), b"# demo\n")?;
    }
    let (config, _) = peerup_core::config::Config::parse(&config_path, &text)?;
    let mut o = NodeOptions::from_config(&config, &config_path)?;
    o.listen = vec![
        "/ip4/127.0.0.1/tcp/0".parse()?,
        "/ip4/127.0.0.1/udp/0/quic-v1".parse()?,
    ];
    // On one machine LAN discovery would hand laptop home's address and
    // skip the relay this demo is about.
    o.mdns = false;
    Ok(o)
}

/// Which node saw an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Home,
    Laptop,
}

/// An event, when it was seen (from the demo's start), and by whom.
#[derive(Debug, Clone)]
pub(crate) struct Logged {
    pub at: Duration,
    pub who: Who,
    pub event: Event,
}

/// Every event of both nodes, in the order each node published them.
#[derive(Clone)]
pub(crate) struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<Logged>>>,
    seen: tokio::sync::watch::Sender<usize>,
}

impl Log {
    fn new(start: Instant) -> Self {
        Log {
            start,
            events: Arc::default(),
            seen: tokio::sync::watch::channel(0).0,
        }
    }

    /// Records `node`'s events from now on.
    fn record(&self, who: Who, node: &Node) {
        let mut events = node.events();
        let log = self.clone();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let mut v = log.events.lock().unwrap_or_else(|e| e.into_inner());
                v.push(Logged {
                    at: log.start.elapsed(),
                    who,
                    event,
                });
                let n = v.len();
                drop(v);
                log.seen.send_replace(n);
            }
        });
    }

    pub(crate) fn snapshot(&self) -> Vec<Logged> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What `pick` finds in the log, waiting up to `within` for it.
    async fn wait<T>(&self, within: Duration, pick: impl Fn(&[Logged]) -> Option<T>) -> Option<T> {
        let mut seen = self.seen.subscribe();
        tokio::time::timeout(within, async {
            loop {
                let found = {
                    let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
                    pick(&events)
                };
                if found.is_some() {
                    return found;
                }
                if seen.changed().await.is_err() {
                    return None;
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

/// The `n`-th (from 0) proxied connection `who` saw for `service`: its
/// path. Laptop forwards (outbound), home serves (inbound).
pub(crate) fn proxy_path(
    log: &[Logged],
    who: Who,
    service: &str,
    n: usize,
) -> Option<ConnectionPath> {
    log.iter()
        .filter(|l| l.who == who)
        .filter_map(|l| match &l.event {
            Event::ProxyOpened {
                service: s,
                inbound,
                path,
                ..
            } if s == service && *inbound == (who == Who::Home) => Some(*path),
            _ => None,
        })
        .nth(n)
}

/// Laptop's first connection to home: when, and its path.
pub(crate) fn first_connection(log: &[Logged], home: PeerId) -> Option<(Duration, ConnectionPath)> {
    log.iter().find_map(|l| match l.event {
        Event::Connected { peer, path, .. } if l.who == Who::Laptop && peer == home => {
            Some((l.at, path))
        }
        _ => None,
    })
}

/// When laptop saw the hole punch upgrade its connection to home.
pub(crate) fn upgrade_at(log: &[Logged], home: PeerId) -> Option<Duration> {
    log.iter().find_map(|l| match l.event {
        Event::Upgraded { peer } if l.who == Who::Laptop && peer == home => Some(l.at),
        _ => None,
    })
}

/// What the demo says, each made from the log or a measurement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim {
    Relay {
        addr: Multiaddr,
    },
    Home {
        circuit: Multiaddr,
    },
    Paired {
        took: Duration,
    },
    Laptop {
        knows: Multiaddr,
    },
    Proxy {
        web: u16,
        echo: u16,
    },
    /// Laptop's first connection to home, `after` the first transfer began.
    Connected {
        path: ConnectionPath,
        after: Duration,
    },
    /// A transfer through the echo forward, on a new proxied connection.
    Transfer {
        n: usize,
        bytes: u64,
        took: Duration,
        /// The stream's path, as laptop and as home saw it.
        path: (ConnectionPath, ConnectionPath),
        /// Bytes the relay sent meanwhile.
        relay_bytes: u64,
    },
    /// The hole punch: `after` laptop's first connection; `during` the
    /// first transfer or not.
    Upgrade {
        after: Duration,
        during_first_transfer: bool,
        via: String,
    },
    /// What did not happen.
    Missing {
        step: &'static str,
        why: String,
    },
    Http {
        bytes: usize,
        path: ConnectionPath,
    },
    Ping {
        count: usize,
        avg: Duration,
        path: ConnectionPath,
    },
}

fn mbit(bytes: u64, took: Duration) -> f64 {
    bytes as f64 * 8.0 / took.as_secs_f64().max(1e-9) / 1e6
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

impl Claim {
    fn label(&self) -> &'static str {
        match self {
            Claim::Relay { .. } => "relay",
            Claim::Home { .. } => "home",
            Claim::Paired { .. } => "pairing",
            Claim::Laptop { .. } => "laptop",
            Claim::Proxy { .. } => "proxy",
            Claim::Connected { .. } => "connect",
            Claim::Transfer { n: 1, .. } => "transfer 1",
            Claim::Transfer { .. } => "transfer 2",
            Claim::Upgrade { .. } => "hole punch",
            Claim::Missing { step, .. } => step,
            Claim::Http { .. } => "http",
            Claim::Ping { .. } => "ping",
        }
    }

    fn text(&self) -> String {
        match self {
            Claim::Relay { addr } => {
                format!("listening at {addr}; only home and laptop may use it")
            }
            Claim::Home { circuit } => format!(
                "holds a reservation on the relay and serves web and echo; reachable at {circuit}"
            ),
            Claim::Paired { took } => format!(
                "invite on home, join on laptop, through the relay: paired in {:.1} ms; each added the other to authorized_keys and names",
                took.as_secs_f64() * 1e3
            ),
            Claim::Laptop { knows } => format!(
                "started again, as `peerup proxy` would: it knows home only as {knows} (no DHT on the relay and no LAN discovery: on one machine they would hand laptop home's own address)"
            ),
            Claim::Proxy { web, echo } => format!(
                "laptop forwards 127.0.0.1:{echo} -> home/echo and 127.0.0.1:{web} -> home/web"
            ),
            Claim::Connected { path, after } => format!(
                "the first client on 127.0.0.1 made laptop connect: reached home [{path}] in {:.1} ms",
                after.as_secs_f64() * 1e3
            ),
            Claim::Transfer {
                n,
                bytes,
                took,
                path: (p, _),
                relay_bytes,
            } => format!(
                "{} proxied connection: {:.0} MiB each way through home's echo in {:.2} s = {:.0} Mbit/s each way [{p}]; the relay sent {:.1} MiB meanwhile",
                if *n == 1 { "first" } else { "a new" },
                mib(*bytes),
                took.as_secs_f64(),
                mbit(*bytes, *took),
                mib(*relay_bytes)
            ),
            Claim::Upgrade {
                after,
                during_first_transfer,
                via,
            } => format!(
                "DCUtR made a DIRECT connection ({via}) {:.1} ms after the relayed one{}",
                after.as_secs_f64() * 1e3,
                if *during_first_transfer {
                    ", while the first transfer ran; its stream stayed on the relay"
                } else {
                    ""
                }
            ),
            Claim::Missing { why, .. } => format!("DID NOT HAPPEN: {why}"),
            Claim::Http { bytes, path } => {
                format!("GET / through the web forward returned {bytes} bytes [{path}]")
            }
            Claim::Ping { count, avg, path } => format!(
                "{count} pings, rtt avg {:.3} ms [{path}]",
                avg.as_secs_f64() * 1e3
            ),
        }
    }
}

/// What a demo run said and saw.
pub(crate) struct Outcome {
    /// Each claim with the time it was printed (from the start).
    pub claims: Vec<(Duration, Claim)>,
    /// Every event of both nodes.
    pub log: Vec<Logged>,
    /// The relay's, home's and laptop's peer IDs, and their names.
    pub names: Vec<(PeerId, &'static str)>,
}

impl Outcome {
    fn missing(&self) -> Vec<&Claim> {
        self.claims
            .iter()
            .map(|(_, c)| c)
            .filter(|c| matches!(c, Claim::Missing { .. }))
            .collect()
    }
}

struct Say {
    start: Instant,
    quiet: bool,
    claims: Vec<(Duration, Claim)>,
}

impl Say {
    fn claim(&mut self, c: Claim) {
        let at = self.start.elapsed();
        if !self.quiet {
            println!(
                "[{:>8.1} ms] {}: {}",
                at.as_secs_f64() * 1e3,
                c.label(),
                c.text()
            );
        }
        self.claims.push((at, c));
    }
}

/// How long the hole punch may take after the relayed connection.
const UPGRADE_WAIT: Duration = Duration::from_secs(10);
/// How long an event may take to reach the log once it happened.
const EVENT_WAIT: Duration = Duration::from_secs(5);

pub(crate) async fn run(_global: &Global, args: DemoArgs) -> Result<ExitCode> {
    println!("peerup demo: a relay and two machines, \"home\" and \"laptop\", on 127.0.0.1\n");
    let bytes = u64::from(args.mib) << 20;
    let outcome = demo(bytes, false, args.keep).await?;
    println!("\nReport");
    for (_, c) in &outcome.claims {
        println!("  {:<11} {}", c.label(), c.text());
    }
    if args.events {
        println!("\nEvents (what the report is made from)");
        for l in &outcome.log {
            let who = match l.who {
                Who::Home => "home",
                Who::Laptop => "laptop",
            };
            let mut text = format!("{:?}", l.event);
            for (id, name) in &outcome.names {
                text = text
                    .replace(&format!("PeerId(\"{id}\")"), name)
                    .replace(&id.to_string(), name);
            }
            println!("  [{:>8.1} ms] {who:<6} {text}", l.at.as_secs_f64() * 1e3);
        }
    }
    let missing = outcome.missing();
    if !missing.is_empty() {
        println!(
            "\nThe demo did NOT show everything it should: {} step(s) did not happen (above).",
            missing.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    let rate = |n: usize| {
        outcome.claims.iter().find_map(|(_, c)| match c {
            Claim::Transfer {
                n: k, bytes, took, ..
            } if *k == n => Some(mbit(*bytes, *took)),
            _ => None,
        })
    };
    println!(
        "\nThe demo worked: relay ({:.0} Mbit/s), pairing, proxy, hole punch, direct ({:.0} Mbit/s).",
        rate(1).unwrap_or(0.0),
        rate(2).unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs the demo: `bytes` each way per transfer; `quiet` prints nothing;
/// `keep` waits for Ctrl-C before stopping.
pub(crate) async fn demo(bytes: u64, quiet: bool, keep: bool) -> Result<Outcome> {
    let start = Instant::now();
    let mut say = Say {
        start,
        quiet,
        claims: Vec::new(),
    };
    let log = Log::new(start);
    let len = usize::try_from(bytes).context("--mib: too large for this machine")?;
    let home_dir = TempDir::new("home")?;
    let laptop_dir = TempDir::new("laptop")?;
    let rt: Arc<dyn peerup_net::Runtime> = Arc::new(TokioRuntime::current());

    // Identities first: the relay only serves peers it knows.
    let home_key = peerup_net::node::load_or_create_identity(&home_dir.0.join("identity.key"))?;
    let laptop_key = peerup_net::node::load_or_create_identity(&laptop_dir.0.join("identity.key"))?;
    let (home_id, laptop_id) = (
        home_key.public().to_peer_id(),
        laptop_key.public().to_peer_id(),
    );

    let relay = step("start the relay", async {
        let mut o = RelayOptions::new(peerup_net::node::generate_identity()?);
        o.listen = vec![
            "/ip4/127.0.0.1/tcp/0".parse()?,
            "/ip4/127.0.0.1/udp/0/quic-v1".parse()?,
        ];
        let mut keys = peerup_core::authorized_keys::Document::new();
        for (p, n) in [(home_id, "home"), (laptop_id, "laptop")] {
            keys.add(p, peerup_core::authorized_keys::Attributes::new(), Some(n))?;
        }
        o.authorized_keys = keys;
        // No DHT on this relay: on one machine, the addresses the DHT
        // hands out for home (its listen addresses) are reachable, where
        // from another network they would not be; laptop would dial
        // home directly and skip the relay this demo is about.
        o.kad_protocol = "/peerup-demo/no-dht/1.0.0".to_owned();
        Relay::start(rt.clone(), o)
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    let relay_addr = relay
        .full_addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/tcp/"))
        .context("the relay has no TCP address")?;
    let relay_addr = RelayAddr::new(relay_addr)?;
    say.claim(Claim::Relay {
        addr: relay_addr.multiaddr().clone(),
    });
    let relay_sent = || {
        relay
            .stats()
            .meter
            .outbound
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    let web = web_service().await?;
    let echo = echo_service().await?;
    let open = ServiceRule {
        enabled: true,
        allowed_peers: None,
    };
    let home = step("start home", async {
        let o = node_options(&home_dir.0, &relay_addr)?
            .with_service(DnsLabel::new("web")?, web.to_string(), open.clone())?
            .with_service(DnsLabel::new("echo")?, echo.to_string(), open.clone())?;
        Node::start(o).await.map_err(anyhow::Error::from)
    })
    .await?;
    log.record(Who::Home, &home);
    step(
        "home's relay reservation",
        super::wait_reserved(&home, Duration::from_secs(60)),
    )
    .await?;
    say.claim(Claim::Home {
        circuit: relay_addr.circuit_to(home_id),
    });

    // Pairing: invite on home, join from laptop, through the relay.
    let paired = step("pairing", async {
        let pairing = Node::start(node_options(&laptop_dir.0, &relay_addr)?).await?;
        let t = Instant::now();
        let invite = home.invite(InviteOptions {
            name: Some(Name::new("home")?),
            ..InviteOptions::default()
        })?;
        let code = InviteCode::decode(invite.code_text())?;
        let joined = pairing.join(&code, Some(Name::new("laptop")?)).await?;
        invite.wait().await?;
        let took = t.elapsed();
        if joined.peer != home_id
            || !home.is_authorized(&laptop_id)
            || !pairing.is_authorized(&home_id)
        {
            bail!("the machines did not authorize each other");
        }
        // That process ends, as `peerup join` does.
        pairing.shutdown().await;
        Ok(took)
    })
    .await?;
    say.claim(Claim::Paired { took: paired });

    // Laptop again, as a new process: all it has is its config (the relay)
    // and what pairing wrote (authorized_keys, names).
    let laptop = step("start laptop", async {
        Node::start(node_options(&laptop_dir.0, &relay_addr)?)
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    log.record(Who::Laptop, &laptop);
    let knows = relay_addr.circuit_to(home_id);
    say.claim(Claim::Laptop { knows });

    // laptop: `peerup proxy home echo <port>` and `... web <port>`.
    let fwd_echo = laptop
        .forward("127.0.0.1:0".parse()?, home_id, "echo")
        .await?;
    let fwd_web = laptop
        .forward("127.0.0.1:0".parse()?, home_id, "web")
        .await?;
    let (web_port, echo_port) = (fwd_web.local_addr().port(), fwd_echo.local_addr().port());
    say.claim(Claim::Proxy {
        web: web_port,
        echo: echo_port,
    });

    // The first client: laptop connects to home now, through the relay,
    // and the proxied stream opens on that connection.
    let t1 = start.elapsed();
    let before = relay_sent();
    let took1 = step(
        "the first transfer through the proxy",
        echo_transfer(echo_port, len),
    )
    .await?;
    let relayed1 = relay_sent().saturating_sub(before);
    let t1_end = start.elapsed();
    match log
        .wait(EVENT_WAIT, |all| first_connection(all, home_id))
        .await
    {
        Some((at, path)) => say.claim(Claim::Connected {
            path,
            after: at.saturating_sub(t1),
        }),
        None => say.claim(Claim::Missing {
            step: "connect",
            why: "laptop reported no connection to home".into(),
        }),
    }
    transfer_claim(&mut say, &log, 1, bytes, took1, relayed1).await;

    // The hole punch: laptop's event (DCUtR's direct connection).
    let conn_at = first_connection(&log.snapshot(), home_id).map(|(at, _)| at);
    let up = log.wait(UPGRADE_WAIT, |all| upgrade_at(all, home_id)).await;
    match (conn_at, up) {
        (Some(c), Some(u)) => {
            let via = laptop
                .status()
                .peers
                .get(&home_id)
                .and_then(|p| {
                    p.connections
                        .iter()
                        .find(|c| c.path == ConnectionPath::Direct)
                        .map(|c| transport_of(&c.remote))
                })
                .unwrap_or_else(|| "closed since".into());
            say.claim(Claim::Upgrade {
                after: u.saturating_sub(c),
                during_first_transfer: u < t1_end,
                via,
            });
        }
        _ => {
            let failed = log.snapshot().iter().find_map(|l| match &l.event {
                Event::HolePunchFailed { peer, error } if *peer == home_id => Some(error.clone()),
                _ => None,
            });
            say.claim(Claim::Missing {
                step: "hole punch",
                why: match failed {
                    Some(e) => format!("the hole punch failed: {e}"),
                    None => format!(
                        "no direct connection within {} s of the relayed one",
                        UPGRADE_WAIT.as_secs()
                    ),
                },
            });
        }
    }

    // A new client: a new stream, on the direct connection if there is one.
    let before = relay_sent();
    let took2 = step(
        "the second transfer through the proxy",
        echo_transfer(echo_port, len),
    )
    .await?;
    let relayed2 = relay_sent().saturating_sub(before);
    transfer_claim(&mut say, &log, 2, bytes, took2, relayed2).await;

    let page = step("GET / through the proxy", http_get(web_port)).await?;
    if !page.contains("Hello from home") {
        bail!("demo step failed: GET / through the proxy: unexpected page");
    }
    match log
        .wait(EVENT_WAIT, |all| proxy_path(all, Who::Laptop, "web", 0))
        .await
    {
        Some(path) => say.claim(Claim::Http {
            bytes: page.len(),
            path,
        }),
        None => say.claim(Claim::Missing {
            step: "http",
            why: "laptop reported no proxied connection for the page".into(),
        }),
    }

    let mut rtts = Vec::new();
    let mut path = None;
    for _ in 0..5 {
        let r = step("ping", async {
            laptop.ping(home_id).await.map_err(anyhow::Error::from)
        })
        .await?;
        rtts.push(r.rtt);
        path = Some(r.path);
    }
    if let Some(path) = path {
        say.claim(Claim::Ping {
            count: rtts.len(),
            avg: rtts.iter().sum::<Duration>() / 5,
            path,
        });
    }

    if keep {
        println!("\nStill running. Try it with your own tools:");
        println!("  curl http://127.0.0.1:{web_port}/");
        println!("  nc 127.0.0.1 {echo_port}        (type a line; it comes back)");
        println!("Ctrl-C to stop.");
        tokio::signal::ctrl_c().await.ok();
    }
    drop((fwd_web, fwd_echo));
    laptop.shutdown().await;
    home.shutdown().await;
    relay.shutdown().await;
    Ok(Outcome {
        claims: say.claims,
        log: log.snapshot(),
        names: vec![
            (relay.peer_id(), "relay"),
            (home_id, "home"),
            (laptop_id, "laptop"),
        ],
    })
}

/// "tcp" or "quic-v1" and the address, from a connection's remote address.
fn transport_of(addr: &Multiaddr) -> String {
    use peerup_core::multiaddr::Protocol;
    let mut ip = None;
    let mut kind = "?";
    let mut port = 0;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a.to_string()),
            Protocol::Ip6(a) => ip = Some(a.to_string()),
            Protocol::Tcp(p) => {
                kind = "tcp";
                port = p;
            }
            Protocol::Udp(p) => port = p,
            Protocol::QuicV1 => kind = "quic-v1",
            _ => {}
        }
    }
    format!("{kind} to {}:{port}", ip.unwrap_or_default())
}

/// The claim for transfer `n`: the paths both ends saw for its stream.
async fn transfer_claim(
    say: &mut Say,
    log: &Log,
    n: usize,
    bytes: u64,
    took: Duration,
    relay_bytes: u64,
) {
    let seen = log
        .wait(EVENT_WAIT, |all| {
            Some((
                proxy_path(all, Who::Laptop, "echo", n - 1)?,
                proxy_path(all, Who::Home, "echo", n - 1)?,
            ))
        })
        .await;
    let Some(path) = seen else {
        say.claim(Claim::Missing {
            step: if n == 1 { "transfer 1" } else { "transfer 2" },
            why: "laptop or home reported no proxied connection for it".into(),
        });
        return;
    };
    let claim = Claim::Transfer {
        n,
        bytes,
        took,
        path,
        relay_bytes,
    };
    let want = if n == 1 {
        ConnectionPath::Relayed
    } else {
        ConnectionPath::Direct
    };
    say.claim(claim);
    if let Some(why) = transfer_wrong(want, path, bytes, relay_bytes) {
        say.claim(Claim::Missing {
            step: if n == 1 { "transfer 1" } else { "transfer 2" },
            why,
        });
    }
}

/// Why a transfer did not go as it should (`want`), if it did not: the
/// paths both ends saw, and the relay's bytes, which must agree.
pub(crate) fn transfer_wrong(
    want: ConnectionPath,
    path: (ConnectionPath, ConnectionPath),
    bytes: u64,
    relay_bytes: u64,
) -> Option<String> {
    if path.0 != path.1 {
        return Some(format!(
            "laptop saw its stream {} but home saw it {}",
            path.0, path.1
        ));
    }
    if path.0 != want {
        return Some(format!(
            "it went {} instead of {want}{}",
            path.0,
            if want == ConnectionPath::Relayed {
                " (the hole punch finished before the stream opened)"
            } else {
                ""
            }
        ));
    }
    match want {
        // Both directions cross the relay.
        ConnectionPath::Relayed if relay_bytes < 2 * bytes => Some(format!(
            "the relay sent only {relay_bytes} bytes for 2 x {bytes} relayed"
        )),
        ConnectionPath::Direct if relay_bytes >= bytes / 4 => Some(format!(
            "the relay sent {relay_bytes} bytes during a direct transfer of 2 x {bytes}"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events `who` saw, in order.
    fn seen(o: &Outcome, who: Who) -> impl Iterator<Item = &Logged> {
        o.log.iter().filter(move |l| l.who == who)
    }

    /// Each proxied connection `who` saw for `service`, in order: its path.
    fn proxied(o: &Outcome, who: Who, service: &str) -> Vec<ConnectionPath> {
        seen(o, who)
            .filter_map(|l| match &l.event {
                Event::ProxyOpened {
                    service: s, path, ..
                } if s == service => Some(*path),
                _ => None,
            })
            .collect()
    }

    /// The demo, run as `peerup demo` runs it, says only what its nodes
    /// and the relay saw: every claim is checked here against the events
    /// both nodes published (each end's view of each proxied stream), and
    /// each event the report is about has its claim.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn report_claims_match_events() {
        let o = demo(2 << 20, true, false).await.expect("the demo runs");
        let home = o
            .names
            .iter()
            .find_map(|(id, n)| (*n == "home").then_some(*id))
            .expect("home is named");
        let conns: Vec<(Duration, ConnectionPath)> = seen(&o, Who::Laptop)
            .filter_map(|l| match l.event {
                Event::Connected { peer, path, .. } if peer == home => Some((l.at, path)),
                _ => None,
            })
            .collect();
        let upgrades: Vec<Duration> = seen(&o, Who::Laptop)
            .filter_map(|l| match l.event {
                Event::Upgraded { peer } if peer == home => Some(l.at),
                _ => None,
            })
            .collect();
        let echo_laptop = proxied(&o, Who::Laptop, "echo");
        let echo_home = proxied(&o, Who::Home, "echo");
        let mut transfers = 0;
        let mut upgrade_claimed = false;
        for (printed, claim) in &o.claims {
            let text = claim.text();
            match claim {
                Claim::Connected { path, .. } => {
                    assert_eq!(Some(*path), conns.first().map(|c| c.1), "{text}");
                    assert!(text.contains(&format!("[{path}]")), "{text}");
                }
                Claim::Transfer {
                    n,
                    path,
                    relay_bytes,
                    bytes,
                    ..
                } => {
                    transfers += 1;
                    assert_eq!(
                        echo_laptop.get(n - 1),
                        Some(&path.0),
                        "laptop's view: {text}"
                    );
                    assert_eq!(echo_home.get(n - 1), Some(&path.1), "home's view: {text}");
                    assert!(text.contains(&format!("[{}]", path.0)), "{text}");
                    match path.0 {
                        ConnectionPath::Relayed => assert!(*relay_bytes >= 2 * bytes, "{text}"),
                        ConnectionPath::Direct => assert!(*relay_bytes < *bytes, "{text}"),
                    }
                }
                Claim::Upgrade {
                    after,
                    during_first_transfer,
                    ..
                } => {
                    upgrade_claimed = true;
                    let first = conns.first().expect("a connection before the upgrade");
                    assert_eq!(first.1, ConnectionPath::Relayed, "{text}");
                    let up = upgrades.first().expect("an Upgraded event");
                    assert_eq!(*after, up.saturating_sub(first.0), "{text}");
                    // Said after it happened.
                    assert!(up <= printed, "{text}");
                    let t1 = o.claims.iter().find_map(|(at, c)| {
                        matches!(c, Claim::Transfer { n: 1, .. }).then_some(*at)
                    });
                    if *during_first_transfer {
                        assert!(t1.is_some_and(|t1| *up <= t1), "{text}");
                    }
                    assert!(
                        conns
                            .iter()
                            .any(|c| c.1 == ConnectionPath::Direct && c.0 <= *up),
                        "a direct connection came with the upgrade: {text}"
                    );
                }
                Claim::Http { path, .. } => {
                    assert_eq!(
                        proxied(&o, Who::Laptop, "web").first(),
                        Some(path),
                        "{text}"
                    );
                    assert_eq!(proxied(&o, Who::Home, "web").first(), Some(path), "{text}");
                }
                Claim::Ping { path, .. } => {
                    // Direct only with a direct connection seen.
                    if *path == ConnectionPath::Direct {
                        assert!(conns.iter().any(|c| c.1 == ConnectionPath::Direct));
                    }
                }
                Claim::Missing { .. } => {}
                Claim::Relay { .. }
                | Claim::Home { .. }
                | Claim::Paired { .. }
                | Claim::Laptop { .. }
                | Claim::Proxy { .. } => {}
            }
        }
        // Each event the report is about has its claim.
        assert_eq!(transfers, 2, "two transfers");
        assert_eq!(
            echo_laptop.len(),
            2,
            "two proxied echo connections on laptop"
        );
        assert_eq!(
            upgrade_claimed,
            !upgrades.is_empty(),
            "the upgrade is claimed iff it happened"
        );
        // And on one machine everything the demo is about does happen.
        let missing: Vec<String> = o.missing().iter().map(|c| c.text()).collect();
        assert!(missing.is_empty(), "{missing:?}");
        assert_eq!(
            echo_laptop,
            [ConnectionPath::Relayed, ConnectionPath::Direct]
        );
    }

    /// A transfer is wrong when the ends disagree, when it took the other
    /// path, or when the relay's bytes contradict its path.
    #[test]
    fn transfer_wrong_checks_paths_and_relay_bytes() {
        use ConnectionPath::{Direct, Relayed};
        assert_eq!(transfer_wrong(Relayed, (Relayed, Relayed), 100, 200), None);
        assert_eq!(transfer_wrong(Direct, (Direct, Direct), 100, 10), None);
        assert!(transfer_wrong(Relayed, (Relayed, Direct), 100, 200).is_some());
        assert!(transfer_wrong(Relayed, (Direct, Direct), 100, 0).is_some());
        assert!(transfer_wrong(Relayed, (Relayed, Relayed), 100, 150).is_some());
        assert!(transfer_wrong(Direct, (Direct, Direct), 100, 60).is_some());
    }
}
