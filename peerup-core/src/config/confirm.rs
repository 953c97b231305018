//! Commit-confirmed config changes and the last-known-good archive
//! (WIRE.md §10), as a machine that emits file actions.
//!
//! `peerup config apply new.yaml --confirm-timeout 5m` swaps a new config in
//! and arms a deadline; unless `peerup config confirm` runs before it, the
//! daemon puts the old config back and exits so the service manager
//! restarts it on the config that worked. This is how a remote machine
//! survives a config change that cuts the owner off.
//!
//! ```text
//!            apply                         confirm
//!  Settled -------> Pending{deadline} ---------------> Settled (archive = new)
//!     ^                 |  deadline passes (running, or at start)
//!     |                 v
//!     +---------- Reverted: backup renamed over config, marker removed,
//!                 ExitForRestart
//! ```
//!
//! Files (names from [`ArchivePaths`]): the config, the backup
//! `.<name>.pre-confirmed<ext>`, the marker `.<name>.pending` (JSON, with the
//! deadline, so it survives restarts) and the archive
//! `.<name>.last-good<ext>`.
//!
//! The four flaws of the Go version are fixed here:
//! 1. `confirm` cancels a pending revert in a running daemon: the daemon
//!    either receives the confirm itself ([`Confirm::confirm`]) or, at the
//!    deadline, re-reads the marker ([`Confirm::handle_timeout`] takes the
//!    disk state) and finds it gone;
//! 2. the archive is written only for a confirmed config: at start with no
//!    change pending, or on confirm, never while a change awaits confirm;
//! 3. every write is an atomic replace ([`Action::WriteAtomic`] or
//!    [`Action::Rename`]), in an order where a crash between any two
//!    actions leaves either the old or the new config, never a mix, and
//!    a state the next start resolves;
//! 4. a deadline already past when the daemon starts reverts at once.
//!
//! # Call order
//! Create with [`Confirm::start`] (daemon) or [`Confirm::offline`] (a CLI
//! command), from what the caller read on disk. After creation and after
//! every call, drain [`Confirm::poll_output`] to `None` and carry out the
//! actions in order, stopping at the first that fails. Read
//! [`Confirm::poll_timeout`] and call [`Confirm::handle_timeout`] then,
//! with a fresh read of the marker.

use core::time::Duration;
use std::collections::VecDeque;
use std::path::PathBuf;

use super::archive::{ArchivePaths, PendingMarker};
use crate::time::UnixTime;

/// A file operation for the caller to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace `path` with `contents` atomically: a temporary file in the
    /// same directory (mode 0600), written, fsynced, renamed over `path`,
    /// directory fsynced.
    WriteAtomic {
        /// The file.
        path: PathBuf,
        /// Its new contents.
        contents: Vec<u8>,
    },
    /// Rename `from` over `to` (atomic), then fsync the directory.
    Rename {
        /// The source.
        from: PathBuf,
        /// The destination, replaced.
        to: PathBuf,
    },
    /// Remove `path`; a missing file is not an error.
    Remove {
        /// The file.
        path: PathBuf,
    },
    /// Exit non-zero so the service manager restarts the daemon on the
    /// config now on disk.
    ExitForRestart,
}

/// What happened, for the caller to log or print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A change awaits confirmation until `deadline`.
    Armed {
        /// The deadline.
        deadline: UnixTime,
    },
    /// A new config was applied; it must be confirmed by `deadline`.
    Applied {
        /// The deadline.
        deadline: UnixTime,
    },
    /// The pending change was confirmed.
    Confirmed,
    /// The pending change was not confirmed in time and was reverted
    /// (`commit-confirmed timeout`).
    Reverted {
        /// The deadline that passed.
        deadline: UnixTime,
    },
    /// The running config was archived as last-known-good.
    Archived,
    /// The last-known-good config was restored.
    RolledBack,
    /// The marker could not be read; the change is treated as unconfirmed.
    DamagedMarker {
        /// Why it could not be read.
        reason: String,
    },
}

/// One output: an action or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Carry this out.
    Action(Action),
    /// Report this.
    Event(Event),
}

/// The marker as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerState {
    /// No marker file.
    Absent,
    /// A marker that decoded.
    Present(PendingMarker),
    /// A marker file that did not decode (the reason).
    Damaged(String),
}

/// What the caller read on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDisk {
    /// The marker.
    pub marker: MarkerState,
    /// Whether the backup file exists.
    pub backup_exists: bool,
}

