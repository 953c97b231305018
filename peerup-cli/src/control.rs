//! The daemon's control socket: a Unix socket (mode 0600) in the config
//! directory through which `status`, `ping`, `invite`, `join`, `auth`,
//! `service`, `proxy` and `config confirm|apply` act on the running daemon instead
//! of starting a second node with the same identity.
//!
//! Protocol: the client sends one JSON request line; the daemon answers
//! with JSON reply lines and closes. Only the socket's owner can connect
//! (the socket is created under umask 0177). The client keeps its side
//! open while it waits: when it goes away (Ctrl-C, killed), the daemon
//! sees end-of-file and cancels what the request started (an invite, a
//! forwarded port).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// A request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub(crate) enum Request {
    /// The daemon's state.
    Status,
    /// Ping a peer.
    Ping {
        /// Name or peer ID.
        target: String,
        /// How many pings.
        count: u64,
        /// Between pings.
        interval_ms: u64,
        /// After the last ping, how long to wait for a relayed path to
        /// turn direct.
        #[serde(default)]
        upgrade_wait_ms: u64,
    },
    /// Open an invite.
    Invite {
        /// This machine's name.
        name: Option<String>,
        /// Lifetime.
        ttl_secs: u64,
    },
    /// Join an invite.
    Join {
        /// The code.
        code: String,
        /// This machine's name.
        name: Option<String>,
    },
    /// Reload authorized_keys, names and services now; with an
    /// expectation, reply an error unless the running daemon's state is
    /// the one expected (so `auth remove` cannot say "done" while the
    /// daemon still lets the peer in, nor `service disable` while it still
    /// serves the service).
    Reload {
        /// A peer that must be denied after the reload.
        #[serde(default)]
        expect_denied: Option<String>,
        /// A peer that must be authorized after the reload.
        #[serde(default)]
        expect_authorized: Option<String>,
        /// A service that must be in this state after the reload.
        #[serde(default)]
        expect_service: Option<ServiceExpectation>,
        /// A forward that must (or must not) listen after the reload
        /// (`peerup proxy --persist|--remove`).
        #[serde(default)]
        expect_forward: Option<ForwardExpectation>,
    },
    /// Cancel the open invite.
    CancelInvite,
    /// Forward a local port to a peer's service while this connection
    /// stays open (`peerup proxy` with a daemon running).
    Proxy {
        /// Name or peer ID.
        target: String,
        /// The service.
        service: String,
        /// Where to listen, `ip:port`.
        bind: String,
    },
    /// Confirm a pending config change.
    Confirm,
    /// Exit so the service manager restarts the daemon (after `config apply`).
    Restart,
}

/// What a service must be once the daemon has applied the config
/// (`peerup service add|remove|enable|disable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceExpectation {
    /// The service.
    pub name: String,
    /// Its state; `None`: not exposed at all.
    pub state: Option<ServiceState>,
}

/// Whether a forward must listen once the daemon has applied the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ForwardExpectation {
    /// The forward's name.
    pub name: String,
    /// Listening (added, enabled) or not (removed, disabled).
    pub listening: bool,
}

/// A service as the daemon exposes it, in words the two sides compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    /// `host:port`.
    pub local_address: String,
    /// Whether it is served.
    pub enabled: bool,
    /// The peer IDs allowed (names resolved), sorted; `None`: every
    /// authorized peer.
    pub allowed_peers: Option<Vec<String>>,
}

impl ServiceState {
    /// The state of a service spec.
    pub(crate) fn of(spec: &peerup_net::node::ServiceSpec) -> Self {
        ServiceState {
            local_address: spec.local.to_string(),
            enabled: spec.rule.enabled,
            allowed_peers: spec
                .rule
                .allowed_peers
                .as_ref()
                .map(|set| set.iter().map(ToString::to_string).collect()),
        }
    }
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}",
            if self.enabled { "enabled" } else { "disabled" },
            self.local_address
        )?;
        match &self.allowed_peers {
            None => Ok(()),
            Some(list) => write!(f, ", allowed_peers [{}]", list.join(", ")),
        }
    }
}

