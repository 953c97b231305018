//! Pairing over `/peerup/invite/1.0.0` (WIRE.md §5, §6): the core's
//! `Inviter` and `Joiner` machines bound to libp2p streams, and the saving
//! of a pairing into `authorized_keys` and the config's `names`.
//!
//! While an invite is open the node's policy has a pairing window: peers
//! that are not authorized may connect, for the invite protocol only. When
//! the invite ends the window closes and every connection let in only to
//! pair (and not paired) is dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use futures::channel::{mpsc, oneshot};
use futures::future::{AbortHandle, Abortable};
use futures::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use futures::{FutureExt, SinkExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_core::invite::code::pick_relay;
use peerup_core::invite::handshake::{Failure, SessionRandom, StreamId};
use peerup_core::invite::{
    InviteCode, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner, JoinerConfig,
    JoinerOutput, Token,
};
use peerup_core::naming::Name;
use peerup_core::time::{Instant, UnixTime};
use peerup_core::wire::protocol;

use super::{Inner, Node, StartError};
use crate::error::{RandomError, random};
use crate::fs;
use crate::runtime::Runtime;

/// The name of the invite's task in `Inner::tasks`.
const INVITE_TASK: &str = "invite";

/// Default lifetime of an invite (`peerup invite --ttl`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);
/// Time for a join, from dialing the inviter to its answer.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of one invite.
#[derive(Debug, Clone)]
pub struct InviteOptions {
    /// This machine's name, sent to the joiner.
    pub name: Option<Name>,
    /// How long the code is valid.
    pub ttl: Duration,
    /// Failed attempts that burn the invite.
    pub max_failed_attempts: u32,
}

impl Default for InviteOptions {
    fn default() -> Self {
        InviteOptions {
            name: None,
            ttl: DEFAULT_TTL,
            max_failed_attempts: peerup_core::invite::handshake::DEFAULT_MAX_FAILED_ATTEMPTS,
        }
    }
}

/// An open invite, as `peerup status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteStatus {
    /// When it expires.
    pub expires_at: UnixTime,
    /// Failed join attempts counted so far.
    pub failed_attempts: u32,
    /// Attempts left before it burns.
    pub attempts_left: u32,
    /// Join sessions in progress.
    pub sessions: usize,
    /// Peers refused for the rest of the invite.
    pub blocked_peers: usize,
}

/// A successful pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    /// The other machine.
    pub peer: PeerId,
    /// Its name, as saved in `names` (it may have been suffixed to avoid
    /// replacing another peer's name), if it sent one.
    pub name: Option<Name>,
}

/// Progress of an invite, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteProgress {
    /// A join attempt failed.
    AttemptFailed {
        /// Who tried.
        peer: PeerId,
        /// Why.
        reason: String,
        /// Attempts left before the invite burns.
        attempts_left: u32,
    },
    /// A peer failed too often and is refused for the rest of the invite.
    PeerBlocked {
        /// The peer.
        peer: PeerId,
    },
    /// Paired (saved, answer sent).
    Paired(Paired),
    /// The joiner confirmed it received the answer.
    Acknowledged,
}

/// Why an invite ended without a pairing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InviteError {
    /// No relay can go into a code.
    #[error(
        "no relay address of the form /ip4/<ip>/tcp/<port>/p2p/<id> is configured; invite codes carry one (add it with `peerup relay add`)"
    )]
    NoRelay,
    /// Another invite is open on this node.
    #[error("another invite is already open on this node")]
    AlreadyInviting,
    /// The invite expired unused.
    #[error("the invite expired before anyone joined")]
    Expired,
    /// Too many failed attempts.
    #[error("the invite was burned after too many failed join attempts")]
    Burned,
    /// Cancelled.
    #[error("the invite was cancelled")]
    Cancelled,
    /// The node stopped.
    #[error("the node stopped")]
    Stopped,
    /// No randomness for the token.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The relay cannot go into a code.
    #[error(transparent)]
    Encode(#[from] peerup_core::invite::code::EncodeError),
}

