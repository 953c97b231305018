//! The file side of the core's commit-confirmed machine
//! ([`peerup_core::config::confirm`]): reading the marker and backup, and
//! carrying out the machine's actions atomically.

use std::path::Path;

use peerup_core::config::archive::{ArchivePaths, PendingMarker};
use peerup_core::config::confirm::{Action, Confirm, Event, MarkerState, OnDisk, Output};

use crate::fs::{self, FsError};

/// What is on disk beside the config at `paths`.
pub fn read_state(paths: &ArchivePaths) -> OnDisk {
    let marker = match fs::read_text(&paths.pending) {
        Ok(text) => match PendingMarker::decode(&text) {
            Ok(m) => MarkerState::Present(m),
            Err(e) => MarkerState::Damaged(e.to_string()),
        },
        Err(e) if e.is_not_found() => MarkerState::Absent,
        Err(e) => MarkerState::Damaged(e.to_string()),
    };
    OnDisk {
        marker,
        backup_exists: paths.pre_confirmed.exists(),
    }
}

/// The result of draining a machine.
#[derive(Debug, Default)]
pub struct Drained {
    /// Events, in order.
    pub events: Vec<Event>,
    /// Whether the machine asked the process to exit for a restart.
    pub exit_for_restart: bool,
}

/// Drains `machine`, carrying out every action in order and stopping at the
/// first that fails.
///
/// # Errors
/// The failing file operation.
pub fn drain(machine: &mut Confirm) -> Result<Drained, FsError> {
    let mut out = Drained::default();
    while let Some(o) = machine.poll_output() {
        match o {
            Output::Event(e) => out.events.push(e),
            Output::Action(Action::ExitForRestart) => out.exit_for_restart = true,
            Output::Action(a) => fs::apply(&a)?,
        }
    }
    Ok(out)
}

/// The archive paths of a config file.
///
/// # Errors
/// A path without a file name.
pub fn paths(config: &Path) -> Result<ArchivePaths, FsError> {
    ArchivePaths::new(config).map_err(|e| {
        FsError::io(
            config,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        )
    })
}
