//! Relay reservations: when a node dials its relays, listens on their
//! circuits and retries, as a machine ([`Reservations`], one per node, for
//! all its relays).
//!
//! A node reachable through relays holds a reservation on each: it dials
//! the relay, waits for the relay's identify (so DCUtR knows our observed
//! address), then listens on `<relay>/p2p-circuit`; the relay client makes
//! and renews the reservation under that listener. A lost reservation (a
//! failed dial, a connection the relay's gate closed before identify, a
//! listener that closed or could not start) is retried after a backoff of
//! [`MIN_BACKOFF`] doubling to [`MAX_BACKOFF`], reset when a circuit
//! address comes up. Every check interval, a relay with no listener, no
//! retry pending and no dial awaiting identify is connected again.
//!
//! One entry per relay peer: a relay listed at several addresses (its TCP
//! and QUIC ones, as `peerup-relay` prints them) is one entry whose
//! addresses are dialed one at a time in the configured order. Reserving
//! once per address would not work: the relay client keeps one
//! reservation per connection, so a second circuit listener replaces the
//! first, whose listener then closes; each entry would re-reserve every
//! second, closing the other, forever.
//!
//! ```text
//!   Idle --- start, or the periodic check ---+
//!                                            v
//!                  +------- not connected ---+--- connected -------+
//!                  v                                               |
//!   Dialing (awaiting identify) --- identify ---+                  |
//!                                               v                  v
//!          Listening: Listen requested -> listener L -> circuit address
//!                                                      = Reserved (backoff reset)
//!
//!   Dialing/Listening --- failure ---> Backoff { retry_at }
//!   Backoff --- retry_at passes ---> connect again, as from Idle
//! ```
//! A failure is a dial that failed while not connected and awaiting
//! identify, a connection closed (the last one to the relay) before
//! identify (the relay's gate turned us away: [`Output::Lost`] says to
//! check `relay_authorized_keys`), a listen that failed, or the listener
//! closed. Every failure arms a retry, so once started the periodic check
//! is a safety net: it finds a relay idle only if an input was missed.
//!
//! # Inputs and outputs
//! Inputs are the swarm's facts: [`Reservations::handle_connected`],
//! [`Reservations::handle_connection_closed`],
//! [`Reservations::handle_dial_failed`],
//! [`Reservations::handle_identified`],
//! [`Reservations::handle_listen_addr`],
//! [`Reservations::handle_listener_closed`], plus the results of carrying
//! out a `Listen` ([`Reservations::handle_listening`],
//! [`Reservations::handle_listen_failed`]) and time
//! ([`Reservations::handle_timeout`]). Any peer may be passed; peers that
//! are not relays are ignored, so the caller forwards every connection
//! event. Outputs ([`Output`]) are a dial, a DHT bootstrap, a circuit
//! listen, and two events: a reservation lost (with the error and the
//! retry delay) and a circuit address up.
//!
//! The listener handle `L` is opaque to the machine (the adapter's
//! `ListenerId`): it is only compared.
//!
//! # Call order
//! Create with [`Reservations::new`], then call
//! [`Reservations::handle_start`] once. After every `handle_*` call, drain
//! [`Reservations::poll_output`] to `None`, carrying out each output as it
//! comes: a `Dial` or `Listen` that fails at once is reported right away
//! ([`Reservations::handle_dial_failed`],
//! [`Reservations::handle_listen_failed`]; a `Listen` that works, with
//! [`Reservations::handle_listening`]) before polling the next output; the
//! outputs of that report come before the rest of the queue, so the order
//! of effects is the one of carrying out each step at once. Then read
//! [`Reservations::poll_timeout`] and call [`Reservations::handle_timeout`]
//! at that instant; spurious calls are no-ops. `handle_timeout` also runs
//! the periodic check, so `poll_timeout` always has a deadline.

use core::time::Duration;
use std::collections::VecDeque;

use multiaddr::Protocol;