/// Why a join failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The inviter could not be reached through the relay in the code.
    #[error(
        "failed to connect to inviter: {0} (is `peerup invite` still running on the other machine?)"
    )]
    Unreachable(String),
    /// The inviter is not accepting invites.
    #[error(
        "the inviter is not accepting invites (the code expired, was already used, or `peerup invite` stopped)"
    )]
    NotInviting,
    /// The code's token is wrong, or the invite expired.
    #[error("wrong or expired invite code")]
    WrongCode,
    /// The relay refused the pairing code (one answer for every reason).
    #[error(
        "the relay refused the pairing code: it is wrong, already used, or expired (ask the relay operator for a new one: `peerup-relay pair`)"
    )]
    PairingRefused,
    /// The relay closed the connection before answering: it is not
    /// admitting machines to pair.
    #[error(
        "the relay closed the connection without answering: no pairing codes are open on it (all used, expired or revoked), or it refused this machine after failed attempts; ask the relay operator for a new code (`peerup-relay pair`)"
    )]
    RelayClosed,
    /// The inviter answered `ERR`.
    #[error("the inviter refused: {0}")]
    Refused(String),
    /// No answer in time.
    #[error("timed out waiting for the inviter")]
    Timeout,
    /// The pairing could not be saved here.
    #[error("paired, but could not save it: {0}")]
    Save(String),
    /// The handshake failed.
    #[error("invite handshake failed: {0}")]
    Protocol(String),
    /// No randomness for the handshake.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The node stopped.
    #[error("the node stopped")]
    Stopped,
}

/// An open invite: show [`Invite::code_text`], then [`Invite::wait`].
pub struct Invite {
    code: InviteCode,
    text: String,
    expires_at: UnixTime,
    progress: mpsc::Receiver<InviteProgress>,
    result: oneshot::Receiver<Result<Paired, InviteError>>,
    cancel: AbortHandle,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Invite {
    /// The decoded code.
    pub fn code(&self) -> &InviteCode {
        &self.code
    }

    /// The code to give the other machine (base32 groups). A secret: do not
    /// log it.
    pub fn code_text(&self) -> &str {
        &self.text
    }

    /// When the invite expires.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// The next progress report (`None` once the invite ended).
    pub async fn next_progress(&mut self) -> Option<InviteProgress> {
        self.progress.next().await
    }

    /// Waits for the outcome.
    ///
    /// # Errors
    /// [`InviteError`]: expired, burned, cancelled.
    pub async fn wait(self) -> Result<Paired, InviteError> {
        self.result.await.unwrap_or(Err(InviteError::Stopped))
    }

    /// Waits for the outcome and reports progress to `on_progress`.
    ///
    /// # Errors
    /// As [`Invite::wait`].
    pub async fn wait_with(
        mut self,
        mut on_progress: impl FnMut(&InviteProgress),
    ) -> Result<Paired, InviteError> {
        let mut result = self.result;
        loop {
            futures::select_biased! {
                p = self.progress.next() => match p {
                    Some(p) => on_progress(&p),
                    None => return result.await.unwrap_or(Err(InviteError::Stopped)),
                },
                r = (&mut result).fuse() => return r.unwrap_or(Err(InviteError::Stopped)),
            }
        }
    }

    /// A handle that cancels the invite.
    pub fn canceller(&self) -> AbortHandle {
        self.cancel.clone()
    }
}

fn core_now(origin: StdInstant, rt: &Arc<dyn Runtime>) -> Instant {
    Instant::from_duration(rt.now().saturating_duration_since(origin))
}

fn session_random() -> Result<SessionRandom, RandomError> {
    let ephemeral = random::<32>()?;
    let nonce = random::<24>()?;
    Ok(SessionRandom { ephemeral, nonce })
}

enum ReadEvent {
    Data(Vec<u8>),
    Eof,
    Reset,
}

async fn pump_reader(
    id: StreamId,
    mut r: ReadHalf<Stream>,
    mut tx: mpsc::Sender<(StreamId, ReadEvent)>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let ev = match r.read(&mut buf).await {
            Ok(0) => ReadEvent::Eof,
            Ok(n) => ReadEvent::Data(buf[..n].to_vec()),
            Err(_) => ReadEvent::Reset,
        };
        let end = !matches!(ev, ReadEvent::Data(_));
        if tx.send((id, ev)).await.is_err() || end {
            return;
        }
    }
}

