//! The invite handshake (WIRE.md §6): scripted streams and seeded simulations.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::BTreeSet;

use crate::PeerId;
use crate::invite::handshake::{
    InviteState, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner, JoinerConfig,
    JoinerOutput, SessionRandom, StreamId,
};
use crate::invite::{InviteCode, Token};
use crate::naming::Name;
use crate::sim::{Clients, InviterEnd, JoinerEnd, LinkConfig, Pair, Tamper};
use crate::time::{Instant, UnixTime};

use super::*;

// ---------------------------------------------------------------------------
// invite_handshake

/// The invite's token in every handshake scenario.
const TOKEN: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
/// Wall-clock time at the start of every scenario.
const WALL: UnixTime = UnixTime::from_secs(1_800_000_000);
/// The inviter's peer (pool index).
const INVITER: usize = 1;

fn invite_for(token: [u8; 8]) -> InviteCode {
    InviteCode {
        token: Token::from_bytes(token),
        relay_ip: Ipv4Addr::new(192, 0, 2, 1),
        relay_port: 7777,
        relay_peer: peer(0),
        network: None,
        inviter: peer(INVITER),
    }
}

/// The invite handshake (WIRE.md §6). The first byte picks the mode:
///
/// - even: a **script** drives one [`Inviter`] and up to four streams
///   (honest joiners, joiners with a wrong token, raw attackers) through
///   arbitrary deliveries in any split, injected bytes both ways, EOFs,
///   resets, time steps, save results (`Ok`, `Err`, unasked) and cancels;
/// - odd: a seeded [`Pair`] with a random link (delay, chunking, loss) and
///   up to eight joiners in two waves, each honest, wrong-token or
///   tampering ([`Tamper`]), with an inviter whose saves may fail.
///
/// # Panics
/// When a peer without the token is authorized or told it is paired, when
/// a joiner is told it is paired but the inviter did not save it, when two
/// pairings happen or are saved at once, when a finished joiner or invite
/// acts again or a terminal invite state changes, when more failed
/// attempts are evaluated than the limit allows, when a session outlives
/// its deadline, or when one honest joiner on a clean link does not pair.
pub fn invite_handshake(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        let _ = Script::new(&mut input).run(&mut input);
    } else {
        handshake_sim(&mut input);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A joiner holding the invite's token.
    Honest,
    /// A joiner with a token that differs in one bit.
    WrongToken,
    /// No joiner: only what the script injects.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Paired,
    Failed,
}

/// One stream of the script and both of its directions.
struct Actor {
    kind: Kind,
    peer: PeerId,
    stream: StreamId,
    name: Option<Name>,
    token: [u8; 8],
    deadline: Duration,
    joiner: Option<Joiner>,
    opened: bool,
    /// Joiner -> inviter, not yet delivered.
    to_inviter: Vec<u8>,
    joiner_fin: bool,
    joiner_fin_sent: bool,
    joiner_rst: bool,
    joiner_rst_sent: bool,
    /// Inviter -> joiner, not yet delivered.
    to_joiner: Vec<u8>,
    inviter_fin: bool,
    inviter_fin_sent: bool,
    inviter_rst: bool,
    inviter_rst_sent: bool,
    outcome: Option<Outcome>,
    /// The joiner finished and its last outputs were carried out.
    done: bool,
}

/// The invite's state, whether it finished, and each joiner's outcome.
type Snapshot = (InviteState, bool, Vec<Option<Outcome>>);

struct Script {
    now: Instant,
    inviter: Inviter,
    inviter_name: Option<Name>,
    max_failed: u32,
    max_concurrent: usize,
    /// Peers the inviter said it blocked.
    blocked: BTreeSet<PeerId>,
    actors: Vec<Actor>,
    /// The stream whose `Authorize` awaits `handle_authorized`.
    pending_save: Option<StreamId>,
    /// The stream whose successful save is being reported right now.
    answering: Option<StreamId>,
    /// The stream whose pairing the inviter saved and confirmed.
    saved: Option<StreamId>,
    sessions_opened: u64,
}

