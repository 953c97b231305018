//! Deterministic simulation of two machines joined by streams.
//!
//! [`Pair`] holds two [`Endpoint`]s, a virtual clock and a seeded link in
//! each direction. The link delivers each stream's bytes in order (as a
//! libp2p stream does) but splits writes into random chunks, delays each
//! chunk by a random time, interleaves different streams freely, and can
//! break a stream (both ends see a reset) with a given probability per
//! chunk. Everything random comes from one seed, so a failing run is
//! replayed exactly from the seed it prints.
//!
//! Modelled on quinn-proto's test `Pair`: [`Pair::step`] moves time to the
//! next event and delivers it, [`Pair::drive`] steps until nothing is left
//! to do, [`Pair::drive_bounded`] gives up after `n` steps.
//!
//! The invite handshake endpoints live here too ([`InviterEnd`],
//! [`JoinerEnd`], and [`Clients`] for several joiners at once), so unit
//! tests, the 1,000-seed scenarios and the fuzz target share them.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::PeerId;
use crate::invite::handshake::{
    Failure, Inviter, InviterEvent, InviterOutput, Joiner, JoinerOutput, SessionRandom, StreamId,
};
use crate::naming::Name;
use crate::time::Instant;

/// What an endpoint puts on the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Open a stream (the other side learns who opened it).
    Open {
        /// The stream.
        stream: StreamId,
        /// The opener's peer ID.
        from: PeerId,
    },
    /// Bytes on a stream.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close the write side of a stream.
    Finish {
        /// The stream.
        stream: StreamId,
    },
    /// Reset a stream.
    Reset {
        /// The stream.
        stream: StreamId,
    },
}

/// One side of a [`Pair`].
pub trait Endpoint {
    /// The other side opened `stream`.
    fn handle_open(&mut self, now: Instant, stream: StreamId, from: PeerId, rng: &mut dyn RngCore);
    /// Bytes arrived on `stream`.
    fn handle_data(&mut self, now: Instant, stream: StreamId, data: &[u8]);
    /// The other side finished `stream`.
    fn handle_eof(&mut self, now: Instant, stream: StreamId);
    /// `stream` was reset (by the other side or the link).
    fn handle_reset(&mut self, now: Instant, stream: StreamId);
    /// Time passed.
    fn handle_timeout(&mut self, now: Instant);
    /// When to call `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The next thing to put on the link.
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit>;
}

/// The link's behaviour.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Least delay of a chunk.
    pub min_delay: Duration,
    /// Greatest delay of a chunk.
    pub max_delay: Duration,
    /// Chance, per million, that a chunk breaks its stream.
    pub loss_per_million: u32,
    /// Largest chunk a write is split into (at least 1).
    pub max_chunk: usize,
}

impl Default for LinkConfig {
    /// A relayed path: 20-120 ms, chunks of up to 16 bytes, no loss.
    fn default() -> Self {
        LinkConfig {
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(120),
            loss_per_million: 0,
            max_chunk: 16,
        }
    }
}

impl LinkConfig {
    /// Sets the loss chance per million chunks.
    pub fn with_loss_per_million(mut self, p: u32) -> Self {
        self.loss_per_million = p;
        self
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Open(PeerId),
    Data(Vec<u8>),
    Eof,
    Reset,
}

#[derive(Debug)]
struct InFlight {
    at: Instant,
    seq: u64,
    stream: StreamId,
    segment: Segment,
}

/// Which way a segment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    AtoB,
    BtoA,
}

/// Two endpoints, a virtual clock and a seeded link.
pub struct Pair<A, B> {
    /// The first endpoint (by convention the one that accepts streams).
    pub a: A,
    /// The second endpoint.
    pub b: B,
    now: Instant,
    rng: ChaCha8Rng,
    link: LinkConfig,
    seq: u64,
    flight: Vec<(Way, InFlight)>,
    /// Latest delivery time per (way, stream), so a stream stays in order.
    last: BTreeMap<(Way, StreamId), Instant>,
    /// Streams the link broke; later segments on them are dropped.
    broken: Vec<StreamId>,
    steps: u64,
}

