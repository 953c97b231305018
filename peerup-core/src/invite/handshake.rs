//! The invite handshake machines (WIRE.md §6): [`Inviter`] and [`Joiner`].
//!
//! ```text
//! joiner                                              inviter
//!   | -- 0x01 || J's ephemeral X25519 public key (33) -> |
//!   | <- I's ephemeral X25519 public key (32) ---------- |
//!   |   key = HKDF-SHA256(x25519(J, I) || token, info "peerup-invite-v1")
//!   | -- sealed(J's name, may be empty) --------------> |  wrong token: AEAD open fails,
//!   |                                                    |  the inviter closes, no reply
//!   |                                 [Authorize] -> caller saves authorized_keys + names
//!   | <- sealed("OK <inviter-name>" | "ERR <reason>") -- |
//!   | [Paired] -> caller saves; closes its side (= ack) |
//! ```
//!
//! The joiner opens the stream (`/peerup/invite/1.0.0`) over the relay
//! circuit. The token in the invite code is never sent: it is mixed into
//! the key, so only a joiner holding the code can produce a frame the
//! inviter can open, and the AEAD tag check is the (constant-time) token
//! comparison.
//!
//! # The inviter owns the invite
//! One [`Inviter`] serves every stream opened for one invite code. It
//! enforces what the Go version left to the process exiting:
//! - **expiry**: the invite dies at its wall-clock expiry (converted to the
//!   monotonic clock once, at creation, so a clock jump cannot extend it);
//! - **one-time use**: once one joiner's frame opens, the invite is taken; a
//!   second valid join is answered `ERR invite already used`;
//! - **failed attempts**: every session that presents a bad hello, a bad
//!   frame or a frame that does not open counts; at the limit the invite is
//!   burned and every open session reset;
//! - **a deadline per stream**: a silent peer is reset when it passes;
//! - **persistence before the reply**: `OK` is sent only after the caller
//!   reports that authorized_keys and names were saved
//!   ([`Inviter::handle_authorized`]), so a joiner is never told it is paired
//!   when the inviter's disk says otherwise;
//! - **acknowledgement by stream close** instead of a fixed sleep: after the
//!   reply the inviter finishes its side and waits for the joiner's close.
//!
//! No failure path emits [`InviterOutput::Authorize`] or
//! [`JoinerOutput::Paired`]: only a frame that opens under the token's key
//! does.
//!
//! # Call order (both machines)
//! After creating a machine and after every `handle_*` call, drain
//! `poll_output` until it returns `None`, carry out each output in order,
//! then read `poll_timeout` and wake the machine with `handle_timeout` at
//! that instant. Spurious `handle_timeout` calls are no-ops. Randomness (the
//! ephemeral secret and the reply nonce) comes in as [`SessionRandom`].

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::code::{InviteCode, Token};
use crate::PeerId;
use crate::naming::Name;
use crate::time::{Instant, UnixTime};
use crate::wire::sealed::{self, Decoded, Frame, Key};

/// The HKDF `info` string.
pub const HKDF_INFO: &[u8] = b"peerup-invite-v1";
/// The first byte of the joiner's hello.
pub const HELLO_VERSION: u8 = 0x01;
/// Length of an X25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of the joiner's hello: version byte and public key.
pub const HELLO_LEN: usize = 1 + PUBLIC_KEY_LEN;
/// Default time a stream may take from open to reply. An honest joiner
/// needs two round trips (its hello, then its name right after our key),
/// well under a second even through a relay on a satellite link.
pub const DEFAULT_STREAM_DEADLINE: Duration = Duration::from_secs(15);
/// Default time a joiner waits for the inviter's answer: longer than the
/// inviter's own deadlines, so the inviter decides a session's end.
pub const DEFAULT_JOIN_DEADLINE: Duration = Duration::from_secs(30);
/// Default time from a stream's open to the joiner's first message (the
/// hello): a silent stream gives its slot back this soon.
pub const DEFAULT_HELLO_DEADLINE: Duration = Duration::from_secs(5);
/// Default number of failed attempts, from all peers together, that burns
/// an invite: a guard on resources, not on guessing (see
/// `docs/SECURITY.md`: 10,000 guesses at a 64-bit token succeed with
/// probability 10,000 / 2^64, about 5e-16), and far more than a stranger
/// can make cheaply (3,334 identities, each with its own handshake).
pub const DEFAULT_MAX_FAILED_ATTEMPTS: u32 = 10_000;
/// Default number of strikes (failed attempts, silent or late streams, a
/// second stream while one is open) after which one peer is refused for
/// the rest of the invite: a stranger cannot burn the code for the real
/// joiner from one identity.
pub const DEFAULT_MAX_STRIKES_PER_PEER: u32 = 3;
/// Default number of sessions an inviter runs at once (one per peer);
/// more are reset.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;
/// Peers whose strikes are remembered per invite; beyond this, new peers
/// are not tracked (memory stays bounded whatever the number of
/// identities an attacker makes) and only the invite-wide limits apply.
pub const MAX_TRACKED_PEERS: usize = 4096;

/// The random bytes one side of one session needs. Zeroized on drop;
/// `Debug` is redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionRandom {
    /// The ephemeral X25519 secret.
    pub ephemeral: [u8; 32],
    /// The nonce of the one frame this side seals.
    pub nonce: [u8; sealed::NONCE_LEN],
}

impl fmt::Debug for SessionRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionRandom(<redacted>)")
    }
}

