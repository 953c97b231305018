//! `peerup-relay`: the public rendezvous of a peerup network.
//!
//! Every peer reaches it with outbound connections only; it relays circuits
//! between authorized peers whose NATs defeat hole punching, and is the
//! DHT's bootstrap node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_core::config::RelayConfig;
use peerup_core::config::confirm::Confirm;
use peerup_core::naming::parse_peer_id;
use peerup_net::Runtime;
use peerup_net::fs;
use peerup_relay::{Relay, RelayOptions, health};

mod cli_pair;
use peerup_tokio::TokioRuntime;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("PEERUP_GIT_COMMIT");
const BUILD_DATE: &str = env!("PEERUP_BUILD_DATE");

#[derive(Parser, Debug)]
#[command(
    name = "peerup-relay",
    version = VERSION,
    about = "The peerup relay server: circuit relay v2 for your machines behind NAT",
    long_about = "The public rendezvous of a peerup network. Run it on a VPS with a public IP: your \
                  machines connect to it outbound, hold reservations, and reach each other through it \
                  when their NATs defeat hole punching. Only peers in relay_authorized_keys may use it.",
    after_help = "Examples:\n  peerup-relay                         run with ./relay-server.yaml\n  \
                  peerup-relay --config /etc/peerup/relay-server.yaml\n  \
                  peerup-relay authorize 12D3KooW... --comment laptop\n  peerup-relay info\n\n\
                  Logs: RUST_LOG=debug, or -v / -q."
)]
struct Cli {
    /// Config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "relay-server.yaml",
        value_name = "PATH"
    )]
    config: PathBuf,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the relay (the default).
    Serve,
    /// Print the relay's peer ID and the addresses nodes should use.
    Info,
    /// Allow a peer to reserve and relay through this server (applied by a
    /// running relay at once).
    Authorize {
        /// The peer's ID (12D3KooW...).
        peer: String,
        /// A label for the peer (its name).
        #[arg(long)]
        comment: Option<String>,
        /// Until when: an RFC 3339 time, or a duration from now (72h).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Remove a peer; a running relay disconnects it at once (this fails
    /// if the running relay did not apply the change).
    Deauthorize {
        /// The peer's ID.
        peer: String,
    },
    /// List authorized peers.
    ListPeers,
    /// Make one-time pairing codes: each machine runs `peerup join <code>`
    /// and is authorized here and paired with the others, no SSH to the
    /// relay needed. Talks to the running relay.
    #[command(
        after_help = "Examples:\n  peerup-relay pair                      one code, valid 1h\n  \
                  peerup-relay pair --count 3 --ttl 2h   three machines\n  \
                  peerup-relay pair --count 2 --expires 30d --name-prefix lab\n  \
                  peerup-relay pair --list\n  peerup-relay pair --revoke 1a2b3c4d\n\n\
                  Codes are secrets until used: send each over a channel you trust. A code\n\
                  works once; three failed uses burn it. Codes live in the running relay's\n\
                  memory only: a restart forgets them (machines that joined stay authorized)."
    )]
    Pair(cli_pair::PairArgs),
    /// Validate or roll back the config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print version, git commit and build date.
    Version,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Check relay-server.yaml and relay_authorized_keys.
    Validate,
    /// Restore the last config the relay started with successfully.
    Rollback,
}

fn main() -> ExitCode {
    // Before any thread or allocation of note: see peerup_net::memory.
    peerup_net::memory::tune_for_throughput();
    let cli = Cli::parse();
    init_logs(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", peerup_net::error::chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn init_logs(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info,libp2p=warn,libp2p_kad=error",
        (false, 1) => "debug,libp2p=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: journald and log files get text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::Info => info(&cli.config),
        Command::Authorize {
            peer,
            comment,
            expires,
        } => authorize(&cli.config, &peer, comment.as_deref(), expires.as_deref()),
        Command::Deauthorize { peer } => deauthorize(&cli.config, &peer),
        Command::ListPeers => list_peers(&cli.config),
        Command::Pair(args) => cli_pair::run(&cli.config, &control_socket(&cli.config), &args),
        Command::Config(ConfigCommand::Validate) => validate(&cli.config),
        Command::Config(ConfigCommand::Rollback) => rollback(&cli.config),
        Command::Version => {
            println!("peerup-relay {VERSION} (commit {COMMIT}, built {BUILD_DATE})");
            Ok(())
        }
    }
}

