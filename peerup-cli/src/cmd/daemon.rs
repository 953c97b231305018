//! `peerup daemon`: the node as a well-behaved system service.
//!
//! - commit-confirmed: a pending config change is armed at start (or
//!   reverted at once if its deadline passed); at the deadline the old config
//!   is restored and the daemon exits with [`EXIT_RESTART`] so the service
//!   manager restarts it on the config that worked; a confirmed config is
//!   archived as last-known-good;
//! - sd_notify: `READY=1` once up, `WATCHDOG=1` every 30 s while healthy
//!   (listening; holding a relay reservation after a 60 s grace), and
//!   `STOPPING=1` on shutdown (no-ops without `NOTIFY_SOCKET`);
//! - SIGINT/SIGTERM stop it gracefully; SIGHUP, or a change of the files,
//!   reloads authorized_keys, names, services and forwards live (a service
//!   added, removed, disabled or narrowed applies at once; the proxied
//!   connections it no longer allows are cut; a forward added starts
//!   listening, one removed stops);
//! - `forwards:`: a local port per enabled forward, listened on from the
//!   start (see [`crate::forwards`]: a port in use is a warning naming the
//!   forward, tried again every 30 s, never a failed start);
//! - the control socket serves the other commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use peerup_core::config::confirm::Confirm;
use peerup_core::invite::AnyCode;
use peerup_core::naming::Name;
use peerup_core::time::Backoff;
use peerup_core::time::UnixTime;
use peerup_net::Event;
use peerup_net::node::invite::{InviteError, InviteOptions};
use peerup_net::watch::Fingerprint;
use peerup_tokio::Node;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::status;
use crate::context::{self, Ctx};
use crate::control::{self, Reply, Request};
use crate::forwards::Forwards;
use crate::{EXIT_RESTART, Global};

/// Health grace period before a missing reservation stops the watchdog.
const GRACE: Duration = Duration::from_secs(60);

enum Main {
    Confirm(oneshot::Sender<Result<String>>),
    Restart(oneshot::Sender<Result<String>>),
    Reload(oneshot::Sender<Reloaded>),
}

fn wall() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