struct Session {
    writer: WriteHalf<Stream>,
    reader: AbortHandle,
}

impl Node {
    /// Opens an invite: returns the code at once; the pairing happens in
    /// the background ([`Invite::wait`]).
    ///
    /// # Errors
    /// [`InviteError::NoRelay`], [`InviteError::AlreadyInviting`].
    pub fn invite(&self, options: InviteOptions) -> Result<Invite, InviteError> {
        let inner = self.inner().clone();
        let relay = pick_relay(&inner.options.relays)
            .ok_or(InviteError::NoRelay)?
            .clone();
        let network = kad_network(&inner.options.kad_protocol);
        let token_bytes = random::<8>()?;
        let code = InviteCode::new(
            Token::from_bytes(token_bytes),
            &relay,
            network,
            self.peer_id(),
        )?;
        let text = code.encode()?;
        let proto = StreamProtocol::new(protocol::INVITE);
        let incoming = inner
            .control
            .accept(proto)
            .map_err(|_| InviteError::AlreadyInviting)?;
        let wall = inner.wall_clock();
        let expires_at = wall.saturating_add(options.ttl);
        let config = InviterConfig::new(expires_at)
            .with_name(options.name.clone())
            .with_max_failed_attempts(options.max_failed_attempts);
        let rt = self.runtime();
        let origin = rt.now();
        let machine = Inviter::new(Token::from_bytes(token_bytes), config, Instant::ZERO, wall);
        inner
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .open_pairing();
        tracing::info!(expires_at = %expires_at, "invite open");
        let (progress_tx, progress_rx) = mpsc::channel(64);
        let (result_tx, result_rx) = oneshot::channel();
        inner.update(|s| {
            s.invite = Some(InviteStatus {
                expires_at,
                failed_attempts: 0,
                attempts_left: options.max_failed_attempts.max(1),
                sessions: 0,
                blocked_peers: 0,
            })
        });
        let (cancel, reg) = AbortHandle::new_pair();
        *inner
            .invite_cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(cancel.clone());
        let task = run_inviter(
            inner.clone(),
            rt,
            origin,
            machine,
            incoming,
            Reporting {
                progress: progress_tx,
                result: result_tx,
                cancel: reg,
                expires_at,
                max_failed: options.max_failed_attempts.max(1),
            },
        );
        inner.spawn_tracked(Some(INVITE_TASK.into()), Box::pin(task));
        Ok(Invite {
            code,
            text,
            expires_at,
            progress: progress_rx,
            result: result_rx,
            cancel,
        })
    }

    /// Cancels the open invite, if any; returns whether one was open. Its
    /// code stops working at once and the pairing window closes.
    pub fn cancel_invite(&self) -> bool {
        let handle = self
            .inner()
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(INVITE_TASK)
            .cloned();
        let cancel = self
            .inner()
            .invite_cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match (handle, cancel) {
            (Some(_), Some(cancel)) => {
                cancel.abort();
                true
            }
            _ => false,
        }
    }

    /// The open invite, if any.
    pub fn invite_status(&self) -> Option<InviteStatus> {
        self.inner().snapshot(|s| s.invite.clone())
    }

    /// Joins the invite in `code`: reaches the inviter through the code's
    /// relay, runs the handshake, and saves the pairing.
    ///
    /// # Errors
    /// [`JoinError`] with what to do next.
    pub async fn join(&self, code: &InviteCode, name: Option<Name>) -> Result<Paired, JoinError> {
        let metrics = &self.inner().metrics;
        metrics.invite_attempt("joiner");
        let result = self.join_once(code, name).await;
        metrics.invite("joiner", if result.is_ok() { "paired" } else { "failed" });
        result
    }