/// Reads and parses the config (mode 0600 enforced), printing warnings.
fn load_config(path: &Path) -> Result<(RelayConfig, String)> {
    let bytes = fs::read_private(path).map_err(|e| {
        if e.is_not_found() {
            anyhow::anyhow!(
                "{}: no such config file; copy configs/relay-server.sample.yaml there (chmod 600) or pass --config <path>",
                path.display()
            )
        } else {
            e.into()
        }
    })?;
    let text =
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))?;
    let (config, warnings) = RelayConfig::parse(path, &text)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    Ok((config, text))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn serve(path: &Path) -> Result<()> {
    let (config, text) = load_config(path)?;
    // As many descriptors as the hard limit allows; the connection limits
    // then fit what is left, so a flood runs into them, not into EMFILE.
    let descriptors = raise_descriptor_limit();
    let mut options = RelayOptions::from_config(&config, path)?;
    options.connection_limits = options.connection_limits.fit_to_descriptors(descriptors);
    let ak_path = config.authorized_keys_path(path);
    let socket = control_socket(path);
    let rt_tokio = runtime()?;
    rt_tokio.block_on(async move {
        let rt: Arc<dyn Runtime> = Arc::new(TokioRuntime::current());
        let relay = Relay::start(rt.clone(), options).await?;
        // The config worked: archive it as last-known-good.
        let paths = peerup_net::confirm::paths(path)?;
        let state = peerup_net::confirm::read_state(&paths);
        let now = peerup_core::time::UnixTime::from_system_time(std::time::SystemTime::now());
        let mut machine = Confirm::start(path.to_owned(), paths, now, &state, text.as_bytes());
        let drained = peerup_net::confirm::drain(&mut machine)?;
        if drained.exit_for_restart {
            bail!("the config change was not confirmed in time and has been reverted; restart to run the previous config");
        }
        // The relay holds its identity's lock: a socket left behind is stale.
        let _ = std::fs::remove_file(&socket);
        // Without its control socket (a read-only config directory) the
        // relay still runs; `authorize`/`deauthorize` then say they
        // cannot confirm.
        let _socket_guard = match bind_private(&socket) {
            Ok(control) => {
                tokio::spawn(serve_control(control, relay.clone(), ak_path.clone()));
                Some(RemoveOnDrop(socket.clone()))
            }
            Err(e) => {
                tracing::warn!("{e:#}; `peerup-relay authorize` and `deauthorize` cannot confirm changes with this relay");
                None
            }
        };
        banner(&relay);
        if config.health.enabled {
            match health::serve(rt.clone(), relay.clone(), config.health.listen_address).await {
                Ok(addr) => println!("Health:    http://{addr}/healthz  and  http://{addr}/metrics"),
                Err(e) => bail!("cannot serve health on {}: {e} (set health.listen_address or health.enabled: false)", config.health.listen_address),
            }
        }
        if relay.is_gating() {
            relay.watch_authorized_keys(rt.clone(), ak_path.clone(), Duration::from_secs(5));
        }

        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        let watchdog = relay.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if watchdog.is_running() && !watchdog.listen_addrs().is_empty() {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                }
            }
        });
        wait_for_signals(&relay, &ak_path).await?;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down");
        relay.shutdown().await;
        Ok(())
    })
}

#[cfg(unix)]
async fn wait_for_signals(relay: &Relay, ak_path: &Path) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                if relay.is_gating() {
                    match relay.reload_authorized_keys_file(ak_path).await {
                        Ok(revoked) => tracing::info!(?revoked, "SIGHUP: relay_authorized_keys reloaded"),
                        Err(e) => tracing::error!(error = %peerup_net::error::chain(&e), "SIGHUP: reload failed; keeping the old list"),
                    }
                }
            }
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signals(_: &Relay, _: &Path) -> Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Raises the soft descriptor limit to the hard one; returns the limit in
/// force.
fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the descriptor limit");
            1024
        }
    }
}

