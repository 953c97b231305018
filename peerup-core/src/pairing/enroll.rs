//! Strangers on probation while pairing codes are open (WIRE.md §13,
//! "Enrollment"): the relay's gate admits a peer it does not know only
//! while some group has an unused code, at most [`MAX_PROBATION`] at a
//! time, each for [`PROBATION`] unless it pairs, and serves them the
//! pairing protocol alone (the net layer's stream filter asks
//! [`Enrollment::on_probation`]).
//!
//! A failed pairing closes the stranger's connections and counts a strike
//! against its peer ID; at [`MAX_STRIKES`] it is refused probation until
//! enrollment ends. Peer IDs cost nothing to make, so strikes only slow a
//! careless client; what bounds a guesser is the number of probation
//! places and their length: at most 10 attempts per 15 s, against 2^128
//! tokens.
//!
//! Call order: [`Enrollment::handle_connection`] when a stranger's
//! connection is being established (its answer decides admission),
//! [`Enrollment::handle_closed`] when one closes, [`Enrollment::handle_paired`]
//! or [`Enrollment::handle_failed`] after its pairing stream, and
//! [`Enrollment::handle_timeout`] at [`Enrollment::next_deadline`] (and
//! whenever enrollment may have ended) to learn whom to close.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::PeerId;
use crate::time::Instant;

/// Strangers on probation at once.
pub const MAX_PROBATION: usize = 10;
/// How long a stranger may stay without pairing.
pub const PROBATION: Duration = Duration::from_secs(15);
/// Connections one stranger may hold on probation.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Failed pairings that get a peer ID refused until enrollment ends.
pub const MAX_STRIKES: u8 = 3;
/// Peer IDs whose strikes are remembered (the oldest is forgotten first).
pub const STRIKE_MEMORY: usize = 4096;

/// The gate's answer for a stranger's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted on probation: pairing protocol only, closed at `until`.
    Probation {
        /// When it is closed unless it pairs.
        until: Instant,
    },
    /// Refused.
    Refused(Refusal),
}

/// Why a stranger was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No group has an unused code.
    #[error("not authorized (no pairing codes are open)")]
    NotEnrolling,
    /// [`MAX_PROBATION`] strangers are on probation.
    #[error("pairing is busy: {MAX_PROBATION} machines are pairing; try again in a few seconds")]
    Full,
    /// This stranger already holds [`MAX_CONNECTIONS_PER_PEER`].
    #[error("too many pairing connections from this peer")]
    TooManyConnections,
    /// This peer ID failed [`MAX_STRIKES`] pairings.
    #[error("refused after {MAX_STRIKES} failed pairing attempts")]
    Struck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stranger {
    until: Instant,
    connections: u32,
}

/// The relay's strangers on probation and their strikes.
#[derive(Debug, Default, Clone)]
pub struct Enrollment {
    strangers: BTreeMap<PeerId, Stranger>,
    strikes: BTreeMap<PeerId, u8>,
    strike_order: VecDeque<PeerId>,
}

impl Enrollment {
    /// No strangers, no strikes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection from `peer`, which is not authorized, is being
    /// established; `enrolling` is whether some group has an unused code
    /// ([`super::tokens::TokenStore::enrolling`]).
    pub fn handle_connection(&mut self, now: Instant, peer: PeerId, enrolling: bool) -> Admission {
        if !enrolling {
            return Admission::Refused(Refusal::NotEnrolling);
        }
        if self.strikes.get(&peer).is_some_and(|s| *s >= MAX_STRIKES) {
            return Admission::Refused(Refusal::Struck);
        }
        if let Some(s) = self.strangers.get_mut(&peer) {
            if s.connections >= MAX_CONNECTIONS_PER_PEER {
                return Admission::Refused(Refusal::TooManyConnections);
            }
            s.connections += 1;
            return Admission::Probation { until: s.until };
        }
        if self.strangers.len() >= MAX_PROBATION {
            return Admission::Refused(Refusal::Full);
        }
        let until = now.saturating_add(PROBATION);
        self.strangers.insert(
            peer,
            Stranger {
                until,
                connections: 1,
            },
        );
        Admission::Probation { until }
    }

    /// One of `peer`'s admitted connections closed (or failed to finish
    /// its handshake). A peer not on probation changes nothing.
    pub fn handle_closed(&mut self, peer: &PeerId) {
        if let Some(s) = self.strangers.get_mut(peer) {
            s.connections = s.connections.saturating_sub(1);
            if s.connections == 0 {
                self.strangers.remove(peer);
            }
        }
    }

    /// `peer` paired: it is authorized now, no longer on probation, and
    /// its strikes are forgiven.
    pub fn handle_paired(&mut self, peer: &PeerId) {
        self.strangers.remove(peer);
        if self.strikes.remove(peer).is_some() {
            self.strike_order.retain(|p| p != peer);
        }
    }

    /// `peer`'s pairing failed: a strike, and its probation ends (the
    /// caller closes its connections; a person who mistyped reconnects).
    /// Returns whether `peer` was on probation.
    pub fn handle_failed(&mut self, peer: PeerId) -> bool {
        let count = self.strikes.entry(peer).or_insert(0);
        if *count == 0 {
            self.strike_order.push_back(peer);
        }
        *count = count.saturating_add(1);
        while self.strike_order.len() > STRIKE_MEMORY {
            if let Some(old) = self.strike_order.pop_front() {
                self.strikes.remove(&old);
            }
        }
        self.strangers.remove(&peer).is_some()
    }

    /// The strangers to close now: those past their probation, or all of
    /// them when enrollment has ended (`enrolling` false; strikes are then
    /// forgotten too).
    pub fn handle_timeout(&mut self, now: Instant, enrolling: bool) -> Vec<PeerId> {
        if !enrolling {
            self.strikes.clear();
            self.strike_order.clear();
            return std::mem::take(&mut self.strangers).into_keys().collect();
        }
        let due: Vec<PeerId> = self
            .strangers
            .iter()
            .filter(|(_, s)| s.until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &due {
            self.strangers.remove(p);
        }
        due
    }

    /// When the next probation ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.strangers.values().map(|s| s.until).min()
    }

    /// Whether `peer` is on probation (pairing protocol only).
    pub fn on_probation(&self, peer: &PeerId) -> bool {
        self.strangers.contains_key(peer)
    }

    /// Strangers on probation now.
    pub fn len(&self) -> usize {
        self.strangers.len()
    }

    /// Whether nobody is on probation.
    pub fn is_empty(&self) -> bool {
        self.strangers.is_empty()
    }
}