    /// [`Node::join`], without the metrics.
    async fn join_once(&self, code: &InviteCode, name: Option<Name>) -> Result<Paired, JoinError> {
        let rt = self.runtime();
        let inviter = code.inviter;
        let circuit = code
            .relay_addr()
            .with(libp2p::multiaddr::Protocol::P2pCircuit)
            .with(libp2p::multiaddr::Protocol::P2p(inviter));
        let relay_peer = code.relay_peer;
        let relay_addr = code.relay_addr();
        let dial = async {
            self.ensure_connected(relay_peer, vec![relay_addr])
                .await
                .map_err(|e| {
                    JoinError::Unreachable(format!(
                        "relay in the code: {}",
                        crate::error::chain(&e)
                    ))
                })?;
            if self.path(inviter).is_none() {
                // One retry: see `Node::connect` on circuit requests racing
                // the relay connection's set-up.
                if self.dial(inviter, vec![circuit.clone()]).await.is_err() {
                    self.dial(inviter, vec![circuit])
                        .await
                        .map_err(|e| JoinError::Unreachable(crate::error::chain(&e)))?;
                }
            }
            self.inner()
                .control
                .open(inviter, StreamProtocol::new(protocol::INVITE))
                .await
                .map_err(|e| match e {
                    crate::streams::OpenError::Unsupported(_) => JoinError::NotInviting,
                    other => JoinError::Unreachable(other.to_string()),
                })
        };
        let out = rt
            .timeout(JOIN_TIMEOUT, dial)
            .await
            .ok_or(JoinError::Timeout)??;
        let random = session_random()?;
        let origin = rt.now();
        let config = JoinerConfig::default().with_name(name);
        let mut machine = Joiner::new(code, config, Instant::ZERO, random);
        let mut stream = out.stream;
        let mut buf = vec![0u8; 4096];
        let mut paired: Option<Paired> = None;
        loop {
            while let Some(o) = machine.poll_output() {
                match o {
                    JoinerOutput::Send(data) => {
                        if stream
                            .write_all(&data)
                            .await
                            .and(stream.flush().await)
                            .is_err()
                        {
                            machine.handle_reset(core_now(origin, &rt));
                        }
                    }
                    JoinerOutput::Finish => {
                        let _ = rt.timeout(Duration::from_secs(5), stream.close()).await;
                    }
                    JoinerOutput::Reset => {}
                    JoinerOutput::Paired { peer, name } => {
                        let saved = save_pairing(self.inner(), peer, name.as_ref(), "invited")
                            .map_err(JoinError::Save)?;
                        paired = Some(Paired { peer, name: saved });
                    }
                    JoinerOutput::Failed(f) => return Err(join_failure(f)),
                }
            }
            if let Some(p) = paired.take() {
                tracing::info!(peer = %p.peer, name = ?p.name, "paired with inviter");
                // The inviter let this connection in to pair only, and
                // serves the invite protocol alone on it: let the next
                // stream (a ping, a proxy) go over a fresh connection,
                // which the inviter now admits with every protocol.
                self.disconnect_and_wait(inviter).await;
                return Ok(p);
            }
            let Some(deadline) = machine.poll_timeout() else {
                return Err(JoinError::Protocol(
                    "handshake ended without an answer".into(),
                ));
            };
            let wake = origin + deadline.as_duration();
            let read = rt
                .timeout(
                    wake.saturating_duration_since(rt.now()),
                    stream.read(&mut buf),
                )
                .await;
            let t = core_now(origin, &rt);
            match read {
                None => machine.handle_timeout(t),
                Some(Ok(0)) => machine.handle_eof(t),
                Some(Ok(n)) => machine.handle_data(t, &buf[..n]),
                Some(Err(_)) => machine.handle_reset(t),
            }
        }
    }
}

fn join_failure(f: Failure) -> JoinError {
    match f {
        Failure::WrongCode => JoinError::WrongCode,
        Failure::Refused(r) => JoinError::Refused(r),
        Failure::Timeout => JoinError::Timeout,
        Failure::Reset | Failure::Closed => JoinError::Refused(
            "the inviter closed the connection (the invite may have expired, been used, or been burned)".into(),
        ),
        other => JoinError::Protocol(other.to_string()),
    }
}

