//! Watching the path to one peer: a relayed connection first, then the
//! direct one a hole punch (DCUtR) adds, or the hole punch's failure. What
//! `peerup ping` and the demo say about the path comes from here, so it is
//! what the node saw, not a guess.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt};
use libp2p::PeerId;
use peerup_core::wire::ConnectionPath;

use super::{Event, Node};

/// What became of a relayed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    /// A direct connection now exists. `after` is the time from the relayed
    /// connection (or, when it predates the watch, from the watch's start)
    /// to the direct one; `None` when the path was direct from the start.
    Direct {
        /// Time to the upgrade.
        after: Option<Duration>,
    },
    /// The hole punch failed; traffic stays on the relay.
    HolePunchFailed {
        /// Why, as libp2p says it.
        error: String,
    },
    /// Neither happened within the wait.
    NoChange {
        /// How long it waited.
        waited: Duration,
    },
}

/// Watches one peer's path; make it before connecting so the relayed
/// connection's time is seen.
pub struct PathWatch {
    node: Node,
    peer: PeerId,
    events: Pin<Box<dyn Stream<Item = Event> + Send>>,
    /// When the relayed path began (seen, or the watch's start).
    relayed_since: Instant,
    /// A change seen and not yet taken.
    pending: Option<PathChange>,
    /// The upgrade (or failure) was reported already.
    settled: bool,
    /// A relayed connection was seen.
    saw_relayed: bool,
}

impl Node {
    /// Starts watching the path to `peer` (see [`PathWatch`]).
    pub fn watch_path(&self, peer: PeerId) -> PathWatch {
        PathWatch {
            events: Box::pin(self.events()),
            node: self.clone(),
            peer,
            relayed_since: self.runtime().now(),
            pending: None,
            settled: false,
            saw_relayed: false,
        }
    }
}

impl PathWatch {
    fn see(&mut self, e: Event, now: Instant) {
        if self.settled {
            return;
        }
        match e {
            Event::Connected { peer, path, .. } if peer == self.peer => match path {
                ConnectionPath::Relayed if !self.saw_relayed => {
                    self.saw_relayed = true;
                    self.relayed_since = now;
                }
                // A direct connection (hole punched, or dialed on a LAN).
                ConnectionPath::Direct => {
                    self.pending = Some(PathChange::Direct {
                        after: Some(now.saturating_duration_since(self.relayed_since)),
                    });
                }
                ConnectionPath::Relayed => {}
            },
            Event::Upgraded { peer } if peer == self.peer => {
                self.pending = Some(PathChange::Direct {
                    after: Some(now.saturating_duration_since(self.relayed_since)),
                });
            }
            Event::HolePunchFailed { peer, error }
                if peer == self.peer && self.pending.is_none() =>
            {
                self.pending = Some(PathChange::HolePunchFailed { error });
            }
            _ => {}
        }
    }

    /// Reads the events that arrived, without waiting.
    fn drain(&mut self) {
        while let Some(Some(e)) = self.events.next().now_or_never() {
            let now = self.node.runtime().now();
            self.see(e, now);
        }
    }

    /// The upgrade or the hole punch failure, once, if either has happened
    /// since the watch began; never waits.
    pub fn take_change(&mut self) -> Option<PathChange> {
        self.drain();
        let c = self.pending.take()?;
        self.settled = true;
        Some(c)
    }

    /// Waits up to `within` for a direct connection to the peer: at once
    /// [`PathChange::Direct`] with `after: None` if the path is direct
    /// already (and no upgrade was seen), else the upgrade, the hole
    /// punch's failure, or [`PathChange::NoChange`].
    pub async fn wait_direct(&mut self, within: Duration) -> PathChange {
        if let Some(c) = self.take_change() {
            return c;
        }
        if self.node.path(self.peer) == Some(ConnectionPath::Direct) {
            self.settled = true;
            return PathChange::Direct { after: None };
        }
        let rt = self.node.runtime();
        let deadline = rt.now() + within;
        loop {
            let left = deadline.saturating_duration_since(rt.now());
            match rt.timeout(left, self.events.next()).await {
                Some(Some(e)) => {
                    let now = rt.now();
                    self.see(e, now);
                    if let Some(c) = self.pending.take() {
                        self.settled = true;
                        return c;
                    }
                }
                Some(None) | None => {
                    // A subscriber that fell behind misses events: the
                    // path itself has the last word.
                    self.settled = true;
                    if self.node.path(self.peer) == Some(ConnectionPath::Direct) {
                        return PathChange::Direct { after: None };
                    }
                    return PathChange::NoChange { waited: within };
                }
            }
        }
    }
}