/// The relay's control socket, beside its config: `authorize` and
/// `deauthorize` ask the running relay to apply the file, and fail unless
/// it did.
fn control_socket(config: &Path) -> PathBuf {
    let dir = match config.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    dir.join("peerup-relay.sock")
}

/// Binds with mode 0600 from the start (umask 0177), not chmod-ed after.
fn bind_private(path: &Path) -> Result<tokio::net::UnixListener> {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = tokio::net::UnixListener::bind(path);
    rustix::process::umask(old);
    bound.with_context(|| format!("{}: cannot create the control socket", path.display()))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A control request: one JSON line.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ControlRequest {
    /// A peer that must be refused after the reload.
    expect_denied: Option<String>,
    /// A peer that must be allowed after the reload.
    expect_authorized: Option<String>,
    /// A pairing-group operation (`peerup-relay pair`) instead of a
    /// reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pair: Option<cli_pair::PairRequest>,
}

/// The answer: one JSON line.
#[derive(serde::Serialize, serde::Deserialize)]
struct ControlReply {
    ok: bool,
    message: String,
    /// What a pairing operation produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pair: Option<cli_pair::PairReply>,
}

async fn serve_control(listener: tokio::net::UnixListener, relay: Relay, ak_path: PathBuf) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut backoff =
        peerup_core::time::Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => {
                backoff.succeed();
                s
            }
            Err(e) => {
                let wait = backoff.fail();
                tracing::warn!(error = %e, retry_in = ?wait, "control socket: accept failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        // One request at a time: a reload is quick, and this bounds the
        // socket to one connection's worth of work.
        let (r, mut w) = stream.into_split();
        let mut lines = BufReader::new(r.take(64 * 1024)).lines();
        let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
        else {
            continue;
        };
        let reply = match serde_json::from_str::<ControlRequest>(&line) {
            Err(e) => ControlReply {
                ok: false,
                message: format!("bad request: {e}"),
                pair: None,
            },
            Ok(ControlRequest { pair: Some(op), .. }) => cli_pair::serve(&relay, op).await,
            Ok(req) => apply(&relay, &ak_path, req).await,
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        let _ = tokio::time::timeout(Duration::from_secs(10), w.write_all(out.as_bytes())).await;
    }
}

async fn apply(relay: &Relay, ak_path: &Path, req: ControlRequest) -> ControlReply {
    if !relay.is_gating() {
        // A removal does not keep anyone out of an open relay.
        return ControlReply {
            ok: req.expect_denied.is_none(),
            message: "connection gating is off: every peer may use this relay, listed or not"
                .to_owned(),
            pair: None,
        };
    }
    let revoked = match relay.reload_authorized_keys_file(ak_path).await {
        Ok(r) => r,
        Err(e) => {
            return ControlReply {
                ok: false,
                message: format!("the running relay did not apply the change: {e}"),
                pair: None,
            };
        }
    };
    for (text, want) in [(req.expect_denied, false), (req.expect_authorized, true)] {
        let Some(text) = text else { continue };
        let Ok(peer) = parse_peer_id(&text) else {
            return ControlReply {
                ok: false,
                message: format!("bad peer ID {text}"),
                pair: None,
            };
        };
        if relay.is_authorized(&peer) != want {
            return ControlReply {
                ok: false,
                message: format!(
                    "the running relay still {} {peer} after reloading {} (check it with `peerup-relay config validate`)",
                    if want { "refuses" } else { "lets in" },
                    ak_path.display()
                ),
                pair: None,
            };
        }
    }
    ControlReply {
        pair: None,
        ok: true,
        message: if revoked.is_empty() {
            "the running relay applied it".to_owned()
        } else {
            format!(
                "the running relay applied it and disconnected {} peer(s)",
                revoked.len()
            )
        },
    }
}

/// Asks the running relay (if any) to apply `relay_authorized_keys` and
/// to confirm `peer`'s new standing; errors unless it did.
fn tell_running_relay(config: &Path, peer: peerup_core::PeerId, authorized: bool) -> Result<()> {
    use std::io::{BufRead, Write};
    let socket = control_socket(config);
    let mut stream = match std::os::unix::net::UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            // A relay holds its key locked while it runs.
            let running = std::fs::read_to_string(config)
                .ok()
                .and_then(|text| RelayConfig::parse(config, &text).ok())
                .and_then(|(c, _)| fs::lock_identity(&c.key_file_path(config)).err())
                .filter(|e| matches!(e, fs::FsError::IdentityInUse { .. }));
            if let Some(e) = running {
                bail!(
                    "the file was changed, but the running relay cannot be asked to confirm it ({e}; its control socket {} is missing): it applies the file within seconds, check its log",
                    socket.display()
                );
            }
            println!(
                "No relay is running for {}; it applies the file when it starts.",
                config.display()
            );
            return Ok(());
        }
        Err(e) => bail!("{}: {e}", socket.display()),
    };
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let text = Some(peer.to_string());
    let req = if authorized {
        ControlRequest {
            expect_authorized: text,
            ..ControlRequest::default()
        }
    } else {
        ControlRequest {
            expect_denied: text,
            ..ControlRequest::default()
        }
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
    let reply: ControlReply = serde_json::from_str(&answer)
        .with_context(|| format!("no answer from the running relay on {}", socket.display()))?;
    if reply.ok {
        println!("{}", reply.message);
        Ok(())
    } else {
        bail!("the file was changed, but {}", reply.message)
    }
}

/// `text` as a QR code for the terminal, drawn as `peerup invite` draws
/// its codes (half blocks, error correction M, quiet zone).
pub(crate) fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Dark)
            .light_color(Dense1x2::Light)
            .quiet_zone(true)
            .build(),
    )
}