/// The network name of a DHT protocol `/peerup/<network>/kad/1.0.0`.
fn kad_network(kad: &str) -> Option<peerup_core::wire::label::DnsLabel> {
    let rest = kad.strip_prefix("/peerup/")?.strip_suffix("/kad/1.0.0")?;
    peerup_core::wire::label::DnsLabel::new(rest).ok()
}

#[allow(clippy::too_many_arguments)]
/// Where the inviter's task reports to, and what it reports about.
struct Reporting {
    progress: mpsc::Sender<InviteProgress>,
    result: oneshot::Sender<Result<Paired, InviteError>>,
    cancel: futures::future::AbortRegistration,
    expires_at: UnixTime,
    max_failed: u32,
}

async fn run_inviter(
    inner: Arc<Inner>,
    rt: Arc<dyn Runtime>,
    origin: StdInstant,
    mut machine: Inviter,
    mut incoming: crate::streams::Incoming,
    reporting: Reporting,
) {
    let Reporting {
        mut progress,
        result,
        cancel,
        expires_at,
        max_failed,
    } = reporting;
    let (read_tx, mut read_rx) = mpsc::channel::<(StreamId, ReadEvent)>(64);
    let mut sessions: BTreeMap<StreamId, Session> = BTreeMap::new();
    let mut next: StreamId = 1;
    let mut outcome: Option<Result<Paired, InviteError>> = None;
    let mut cancelled = Abortable::new(futures::future::pending::<()>(), cancel).fuse();
    loop {
        while let Some(o) = machine.poll_output() {
            match o {
                InviterOutput::Send { stream, data } => {
                    let ok = match sessions.get_mut(&stream) {
                        Some(s) => {
                            let w = async {
                                s.writer.write_all(&data).await.and(s.writer.flush().await)
                            };
                            matches!(rt.timeout(Duration::from_secs(10), w).await, Some(Ok(())))
                        }
                        None => false,
                    };
                    if !ok {
                        machine.handle_reset(core_now(origin, &rt), stream);
                    }
                }
                InviterOutput::Finish { stream } => {
                    if let Some(s) = sessions.get_mut(&stream) {
                        let _ = rt.timeout(Duration::from_secs(5), s.writer.close()).await;
                    }
                }
                InviterOutput::Reset { stream } => {
                    if let Some(s) = sessions.remove(&stream) {
                        s.reader.abort();
                    }
                }
                InviterOutput::Authorize { stream, peer, name } => {
                    let saved = save_pairing(&inner, peer, name.as_ref(), "joined");
                    match saved {
                        Ok(saved_name) => {
                            outcome = Some(Ok(Paired {
                                peer,
                                name: saved_name,
                            }));
                            machine.handle_authorized(core_now(origin, &rt), stream, Ok(()));
                        }
                        Err(e) => {
                            tracing::error!(%peer, error = %e, "could not save the pairing");
                            machine.handle_authorized(core_now(origin, &rt), stream, Err(e));
                        }
                    }
                }
                InviterOutput::Event(e) => match e {
                    InviterEvent::AttemptFailed {
                        peer,
                        reason,
                        attempts_left,
                        counted,
                    } => {
                        tracing::warn!(%peer, %reason, counted, attempts_left, "join attempt failed");
                        let _ = progress.try_send(InviteProgress::AttemptFailed {
                            peer,
                            reason: reason.to_string(),
                            attempts_left,
                        });
                    }
                    InviterEvent::Paired { .. } => {
                        if let Some(Ok(p)) = &outcome {
                            let _ = progress.try_send(InviteProgress::Paired(p.clone()));
                        }
                    }
                    InviterEvent::Acknowledged { .. } => {
                        let _ = progress.try_send(InviteProgress::Acknowledged);
                    }
                    InviterEvent::PeerBlocked { peer } => {
                        tracing::warn!(%peer, "too many failed join attempts from this peer: refusing it for the rest of the invite");
                        inner
                            .gate
                            .pairing_blocked
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(peer);
                        // Its pairing connections go; an authorized peer
                        // (it needs no invite) keeps its others.
                        if inner.policy().status(&peer, inner.wall_clock())
                            != peerup_core::authorized_keys::Status::Authorized
                        {
                            inner.command(super::driver::Command::Disconnect { peer });
                        }
                        let _ = progress.try_send(InviteProgress::PeerBlocked { peer });
                    }
                    InviterEvent::Burned => outcome = Some(Err(InviteError::Burned)),
                    InviterEvent::Expired => outcome = Some(Err(InviteError::Expired)),
                },
            }
        }
        if machine.is_finished() {
            break;
        }
        let status = InviteStatus {
            expires_at,
            failed_attempts: machine.failed_attempts(),
            attempts_left: max_failed.saturating_sub(machine.failed_attempts()),
            sessions: machine.active_sessions(),
            blocked_peers: inner
                .gate
                .pairing_blocked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        };
        inner.update(|s| s.invite = Some(status));
        let wake = machine.poll_timeout().map(|t| origin + t.as_duration());
        let mut timer = match wake {
            Some(w) => rt.sleep_until(w),
            None => Box::pin(futures::future::pending()),
        }
        .fuse();
        futures::select_biased! {
            _ = cancelled => {
                machine.cancel();
                outcome.get_or_insert(Err(InviteError::Cancelled));
            }
            inbound = incoming.next() => match inbound {
                Some(inbound) => {
                    inner.metrics.invite_attempt("inviter");
                    let id = next;
                    next += 1;
                    match session_random() {
                        Ok(random) => {
                            let (r, w) = inbound.stream.split();
                            let (abort, reg) = AbortHandle::new_pair();
                            let reader = Abortable::new(pump_reader(id, r, read_tx.clone()), reg);
                            rt.spawn(Box::pin(async move { let _ = reader.await; }));
                            sessions.insert(id, Session { writer: w, reader: abort });
                            machine.handle_stream(core_now(origin, &rt), id, inbound.peer, random);
                        }
                        Err(e) => tracing::error!(error = %e, "no randomness for an invite session"),
                    }
                }
                None => {
                    machine.cancel();
                    outcome.get_or_insert(Err(InviteError::Stopped));
                }
            },
            ev = read_rx.next() => {
                let t = core_now(origin, &rt);
                match ev {
                    Some((id, ReadEvent::Data(d))) => machine.handle_data(t, id, &d),
                    Some((id, ReadEvent::Eof)) => machine.handle_eof(t, id),
                    Some((id, ReadEvent::Reset)) => machine.handle_reset(t, id),
                    None => {}
                }
            }
            () = timer => machine.handle_timeout(core_now(origin, &rt)),
        }
    }
    for (_, s) in sessions {
        s.reader.abort();
    }
    // Close the pairing window: drop peers let in only to pair that did
    // not pair, by every connection, and every connection let in only to
    // pair (it carries the invite protocol alone; a peer that paired
    // reconnects with all of them). All of this before the invite
    // protocol is released (`incoming` dropped, last): a new invite can
    // only start once this one's state is gone, so none of it is the new
    // one's.
    let connections = inner.connections();
    let change = inner
        .policy
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .close_pairing(connections, inner.wall_clock());
    inner.apply_change(change);
    for connection in inner.gate.pairing_connections() {
        inner.command(super::driver::Command::CloseConnection { connection });
    }
    inner
        .gate
        .pairing_blocked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    inner.update(|s| s.invite = None);
    *inner
        .invite_cancel
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = None;
    inner
        .tasks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(INVITE_TASK);
    tracing::info!("invite closed");
    drop(incoming);
    let outcome = outcome.unwrap_or(Err(InviteError::Stopped));
    inner.metrics.invite(
        "inviter",
        match &outcome {
            Ok(_) => "paired",
            Err(InviteError::Expired) => "expired",
            Err(InviteError::Burned) => "burned",
            Err(InviteError::Cancelled) => "cancelled",
            Err(InviteError::Stopped) => "stopped",
            Err(_) => "failed",
        },
    );
    let _ = result.send(outcome);
}

