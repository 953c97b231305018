//! `peerup-bench`: how fast peerup is on this machine, against what a user
//! would use instead, measured in the same run.
//!
//! A tool of its own, not a `peerup` subcommand: it starts sshd and
//! thousands of in-process nodes, which the product binary has no business
//! doing. It runs the `peerup` and `peerup-relay` binaries found next to it
//! (`cargo build --release -p peerup-cli -p peerup-relay -p peerup-bench`).
//!
//! Everything runs on 127.0.0.1 with the real binaries: a `peerup-relay`
//! process, a `peerup daemon` ("home", exposing sink, echo and greeter
//! services) and a `peerup proxy` ("laptop") per path. Baselines: raw
//! loopback TCP, a plain user-space forwarder, and `ssh -L` (chacha20-poly1305
//! and aes128-gcm) against an sshd the benchmark starts itself when OpenSSH
//! is installed. The relay capacity test runs its clients in this process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Parser;
use peerup_core::PeerId;
use peerup_core::authorized_keys::{Attributes, Document};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(
    name = "peerup-bench",
    version,
    about = "Measure peerup's throughput, latency and memory on this machine against raw TCP, a forwarder and ssh -L, in one run.",
    after_help = "Examples:\n  peerup-bench\n  peerup-bench --seconds 3 --connections 200 --skip-capacity\n  peerup-bench --only tcp,relayed --json bench.json\n\nBuild the release binaries first (cargo build --release -p peerup-cli -p peerup-relay -p peerup-bench): it runs the peerup and peerup-relay next to it. See docs/PERFORMANCE.md."
)]
struct BenchArgs {
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Proxied connections held open for the memory figures (100 and this).
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Concurrent circuits for the relay capacity test.
    #[arg(long, default_value_t = 1000)]
    circuits: usize,
    /// Skip the relay capacity test (it starts one in-process node per circuit).
    #[arg(long)]
    skip_capacity: bool,
    /// Run only these sections: baselines, tcp, quic, relayed, capacity
    /// (comma-separated; default all).
    #[arg(long, value_delimiter = ',', value_name = "SECTIONS")]
    only: Vec<String>,
    /// Also write the JSON results to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Compare with this recorded run (a `--json` file) instead of the one
    /// built in (docs/bench-baseline.json, recorded on the project's 2-core
    /// machine): each figure's ratio to it is printed at the end.
    #[arg(long, value_name = "PATH", conflicts_with = "no_baseline")]
    baseline: Option<PathBuf>,
    /// Do not compare with a recorded run.
    #[arg(long)]
    no_baseline: bool,
    /// (Internal.) Run as a plain forwarder process to this address: the
    /// round-trip baseline starts two of these.
    #[arg(long, hide = true, value_name = "ADDR", requires = "forward_port")]
    forward_to: Option<SocketAddr>,
    /// (Internal.) The forwarder process's port on 127.0.0.1.
    #[arg(long, hide = true, value_name = "PORT")]
    forward_port: Option<u16>,
}

/// The recorded run the figures are compared with (`--baseline` replaces
/// it).
const BASELINE: &str = include_str!("../../docs/bench-baseline.json");

const CHUNK: usize = 256 * 1024;

/// The relay's CPU per GiB above which a "direct" figure is taken to have
/// gone through the relay (a relayed GiB costs the relay seconds; a direct
/// one costs it nothing but its keep-alives).
const RELAY_CPU_WHEN_DIRECT: f64 = 0.2;

// ---------------------------------------------------------------------------
// Local services

/// The runtime of the local services (sink, echo, greeter): a thread of
/// its own, as real services are processes of their own. On the bench's
/// main runtime, 1,000 in-process client nodes busy with encryption
/// starved the echo server's accept loop, and daemons timed out dialing
/// it.
fn services() -> Result<&'static tokio::runtime::Runtime> {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-services")
        .enable_all()
        .build()
        .context("starting the local services' runtime")?;
    Ok(RT.get_or_init(|| rt))
}

/// A listener on 127.0.0.1 on the services' runtime, with a backlog for
/// a thousand connections arriving at once.
fn service_listener() -> Result<(TcpListener, &'static tokio::runtime::Runtime)> {
    let rt = services()?;
    let _guard = rt.enter();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    Ok((socket.listen(4096)?, rt))
}

/// Discards everything (iperf's server side).
async fn sink() -> Result<SocketAddr> {
    let (l, rt) = service_listener()?;
    let addr = l.local_addr()?;
    rt.spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; CHUNK];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Echoes.
async fn echo() -> Result<SocketAddr> {
    let (l, rt) = service_listener()?;
    let addr = l.local_addr()?;
    rt.spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = w.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// Sends one byte on accept (time to first byte).
async fn greeter() -> Result<SocketAddr> {
    let (l, rt) = service_listener()?;
    let addr = l.local_addr()?;
    rt.spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"!").await;
                let mut b = [0u8; 1];
                let _ = s.read(&mut b).await;
            });
        }
    });
    Ok(addr)
}

/// The name of the forwarder's thread, whose CPU time is the plain TCP
/// splice's cost per byte ([`thread_cpu_secs`]).
const FORWARDER_THREAD: &str = "bench-forward";

/// A plain user-space forwarder: accept, connect, copy both ways (tokio's
/// `copy_bidirectional`, what most small forwarders do), on a thread of its
/// own so its CPU time can be told apart from the sender's and the sink's.
fn forwarder(port: u16, to: SocketAddr) -> Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the forwarder's runtime")?;
    std::thread::Builder::new()
        .name(FORWARDER_THREAD.into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(l) = TcpListener::from_std(std_listener) else {
                    return;
                };
                while let Ok((mut a, _)) = l.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut b) = TcpStream::connect(to).await {
                            // As `peerup proxy` and the daemon do: small
                            // writes leave at once.
                            let _ = a.set_nodelay(true);
                            let _ = b.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                        }
                    });
                }
            });
        })
        .context("starting the forwarder's thread")?;
    Ok(addr)
}

/// The process hops of a proxied round trip without peerup: two plain
/// forwarders, each a process of its own (this binary again, with the
/// hidden `--forward-to`), in front of `to`. A round trip through peerup
/// wakes the same six processes (the client, `peerup proxy`, the daemon,
/// the service, and back); on a virtual machine an idle vCPU's wake-up
/// costs more than the work, so this is the floor peerup's round trip is
/// read against. Returns the processes and the first one's address.
async fn forwarder_chain(to: SocketAddr, root: &Path) -> Result<(Vec<Proc>, SocketAddr)> {
    let me = std::env::current_exe()?;
    let mut procs = Vec::new();
    let mut next = to;
    for i in 0..2 {
        let port = free_port()?;
        procs.push(spawn(
            &me,
            &[
                "--forward-to",
                &next.to_string(),
                "--forward-port",
                &port.to_string(),
            ],
            &root.join(format!("forwarder-{i}.log")),
            "a forwarder process",
        )?);
        next = SocketAddr::from(([127, 0, 0, 1], port));
        wait_port(next, "a forwarder process").await?;
    }
    Ok((procs, next))
}