fn banner(relay: &Relay) {
    println!("peerup-relay {VERSION}");
    println!("Peer ID:   {}", relay.peer_id());
    let addrs = relay.full_addrs();
    println!("Put one of these in your nodes' relay.addresses (peerup relay add <address>):");
    for a in &addrs {
        println!("  {a}");
    }
    let first = addrs.iter().find(|a| !is_loopback(a)).or(addrs.first());
    if let Some(first) = first
        && let Some(qr) = qr(&first.to_string())
    {
        println!("{qr}");
    }
    if relay.is_gating() {
        println!(
            "Gating:    on ({} authorized peers)",
            relay.authorized_count()
        );
    } else {
        println!(
            "Gating:    OFF - anyone can use this relay (sessions limited to 10 min / 64 MiB)"
        );
    }
    let l = relay.limits();
    let fmt_d = |d: Option<Duration>| d.map_or("unlimited".to_owned(), |d| format!("{d:?}"));
    let fmt_b = |b: Option<u64>| b.map_or("unlimited".to_owned(), |b| format!("{} MiB", b >> 20));
    println!(
        "Limits:    {} reservations ({} per IP), {} circuits per peer, session {} / {} per direction",
        l.max_reservations,
        l.max_reservations_per_ip,
        l.max_circuits,
        fmt_d(l.session_duration),
        fmt_b(l.session_data_limit)
    );
}