impl<A: Endpoint, B: Endpoint> Pair<A, B> {
    /// A pair at time zero whose link draws from `seed`.
    pub fn new(a: A, b: B, seed: u64, link: LinkConfig) -> Self {
        Pair {
            a,
            b,
            now: Instant::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed),
            link,
            seq: 0,
            flight: Vec::new(),
            last: BTreeMap::new(),
            broken: Vec::new(),
            steps: 0,
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The pair's random source (for scenario set-up that must also
    /// replay from the seed).
    pub fn rng(&mut self) -> &mut dyn RngCore {
        &mut self.rng
    }

    /// Collects transmits, moves time to the next event and delivers it.
    /// Returns `false` when nothing is left to happen.
    pub fn step(&mut self) -> bool {
        self.collect();
        let next_flight = self.flight.iter().map(|(_, f)| f.at).min();
        let next = [next_flight, self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else { return false };
        self.steps += 1;
        self.now = self.now.max(at);
        let now = self.now;
        // Deliver everything due, in (time, sequence) order.
        let mut due: Vec<(Way, InFlight)> = Vec::new();
        let mut i = 0;
        while i < self.flight.len() {
            if self.flight[i].1.at <= now {
                due.push(self.flight.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|(_, f)| (f.at, f.seq));
        for (way, f) in due {
            self.deliver(way, f);
        }
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= now) {
            self.b.handle_timeout(now);
        }
        true
    }

    /// Steps until idle.
    ///
    /// # Panics
    /// After a million steps: a livelock is a bug worth a loud failure in a
    /// simulation.
    pub fn drive(&mut self) {
        assert!(
            self.drive_bounded(1_000_000),
            "simulation did not settle in 1,000,000 steps"
        );
    }

    /// Steps until `done` holds (checked before every step) or nothing is
    /// left to happen; returns whether `done` holds.
    ///
    /// # Panics
    /// After a million steps, as [`Pair::drive`].
    pub fn drive_until(&mut self, mut done: impl FnMut(&A, &B) -> bool) -> bool {
        for _ in 0..1_000_000 {
            self.collect();
            if done(&self.a, &self.b) {
                return true;
            }
            if !self.step() {
                return done(&self.a, &self.b);
            }
        }
        panic!("simulation did not settle in 1,000,000 steps");
    }

    /// Steps until idle or `n` steps; returns whether it became idle.
    pub fn drive_bounded(&mut self, n: u64) -> bool {
        for _ in 0..n {
            if !self.step() {
                return true;
            }
        }
        self.collect();
        self.flight.is_empty() && self.a.poll_timeout().is_none() && self.b.poll_timeout().is_none()
    }

    fn collect(&mut self) {
        let now = self.now;
        while let Some(t) = self.a.poll_transmit(now) {
            self.schedule(Way::AtoB, t);
        }
        while let Some(t) = self.b.poll_transmit(now) {
            self.schedule(Way::BtoA, t);
        }
    }

    fn delay(&mut self) -> Duration {
        let span = self
            .link
            .max_delay
            .saturating_sub(self.link.min_delay)
            .as_micros();
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        let extra = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        self.link.min_delay + Duration::from_micros(extra)
    }

    fn push(&mut self, way: Way, stream: StreamId, segment: Segment) {
        let at = self.now + self.delay();
        let last = self.last.entry((way, stream)).or_insert(Instant::ZERO);
        let at = at.max(*last);
        *last = at;
        self.seq += 1;
        self.flight.push((
            way,
            InFlight {
                at,
                seq: self.seq,
                stream,
                segment,
            },
        ));
    }

    fn schedule(&mut self, way: Way, t: Transmit) {
        match t {
            Transmit::Open { stream, from } => self.push(way, stream, Segment::Open(from)),
            Transmit::Data { stream, data } => {
                let max = self.link.max_chunk.max(1);
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let n = 1 + (self.rng.next_u32() as usize % max).min(rest.len() - 1);
                    let (chunk, tail) = rest.split_at(n);
                    self.push(way, stream, Segment::Data(chunk.to_vec()));
                    rest = tail;
                }
            }
            Transmit::Finish { stream } => self.push(way, stream, Segment::Eof),
            Transmit::Reset { stream } => self.push(way, stream, Segment::Reset),
        }
    }

    fn deliver(&mut self, way: Way, f: InFlight) {
        if self.broken.contains(&f.stream) {
            return;
        }
        let now = self.now;
        let lost = self.link.loss_per_million > 0
            && self.rng.next_u32() % 1_000_000 < self.link.loss_per_million;
        if lost && !matches!(f.segment, Segment::Reset) {
            // The stream breaks: both ends see a reset.
            self.broken.push(f.stream);
            self.a.handle_reset(now, f.stream);
            self.b.handle_reset(now, f.stream);
            return;
        }
        let rng = &mut self.rng;
        let to: &mut dyn Endpoint = match way {
            Way::AtoB => &mut self.b,
            Way::BtoA => &mut self.a,
        };
        match f.segment {
            Segment::Open(from) => to.handle_open(now, f.stream, from, rng),
            Segment::Data(d) => to.handle_data(now, f.stream, &d),
            Segment::Eof => to.handle_eof(now, f.stream),
            Segment::Reset => {
                self.broken.push(f.stream);
                to.handle_reset(now, f.stream);
            }
        }
    }
}

fn random(rng: &mut dyn RngCore) -> SessionRandom {
    let mut r = SessionRandom {
        ephemeral: [0; 32],
        nonce: [0; 24],
    };
    rng.fill_bytes(&mut r.ephemeral);
    rng.fill_bytes(&mut r.nonce);
    r
}

/// The inviter side: an [`Inviter`] that saves pairings at once (or fails
/// to, when told to) and records everything it was asked to do.
#[derive(Debug)]
pub struct InviterEnd {
    /// The machine.
    pub machine: Inviter,
    /// Every `Authorize` the machine asked for: the security property is
    /// that only joiners holding the token ever appear here.
    pub authorized: Vec<(PeerId, Option<Name>)>,
    /// Every event, in order.
    pub events: Vec<InviterEvent>,
    /// Whether saving a pairing fails.
    pub save_fails: bool,
    out: VecDeque<Transmit>,
}

impl InviterEnd {
    /// Wraps an inviter.
    pub fn new(machine: Inviter) -> Self {
        InviterEnd {
            machine,
            authorized: Vec::new(),
            events: Vec::new(),
            save_fails: false,
            out: VecDeque::new(),
        }
    }

    fn pump(&mut self, now: Instant) {
        while let Some(o) = self.machine.poll_output() {
            match o {
                InviterOutput::Send { stream, data } => {
                    self.out.push_back(Transmit::Data { stream, data })
                }
                InviterOutput::Finish { stream } => self.out.push_back(Transmit::Finish { stream }),
                InviterOutput::Reset { stream } => self.out.push_back(Transmit::Reset { stream }),
                InviterOutput::Authorize { stream, peer, name } => {
                    self.authorized.push((peer, name));
                    let result = if self.save_fails {
                        Err("disk full".to_owned())
                    } else {
                        Ok(())
                    };
                    if self.save_fails {
                        self.authorized.pop();
                    }
                    self.machine.handle_authorized(now, stream, result);
                }
                InviterOutput::Event(e) => self.events.push(e),
            }
        }
    }
}

impl Endpoint for InviterEnd {
    fn handle_open(&mut self, now: Instant, stream: StreamId, from: PeerId, rng: &mut dyn RngCore) {
        self.machine.handle_stream(now, stream, from, random(rng));
        self.pump(now);
    }
    fn handle_data(&mut self, now: Instant, stream: StreamId, data: &[u8]) {
        self.machine.handle_data(now, stream, data);
        self.pump(now);
    }
    fn handle_eof(&mut self, now: Instant, stream: StreamId) {
        self.machine.handle_eof(now, stream);
        self.pump(now);
    }
    fn handle_reset(&mut self, now: Instant, stream: StreamId) {
        self.machine.handle_reset(now, stream);
        self.pump(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
        self.pump(now);
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.machine.poll_timeout()
    }
    fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        self.pump(now);
        self.out.pop_front()
    }
}

/// How a [`JoinerEnd`] misbehaves, to test the inviter's defences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// Honest.
    None,
    /// Sends only the first `n` bytes of its name frame, then finishes.
    TruncateFrame(usize),
    /// Replaces its name frame with a length prefix over 4096 and junk.
    OversizeFrame,
    /// Replaces its name frame with a well-formed frame of random bytes.
    GarbageFrame,
    /// Replaces its hello with random bytes (of the hello's length).
    GarbageHello,
    /// Opens the stream and then sends nothing.
    Silent,
    /// Sends its hello and then nothing.
    SilentAfterHello,
}

/// One joiner on its own stream.
#[derive(Debug)]
pub struct JoinerEnd {
    /// The machine.
    pub machine: Joiner,
    /// This joiner's peer ID.
    pub me: PeerId,
    /// Its stream.
    pub stream: StreamId,
    /// How it misbehaves.
    pub tamper: Tamper,
    /// `Paired` outcome, if any.
    pub paired: Option<(PeerId, Option<Name>)>,
    /// `Failed` outcome, if any.
    pub failed: Option<Failure>,
    sends: u32,
    opened: bool,
    gone: bool,
    junk: u64,
    out: VecDeque<Transmit>,
}

impl JoinerEnd {
    /// Wraps a joiner that will open `stream` as peer `me`.
    pub fn new(machine: Joiner, me: PeerId, stream: StreamId, tamper: Tamper) -> Self {
        JoinerEnd {
            machine,
            me,
            stream,
            tamper,
            paired: None,
            failed: None,
            sends: 0,
            opened: false,
            gone: false,
            junk: stream.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            out: VecDeque::new(),
        }
    }

