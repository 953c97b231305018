//! The files kept beside a config for rollback and commit-confirmed
//! (WIRE.md §10), as pure functions of the config path.
//!
//! For a config `<dir>/<name><ext>` (`/etc/peerup/config.yaml`: name
//! `config`, ext `.yaml`):
//!
//! | file | path |
//! |---|---|
//! | last-known-good archive | `<dir>/.<name>.last-good<ext>` |
//! | backup while a change awaits `confirm` | `<dir>/.<name>.pre-confirmed<ext>` |
//! | pending marker | `<dir>/.<name>.pending` |
//!
//! The marker is JSON, `{"deadline": "<RFC 3339>", "backup": "<path>"}`:
//! [`PendingMarker::encode`] and [`PendingMarker::decode`]. Reading it is
//! strict: any other shape is an error naming what is wrong, so a damaged
//! marker is never taken for "no change pending" silently. Writing these
//! files (atomically) and the confirm machine are the caller's part.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::time::UnixTime;

/// The three paths kept beside a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchivePaths {
    /// `.<name>.last-good<ext>`: the last config the daemon confirmed.
    pub last_good: PathBuf,
    /// `.<name>.pre-confirmed<ext>`: the config before an `apply`.
    pub pre_confirmed: PathBuf,
    /// `.<name>.pending`: the commit-confirmed marker.
    pub pending: PathBuf,
}

/// The config path has no file name (`/`, `..`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config path {} has no file name", path.display())]
pub struct NoFileName {
    /// The path given.
    pub path: PathBuf,
}

impl ArchivePaths {
    /// The archive, backup and marker paths of the config at `config`.
    ///
    /// # Errors
    /// [`NoFileName`] when `config` does not end in a file name.
    pub fn new(config: &Path) -> Result<Self, NoFileName> {
        let no_name = || NoFileName {
            path: config.to_owned(),
        };
        config.file_name().ok_or_else(no_name)?;
        let name = config.file_stem().ok_or_else(no_name)?;
        let ext = config.extension();
        let dir = config.parent().unwrap_or(Path::new(""));
        let make = |suffix: &str, with_ext: bool| {
            let mut file = OsString::from(".");
            file.push(name);
            file.push(suffix);
            if with_ext && let Some(ext) = ext {
                file.push(".");
                file.push(ext);
            }
            dir.join(file)
        };
        Ok(ArchivePaths {
            last_good: make(".last-good", true),
            pre_confirmed: make(".pre-confirmed", true),
            pending: make(".pending", false),
        })
    }
}

/// The commit-confirmed marker: when the pending change reverts, and the
/// backup it reverts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMarker {
    /// When the daemon reverts unless `peerup config confirm` ran.
    pub deadline: UnixTime,
    /// The backup to restore (as written by `apply`; absolute in practice).
    pub backup: PathBuf,
}