impl Script {
    fn new(input: &mut Input<'_>) -> Self {
        let inviter_name = pick_name(input);
        let max_failed = 1 + input.below(8) as u32;
        let max_concurrent = 1 + input.below(4);
        let stream_deadline = Duration::from_millis(250 * (1 + u64::from(input.u8())));
        let hello_deadline = Duration::from_millis(250 * (1 + u64::from(input.u8())));
        let max_strikes = 1 + input.below(4) as u32;
        let expiry = Duration::from_secs(u64::from(input.u8()));
        let config = InviterConfig::new(WALL.saturating_add(expiry))
            .with_name(inviter_name.clone())
            .with_max_failed_attempts(max_failed)
            .with_max_concurrent(max_concurrent)
            .with_stream_deadline(stream_deadline)
            .with_hello_deadline(hello_deadline)
            .with_max_strikes_per_peer(max_strikes);
        let inviter = Inviter::new(Token::from_bytes(TOKEN), config, Instant::ZERO, WALL);
        let count = 1 + input.below(4);
        // Several streams may come from one peer (one identity retrying,
        // or squatting the slots).
        let peers = 1 + input.below(count);
        let actors = (0..count)
            .map(|i| {
                let kind = match input.below(4) {
                    0 | 1 => Kind::Honest,
                    2 => Kind::WrongToken,
                    _ => Kind::Raw,
                };
                let mut token = TOKEN;
                if kind == Kind::WrongToken {
                    let bit = input.below(64);
                    token[bit / 8] ^= 1 << (bit % 8);
                }
                Actor {
                    kind,
                    peer: peer(2 + i % peers),
                    stream: i as StreamId,
                    name: pick_name(input),
                    token,
                    deadline: Duration::from_millis(250 * (1 + u64::from(input.u8()))),
                    joiner: None,
                    opened: false,
                    to_inviter: Vec::new(),
                    joiner_fin: false,
                    joiner_fin_sent: false,
                    joiner_rst: false,
                    joiner_rst_sent: false,
                    to_joiner: Vec::new(),
                    inviter_fin: false,
                    inviter_fin_sent: false,
                    inviter_rst: false,
                    inviter_rst_sent: false,
                    outcome: None,
                    done: false,
                }
            })
            .collect();
        let mut script = Script {
            now: Instant::ZERO,
            inviter,
            inviter_name,
            max_failed,
            max_concurrent,
            blocked: BTreeSet::new(),
            actors,
            pending_save: None,
            answering: None,
            saved: None,
            sessions_opened: 0,
        };
        script.drain();
        script
    }

    fn run(mut self, input: &mut Input<'_>) -> Self {
        let mut ops = 0;
        while !input.is_empty() && ops < 512 {
            ops += 1;
            let op = input.u8();
            let a = input.below(self.actors.len());
            let before = self.snapshot();
            match op % 14 {
                0 | 1 => self.open(a),
                2 => {
                    let k = 1 + usize::from(input.u8());
                    self.deliver_to_inviter(a, k);
                }
                3 => {
                    let k = 1 + usize::from(input.u8());
                    self.deliver_to_joiner(a, k);
                }
                4 => {
                    // An attacker's bytes on the stream, to the inviter.
                    let bytes = input.bytes(96);
                    if self.actors[a].opened {
                        let stream = self.actors[a].stream;
                        self.inviter.handle_data(self.now, stream, bytes);
                    }
                }
                5 => {
                    // Forged bytes from "the inviter", to the joiner.
                    let bytes = input.bytes(96);
                    let now = self.now;
                    if let Some(j) = &mut self.actors[a].joiner {
                        j.handle_data(now, bytes);
                    }
                }
                6 => {
                    // The remote closes early (an attacker, or the link).
                    if self.actors[a].opened {
                        let stream = self.actors[a].stream;
                        self.inviter.handle_eof(self.now, stream);
                    }
                }
                7 => {
                    let now = self.now;
                    if let Some(j) = &mut self.actors[a].joiner {
                        j.handle_eof(now);
                    }
                }
                8 => {
                    // The link breaks the stream: both ends see a reset.
                    let now = self.now;
                    let actor = &mut self.actors[a];
                    if actor.opened {
                        self.inviter.handle_reset(now, actor.stream);
                        if let Some(j) = &mut actor.joiner {
                            j.handle_reset(now);
                        }
                    }
                }
                9 => {
                    let step = Duration::from_millis(100 * u64::from(input.u8()));
                    self.advance(self.now + step);
                }
                10 => {
                    // Wake at the earliest timer, as an adapter does.
                    if let Some(t) = self.next_timeout() {
                        self.advance(t.max(self.now));
                    }
                }
                11 => {
                    let ok = input.bool();
                    match self.pending_save {
                        Some(stream) => self.answer(stream, ok),
                        None => {
                            // A save report nobody asked for pairs nobody.
                            let stream = self.actors[a].stream;
                            self.inviter.handle_authorized(self.now, stream, Ok(()));
                        }
                    }
                }
                12 => self.inviter.cancel(),
                _ => self.pump(a),
            }
            self.drain();
            self.check(before);
        }
        self.settle()
    }