    /// Whether the join ended, either way.
    pub fn is_finished(&self) -> bool {
        self.paired.is_some() || self.failed.is_some()
    }

    fn junk(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.junk ^= self.junk << 13;
                self.junk ^= self.junk >> 7;
                self.junk ^= self.junk << 17;
                self.junk as u8
            })
            .collect()
    }

    fn send(&mut self, data: Vec<u8>) {
        self.sends += 1;
        let stream = self.stream;
        let data = match (&self.tamper, self.sends) {
            (Tamper::Silent, _) | (Tamper::SilentAfterHello, 2..) => return,
            (Tamper::GarbageHello, 1) => self.junk(data.len()),
            (Tamper::TruncateFrame(n), 2) => {
                let n = (*n).min(data.len().saturating_sub(1));
                self.out.push_back(Transmit::Data {
                    stream,
                    data: data[..n].to_vec(),
                });
                self.out.push_back(Transmit::Finish { stream });
                self.gone = true;
                return;
            }
            (Tamper::OversizeFrame, 2) => {
                let mut d = vec![0x10, 0x01];
                d.extend(self.junk(64));
                d
            }
            (Tamper::GarbageFrame, 2) => {
                let mut d = data.clone();
                let body = self.junk(d.len() - 2);
                d[2..].copy_from_slice(&body);
                d
            }
            _ => data,
        };
        self.out.push_back(Transmit::Data { stream, data });
    }

    fn pump(&mut self) {
        if !self.opened {
            self.opened = true;
            self.out.push_back(Transmit::Open {
                stream: self.stream,
                from: self.me,
            });
        }
        while let Some(o) = self.machine.poll_output() {
            let stream = self.stream;
            match o {
                JoinerOutput::Send(d) if !self.gone => self.send(d),
                JoinerOutput::Send(_) => {}
                JoinerOutput::Finish if !self.gone => {
                    self.gone = true;
                    self.out.push_back(Transmit::Finish { stream });
                }
                JoinerOutput::Reset if !self.gone => {
                    self.gone = true;
                    self.out.push_back(Transmit::Reset { stream });
                }
                JoinerOutput::Finish | JoinerOutput::Reset => {}
                JoinerOutput::Paired { peer, name } => self.paired = Some((peer, name)),
                JoinerOutput::Failed(f) => self.failed = Some(f),
            }
        }
    }

    fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.machine.handle_data(now, data);
        self.pump();
    }
    fn handle_eof(&mut self, now: Instant) {
        self.machine.handle_eof(now);
        self.pump();
    }
    fn handle_reset(&mut self, now: Instant) {
        self.gone = true;
        self.machine.handle_reset(now);
        self.pump();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.machine.handle_timeout(now);
        self.pump();
    }
}