/// Saves a pairing: `peer` into authorized_keys (comment: its name, else
/// `<verb>-YYYY-MM-DD`), and `name` into the config's names (suffixed with
/// `-2`, `-3`... when the name already belongs to another peer). Returns
/// the name saved.
pub(crate) fn save_pairing(
    inner: &Arc<Inner>,
    peer: PeerId,
    name: Option<&Name>,
    verb: &str,
) -> Result<Option<Name>, String> {
    let today = inner.wall_clock();
    let comment = name.map_or_else(|| format!("{verb}-{}", today.date()), |n| n.to_string());
    // authorized_keys: the file is the source of truth.
    let _edit = match &inner.options.authorized_keys_path {
        Some(path) => Some(fs::lock_for_edit(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let doc = match &inner.options.authorized_keys_path {
        Some(path) => {
            let (mut doc, mut loaded) = match fs::read_private(path) {
                Ok(bytes) => (
                    Document::parse(&String::from_utf8_lossy(&bytes)),
                    crate::watch::Fingerprint::of(&bytes),
                ),
                Err(e) if e.is_not_found() => {
                    (Document::new(), crate::watch::Fingerprint::missing())
                }
                Err(e) => return Err(e.to_string()),
            };
            renew_entry(&mut doc, peer, today);
            if !doc.contains(&peer) {
                doc.add(peer, Attributes::new(), Some(&comment))
                    .map_err(|e| e.to_string())?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::ensure_private_dir(dir).map_err(|e| e.to_string())?;
                }
                let bytes = doc.render();
                fs::write_atomic(path, bytes.as_bytes()).map_err(|e| e.to_string())?;
                loaded = crate::watch::Fingerprint::of(bytes.as_bytes());
            }
            inner.set_ak_fingerprint(loaded);
            doc
        }
        None => {
            let mut doc = inner.authorized_keys_doc();
            renew_entry(&mut doc, peer, today);
            if !doc.contains(&peer) {
                doc.add(peer, Attributes::new(), Some(&comment))
                    .map_err(|e| e.to_string())?;
            }
            doc
        }
    };
    inner.set_authorized_keys_doc(doc.clone());
    // The file may hold other edits made since it was last loaded (a peer
    // removed): apply them to the live connections too.
    let connections = inner.connections();
    let change = inner
        .policy
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .reload(&doc, connections, inner.wall_clock());
    inner.apply_change(change);
    // names
    let Some(name) = name else { return Ok(None) };
    let chosen = {
        let names = inner.names.read().unwrap_or_else(|e| e.into_inner());
        free_name(&names, name, peer)
    };
    let Some(chosen) = chosen else {
        return Ok(None);
    };
    if let Some(path) = &inner.options.config_path {
        match fs::read_text(path) {
            Ok(text) => {
                let edited = peerup_core::config::edit::set_name(&text, &chosen, peer)
                    .map_err(|e| e.to_string())?;
                if edited != text {
                    fs::write_atomic(path, edited.as_bytes()).map_err(|e| e.to_string())?;
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    inner
        .names
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(chosen.clone(), peer);
    Ok(Some(chosen))
}

/// A pairing is fresh consent: a peer whose entry expired (or sits on an
/// invalid line) is taken out, to be added anew; an authorized entry,
/// with its attributes, is kept.
fn renew_entry(doc: &mut Document, peer: PeerId, now: UnixTime) {
    let authorized = doc.status(&peer, now) == peerup_core::authorized_keys::Status::Authorized;
    if !authorized && doc.lines().iter().any(|l| l.peer() == Some(peer)) {
        let _ = doc.remove(&peer);
    }
}

/// `name` if free or already this peer's, else the first free `name-N`.
fn free_name(names: &peerup_core::naming::Names, name: &Name, peer: PeerId) -> Option<Name> {
    for i in 1..100 {
        let candidate = if i == 1 {
            name.clone()
        } else {
            Name::new(&format!("{name}-{i}")).ok()?
        };
        match names.get(candidate.as_str()) {
            None => return Some(candidate),
            Some(p) if p == peer => return Some(candidate),
            Some(_) => {}
        }
    }
    None
}

impl From<StartError> for JoinError {
    fn from(e: StartError) -> Self {
        JoinError::Protocol(crate::error::chain(&e))
    }
}
