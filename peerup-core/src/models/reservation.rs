//! The reference harness of [`crate::reservation::Reservations`]: the machine driven in virtual time against a simulated
//! swarm (connections, one dial in flight per peer as
//! `PeerCondition::DisconnectedAndNotDialing` allows, circuit listeners)
//! and a reference model of the backoff and the deadlines, over random
//! event sequences.
//!
//! Invariants checked after every step:
//! - a `Dial` for a relay only when it is not connected and no dial of
//!   ours to it is unresolved (never two dials in flight);
//! - a `Listen` only when connected, after the identify that follows our
//!   dial, and never while the swarm holds a listener on that relay;
//! - a `Bootstrap` only right before that relay's `Listen`;
//! - every `Lost` waits the model's backoff (1 s doubling to 30 s, back
//!   to 1 s after a `Reserved`), within `[MIN_BACKOFF, MAX_BACKOFF]`;
//! - no `Dial` or `Listen` for a relay before its `retry_at`, and one when
//!   `handle_timeout` runs at or after it;
//! - `poll_timeout` is the earliest of the model's retries and the model's
//!   periodic check;
//! - one entry per relay peer, dialed at its addresses in config order.
//!
//!
//! Used by `tests/reservation_sim.rs` (proptest) and the `reservation` fuzz
//! target, so both check the same model.
//!
//! And at the end, once the network behaves: every relay gets reserved and
//! then nothing more is emitted, check after check.

// Test support: a panic is how a broken invariant is reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use core::time::Duration;
use std::collections::BTreeMap;

use crate::identity::keypair_from_seed;
use crate::relay_addr::RelayAddr;
use crate::reservation::{MAX_BACKOFF, MIN_BACKOFF, Output, Reservations};
use crate::time::Instant;
use crate::{Multiaddr, PeerId};

/// Relays a scenario draws from.
pub const RELAYS: u8 = 3;
const INTERVAL: Duration = Duration::from_secs(120);

/// Relay `n`'s peer ID (seed `n + 1`).
pub fn peer(n: u8) -> PeerId {
    keypair_from_seed([n + 1; 32]).public().to_peer_id()
}

/// Relay `relay` at one of its addresses: `variant` picks TCP (even) or
/// QUIC (odd) and the port.
pub fn addr(relay: u8, variant: u8) -> RelayAddr {
    let transport = if variant.is_multiple_of(2) {
        format!("tcp/{}", 7000 + u16::from(variant))
    } else {
        format!("udp/{}/quic-v1", 7000 + u16::from(variant))
    };
    let text = format!("/ip4/192.0.2.{}/{transport}/p2p/{}", relay + 1, peer(relay));
    RelayAddr::new(text.parse().unwrap()).unwrap()
}

/// One step of a scenario.
#[derive(Debug, Clone)]
pub enum Op {
    /// Time passes; the timer fires if its deadline passed.
    Advance(u64),
    /// Straight to the deadline, exactly.
    ToDeadline,
    /// A wake-up with nothing due.
    Spurious,
    /// Our dial to relay `r` connects.
    DialOk(u8),
    /// Our dial to relay `r` fails.
    DialErr(u8),
    /// A connection to `r` that someone else made (`Node::connect`).
    OtherConnect(u8),
    /// A dial to `r` that someone else made fails.
    OtherDialErr(u8),
    /// `r` sends identify (on a live connection).
    Identify(u8),
    /// One connection to `r` closes.
    Close(u8),
    /// The listener on `r` gets a circuit address.
    ListenAddr(u8),
    /// The listener on `r` closes.
    ListenerClose(u8),
    /// Make listening on `r` fail at once (or work again).
    ToggleListenFail(u8),
    /// A non-relay peer's events.
    Stranger,
}

/// The swarm as the driver sees it, per relay.
#[derive(Debug, Default, Clone)]
struct Swarm {
    connections: u32,
    dialing: bool,
    listener: Option<u32>,
    listen_fails: bool,
}

/// What the reference model expects, per relay.
#[derive(Debug, Clone)]
struct Model {
    /// A `Dial` of ours not yet resolved by a connection or a dial failure.
    dial_in_flight: bool,
    /// Dialed and not yet identified (nor lost since).
    awaiting_identify: bool,
    retry_at: Option<Instant>,
    next_backoff: Duration,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            dial_in_flight: false,
            awaiting_identify: false,
            retry_at: None,
            next_backoff: MIN_BACKOFF,
        }
    }
}