/// Derives the session key: `HKDF-SHA256(ikm = x25519 shared secret ||
/// token, salt = empty, info = "peerup-invite-v1")`.
///
/// Returns `None` when the peer's public key is a low-order point (the
/// shared secret would be all zeros, known to anyone).
pub fn derive_key(secret: &StaticSecret, their_public: &[u8; 32], token: &Token) -> Option<Key> {
    let shared = secret.diffie_hellman(&PublicKey::from(*their_public));
    if !shared.was_contributory() {
        return None;
    }
    let mut ikm = Zeroizing::new([0u8; 40]);
    ikm[..32].copy_from_slice(shared.as_bytes());
    ikm[32..].copy_from_slice(token.as_bytes());
    let hk = Hkdf::<Sha256>::new(None, &ikm[..]);
    let mut okm = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
    hk.expand(HKDF_INFO, &mut okm[..]).ok()?;
    Some(Key::from_bytes(*okm))
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The hello does not start with version `0x01`.
    #[error("unsupported handshake version {0:#04x}")]
    BadVersion(u8),
    /// A public key that is a low-order point.
    #[error("peer sent a weak ephemeral key")]
    WeakKey,
    /// A frame whose length prefix is impossible.
    #[error("malformed frame: {0}")]
    BadFrame(sealed::FrameError),
    /// A frame that does not open: the joiner's code has the wrong token, or
    /// the inviter's reply was tampered with.
    #[error("wrong or expired invite code")]
    WrongCode,
    /// More bytes than the protocol allows at this point.
    #[error("unexpected data from peer")]
    UnexpectedData,
    /// The reply is neither `OK ...` nor `ERR ...`.
    #[error("unrecognised reply from inviter")]
    BadReply,
    /// The peer closed its side too early.
    #[error("peer closed the stream before the handshake finished")]
    Closed,
    /// The stream was reset.
    #[error("stream reset")]
    Reset,
    /// The deadline passed.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The inviter said `ERR <reason>`.
    #[error("inviter refused: {0}")]
    Refused(String),
    /// The invite expired before this session finished.
    #[error("invite expired")]
    Expired,
    /// The invite was already used by another joiner.
    #[error("invite already used")]
    AlreadyUsed,
    /// The invite was burned by too many failed attempts.
    #[error("invite burned after too many failed attempts")]
    Burned,
    /// The caller could not save the pairing.
    #[error("could not save the pairing: {0}")]
    NotSaved(String),
    /// The invite was cancelled.
    #[error("invite cancelled")]
    Cancelled,
    /// The peer opened a newer stream, which took this one's place.
    #[error("replaced by a newer invite stream from the same peer")]
    Replaced,
    /// Every slot was taken; this stream, which had not said anything
    /// yet, gave its place to a newer one.
    #[error("gave its place to a newer stream before saying anything")]
    Evicted,
}

impl Failure {
    /// Whether this failure is a guess at the token or a protocol violation
    /// that counts against the invite's failed-attempt limit. Time-outs,
    /// early closes and resets do not: they reveal nothing about the token.
    pub fn counts_as_attempt(&self) -> bool {
        matches!(
            self,
            Failure::BadVersion(_)
                | Failure::WeakKey
                | Failure::BadFrame(_)
                | Failure::WrongCode
                | Failure::UnexpectedData
        )
    }
}

/// The adapter's identifier for one stream.
pub type StreamId = u64;

/// The inviter's settings.
#[derive(Debug, Clone)]
pub struct InviterConfig {
    /// This machine's friendly name, sent in `OK <name>`.
    pub name: Option<Name>,
    /// Wall-clock expiry of the invite.
    pub expires_at: UnixTime,
    /// Failed attempts that burn the invite.
    pub max_failed_attempts: u32,
    /// Time a stream may take from open to the reply.
    pub stream_deadline: Duration,
    /// Time from a stream's open to the joiner's hello.
    pub hello_deadline: Duration,
    /// Strikes after which one peer is refused for the rest of the invite.
    pub max_strikes_per_peer: u32,
    /// Sessions at once; more streams are reset.
    pub max_concurrent: usize,
}

impl InviterConfig {
    /// Defaults for an invite that expires at `expires_at`.
    pub fn new(expires_at: UnixTime) -> Self {
        InviterConfig {
            name: None,
            expires_at,
            max_failed_attempts: DEFAULT_MAX_FAILED_ATTEMPTS,
            stream_deadline: DEFAULT_STREAM_DEADLINE,
            hello_deadline: DEFAULT_HELLO_DEADLINE,
            max_strikes_per_peer: DEFAULT_MAX_STRIKES_PER_PEER,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
        }
    }

    /// Sets the name sent to the joiner.
    pub fn with_name(mut self, name: Option<Name>) -> Self {
        self.name = name;
        self
    }

    /// Sets the failed-attempt limit (at least 1).
    pub fn with_max_failed_attempts(mut self, n: u32) -> Self {
        self.max_failed_attempts = n.max(1);
        self
    }

    /// Sets the per-stream deadline.
    pub fn with_stream_deadline(mut self, d: Duration) -> Self {
        self.stream_deadline = d;
        self
    }

    /// Sets the deadline for the joiner's hello (at most the stream
    /// deadline takes effect).
    pub fn with_hello_deadline(mut self, d: Duration) -> Self {
        self.hello_deadline = d;
        self
    }

    /// Sets the strikes after which a peer is refused (at least 1).
    pub fn with_max_strikes_per_peer(mut self, n: u32) -> Self {
        self.max_strikes_per_peer = n.max(1);
        self
    }

    /// Sets the concurrent session limit (at least 1).
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }
}

/// Where an invite stands.
///
/// ```text
///   Open --(a joiner's frame opens)--> Taken --(caller saved, OK sent)--> Used
///    |  ^                                |                                  ^
///    |  +------(caller could not save)---+--(limit of failed attempts)--+  |
///    +--(limit of failed attempts)--> Burned <--------------------------+  |
///    +--(expiry)--> Expired        +--(cancel)--> Cancelled                |
///                                  Burned, Cancelled --(the save in flight)+
/// ```
///
/// A pairing whose save is in flight when the invite burns or is
/// cancelled still completes: its token was proven first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// Waiting for a joiner.
    Open,
    /// A joiner proved the token; its pairing is being saved.
    Taken,
    /// Paired; the invite can never be used again.
    Used,
    /// Too many failed attempts.
    Burned,
    /// Past its expiry.
    Expired,
    /// Cancelled by the owner.
    Cancelled,
}

/// What the inviter asks its caller to do, or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviterOutput {
    /// Write these bytes to the stream.
    Send {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Flush and close the write side of the stream; keep reading for the
    /// peer's close.
    Finish {
        /// The stream.
        stream: StreamId,
    },
    /// Reset (abort) the stream and forget it.
    Reset {
        /// The stream.
        stream: StreamId,
    },
    /// The joiner proved the token: add `peer` to authorized_keys (and
    /// `names` if `name` is set), then call [`Inviter::handle_authorized`].
    Authorize {
        /// The stream.
        stream: StreamId,
        /// The joiner.
        peer: PeerId,
        /// The joiner's name, if it sent a valid one.
        name: Option<Name>,
    },
    /// Something the caller should show or log.
    Event(InviterEvent),
}