use crate::relay_addr::RelayAddr;
use crate::time::{Backoff, Instant};
use crate::{Multiaddr, PeerId};

/// Longest wait between attempts to re-reserve on a relay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First wait after a reservation is lost.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// What the caller carries out or reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Dial `relay` unless connected or dialing already, one address at a
    /// time in this order (the first that works carries the reservation,
    /// so the relay connection's transport is the one configured first,
    /// not the winner of a race). A dial that cannot start is reported
    /// with [`Reservations::handle_dial_failed`].
    Dial {
        /// The relay.
        relay: PeerId,
        /// Its addresses, in the configured order.
        addrs: Vec<Multiaddr>,
    },
    /// The relay identified itself after our dial: it is a bootstrap node
    /// of the DHT (add `addr` for it and bootstrap).
    Bootstrap {
        /// The relay.
        relay: PeerId,
        /// Its first configured address.
        addr: Multiaddr,
    },
    /// Listen on the circuit address `addr`; report the listener with
    /// [`Reservations::handle_listening`] or the error with
    /// [`Reservations::handle_listen_failed`].
    Listen {
        /// The relay.
        relay: PeerId,
        /// `<relay address>/p2p-circuit`.
        addr: Multiaddr,
    },
    /// No reservation on `relay`; the next attempt is in `retry_in`.
    Lost {
        /// The relay.
        relay: PeerId,
        /// Why.
        error: String,
        /// The backoff, in `[MIN_BACKOFF, MAX_BACKOFF]`.
        retry_in: Duration,
    },
    /// A circuit address through `relay` came up: the reservation is
    /// made, and the backoff is back to [`MIN_BACKOFF`].
    Reserved {
        /// The relay.
        relay: PeerId,
        /// The circuit address.
        addr: Multiaddr,
    },
}

/// A relay's circuit listener.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listener<L> {
    None,
    /// `Listen` was emitted; the caller reports its result at once.
    Requested,
    Active(L),
}

#[derive(Debug)]
struct Relay<L> {
    addr: RelayAddr,
    /// Every configured address of this relay (`addr`'s first), in the
    /// config's order.
    dial_addrs: Vec<Multiaddr>,
    listener: Listener<L>,
    /// When to try again, if not listening.
    retry_at: Option<Instant>,
    backoff: Backoff,
    /// Waiting for identify from the relay before listening on it, so
    /// DCUtR knows our observed address.
    awaiting_identify: bool,
    /// Whether at least one connection to the relay is established.
    connected: bool,
}

/// The reservation machine of one node: every relay it reserves on.
#[derive(Debug)]
pub struct Reservations<L> {
    local: PeerId,
    relays: Vec<Relay<L>>,
    check_interval: Duration,
    next_check: Instant,
    started: bool,
    out: VecDeque<Output>,
}

impl<L: PartialEq> Reservations<L> {
    /// A machine for `local` (named in the gate message) reserving on
    /// `relays` (one entry per relay peer, addresses kept in order),
    /// checking every `check_interval` from `now` for relays without a
    /// listener. Emits nothing until [`Reservations::handle_start`].
    pub fn new(
        local: PeerId,
        relays: &[RelayAddr],
        check_interval: Duration,
        now: Instant,
    ) -> Self {
        let mut entries: Vec<Relay<L>> = Vec::new();
        for addr in relays {
            match entries
                .iter_mut()
                .find(|r| r.addr.peer_id() == addr.peer_id())
            {
                Some(r) => r.dial_addrs.push(addr.multiaddr().clone()),
                None => entries.push(Relay {
                    addr: addr.clone(),
                    dial_addrs: vec![addr.multiaddr().clone()],
                    listener: Listener::None,
                    retry_at: None,
                    backoff: Backoff::new(MIN_BACKOFF, MAX_BACKOFF),
                    awaiting_identify: false,
                    connected: false,
                }),
            }
        }
        Reservations {
            local,
            relays: entries,
            check_interval,
            next_check: now + check_interval,
            started: false,
            out: VecDeque::new(),
        }
    }