    fn next_timeout(&self) -> Option<Instant> {
        let joiners = self
            .actors
            .iter()
            .filter_map(|a| a.joiner.as_ref().and_then(Joiner::poll_timeout));
        joiners.chain(self.inviter.poll_timeout()).min()
    }

    fn advance(&mut self, to: Instant) {
        self.now = self.now.max(to);
        let now = self.now;
        self.inviter.handle_timeout(now);
        for actor in &mut self.actors {
            if let Some(j) = &mut actor.joiner {
                j.handle_timeout(now);
            }
        }
    }

    fn open(&mut self, a: usize) {
        let now = self.now;
        let actor = &mut self.actors[a];
        if actor.opened {
            // Stream IDs are never reused (the adapter's contract).
            return;
        }
        actor.opened = true;
        if actor.kind != Kind::Raw {
            let i = a as u8;
            let random = SessionRandom {
                ephemeral: [0x40 + i; 32],
                nonce: [0x80 + i; 24],
            };
            let config = JoinerConfig::default()
                .with_name(actor.name.clone())
                .with_deadline(actor.deadline);
            actor.joiner = Some(Joiner::new(&invite_for(actor.token), config, now, random));
        }
        // Fresh randomness for every inviter session.
        self.sessions_opened += 1;
        let mut ephemeral = [0x11u8; 32];
        ephemeral[8..16].copy_from_slice(&self.sessions_opened.to_le_bytes());
        let mut nonce = [0x22u8; 24];
        nonce[8..16].copy_from_slice(&self.sessions_opened.to_le_bytes());
        let stream = actor.stream;
        let peer = actor.peer;
        self.inviter
            .handle_stream(now, stream, peer, SessionRandom { ephemeral, nonce });
    }

    /// Delivers the joiner's next bytes (a reset first, an EOF last);
    /// returns whether anything was delivered.
    fn deliver_to_inviter(&mut self, a: usize, k: usize) -> bool {
        let now = self.now;
        let actor = &mut self.actors[a];
        if !actor.opened {
            return false;
        }
        if actor.joiner_rst && !actor.joiner_rst_sent {
            actor.joiner_rst_sent = true;
            actor.to_inviter.clear();
            self.inviter.handle_reset(now, actor.stream);
            return true;
        }
        if !actor.to_inviter.is_empty() {
            let n = k.clamp(1, actor.to_inviter.len());
            let chunk: Vec<u8> = actor.to_inviter.drain(..n).collect();
            self.inviter.handle_data(now, actor.stream, &chunk);
            return true;
        }
        if actor.joiner_fin && !actor.joiner_fin_sent {
            actor.joiner_fin_sent = true;
            self.inviter.handle_eof(now, actor.stream);
            return true;
        }
        false
    }

    /// Delivers the inviter's next bytes to the joiner (a reset first, an
    /// EOF last); returns whether anything was delivered.
    fn deliver_to_joiner(&mut self, a: usize, k: usize) -> bool {
        let now = self.now;
        let actor = &mut self.actors[a];
        let Some(joiner) = &mut actor.joiner else {
            // A raw stream: what the inviter sends goes nowhere.
            actor.to_joiner.clear();
            return false;
        };
        if actor.inviter_rst && !actor.inviter_rst_sent {
            actor.inviter_rst_sent = true;
            actor.to_joiner.clear();
            joiner.handle_reset(now);
            return true;
        }
        if !actor.to_joiner.is_empty() {
            let n = k.clamp(1, actor.to_joiner.len());
            let chunk: Vec<u8> = actor.to_joiner.drain(..n).collect();
            joiner.handle_data(now, &chunk);
            return true;
        }
        if actor.inviter_fin && !actor.inviter_fin_sent {
            actor.inviter_fin_sent = true;
            joiner.handle_eof(now);
            return true;
        }
        false
    }