fn is_loopback(a: &peerup_core::Multiaddr) -> bool {
    a.iter().any(|p| match p {
        peerup_core::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
        peerup_core::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn info(path: &Path) -> Result<()> {
    let (config, _) = load_config(path)?;
    let keypair = peerup_net::node::load_or_create_identity(&config.key_file_path(path))?;
    let peer = keypair.public().to_peer_id();
    println!("Peer ID: {peer}");
    println!("Listen addresses (replace 0.0.0.0 / :: with this server's public IP):");
    for a in &config.network.listen_addresses {
        println!("  {a}/p2p/{peer}");
    }
    println!(
        "Gating: {}; authorized_keys: {}",
        if config.security.enable_connection_gating {
            "on"
        } else {
            "OFF"
        },
        config.authorized_keys_path(path).display()
    );
    Ok(())
}

fn read_keys(path: &Path) -> Result<Document> {
    match fs::read_private(path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{}: not UTF-8 text", path.display()))?;
            Ok(Document::parse(&text))
        }
        Err(e) if e.is_not_found() => Ok(Document::new()),
        Err(e) => Err(e.into()),
    }
}

fn keys_path(path: &Path) -> Result<PathBuf> {
    let (config, _) = load_config(path)?;
    Ok(config.authorized_keys_path(path))
}

fn authorize(path: &Path, peer: &str, comment: Option<&str>, expires: Option<&str>) -> Result<()> {
    let peer = parse_peer_id(peer)?;
    let mut attrs = Attributes::new();
    if let Some(text) = expires {
        let at = match peerup_core::time::UnixTime::parse_rfc3339(text) {
            Ok(t) => t,
            Err(_) => {
                let d = peerup_core::config::units::parse_duration(text).map_err(|_| {
                    anyhow::anyhow!(
                        "--expires `{text}` is neither an RFC 3339 time (2027-01-31T00:00:00Z) nor a duration (72h)"
                    )
                })?;
                peerup_core::time::UnixTime::from_system_time(std::time::SystemTime::now())
                    .saturating_add(d)
            }
        };
        attrs = attrs.with_expires(at);
    }
    let ak = keys_path(path)?;
    let edit = fs::lock_for_edit(&ak)?;
    let mut doc = read_keys(&ak)?;
    if doc.contains(&peer) {
        println!("{peer} is already authorized");
        return Ok(());
    }
    doc.add(peer, attrs, comment)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ak.display()))?;
    fs::write_atomic(&ak, doc.render().as_bytes())?;
    drop(edit);
    println!("Authorized {peer} in {}", ak.display());
    tell_running_relay(path, peer, true)
}

fn deauthorize(path: &Path, peer: &str) -> Result<()> {
    let peer = parse_peer_id(peer)?;
    let ak = keys_path(path)?;
    let edit = fs::lock_for_edit(&ak)?;
    let mut doc = read_keys(&ak)?;
    doc.remove(&peer)
        .map_err(|e| anyhow::anyhow!("{}: {e}", ak.display()))?;
    fs::write_atomic(&ak, doc.render().as_bytes())?;
    drop(edit);
    println!("Removed {peer} from {}", ak.display());
    tell_running_relay(path, peer, false)
}

fn list_peers(path: &Path) -> Result<()> {
    let ak = keys_path(path)?;
    let doc = read_keys(&ak)?;
    let now = peerup_core::time::UnixTime::from_system_time(std::time::SystemTime::now());
    if doc.is_empty() {
        println!("No authorized peers in {}", ak.display());
    }
    for e in doc.entries() {
        let state = if e.is_expired(now) { "  (expired)" } else { "" };
        println!("{}  {}{state}", e.peer(), e.comment().unwrap_or(""));
    }
    for err in doc.errors() {
        eprintln!("warning: {}: {err}", ak.display());
    }
    Ok(())
}

fn validate(path: &Path) -> Result<()> {
    let (config, _) = load_config(path)?;
    let ak = config.authorized_keys_path(path);
    match fs::read_private(&ak) {
        Ok(bytes) => {
            peerup_net::node::parse_authorized_keys(&ak, &bytes)?;
        }
        Err(e) if e.is_not_found() && config.security.enable_connection_gating => {
            bail!(
                "{}: missing, and gating is on (the relay would refuse to start)",
                ak.display()
            )
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => bail!("{e}"),
    }
    println!("{}: OK", path.display());
    Ok(())
}

fn rollback(path: &Path) -> Result<()> {
    let paths = peerup_net::confirm::paths(path)?;
    let archive = match fs::read(&paths.last_good) {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => bail!("{e}"),
    };
    let state = peerup_net::confirm::read_state(&paths);
    let mut machine = Confirm::offline(path.to_owned(), paths, &state);
    machine.rollback(archive.as_deref())?;
    peerup_net::confirm::drain(&mut machine)?;
    println!("Restored the last-known-good config to {}", path.display());
    Ok(())
}
