//! Half-close bookkeeping of one proxied connection.
//!
//! A proxied connection joins a local TCP socket and a libp2p stream and
//! copies both ways. When one direction reaches EOF, the write side of the
//! other end is shut down (TCP `shutdown(SHUT_WR)` / stream close), and the
//! other direction keeps flowing: SSH, SCP and RDP rely on that. When both
//! directions are done, both ends are closed. An error or reset on either
//! end resets both, so neither peer waits on a connection that is gone.
//!
//! ```text
//! per direction:   Open --eof--> Draining --shutdown done--> Done
//!                    \              \
//!                     +------------- +--error/reset (either side)--> Reset (both)
//! connection:      both Done -> Close          any Reset -> Reset
//! ```
//!
//! # Call order
//! Feed what the copy loop observed through `handle_*`, then drain
//! [`HalfClose::poll_output`] until `None` and carry out each output. An
//! `Err` from a `handle_*` call means the copy loop broke the contract (an
//! EOF reported twice for the same direction, say); after a reset every
//! input is accepted and ignored.

use std::collections::VecDeque;

/// One end of the proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The local TCP socket.
    Local,
    /// The libp2p stream to the peer.
    Remote,
}

/// A copy direction, named by its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Local socket -> remote stream.
    LocalToRemote,
    /// Remote stream -> local socket.
    RemoteToLocal,
}

impl Direction {
    /// Both directions.
    pub const ALL: [Direction; 2] = [Direction::LocalToRemote, Direction::RemoteToLocal];

    /// The end this direction reads from.
    pub fn source(self) -> Side {
        match self {
            Direction::LocalToRemote => Side::Local,
            Direction::RemoteToLocal => Side::Remote,
        }
    }

    /// The end this direction writes to.
    pub fn destination(self) -> Side {
        match self {
            Direction::LocalToRemote => Side::Remote,
            Direction::RemoteToLocal => Side::Local,
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::LocalToRemote => 0,
            Direction::RemoteToLocal => 1,
        }
    }
}

/// What the copy loop must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfCloseOutput {
    /// Shut down the write side of `side` (its reader has seen EOF on the
    /// other end); then report [`HalfClose::handle_shutdown_done`].
    ShutdownWrite(Side),
    /// Both directions are done: close both ends.
    Close,
    /// Reset the stream and abort the socket; the connection is over.
    Reset,
}

/// A call that breaks the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// EOF reported again for a direction that already had one.
    #[error("EOF reported twice for {0:?}")]
    EofTwice(Direction),
    /// Data reported after the direction's EOF.
    #[error("data reported after EOF for {0:?}")]
    DataAfterEof(Direction),
    /// A shutdown reported that was never asked for.
    #[error("shutdown of {0:?} reported but not requested")]
    UnrequestedShutdown(Direction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    Draining,
    Done,
}

/// The bookkeeping of one proxied connection.
#[derive(Debug, Clone)]
pub struct HalfClose {
    flows: [Flow; 2],
    bytes: [u64; 2],
    reset: bool,
    closed: bool,
    out: VecDeque<HalfCloseOutput>,
}

impl Default for HalfClose {
    fn default() -> Self {
        HalfClose::new()
    }
}

impl HalfClose {
    /// A connection with both directions open.
    pub fn new() -> Self {
        HalfClose {
            flows: [Flow::Open; 2],
            bytes: [0; 2],
            reset: false,
            closed: false,
            out: VecDeque::new(),
        }
    }

    /// `n` bytes were copied in `dir`.
    ///
    /// # Errors
    /// [`UsageError::DataAfterEof`] when `dir` already reached EOF.
    pub fn handle_copied(&mut self, dir: Direction, n: u64) -> Result<(), UsageError> {
        if self.reset {
            return Ok(());
        }
        if self.flows[dir.index()] != Flow::Open {
            return Err(UsageError::DataAfterEof(dir));
        }
        self.bytes[dir.index()] = self.bytes[dir.index()].saturating_add(n);
        Ok(())
    }

    /// The source of `dir` returned EOF.
    ///
    /// # Errors
    /// [`UsageError::EofTwice`] when reported again.
    pub fn handle_eof(&mut self, dir: Direction) -> Result<(), UsageError> {
        if self.reset {
            return Ok(());
        }
        let flow = &mut self.flows[dir.index()];
        if *flow != Flow::Open {
            return Err(UsageError::EofTwice(dir));
        }
        *flow = Flow::Draining;
        self.out
            .push_back(HalfCloseOutput::ShutdownWrite(dir.destination()));
        Ok(())
    }

    /// The write side of `dir`'s destination is shut down.
    ///
    /// # Errors
    /// [`UsageError::UnrequestedShutdown`] when no shutdown was asked for.
    pub fn handle_shutdown_done(&mut self, dir: Direction) -> Result<(), UsageError> {
        if self.reset {
            return Ok(());
        }
        let flow = &mut self.flows[dir.index()];
        if *flow != Flow::Draining {
            return Err(UsageError::UnrequestedShutdown(dir));
        }
        *flow = Flow::Done;
        if self.flows.iter().all(|f| *f == Flow::Done) && !self.closed {
            self.closed = true;
            self.out.push_back(HalfCloseOutput::Close);
        }
        Ok(())
    }