pub(crate) async fn run(global: &Global) -> Result<ExitCode> {
    let ctx = context::load(global)?;
    // Commit-confirmed: revert at once, arm, or archive.
    let paths = peerup_net::confirm::paths(&ctx.path)?;
    let disk = peerup_net::confirm::read_state(&paths);
    let mut confirm = Confirm::start(
        ctx.path.clone(),
        paths.clone(),
        wall(),
        &disk,
        ctx.text.as_bytes(),
    );
    let drained = peerup_net::confirm::drain(&mut confirm)?;
    for e in &drained.events {
        tracing::info!(?e, "config");
    }
    if drained.exit_for_restart {
        eprintln!(
            "commit-confirmed timeout: the config change was not confirmed in time and {} was restored; \
             exiting so the service manager restarts peerup on it",
            ctx.path.display()
        );
        return Ok(ExitCode::from(EXIT_RESTART));
    }
    if let Some(deadline) = confirm.pending_deadline() {
        println!(
            "Config change pending: run `peerup config confirm` before {deadline} or it reverts."
        );
    }
    // Refuse to run twice on one config (same identity, same socket).
    let socket = ctx.socket();
    if UnixStream::connect(&socket).await.is_ok() {
        bail!(
            "a peerup daemon is already running for {} (control socket {})",
            ctx.path.display(),
            socket.display()
        );
    }
    let node = super::start_node_full(&ctx).await.map_err(|e| {
        if e.to_string().contains("is running with this identity") {
            anyhow!(
                "{e}. The daemon needs the identity to itself: stop that process first (while a daemon runs, `peerup proxy`, `ping`, `invite` and `join` go through it)"
            )
        } else {
            e
        }
    })?;
    // The identity is ours now: a socket file left behind is stale.
    let _ = std::fs::remove_file(&socket);
    let listener = bind_private(&socket)?;
    let _guard = SocketGuard(socket.clone());
    let forwards = Arc::new(Forwards::default());
    forwards.apply(&node, &ctx.config).await;
    let metrics = match &ctx.config.metrics {
        Some(m) => {
            let server = peerup_net::metrics::serve(node.net(), m.listen_address)
                .await
                .with_context(|| {
                    format!(
                        "cannot serve metrics on {} (metrics.listen_address in {}; remove the metrics section to turn them off)",
                        m.listen_address,
                        ctx.path.display()
                    )
                });
            match server {
                Ok(s) => Some(s),
                Err(e) => {
                    node.shutdown().await;
                    return Err(e);
                }
            }
        }
        None => None,
    };
    banner(&ctx, &node, &forwards, metrics.as_ref());

    let started = Instant::now();
    let (main_tx, mut main_rx) = mpsc::channel::<Main>(8);
    let ctx = Arc::new(ctx);
    tokio::spawn(serve_control(
        listener,
        node.clone(),
        ctx.clone(),
        forwards.clone(),
        main_tx,
        started,
    ));
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let mut events = node.events();
    // authorized_keys and the config, watched by inotify (and polled every
    // few seconds); reloaded when their bytes differ from the ones loaded.
    // The watcher runs in a task of its own: a `changed()` future dropped
    // by the select below whenever another branch wins would lose its
    // notification and restart its poll.
    let mut watcher = peerup_net::watch::FileWatcher::new(
        node.runtime(),
        &[ctx.path.clone(), ctx.authorized_keys()],
        Duration::from_secs(5),
    );
    let (changed_tx, mut changed) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        loop {
            watcher.changed().await;
            if changed_tx.send(()).await.is_err() {
                return;
            }
        }
    });
    let mut config_loaded = Fingerprint::of(ctx.text.as_bytes());
    let mut reload_error: Option<String> = None;
    let mut watchdog = tokio::time::interval(Duration::from_secs(30));
    let mut signals = Signals::new()?;
    let code = loop {
        let confirm_at = confirm.poll_timeout().map(|d| {
            let left = wall().until(d);
            tokio::time::Instant::now() + left
        });
        let confirm_timer = async {
            match confirm_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            sig = signals.next() => match sig {
                Sig::Stop => break ExitCode::SUCCESS,
                Sig::Reload => {
                    tracing::info!("SIGHUP: reloading authorized_keys, names, services and forwards");
                    let r = reload(&node, &ctx, &forwards).await;
                    config_loaded = r.config_loaded.unwrap_or(config_loaded);
                }
            },
            Some(()) = changed.recv() => {
                match node.reload_authorized_keys_if_changed() {
                    Ok(Some(change)) => {
                        reload_error = None;
                        tracing::info!("authorized_keys changed on disk: reloaded{}", revoked_text(&change))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // Tried again at every poll until it works; said once.
                        let text = peerup_net::error::chain(&e);
                        if reload_error.as_ref() != Some(&text) {
                            tracing::error!("authorized_keys changed on disk but was not loaded, keeping the old list (the removals of a file that can be read still apply): {text}");
                        }
                        reload_error = Some(text);
                    }
                }
                if Fingerprint::of_file(&ctx.path) != config_loaded {
                    let (outcome, loaded) = apply_config(&node, &ctx, &forwards).await;
                    match outcome {
                        Ok(message) => tracing::info!("{} changed on disk: {message}", ctx.path.display()),
                        Err(e) => tracing::error!("{} changed on disk: {}", ctx.path.display(), crate::ui::text(&e)),
                    }
                    // After an error, do not try again until it changes
                    // once more.
                    config_loaded = loaded.unwrap_or_else(|| Fingerprint::of_file(&ctx.path));
                }
            }
            _ = watchdog.tick() => {
                forwards.retry_failed(&node).await;
                if healthy(&node, started) {
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
                } else {
                    tracing::warn!("unhealthy: no listen address, or no relay reservation after the grace period");
                }
            }
            () = confirm_timer => {
                confirm.handle_timeout(wall(), &peerup_net::confirm::read_state(&paths));
                let drained = peerup_net::confirm::drain(&mut confirm)?;
                for e in &drained.events {
                    tracing::info!(?e, "config");
                }
                if drained.exit_for_restart {
                    tracing::error!("commit-confirmed timeout: config reverted to the previous version; restarting");
                    break ExitCode::from(EXIT_RESTART);
                }
            }
            Some(m) = main_rx.recv() => match m {
                Main::Confirm(reply) => {
                    let current = std::fs::read(&ctx.path).map_err(|e| anyhow!("{}: {e}", ctx.path.display()));
                    let r = current.and_then(|c| {
                        confirm.confirm(&c)?;
                        peerup_net::confirm::drain(&mut confirm)?;
                        Ok("config confirmed; the pending revert is cancelled".to_owned())
                    });
                    let _ = reply.send(r);
                }
                Main::Restart(reply) => {
                    let _ = reply.send(Ok("the daemon restarts on the new config".to_owned()));
                    break ExitCode::from(EXIT_RESTART);
                }
                Main::Reload(reply) => {
                    let r = reload(&node, &ctx, &forwards).await;
                    config_loaded = r.config_loaded.unwrap_or(config_loaded);
                    let _ = reply.send(r);
                }
            },
            Some(e) = events.next() => log_event(&e, &ctx),
        }
    };
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping");
    if let Some(m) = &metrics {
        m.stop();
    }
    node.shutdown().await;
    Ok(code)
}

