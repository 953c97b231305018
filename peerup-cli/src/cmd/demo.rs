//! `peerup demo`: a whole peerup network on this machine, in one command.
//!
//! An in-process relay and two nodes, "home" and "laptop", on 127.0.0.1 in
//! temporary directories; they pair with invite/join through the relay;
//! home exposes a built-in web page and an echo service; laptop forwards a
//! local port to them like `peerup proxy`; data moves through it, first over
//! the relay, then over the direct connection hole punching makes. A report
//! says what happened at each step, with timings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use futures::StreamExt;
use peerup_core::authz::ServiceRule;
use peerup_core::invite::InviteCode;
use peerup_core::naming::Name;
use peerup_core::relay_addr::RelayAddr;
use peerup_core::wire::label::DnsLabel;
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
    /// Keep the network running and print how to reach the service with
    /// your own tools (curl, nc); Ctrl-C stops it.
    #[arg(long)]
    keep: bool,
    /// MiB to move each way for the throughput figure.
    #[arg(long, default_value_t = 64)]
    mib: usize,
}

struct Report {
    start: Instant,
    rows: Vec<(String, String)>,
}

impl Report {
    fn step(&mut self, what: &str, detail: String) {
        let at = self.start.elapsed();
        println!("[{:>7.1} ms] {what}: {detail}", at.as_secs_f64() * 1000.0);
        self.rows.push((what.to_owned(), detail));
    }
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
    peerup_net::fs::write_atomic(&dir.join("authorized_keys"), b"# demo\n")?;
    let (config, _) = peerup_core::config::Config::parse(&config_path, &text)?;
    let mut o = NodeOptions::from_config(&config, &config_path)?;
    o.listen = vec![
        "/ip4/127.0.0.1/tcp/0".parse()?,
        "/ip4/127.0.0.1/udp/0/quic-v1".parse()?,
    ];
    Ok(o)
}