impl OnDisk {
    /// Nothing pending, no backup.
    pub fn settled() -> Self {
        OnDisk {
            marker: MarkerState::Absent,
            backup_exists: false,
        }
    }
}

/// A request that cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfirmError {
    /// `apply` while another change awaits confirmation.
    #[error(
        "a config change is already pending until {deadline}; run `peerup config confirm` or wait for it to revert"
    )]
    AlreadyPending {
        /// Its deadline.
        deadline: UnixTime,
    },
    /// `confirm` with nothing pending.
    #[error("no config change is pending confirmation")]
    NothingPending,
    /// `rollback` with no archive.
    #[error(
        "no last-known-good config exists yet (it is written when the daemon starts on a confirmed config)"
    )]
    NoArchive,
    /// A timeout of zero.
    #[error("--confirm-timeout must be greater than 0")]
    ZeroTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Settled,
    Pending {
        deadline: UnixTime,
    },
    /// Reverted; waiting to be restarted.
    Reverted,
}

/// The commit-confirmed machine for one config file.
#[derive(Debug)]
pub struct Confirm {
    paths: ArchivePaths,
    config: PathBuf,
    state: State,
    out: VecDeque<Output>,
}

impl Confirm {
    fn new(config: PathBuf, paths: ArchivePaths) -> Self {
        Confirm {
            paths,
            config,
            state: State::Settled,
            out: VecDeque::new(),
        }
    }

    /// For a one-shot CLI command (`apply`, `confirm`, `rollback`): takes
    /// the pending state from disk, writes nothing by itself.
    pub fn offline(config: PathBuf, paths: ArchivePaths, disk: &OnDisk) -> Self {
        let mut c = Confirm::new(config, paths);
        c.state = match &disk.marker {
            MarkerState::Absent => State::Settled,
            MarkerState::Present(m) => State::Pending {
                deadline: m.deadline,
            },
            // A damaged marker still means a change is pending; it can be
            // confirmed (which removes it) but not stacked on.
            MarkerState::Damaged(_) => State::Pending {
                deadline: UnixTime::EPOCH,
            },
        };
        c
    }

    /// For the daemon, at start, after it validated `config_contents` (the
    /// config it is about to run on). Reverts at once when a pending
    /// deadline has passed, arms the deadline otherwise, and archives the
    /// config as last-known-good only when no change is pending.
    pub fn start(
        config: PathBuf,
        paths: ArchivePaths,
        now: UnixTime,
        disk: &OnDisk,
        config_contents: &[u8],
    ) -> Self {
        let mut c = Confirm::new(config, paths);
        match &disk.marker {
            MarkerState::Absent => {
                if disk.backup_exists {
                    // An apply crashed before its marker: the config on disk
                    // is still the old one.
                    c.action(Action::Remove {
                        path: c.paths.pre_confirmed.clone(),
                    });
                }
                c.archive(config_contents);
            }
            MarkerState::Present(m) if now < m.deadline => {
                c.state = State::Pending {
                    deadline: m.deadline,
                };
                c.event(Event::Armed {
                    deadline: m.deadline,
                });
            }
            MarkerState::Present(m) => c.revert(m.deadline, disk.backup_exists),
            MarkerState::Damaged(reason) => {
                c.event(Event::DamagedMarker {
                    reason: reason.clone(),
                });
                c.revert(UnixTime::EPOCH, disk.backup_exists);
            }
        }
        c
    }