/// Inviter events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviterEvent {
    /// A session failed; `counted` says whether it used up an attempt.
    AttemptFailed {
        /// The remote peer.
        peer: PeerId,
        /// Why.
        reason: Failure,
        /// Whether it counted against the limit.
        counted: bool,
        /// Attempts left before the invite burns.
        attempts_left: u32,
    },
    /// Paired with `peer`; the reply was sent.
    Paired {
        /// The joiner.
        peer: PeerId,
        /// Its name, if any.
        name: Option<Name>,
    },
    /// The joiner closed its side after the reply: it has the answer.
    Acknowledged {
        /// The joiner.
        peer: PeerId,
    },
    /// `peer` reached its limit of strikes: every stream it opens from now
    /// on is reset. The caller should also close its connections.
    PeerBlocked {
        /// The peer.
        peer: PeerId,
    },
    /// The invite burned after too many failed attempts.
    Burned,
    /// The invite expired unused.
    Expired,
}

#[derive(Debug)]
enum InviterPhase {
    /// Waiting for the 33-byte hello.
    Hello,
    /// Our public key is sent; waiting for the sealed name.
    Name { key: Key },
    /// The caller is saving the pairing.
    Saving { key: Key, name: Option<Name> },
    /// Reply sent and our side finished; waiting for the joiner's close.
    Replied,
}

struct InviterSession {
    peer: PeerId,
    /// When the hello must have arrived (while in [`InviterPhase::Hello`]).
    hello_deadline: Instant,
    deadline: Instant,
    buf: Vec<u8>,
    secret: StaticSecret,
    nonce: Zeroizing<[u8; sealed::NONCE_LEN]>,
    phase: InviterPhase,
}

impl fmt::Debug for InviterSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InviterSession")
            .field("peer", &self.peer)
            .field("deadline", &self.deadline)
            .field("buffered", &self.buf.len())
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl InviterSession {
    /// When this session must have moved on: the hello deadline until the
    /// hello arrived, the stream deadline after.
    fn timer(&self) -> Instant {
        match self.phase {
            InviterPhase::Hello => self.hello_deadline,
            _ => self.deadline,
        }
    }
}

/// The inviter: owns one invite and serves every stream opened for it.
#[derive(Debug)]
pub struct Inviter {
    token: Token,
    config: InviterConfig,
    expires: Instant,
    state: InviteState,
    failed: u32,
    sessions: BTreeMap<StreamId, InviterSession>,
    /// Strikes per peer (only peers with at least one).
    strikes: BTreeMap<PeerId, u32>,
    out: VecDeque<InviterOutput>,
}

impl Inviter {
    /// Creates the owner of an invite with `token`. `now` and `wall` are the
    /// same moment on the monotonic and the wall clock; the wall-clock
    /// expiry is converted to the monotonic clock here, once.
    pub fn new(token: Token, config: InviterConfig, now: Instant, wall: UnixTime) -> Self {
        let expires = now + wall.until(config.expires_at);
        let mut inviter = Inviter {
            token,
            config,
            expires,
            state: InviteState::Open,
            failed: 0,
            sessions: BTreeMap::new(),
            strikes: BTreeMap::new(),
            out: VecDeque::new(),
        };
        inviter.handle_timeout(now);
        inviter
    }

    /// Where the invite stands.
    pub fn state(&self) -> InviteState {
        self.state
    }

    /// Failed attempts so far.
    pub fn failed_attempts(&self) -> u32 {
        self.failed
    }

    /// Sessions in progress.
    pub fn active_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions in progress for `peer` (at most one).
    pub fn sessions_of(&self, peer: &PeerId) -> usize {
        self.sessions.values().filter(|s| s.peer == *peer).count()
    }

    /// Strikes recorded against `peer` in this invite.
    pub fn strikes(&self, peer: &PeerId) -> u32 {
        self.strikes.get(peer).copied().unwrap_or(0)
    }

    /// Whether `peer` reached its limit of strikes and is refused.
    pub fn is_blocked(&self, peer: &PeerId) -> bool {
        self.strikes(peer) >= self.config.max_strikes_per_peer
    }

    /// The monotonic instant at which the invite expires.
    pub fn expires(&self) -> Instant {
        self.expires
    }

    /// Whether the invite is over (used, burned, expired or cancelled) and
    /// every session has ended: the caller can drop the machine.
    pub fn is_finished(&self) -> bool {
        !matches!(self.state, InviteState::Open | InviteState::Taken) && self.sessions.is_empty()
    }

    fn accepting(&self) -> bool {
        matches!(self.state, InviteState::Open | InviteState::Taken)
    }

    /// A joiner opened a stream.
    pub fn handle_stream(
        &mut self,
        now: Instant,
        stream: StreamId,
        peer: PeerId,
        random: SessionRandom,
    ) {
        self.handle_timeout(now);
        if !self.accepting() || self.sessions.contains_key(&stream) || self.is_blocked(&peer) {
            self.out.push_back(InviterOutput::Reset { stream });
            return;
        }
        // One session per peer: a newer stream replaces one that has not
        // reached the pairing yet (a joiner retrying after a dead first
        // attempt is not held back, and one identity holds one slot).
        if let Some((&old, session)) = self.sessions.iter().find(|(_, s)| s.peer == peer) {
            if matches!(
                session.phase,
                InviterPhase::Saving { .. } | InviterPhase::Replied
            ) {
                self.out.push_back(InviterOutput::Reset { stream });
                return;
            }
            self.sessions.remove(&old);
            self.out.push_back(InviterOutput::Reset { stream: old });
            self.out
                .push_back(InviterOutput::Event(InviterEvent::AttemptFailed {
                    peer,
                    reason: Failure::Replaced,
                    counted: false,
                    attempts_left: self.attempts_left(),
                }));
        }
        if self.sessions.len() >= self.config.max_concurrent {
            // Every slot taken: the oldest stream that has not said
            // anything gives its place (an honest joiner speaks at once;
            // squatting then takes a stream per slot per round trip, not
            // one per deadline). A strike for its peer.
            let silent = self
                .sessions
                .iter()
                .filter(|(_, s)| matches!(s.phase, InviterPhase::Hello))
                .min_by_key(|(id, s)| (s.hello_deadline, **id))
                .map(|(id, s)| (*id, s.peer));
            match silent {
                Some((victim, who)) => {
                    self.sessions.remove(&victim);
                    self.out.push_back(InviterOutput::Reset { stream: victim });
                    self.strike(who, Failure::Evicted);
                }
                None => {
                    self.out.push_back(InviterOutput::Reset { stream });
                    return;
                }
            }
        }
        let deadline = now + self.config.stream_deadline;
        let session = InviterSession {
            peer,
            hello_deadline: (now + self.config.hello_deadline).min(deadline),
            deadline,
            buf: Vec::new(),
            secret: StaticSecret::from(random.ephemeral),
            nonce: Zeroizing::new(random.nonce),
            phase: InviterPhase::Hello,
        };
        self.sessions.insert(stream, session);
    }