/// Binds the control socket with mode 0600 from the start: created under
/// umask 0177, not chmod-ed after (another user could connect in between).
fn bind_private(path: &Path) -> Result<UnixListener> {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound.map_err(|e| anyhow!("{}: {e}", path.display()))
}

struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn banner(ctx: &Ctx, node: &Node, forwards: &Forwards, metrics: Option<&peerup_net::http::Server>) {
    println!("peerup {} daemon", crate::VERSION);
    println!("Peer ID:  {}", node.peer_id());
    println!("Config:   {}", ctx.path.display());
    for a in node.listen_addrs() {
        println!("Listen:   {a}");
    }
    for r in &ctx.config.relay.addresses {
        println!("Relay:    {r}");
    }
    let services = node.services();
    if services.is_empty() {
        println!("Services: none (add one: peerup service add <name> <host:port>)");
    }
    for (name, local) in node.status().services {
        println!("Service:  {name} -> {local}");
    }
    for line in forwards.banner() {
        println!("Forward:  {line}");
    }
    if let Some(m) = metrics {
        let a = m.local_addr();
        println!("Metrics:  http://{a}/metrics  and  http://{a}/healthz");
        tracing::info!(address = %a, "serving /metrics and /healthz");
    }
    let (_, warnings) = peerup_core::authz::Policy::new(
        ctx.config.security.enable_connection_gating,
        &node.options().authorized_keys,
    );
    for w in warnings {
        println!("WARNING:  {}", peerup_net::node::warning_text(&w));
    }
}

fn healthy(node: &Node, started: Instant) -> bool {
    let s = node.status();
    // A relay-only node (no listen addresses configured) listens through
    // its reservation alone.
    let listening = node.options().listen.is_empty() || !s.listen_addrs.is_empty();
    let reserved = node.options().relays.is_empty()
        || !node.options().reserve
        || s.relays.values().any(|r| r.reserved);
    listening && (reserved || started.elapsed() < GRACE)
}

