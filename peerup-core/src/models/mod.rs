//! Reference models: the naive versions of the core's machines that the
//! proptests beside each machine and the fuzz targets of [`crate::fuzzing`]
//! check them against. One copy of each, so a test and a fuzz target can
//! never disagree about what the machine should do.
//!
//! Compiled for the crate's own tests and with the `internal-test-exports`
//! feature (which the fuzz crate and the integration tests turn on); not
//! part of the API a normal build sees.
//!
//! | model | machine | used by |
//! |---|---|---|
//! | [`HalfCloseModel`] | [`crate::proxy::half_close::HalfClose`] | its proptest, `fuzzing::half_close` |
//! | [`Disk`] | [`crate::config::confirm::Confirm`] | its tests and `model` proptest, `fuzzing::confirm` |
//! | [`reservation::Sim`] | [`crate::reservation::Reservations`] | `tests/reservation_sim.rs`, `fuzzing::reservation` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::archive::{ArchivePaths, PendingMarker};
use crate::config::confirm::{Action, Confirm, Event, MarkerState, OnDisk, Output};
use crate::proxy::half_close::{Direction, HalfClose, HalfCloseOutput, Side};
use crate::time::UnixTime;

/// One call on [`HalfClose`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfCloseOp {
    /// [`HalfClose::handle_copied`].
    Copied(Direction, u64),
    /// [`HalfClose::handle_eof`].
    Eof(Direction),
    /// [`HalfClose::handle_shutdown_done`].
    ShutdownDone(Direction),
    /// [`HalfClose::handle_error`].
    Error(Side),
}

impl HalfCloseOp {
    /// Makes the call on `machine`; whether it was accepted.
    pub fn apply_to(self, machine: &mut HalfClose) -> bool {
        match self {
            HalfCloseOp::Copied(d, n) => machine.handle_copied(d, n).is_ok(),
            HalfCloseOp::Eof(d) => machine.handle_eof(d).is_ok(),
            HalfCloseOp::ShutdownDone(d) => machine.handle_shutdown_done(d).is_ok(),
            HalfCloseOp::Error(s) => {
                machine.handle_error(s);
                true
            }
        }
    }
}

/// The naive reference of [`HalfClose`]: per direction (EOF seen, shut
/// down), a reset flag, and what each call should produce.
#[derive(Debug, Default, Clone)]
pub struct HalfCloseModel {
    /// EOF seen, per direction ([`HalfCloseModel::index`]).
    pub eof: [bool; 2],
    /// Write side shut down, per direction.
    pub shut: [bool; 2],
    /// Reset by an error.
    pub reset: bool,
    /// Closed cleanly (both directions shut down).
    pub closed: bool,
    /// Bytes copied, per direction.
    pub bytes: [u64; 2],
}

impl HalfCloseModel {
    /// The slot of `d` in the per-direction arrays.
    pub fn index(d: Direction) -> usize {
        usize::from(d == Direction::RemoteToLocal)
    }

    /// Applies `op`: whether the machine must accept it, and the outputs it
    /// must produce.
    pub fn apply(&mut self, op: HalfCloseOp) -> (bool, Vec<HalfCloseOutput>) {
        let index = Self::index;
        if self.reset {
            return (true, vec![]);
        }
        match op {
            HalfCloseOp::Copied(d, n) => {
                if self.eof[index(d)] {
                    return (false, vec![]);
                }
                self.bytes[index(d)] = self.bytes[index(d)].saturating_add(n);
                (true, vec![])
            }
            HalfCloseOp::Eof(d) => {
                if self.eof[index(d)] {
                    return (false, vec![]);
                }
                self.eof[index(d)] = true;
                (true, vec![HalfCloseOutput::ShutdownWrite(d.destination())])
            }
            HalfCloseOp::ShutdownDone(d) => {
                if !self.eof[index(d)] || self.shut[index(d)] {
                    return (false, vec![]);
                }
                self.shut[index(d)] = true;
                if self.shut == [true, true] {
                    self.closed = true;
                    return (true, vec![HalfCloseOutput::Close]);
                }
                (true, vec![])
            }
            HalfCloseOp::Error(_) => {
                if self.closed {
                    return (true, vec![]);
                }
                self.reset = true;
                (true, vec![HalfCloseOutput::Reset])
            }
        }
    }