    /// Bytes arrived on a stream.
    pub fn handle_data(&mut self, now: Instant, stream: StreamId, data: &[u8]) {
        self.handle_timeout(now);
        let Some(session) = self.sessions.get_mut(&stream) else {
            return;
        };
        if matches!(
            session.phase,
            InviterPhase::Saving { .. } | InviterPhase::Replied
        ) {
            // The joiner sends nothing after its name; ignore rather than
            // undo a pairing whose token was already proven.
            return;
        }
        session.buf.extend_from_slice(data);
        self.advance(stream);
    }

    /// The joiner closed its write side.
    pub fn handle_eof(&mut self, now: Instant, stream: StreamId) {
        self.handle_timeout(now);
        let Some(session) = self.sessions.get(&stream) else {
            return;
        };
        match session.phase {
            InviterPhase::Replied => {
                let peer = session.peer;
                self.sessions.remove(&stream);
                self.out
                    .push_back(InviterOutput::Event(InviterEvent::Acknowledged { peer }));
            }
            // Still saving: the reply will go out and the stream close then.
            InviterPhase::Saving { .. } => {}
            _ => self.fail(stream, Failure::Closed),
        }
    }

    /// The stream was reset or failed.
    pub fn handle_reset(&mut self, now: Instant, stream: StreamId) {
        self.handle_timeout(now);
        let Some(session) = self.sessions.get(&stream) else {
            return;
        };
        match session.phase {
            InviterPhase::Replied => {
                self.sessions.remove(&stream);
            }
            InviterPhase::Saving { .. } => {
                // Keep the session: the caller still reports the save, which
                // decides the invite's state; the reply then goes nowhere.
            }
            _ => self.fail_quiet(stream, Failure::Reset),
        }
    }

    /// The caller saved (or failed to save) the pairing it was asked for by
    /// [`InviterOutput::Authorize`].
    pub fn handle_authorized(
        &mut self,
        now: Instant,
        stream: StreamId,
        result: Result<(), String>,
    ) {
        let Some(session) = self.sessions.get_mut(&stream) else {
            return;
        };
        let InviterPhase::Saving { key, name } = &session.phase else {
            return;
        };
        let (key, name) = (key.clone(), name.clone());
        let peer = session.peer;
        match result {
            Ok(()) => {
                self.state = InviteState::Used;
                let reply = format!("OK {}", self.config.name.as_ref().map_or("", Name::as_str));
                self.reply(stream, &key, reply.as_bytes());
                if let Some(s) = self.sessions.get_mut(&stream) {
                    s.phase = InviterPhase::Replied;
                }
                self.out
                    .push_back(InviterOutput::Event(InviterEvent::Paired { peer, name }));
                // The invite is spent: every other session ends.
                let others: Vec<StreamId> = self
                    .sessions
                    .keys()
                    .copied()
                    .filter(|s| *s != stream)
                    .collect();
                for other in others {
                    self.sessions.remove(&other);
                    self.out.push_back(InviterOutput::Reset { stream: other });
                }
            }
            Err(reason) => {
                if self.state == InviteState::Taken {
                    self.state = InviteState::Open;
                }
                self.reply(
                    stream,
                    &key,
                    format!("ERR could not save the pairing: {reason}").as_bytes(),
                );
                self.sessions.remove(&stream);
                self.out
                    .push_back(InviterOutput::Event(InviterEvent::AttemptFailed {
                        peer,
                        reason: Failure::NotSaved(reason),
                        counted: false,
                        attempts_left: self.attempts_left(),
                    }));
            }
        }
        self.handle_timeout(now);
    }

    /// The owner cancels the invite: every session is reset.
    pub fn cancel(&mut self) {
        if self.accepting() {
            self.state = InviteState::Cancelled;
        }
        self.reset_all();
    }