fn log_event(e: &Event, ctx: &Ctx) {
    let who = |p: &peerup_core::PeerId| match super::name_of(ctx, p) {
        Some(n) => format!("{n} ({p})"),
        None => p.to_string(),
    };
    match e {
        Event::ReservationAccepted { relay } => {
            tracing::info!("relay reservation accepted by {relay}")
        }
        Event::ReservationLost { relay, error } => {
            tracing::warn!("no reservation on relay {relay}: {error}")
        }
        Event::Connected {
            peer,
            path,
            connections: 1,
        } => tracing::info!("connected to {} [{path}]", who(peer)),
        Event::Upgraded { peer } => {
            tracing::info!("direct connection to {} (hole punched)", who(peer))
        }
        Event::NetworkChanged { probed, closed } if *closed > 0 => tracing::info!(
            "network changed: {closed} of {probed} connection(s) did not answer and were closed; reconnecting"
        ),
        Event::Disconnected { peer, remaining: 0 } => {
            tracing::info!("disconnected from {}", who(peer))
        }
        Event::Denied { peer, reason } => tracing::warn!("DENIED {peer}: {reason}"),
        Event::Warning(w) => tracing::warn!("{w}"),
        _ => {}
    }
}

/// What a reload did.
struct Reloaded {
    /// authorized_keys: Ok with the message to show, or why it was not
    /// applied.
    keys: Result<String>,
    /// The config (names and services): Ok with the message to show, or
    /// why it was not applied.
    config: Result<String>,
    /// The fingerprint of the config text now loaded, if it was.
    config_loaded: Option<Fingerprint>,
}

fn revoked_text(change: &peerup_core::authz::Change) -> String {
    if change.revoked.is_empty() {
        String::new()
    } else {
        format!("; disconnected {} peer(s)", change.revoked.len())
    }
}

/// Reloads authorized_keys (live: revoked peers are disconnected), names,
/// services and forwards.
async fn reload(node: &Node, ctx: &Ctx, forwards: &Forwards) -> Reloaded {
    let keys = match node.reload_authorized_keys_file() {
        Ok(change) => Ok(format!("authorized_keys reloaded{}", revoked_text(&change))),
        Err(e) => {
            let e = peerup_net::error::chain(&e);
            tracing::error!("authorized_keys not reloaded, keeping the old list: {e}");
            Err(anyhow!(
                "authorized_keys NOT reloaded by the running daemon: {e}"
            ))
        }
    };
    let (config, config_loaded) = apply_config(node, ctx, forwards).await;
    match (&keys, &config) {
        (Ok(k), Ok(c)) => tracing::info!("{k}; {c}"),
        (Ok(k), Err(e)) => tracing::error!("{k}; {}", crate::ui::text(e)),
        (Err(_), Ok(c)) => tracing::info!("{c}"),
        (Err(_), Err(e)) => tracing::error!("{}", crate::ui::text(e)),
    }
    Reloaded {
        keys,
        config,
        config_loaded,
    }
}

/// Re-reads the config and applies its names, services and forwards to
/// the running node. Returns what was done (or why not) and the
/// fingerprint of the text loaded, when it loaded. A forward that cannot
/// listen is not an error of the reload: the message says so, and
/// `peerup proxy --persist` asks about its own forward.
async fn apply_config(
    node: &Node,
    ctx: &Ctx,
    forwards: &Forwards,
) -> (Result<String>, Option<Fingerprint>) {
    let fresh = match ctx.reload() {
        Ok(fresh) => fresh,
        Err(e) => {
            return (
                Err(anyhow!(
                    "config NOT reloaded, keeping the old names, services and forwards: {}",
                    crate::ui::text(&e)
                )),
                None,
            );
        }
    };
    node.load_names(fresh.config.names.clone());
    let loaded = Some(Fingerprint::of(fresh.text.as_bytes()));
    let applied = peerup_net::node::services_from_config(&fresh.config, &fresh.path)
        .and_then(|wanted| node.apply_services(wanted));
    let forwarded = forwards.apply(node, &fresh.config).await.text();
    match applied {
        Ok(change) => (
            Ok(format!(
                "names reloaded; {}; {forwarded}",
                services_text(&change)
            )),
            loaded,
        ),
        Err(e) => (
            Err(anyhow!(
                "names reloaded, {forwarded}, but services NOT all applied: {}; `peerup status` shows what is exposed",
                peerup_net::error::chain(&e)
            )),
            loaded,
        ),
    }
}