/// Several joiners at once, each on its own stream, as one endpoint.
#[derive(Debug, Default)]
pub struct Clients(pub Vec<JoinerEnd>);

impl Clients {
    fn by_stream(&mut self, stream: StreamId) -> Option<&mut JoinerEnd> {
        self.0.iter_mut().find(|j| j.stream == stream)
    }
}

impl Endpoint for Clients {
    fn handle_open(&mut self, _: Instant, stream: StreamId, _: PeerId, _: &mut dyn RngCore) {
        // Inviters never open streams to joiners; refuse.
        for j in &mut self.0 {
            if j.stream == stream {
                j.out.push_back(Transmit::Reset { stream });
            }
        }
    }
    fn handle_data(&mut self, now: Instant, stream: StreamId, data: &[u8]) {
        if let Some(j) = self.by_stream(stream) {
            j.handle_data(now, data);
        }
    }
    fn handle_eof(&mut self, now: Instant, stream: StreamId) {
        if let Some(j) = self.by_stream(stream) {
            j.handle_eof(now);
        }
    }
    fn handle_reset(&mut self, now: Instant, stream: StreamId) {
        if let Some(j) = self.by_stream(stream) {
            j.handle_reset(now);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        for j in &mut self.0 {
            if j.machine.poll_timeout().is_some_and(|t| t <= now) {
                j.handle_timeout(now);
            }
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.iter().filter_map(|j| j.machine.poll_timeout()).min()
    }
    fn poll_transmit(&mut self, _: Instant) -> Option<Transmit> {
        for j in &mut self.0 {
            j.pump();
            if let Some(t) = j.out.pop_front() {
                return Some(t);
            }
        }
        None
    }
}