/// One reply line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Reply {
    /// The status document.
    Status {
        /// As `peerup status --json` prints it.
        status: serde_json::Value,
    },
    /// One ping reply.
    Pong {
        /// Sequence number.
        seq: u64,
        /// Round trip, ms.
        rtt_ms: f64,
        /// DIRECT or RELAYED.
        path: String,
    },
    /// One ping failure.
    PingFailed {
        /// Sequence number.
        seq: u64,
        /// Why.
        error: String,
    },
    /// The path to the pinged peer changed (a hole punch made it direct).
    PathChanged {
        /// RELAYED.
        from: String,
        /// DIRECT.
        to: String,
        /// From the relayed connection (or the first ping) to the direct one.
        after_ms: Option<f64>,
    },
    /// The path to the pinged peer stayed relayed, and why.
    PathStays {
        /// RELAYED.
        path: String,
        /// The hole punch's error, or the wait that ran out.
        reason: String,
    },
    /// The invite code.
    Code {
        /// The code (a secret).
        code: String,
        /// Expiry, RFC 3339.
        expires_at: String,
    },
    /// Progress to show.
    Progress {
        /// What happened.
        message: String,
    },
    /// Paired.
    Paired {
        /// The other machine.
        peer: String,
        /// Its name.
        name: Option<String>,
    },
    /// Joined a relay's pairing group.
    RelayJoined {
        /// The relay.
        relay: String,
        /// The group.
        group: String,
        /// The members that joined before (peer ID, name as saved).
        members: Vec<(String, Option<String>)>,
        /// Whether the relay was added to the config.
        relay_added: bool,
    },
    /// Done, with a message.
    Ok {
        /// What was done.
        message: String,
    },
    /// Failed.
    Error {
        /// Why.
        message: String,
    },
}

/// A connection to the daemon. Dropping it tells the daemon the client
/// went away.
pub(crate) struct Client {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    // Kept open: the daemon reads its end-of-file as "the client is gone".
    _writer: tokio::net::unix::OwnedWriteHalf,
}

/// Connects to the daemon of the config at `socket`, if one is running.
pub(crate) async fn connect(socket: &Path, request: &Request) -> Result<Option<Client>> {
    let stream = match UnixStream::connect(socket).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(anyhow!(
                "{}: permission denied: the daemon runs as another user (run this command as that user, e.g. with sudo -u)",
                socket.display()
            ));
        }
        Err(e) => return Err(anyhow!("{}: {e}", socket.display())),
    };
    let (r, mut w) = stream.into_split();
    let mut line = serde_json::to_string(request).context("encoding the request")?;
    line.push('\n');
    w.write_all(line.as_bytes())
        .await
        .with_context(|| format!("writing to {}", socket.display()))?;
    Ok(Some(Client {
        lines: BufReader::new(r).lines(),
        _writer: w,
    }))
}

impl Client {
    /// The next reply; `None` when the daemon closed the connection.
    pub(crate) async fn next(&mut self) -> Result<Option<Reply>> {
        match self
            .lines
            .next_line()
            .await
            .context("reading from the daemon")?
        {
            None => Ok(None),
            Some(l) => {
                Ok(Some(serde_json::from_str(&l).with_context(|| {
                    format!("bad reply from the daemon: {l}")
                })?))
            }
        }
    }

    /// Reads until the end; returns the last `Ok` message or the error.
    /// A daemon that closes without saying `Ok` (it was stopping) did not
    /// do what was asked: that is an error too.
    pub(crate) async fn finish(mut self) -> Result<String> {
        let mut last = None;
        while let Some(r) = self.next().await? {
            match r {
                Reply::Ok { message } => last = Some(message),
                Reply::Error { message } => return Err(anyhow!(message)),
                Reply::Progress { message } => eprintln!("{message}"),
                _ => {}
            }
        }
        last.ok_or_else(|| {
            anyhow!("the daemon closed the connection without confirming (is it stopping?)")
        })
    }
}

/// Writes one reply line.
pub(crate) async fn send<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    line.push('\n');
    w.write_all(line.as_bytes()).await?;
    w.flush().await
}