/// `services unchanged`, or what changed.
fn services_text(change: &peerup_net::node::ServicesChange) -> String {
    if change.is_empty() {
        return "services unchanged".to_owned();
    }
    let parts = crate::ui::changes([
        ("added", &change.added),
        ("removed", &change.removed),
        ("changed", &change.changed),
    ])
    .unwrap_or_default();
    let mut text = format!("services {parts}");
    if change.cut > 0 {
        text.push_str(&format!(
            " ({} proxied connection(s) no longer allowed were cut)",
            change.cut
        ));
    }
    text
}

enum Sig {
    Stop,
    Reload,
}

struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> Sig {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Sig::Stop,
                _ = self.int.recv() => Sig::Stop,
                _ = self.hup.recv() => Sig::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Sig::Stop
        }
    }
}

/// Control connections served at once; more wait in the listen backlog.
const MAX_CONTROL_CLIENTS: usize = 64;
/// Longest request line.
const MAX_REQUEST: usize = 64 * 1024;

async fn serve_control(
    listener: UnixListener,
    node: Node,
    ctx: Arc<Ctx>,
    forwards: Arc<Forwards>,
    main: mpsc::Sender<Main>,
    started: Instant,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONTROL_CLIENTS));
    // Out of descriptors, accept fails at once, every time: back off
    // instead of spinning.
    let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.succeed();
                stream
            }
            Err(e) => {
                let wait = backoff.fail();
                tracing::warn!(error = %e, retry_in = ?wait, "control socket: accept failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let (node, ctx, main) = (node.clone(), ctx.clone(), main.clone());
        let forwards = forwards.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r.take(MAX_REQUEST as u64 + 1)).lines();
            let line = match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
            {
                Ok(Ok(Some(line))) => line,
                _ => return,
            };
            let request: Request = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    let _ = control::send(
                        &mut w,
                        &Reply::Error {
                            message: format!("bad request: {e}"),
                        },
                    )
                    .await;
                    return;
                }
            };
            // The client keeps its side open while it waits: its end of
            // file means it went away (Ctrl-C, killed).
            let gone = async move { while let Ok(Some(_)) = lines.next_line().await {} };
            let invite = matches!(request, Request::Invite { .. });
            let handled = tokio::select! {
                r = handle(request, &node, &ctx, &forwards, &main, started, &mut w) => r,
                () = gone => {
                    if invite && node.cancel_invite() {
                        tracing::info!("the `peerup invite` client went away: invite cancelled");
                    }
                    return;
                }
            };
            if let Err(e) = handled {
                let _ = control::send(
                    &mut w,
                    &Reply::Error {
                        message: crate::ui::text(&e),
                    },
                )
                .await;
            }
        });
    }
}

async fn ask<T>(
    main: &mpsc::Sender<Main>,
    make: impl FnOnce(oneshot::Sender<T>) -> Main,
) -> Result<T> {
    let (tx, rx) = oneshot::channel();
    main.send(make(tx))
        .await
        .map_err(|_| anyhow!("the daemon is stopping"))?;
    rx.await.map_err(|_| anyhow!("the daemon is stopping"))
}