/// The machine, a simulated swarm and the reference model, in virtual
/// time.
pub struct Sim {
    /// The machine under test.
    pub m: Reservations<u32>,
    /// Virtual time.
    pub now: Instant,
    next_check: Instant,
    peers: Vec<PeerId>,
    swarm: BTreeMap<PeerId, Swarm>,
    model: BTreeMap<PeerId, Model>,
    next_listener: u32,
    reserved: BTreeMap<PeerId, bool>,
}

impl Sim {
    /// A machine configured with `config`, not started, at 1.234 s.
    pub fn new(config: &[RelayAddr]) -> Self {
        let local = keypair_from_seed([200; 32]).public().to_peer_id();
        let now = Instant::from_duration(Duration::from_millis(1234));
        let m = Reservations::new(local, config, INTERVAL, now);
        let mut peers: Vec<PeerId> = Vec::new();
        for a in config {
            if !peers.contains(&a.peer_id()) {
                peers.push(a.peer_id());
            }
        }
        Sim {
            m,
            now,
            next_check: now + INTERVAL,
            swarm: peers.iter().map(|p| (*p, Swarm::default())).collect(),
            model: peers.iter().map(|p| (*p, Model::default())).collect(),
            reserved: peers.iter().map(|p| (*p, false)).collect(),
            peers,
            next_listener: 0,
        }
    }

    fn relay(&self, r: u8) -> Option<PeerId> {
        let p = peer(r);
        self.peers.contains(&p).then_some(p)
    }