    /// Whether a change awaits confirmation.
    pub fn pending_deadline(&self) -> Option<UnixTime> {
        match self.state {
            State::Pending { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Whether the machine reverted and the process should exit.
    pub fn is_reverted(&self) -> bool {
        self.state == State::Reverted
    }

    /// Applies `new` (already validated by the caller) in place of
    /// `current`, to be confirmed within `timeout` of `now`.
    ///
    /// # Errors
    /// [`ConfirmError::AlreadyPending`] (never two pending changes),
    /// [`ConfirmError::ZeroTimeout`].
    pub fn apply(
        &mut self,
        now: UnixTime,
        current: &[u8],
        new: &[u8],
        timeout: Duration,
    ) -> Result<(), ConfirmError> {
        if let State::Pending { deadline } = self.state {
            return Err(ConfirmError::AlreadyPending { deadline });
        }
        if timeout.is_zero() {
            return Err(ConfirmError::ZeroTimeout);
        }
        let deadline = now.saturating_add(timeout);
        let marker = PendingMarker {
            deadline,
            backup: self.paths.pre_confirmed.clone(),
        };
        // A marker always encodes (a UTF-8 path and a valid time); should it
        // not, nothing has been written yet and nothing is lost.
        let Ok(json) = marker.encode() else {
            return Err(ConfirmError::AlreadyPending { deadline });
        };
        // Order: backup, then marker, then the swap. A crash before the
        // marker leaves the old config and a stray backup (cleaned at
        // start); after it, the revert finds the backup in place.
        self.action(Action::WriteAtomic {
            path: self.paths.pre_confirmed.clone(),
            contents: current.to_vec(),
        });
        self.action(Action::WriteAtomic {
            path: self.paths.pending.clone(),
            contents: json.into_bytes(),
        });
        self.action(Action::WriteAtomic {
            path: self.config.clone(),
            contents: new.to_vec(),
        });
        self.state = State::Pending { deadline };
        self.event(Event::Applied { deadline });
        Ok(())
    }

    /// Confirms the pending change; `current` is the config now on disk
    /// (the applied one), which becomes the last-known-good archive.
    ///
    /// # Errors
    /// [`ConfirmError::NothingPending`].
    pub fn confirm(&mut self, current: &[u8]) -> Result<(), ConfirmError> {
        if !matches!(self.state, State::Pending { .. }) {
            return Err(ConfirmError::NothingPending);
        }
        // The marker's removal is the commit point, so it goes first: were
        // the archive written before it and the process crashed, the
        // archive would hold a config that then reverts. A crash after it
        // leaves an older (still confirmed) archive, refreshed at the next
        // start, and a stray backup, removed at the next start.
        self.action(Action::Remove {
            path: self.paths.pending.clone(),
        });
        self.action(Action::WriteAtomic {
            path: self.paths.last_good.clone(),
            contents: current.to_vec(),
        });
        self.action(Action::Remove {
            path: self.paths.pre_confirmed.clone(),
        });
        self.state = State::Settled;
        self.event(Event::Confirmed);
        self.event(Event::Archived);
        Ok(())
    }

    /// Restores the last-known-good config (`archive`, if one exists); a
    /// pending change is dropped with it.
    ///
    /// # Errors
    /// [`ConfirmError::NoArchive`].
    pub fn rollback(&mut self, archive: Option<&[u8]>) -> Result<(), ConfirmError> {
        let archive = archive.ok_or(ConfirmError::NoArchive)?;
        self.action(Action::WriteAtomic {
            path: self.config.clone(),
            contents: archive.to_vec(),
        });
        if matches!(self.state, State::Pending { .. }) {
            self.action(Action::Remove {
                path: self.paths.pending.clone(),
            });
            self.action(Action::Remove {
                path: self.paths.pre_confirmed.clone(),
            });
            self.state = State::Settled;
        }
        self.event(Event::RolledBack);
        Ok(())
    }

    /// The deadline, when armed.
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        self.pending_deadline()
    }

    /// Time passed; `disk` is a fresh read of the marker and backup. If the
    /// marker is gone, someone confirmed (or rolled back) without telling
    /// this process: nothing is reverted. Otherwise, at the deadline, the
    /// backup goes back and the process must exit.
    pub fn handle_timeout(&mut self, now: UnixTime, disk: &OnDisk) {
        let State::Pending { deadline } = self.state else {
            return;
        };
        match &disk.marker {
            MarkerState::Absent => {
                self.state = State::Settled;
                self.event(Event::Confirmed);
            }
            // A later apply (after an outside confirm) moved the deadline.
            MarkerState::Present(m) if m.deadline != deadline && now < m.deadline => {
                self.state = State::Pending {
                    deadline: m.deadline,
                };
                self.event(Event::Armed {
                    deadline: m.deadline,
                });
            }
            _ if now < deadline => {}
            _ => self.revert(deadline, disk.backup_exists),
        }
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn revert(&mut self, deadline: UnixTime, backup_exists: bool) {
        if backup_exists {
            self.action(Action::Rename {
                from: self.paths.pre_confirmed.clone(),
                to: self.config.clone(),
            });
            self.action(Action::Remove {
                path: self.paths.pending.clone(),
            });
            self.state = State::Reverted;
            self.event(Event::Reverted { deadline });
            self.action(Action::ExitForRestart);
        } else {
            // The backup was already renamed back before a crash: the config
            // on disk is the old one; only the marker is left to remove.
            self.action(Action::Remove {
                path: self.paths.pending.clone(),
            });
            self.state = State::Settled;
            self.event(Event::Reverted { deadline });
        }
    }

    fn archive(&mut self, contents: &[u8]) {
        self.action(Action::WriteAtomic {
            path: self.paths.last_good.clone(),
            contents: contents.to_vec(),
        });
        self.event(Event::Archived);
    }

    fn action(&mut self, a: Action) {
        self.out.push_back(Output::Action(a));
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }
}

#[cfg(test)]
mod tests {

    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::models::Disk;

    const CFG: &str = "/etc/peerup/config.yaml";

    fn paths() -> ArchivePaths {
        ArchivePaths::new(Path::new(CFG)).unwrap()
    }

    fn disk_with(config: &[u8]) -> Disk {
        Disk::new(CFG, config)
    }

    fn t(s: i64) -> UnixTime {
        UnixTime::from_secs(s)
    }

    fn start(d: &mut Disk, now: UnixTime) -> (Confirm, Vec<Event>, bool) {
        d.start(now)
    }

    fn apply(d: &mut Disk, now: UnixTime, new: &[u8], secs: u64) -> Result<(), ConfirmError> {
        let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
        let current = d.config().to_vec();
        cli.apply(now, &current, new, Duration::from_secs(secs))?;
        d.run(&mut cli, usize::MAX);
        Ok(())
    }

    #[test]
    fn unconfirmed_change_reverts_at_the_deadline_and_exits() {
        let mut d = disk_with(b"old");
        let (_, ev, _) = start(&mut d, t(0));
        assert_eq!(ev, vec![Event::Archived]);
        apply(&mut d, t(10), b"new", 300).unwrap();
        assert_eq!(d.config(), b"new");
        let (mut daemon, ev, exit) = start(&mut d, t(11));
        assert_eq!(ev, vec![Event::Armed { deadline: t(310) }]);
        assert!(!exit);
        assert_eq!(daemon.poll_timeout(), Some(t(310)));
        daemon.handle_timeout(t(309), &d.on_disk());
        assert_eq!(d.run(&mut daemon, usize::MAX).0, vec![]);
        daemon.handle_timeout(t(310), &d.on_disk());
        let (ev, exit, _) = d.run(&mut daemon, usize::MAX);
        assert_eq!(ev, vec![Event::Reverted { deadline: t(310) }]);
        assert!(exit && daemon.is_reverted());
        assert_eq!(d.config(), b"old");
        assert_eq!(d.on_disk(), OnDisk::settled());
        // The archive still holds the confirmed old config, never "new".
        assert_eq!(d.files[&paths().last_good], b"old");
    }

    #[test]
    fn confirm_in_the_running_daemon_cancels_the_revert() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 300).unwrap();
        let (mut daemon, _, _) = start(&mut d, t(11));
        let current = d.config().to_vec();
        daemon.confirm(&current).unwrap();
        let (ev, _, _) = d.run(&mut daemon, usize::MAX);
        assert_eq!(ev, vec![Event::Confirmed, Event::Archived]);
        assert_eq!(daemon.poll_timeout(), None);
        daemon.handle_timeout(t(400), &d.on_disk());
        assert!(d.run(&mut daemon, usize::MAX).0.is_empty());
        assert_eq!(d.config(), b"new");
        assert_eq!(d.files[&paths().last_good], b"new");
        assert_eq!(d.on_disk(), OnDisk::settled());
    }

    #[test]
    fn confirm_from_another_process_is_seen_at_the_deadline() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 300).unwrap();
        let (mut daemon, _, _) = start(&mut d, t(11));
        let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
        let current = d.config().to_vec();
        cli.confirm(&current).unwrap();
        d.run(&mut cli, usize::MAX);
        daemon.handle_timeout(t(310), &d.on_disk());
        let (ev, exit, _) = d.run(&mut daemon, usize::MAX);
        assert_eq!(ev, vec![Event::Confirmed]);
        assert!(!exit);
        assert_eq!(d.config(), b"new");
    }

    #[test]
    fn deadline_past_at_start_reverts_at_once() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 5).unwrap();
        let (_, ev, exit) = start(&mut d, t(15));
        assert_eq!(ev, vec![Event::Reverted { deadline: t(15) }]);
        assert!(exit);
        assert_eq!(d.config(), b"old");
        // The restart then runs on the old config and archives it.
        let (_, ev, exit) = start(&mut d, t(16));
        assert_eq!(ev, vec![Event::Archived]);
        assert!(!exit);
    }

    #[test]
    fn never_two_pending() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 300).unwrap();
        assert_eq!(
            apply(&mut d, t(11), b"newer", 300),
            Err(ConfirmError::AlreadyPending { deadline: t(310) })
        );
        assert_eq!(d.config(), b"new");
    }

    #[test]
    fn archive_is_not_written_for_a_pending_config() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 300).unwrap();
        let (_, ev, _) = start(&mut d, t(11));
        assert!(!ev.contains(&Event::Archived));
        assert!(!d.files.contains_key(&paths().last_good));
    }

    #[test]
    fn rollback_restores_the_archive_and_drops_a_pending_change() {
        let mut d = disk_with(b"good");
        start(&mut d, t(0));
        apply(&mut d, t(10), b"bad", 300).unwrap();
        let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
        let archive = d.files.get(&paths().last_good).cloned();
        cli.rollback(archive.as_deref()).unwrap();
        d.run(&mut cli, usize::MAX);
        assert_eq!(d.config(), b"good");
        assert_eq!(d.on_disk(), OnDisk::settled());
        let mut fresh = Confirm::offline(PathBuf::from(CFG), paths(), &OnDisk::settled());
        assert_eq!(fresh.rollback(None), Err(ConfirmError::NoArchive));
    }

    #[test]
    fn usage_errors() {
        let mut m = Confirm::offline(PathBuf::from(CFG), paths(), &OnDisk::settled());
        assert_eq!(m.confirm(b"x"), Err(ConfirmError::NothingPending));
        assert_eq!(
            m.apply(t(0), b"a", b"b", Duration::ZERO),
            Err(ConfirmError::ZeroTimeout)
        );
        assert!(m.poll_output().is_none());
    }

    #[test]
    fn damaged_marker_counts_as_unconfirmed() {
        let mut d = disk_with(b"old");
        apply(&mut d, t(10), b"new", 300).unwrap();
        d.files.insert(paths().pending, b"{not json".to_vec());
        let (_, ev, exit) = start(&mut d, t(11));
        assert!(matches!(ev[0], Event::DamagedMarker { .. }), "{ev:?}");
        assert!(exit);
        assert_eq!(d.config(), b"old");
        assert_eq!(d.on_disk(), OnDisk::settled());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Apply {
            secs: u64,
            crash_after: Option<usize>,
        },
        ConfirmDaemon,
        ConfirmCli {
            crash_after: Option<usize>,
        },
        Restart,
        Advance(u64),
        Rollback,
    }

    fn op() -> impl Strategy<Value = Op> {
        let crash = proptest::option::of(0usize..4);
        prop_oneof![
            (1u64..600, crash.clone())
                .prop_map(|(secs, crash_after)| Op::Apply { secs, crash_after }),
            Just(Op::ConfirmDaemon),
            crash.prop_map(|crash_after| Op::ConfirmCli { crash_after }),
            Just(Op::Restart),
            (0u64..900).prop_map(Op::Advance),
            Just(Op::Rollback),
        ]
    }

    /// Checks the machine against its promises over random sequences of
    /// applies, confirms (in the daemon or from the CLI), restarts, time,
    /// rollbacks and crashes in the middle of a command.
    fn check(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut d = disk_with(b"v0");
        let mut now = t(1_000);
        // Versions ever confirmed (the initial config counts).
        let mut confirmed: Vec<Vec<u8>> = vec![b"v0".to_vec()];
        // (old, new, deadline) of an unresolved apply.
        let mut pending: Option<(Vec<u8>, Vec<u8>, UnixTime)> = None;
        let mut written: Vec<Vec<u8>> = vec![b"v0".to_vec()];
        let mut next = 1u32;
        let (mut daemon, _, mut exit) = start(&mut d, now);
        for op in ops {
            while exit {
                let (m, _, e) = start(&mut d, now);
                daemon = m;
                exit = e;
                if let Some((old, _, dl)) = &pending
                    && now >= *dl
                {
                    prop_assert_eq!(
                        d.config(),
                        old.as_slice(),
                        "restart past the deadline kept the new config"
                    );
                    pending = None;
                }
            }
            match op {
                Op::Apply { secs, crash_after } => {
                    let new = format!("v{next}").into_bytes();
                    next += 1;
                    let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
                    let current = d.config().to_vec();
                    match cli.apply(now, &current, &new, Duration::from_secs(secs)) {
                        Err(ConfirmError::AlreadyPending { .. }) => {
                            prop_assert!(
                                pending.is_some()
                                    || matches!(d.on_disk().marker, MarkerState::Present(_))
                            );
                            prop_assert!(cli.poll_output().is_none());
                        }
                        Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
                        Ok(()) => {
                            prop_assert!(
                                pending.is_none(),
                                "apply accepted while another change is pending"
                            );
                            written.push(new.clone());
                            let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                            if !crashed || crash_after.unwrap_or(0) >= 2 {
                                pending = Some((
                                    current,
                                    new,
                                    now.saturating_add(Duration::from_secs(secs)),
                                ));
                            }
                        }
                    }
                    // README: apply, then restart the service.
                    let (m, _, e) = start(&mut d, now);
                    daemon = m;
                    exit = e;
                }
                Op::ConfirmDaemon => {
                    let current = d.config().to_vec();
                    let outside_confirm = d.on_disk().marker == MarkerState::Absent;
                    if daemon.confirm(&current).is_ok() {
                        // The daemon may not have seen a confirm from another
                        // process yet; confirming again is harmless.
                        prop_assert!(
                            pending.is_some() || outside_confirm,
                            "daemon confirmed with nothing pending"
                        );
                        d.run(&mut daemon, usize::MAX);
                        confirmed.push(current);
                        pending = None;
                    }
                }
                Op::ConfirmCli { crash_after } => {
                    let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
                    let current = d.config().to_vec();
                    if cli.confirm(&current).is_ok() {
                        let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                        // The marker's removal (first action) is the commit.
                        if !crashed || crash_after.unwrap_or(0) >= 1 {
                            confirmed.push(current);
                            pending = None;
                        }
                    }
                }
                Op::Restart => {
                    let (m, _, e) = start(&mut d, now);
                    daemon = m;
                    exit = e;
                }
                Op::Advance(s) => {
                    now = now.saturating_add(Duration::from_secs(s));
                    if daemon.poll_timeout().is_some_and(|dl| dl <= now) {
                        daemon.handle_timeout(now, &d.on_disk());
                        let (_, e, _) = d.run(&mut daemon, usize::MAX);
                        exit = e;
                    }
                }
                Op::Rollback => {
                    let mut cli = Confirm::offline(PathBuf::from(CFG), paths(), &d.on_disk());
                    let archive = d.files.get(&paths().last_good).cloned();
                    if cli.rollback(archive.as_deref()).is_ok() {
                        d.run(&mut cli, usize::MAX);
                        pending = None;
                        let (m, _, e) = start(&mut d, now);
                        daemon = m;
                        exit = e;
                    }
                }
            }
            // Invariants after every step.
            prop_assert!(
                written.iter().any(|v| v.as_slice() == d.config()),
                "config is neither old nor new"
            );
            if let Some(a) = d.files.get(&paths().last_good) {
                prop_assert!(
                    confirmed.contains(a),
                    "archive holds an unconfirmed config {:?}",
                    a
                );
            }
            if let Some((old, new, _)) = &pending {
                prop_assert!(d.config() == old.as_slice() || d.config() == new.as_slice());
            }
            let marker = matches!(d.on_disk().marker, MarkerState::Present(_));
            if !marker && pending.is_none() {
                // Settled: what runs is a confirmed config.
                prop_assert!(
                    confirmed.iter().any(|v| v.as_slice() == d.config()),
                    "settled on an unconfirmed config"
                );
            }
        }
        // Finally, let every deadline pass: an unconfirmed change reverts,
        // a confirmed one stays.
        now = now.saturating_add(Duration::from_secs(10_000));
        loop {
            let (mut m, _, e) = start(&mut d, now);
            if !e {
                m.handle_timeout(now, &d.on_disk());
                let (_, e2, _) = d.run(&mut m, usize::MAX);
                if !e2 {
                    break;
                }
            }
        }
        prop_assert!(
            confirmed.iter().any(|v| v.as_slice() == d.config()),
            "an unconfirmed config survived its deadline"
        );
        prop_assert_eq!(d.on_disk(), OnDisk::settled());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn model(ops in proptest::collection::vec(op(), 0..48)) {
            check(ops)?;
        }
    }
}