async fn handle(
    request: Request,
    node: &Node,
    ctx: &Ctx,
    forwards: &Forwards,
    main: &mpsc::Sender<Main>,
    started: Instant,
    w: &mut tokio::net::unix::OwnedWriteHalf,
) -> Result<()> {
    match request {
        Request::Status => {
            let mut status = status::document(node, ctx, started.elapsed());
            status["forwards"] = forwards.document();
            control::send(w, &Reply::Status { status }).await?;
        }
        Request::Ping {
            target,
            count,
            interval_ms,
            upgrade_wait_ms,
        } => {
            let names = node.names();
            let peer = names.resolve(&target)?;
            let plan = super::ping::Plan::from_request(count, interval_ms, upgrade_wait_ms);
            let (tx, mut rx) = tokio::sync::mpsc::channel(16);
            let send = async {
                while let Some(reply) = rx.recv().await {
                    control::send(w, &reply).await?;
                }
                Ok::<_, anyhow::Error>(())
            };
            let (ran, sent) = tokio::join!(super::ping::pings(node, peer, &plan, tx), send);
            sent.and(ran)?;
        }
        Request::Invite { name, ttl_secs } => {
            let name = name
                .map(|n| Name::new(&n))
                .transpose()
                .map_err(|e| anyhow!("--name: {e}"))?;
            super::wait_reserved(node, Duration::from_secs(30)).await?;
            let mut invite = node
                .invite(InviteOptions {
                    name,
                    ttl: Duration::from_secs(ttl_secs),
                    ..InviteOptions::default()
                })
                .map_err(|e| {
                    if matches!(e, InviteError::AlreadyInviting) {
                        anyhow!("{e}; see it with `peerup status`, cancel it with `peerup invite --cancel`")
                    } else {
                        e.into()
                    }
                })?;
            control::send(
                w,
                &Reply::Code {
                    code: invite.code_text().to_owned(),
                    expires_at: invite.expires_at().to_string(),
                },
            )
            .await?;
            // Progress as it happens; a client that cannot be told is gone.
            while let Some(p) = invite.next_progress().await {
                if let Some(message) = super::invite::progress_text(&p)
                    && control::send(w, &Reply::Progress { message })
                        .await
                        .is_err()
                {
                    node.cancel_invite();
                }
            }
            match invite.wait().await {
                Ok(p) => {
                    control::send(
                        w,
                        &Reply::Paired {
                            peer: p.peer.to_string(),
                            name: p.name.map(|n| n.to_string()),
                        },
                    )
                    .await?
                }
                Err(e) => {
                    control::send(
                        w,
                        &Reply::Error {
                            message: peerup_net::error::chain(&e),
                        },
                    )
                    .await?
                }
            }
        }
        Request::CancelInvite => {
            let message = if node.cancel_invite() {
                "invite cancelled: its code no longer works".to_owned()
            } else {
                "no invite is open".to_owned()
            };
            control::send(w, &Reply::Ok { message }).await?;
        }
        Request::Proxy {
            target,
            service,
            bind,
        } => {
            let peer = node.names().resolve(&target)?;
            let bind: std::net::SocketAddr = bind
                .parse()
                .map_err(|e| anyhow!("bad bind address {bind}: {e}"))?;
            let forwarder = node.forward(bind, peer, &service).await.map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow!(
                        "local port {} is already in use on {}; pick another port",
                        bind.port(),
                        bind.ip()
                    )
                } else {
                    anyhow!("cannot listen on {bind}: {e}")
                }
            })?;
            control::send(
                w,
                &Reply::Ok {
                    message: format!("Forwarding {}", forwarder.local_addr()),
                },
            )
            .await?;
            // Until the client goes away (the caller drops this future,
            // and the forwarder with it).
            futures::future::pending::<()>().await;
        }
        Request::Join { code, name } => {
            let code = AnyCode::decode(&code).map_err(|e| anyhow!("invalid invite code: {e}"))?;
            let name = name
                .map(|n| Name::new(&n))
                .transpose()
                .map_err(|e| anyhow!("--name: {e}"))?;
            let code = match code {
                AnyCode::Invite(c) => c,
                AnyCode::Pairing(c) => {
                    let j = node.join_relay(&c, name).await?;
                    control::send(w, &super::join::relay_joined_reply(&j)).await?;
                    return Ok(());
                }
            };
            let p = node.join(&code, name).await?;
            control::send(
                w,
                &Reply::Paired {
                    peer: p.peer.to_string(),
                    name: p.name.map(|n| n.to_string()),
                },
            )
            .await?;
        }
        Request::Reload {
            expect_forward: Some(expected),
            ..
        } => {
            // `peerup proxy --persist|--remove`: the forward must listen
            // now (or no longer).
            let r = ask(main, Main::Reload).await?;
            let config = r.config.map_err(|e| {
                anyhow!(
                    "the running daemon did not apply it: {}",
                    crate::ui::text(&e)
                )
            })?;
            let name = &expected.name;
            let message = match (forwards.state(name), expected.listening) {
                (Some(Ok(addr)), true) => format!("forward {name} listening on {addr}"),
                (Some(Err(why)), true) => bail!(
                    "the running daemon applied the config, but forward {name} is NOT listening: {why} (the daemon tries again every 30 s and at each reload)"
                ),
                (None, true) => bail!(
                    "the running daemon does not run forward {name} after reloading ({config}); check the config with `peerup config validate` and the daemon's log"
                ),
                (None, false) => format!("forward {name} no longer listening"),
                (Some(_), false) => bail!(
                    "the running daemon still runs forward {name} after reloading ({config}); check the daemon's log"
                ),
            };
            control::send(w, &Reply::Ok { message }).await?;
        }
        Request::Reload {
            expect_service: Some(expected),
            ..
        } => {
            // `peerup service ...`: the config is what must have applied;
            // authorized_keys is reported alongside.
            let r = ask(main, Main::Reload).await?;
            let config = r.config.map_err(|e| {
                anyhow!(
                    "the running daemon did not apply it: {}",
                    crate::ui::text(&e)
                )
            })?;
            let message = match r.keys {
                Ok(k) => format!("{config}; {k}"),
                Err(e) => format!("{config}; {}", crate::ui::text(&e)),
            };
            let now = node
                .service_rule(expected.name.as_str())
                .map(|s| control::ServiceState::of(&s));
            if now != expected.state {
                let describe = |s: &Option<control::ServiceState>| match s {
                    Some(s) => s.to_string(),
                    None => "not exposed".to_owned(),
                };
                bail!(
                    "the running daemon has service `{}` {} after reloading, not {} ({message}); check the config with `peerup config validate` and the daemon's log",
                    expected.name,
                    describe(&now),
                    describe(&expected.state),
                );
            }
            control::send(w, &Reply::Ok { message }).await?;
        }
        Request::Reload {
            expect_denied,
            expect_authorized,
            expect_service: None,
            expect_forward: None,
        } => {
            let r = ask(main, Main::Reload).await?;
            let names = match r.config {
                Ok(m) => m,
                Err(e) => crate::ui::text(&e),
            };
            let message = r.keys.map(|k| format!("{k}; {names}"))?;
            if expect_denied.is_some() && !ctx.config.security.enable_connection_gating {
                bail!(
                    "authorized_keys reloaded, but connection gating is disabled (security.enable_connection_gating: false): every peer can still connect"
                );
            }
            for (text, want) in [(expect_denied, false), (expect_authorized, true)] {
                let Some(text) = text else { continue };
                let peer = super::peer_arg(&text)?;
                if node.is_authorized(&peer) != want {
                    bail!(
                        "the running daemon still {} {peer} after reloading authorized_keys ({message}); check the file with `peerup auth validate` and the daemon's log",
                        if want { "denies" } else { "lets in" }
                    );
                }
            }
            control::send(w, &Reply::Ok { message }).await?;
        }
        Request::Confirm => {
            let message = ask(main, Main::Confirm).await??;
            control::send(w, &Reply::Ok { message }).await?;
        }
        Request::Restart => {
            let message = ask(main, Main::Restart).await??;
            control::send(w, &Reply::Ok { message }).await?;
        }
    }
    Ok(())
}