    /// The relay peers, one each, in the order first configured.
    pub fn relays(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.relays.iter().map(|r| r.addr.peer_id())
    }

    /// The addresses dialed for `relay`, in order.
    pub fn dial_addrs(&self, relay: &PeerId) -> Option<&[Multiaddr]> {
        self.find(relay)
            .map(|i| self.relays[i].dial_addrs.as_slice())
    }

    /// Whether a circuit listener on `relay` is up (or requested).
    pub fn is_listening(&self, relay: &PeerId) -> bool {
        self.find(relay)
            .is_some_and(|i| self.relays[i].listener != Listener::None)
    }

    /// When `relay` is retried, if a retry is pending.
    pub fn retry_at(&self, relay: &PeerId) -> Option<Instant> {
        self.find(relay).and_then(|i| self.relays[i].retry_at)
    }

    /// Connects every relay, in order. Later calls are no-ops.
    pub fn handle_start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        for i in 0..self.relays.len() {
            self.connect(i);
        }
    }

    /// A connection to `peer` is established.
    pub fn handle_connected(&mut self, peer: &PeerId) {
        if let Some(i) = self.find(peer) {
            self.relays[i].connected = true;
        }
    }

    /// A connection to `peer` closed, `remaining` connections to it are
    /// left; `cause` is the error, if any. The last connection to a relay
    /// closing before its identify means the relay's gate turned us away.
    pub fn handle_connection_closed(
        &mut self,
        now: Instant,
        peer: &PeerId,
        remaining: u32,
        cause: Option<String>,
    ) {
        let Some(i) = self.find(peer) else {
            return;
        };
        self.relays[i].connected = remaining > 0;
        if remaining == 0 && self.relays[i].awaiting_identify {
            // Closed before identify: the relay's gate turned us away.
            let cause = cause.unwrap_or_else(|| "connection closed".into());
            let error = format!(
                "the relay closed the connection right after the handshake ({cause}); \
                 is this peer ({}) in the relay's relay_authorized_keys?",
                self.local
            );
            self.failed(now, i, error);
        }
    }

    /// A dial to `peer` failed, or could not start (a `Dial` output the
    /// swarm refused). Counts only while not connected and awaiting
    /// identify: a dial someone else made, failing while our connection
    /// stands, changes nothing.
    pub fn handle_dial_failed(&mut self, now: Instant, peer: &PeerId, error: String) {
        let Some(i) = self.find(peer) else {
            return;
        };
        let r = &self.relays[i];
        if !r.connected && r.awaiting_identify {
            self.first(|m| m.failed(now, i, error));
        }
    }

    /// `peer` identified itself. For a relay we dialed, the DHT gets it as
    /// a bootstrap node and its circuit is listened on.
    pub fn handle_identified(&mut self, peer: &PeerId) {
        let Some(i) = self.find(peer) else {
            return;
        };
        if self.relays[i].awaiting_identify {
            let addr = self.relays[i].addr.multiaddr().clone();
            self.out.push_back(Output::Bootstrap { relay: *peer, addr });
            self.listen(i);
        }
    }

    /// The `Listen` for `relay` started as `listener`.
    pub fn handle_listening(&mut self, relay: &PeerId, listener: L) {
        if let Some(i) = self.find(relay) {
            self.relays[i].listener = Listener::Active(listener);
        }
    }

    /// The `Listen` for `relay` could not start.
    pub fn handle_listen_failed(&mut self, now: Instant, relay: &PeerId, error: String) {
        if let Some(i) = self.find(relay) {
            self.first(|m| m.failed(now, i, error));
        }
    }

    /// `listener` has the address `addr`: for a relay's listener, the
    /// reservation is made.
    pub fn handle_listen_addr(&mut self, listener: &L, addr: Multiaddr) {
        if let Some(i) = self.find_listener(listener) {
            let r = &mut self.relays[i];
            r.backoff.succeed();
            self.out.push_back(Output::Reserved {
                relay: r.addr.peer_id(),
                addr,
            });
        }
    }

    /// `listener` closed (`error` says why): for a relay's listener, the
    /// reservation is lost.
    pub fn handle_listener_closed(&mut self, now: Instant, listener: &L, error: String) {
        if let Some(i) = self.find_listener(listener) {
            self.failed(now, i, error);
        }
    }

    /// Time passed: retries that are due, in relay order, then, when the
    /// check interval is over, every relay with no listener, no retry
    /// pending and no dial awaiting identify (the relay client renews
    /// reservations by itself; this catches any relay left without one).
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.relays.len() {
            if self.relays[i].retry_at.is_some_and(|t| t <= now) {
                self.connect(i);
            }
        }
        if now >= self.next_check {
            self.next_check = now + self.check_interval;
            for i in 0..self.relays.len() {
                let r = &self.relays[i];
                if r.listener == Listener::None && r.retry_at.is_none() && !r.awaiting_identify {
                    self.connect(i);
                }
            }
        }
    }

    /// Something changed on `relay`'s side that makes a retry worth it
    /// now (we were just authorized there, by pairing): a relay without
    /// a listener, not being dialed, is tried at once, its backoff reset.
    pub fn handle_retry_now(&mut self, relay: &PeerId) {
        let Some(i) = self.find(relay) else {
            return;
        };
        let r = &mut self.relays[i];
        if r.listener != Listener::None || r.awaiting_identify {
            return;
        }
        r.backoff.succeed();
        self.connect(i);
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The earliest retry or the next periodic check; always `Some`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(
            self.relays
                .iter()
                .filter_map(|r| r.retry_at)
                .fold(self.next_check, Instant::min),
        )
    }

    fn find(&self, peer: &PeerId) -> Option<usize> {
        self.relays.iter().position(|r| r.addr.peer_id() == *peer)
    }

    fn find_listener(&self, listener: &L) -> Option<usize> {
        self.relays
            .iter()
            .position(|r| matches!(&r.listener, Listener::Active(l) if l == listener))
    }

    /// Runs `f`, putting what it emits ahead of the outputs already
    /// queued: the report of an output's immediate failure comes before
    /// the outputs that were to follow it.
    fn first(&mut self, f: impl FnOnce(&mut Self)) {
        let before = self.out.len();
        f(self);
        let added = self.out.len() - before;
        self.out.rotate_right(added);
    }

    fn connect(&mut self, i: usize) {
        let r = &mut self.relays[i];
        r.retry_at = None;
        if r.connected {
            self.listen(i);
            return;
        }
        r.awaiting_identify = true;
        self.out.push_back(Output::Dial {
            relay: r.addr.peer_id(),
            addrs: r.dial_addrs.clone(),
        });
    }

    fn listen(&mut self, i: usize) {
        let r = &mut self.relays[i];
        r.awaiting_identify = false;
        if r.listener != Listener::None {
            return;
        }
        r.listener = Listener::Requested;
        self.out.push_back(Output::Listen {
            relay: r.addr.peer_id(),
            addr: r.addr.multiaddr().clone().with(Protocol::P2pCircuit),
        });
    }

    fn failed(&mut self, now: Instant, i: usize, error: String) {
        let r = &mut self.relays[i];
        r.listener = Listener::None;
        r.awaiting_identify = false;
        let wait = r.backoff.fail();
        r.retry_at = Some(now + wait);
        self.out.push_back(Output::Lost {
            relay: r.addr.peer_id(),
            error,
            retry_in: wait,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keypair_from_seed;

    const INTERVAL: Duration = Duration::from_secs(120);

    fn peer(n: u8) -> PeerId {
        keypair_from_seed([n; 32]).public().to_peer_id()
    }

    fn relay_addr(n: u8, transport: &str) -> RelayAddr {
        let text = format!("/ip4/192.0.2.{n}/{transport}/p2p/{}", peer(n));
        RelayAddr::new(text.parse().unwrap()).unwrap()
    }

    fn tcp(n: u8) -> RelayAddr {
        relay_addr(n, "tcp/7777")
    }

    fn at(secs: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(secs)
    }

    fn drain(m: &mut Reservations<u32>) -> Vec<Output> {
        std::iter::from_fn(|| m.poll_output()).collect()
    }

    fn dial(n: u8) -> Output {
        Output::Dial {
            relay: peer(n),
            addrs: vec![tcp(n).multiaddr().clone()],
        }
    }

    fn listen(n: u8) -> Output {
        Output::Listen {
            relay: peer(n),
            addr: tcp(n).multiaddr().clone().with(Protocol::P2pCircuit),
        }
    }

    fn started(relays: &[RelayAddr]) -> Reservations<u32> {
        let mut m = Reservations::new(peer(99), relays, INTERVAL, Instant::ZERO);
        m.handle_start();
        m
    }

    /// Dials relay `n`, connects, gets its identify and its listener `id`.
    fn reserve(m: &mut Reservations<u32>, n: u8, id: u32) {
        m.handle_connected(&peer(n));
        m.handle_identified(&peer(n));
        let out = drain(m);
        assert_eq!(out.last(), Some(&listen(n)));
        m.handle_listening(&peer(n), id);
        m.handle_listen_addr(&id, "/memory/1".parse().unwrap());
        assert!(matches!(drain(m)[..], [Output::Reserved { .. }]));
    }

    fn lost_wait(out: &[Output]) -> Duration {
        match out {
            [Output::Lost { retry_in, .. }] => *retry_in,
            other => panic!("expected one Lost, got {other:?}"),
        }
    }

    #[test]
    fn start_dials_every_relay_in_order() {
        let mut m = Reservations::new(peer(99), &[tcp(1), tcp(2)], INTERVAL, Instant::ZERO);
        assert_eq!(m.poll_output(), None, "nothing before start");
        m.handle_start();
        assert_eq!(drain(&mut m), [dial(1), dial(2)]);
        m.handle_start();
        assert_eq!(drain(&mut m), [], "a second start is a no-op");
    }

    #[test]
    fn addresses_of_one_relay_are_one_entry() {
        let quic = relay_addr(1, "udp/7777/quic-v1");
        let mut m = started(&[tcp(1), tcp(2), quic.clone()]);
        assert_eq!(m.relays().collect::<Vec<_>>(), [peer(1), peer(2)]);
        let both = vec![tcp(1).multiaddr().clone(), quic.multiaddr().clone()];
        assert_eq!(m.dial_addrs(&peer(1)), Some(&both[..]));
        assert_eq!(
            drain(&mut m),
            [
                Output::Dial {
                    relay: peer(1),
                    addrs: both
                },
                dial(2)
            ]
        );
        // One listener for the relay, on its first address.
        reserve(&mut m, 1, 7);
        assert!(m.is_listening(&peer(1)));
    }

    #[test]
    fn listens_only_after_identify() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        m.handle_connected(&peer(1));
        assert_eq!(drain(&mut m), [], "connected, but no identify yet");
        m.handle_timeout(at(INTERVAL.as_secs()));
        assert_eq!(
            drain(&mut m),
            [],
            "the periodic check waits for identify too"
        );
        m.handle_identified(&peer(1));
        assert_eq!(
            drain(&mut m),
            [
                Output::Bootstrap {
                    relay: peer(1),
                    addr: tcp(1).multiaddr().clone()
                },
                listen(1)
            ]
        );
        m.handle_identified(&peer(1));
        assert_eq!(drain(&mut m), [], "identify again: nothing");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        let mut now = Instant::ZERO;
        let mut waits = Vec::new();
        for _ in 0..8 {
            m.handle_dial_failed(now, &peer(1), "refused".into());
            let wait = lost_wait(&drain(&mut m));
            assert_eq!(m.retry_at(&peer(1)), Some(now + wait));
            waits.push(wait.as_secs());
            now += wait;
            m.handle_timeout(now);
            assert_eq!(drain(&mut m), [dial(1)]);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn backoff_resets_after_a_reservation() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        m.handle_dial_failed(at(0), &peer(1), "refused".into());
        assert_eq!(lost_wait(&drain(&mut m)), Duration::from_secs(1));
        m.handle_timeout(at(1));
        drain(&mut m);
        m.handle_dial_failed(at(1), &peer(1), "refused".into());
        assert_eq!(lost_wait(&drain(&mut m)), Duration::from_secs(2));
        m.handle_timeout(at(3));
        assert_eq!(drain(&mut m), [dial(1)]);
        reserve(&mut m, 1, 5);
        m.handle_listener_closed(at(50), &5, "relay connection closed".into());
        assert_eq!(lost_wait(&drain(&mut m)), MIN_BACKOFF);
    }

    #[test]
    fn listener_without_address_keeps_the_backoff() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        m.handle_dial_failed(at(0), &peer(1), "refused".into());
        drain(&mut m);
        m.handle_timeout(at(1));
        drain(&mut m);
        m.handle_connected(&peer(1));
        m.handle_identified(&peer(1));
        drain(&mut m);
        m.handle_listening(&peer(1), 3);
        // The listener closes before any circuit address: not a success.
        m.handle_listener_closed(at(2), &3, "no reservation".into());
        assert_eq!(lost_wait(&drain(&mut m)), Duration::from_secs(2));
    }

    #[test]
    fn close_before_identify_names_the_gate() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        m.handle_connected(&peer(1));
        m.handle_connected(&peer(1));
        m.handle_connection_closed(at(0), &peer(1), 1, None);
        assert_eq!(drain(&mut m), [], "another connection is left");
        m.handle_connection_closed(at(0), &peer(1), 0, Some("reset".into()));
        let expected = format!(
            "the relay closed the connection right after the handshake (reset); \
             is this peer ({}) in the relay's relay_authorized_keys?",
            peer(99)
        );
        assert_eq!(
            drain(&mut m),
            [Output::Lost {
                relay: peer(1),
                error: expected,
                retry_in: MIN_BACKOFF
            }]
        );
        // Without a cause, "connection closed".
        m.handle_timeout(at(1));
        drain(&mut m);
        m.handle_connected(&peer(1));
        m.handle_connection_closed(at(1), &peer(1), 0, None);
        match &drain(&mut m)[..] {
            [Output::Lost { error, .. }] => {
                assert!(error.contains("handshake (connection closed);"), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn close_after_identify_waits_for_the_listener() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        reserve(&mut m, 1, 4);
        m.handle_connection_closed(at(10), &peer(1), 0, None);
        assert_eq!(drain(&mut m), [], "the listener's close reports the loss");
        m.handle_listener_closed(at(10), &4, "relay connection closed".into());
        assert_eq!(lost_wait(&drain(&mut m)), MIN_BACKOFF);
        m.handle_timeout(at(11));
        assert_eq!(drain(&mut m), [dial(1)], "not connected: dial again");
    }

    #[test]
    fn retry_while_connected_listens_without_dialing() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        reserve(&mut m, 1, 4);
        m.handle_listener_closed(at(10), &4, "gone".into());
        drain(&mut m);
        m.handle_timeout(at(11));
        assert_eq!(drain(&mut m), [listen(1)]);
    }

    #[test]
    fn retry_at_is_honoured_exactly() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        let t = at(7);
        m.handle_dial_failed(t, &peer(1), "refused".into());
        drain(&mut m);
        let due = t + MIN_BACKOFF;
        assert_eq!(m.poll_timeout(), Some(due));
        m.handle_timeout(Instant::from_duration(
            due.as_duration() - Duration::from_nanos(1),
        ));
        assert_eq!(drain(&mut m), [], "a nanosecond early");
        m.handle_timeout(due);
        assert_eq!(drain(&mut m), [dial(1)]);
        assert_eq!(m.retry_at(&peer(1)), None);
        assert_eq!(m.poll_timeout(), Some(at(INTERVAL.as_secs())));
    }

    #[test]
    fn periodic_check_dials_a_relay_without_listener() {
        // Not started: the relay has no listener, no retry and no dial.
        let mut m = Reservations::<u32>::new(peer(99), &[tcp(1)], INTERVAL, at(5));
        let check = at(5) + INTERVAL;
        assert_eq!(m.poll_timeout(), Some(check));
        m.handle_timeout(at(5 + INTERVAL.as_secs() - 1));
        assert_eq!(drain(&mut m), []);
        m.handle_timeout(check);
        assert_eq!(drain(&mut m), [dial(1)]);
        assert_eq!(m.poll_timeout(), Some(check + INTERVAL), "re-armed");
        // Awaiting identify now: the next check leaves it alone.
        m.handle_timeout(check + INTERVAL);
        assert_eq!(drain(&mut m), []);
    }

    #[test]
    fn no_output_once_every_relay_is_held() {
        let mut m = started(&[tcp(1), tcp(2)]);
        drain(&mut m);
        reserve(&mut m, 1, 1);
        reserve(&mut m, 2, 2);
        for k in 1..10 {
            let t = m.poll_timeout().unwrap();
            assert_eq!(t, at(k * INTERVAL.as_secs()));
            m.handle_timeout(t);
            assert_eq!(drain(&mut m), []);
        }
        // Renewal addresses keep it quiet too.
        m.handle_listen_addr(&1, "/memory/2".parse().unwrap());
        assert!(matches!(drain(&mut m)[..], [Output::Reserved { .. }]));
    }

    #[test]
    fn immediate_failure_is_reported_before_later_outputs() {
        let mut m = started(&[tcp(1), tcp(2)]);
        assert_eq!(m.poll_output(), Some(dial(1)));
        m.handle_dial_failed(at(0), &peer(1), "condition".into());
        assert!(matches!(m.poll_output(), Some(Output::Lost { relay, .. }) if relay == peer(1)));
        assert_eq!(drain(&mut m), [dial(2)]);
        // A Listen that cannot start: the same.
        m.handle_connected(&peer(2));
        m.handle_identified(&peer(2));
        assert!(matches!(m.poll_output(), Some(Output::Bootstrap { .. })));
        assert_eq!(m.poll_output(), Some(listen(2)));
        m.handle_listen_failed(at(0), &peer(2), "unsupported".into());
        assert_eq!(lost_wait(&drain(&mut m)), MIN_BACKOFF);
        assert!(!m.is_listening(&peer(2)));
    }

    #[test]
    fn dial_failure_while_connected_changes_nothing() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        m.handle_connected(&peer(1));
        m.handle_dial_failed(at(0), &peer(1), "a second dial lost the race".into());
        assert_eq!(drain(&mut m), []);
        m.handle_identified(&peer(1));
        assert_eq!(drain(&mut m).last(), Some(&listen(1)));
    }

    #[test]
    fn other_peers_are_ignored() {
        let mut m = started(&[tcp(1)]);
        drain(&mut m);
        let stranger = peer(50);
        m.handle_connected(&stranger);
        m.handle_identified(&stranger);
        m.handle_dial_failed(at(0), &stranger, "x".into());
        m.handle_connection_closed(at(0), &stranger, 0, None);
        m.handle_listen_addr(&9, "/memory/3".parse().unwrap());
        m.handle_listener_closed(at(0), &9, "x".into());
        assert_eq!(drain(&mut m), []);
        assert_eq!(m.poll_timeout(), Some(at(INTERVAL.as_secs())));
    }
}