    /// `handle_timeout`, with the model's view of which retries are due.
    pub fn timeout(&mut self) {
        let now = self.now;
        let due: Vec<PeerId> = self
            .model
            .iter()
            .filter(|(_, m)| m.retry_at.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for p in &due {
            self.model.get_mut(p).unwrap().retry_at = None;
        }
        if now >= self.next_check {
            self.next_check = now + INTERVAL;
        }
        self.m.handle_timeout(now);
        let out = self.drain();
        for p in due {
            assert!(
                out.iter().any(|o| matches!(o,
                    Output::Dial { relay, .. } | Output::Listen { relay, .. } if *relay == p)),
                "retry of {p} due at {now:?} not carried out: {out:?}"
            );
        }
    }

    /// Drains the machine like the driver: carries out each output as it
    /// comes, reporting immediate failures at once, and checks every
    /// output against the model.
    pub fn drain(&mut self) -> Vec<Output> {
        let mut all = Vec::new();
        let mut bootstrap: Option<PeerId> = None;
        while let Some(o) = self.m.poll_output() {
            if let Some(b) = bootstrap.take() {
                assert!(
                    matches!(&o, Output::Listen { relay, .. } if *relay == b),
                    "Bootstrap not followed by its Listen: {o:?}"
                );
            }
            match &o {
                Output::Dial { relay, addrs } => {
                    let s = &self.swarm[relay];
                    let md = &self.model[relay];
                    assert!(s.connections == 0, "Dial while connected");
                    assert!(!md.dial_in_flight, "two dials in flight");
                    assert!(md.retry_at.is_none(), "Dial before retry_at");
                    assert_eq!(Some(addrs.as_slice()), self.m.dial_addrs(relay));
                    let md = self.model.get_mut(relay).unwrap();
                    md.dial_in_flight = true;
                    md.awaiting_identify = true;
                    let s = self.swarm.get_mut(relay).unwrap();
                    if s.dialing {
                        // DialPeerConditionFalse: someone's dial is on.
                        self.m
                            .handle_dial_failed(self.now, relay, "condition false".into());
                        self.model.get_mut(relay).unwrap().dial_in_flight = false;
                    } else {
                        s.dialing = true;
                    }
                }
                Output::Bootstrap { relay, .. } => bootstrap = Some(*relay),
                Output::Listen { relay, addr } => {
                    let s = &self.swarm[relay];
                    let md = &self.model[relay];
                    assert!(s.connections > 0, "Listen while not connected");
                    assert!(!md.awaiting_identify, "Listen before identify");
                    assert!(s.listener.is_none(), "a second listener");
                    assert!(md.retry_at.is_none(), "Listen before retry_at");
                    assert!(addr.to_string().ends_with("/p2p-circuit"));
                    if s.listen_fails {
                        self.m
                            .handle_listen_failed(self.now, relay, "listen failed".into());
                    } else {
                        let id = self.next_listener;
                        self.next_listener += 1;
                        self.swarm.get_mut(relay).unwrap().listener = Some(id);
                        self.m.handle_listening(relay, id);
                    }
                }
                Output::Lost {
                    relay, retry_in, ..
                } => {
                    let md = self.model.get_mut(relay).unwrap();
                    assert!((MIN_BACKOFF..=MAX_BACKOFF).contains(retry_in));
                    assert_eq!(*retry_in, md.next_backoff);
                    md.next_backoff = (md.next_backoff * 2).min(MAX_BACKOFF);
                    md.retry_at = Some(self.now + *retry_in);
                    md.awaiting_identify = false;
                    self.reserved.insert(*relay, false);
                }
                Output::Reserved { relay, .. } => {
                    self.model.get_mut(relay).unwrap().next_backoff = MIN_BACKOFF;
                    self.reserved.insert(*relay, true);
                }
            }
            all.push(o);
        }
        assert!(bootstrap.is_none(), "Bootstrap last");
        let earliest = self
            .model
            .values()
            .filter_map(|m| m.retry_at)
            .fold(self.next_check, Instant::min);
        assert_eq!(self.m.poll_timeout(), Some(earliest));
        for p in &self.peers {
            assert_eq!(self.m.retry_at(p), self.model[p].retry_at);
        }
        all
    }

    /// Carries out `op` on the swarm and the machine, checking the
    /// invariants.
    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                if self.m.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.timeout();
                }
            }
            Op::ToDeadline => {
                if let Some(t) = self.m.poll_timeout() {
                    self.now = self.now.max(t);
                    self.timeout();
                }
            }
            Op::Spurious => self.timeout(),
            Op::DialOk(r) => {
                if let Some(p) = self.relay(r)
                    && self.swarm[&p].dialing
                {
                    let s = self.swarm.get_mut(&p).unwrap();
                    s.dialing = false;
                    s.connections += 1;
                    self.model.get_mut(&p).unwrap().dial_in_flight = false;
                    self.m.handle_connected(&p);
                    self.drain();
                }
            }
            Op::DialErr(r) => {
                if let Some(p) = self.relay(r)
                    && self.swarm[&p].dialing
                {
                    self.swarm.get_mut(&p).unwrap().dialing = false;
                    self.model.get_mut(&p).unwrap().dial_in_flight = false;
                    self.m.handle_dial_failed(self.now, &p, "refused".into());
                    self.drain();
                }
            }
            Op::OtherConnect(r) => {
                if let Some(p) = self.relay(r) {
                    self.swarm.get_mut(&p).unwrap().connections += 1;
                    self.model.get_mut(&p).unwrap().dial_in_flight = false;
                    self.m.handle_connected(&p);
                    self.drain();
                }
            }
            Op::OtherDialErr(r) => {
                if let Some(p) = self.relay(r) {
                    // The machine cannot tell whose dial failed: ours is
                    // resolved as far as it knows.
                    if self.swarm[&p].connections == 0 {
                        self.model.get_mut(&p).unwrap().dial_in_flight = false;
                    }
                    self.m.handle_dial_failed(self.now, &p, "other".into());
                    self.drain();
                }
            }
            Op::Identify(r) => {
                if let Some(p) = self.relay(r)
                    && self.swarm[&p].connections > 0
                {
                    self.model.get_mut(&p).unwrap().awaiting_identify = false;
                    self.m.handle_identified(&p);
                    self.drain();
                }
            }
            Op::Close(r) => {
                if let Some(p) = self.relay(r)
                    && self.swarm[&p].connections > 0
                {
                    let s = self.swarm.get_mut(&p).unwrap();
                    s.connections -= 1;
                    let left = s.connections;
                    self.m
                        .handle_connection_closed(self.now, &p, left, Some("eof".into()));
                    self.drain();
                }
            }
            Op::ListenAddr(r) => {
                if let Some(p) = self.relay(r)
                    && let Some(id) = self.swarm[&p].listener
                {
                    let a: Multiaddr = "/memory/1/p2p-circuit".parse().unwrap();
                    self.m.handle_listen_addr(&id, a);
                    self.drain();
                }
            }
            Op::ListenerClose(r) => {
                if let Some(p) = self.relay(r)
                    && let Some(id) = self.swarm.get_mut(&p).unwrap().listener.take()
                {
                    self.m
                        .handle_listener_closed(self.now, &id, "relay connection closed".into());
                    self.drain();
                }
            }
            Op::ToggleListenFail(r) => {
                if let Some(p) = self.relay(r) {
                    let s = self.swarm.get_mut(&p).unwrap();
                    s.listen_fails = !s.listen_fails;
                }
            }
            Op::Stranger => {
                let p = peer(100);
                self.m.handle_connected(&p);
                self.m.handle_identified(&p);
                self.m.handle_dial_failed(self.now, &p, "x".into());
                self.m.handle_connection_closed(self.now, &p, 0, None);
                self.m
                    .handle_listen_addr(&u32::MAX, "/memory/9".parse().unwrap());
                self.m
                    .handle_listener_closed(self.now, &u32::MAX, "x".into());
                assert!(self.drain().is_empty(), "output for a stranger");
            }
        }
    }

    /// The network behaves from now on: resolve what is pending, let
    /// timers fire; every relay must end up reserved.
    pub fn settle(&mut self) {
        for s in self.swarm.values_mut() {
            s.listen_fails = false;
        }
        for _ in 0..200 {
            if self.reserved.values().all(|r| *r) {
                return;
            }
            let mut acted = false;
            for p in self.peers.clone() {
                let s = self.swarm[&p].clone();
                if s.dialing {
                    let r = self.swarm.get_mut(&p).unwrap();
                    r.dialing = false;
                    r.connections += 1;
                    self.model.get_mut(&p).unwrap().dial_in_flight = false;
                    self.m.handle_connected(&p);
                    self.drain();
                    acted = true;
                } else if s.connections == 0 && s.listener.is_some() {
                    // The relay client's listener dies with its connection.
                    let id = self.swarm.get_mut(&p).unwrap().listener.take().unwrap();
                    self.m
                        .handle_listener_closed(self.now, &id, "closed".into());
                    self.drain();
                    acted = true;
                } else if let Some(id) = s.listener.filter(|_| !self.reserved[&p]) {
                    self.m
                        .handle_listen_addr(&id, "/memory/1/p2p-circuit".parse().unwrap());
                    self.drain();
                    acted = true;
                } else if s.connections > 0 && self.model[&p].awaiting_identify {
                    self.model.get_mut(&p).unwrap().awaiting_identify = false;
                    self.m.handle_identified(&p);
                    self.drain();
                    acted = true;
                }
            }
            if !acted {
                let t = self.m.poll_timeout().unwrap();
                self.now = self.now.max(t);
                self.timeout();
            }
        }
        panic!("not every relay reserved: {:?}", self.reserved);
    }
}