/// Why a marker could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MarkerError {
    /// Not JSON, or not an object with exactly `deadline` and `backup`.
    #[error(
        "pending marker is not valid: {reason} (line {line}, column {column}); expected {{\"deadline\": \"<RFC 3339>\", \"backup\": \"<path>\"}}"
    )]
    Json {
        /// The JSON parser's reason.
        reason: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `deadline` is not RFC 3339.
    #[error("pending marker deadline: {0}")]
    Deadline(#[from] crate::time::Rfc3339Error),
    /// `backup` is empty.
    #[error("pending marker names no backup file")]
    EmptyBackup,
    /// `backup` is not valid UTF-8, so JSON cannot hold it.
    #[error("backup path {} is not valid UTF-8", path.display())]
    NonUtf8Backup {
        /// The path.
        path: PathBuf,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarker {
    deadline: String,
    backup: String,
}

impl PendingMarker {
    /// The marker as one line of JSON, with a trailing newline:
    /// `{"deadline": "2026-01-31T12:00:00Z", "backup": "/etc/peerup/.config.pre-confirmed.yaml"}`.
    ///
    /// # Errors
    /// [`MarkerError::NonUtf8Backup`] when the backup path is not UTF-8,
    /// [`MarkerError::EmptyBackup`] when it is empty.
    pub fn encode(&self) -> Result<String, MarkerError> {
        let backup = self
            .backup
            .to_str()
            .ok_or_else(|| MarkerError::NonUtf8Backup {
                path: self.backup.clone(),
            })?;
        if backup.is_empty() {
            return Err(MarkerError::EmptyBackup);
        }
        let s = |t: &str| serde_json::Value::String(t.to_owned()).to_string();
        Ok(format!(
            "{{\"deadline\": {}, \"backup\": {}}}\n",
            s(&self.deadline.to_rfc3339()),
            s(backup)
        ))
    }

    /// Reads a marker. Any RFC 3339 offset is accepted (Go writes local
    /// time with nanoseconds); precision below a millisecond is dropped.
    ///
    /// # Errors
    /// [`MarkerError`]: not a JSON object of exactly the two string fields,
    /// a bad deadline, or an empty backup.
    pub fn decode(text: &str) -> Result<Self, MarkerError> {
        let raw: RawMarker = serde_json::from_str(text).map_err(|e| MarkerError::Json {
            reason: strip_position(&e.to_string()),
            line: e.line(),
            column: e.column(),
        })?;
        let deadline = UnixTime::parse_rfc3339(&raw.deadline)?;
        if raw.backup.is_empty() {
            return Err(MarkerError::EmptyBackup);
        }
        Ok(PendingMarker {
            deadline,
            backup: PathBuf::from(raw.backup),
        })
    }
}

/// serde_json's message without its " at line L column C" suffix.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &str) -> ArchivePaths {
        ArchivePaths::new(Path::new(p)).unwrap()
    }

    #[test]
    fn names_for_config_yaml() {
        let a = paths("/etc/peerup/config.yaml");
        assert_eq!(
            a.last_good,
            PathBuf::from("/etc/peerup/.config.last-good.yaml")
        );
        assert_eq!(
            a.pre_confirmed,
            PathBuf::from("/etc/peerup/.config.pre-confirmed.yaml")
        );
        assert_eq!(a.pending, PathBuf::from("/etc/peerup/.config.pending"));
    }

    #[test]
    fn names_for_peerup_yaml() {
        let a = paths("/home/ada/peerup.yaml");
        assert_eq!(
            a.last_good,
            PathBuf::from("/home/ada/.peerup.last-good.yaml")
        );
        assert_eq!(
            a.pre_confirmed,
            PathBuf::from("/home/ada/.peerup.pre-confirmed.yaml")
        );
        assert_eq!(a.pending, PathBuf::from("/home/ada/.peerup.pending"));
    }

    #[test]
    fn names_without_extension_or_directory() {
        let a = paths("/srv/peerup");
        assert_eq!(a.last_good, PathBuf::from("/srv/.peerup.last-good"));
        assert_eq!(a.pre_confirmed, PathBuf::from("/srv/.peerup.pre-confirmed"));
        assert_eq!(a.pending, PathBuf::from("/srv/.peerup.pending"));
        let b = paths("relay-server.yaml");
        assert_eq!(b.last_good, PathBuf::from(".relay-server.last-good.yaml"));
        assert_eq!(b.pending, PathBuf::from(".relay-server.pending"));
        let c = paths("/etc/peerup/config.v2.yaml");
        assert_eq!(
            c.last_good,
            PathBuf::from("/etc/peerup/.config.v2.last-good.yaml")
        );
    }

    #[test]
    fn refuses_a_path_without_file_name() {
        assert!(ArchivePaths::new(Path::new("/")).is_err());
        assert!(ArchivePaths::new(Path::new("..")).is_err());
        assert!(ArchivePaths::new(Path::new("")).is_err());
    }

    #[test]
    fn marker_round_trips() {
        let m = PendingMarker {
            deadline: UnixTime::parse_rfc3339("2026-01-31T12:05:00Z").unwrap(),
            backup: PathBuf::from("/etc/peerup/.config.pre-confirmed.yaml"),
        };
        let text = m.encode().unwrap();
        assert_eq!(
            text,
            "{\"deadline\": \"2026-01-31T12:05:00Z\", \"backup\": \"/etc/peerup/.config.pre-confirmed.yaml\"}\n"
        );
        assert_eq!(PendingMarker::decode(&text).unwrap(), m);
        let odd = PendingMarker {
            deadline: UnixTime::from_millis(1_500),
            backup: PathBuf::from("/a \"b\"\\c\n"),
        };
        assert_eq!(PendingMarker::decode(&odd.encode().unwrap()).unwrap(), odd);
    }

    #[test]
    fn reads_a_go_marker() {
        let go = r#"{"deadline":"2026-01-31T13:05:00.123456789+01:00","backup":"/etc/peerup/.config.pre-confirmed.yaml"}"#;
        let m = PendingMarker::decode(go).unwrap();
        assert_eq!(
            m.deadline,
            UnixTime::parse_rfc3339("2026-01-31T12:05:00.123Z").unwrap()
        );
    }

    #[test]
    fn rejects_bad_markers() {
        let bad = |t: &str| PendingMarker::decode(t).unwrap_err();
        assert!(matches!(bad(""), MarkerError::Json { .. }));
        assert!(matches!(bad("not json"), MarkerError::Json { .. }));
        assert!(matches!(bad("[]"), MarkerError::Json { .. }));
        assert!(matches!(
            bad(r#"{"deadline":"2026-01-31T12:00:00Z"}"#),
            MarkerError::Json { .. }
        ));
        assert!(matches!(
            bad(r#"{"backup":"/x"}"#),
            MarkerError::Json { .. }
        ));
        assert!(matches!(
            bad(r#"{"deadline":"2026-01-31T12:00:00Z","backup":"/x","extra":1}"#),
            MarkerError::Json { .. }
        ));
        assert!(matches!(
            bad(r#"{"deadline":"2026-01-31T12:00:00Z","backup":"/x","backup":"/y"}"#),
            MarkerError::Json { .. }
        ));
        assert!(matches!(
            bad(r#"{"deadline":1700000000,"backup":"/x"}"#),
            MarkerError::Json { .. }
        ));
        assert!(matches!(
            bad(r#"{"deadline":"tomorrow","backup":"/x"}"#),
            MarkerError::Deadline(_)
        ));
        assert!(matches!(
            bad(r#"{"deadline":"2026-01-31T12:00:00Z","backup":""}"#),
            MarkerError::EmptyBackup
        ));
        let msg = bad(r#"{"deadline":"2026-01-31T12:00:00Z","backup":"/x","extra":1}"#).to_string();
        assert!(
            msg.contains("unknown field `extra`") && msg.contains("line 1"),
            "{msg}"
        );
        let empty = PendingMarker {
            deadline: UnixTime::EPOCH,
            backup: PathBuf::new(),
        };
        assert_eq!(empty.encode(), Err(MarkerError::EmptyBackup));
    }
}