    /// Wakes the machine: expiry and stream deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.expires && self.state == InviteState::Open {
            self.state = InviteState::Expired;
            self.out
                .push_back(InviterOutput::Event(InviterEvent::Expired));
            self.reset_all();
        }
        let late: Vec<StreamId> = self
            .sessions
            .iter()
            .filter(|(_, s)| now >= s.timer())
            .map(|(id, _)| *id)
            .collect();
        for stream in late {
            let Some(session) = self.sessions.get(&stream) else {
                continue;
            };
            match session.phase {
                // The reply was sent: a missing ack does not undo the pairing.
                InviterPhase::Replied => {
                    self.sessions.remove(&stream);
                    self.out.push_back(InviterOutput::Reset { stream });
                }
                // The caller owes a save report; wait for it.
                InviterPhase::Saving { .. } => {}
                _ => self.fail(stream, Failure::Timeout),
            }
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<InviterOutput> {
        self.out.pop_front()
    }

    /// When to call [`Inviter::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadlines = self
            .sessions
            .values()
            .filter(|s| !matches!(s.phase, InviterPhase::Saving { .. }))
            .map(InviterSession::timer);
        let expiry = (self.state == InviteState::Open).then_some(self.expires);
        deadlines.chain(expiry).min()
    }

    fn attempts_left(&self) -> u32 {
        self.config.max_failed_attempts.saturating_sub(self.failed)
    }

    fn reset_all(&mut self) {
        let all: Vec<StreamId> = self.sessions.keys().copied().collect();
        for stream in all {
            // A session whose pairing is being saved keeps going: the caller
            // will report the save, and the pairing is already decided.
            if matches!(
                self.sessions.get(&stream).map(|s| &s.phase),
                Some(InviterPhase::Saving { .. })
            ) {
                continue;
            }
            self.sessions.remove(&stream);
            self.out.push_back(InviterOutput::Reset { stream });
        }
    }

    fn reply(&mut self, stream: StreamId, key: &Key, text: &[u8]) {
        let Some(session) = self.sessions.get(&stream) else {
            return;
        };
        // Replies are short ASCII (a name is at most 63 bytes, reasons are
        // ours), far below the frame limit; truncate defensively anyway.
        let text = &text[..text.len().min(sealed::MAX_PLAINTEXT)];
        if let Ok(frame) = sealed::seal(key, *session.nonce, text) {
            self.out.push_back(InviterOutput::Send {
                stream,
                data: frame.encode(),
            });
        }
        self.out.push_back(InviterOutput::Finish { stream });
    }

    /// Ends a session with `reason`, counting it when it is an attempt.
    fn fail(&mut self, stream: StreamId, reason: Failure) {
        let Some(session) = self.sessions.remove(&stream) else {
            return;
        };
        self.out.push_back(InviterOutput::Reset { stream });
        self.record_failure(session.peer, reason);
    }

    /// As [`Inviter::fail`], for a stream that is already gone.
    fn fail_quiet(&mut self, stream: StreamId, reason: Failure) {
        let Some(session) = self.sessions.remove(&stream) else {
            return;
        };
        self.record_failure(session.peer, reason);
    }

    /// A strike against `peer` that is not a session's failure (a stream
    /// evicted while silent); reported like one, never counted against
    /// the invite.
    fn strike(&mut self, peer: PeerId, reason: Failure) {
        self.out
            .push_back(InviterOutput::Event(InviterEvent::AttemptFailed {
                peer,
                reason,
                counted: false,
                attempts_left: self.attempts_left(),
            }));
        self.add_strike(peer);
    }

    /// Counts a strike; at the limit the peer is blocked and its sessions
    /// reset (a pairing being saved keeps going: its token was proven).
    fn add_strike(&mut self, peer: PeerId) {
        if !self.accepting() {
            return;
        }
        if !self.strikes.contains_key(&peer) && self.strikes.len() >= MAX_TRACKED_PEERS {
            return;
        }
        let n = self.strikes.entry(peer).or_insert(0);
        *n = n.saturating_add(1);
        if *n != self.config.max_strikes_per_peer {
            return;
        }
        let theirs: Vec<StreamId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.peer == peer && !matches!(s.phase, InviterPhase::Saving { .. }))
            .map(|(id, _)| *id)
            .collect();
        for stream in theirs {
            self.sessions.remove(&stream);
            self.out.push_back(InviterOutput::Reset { stream });
        }
        self.out
            .push_back(InviterOutput::Event(InviterEvent::PeerBlocked { peer }));
    }

    fn record_failure(&mut self, peer: PeerId, reason: Failure) {
        let counted = reason.counts_as_attempt() && self.accepting();
        if counted {
            self.failed = self.failed.saturating_add(1);
        }
        // Per peer, a silent or slow stream is a strike too: it held a
        // slot. Closes and resets are not (a flaky link, a joiner's retry).
        let strike = counted || matches!(reason, Failure::Timeout);
        self.out
            .push_back(InviterOutput::Event(InviterEvent::AttemptFailed {
                peer,
                reason,
                counted,
                attempts_left: self.attempts_left(),
            }));
        // Also while a pairing is being saved (`Taken`): guesses made
        // meanwhile are evaluated too, so they must burn the invite at the
        // limit. The pairing being saved still completes (`Used`); should
        // its save fail, the invite stays burned.
        if counted
            && self.failed >= self.config.max_failed_attempts
            && matches!(self.state, InviteState::Open | InviteState::Taken)
        {
            self.state = InviteState::Burned;
            self.out
                .push_back(InviterOutput::Event(InviterEvent::Burned));
            self.reset_all();
        } else if strike {
            self.add_strike(peer);
        }
    }

    fn advance(&mut self, stream: StreamId) {
        let Some(session) = self.sessions.get_mut(&stream) else {
            return;
        };
        match &session.phase {
            InviterPhase::Hello => {
                if session.buf.is_empty() {
                    return;
                }
                if session.buf[0] != HELLO_VERSION {
                    let v = session.buf[0];
                    return self.fail(stream, Failure::BadVersion(v));
                }
                if session.buf.len() < HELLO_LEN {
                    return;
                }
                let mut theirs = [0u8; 32];
                theirs.copy_from_slice(&session.buf[1..HELLO_LEN]);
                let Some(key) = derive_key(&session.secret, &theirs, &self.token) else {
                    return self.fail(stream, Failure::WeakKey);
                };
                session.buf.drain(..HELLO_LEN);
                let ours = PublicKey::from(&session.secret).to_bytes();
                session.phase = InviterPhase::Name { key };
                self.out.push_back(InviterOutput::Send {
                    stream,
                    data: ours.to_vec(),
                });
                // The name frame may have arrived in the same read.
                self.advance(stream);
            }
            InviterPhase::Name { key } => {
                let frame = match sealed::decode(&session.buf) {
                    Ok(Decoded::Incomplete { .. }) => return,
                    Ok(Decoded::Frame(frame, used)) => {
                        if used != session.buf.len() {
                            return self.fail(stream, Failure::UnexpectedData);
                        }
                        frame
                    }
                    Err(e) => return self.fail(stream, Failure::BadFrame(e)),
                };
                session.buf.clear();
                let Ok(plain) = sealed::open(key, &frame) else {
                    // Wrong token: close without a reply (WIRE.md §6).
                    let peer = session.peer;
                    self.sessions.remove(&stream);
                    self.out.push_back(InviterOutput::Finish { stream });
                    self.record_failure(peer, Failure::WrongCode);
                    return;
                };
                let key = key.clone();
                let name = core::str::from_utf8(&plain)
                    .ok()
                    .and_then(|t| Name::new(t.trim()).ok());
                self.decide(stream, key, name);
            }
            InviterPhase::Saving { .. } | InviterPhase::Replied => {}
        }
    }

    /// The token is proven on `stream`: take the invite or refuse.
    fn decide(&mut self, stream: StreamId, key: Key, name: Option<Name>) {
        let refusal = match self.state {
            InviteState::Open => None,
            InviteState::Taken | InviteState::Used => Some(Failure::AlreadyUsed),
            InviteState::Expired => Some(Failure::Expired),
            InviteState::Burned => Some(Failure::Burned),
            InviteState::Cancelled => Some(Failure::Cancelled),
        };
        let Some(session) = self.sessions.get_mut(&stream) else {
            return;
        };
        let peer = session.peer;
        if let Some(reason) = refusal {
            self.reply(stream, &key, format!("ERR {reason}").as_bytes());
            self.sessions.remove(&stream);
            self.out
                .push_back(InviterOutput::Event(InviterEvent::AttemptFailed {
                    peer,
                    reason,
                    counted: false,
                    attempts_left: self.attempts_left(),
                }));
            return;
        }
        self.state = InviteState::Taken;
        session.phase = InviterPhase::Saving {
            key,
            name: name.clone(),
        };
        self.out
            .push_back(InviterOutput::Authorize { stream, peer, name });
    }
}