    /// Delivers everything both ways until the stream is quiet.
    fn pump(&mut self, a: usize) {
        for _ in 0..64 {
            let to_inviter = self.deliver_to_inviter(a, usize::MAX);
            self.drain();
            let to_joiner = self.deliver_to_joiner(a, usize::MAX);
            self.drain();
            if !to_inviter && !to_joiner {
                return;
            }
        }
    }

    fn answer(&mut self, stream: StreamId, ok: bool) {
        self.pending_save = None;
        if ok {
            self.answering = Some(stream);
            self.inviter.handle_authorized(self.now, stream, Ok(()));
        } else {
            self.inviter
                .handle_authorized(self.now, stream, Err("disk full".to_owned()));
        }
        self.drain();
        self.answering = None;
    }

    fn actor_of(&mut self, stream: StreamId) -> &mut Actor {
        match self.actors.iter_mut().find(|a| a.stream == stream) {
            Some(a) => a,
            None => panic!("inviter output for stream {stream}, which nobody opened"),
        }
    }

    /// Carries out every output of every machine and checks each.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(out) = self.inviter.poll_output() {
                any = true;
                self.inviter_output(out);
            }
            for a in 0..self.actors.len() {
                any |= self.joiner_outputs(a);
            }
            if !any {
                return;
            }
        }
    }

    fn inviter_output(&mut self, out: InviterOutput) {
        match out {
            InviterOutput::Send { stream, data } => {
                let actor = self.actor_of(stream);
                assert!(
                    actor.opened,
                    "inviter wrote to stream {stream} before it opened"
                );
                assert!(
                    !actor.inviter_fin && !actor.inviter_rst,
                    "inviter wrote to stream {stream} after closing it"
                );
                actor.to_joiner.extend_from_slice(&data);
            }
            InviterOutput::Finish { stream } => self.actor_of(stream).inviter_fin = true,
            InviterOutput::Reset { stream } => self.actor_of(stream).inviter_rst = true,
            InviterOutput::Authorize { stream, peer, name } => {
                assert!(
                    !self.blocked.contains(&peer),
                    "Authorize for a peer that was blocked"
                );
                let state = self.inviter.state();
                let (pending, saved) = (self.pending_save, self.saved);
                let actor = self.actor_of(stream);
                assert_eq!(
                    peer, actor.peer,
                    "Authorize names another peer than the stream's"
                );
                assert!(
                    actor.kind == Kind::Honest,
                    "Authorize for a {:?} stream: a peer without the token was authorized",
                    actor.kind
                );
                assert_eq!(name, actor.name, "the joiner's name arrived changed");
                assert!(pending.is_none(), "two pairings awaiting a save at once");
                assert!(saved.is_none(), "Authorize after the invite was used");
                assert_eq!(
                    state,
                    InviteState::Taken,
                    "Authorize without taking the invite"
                );
                self.pending_save = Some(stream);
            }
            InviterOutput::Event(event) => match event {
                InviterEvent::Paired { peer, name } => {
                    let Some(stream) = self.answering else {
                        panic!("Paired without a successful save report");
                    };
                    assert!(self.saved.is_none(), "a second pairing was saved");
                    let actor = self.actor_of(stream);
                    assert_eq!(peer, actor.peer, "Paired names another peer");
                    assert_eq!(name, actor.name, "Paired with another name");
                    self.saved = Some(stream);
                }
                InviterEvent::Acknowledged { peer } => {
                    let saved = self
                        .saved
                        .and_then(|s| self.actors.iter().find(|a| a.stream == s))
                        .map(|a| a.peer);
                    assert_eq!(
                        saved,
                        Some(peer),
                        "Acknowledged from a peer that did not pair"
                    );
                }
                InviterEvent::Burned => {
                    assert_eq!(self.inviter.state(), InviteState::Burned);
                }
                InviterEvent::Expired => {
                    assert_eq!(self.inviter.state(), InviteState::Expired);
                }
                InviterEvent::PeerBlocked { peer } => {
                    assert!(
                        self.inviter.is_blocked(&peer),
                        "blocked, but not by its count"
                    );
                    assert!(self.blocked.insert(peer), "blocked twice");
                }
                InviterEvent::AttemptFailed { .. } => {}
            },
        }
    }

    /// Carries out a joiner's outputs; returns whether there were any.
    fn joiner_outputs(&mut self, a: usize) -> bool {
        let saved = self.saved;
        let inviter_name = self.inviter_name.clone();
        let actor = &mut self.actors[a];
        let Some(joiner) = &mut actor.joiner else {
            return false;
        };
        let mut any = false;
        while let Some(out) = joiner.poll_output() {
            any = true;
            assert!(!actor.done, "joiner {a} acted after it finished: {out:?}");
            assert!(
                actor.outcome.is_none()
                    || matches!(out, JoinerOutput::Finish | JoinerOutput::Reset),
                "joiner {a} acted after its outcome: {out:?}"
            );
            match out {
                JoinerOutput::Send(data) => {
                    assert!(
                        !actor.joiner_fin && !actor.joiner_rst,
                        "joiner {a} wrote after closing"
                    );
                    actor.to_inviter.extend_from_slice(&data);
                }
                JoinerOutput::Finish => actor.joiner_fin = true,
                JoinerOutput::Reset => actor.joiner_rst = true,
                JoinerOutput::Paired { peer, name } => {
                    assert!(
                        actor.kind == Kind::Honest,
                        "a {:?} joiner was told it is paired",
                        actor.kind
                    );
                    assert_eq!(peer, self::peer(INVITER), "paired with another inviter");
                    assert_eq!(
                        saved,
                        Some(actor.stream),
                        "joiner {a} told it is paired but the inviter did not save its pairing"
                    );
                    assert_eq!(name, inviter_name, "the inviter's name arrived changed");
                    actor.outcome = Some(Outcome::Paired);
                }
                JoinerOutput::Failed(_) => actor.outcome = Some(Outcome::Failed),
            }
        }
        assert_eq!(
            joiner.is_finished(),
            actor.outcome.is_some(),
            "joiner {a} finished without an outcome, or the reverse"
        );
        actor.done = joiner.is_finished();
        any
    }

    fn snapshot(&self) -> Snapshot {
        (
            self.inviter.state(),
            self.inviter.is_finished(),
            self.actors.iter().map(|a| a.outcome).collect(),
        )
    }

    fn check(&self, before: Snapshot) {
        let (state_before, finished_before, outcomes_before) = before;
        let state = self.inviter.state();
        match state_before {
            InviteState::Used | InviteState::Expired => assert_eq!(
                state, state_before,
                "the terminal invite state {state_before:?} changed"
            ),
            // Only the pairing whose save was in flight may still complete.
            InviteState::Burned | InviteState::Cancelled => assert!(
                state == state_before || (state == InviteState::Used && self.saved.is_some()),
                "a {state_before:?} invite became {state:?}"
            ),
            InviteState::Open | InviteState::Taken => {}
        }
        if finished_before {
            assert!(
                self.inviter.is_finished(),
                "a finished inviter came back to life"
            );
        }
        assert_eq!(
            state == InviteState::Used,
            self.saved.is_some(),
            "state {state:?} but saved {:?}",
            self.saved
        );
        let saved_peer = self
            .saved
            .and_then(|s| self.actors.iter().find(|a| a.stream == s))
            .map(|a| a.peer);
        for a in &self.actors {
            let n = self.inviter.sessions_of(&a.peer);
            assert!(n <= 1, "{n} sessions at once for one peer");
            if self.blocked.contains(&a.peer)
                && self.pending_save.is_none()
                && saved_peer != Some(a.peer)
            {
                assert_eq!(n, 0, "a blocked peer still has a session");
            }
        }
        assert!(
            self.inviter.active_sessions() <= self.max_concurrent,
            "{} sessions, limit {}",
            self.inviter.active_sessions(),
            self.max_concurrent
        );
        assert!(
            self.inviter.failed_attempts() <= self.max_failed,
            "{} failed attempts were evaluated, limit {}",
            self.inviter.failed_attempts(),
            self.max_failed
        );
        for (actor, outcome) in self.actors.iter().zip(outcomes_before) {
            if outcome.is_some() {
                assert_eq!(
                    actor.outcome, outcome,
                    "a finished joiner changed its outcome"
                );
            }
        }
    }

    /// Answers every save, delivers everything and lets every timer fire:
    /// afterwards no session may be left and every joiner has finished.
    fn settle(mut self) -> Self {
        for _ in 0..64 {
            let before = self.snapshot();
            if let Some(stream) = self.pending_save {
                self.answer(stream, true);
            }
            for a in 0..self.actors.len() {
                self.pump(a);
            }
            match self.next_timeout() {
                Some(t) => self.advance(t.max(self.now)),
                None => break,
            }
            self.drain();
            self.check(before);
        }
        let before = self.snapshot();
        self.advance(self.now + Duration::from_secs(2 * 86_400));
        self.drain();
        if let Some(stream) = self.pending_save {
            self.answer(stream, true);
        }
        for a in 0..self.actors.len() {
            self.pump(a);
        }
        self.drain();
        self.check(before);
        assert_eq!(
            self.inviter.active_sessions(),
            0,
            "sessions outlived their deadline"
        );
        assert!(
            self.inviter.is_finished(),
            "invite {:?} after its expiry",
            self.inviter.state()
        );
        assert_eq!(self.inviter.poll_timeout(), None);
        for (a, actor) in self.actors.iter().enumerate() {
            if let Some(j) = &actor.joiner {
                assert!(
                    j.is_finished(),
                    "joiner {a} still waiting after its deadline"
                );
                assert_eq!(j.poll_timeout(), None);
            }
        }
        self
    }
}