/// `--forward-to`: be one of [`forwarder_chain`]'s processes until killed.
fn forward_until_killed(port: u16, to: SocketAddr) -> Result<ExitCode> {
    forwarder(port, to)?;
    loop {
        std::thread::park();
    }
}

/// CPU time (user + system) of this process's threads named `name`.
fn thread_cpu_secs(name: &str) -> Option<f64> {
    let mut sum = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name
            && let Some(c) = std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|s| stat_cpu_secs(&s))
        {
            *sum.get_or_insert(0.0) += c;
        }
    }
    sum
}

/// Whose CPU time a role is: a process, or threads of this one.
#[derive(Clone, Copy)]
enum Cpu {
    Pid(u32),
    Threads(&'static str),
}

impl Cpu {
    fn secs(self) -> Option<f64> {
        match self {
            Cpu::Pid(pid) => cpu_secs(pid),
            Cpu::Threads(name) => thread_cpu_secs(name),
        }
    }
}

/// User + system time from a `/proc/.../stat` line, in seconds.
fn stat_cpu_secs(stat: &str) -> Option<f64> {
    // After the `(comm)` field: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace().skip(11);
    let user: u64 = f.next()?.parse().ok()?;
    let system: u64 = f.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((user + system) as f64 / 100.0)
}

// ---------------------------------------------------------------------------
// Measurements

/// CPU time (user + system) a process has used, in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Where the CPU went while bytes moved: seconds per GiB for each
/// `(role, pid)`, measured over the timed part of [`throughput_cpu`].
async fn throughput_cpu(
    r: &mut Results,
    label: &str,
    addr: SocketAddr,
    secs: u64,
    roles: &[(&str, Cpu)],
) -> Result<()> {
    let mut all = vec![("bench sender and sink", Cpu::Pid(std::process::id()))];
    all.extend_from_slice(roles);
    let mut before = Vec::new();
    let (gbps, bytes) = throughput_with(addr, secs, || {
        before = all.iter().map(|(_, c)| c.secs()).collect();
    })
    .await?;
    r.add("throughput", label, gbps, "Gbit/s");
    let gib = bytes as f64 / f64::from(1u32 << 30);
    let mut used: Vec<(&str, f64)> = Vec::new();
    for ((role, c), b) in all.iter().zip(before) {
        if let (Some(b), Some(a)) = (b, c.secs()) {
            used.push((role, a - b));
        }
    }
    // A role made of this process's threads is not the sender's and the
    // sink's: take it out of this process's figure.
    let threads: f64 = all
        .iter()
        .zip(&used)
        .filter(|((_, c), _)| matches!(c, Cpu::Threads(_)))
        .map(|(_, (_, s))| s)
        .sum();
    if let Some(own) = used.first_mut() {
        own.1 -= threads;
    }
    let mut total = 0.0;
    for (role, secs) in used {
        total += secs;
        r.add("cpu", &format!("{label}: {role}"), secs / gib, "CPU s/GiB");
    }
    r.add("cpu", &format!("{label}: total"), total / gib, "CPU s/GiB");
    Ok(())
}

/// Writes to `addr` for `secs` seconds in 256 KiB writes; Gbit/s.
async fn throughput(addr: SocketAddr, secs: u64) -> Result<f64> {
    Ok(throughput_with(addr, secs, || ()).await?.0)
}

/// [`throughput`], calling `started` when the timed part begins; also
/// returns the bytes written in the timed part.
async fn throughput_with(
    addr: SocketAddr,
    secs: u64,
    started: impl FnOnce(),
) -> Result<(f64, u64)> {
    let mut s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_nodelay(true)?;
    let buf = vec![0x5au8; CHUNK];
    // Warm up (connection set-up, window growth) before timing.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        s.write_all(&buf).await?;
    }
    started();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        s.write_all(&buf).await?;
        sent += CHUNK as u64;
    }
    s.flush().await?;
    let secs = start.elapsed().as_secs_f64();
    Ok((sent as f64 * 8.0 / secs / 1e9, sent))
}

/// 1-byte request/response round trips: (p50, p99) in microseconds.
async fn round_trips(addr: SocketAddr, n: usize) -> Result<(f64, f64)> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut b = [0u8; 1];
    for _ in 0..50 {
        s.write_all(b"x").await?;
        s.read_exact(&mut b).await?;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(b"x").await?;
        s.read_exact(&mut b).await?;
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok((percentile(&mut v, 50.0), percentile(&mut v, 99.0)))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Connect and read the greeter's byte: microseconds, median of `n`.
async fn first_byte(addr: SocketAddr, n: usize) -> Result<f64> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).await?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(percentile(&mut v, 50.0))
}

fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:`, `RssAnon:`, `RssFile:`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

async fn wait_port(addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not open {addr} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

// ---------------------------------------------------------------------------
// Processes

struct Proc(Child);

impl Drop for Proc {
    /// Stops the process as a user would (SIGTERM: a daemon closes its
    /// connections), then kills it if it is still there after 5 s. Killed
    /// at once, a daemon's QUIC connection to the relay stayed open on the
    /// relay's side until its idle timeout, and the next section's circuits
    /// to the new daemon went to the dead connection's reservation.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.with_file_name(name);
    if p.exists() {
        Ok(p)
    } else {
        bail!(
            "{} not found next to {}: build it (cargo build --release -p peerup-relay)",
            name,
            me.display()
        )
    }
}

/// The direct QUIC figure with packets held at Ethernet's size
/// (`PEERUP_QUIC_PATH_MTU=off`).
const QUIC_ETHERNET: &str = "peerup direct QUIC, Ethernet-sized packets";

fn spawn(bin: &Path, args: &[&str], log: &Path, what: &'static str) -> Result<Proc> {
    spawn_with(bin, args, &[], log, what)
}

/// [`spawn`] with these environment variables besides.
fn spawn_with(
    bin: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    log: &Path,
    what: &'static str,
) -> Result<Proc> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let child = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .env(
            "RUST_LOG",
            std::env::var("PEERUP_BENCH_LOG")
                .unwrap_or_else(|_| "warn,libp2p=error,yamux=error".into()),
        )
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    Ok(Proc(child))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    peerup_net::fs::write_atomic(path, text.as_bytes()).map_err(anyhow::Error::from)
}

fn keys_doc(peers: &[PeerId]) -> Result<String> {
    let mut d = Document::new();
    for p in peers {
        d.add(*p, Attributes::new(), Some("bench"))?;
    }
    Ok(d.render())
}

struct Net {
    dir: PathBuf,
    /// The relay's TCP address.
    relay_addr: String,
    /// The relay's QUIC address (a QUIC hole punch needs the node's QUIC
    /// address as the relay observes it).
    relay_quic: String,
    home_id: PeerId,
    /// The identities of the laptop's three `peerup proxy` processes
    /// (sink, echo, greeter): one each, as three machines would have. See
    /// [`PROXIES`].
    laptop_ids: [PeerId; 3],
    /// The identity of the cold-connect clients.
    cold_id: PeerId,
    _relay: Proc,
    relay_pid: u32,
}

fn node_dir(root: &Path, name: &str) -> Result<(PathBuf, PeerId)> {
    let dir = root.join(name);
    peerup_net::fs::ensure_private_dir(&dir)?;
    let kp = peerup_net::node::load_or_create_identity(&dir.join("identity.key"))?;
    Ok((dir, kp.public().to_peer_id()))
}

fn node_config(
    relay: &str,
    listen: &[&str],
    services: &[(&str, SocketAddr)],
    names: &[(&str, PeerId)],
) -> String {
    let mut y = String::from("version: 1\nnetwork:\n  listen_addresses:");
    if listen.is_empty() {
        y.push_str(" []\n");
    } else {
        y.push('\n');
        for l in listen {
            y.push_str(&format!("    - \"{l}\"\n"));
        }
    }
    y.push_str(&format!("relay:\n  addresses:\n    - \"{relay}\"\n"));
    if !services.is_empty() {
        y.push_str("services:\n");
        for (n, a) in services {
            y.push_str(&format!(
                "  {n}:\n    enabled: true\n    local_address: \"{a}\"\n"
            ));
        }
    }
    if !names.is_empty() {
        y.push_str("names:\n");
        for (n, p) in names {
            y.push_str(&format!("  {n}: \"{p}\"\n"));
        }
    }
    y
}

async fn start_net(root: &Path, extra_relay_peers: &[PeerId]) -> Result<Net> {
    let (_, home_id) = node_dir(root, "home")?;
    let mut laptop_ids = Vec::new();
    for (svc, _) in PROXIES {
        laptop_ids.push(node_dir(root, &format!("laptop-{svc}"))?.1);
    }
    let laptop_ids: [PeerId; 3] = laptop_ids
        .try_into()
        .map_err(|_| anyhow!("three laptop identities"))?;
    let (_, cold_id) = node_dir(root, "cold")?;
    let relay_dir = root.join("relay");
    peerup_net::fs::ensure_private_dir(&relay_dir)?;
    let port = free_port()?;
    write_private(
        &relay_dir.join("relay-server.yaml"),
        &format!(
            "version: 1\nnetwork:\n  listen_addresses: [\"/ip4/127.0.0.1/tcp/{port}\", \"/ip4/127.0.0.1/udp/{port}/quic-v1\"]\n\
             resources:\n  max_reservations: 4096\n  max_circuits: 4096\n  max_reservations_per_ip: 4096\nhealth:\n  enabled: false\n"
        ),
    )?;
    let mut peers = vec![home_id, cold_id];
    peers.extend_from_slice(&laptop_ids);
    peers.extend_from_slice(extra_relay_peers);
    write_private(&relay_dir.join("relay_authorized_keys"), &keys_doc(&peers)?)?;
    let cfg = relay_dir.join("relay-server.yaml");
    let relay = spawn(
        &sibling("peerup-relay")?,
        &["--config", cfg.to_str().unwrap_or("")],
        &root.join("relay.log"),
        "peerup-relay",
    )?;
    wait_port(SocketAddr::from(([127, 0, 0, 1], port)), "peerup-relay").await?;
    let relay_key = peerup_net::node::load_or_create_identity(&relay_dir.join("relay_node.key"))?;
    let relay_id = relay_key.public().to_peer_id();
    let relay_addr = format!("/ip4/127.0.0.1/tcp/{port}/p2p/{relay_id}");
    let relay_quic = format!("/ip4/127.0.0.1/udp/{port}/quic-v1/p2p/{relay_id}");
    let relay_pid = relay.pid();
    Ok(Net {
        dir: root.to_owned(),
        relay_addr,
        relay_quic,
        home_id,
        laptop_ids,
        cold_id,
        _relay: relay,
        relay_pid,
    })
}

struct Path3 {
    home: Proc,
    /// The three `peerup proxy` processes (sink, echo, greeter).
    proxies: Vec<Proc>,
    sink_port: u16,
    echo_port: u16,
    greet_port: u16,
}

/// Starts home's daemon (listening on `listen`, exposing `services`) and
/// waits until it holds its relay reservation.
async fn start_home(
    net: &Net,
    relay: &str,
    listen: &[&str],
    services: &[(&str, SocketAddr)],
    tag: &str,
    env: &[(&str, &str)],
) -> Result<Proc> {
    let exe = sibling("peerup")?;
    let home_dir = net.dir.join("home");
    let mut keys = net.laptop_ids.to_vec();
    keys.push(net.cold_id);
    write_private(&home_dir.join("authorized_keys"), &keys_doc(&keys)?)?;
    write_private(
        &home_dir.join("config.yaml"),
        &node_config(relay, listen, services, &[]),
    )?;
    let home_cfg = home_dir.join("config.yaml");
    let home = spawn_with(
        &exe,
        &["--config", home_cfg.to_str().unwrap_or(""), "daemon"],
        env,
        &net.dir.join(format!("home-{tag}.log")),
        "home daemon",
    )?;
    // Up, and reachable through the relay.
    wait_daemon_reserved(&exe, &home_cfg).await?;
    Ok(home)
}

/// Options for an in-process client of home: it reaches home only
/// through the relay (it listens on nothing, without QUIC), holds no
/// reservation, and trusts home.
fn relay_client(
    net: &Net,
    key: peerup_net::libp2p::identity::Keypair,
) -> Result<peerup_net::NodeOptions> {
    let relay: peerup_core::relay_addr::RelayAddr = net.relay_addr.parse()?;
    let mut o = peerup_net::NodeOptions::new(key)
        .with_listen(vec![])
        .with_relays(vec![relay])
        .with_reservations(false)
        .with_authorized_keys(Document::parse(&keys_doc(&[net.home_id])?), None);
    o.transport.quic = false;
    Ok(o)
}

/// The name of the relayed laptop's threads ([`relayed_laptop`]).
const LAPTOP_THREAD: &str = "bench-laptop";

/// The relayed section's laptop: a node in this process, on a runtime of
/// its own (one worker, as `peerup proxy`; its threads' CPU time is the
/// laptop's), listening on nothing and without QUIC, forwarding local
/// ports to home's sink and echo. A `peerup proxy` always listens on
/// ephemeral ports (its hole punch dials from them), and on one machine
/// home then reaches it directly: no NAT keeps the path on the relay. This
/// node cannot be dialed, so its path stays on the relay.
struct RelayedLaptop {
    runtime: Option<tokio::runtime::Runtime>,
    node: peerup_net::Node,
    _forwards: Vec<peerup_net::node::service::Forwarder>,
    sink_port: u16,
    echo_port: u16,
}

impl Drop for RelayedLaptop {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn relayed_laptop(net: &Net) -> Result<RelayedLaptop> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(LAPTOP_THREAD)
        .enable_all()
        .build()
        .context("starting the laptop's runtime")?;
    let rt: Arc<dyn peerup_net::Runtime> = {
        let _in = runtime.enter();
        Arc::new(peerup_tokio::TokioRuntime::current())
    };
    let started = async {
        let key =
            peerup_net::node::load_or_create_identity(&net.dir.join("laptop-sink/identity.key"))?;
        let node = peerup_net::Node::start(rt, relay_client(net, key)?).await?;
        let mut forwards = Vec::new();
        let mut ports = Vec::new();
        for svc in ["sink", "echo"] {
            let f = node
                .forward(SocketAddr::from(([127, 0, 0, 1], 0)), net.home_id, svc)
                .await?;
            ports.push(f.local_addr().port());
            forwards.push(f);
        }
        // Connected, over the relay.
        let path = tokio::time::timeout(Duration::from_secs(30), node.connect(net.home_id))
            .await
            .context("the laptop did not reach home through the relay within 30 s")??;
        if path != peerup_core::wire::ConnectionPath::Relayed {
            bail!("the relayed laptop reached home over {path:?}, not the relay");
        }
        Ok((node, forwards, ports))
    }
    .await;
    match started {
        Ok((node, forwards, ports)) => Ok(RelayedLaptop {
            runtime: Some(runtime),
            node,
            _forwards: forwards,
            sink_port: ports[0],
            echo_port: ports[1],
        }),
        Err(e) => {
            // A runtime may not be dropped (waiting) inside another.
            runtime.shutdown_background();
            Err(e)
        }
    }
}

/// The laptop's proxies: the service, and whether it answers a byte.
///
/// Each proxy is its own process with its own identity. With one identity
/// shared by the three processes, over QUIC one proxy logged eight hole
/// punches while another lost its connections to home again and again
/// ("the peer closed the connection"), and the sink's bytes went through
/// the relay in one run that reported a direct figure.
const PROXIES: [(&str, bool); 3] = [("sink", false), ("echo", true), ("greet", true)];

/// One connection through a proxy, so it connects to home: a byte written,
/// and the answer awaited (1 s at most) where the service answers.
async fn poke(addr: SocketAddr, answers: bool) {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
    else {
        return;
    };
    let _ = s.write_all(b"x").await;
    if answers {
        let mut b = [0u8; 1];
        let _ = tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut b)).await;
    }
}

/// Starts home (daemon, listening on `listen`) and laptop (three proxies:
/// sink, echo, greeter) and waits until laptop reaches home over the wanted
/// path.
async fn start_path(
    net: &Net,
    relay: &str,
    listen: &[&str],
    services: &[(&str, SocketAddr)],
    tag: &str,
    want_direct: bool,
    env: &[(&str, &str)],
) -> Result<Path3> {
    let exe = sibling("peerup")?;
    let home = start_home(net, relay, listen, services, tag, env).await?;
    let ports = [free_port()?, free_port()?, free_port()?];
    // `peerup proxy` once per service, as a user would; each its own
    // identity (see [`PROXIES`]).
    let mut procs = Vec::new();
    for ((svc, _), port) in PROXIES.iter().zip(ports) {
        let dir = net.dir.join(format!("laptop-{svc}"));
        write_private(&dir.join("authorized_keys"), &keys_doc(&[net.home_id])?)?;
        let cfg = dir.join("config.yaml");
        write_private(
            &cfg,
            &node_config(
                relay,
                // (`peerup proxy` listens on ephemeral ports whatever this
                // says: see [`relayed_laptop`].)
                &["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"],
                &[],
                &[("home", net.home_id)],
            ),
        )?;
        procs.push(spawn_with(
            &exe,
            &[
                "--config",
                cfg.to_str().unwrap_or(""),
                "proxy",
                "home",
                svc,
                &port.to_string(),
            ],
            env,
            &net.dir.join(format!("proxy-{svc}-{tag}.log")),
            "laptop proxy",
        )?);
    }
    for p in ports {
        wait_port(SocketAddr::from(([127, 0, 0, 1], p)), "laptop proxy").await?;
    }
    // Wait for the wanted path on every proxy: a connection through it
    // (which makes it connect), then its log says which path it has.
    let deadline = Instant::now() + Duration::from_secs(30);
    for ((svc, answers), port) in PROXIES.iter().zip(ports) {
        let log_path = net.dir.join(format!("proxy-{svc}-{tag}.log"));
        loop {
            poke(SocketAddr::from(([127, 0, 0, 1], port)), *answers).await;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let direct = log.contains("(hole punched)") || log.contains("[DIRECT]");
            if direct == want_direct || (!want_direct && log.contains("[RELAYED]")) {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the {svc} proxy never reached home {} within 30 s (see {})",
                    if want_direct {
                        "directly"
                    } else {
                        "through the relay"
                    },
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(Path3 {
        home,
        proxies: procs,
        sink_port: ports[0],
        echo_port: ports[1],
        greet_port: ports[2],
    })
}

impl Path3 {
    /// The processes bytes pass through, for CPU accounting.
    fn roles(&self, net: &Net) -> [(&'static str, Cpu); 3] {
        [
            ("laptop proxy", Cpu::Pid(self.proxies[0].pid())),
            ("home daemon", Cpu::Pid(self.home.pid())),
            ("relay", Cpu::Pid(net.relay_pid)),
        ]
    }
}

// ---------------------------------------------------------------------------
// ssh -L

struct Ssh {
    _sshd: Proc,
    port: u16,
    key: PathBuf,
    known: PathBuf,
}

async fn start_sshd(dir: &Path) -> Result<Option<Ssh>> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let (Some(sshd), true) = (sshd, Command::new("ssh").arg("-V").output().is_ok()) else {
        return Ok(None);
    };
    let d = dir.join("ssh");
    peerup_net::fs::ensure_private_dir(&d)?;
    for (name, ty) in [("host_key", "ed25519"), ("client_key", "ed25519")] {
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", ty, "-N", "", "-f"])
            .arg(d.join(name))
            .status()?;
        if !st.success() {
            bail!("ssh-keygen failed");
        }
    }
    std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))?;
    let port = free_port()?;
    let cfg = format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nStrictModes no\nPidFile {pid}\n\
         AllowTcpForwarding yes\nCiphers chacha20-poly1305@openssh.com,aes128-gcm@openssh.com\n",
        hk = d.join("host_key").display(),
        ak = d.join("authorized_keys").display(),
        pid = d.join("sshd.pid").display(),
    );
    write_private(&d.join("sshd_config"), &cfg)?;
    let _ = std::fs::create_dir_all("/run/sshd");
    let proc = spawn(
        &sshd,
        &[
            "-D",
            "-e",
            "-f",
            d.join("sshd_config").to_str().unwrap_or(""),
        ],
        &d.join("sshd.log"),
        "sshd",
    )?;
    wait_port(SocketAddr::from(([127, 0, 0, 1], port)), "sshd").await?;
    Ok(Some(Ssh {
        _sshd: proc,
        port,
        key: d.join("client_key"),
        known: d.join("known_hosts"),
    }))
}

fn ssh_tunnel(ssh: &Ssh, cipher: &str, to: SocketAddr, log: &Path) -> Result<(Proc, u16)> {
    let local = free_port()?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let proc = spawn(
        Path::new("ssh"),
        &[
            "-N",
            "-p",
            &ssh.port.to_string(),
            "-i",
            ssh.key.to_str().unwrap_or(""),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            &format!("UserKnownHostsFile={}", ssh.known.display()),
            "-o",
            "BatchMode=yes",
            "-c",
            cipher,
            "-L",
            &format!("{local}:{to}"),
            &format!("{user}@127.0.0.1"),
        ],
        log,
        "ssh -L",
    )?;
    Ok((proc, local))
}

// ---------------------------------------------------------------------------

struct Results {
    rows: Vec<(String, String, f64, String)>,
    json: BTreeMap<String, Value>,
}

impl Results {
    fn add(&mut self, group: &str, name: &str, value: f64, unit: &str) {
        println!("  {name:<44} {value:>10.3} {unit}");
        self.rows
            .push((group.to_owned(), name.to_owned(), value, unit.to_owned()));
        self.json.insert(
            format!("{group}.{name}"),
            json!({ "value": value, "unit": unit }),
        );
    }

    fn get(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.1 == name).map(|r| r.2)
    }
}

/// The version and commit of this build (the script is the binaries' own:
/// `build/version.rs`).
const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("PEERUP_GIT_COMMIT");

#[tokio::main]
async fn main() -> ExitCode {
    let args = BenchArgs::parse();
    if let (Some(to), Some(port)) = (args.forward_to, args.forward_port) {
        return match forward_until_killed(port, to) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("peerup-bench --forward-to: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The in-process nodes' logs (the relayed laptop, the capacity
    // clients), to stderr: `PEERUP_BENCH_CLIENT_LOG=debug`, say.
    if let Ok(filter) = std::env::var("PEERUP_BENCH_CLIENT_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("peerup-bench: {}", peerup_net::error::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: BenchArgs) -> Result<ExitCode> {
    let root = std::env::temp_dir().join(format!("peerup-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    peerup_net::fs::ensure_private_dir(&root)?;
    let result = bench(&root, &args).await;
    if result.is_ok() && std::env::var_os("PEERUP_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&root);
    } else {
        eprintln!("logs kept in {}", root.display());
    }
    result
}

async fn bench(root: &Path, args: &BenchArgs) -> Result<ExitCode> {
    // Thousands of sockets: raise the open-file limit (children inherit it).
    if let Err(e) = rlimit::increase_nofile_limit(1 << 20) {
        eprintln!(
            "warning: cannot raise the open-file limit ({e}); large connection counts may fail"
        );
    }
    let secs = args.seconds;
    let mut r = Results {
        rows: Vec::new(),
        json: BTreeMap::new(),
    };
    println!(
        "peerup-bench {} (commit {}) on {} CPUs",
        VERSION,
        COMMIT,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let sink_addr = sink().await?;
    let echo_addr = echo().await?;
    let greet_addr = greeter().await?;

    let want = |section: &str| args.only.is_empty() || args.only.iter().any(|o| o == section);
    if want("baselines") {
        println!("\nBaselines");
        r.add(
            "throughput",
            "raw loopback TCP",
            throughput(sink_addr, secs).await?,
            "Gbit/s",
        );
        let fwd = forwarder(0, sink_addr)?;
        let mut before = None;
        let (gbps, bytes) = throughput_with(fwd, secs, || {
            before = thread_cpu_secs(FORWARDER_THREAD);
        })
        .await?;
        r.add("throughput", "plain user-space forwarder", gbps, "Gbit/s");
        if let (Some(b), Some(a)) = (before, thread_cpu_secs(FORWARDER_THREAD)) {
            r.add(
                "cpu",
                "plain user-space forwarder (a TCP splice)",
                (a - b) / (bytes as f64 / f64::from(1u32 << 30)),
                "CPU s/GiB",
            );
        }
        let ssh = start_sshd(root).await?;
        if let Some(ssh) = &ssh {
            for (label, cipher) in [
                ("ssh -L chacha20-poly1305", "chacha20-poly1305@openssh.com"),
                ("ssh -L aes128-gcm", "aes128-gcm@openssh.com"),
            ] {
                let (tunnel, port) = ssh_tunnel(
                    ssh,
                    cipher,
                    sink_addr,
                    &root.join(format!("ssh-{cipher}.log")),
                )?;
                wait_port(SocketAddr::from(([127, 0, 0, 1], port)), "ssh -L").await?;
                r.add(
                    "throughput",
                    label,
                    throughput(SocketAddr::from(([127, 0, 0, 1], port)), secs).await?,
                    "Gbit/s",
                );
                drop(tunnel);
            }
        } else {
            println!("  (sshd not installed: no ssh -L baseline)");
        }
        let (raw_p50, raw_p99) = round_trips(echo_addr, 2000).await?;
        r.add("rtt", "raw TCP p50", raw_p50, "us");
        r.add("rtt", "raw TCP p99", raw_p99, "us");
        let (chain, chain_addr) = forwarder_chain(echo_addr, root).await?;
        let (p50, p99) = round_trips(chain_addr, 2000).await?;
        r.add("rtt", "two forwarder processes p50", p50, "us");
        r.add("rtt", "two forwarder processes p99", p99, "us");
        drop(chain);
    }

    // Pre-generate the capacity clients' identities: the relay and home
    // must know them before they start.
    let clients: Vec<_> = if args.skip_capacity || !want("capacity") {
        Vec::new()
    } else {
        (0..args.circuits)
            .map(|_| peerup_net::node::generate_identity())
            .collect::<Result<_, _>>()?
    };
    let client_ids: Vec<PeerId> = clients.iter().map(|k| k.public().to_peer_id()).collect();
    let net = start_net(root, &client_ids).await?;
    let services = [
        ("sink", sink_addr),
        ("echo", echo_addr),
        ("greet", greet_addr),
    ];

    let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
    if want("tcp") {
        println!("\npeerup, direct over TCP");
        let p = start_path(
            &net,
            &net.relay_addr,
            &["/ip4/127.0.0.1/tcp/0"],
            &services,
            "tcp",
            true,
            &[],
        )
        .await?;
        let fresh = rss_kib(p.home.pid()).unwrap_or(0);
        r.add(
            "memory",
            "daemon RSS idle, before any traffic",
            fresh as f64 / 1024.0,
            "MiB",
        );
        throughput_cpu(
            &mut r,
            "peerup direct TCP",
            local(p.sink_port),
            secs,
            &p.roles(&net),
        )
        .await?;
        let (p50, p99) = round_trips(local(p.echo_port), 2000).await?;
        r.add("rtt", "peerup direct TCP p50", p50, "us");
        r.add("rtt", "peerup direct TCP p99", p99, "us");
        r.add(
            "open",
            "warm open to first byte (median)",
            first_byte(local(p.greet_port), 200).await? / 1000.0,
            "ms",
        );
        // Memory: home's daemon, idle, then with 100 and N proxied connections.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_kib(p.home.pid()).unwrap_or(0);
        r.add(
            "memory",
            "daemon RSS idle, after traffic",
            idle as f64 / 1024.0,
            "MiB",
        );
        // What the RSS is made of: the binary's own pages (file-backed,
        // shared with every peerup process, given back under memory
        // pressure) and the process's own memory (heap, stacks).
        for (field, what) in [
            (
                "RssFile:",
                "daemon RSS idle: the binary's pages (file-backed)",
            ),
            ("RssAnon:", "daemon RSS idle: its own memory (anonymous)"),
        ] {
            if let Some(k) = status_kib(p.home.pid(), field) {
                r.add("memory", what, k as f64 / 1024.0, "MiB");
            }
        }
        let mut held = Vec::new();
        let mut after = BTreeMap::new();
        let n = args.connections.max(100);
        let targets: &[usize] = if n > 100 { &[100, n] } else { &[100] };
        for &target in targets {
            while held.len() < target {
                let mut s = TcpStream::connect(local(p.echo_port)).await?;
                s.write_all(b"x").await?;
                let mut b = [0u8; 1];
                s.read_exact(&mut b)
                    .await
                    .context("an open proxied connection did not echo")?;
                held.push(s);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let rss = rss_kib(p.home.pid()).unwrap_or(0);
            after.insert(target, rss);
            r.add(
                "memory",
                &format!("daemon RSS with {target} proxied connections"),
                rss as f64 / 1024.0,
                "MiB",
            );
        }
        let per = (after[&n].saturating_sub(idle)) as f64 / n as f64;
        r.add("memory", "daemon RSS per proxied connection", per, "KiB");
        drop(held);
        drop(p);
    }

    if want("quic") {
        // Twice: as peerup runs, and with QUIC's packets held at
        // Ethernet's size, what an internet path gets. Over loopback,
        // whose link carries 64 KiB, MTU discovery finds 65 KB packets
        // (ARCHITECTURE.md, "QUIC packet size"), as TCP's segments are
        // 64 KiB there.
        let default: &[(&str, &str)] = &[];
        let ethernet: &[(&str, &str)] = &[("PEERUP_QUIC_PATH_MTU", "off")];
        let runs = [
            (
                "peerup, direct over QUIC",
                "peerup direct QUIC",
                "quic",
                default,
            ),
            (
                "peerup, direct over QUIC, Ethernet-sized packets",
                QUIC_ETHERNET,
                "quic-ethernet",
                ethernet,
            ),
        ];
        for (heading, label, tag, env) in runs {
            println!("\n{heading}");
            let p = start_path(
                &net,
                &net.relay_quic,
                &["/ip4/127.0.0.1/udp/0/quic-v1"],
                &services,
                tag,
                true,
                env,
            )
            .await?;
            throughput_cpu(&mut r, label, local(p.sink_port), secs, &p.roles(&net)).await?;
            drop(p);
        }
    }

    if want("relayed") {
        println!("\npeerup, relayed");
        let home = start_home(&net, &net.relay_addr, &[], &services, "relayed", &[]).await?;
        let p = relayed_laptop(&net).await?;
        throughput_cpu(
            &mut r,
            "peerup relayed",
            local(p.sink_port),
            secs,
            &[
                ("laptop proxy", Cpu::Threads(LAPTOP_THREAD)),
                ("home daemon", Cpu::Pid(home.pid())),
                ("relay", Cpu::Pid(net.relay_pid)),
            ],
        )
        .await?;
        if p.node.path(net.home_id) != Some(peerup_core::wire::ConnectionPath::Relayed) {
            bail!("the relayed laptop's path left the relay during the measurement");
        }
        let (p50, p99) = round_trips(local(p.echo_port), 1000).await?;
        r.add("rtt", "peerup relayed p50", p50, "us");
        r.add("rtt", "peerup relayed p99", p99, "us");
        // Cold: a fresh node, through the relay, to the greeter's first byte.
        let mut colds = Vec::new();
        for _ in 0..5 {
            colds.push(cold_connect(&net).await?);
        }
        r.add(
            "open",
            "cold connect via relay to first byte (median)",
            percentile(&mut colds, 50.0),
            "ms",
        );
        p.node.shutdown().await;
        drop(p);
        drop(home);
    }

    if !args.skip_capacity && want("capacity") {
        println!("\nRelay capacity");
        capacity(&net, &clients, &mut r).await?;
    }

    report(&r, args)?;
    Ok(ExitCode::SUCCESS)
}

/// Waits until the daemon of `config` answers `peerup status --json` and
/// holds a reservation.
async fn wait_daemon_reserved(peerup: &Path, config: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = tokio::process::Command::new(peerup)
            .arg("--config")
            .arg(config)
            .args(["status", "--json"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {} status", peerup.display()))?;
        if out.status.success()
            && let Ok(status) = serde_json::from_slice::<Value>(&out.stdout)
            && status["relays"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x["reserved"] == true))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the home daemon did not get a relay reservation within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh node's time from start to the greeter's first byte through the
/// relay (its identity is authorized on the relay and on home).
async fn cold_connect(net: &Net) -> Result<f64> {
    let key = peerup_net::node::load_or_create_identity(&net.dir.join("cold/identity.key"))?;
    let start = Instant::now();
    let node = peerup_tokio::Node::start(relay_client(net, key)?).await?;
    let mut s = node.open_service(net.home_id, "greet").await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    node.shutdown().await;
    Ok(ms)
}

/// N in-process clients each open a circuit to home's echo and move 1 MiB
/// each way through it, at once; checksums checked, errors counted.
/// How long one capacity circuit may take to echo its MiB: a stall is
/// counted as an error, not waited for.
const CIRCUIT_DEADLINE: Duration = Duration::from_secs(90);

async fn capacity(
    net: &Net,
    clients: &[peerup_net::libp2p::identity::Keypair],
    r: &mut Results,
) -> Result<()> {
    let exe = sibling("peerup")?;
    let home_dir = net.dir.join("home");
    let echo_addr = echo().await?;
    write_private(
        &home_dir.join("authorized_keys"),
        &keys_doc(
            &clients
                .iter()
                .map(|k| k.public().to_peer_id())
                .collect::<Vec<_>>(),
        )?,
    )?;
    // A node accepts 256 inbound connections by default (a person's
    // handful of machines); this home takes one circuit per client.
    write_private(
        &home_dir.join("config.yaml"),
        &node_config(&net.relay_addr, &[], &[("echo", echo_addr)], &[]).replacen(
            "network:\n",
            &format!(
                "network:\n  max_inbound_connections: {}\n  max_pending_connections: 1024\n",
                clients.len() + 64
            ),
            1,
        ),
    )?;
    let home_cfg = home_dir.join("config.yaml");
    let _home = spawn(
        &exe,
        &["--config", home_cfg.to_str().unwrap_or(""), "daemon"],
        &net.dir.join("home-capacity.log"),
        "home daemon",
    )?;
    wait_daemon_reserved(&exe, &home_cfg).await?;
    let rt: Arc<dyn peerup_net::Runtime> = Arc::new(peerup_tokio::TokioRuntime::current());
    let relay_before = rss_kib(net.relay_pid).unwrap_or(0);
    let start = Instant::now();
    // Start the clients, each with one circuit to home, 8 at a time:
    // libp2p's relay client accepts at most 10 circuit requests in flight
    // per relay connection and refuses the rest.
    let mut nodes = Vec::new();
    for batch in clients.chunks(8) {
        let mut tasks = Vec::new();
        for k in batch {
            let mut o = relay_client(net, k.clone())?;
            o.ping_pong = None;
            let rt = rt.clone();
            let home = net.home_id;
            tasks.push(tokio::spawn(async move {
                let node = peerup_net::Node::start(rt, o).await?;
                node.connect(home).await?;
                Ok::<_, anyhow::Error>(node)
            }));
        }
        for t in tasks {
            nodes.push(t.await??);
        }
    }
    let setup = start.elapsed();
    let relay_rss = rss_kib(net.relay_pid).unwrap_or(0);
    r.add(
        "relay",
        &format!("{} circuits set up in", nodes.len()),
        setup.as_secs_f64(),
        "s",
    );
    r.add(
        "relay",
        &format!("relay RSS with {} circuits", nodes.len()),
        relay_rss as f64 / 1024.0,
        "MiB",
    );
    // Move 1 MiB each way on every circuit at once.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let node = node.clone();
        let home = net.home_id;
        tasks.push(tokio::spawn(tokio::time::timeout(
            CIRCUIT_DEADLINE,
            async move {
                use futures::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let t0 = Instant::now();
                let s = node
                    .open_service(home, "echo")
                    .await
                    .map_err(|e| anyhow!("open after {:?}: {e}", t0.elapsed()))?;
                let (mut rd, mut wr) = s.split();
                let data: Vec<u8> = (0..1usize << 20)
                    .map(|j| ((j * 31 + i) % 251) as u8)
                    .collect();
                let expect = data.clone();
                let w = async move {
                    wr.write_all(&data).await?;
                    wr.close().await
                };
                let rdf = async move {
                    let mut got = Vec::with_capacity(1 << 20);
                    rd.read_to_end(&mut got).await?;
                    Ok::<_, std::io::Error>(got)
                };
                let (w, got) = futures::join!(w, rdf);
                w.map_err(|e| anyhow!("write after {:?}: {e}", t0.elapsed()))?;
                let got = got.map_err(|e| anyhow!("read after {:?}: {e}", t0.elapsed()))?;
                if got != expect {
                    bail!("checksum mismatch: {} bytes back", got.len());
                }
                Ok(())
            },
        )));
    }
    let mut errors = 0usize;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Err(_)) => {
                errors += 1;
                first_error.get_or_insert(format!(
                    "no echo within {} s (after {:?})",
                    CIRCUIT_DEADLINE.as_secs(),
                    start.elapsed()
                ));
            }
            Ok(Ok(Err(e))) => {
                errors += 1;
                first_error.get_or_insert(format!("{e:#} (after {:?})", start.elapsed()));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let took = start.elapsed();
    let peak = rss_kib(net.relay_pid).unwrap_or(0);
    r.add(
        "relay",
        &format!("{} x 1 MiB each way, concurrent, in", nodes.len()),
        took.as_secs_f64(),
        "s",
    );
    r.add(
        "relay",
        "relay RSS during the transfer",
        peak as f64 / 1024.0,
        "MiB",
    );
    if !nodes.is_empty() {
        // What one circuit moving data costs the relay: its growth from
        // before the circuits to the peak of the transfer, per circuit.
        r.add(
            "relay",
            "relay RSS per busy circuit",
            peak.saturating_sub(relay_before) as f64 / nodes.len() as f64,
            "KiB",
        );
    }
    r.add("relay", "errors (checksum or stream)", errors as f64, "");
    if let Some(e) = first_error {
        println!("  first error: {e}");
    }
    for n in nodes {
        n.shutdown().await;
    }
    Ok(())
}

/// What the figures were measured on: CPUs and their model.
fn machine() -> Value {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
    })
}

/// Prints each figure next to the recorded run's, with their ratio
/// (higher is better for Gbit/s; lower for the rest).
fn against_baseline(r: &Results, base: &Value, name: &str) {
    let Some(results) = base["results"].as_object() else {
        println!("\n({name} has no results: nothing to compare)");
        return;
    };
    println!(
        "\n## Against the recorded run ({name}: commit {}, {} CPUs {})\n",
        base["commit"].as_str().unwrap_or("?"),
        base["machine"]["cpus"],
        base["machine"]["cpu_model"].as_str().unwrap_or("")
    );
    println!("| figure | now | recorded | now ÷ recorded |");
    println!("|---|---:|---:|---:|");
    for (key, now) in &r.json {
        let (Some(now), Some(then)) = (
            now["value"].as_f64(),
            results.get(key).and_then(|v| v["value"].as_f64()),
        ) else {
            continue;
        };
        let unit = results[key]["unit"].as_str().unwrap_or("");
        let ratio = if then == 0.0 {
            "-".to_owned()
        } else {
            format!("{:.2}x", now / then)
        };
        println!("| {key} | {now:.3} | {then:.3} {unit} | {ratio} |");
    }
}

fn report(r: &Results, args: &BenchArgs) -> Result<()> {
    // A baseline or path a partial run (`--only`) did not measure is
    // shown as `-`, and a target that needs it is not judged.
    let raw = r.get("raw loopback TCP");
    let fwd = r.get("plain user-space forwarder");
    let chacha = r.get("ssh -L chacha20-poly1305");
    let aes = r.get("ssh -L aes128-gcm");
    let direct = r.get("peerup direct TCP");
    println!("\n## Throughput (one TCP connection, Gbit/s)\n");
    println!(
        "| path | Gbit/s | vs raw TCP | vs forwarder | vs ssh -L chacha20 | vs ssh -L aes128-gcm |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let ratio = |v: f64, b: Option<f64>| b.map_or("-".to_owned(), |b| format!("{:.2}x", v / b));
    for row in r.rows.iter().filter(|x| x.0 == "throughput") {
        println!(
            "| {} | {:.2} | {} | {} | {} | {} |",
            row.1,
            row.2,
            ratio(row.2, raw),
            ratio(row.2, fwd),
            ratio(row.2, chacha),
            ratio(row.2, aes)
        );
    }
    println!("\n## Latency and memory\n");
    println!("| measurement | value |");
    println!("|---|---:|");
    for row in r
        .rows
        .iter()
        .filter(|x| x.0 != "throughput" && x.0 != "cpu")
    {
        println!("| {} | {:.3} {} |", row.1, row.2, row.3);
    }
    if r.rows.iter().any(|x| x.0 == "cpu") {
        println!("\n## Where the CPU goes (CPU seconds per GiB moved)\n");
        println!("| path: process | CPU s/GiB |");
        println!("|---|---:|");
        for row in r.rows.iter().filter(|x| x.0 == "cpu") {
            println!("| {} | {:.3} |", row.1, row.2);
        }
    }
    // The targets (issues 11 and 20).
    let raw_p50 = r.get("raw TCP p50");
    let quic = r.get("peerup direct QUIC");
    let mut targets = Vec::new();
    let mut t = |name: &str, ok: Option<bool>, detail: String| {
        targets.push(json!({ "target": name, "met": ok, "detail": detail }));
        let result = match ok {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not judged",
        };
        println!("| {name} | {result} | {detail} |");
    };
    println!("\n## Targets\n");
    println!("| target | result | measured |");
    println!("|---|---|---|");
    // A direct figure is only a direct path's if the relay did not carry
    // its bytes (one proxy process can stay on the relay while another
    // hole punches): the relay's CPU per GiB says.
    let via_relay = |label: &str| {
        r.get(&format!("{label}: relay"))
            .is_some_and(|c| c > RELAY_CPU_WHEN_DIRECT)
    };
    let judged = |label: &str, ok: bool| (!via_relay(label)).then_some(ok);
    let relay_note = |label: &str| {
        if via_relay(label) {
            " (not judged: the relay carried the bytes)"
        } else {
            ""
        }
    };
    if let (Some(d), Some(a)) = (direct, aes) {
        t(
            "direct TCP >= 1.0x ssh -L aes128-gcm",
            judged("peerup direct TCP", d >= a),
            format!(
                "{:.2}x ({d:.2} vs {a:.2} Gbit/s){}",
                d / a,
                relay_note("peerup direct TCP")
            ),
        );
    }
    if let (Some(d), Some(c)) = (direct, chacha) {
        t(
            "direct TCP >= 1.0x ssh -L chacha20",
            judged("peerup direct TCP", d >= c),
            format!("{:.2}x", d / c),
        );
    }
    if let (Some(q), Some(d)) = (quic, direct) {
        t(
            "direct QUIC >= 0.9x direct TCP",
            judged("peerup direct QUIC", q >= 0.9 * d),
            format!(
                "{:.2}x ({q:.2} vs {d:.2} Gbit/s){}",
                q / d,
                relay_note("peerup direct QUIC")
            ),
        );
    }
    if let (Some(q), Some(d)) = (r.get(QUIC_ETHERNET), direct) {
        println!(
            "| (shown) direct QUIC with Ethernet-sized packets (1,452 bytes, an internet path's) | - | {:.2}x direct TCP ({q:.2} Gbit/s){} |",
            q / d,
            relay_note(QUIC_ETHERNET)
        );
    }
    // Relayed, as deployed: the relay is another machine, and each of the
    // three processes has a core of its own. Each then moves at most one
    // GiB per its CPU seconds per GiB, so the busiest process sets the
    // pace: projected relayed ÷ direct = the direct path's busiest
    // process's CPU per GiB ÷ the relayed path's.
    let busiest = |label: &str| {
        ["laptop proxy", "home daemon", "relay"]
            .iter()
            .filter_map(|role| r.get(&format!("{label}: {role}")).map(|c| (c, *role)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    if let (Some((cd, dr)), Some((cr, rr))) =
        (busiest("peerup direct TCP"), busiest("peerup relayed"))
    {
        t(
            "relayed >= 0.5x direct, projected (a core per process)",
            Some(cr > 0.0 && cd / cr >= 0.5),
            format!(
                "{:.2}x (busiest process: direct {dr} {cd:.2} CPU s/GiB, relayed {rr} {cr:.2})",
                cd / cr
            ),
        );
    }
    if let (Some(d), Some(rel)) = (direct, r.get("peerup relayed")) {
        // On this machine the peers and the relay share its cores: the
        // ratio then follows the total CPU per byte of each path, shown
        // for comparison (not a target since issue 20).
        let cpu = match (
            r.get("peerup direct TCP: total"),
            r.get("peerup relayed: total"),
        ) {
            (Some(cd), Some(cr)) if cr > 0.0 => {
                format!(
                    " (total CPU per GiB: direct {cd:.2} s, relayed {cr:.2} s = {:.2}x)",
                    cd / cr
                )
            }
            _ => String::new(),
        };
        println!(
            "| (shown) relayed ÷ direct on this machine's shared cores | - | {:.2}x{cpu} |",
            rel / d
        );
    }
    if let (Some(relay), Some(splice)) = (
        r.get("peerup relayed: relay"),
        r.get("plain user-space forwarder (a TCP splice)"),
    ) {
        println!(
            "| (shown) relay CPU per relayed GiB vs a plain TCP splice | - | {relay:.2} vs {splice:.2} CPU s/GiB = {:.1}x |",
            relay / splice
        );
    }
    if let Some(m) = r.get("relay RSS per busy circuit") {
        println!("| (shown) relay memory per busy circuit | - | {m:.0} KiB |");
    }
    if let (Some(p50), Some(raw_p50)) = (r.get("peerup direct TCP p50"), raw_p50) {
        t(
            "RTT p50 <= raw + 100 us",
            Some(p50 <= raw_p50 + 100.0),
            format!("{p50:.0} us vs raw {raw_p50:.0} us"),
        );
        if let Some(f50) = r.get("two forwarder processes p50") {
            println!(
                "| (shown) RTT p50 through two plain forwarder processes (the same process hops, no peerup) | - | {f50:.0} us: peerup's round trip is {:+.0} us over it, raw TCP's {:+.0} us under it |",
                p50 - f50,
                raw_p50 - f50
            );
        }
    }
    if let Some(w) = r.get("warm open to first byte (median)") {
        t("warm open <= 2 ms", Some(w <= 2.0), format!("{w:.3} ms"));
    }
    if let Some(c) = r.get("cold connect via relay to first byte (median)") {
        t(
            "cold connect via relay <= 300 ms",
            Some(c <= 300.0),
            format!("{c:.1} ms"),
        );
    }
    if let Some(m) = r.get("daemon RSS idle, after traffic") {
        t(
            "daemon idle RSS <= 20 MiB",
            Some(m <= 20.0),
            format!("{m:.1} MiB"),
        );
    }
    if let Some(m) = r.get("daemon RSS per proxied connection") {
        t(
            "<= 100 KiB per proxied connection",
            Some(m <= 100.0),
            format!("{m:.1} KiB"),
        );
    }
    if let Some(e) = r
        .rows
        .iter()
        .find(|x| x.1.starts_with("errors"))
        .map(|x| x.2)
    {
        let rss = r
            .rows
            .iter()
            .filter(|x| x.1.starts_with("relay RSS"))
            .map(|x| x.2)
            .fold(0.0, f64::max);
        // What the transfer adds over holding the circuits is data in
        // flight, per circuit: yamux lets a sender run up to 256 KiB ahead
        // of a stream's reader, a constant of its protocol.
        let holding = r
            .rows
            .iter()
            .find(|x| x.1.starts_with("relay RSS with"))
            .map(|x| x.2);
        let in_flight = match holding {
            Some(h) if rss > h && args.circuits > 0 => format!(
                " ({h:.1} MiB holding the circuits, {:.0} KiB more per circuit in flight)",
                (rss - h) * 1024.0 / args.circuits as f64
            ),
            _ => String::new(),
        };
        t(
            &format!("relay: {} circuits, 0 errors, <= 200 MiB", args.circuits),
            Some(e == 0.0 && rss <= 200.0),
            format!("{e} errors, {rss:.1} MiB{in_flight}"),
        );
    }
    let doc = json!({
        "results": r.json,
        "targets": targets,
        "version": VERSION,
        "commit": COMMIT,
        "machine": machine(),
    });
    if !args.no_baseline {
        let (text, name) = match &args.baseline {
            Some(p) => (
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading the baseline {}", p.display()))?,
                p.display().to_string(),
            ),
            None => (BASELINE.to_owned(), "docs/bench-baseline.json".to_owned()),
        };
        let base: Value = serde_json::from_str(&text)
            .with_context(|| format!("{name}: not a peerup-bench --json file"))?;
        against_baseline(r, &base, &name);
    }
    println!("\n```json\n{}\n```", serde_json::to_string_pretty(&doc)?);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