async fn wait_event(node: &Node, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Result<()> {
    let mut events = node.events();
    while let Some(e) = events.next().await {
        if pred(&e) {
            return Ok(());
        }
    }
    bail!("the node stopped before {what}")
}

pub(crate) async fn run(_global: &Global, args: DemoArgs) -> Result<ExitCode> {
    let mut report = Report {
        start: Instant::now(),
        rows: Vec::new(),
    };
    println!("peerup demo: a relay and two machines, \"home\" and \"laptop\", on 127.0.0.1\n");
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
    report.step(
        "relay",
        format!("listening, gating on for 2 peers ({relay_addr})"),
    );

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
    step("home's relay reservation", async {
        if !home.status().relays.values().any(|r| r.reserved) {
            wait_event(&home, "a reservation", |e| {
                matches!(e, Event::ReservationAccepted { .. })
            })
            .await?;
        }
        Ok(())
    })
    .await?;
    report.step(
        "home",
        format!("{home_id} holds a reservation; exposes web and echo"),
    );
    let laptop = step("start laptop", async {
        Node::start(node_options(&laptop_dir.0, &relay_addr)?)
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    report.step("laptop", format!("{laptop_id} started"));

    // Watch laptop's connections to home: the join reaches home through
    // the relay; hole punching then adds a direct connection.
    let mut watch = laptop.events();
    let path_log = Arc::new(std::sync::Mutex::new(Vec::<(Instant, String)>::new()));
    let log2 = path_log.clone();
    tokio::spawn(async move {
        while let Some(e) = watch.next().await {
            let line = match e {
                Event::Connected { peer, path, .. } if peer == home_id => format!("{path}"),
                Event::Upgraded { peer } if peer == home_id => "UPGRADED".to_owned(),
                _ => continue,
            };
            log2.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), line));
        }
    });
    // Pairing: invite on home, join from laptop, through the relay.
    let t = Instant::now();
    let invite = home.invite(InviteOptions {
        name: Some(Name::new("home")?),
        ..InviteOptions::default()
    })?;
    let code = InviteCode::decode(invite.code_text())?;
    let joined = step("join the invite", async {
        laptop
            .join(&code, Some(Name::new("laptop")?))
            .await
            .map_err(anyhow::Error::from)
    })
    .await?;
    step("invite completes", async {
        invite.wait().await.map_err(anyhow::Error::from)
    })
    .await?;
    if joined.peer != home_id || !home.is_authorized(&laptop_id) || !laptop.is_authorized(&home_id)
    {
        bail!("demo step failed: pairing: the machines did not authorize each other");
    }
    report.step(
        "pairing",
        format!(
            "invite/join in {:.1} ms; each side added the other to authorized_keys and names",
            t.elapsed().as_secs_f64() * 1e3
        ),
    );

    // laptop: `peerup proxy home web <port>` and `... echo <port>`.
    let fwd_web = laptop
        .forward("127.0.0.1:0".parse()?, home_id, "web")
        .await?;
    let fwd_echo = laptop
        .forward("127.0.0.1:0".parse()?, home_id, "echo")
        .await?;
    let (web_port, echo_port) = (fwd_web.local_addr().port(), fwd_echo.local_addr().port());
    report.step("proxy", format!("laptop forwards 127.0.0.1:{web_port} -> home/web and 127.0.0.1:{echo_port} -> home/echo"));

    let path = step("connect laptop -> home", async {
        laptop.connect(home_id).await.map_err(anyhow::Error::from)
    })
    .await?;
    let page = step("GET / through the proxy", http_get(web_port)).await?;
    if !page.contains("Hello from home") {
        bail!("demo step failed: GET / through the proxy: unexpected page");
    }
    report.step(
        "http",
        format!(
            "GET / returned {} bytes from home's web service [{path}]",
            page.len()
        ),
    );
    step("direct connection (hole punch)", async {
        if laptop.path(home_id) != Some(peerup_core::wire::ConnectionPath::Direct) {
            wait_event(
                &laptop,
                "a direct connection",
                |e| matches!(e, Event::Upgraded { peer } if *peer == home_id),
            )
            .await?;
        }
        Ok(())
    })
    .await?;
    let log = path_log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let first = log.first().cloned();
    let upgraded = log
        .iter()
        .find(|(_, l)| l == "UPGRADED" || l == "DIRECT")
        .cloned();
    match (first, upgraded) {
        (Some((t0, p0)), Some((t1, _))) if p0 == "RELAYED" => {
            report.step(
                "connect",
                "laptop reached home through the relay circuit [RELAYED]".to_owned(),
            );
            report.step(
                "upgrade",
                format!("hole punch (DCUtR) added a DIRECT connection {:.1} ms later; new streams use it", t1.duration_since(t0).as_secs_f64() * 1e3),
            );
        }
        (Some((_, p0)), _) => report.step("connect", format!("laptop reached home [{p0}]")),
        (None, _) => report.step("connect", format!("laptop reached home [{path}]")),
    }

    let len = args.mib << 20;
    let took = step("move data through the proxy", echo_transfer(echo_port, len)).await?;
    let mbit = (len as f64 * 8.0) / took.as_secs_f64() / 1e6;
    report.step(
        "throughput",
        format!(
            "{} MiB each way through the echo in {:.2} s: {mbit:.0} Mbit/s each way, path {}",
            args.mib,
            took.as_secs_f64(),
            laptop.path(home_id).map_or("?".into(), |p| p.to_string())
        ),
    );

    let mut rtts = Vec::new();
    let mut last_path = None;
    for _ in 0..5 {
        let r = step("ping", async {
            laptop.ping(home_id).await.map_err(anyhow::Error::from)
        })
        .await?;
        rtts.push(r.rtt);
        last_path = Some(r.path);
    }
    let avg = rtts.iter().sum::<Duration>() / 5;
    report.step(
        "ping",
        format!(
            "5 pings, rtt avg {:.3} ms, path [{}]",
            avg.as_secs_f64() * 1e3,
            last_path.map_or("?".into(), |p| p.to_string())
        ),
    );

    println!("\nReport");
    for (what, detail) in &report.rows {
        println!("  {what:<11} {detail}");
    }
    println!(
        "\nThe demo worked: relay, pairing, proxy, hole punch, {:.0} Mbit/s.",
        mbit
    );

    if args.keep {
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
    Ok(ExitCode::SUCCESS)
}
