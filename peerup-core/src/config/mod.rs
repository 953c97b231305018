//! Config files: `peerup.yaml` (WIRE.md §9), `relay-server.yaml` (§11),
//! the files kept beside them for rollback and commit-confirmed (§10), and
//! the units and search order they use.
//!
//! Everything here is a pure function of text and paths. The caller reads
//! the file (and checks its mode, WIRE.md §8), then calls
//! [`Config::parse`] or [`RelayConfig::parse`] with the file's name (used
//! only in messages) and its text, and gets the config plus advice, or an
//! error that names the file, the field, the line and the reason:
//!
//! ```text
//! peerup.yaml:12:7: relay.addresses[0]: relay address `/ip4/1.2.3.4/tcp/7777` must end with /p2p/<relay-peer-id>
//! ```
//!
//! | module | what |
//! |---|---|
//! | [`node`] | the `peerup.yaml` schema, defaults, rendering, the `init` template |
//! | [`relay`] | the `relay-server.yaml` schema and its effective session limits |
//! | [`diag`] | error and warning types, field paths, the line locator |
//! | [`units`] | Go durations (`1h30m`) and binary sizes (`64MB`) |
//! | [`values`] | field values: `PeerRef`, `PeerAddr`, `LocalAddress` and its `Host` |
//! | [`search`](mod@search) | `--config`, `./peerup.yaml`, `~/.config/peerup/config.yaml`, `/etc/peerup/config.yaml` |
//! | [`archive`] | `.config.last-good.yaml`, `.config.pre-confirmed.yaml`, `.config.pending` |
//! | [`confirm`] | commit-confirmed apply, confirm, revert and rollback as file actions |
//! | [`edit`] | minimal, comment-keeping edits of `names:`, `relay.addresses`, `services:` and `forwards:`, re-parsed before they are returned |
//!
//! Relative paths in a config resolve against the config file's directory
//! ([`resolve_path`]); `~` is not expanded (a warning says so).

pub mod archive;
pub mod confirm;
mod de;
pub mod diag;
pub mod edit;
mod emit;
pub mod node;
pub mod relay;
pub mod search;
pub mod units;
pub mod values;
mod yaml_lines;

use std::path::{Path, PathBuf};

pub use archive::{ArchivePaths, MarkerError, PendingMarker};
pub use diag::{ConfigError, FieldPath, Location, Warning, WarningKind};
pub use node::{Config, Forward, MAX_FORWARDS, render_template};
pub use relay::RelayConfig;
pub use search::{SearchError, default_config_dir, search};
pub use units::{ByteSize, HumanDuration};
pub use values::{
    Host, LocalAddress, LocalAddressError, PeerAddr, PeerAddrError, PeerRef, PeerRefError,
};

/// The config format version this peerup reads and writes (`version: 1`).
/// A file without `version` is version 1; a higher one is refused with
/// "please upgrade peerup".
pub const SUPPORTED_VERSION: u32 = 1;

/// Resolves a path from a config file against the file's directory: an
/// absolute `value` stays as is, a relative one is joined to the directory
/// of `config_path`. `~` is not expanded. The result is absolute when
/// `config_path` is.
pub fn resolve_path(config_path: &Path, value: &str) -> PathBuf {
    let value = Path::new(value);
    if value.is_absolute() {
        return value.to_owned();
    }
    match config_path.parent() {
        Some(dir) => dir.join(value),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_config_directory() {
        let cfg = Path::new("/etc/peerup/config.yaml");
        assert_eq!(
            resolve_path(cfg, "identity.key"),
            PathBuf::from("/etc/peerup/identity.key")
        );
        assert_eq!(
            resolve_path(cfg, "keys/id.key"),
            PathBuf::from("/etc/peerup/keys/id.key")
        );
        assert_eq!(resolve_path(cfg, "../x"), PathBuf::from("/etc/peerup/../x"));
        assert_eq!(
            resolve_path(cfg, "/var/lib/peerup/id.key"),
            PathBuf::from("/var/lib/peerup/id.key")
        );
        assert_eq!(
            resolve_path(cfg, "~/id.key"),
            PathBuf::from("/etc/peerup/~/id.key")
        );
        assert_eq!(
            resolve_path(Path::new("peerup.yaml"), "identity.key"),
            PathBuf::from("identity.key")
        );
    }
}