    /// Panics unless `machine` reports the model's flags and byte counts.
    pub fn assert_matches(&self, machine: &HalfClose) {
        assert_eq!(machine.is_finished(), self.reset || self.closed, "finished");
        assert_eq!(machine.is_reset(), self.reset, "reset");
        for d in Direction::ALL {
            assert_eq!(machine.bytes(d), self.bytes[Self::index(d)], "{d:?}: bytes");
            assert_eq!(
                machine.is_open(d),
                !self.reset && !self.eof[Self::index(d)],
                "{d:?}: open"
            );
        }
    }
}

/// An in-memory directory holding one config file, carrying out
/// [`Confirm`]'s actions the way the adapter must: atomically, one at a
/// time, and able to stop after any of them (a crash).
#[derive(Debug, Clone)]
pub struct Disk {
    /// The files, by path.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// The archive's paths for [`Disk::config_path`].
    pub paths: ArchivePaths,
    config_path: PathBuf,
}

impl Disk {
    /// A directory with the config file `config_path` holding `contents`.
    ///
    /// # Panics
    /// When `config_path` has no file name (no archive paths).
    pub fn new(config_path: &str, contents: &[u8]) -> Self {
        let paths = match ArchivePaths::new(Path::new(config_path)) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        Disk {
            files: BTreeMap::from([(PathBuf::from(config_path), contents.to_vec())]),
            paths,
            config_path: PathBuf::from(config_path),
        }
    }

    /// The config file's path.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// What the adapter would tell the machine about the directory.
    pub fn on_disk(&self) -> OnDisk {
        let marker = match self.files.get(&self.paths.pending) {
            None => MarkerState::Absent,
            Some(b) => match PendingMarker::decode(core::str::from_utf8(b).unwrap_or("")) {
                Ok(m) => MarkerState::Present(m),
                Err(e) => MarkerState::Damaged(e.to_string()),
            },
        };
        OnDisk {
            marker,
            backup_exists: self.files.contains_key(&self.paths.pre_confirmed),
        }
    }

    /// The config file's contents.
    ///
    /// # Panics
    /// When the config file is gone (no action may remove it).
    pub fn config(&self) -> Vec<u8> {
        match self.files.get(&self.config_path) {
            Some(c) => c.clone(),
            None => panic!("the config file is gone"),
        }
    }

    /// The last-good archive, if any.
    pub fn archive(&self) -> Option<Vec<u8>> {
        self.files.get(&self.paths.last_good).cloned()
    }

    /// Carries out the machine's outputs; stops after `limit` actions (a
    /// crash). Returns (events, exit requested, crashed).
    ///
    /// # Panics
    /// When an action renames a missing file.
    pub fn run(&mut self, m: &mut Confirm, limit: usize) -> (Vec<Event>, bool, bool) {
        let (mut events, mut exit, mut done) = (vec![], false, 0);
        while let Some(o) = m.poll_output() {
            match o {
                Output::Event(e) => events.push(e),
                Output::Action(a) => {
                    if done == limit {
                        return (events, exit, true);
                    }
                    done += 1;
                    match a {
                        Action::WriteAtomic { path, contents } => {
                            self.files.insert(path, contents);
                        }
                        Action::Rename { from, to } => {
                            let Some(v) = self.files.remove(&from) else {
                                panic!("rename of the missing file {}", from.display());
                            };
                            self.files.insert(to, v);
                        }
                        Action::Remove { path } => {
                            self.files.remove(&path);
                        }
                        Action::ExitForRestart => exit = true,
                    }
                }
            }
        }
        (events, exit, false)
    }

    /// A daemon starting at `now`: the machine, its events, and whether it
    /// asked to exit for a restart.
    pub fn start(&mut self, now: UnixTime) -> (Confirm, Vec<Event>, bool) {
        let config = self.config();
        let mut m = Confirm::start(
            self.config_path.clone(),
            self.paths.clone(),
            now,
            &self.on_disk(),
            &config,
        );
        let (events, exit, _) = self.run(&mut m, usize::MAX);
        (m, events, exit)
    }

    /// The CLI's machine (no daemon).
    pub fn cli(&self) -> Confirm {
        Confirm::offline(
            self.config_path.clone(),
            self.paths.clone(),
            &self.on_disk(),
        )
    }
}

pub mod reservation;