/// Runs `ops` against a machine configured with `config`, checking the
/// invariants above after every step, then lets the network behave and
/// checks that every relay gets reserved and stays quiet.
///
/// # Panics
/// When an invariant breaks.
pub fn run(config: &[RelayAddr], ops: &[Op]) {
    let mut sim = Sim::new(config);
    // One entry per relay peer, addresses deduplicated only by peer.
    assert_eq!(sim.m.relays().collect::<Vec<_>>(), sim.peers.clone());
    for p in &sim.peers {
        let want: Vec<Multiaddr> = config
            .iter()
            .filter(|a| a.peer_id() == *p)
            .map(|a| a.multiaddr().clone())
            .collect();
        assert_eq!(sim.m.dial_addrs(p), Some(want.as_slice()));
    }
    sim.m.handle_start();
    let first = sim.drain();
    assert_eq!(first.len(), sim.peers.len(), "one dial per relay at start");
    for op in ops {
        sim.apply(op);
    }
    sim.settle();
    // Everything held: nothing more, check after check.
    for _ in 0..5 {
        let t = sim.m.poll_timeout().unwrap();
        assert_eq!(t, sim.next_check);
        sim.now = t;
        let out = {
            sim.m.handle_timeout(t);
            sim.next_check = t + INTERVAL;
            sim.drain()
        };
        assert!(out.is_empty(), "output once held: {out:?}");
    }
}