/// One joiner of the simulation, as set up.
struct SimJoiner {
    right_token: bool,
    tamper: Tamper,
    name: Option<Name>,
    deadline: Duration,
}

fn handshake_sim(input: &mut Input<'_>) {
    let seed = input.u64();
    let min_delay = Duration::from_millis(u64::from(input.u8()));
    let max_delay = min_delay + Duration::from_millis(u64::from(input.u16() % 1000));
    let loss = if input.bool() {
        u32::from(input.u16()) * 4
    } else {
        0
    };
    let link = LinkConfig {
        min_delay,
        max_delay,
        loss_per_million: loss,
        max_chunk: 1 + input.below(64),
    };
    let inviter_name = pick_name(input);
    let expiry = Duration::from_millis(10 * u64::from(input.u16()));
    let stream_deadline = Duration::from_millis(100 * (1 + u64::from(input.u8())));
    let max_failed = 1 + input.below(6) as u32;
    let config = InviterConfig::new(WALL.saturating_add(expiry))
        .with_name(inviter_name.clone())
        .with_max_failed_attempts(max_failed)
        .with_max_concurrent(1 + input.below(4))
        .with_stream_deadline(stream_deadline);
    let mut inviter = InviterEnd::new(Inviter::new(
        Token::from_bytes(TOKEN),
        config,
        Instant::ZERO,
        WALL,
    ));
    inviter.save_fails = input.below(4) == 0;
    let save_fails = inviter.save_fails;
    let mut pair = Pair::new(inviter, Clients::default(), seed, link);
    let waves = 1 + input.below(2);
    let mut joiners: Vec<SimJoiner> = Vec::new();
    for _ in 0..waves {
        for _ in 0..1 + input.below(4) {
            let index = joiners.len();
            let right_token = input.below(4) != 0;
            let tamper = match input.below(10) {
                0..=3 => Tamper::None,
                4 => Tamper::TruncateFrame(usize::from(input.u8())),
                5 => Tamper::OversizeFrame,
                6 => Tamper::GarbageFrame,
                7 => Tamper::GarbageHello,
                8 => Tamper::Silent,
                _ => Tamper::SilentAfterHello,
            };
            let mut token = TOKEN;
            if !right_token {
                let bit = input.below(64);
                token[bit / 8] ^= 1 << (bit % 8);
            }
            let name = pick_name(input);
            let deadline = Duration::from_millis(100 * (1 + u64::from(input.u8())));
            let i = index as u8;
            let random = SessionRandom {
                ephemeral: [0x40 + i; 32],
                nonce: [0x80 + i; 24],
            };
            let config = JoinerConfig::default()
                .with_name(name.clone())
                .with_deadline(deadline);
            let machine = Joiner::new(&invite_for(token), config, pair.now(), random);
            pair.b.0.push(JoinerEnd::new(
                machine,
                peer(2 + index),
                index as StreamId + 1,
                tamper.clone(),
            ));
            joiners.push(SimJoiner {
                right_token,
                tamper,
                name,
                deadline,
            });
        }
        assert!(
            pair.drive_bounded(200_000),
            "the simulation did not settle (seed {seed})"
        );
    }

    let (i, c) = (&pair.a, &pair.b);
    assert!(
        i.authorized.len() <= 1,
        "invite used twice: {:?}",
        i.authorized
    );
    for (p, n) in &i.authorized {
        let index = pool_index(p).and_then(|x| x.checked_sub(2));
        let Some(j) = index.and_then(|x| joiners.get(x)) else {
            panic!("authorized {p}, who never joined");
        };
        assert!(
            j.right_token && j.tamper == Tamper::None,
            "authorized a joiner without the token or that tampered ({:?})",
            j.tamper
        );
        assert_eq!(*n, j.name, "authorized with another name");
    }
    for (end, j) in c.0.iter().zip(&joiners) {
        assert!(end.is_finished(), "joiner {} never finished", end.me);
        if let Some((p, n)) = &end.paired {
            assert!(
                j.right_token && j.tamper == Tamper::None,
                "a joiner without the token paired"
            );
            assert_eq!(*p, peer(INVITER), "paired with another inviter");
            assert_eq!(*n, inviter_name, "the inviter's name arrived changed");
            assert!(
                i.authorized.iter().any(|(a, _)| *a == end.me),
                "joiner {} paired but the inviter did not save it",
                end.me
            );
        }
    }
    assert_eq!(i.machine.active_sessions(), 0, "sessions left behind");
    // Liveness: one honest joiner on a clean link, with time for the four
    // legs of the handshake, pairs.
    if let [j] = joiners.as_slice() {
        let legs = max_delay * 4;
        if j.right_token
            && j.tamper == Tamper::None
            && loss == 0
            && !save_fails
            && legs < j.deadline
            && legs < stream_deadline
            && legs < expiry
        {
            assert!(
                c.0[0].paired.is_some(),
                "an honest joiner did not pair: {:?} (seed {seed})",
                c.0[0].failed
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Script header: inviter named `home`, 3 attempts, 2 sessions, 30 s
    /// per stream and for the hello, 3 strikes per peer, expiry in 200 s,
    /// then one actor (one peer) of `kind` named `laptop` with 30 s; then
    /// `ops`.
    fn script(kind: u8, ops: &[u8]) -> Script {
        let mut data = vec![0, 2, 1, 120, 120, 2, 200, 0, 0, kind];
        if kind == 2 {
            data.push(5);
        }
        data.extend([1, 120]);
        data.extend(ops);
        let mut input = Input::new(&data);
        Script::new(&mut input).run(&mut input)
    }

    // Ops: open 0, pump 13, answer 11 (then ok).
    const PAIR: [u8; 9] = [0, 0, 13, 0, 11, 0, 1, 13, 0];

    #[test]
    fn the_script_pairs_an_honest_joiner() {
        let s = script(0, &PAIR);
        assert_eq!(s.saved, Some(0));
        assert_eq!(s.actors[0].outcome, Some(Outcome::Paired));
        assert_eq!(s.inviter.state(), InviteState::Used);
    }

    #[test]
    fn the_script_refuses_a_wrong_token_and_a_failed_save() {
        let s = script(2, &PAIR);
        assert_eq!(s.saved, None);
        assert_eq!(s.actors[0].outcome, Some(Outcome::Failed));
        assert_eq!(s.inviter.failed_attempts(), 1);
        let s = script(0, &[0, 0, 13, 0, 11, 0, 0, 13, 0]);
        assert_eq!(s.saved, None);
        assert_eq!(s.actors[0].outcome, Some(Outcome::Failed));
        assert_eq!(s.inviter.state(), InviteState::Expired);
    }

    #[test]
    #[should_panic(expected = "a peer without the token was authorized")]
    fn the_script_catches_an_authorized_attacker() {
        let mut s = script(3, &[0, 0]);
        s.inviter_output(InviterOutput::Authorize {
            stream: 0,
            peer: peer(2),
            name: None,
        });
    }
}
