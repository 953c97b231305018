//! The file side of the core's decisions: atomic replacement, permission
//! checks, and reading the files the core parses.
//!
//! Every file peerup writes goes through [`write_atomic`]: a temporary file
//! in the same directory (mode 0600, `O_EXCL`), written in full, fsynced,
//! renamed over the target, and the directory fsynced. A reader sees the
//! old file or the new one, never half of either, even across a crash or a
//! power cut. The core's commit-confirmed machine emits actions in exactly
//! these terms ([`apply`]).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use peerup_core::config::confirm::Action;
use peerup_core::identity::{ModeError, check_mode};

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FsError {
    /// An I/O error on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A key or config file others can read.
    #[error(transparent)]
    Mode(#[from] ModeError),
}

impl FsError {
    /// Wraps an I/O error with the file it concerns.
    pub fn io(path: &Path, source: io::Error) -> Self {
        FsError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Whether the error is "file not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, FsError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}-{n}", std::process::id()));
    path.with_file_name(name)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // Directories cannot be opened for writing; a read handle fsyncs the
    // directory entry on Linux and the BSDs.
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `contents` atomically, mode 0600.
///
/// # Errors
/// [`FsError::Io`] naming the file; on error the old file is untouched and
/// the temporary file removed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(parent(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| FsError::io(path, e))
}

/// Renames `from` over `to` atomically and fsyncs the directory.
///
/// # Errors
/// [`FsError::Io`] naming `from`.
pub fn rename_atomic(from: &Path, to: &Path) -> Result<(), FsError> {
    fs::rename(from, to)
        .and_then(|()| sync_dir(parent(to)))
        .map_err(|e| FsError::io(from, e))
}

/// Removes `path`; a missing file is fine.
///
/// # Errors
/// [`FsError::Io`] for any other failure.
pub fn remove_if_exists(path: &Path) -> Result<(), FsError> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(parent(path)).map_err(|e| FsError::io(path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsError::io(path, e)),
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing.
///
/// # Errors
/// [`FsError::Io`] naming the directory.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FsError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| FsError::io(dir, e))
}

/// Reads a key or config file after checking it is not readable by group
/// or others (WIRE.md §8).
///
/// # Errors
/// [`FsError::Mode`] with the `chmod 600` fix, or [`FsError::Io`].
pub fn read_private(path: &Path) -> Result<Vec<u8>, FsError> {
    let f = File::open(path).map_err(|e| FsError::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = f.metadata().map_err(|e| FsError::io(path, e))?;
        check_mode(path, meta.mode())?;
    }
    read_all(path, f)
}

/// Reads a file (no permission check).
///
/// # Errors
/// [`FsError::Io`] naming the file.
pub fn read(path: &Path) -> Result<Vec<u8>, FsError> {
    let f = File::open(path).map_err(|e| FsError::io(path, e))?;
    read_all(path, f)
}

/// Reads a file as UTF-8 text.
///
/// # Errors
/// [`FsError::Io`] naming the file (also for text that is not UTF-8).
pub fn read_text(path: &Path) -> Result<String, FsError> {
    String::from_utf8(read(path)?).map_err(|_| {
        FsError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidData, "file is not UTF-8 text"),
        )
    })
}

fn read_all(path: &Path, mut f: File) -> Result<Vec<u8>, FsError> {
    use std::io::Read;
    let mut v = Vec::new();
    f.read_to_end(&mut v).map_err(|e| FsError::io(path, e))?;
    Ok(v)
}

/// Carries out one action of the commit-confirmed machine. `ExitForRestart`
/// is the caller's to handle; here it is a no-op.
///
/// # Errors
/// The failing file operation.
pub fn apply(action: &Action) -> Result<(), FsError> {
    match action {
        Action::WriteAtomic { path, contents } => write_atomic(path, contents),
        Action::Rename { from, to } => rename_atomic(from, to),
        Action::Remove { path } => remove_if_exists(path),
        Action::ExitForRestart => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("peerup-fs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let d = tmpdir("atomic");
        let p = d.join("config.yaml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // No temporary file left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_write_leaves_the_old_file() {
        let d = tmpdir("fail");
        let p = d.join("missing-dir").join("x");
        assert!(write_atomic(&p, b"x").is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn read_private_refuses_group_readable_files_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir("mode");
        let p = d.join("identity.key");
        fs::write(&p, b"k").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_private(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(&format!(
                "expected 0600 - fix with: chmod 600 {}",
                p.display()
            )),
            "{e}"
        );
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&p).unwrap(), b"k");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn remove_is_idempotent() {
        let d = tmpdir("rm");
        let p = d.join("x");
        fs::write(&p, b"x").unwrap();
        remove_if_exists(&p).unwrap();
        remove_if_exists(&p).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}