    /// A read, write or shutdown on `side` failed, or the peer reset it:
    /// both ends are reset.
    pub fn handle_error(&mut self, side: Side) {
        let _ = side;
        if self.reset || self.closed {
            return;
        }
        self.reset = true;
        self.out.clear();
        self.out.push_back(HalfCloseOutput::Reset);
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<HalfCloseOutput> {
        self.out.pop_front()
    }

    /// Whether the connection is over (closed cleanly or reset).
    pub fn is_finished(&self) -> bool {
        self.reset || self.closed
    }

    /// Whether it ended in a reset.
    pub fn is_reset(&self) -> bool {
        self.reset
    }

    /// Whether `dir` still carries data.
    pub fn is_open(&self, dir: Direction) -> bool {
        !self.reset && self.flows[dir.index()] == Flow::Open
    }

    /// Bytes copied in `dir`.
    pub fn bytes(&self, dir: Direction) -> u64 {
        self.bytes[dir.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::*;
    use HalfCloseOutput::*;
    use proptest::prelude::*;

    use crate::models::{HalfCloseModel, HalfCloseOp};

    fn drain(h: &mut HalfClose) -> Vec<HalfCloseOutput> {
        std::iter::from_fn(|| h.poll_output()).collect()
    }

    #[test]
    fn client_half_close_keeps_the_other_direction() {
        let mut h = HalfClose::new();
        h.handle_copied(LocalToRemote, 10).unwrap();
        h.handle_eof(LocalToRemote).unwrap();
        assert_eq!(drain(&mut h), vec![ShutdownWrite(Side::Remote)]);
        h.handle_shutdown_done(LocalToRemote).unwrap();
        assert!(drain(&mut h).is_empty());
        assert!(h.is_open(RemoteToLocal) && !h.is_finished());
        h.handle_copied(RemoteToLocal, 1 << 20).unwrap();
        h.handle_eof(RemoteToLocal).unwrap();
        assert_eq!(drain(&mut h), vec![ShutdownWrite(Side::Local)]);
        h.handle_shutdown_done(RemoteToLocal).unwrap();
        assert_eq!(drain(&mut h), vec![Close]);
        assert!(h.is_finished() && !h.is_reset());
        assert_eq!(
            (h.bytes(LocalToRemote), h.bytes(RemoteToLocal)),
            (10, 1 << 20)
        );
    }

    #[test]
    fn error_on_either_side_resets_both_once() {
        for side in [Side::Local, Side::Remote] {
            let mut h = HalfClose::new();
            h.handle_eof(LocalToRemote).unwrap();
            h.handle_error(side);
            assert_eq!(drain(&mut h), vec![Reset]);
            h.handle_error(side.max(Side::Local));
            h.handle_eof(RemoteToLocal).unwrap();
            assert!(drain(&mut h).is_empty());
            assert!(h.is_reset());
        }
    }

    #[test]
    fn half_close_then_reset_frees_slot() {
        let mut h = HalfClose::new();
        h.handle_eof(RemoteToLocal).unwrap();
        h.handle_shutdown_done(RemoteToLocal).unwrap();
        h.handle_error(Side::Remote);
        // A reset supersedes the shutdown not yet carried out.
        assert_eq!(drain(&mut h), vec![Reset]);
        assert!(h.is_finished());
    }

    #[test]
    fn contract_violations_are_errors() {
        let mut h = HalfClose::new();
        assert_eq!(
            h.handle_shutdown_done(LocalToRemote),
            Err(UsageError::UnrequestedShutdown(LocalToRemote))
        );
        h.handle_eof(LocalToRemote).unwrap();
        assert_eq!(
            h.handle_eof(LocalToRemote),
            Err(UsageError::EofTwice(LocalToRemote))
        );
        assert_eq!(
            h.handle_copied(LocalToRemote, 1),
            Err(UsageError::DataAfterEof(LocalToRemote))
        );
    }

    fn op() -> impl Strategy<Value = HalfCloseOp> {
        let dir = prop_oneof![Just(LocalToRemote), Just(RemoteToLocal)];
        let side = prop_oneof![Just(Side::Local), Just(Side::Remote)];
        prop_oneof![
            (dir.clone(), any::<u16>()).prop_map(|(d, n)| HalfCloseOp::Copied(d, u64::from(n))),
            dir.clone().prop_map(HalfCloseOp::Eof),
            dir.prop_map(HalfCloseOp::ShutdownDone),
            side.prop_map(HalfCloseOp::Error),
        ]
    }

    proptest! {
        /// The machine against the naive model of `crate::models`.
        #[test]
        fn agrees_with_the_model(ops in proptest::collection::vec(op(), 0..64)) {
            let mut h = HalfClose::new();
            let mut m = HalfCloseModel::default();
            for op in ops {
                let ok = op.apply_to(&mut h);
                let (model_ok, model_out) = m.apply(op);
                prop_assert_eq!(ok, model_ok, "{:?}", op);
                // A reset drops outputs not yet carried out.
                let out = drain(&mut h);
                prop_assert_eq!(out, model_out, "{:?}", op);
                m.assert_matches(&h);
            }
        }

        /// Closing and resetting are exclusive, and each happens at most once.
        #[test]
        fn close_and_reset_at_most_once(ops in proptest::collection::vec(op(), 0..64)) {
            let mut h = HalfClose::new();
            let mut finals = Vec::new();
            for op in ops {
                op.apply_to(&mut h);
                finals.extend(drain(&mut h).into_iter().filter(|o| matches!(o, Close | Reset)));
            }
            prop_assert!(finals.len() <= 1, "{:?}", finals);
        }
    }
}