/// The joiner's settings.
#[derive(Debug, Clone)]
pub struct JoinerConfig {
    /// This machine's friendly name, sent to the inviter.
    pub name: Option<Name>,
    /// Time the whole handshake may take.
    pub deadline: Duration,
}

impl Default for JoinerConfig {
    fn default() -> Self {
        JoinerConfig {
            name: None,
            deadline: DEFAULT_JOIN_DEADLINE,
        }
    }
}

impl JoinerConfig {
    /// Sets the name sent to the inviter.
    pub fn with_name(mut self, name: Option<Name>) -> Self {
        self.name = name;
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, d: Duration) -> Self {
        self.deadline = d;
        self
    }
}

/// What the joiner asks its caller to do, or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinerOutput {
    /// Write these bytes to the stream.
    Send(Vec<u8>),
    /// Flush and close the write side (after [`JoinerOutput::Paired`]: the
    /// acknowledgement).
    Finish,
    /// Reset the stream.
    Reset,
    /// Paired: add `peer` to authorized_keys, and `names` if `name` is set.
    Paired {
        /// The inviter.
        peer: PeerId,
        /// Its name, if it sent a valid one.
        name: Option<Name>,
    },
    /// The join failed; nothing is to be saved.
    Failed(Failure),
}

#[derive(Debug)]
enum JoinerPhase {
    AwaitKey,
    AwaitReply { key: Key },
    Done,
}

/// The joiner: one stream to the inviter named in the code.
pub struct Joiner {
    inviter: PeerId,
    token: Token,
    secret: StaticSecret,
    nonce: Zeroizing<[u8; sealed::NONCE_LEN]>,
    name: Option<Name>,
    deadline: Instant,
    buf: Vec<u8>,
    phase: JoinerPhase,
    out: VecDeque<JoinerOutput>,
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joiner")
            .field("inviter", &self.inviter)
            .field("deadline", &self.deadline)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Joiner {
    /// Starts a join over a freshly opened stream to `code.inviter`; the
    /// first output is the hello.
    pub fn new(
        code: &InviteCode,
        config: JoinerConfig,
        now: Instant,
        random: SessionRandom,
    ) -> Self {
        let secret = StaticSecret::from(random.ephemeral);
        let mut hello = Vec::with_capacity(HELLO_LEN);
        hello.push(HELLO_VERSION);
        hello.extend_from_slice(PublicKey::from(&secret).as_bytes());
        let mut out = VecDeque::new();
        out.push_back(JoinerOutput::Send(hello));
        Joiner {
            inviter: code.inviter,
            token: code.token.clone(),
            secret,
            nonce: Zeroizing::new(random.nonce),
            name: config.name,
            deadline: now + config.deadline,
            buf: Vec::new(),
            phase: JoinerPhase::AwaitKey,
            out,
        }
    }

    /// Whether the join has ended (paired or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, JoinerPhase::Done)
    }

    /// Bytes arrived from the inviter.
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.handle_timeout(now);
        if self.is_finished() {
            return;
        }
        self.buf.extend_from_slice(data);
        self.advance();
    }

    /// The inviter closed its write side.
    pub fn handle_eof(&mut self, now: Instant) {
        self.handle_timeout(now);
        match self.phase {
            // Our sealed name went out and the inviter closed without a
            // reply: that is how a wrong token shows (WIRE.md §6).
            JoinerPhase::AwaitReply { .. } => self.fail(Failure::WrongCode),
            JoinerPhase::AwaitKey => self.fail(Failure::Closed),
            JoinerPhase::Done => {}
        }
    }

    /// The stream was reset.
    pub fn handle_reset(&mut self, now: Instant) {
        self.handle_timeout(now);
        if !self.is_finished() {
            self.phase = JoinerPhase::Done;
            self.out.push_back(JoinerOutput::Failed(Failure::Reset));
        }
    }

    /// Wakes the machine for its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_finished() && now >= self.deadline {
            self.fail(Failure::Timeout);
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<JoinerOutput> {
        self.out.pop_front()
    }

    /// When to call [`Joiner::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_finished()).then_some(self.deadline)
    }

    fn fail(&mut self, reason: Failure) {
        self.phase = JoinerPhase::Done;
        self.buf.clear();
        self.out.push_back(JoinerOutput::Reset);
        self.out.push_back(JoinerOutput::Failed(reason));
    }

    fn advance(&mut self) {
        match &self.phase {
            JoinerPhase::AwaitKey => {
                if self.buf.len() < PUBLIC_KEY_LEN {
                    return;
                }
                let mut theirs = [0u8; 32];
                theirs.copy_from_slice(&self.buf[..PUBLIC_KEY_LEN]);
                self.buf.drain(..PUBLIC_KEY_LEN);
                let Some(key) = derive_key(&self.secret, &theirs, &self.token) else {
                    return self.fail(Failure::WeakKey);
                };
                let name = self.name.as_ref().map_or("", Name::as_str);
                match sealed::seal(&key, *self.nonce, name.as_bytes()) {
                    Ok(frame) => self.out.push_back(JoinerOutput::Send(frame.encode())),
                    Err(_) => return self.fail(Failure::UnexpectedData),
                }
                self.phase = JoinerPhase::AwaitReply { key };
                self.advance();
            }
            JoinerPhase::AwaitReply { key } => {
                let frame: Frame = match sealed::decode(&self.buf) {
                    Ok(Decoded::Incomplete { .. }) => return,
                    Ok(Decoded::Frame(frame, used)) => {
                        if used != self.buf.len() {
                            return self.fail(Failure::UnexpectedData);
                        }
                        frame
                    }
                    Err(e) => return self.fail(Failure::BadFrame(e)),
                };
                let Ok(plain) = sealed::open(key, &frame) else {
                    return self.fail(Failure::WrongCode);
                };
                self.buf.clear();
                self.phase = JoinerPhase::Done;
                match parse_reply(&plain) {
                    Some(Ok(name)) => {
                        self.out.push_back(JoinerOutput::Paired {
                            peer: self.inviter,
                            name,
                        });
                        self.out.push_back(JoinerOutput::Finish);
                    }
                    Some(Err(reason)) => {
                        self.out.push_back(JoinerOutput::Finish);
                        self.out
                            .push_back(JoinerOutput::Failed(Failure::Refused(reason)));
                    }
                    None => {
                        self.out.push_back(JoinerOutput::Reset);
                        self.out.push_back(JoinerOutput::Failed(Failure::BadReply));
                    }
                }
            }
            JoinerPhase::Done => {}
        }
    }
}

/// `OK <name>` -> `Ok(name)`, `ERR <reason>` -> `Err(reason)`, else `None`.
fn parse_reply(plain: &[u8]) -> Option<Result<Option<Name>, String>> {
    let text = core::str::from_utf8(plain).ok()?;
    if text == "OK" {
        return Some(Ok(None));
    }
    if let Some(name) = text.strip_prefix("OK ") {
        return Some(Ok(Name::new(name.trim()).ok()));
    }
    if text == "ERR" {
        return Some(Err(String::new()));
    }
    if let Some(reason) = text.strip_prefix("ERR ") {
        // Shown to the user: keep it printable and short.
        let clean: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        return Some(Err(clean));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keypair_from_seed;

    fn peer(n: u8) -> PeerId {
        keypair_from_seed([n; 32]).public().to_peer_id()
    }

    fn joiner(token: [u8; 8], n: u8) -> Joiner {
        let code = InviteCode {
            token: Token::from_bytes(token),
            relay_ip: core::net::Ipv4Addr::new(192, 0, 2, 1),
            relay_port: 7777,
            relay_peer: peer(0),
            network: None,
            inviter: peer(1),
        };
        let random = SessionRandom {
            ephemeral: [0x40 + n; 32],
            nonce: [n; 24],
        };
        Joiner::new(&code, JoinerConfig::default(), Instant::ZERO, random)
    }

    /// Opens `stream` and passes bytes both ways until both sides are
    /// quiet; returns the inviter's outputs other than bytes.
    fn converse(inviter: &mut Inviter, j: &mut Joiner, stream: StreamId) -> Vec<InviterOutput> {
        let random = SessionRandom {
            ephemeral: [0x10 + stream as u8; 32],
            nonce: [0x20 + stream as u8; 24],
        };
        inviter.handle_stream(Instant::ZERO, stream, peer(2 + stream as u8), random);
        let mut other = Vec::new();
        loop {
            let mut moved = false;
            while let Some(JoinerOutput::Send(d)) = j.poll_output() {
                inviter.handle_data(Instant::ZERO, stream, &d);
                moved = true;
            }
            while let Some(o) = inviter.poll_output() {
                match o {
                    InviterOutput::Send { data, .. } => {
                        j.handle_data(Instant::ZERO, &data);
                        moved = true;
                    }
                    o => other.push(o),
                }
            }
            if !moved {
                return other;
            }
        }
    }

    const TOKEN: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
    const WRONG: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 9];

    fn inviter(config: InviterConfig) -> Inviter {
        Inviter::new(
            Token::from_bytes(TOKEN),
            config,
            Instant::ZERO,
            UnixTime::EPOCH,
        )
    }

    fn config() -> InviterConfig {
        InviterConfig::new(UnixTime::from_secs(600))
    }

    fn random(n: u64) -> SessionRandom {
        SessionRandom {
            ephemeral: [0x10 + n as u8; 32],
            nonce: [0x20 + n as u8; 24],
        }
    }

    /// Runs a whole session on `stream` from `who` at `now`, with a joiner
    /// holding `token`; returns the inviter's outputs other than bytes.
    fn session(
        inv: &mut Inviter,
        now: Instant,
        stream: StreamId,
        who: PeerId,
        token: [u8; 8],
    ) -> Vec<InviterOutput> {
        let mut j = joiner(token, stream as u8);
        inv.handle_stream(now, stream, who, random(stream));
        let mut other = Vec::new();
        loop {
            let mut moved = false;
            while let Some(JoinerOutput::Send(d)) = j.poll_output() {
                inv.handle_data(now, stream, &d);
                moved = true;
            }
            while let Some(o) = inv.poll_output() {
                match o {
                    InviterOutput::Send { data, .. } => {
                        j.handle_data(now, &data);
                        moved = true;
                    }
                    o => other.push(o),
                }
            }
            if !moved {
                return other;
            }
        }
    }

    fn drain(inv: &mut Inviter) -> Vec<InviterOutput> {
        core::iter::from_fn(|| inv.poll_output()).collect()
    }

    #[test]
    fn one_stranger_is_blocked_after_its_strikes_and_cannot_burn_the_invite() {
        let mut inv = inviter(config());
        let stranger = peer(9);
        for stream in 1..=DEFAULT_MAX_STRIKES_PER_PEER as StreamId {
            let out = session(&mut inv, Instant::ZERO, stream, stranger, WRONG);
            assert!(
                out.iter().any(|o| matches!(
                    o,
                    InviterOutput::Event(InviterEvent::AttemptFailed {
                        reason: Failure::WrongCode,
                        counted: true,
                        ..
                    })
                )),
                "{out:?}"
            );
        }
        assert!(inv.is_blocked(&stranger));
        assert_eq!(inv.failed_attempts(), 3);
        assert_eq!(inv.state(), InviteState::Open);
        // Its next stream is reset unread, and counts for nothing.
        inv.handle_stream(Instant::ZERO, 10, stranger, random(10));
        assert_eq!(drain(&mut inv), vec![InviterOutput::Reset { stream: 10 }]);
        assert_eq!(inv.failed_attempts(), 3);
        // The real joiner still pairs.
        let out = session(&mut inv, Instant::ZERO, 11, peer(3), TOKEN);
        assert!(
            matches!(
                out.as_slice(),
                [InviterOutput::Authorize { stream: 11, .. }]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn the_block_is_announced_once_for_the_caller_to_disconnect() {
        let mut inv = inviter(config().with_max_strikes_per_peer(2));
        let stranger = peer(9);
        let mut blocked = 0;
        for stream in 1..=4 {
            let out = session(&mut inv, Instant::ZERO, stream, stranger, WRONG);
            blocked += out
                .iter()
                .filter(|o| {
                    **o == InviterOutput::Event(InviterEvent::PeerBlocked { peer: stranger })
                })
                .count();
        }
        assert_eq!(blocked, 1);
        assert_eq!(inv.failed_attempts(), 2);
    }

    #[test]
    fn a_newer_stream_from_one_peer_replaces_the_older() {
        let mut inv = inviter(config());
        let joiner_peer = peer(9);
        inv.handle_stream(Instant::ZERO, 1, joiner_peer, random(1));
        inv.handle_stream(Instant::ZERO, 2, joiner_peer, random(2));
        let out = drain(&mut inv);
        assert_eq!(out[0], InviterOutput::Reset { stream: 1 });
        assert!(matches!(
            out[1],
            InviterOutput::Event(InviterEvent::AttemptFailed {
                reason: Failure::Replaced,
                counted: false,
                ..
            })
        ));
        assert_eq!(inv.sessions_of(&joiner_peer), 1);
        // No strike: a joiner retrying after a dead attempt is not held
        // back, and the newer stream pairs.
        assert_eq!(inv.strikes(&joiner_peer), 0);
        let out = session(&mut inv, Instant::ZERO, 3, joiner_peer, TOKEN);
        assert!(
            matches!(out.last(), Some(InviterOutput::Authorize { stream: 3, .. })),
            "{out:?}"
        );
    }

    #[test]
    fn silent_streams_give_their_slots_to_a_new_joiner() {
        // Every slot squatted by a silent stream from its own identity.
        let mut inv = inviter(config().with_max_concurrent(4));
        for stream in 1..=4 {
            inv.handle_stream(
                Instant::ZERO,
                stream,
                peer(10 + stream as u8),
                random(stream),
            );
        }
        assert_eq!(inv.active_sessions(), 4);
        // The joiner arriving now takes the oldest silent one's place...
        let out = session(&mut inv, Instant::ZERO, 5, peer(3), TOKEN);
        assert_eq!(out[0], InviterOutput::Reset { stream: 1 });
        assert!(
            matches!(out.last(), Some(InviterOutput::Authorize { stream: 5, .. })),
            "{out:?}"
        );
        assert_eq!(inv.strikes(&peer(11)), 1, "the evicted squatter");
        assert_eq!(inv.failed_attempts(), 0);
        // ...and the others still leave at the hello deadline.
        let hello = Instant::ZERO + DEFAULT_HELLO_DEADLINE;
        assert_eq!(inv.poll_timeout(), Some(hello));
        inv.handle_timeout(hello);
        let resets = drain(&mut inv)
            .into_iter()
            .filter(|o| matches!(o, InviterOutput::Reset { .. }))
            .count();
        assert_eq!(resets, 3);
        assert_eq!(inv.strikes(&peer(12)), 1);
    }

    #[test]
    fn a_stream_that_spoke_is_never_evicted() {
        let mut inv = inviter(config().with_max_concurrent(1));
        inv.handle_stream(Instant::ZERO, 1, peer(3), random(1));
        let mut j = joiner(TOKEN, 1);
        let Some(JoinerOutput::Send(hello)) = j.poll_output() else {
            panic!("no hello");
        };
        inv.handle_data(Instant::ZERO, 1, &hello);
        drain(&mut inv);
        inv.handle_stream(Instant::ZERO, 2, peer(9), random(2));
        assert_eq!(drain(&mut inv), vec![InviterOutput::Reset { stream: 2 }]);
        assert_eq!(inv.sessions_of(&peer(3)), 1);
    }

    #[test]
    fn a_hello_in_time_moves_the_session_to_the_stream_deadline() {
        let mut inv = inviter(config());
        inv.handle_stream(Instant::ZERO, 1, peer(3), random(1));
        let mut j = joiner(TOKEN, 1);
        let Some(JoinerOutput::Send(hello)) = j.poll_output() else {
            panic!("no hello");
        };
        inv.handle_data(Instant::ZERO, 1, &hello);
        assert_eq!(
            inv.poll_timeout(),
            Some(Instant::ZERO + DEFAULT_STREAM_DEADLINE)
        );
    }

    #[test]
    fn many_identities_still_burn_the_invite_at_the_global_cap() {
        let mut inv = inviter(config().with_max_failed_attempts(5));
        for n in 0..5u8 {
            let stream = StreamId::from(n) + 1;
            session(&mut inv, Instant::ZERO, stream, peer(20 + n), WRONG);
        }
        assert_eq!(inv.state(), InviteState::Burned);
        assert_eq!(inv.failed_attempts(), 5);
    }

    /// Found by the `invite_handshake` fuzz target: while a pairing was
    /// being saved, wrong guesses were counted past the limit without
    /// burning the invite, and a failed save then reopened it.
    #[test]
    fn guesses_while_a_pairing_is_saved_burn_at_the_limit() {
        for save_ok in [false, true] {
            let config = InviterConfig::new(UnixTime::from_secs(1_000))
                .with_max_failed_attempts(1)
                .with_max_concurrent(4);
            let mut inviter = Inviter::new(
                Token::from_bytes(TOKEN),
                config,
                Instant::ZERO,
                UnixTime::EPOCH,
            );
            let mut honest = joiner(TOKEN, 1);
            let out = converse(&mut inviter, &mut honest, 1);
            assert!(
                matches!(out.as_slice(), [InviterOutput::Authorize { stream: 1, .. }]),
                "{out:?}"
            );
            assert_eq!(inviter.state(), InviteState::Taken);
            let mut wrong = [1u8, 2, 3, 4, 5, 6, 7, 9];
            let out = converse(&mut inviter, &mut joiner(wrong, 2), 2);
            assert!(
                out.contains(&InviterOutput::Event(InviterEvent::Burned)),
                "{out:?}"
            );
            assert_eq!(inviter.state(), InviteState::Burned);
            // No further guess is evaluated.
            wrong[0] = 9;
            let out = converse(&mut inviter, &mut joiner(wrong, 3), 3);
            assert_eq!(out, vec![InviterOutput::Reset { stream: 3 }]);
            assert_eq!(inviter.failed_attempts(), 1);
            // The pairing in flight completes, or the invite stays burned.
            let result = if save_ok {
                Ok(())
            } else {
                Err("disk full".to_owned())
            };
            inviter.handle_authorized(Instant::ZERO, 1, result);
            let expected = if save_ok {
                InviteState::Used
            } else {
                InviteState::Burned
            };
            assert_eq!(inviter.state(), expected);
        }
    }
}
