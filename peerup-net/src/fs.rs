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

use libp2p::identity::Keypair;
use peerup_core::authorized_keys::Document;
use peerup_core::config::confirm::Action;
use peerup_core::identity::{FileFacts, ModeError, OwnershipError, check_mode, check_ownership};

use crate::error::RandomError;

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
    /// A key or config file someone else could have written or replaced.
    #[error(transparent)]
    Ownership(#[from] OwnershipError),
    /// A file larger than any peerup file can be.
    #[error(
        "{}: larger than {} MiB; peerup refuses to parse a file this big (is it the right file?)",
        path.display(),
        MAX_FILE_LEN >> 20
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// Another process holds the identity.
    #[error(
        "{}: another peerup process{} is running with this identity; stop it, or talk to it (a running daemon serves the other commands through its control socket)",
        path.display(),
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    IdentityInUse {
        /// The identity key file.
        path: PathBuf,
        /// Its holder (pid and command line), where the OS tells.
        holder: Option<String>,
    },
}

/// The largest file peerup reads (configs, keys, authorized_keys, the
/// commit-confirmed marker). Parsing is linear, but a file is read whole
/// into memory and parsed on the daemon's loop: a hostile or mistaken
/// multi-gigabyte file must not stall or exhaust it. 4 MiB holds about
/// 40,000 authorized peers.
pub const MAX_FILE_LEN: u64 = 4 << 20;

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

/// Creates `path` (which must not exist), mode 0600, writes `contents`
/// and fsyncs it.
fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
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
        write_new(&tmp, contents)?;
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
/// or others (WIRE.md §8), and that neither it nor its directory can be
/// written by another user ([`check_ownership`]).
///
/// # Errors
/// [`FsError::Mode`] with the `chmod 600` fix, [`FsError::Ownership`] with
/// its fix, [`FsError::TooLarge`], or [`FsError::Io`].
pub fn read_private(path: &Path) -> Result<Vec<u8>, FsError> {
    let f = File::open(path).map_err(|e| FsError::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = f.metadata().map_err(|e| FsError::io(path, e))?;
        check_mode(path, meta.mode())?;
        let dir = parent(path);
        let dir_meta = fs::metadata(dir).map_err(|e| FsError::io(dir, e))?;
        check_ownership(
            path,
            FileFacts {
                uid: meta.uid(),
                mode: meta.mode(),
            },
            dir,
            FileFacts {
                uid: dir_meta.uid(),
                mode: dir_meta.mode(),
            },
            rustix::process::geteuid().as_raw(),
        )?;
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

fn read_all(path: &Path, f: File) -> Result<Vec<u8>, FsError> {
    use std::io::Read;
    let mut v = Vec::new();
    f.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut v)
        .map_err(|e| FsError::io(path, e))?;
    if v.len() as u64 > MAX_FILE_LEN {
        return Err(FsError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(v)
}

/// A lock on a node's identity key file, held as long as this value lives
/// (the OS releases it when the process dies, however it dies). Two nodes
/// with one identity would fight over every relay reservation and
/// pairing, and one of them would miss the other's writes to
/// authorized_keys. The lock is on the key file itself (`flock`), so no
/// lock file is ever left behind.
#[derive(Debug)]
pub struct IdentityLock {
    _file: File,
    path: PathBuf,
}

impl IdentityLock {
    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How a process uses its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Alone: a daemon, a relay, or a command that reserves on relays or
    /// writes authorized_keys (`invite`, `join` without a daemon).
    Exclusive,
    /// Beside others of its kind: a command that only dials out and
    /// writes nothing (`proxy`, `ping` without a daemon).
    Shared,
}

/// Takes an exclusive lock on the identity key file at `key` (which must
/// exist) without waiting.
///
/// # Errors
/// [`FsError::IdentityInUse`] naming the holder (its pid and command
/// line, where the OS tells) when another process holds it;
/// [`FsError::Io`] when the file cannot be opened.
pub fn lock_identity(key: &Path) -> Result<IdentityLock, FsError> {
    lock_identity_as(key, LockMode::Exclusive)
}

/// [`lock_identity`] in the given mode.
///
/// # Errors
/// As [`lock_identity`].
pub fn lock_identity_as(key: &Path, mode: LockMode) -> Result<IdentityLock, FsError> {
    // The key file is only ever created (never replaced) by peerup, but a
    // user may replace it: lock the file the path names after the lock.
    for _ in 0..3 {
        let f = File::open(key).map_err(|e| FsError::io(key, e))?;
        let taken = match mode {
            LockMode::Exclusive => f.try_lock(),
            LockMode::Shared => f.try_lock_shared(),
        };
        match taken {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(FsError::IdentityInUse {
                    path: key.to_owned(),
                    holder: lock_holder(&f),
                });
            }
            Err(fs::TryLockError::Error(e)) if lock_unsupported(&e) => {
                // NFS without lockd, some FUSE mounts: no locking to be
                // had. Running unlocked beats not running at all.
                tracing::warn!(path = %key.display(), error = %e, "this file system cannot lock the identity key: nothing stops a second node with the same identity");
                return Ok(IdentityLock {
                    _file: f,
                    path: key.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(FsError::io(key, e)),
        }
        if same_file(&f, key) {
            return Ok(IdentityLock {
                _file: f,
                path: key.to_owned(),
            });
        }
    }
    Err(FsError::io(
        key,
        io::Error::other("the key file keeps being replaced while it is locked"),
    ))
}

/// Whether a lock error means "this file system does not lock" (ENOLCK,
/// EOPNOTSUPP, ENOSYS) rather than a failure worth stopping for.
fn lock_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(code) if code == libc::ENOLCK || code == libc::EOPNOTSUPP || code == libc::ENOSYS
        )
}

#[cfg(unix)]
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, _: &Path) -> bool {
    true
}

/// Who holds the lock on `f`: on Linux, `/proc/locks` names the pid of
/// every `flock` on the file's inode, and `/proc/<pid>/cmdline` its
/// command.
fn lock_holder(f: &File) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let ino = f.metadata().ok()?.ino();
        let locks = fs::read_to_string("/proc/locks").ok()?;
        let pid = locks.lines().find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let (kind, pid, id) = (fields.get(1)?, fields.get(4)?, fields.get(5)?);
            let inode: u64 = id.rsplit(':').next()?.parse().ok()?;
            (*kind == "FLOCK" && inode == ino).then(|| pid.to_string())
        })?;
        let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: String = String::from_utf8_lossy(&cmd)
            .split('\0')
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(200)
            .collect();
        Some(if cmd.is_empty() {
            format!("pid {pid}")
        } else {
            format!("pid {pid}: {cmd}")
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = f;
        None
    }
}

/// An exclusive lock on a file's directory, held while the file is read,
/// changed and written back: `peerup auth add|remove` and a pairing saved
/// by the daemon would otherwise each write the file they read, and one
/// undo the other (a removed peer put back).
#[derive(Debug)]
pub struct EditLock {
    _dir: Option<File>,
}

/// Takes the edit lock for `file` (waiting for another editor, whose
/// edits take moments).
///
/// # Errors
/// [`FsError::Io`] naming the directory.
pub fn lock_for_edit(file: &Path) -> Result<EditLock, FsError> {
    let dir = parent(file);
    let f = match File::open(dir) {
        Ok(f) => f,
        // A directory not made yet has no other editor either.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(EditLock { _dir: None }),
        Err(e) => return Err(FsError::io(dir, e)),
    };
    match f.lock() {
        Ok(()) => Ok(EditLock { _dir: Some(f) }),
        Err(e) if lock_unsupported(&e) => Ok(EditLock { _dir: None }),
        Err(e) => Err(FsError::io(dir, e)),
    }
}

/// Creates `path` with `contents` atomically, mode 0600, only if it does
/// not exist: the file appears whole or not at all, and of two processes
/// creating it at once, exactly one succeeds (a hard link of a complete
/// temporary file, which fails when the name exists). Returns whether
/// this call created it.
///
/// # Errors
/// [`FsError::Io`] naming the file.
pub fn create_new_atomic(path: &Path, contents: &[u8]) -> Result<bool, FsError> {
    let tmp = temp_path(path);
    let result = (|| {
        write_new(&tmp, contents)?;
        let created = match fs::hard_link(&tmp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(_) => {
                // A file system without hard links (vfat, some FUSE):
                // create the name exclusively and write it in place.
                let _ = fs::remove_file(&tmp);
                return match write_new(path, contents) {
                    Ok(()) => sync_dir(parent(path)).map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        fs::remove_file(&tmp)?;
        sync_dir(parent(path))?;
        Ok(created)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| FsError::io(path, e))
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

// ---------------------------------------------------------------------------
// Identity and authorized_keys, read as a node starts (re-exported from
// `node`, where they used to live).

/// Reads `authorized_keys` as a running node or relay loads it: every
/// line is kept, and a bad one is logged, not fatal. The policy denies any
/// peer an invalid line names (even if another line for it is valid), so
/// one typo can neither lock everybody out at the next start nor keep a
/// removed peer in (a reload that refused the whole file would leave the
/// old list, and the removed peer, in force).
///
/// # Errors
/// None today; the `Result` leaves room for a check that refuses a file.
pub fn read_authorized_keys(path: &Path, bytes: &[u8]) -> Result<Document, AuthorizedKeysError> {
    // Bytes that are not UTF-8 (a Latin-1 comment) become U+FFFD: a line
    // holding one in its peer ID or attributes is invalid and denies its
    // peer; the rest of the file applies.
    let text = String::from_utf8_lossy(bytes);
    let doc = Document::parse(&text);
    for e in doc.errors() {
        tracing::error!(path = %path.display(), "{e}; the peer it names (if any) is denied until the line is fixed (`peerup auth validate`)");
    }
    Ok(doc)
}

/// Why an `authorized_keys` file was refused, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct AuthorizedKeysError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub kind: AuthorizedKeysFault,
}

/// What is wrong with an `authorized_keys` file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizedKeysFault {
    /// Bytes that are not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// Lines that do not parse.
    #[error(transparent)]
    Lines(#[from] peerup_core::authorized_keys::InvalidLines),
}

/// Parses `authorized_keys` strictly: every bad line is reported (for
/// `validate`; a running node loads with [`read_authorized_keys`]).
///
/// # Errors
/// [`AuthorizedKeysError`] listing the bad lines.
pub fn parse_authorized_keys(path: &Path, bytes: &[u8]) -> Result<Document, AuthorizedKeysError> {
    let error = |kind| AuthorizedKeysError {
        path: path.to_owned(),
        kind,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| error(AuthorizedKeysFault::NotUtf8(e)))?;
    Document::parse_strict(text).map_err(|e| error(e.into()))
}

/// Why the identity key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Reading, checking or writing the file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The file is not an identity key.
    #[error("identity key {}", path.display())]
    Decode {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: peerup_core::identity::KeyFileError,
    },
    /// The name exists but cannot be read.
    #[error(
        "identity key {}: the name exists but the file cannot be read (a symbolic link to a missing file?)",
        path.display()
    )]
    Unreadable {
        /// The key file.
        path: PathBuf,
    },
    /// A generated key that cannot be stored (not Ed25519; a bug).
    #[error("identity key {}: the generated key is not Ed25519", path.display())]
    NotEd25519 {
        /// The key file.
        path: PathBuf,
    },
    /// No randomness for a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Reads the identity key at `path`; never creates one (for a command
/// that must write nothing, like `peerup doctor`).
///
/// # Errors
/// [`IdentityError`] for a key that is missing, cannot be read, has loose
/// permissions, or is not an Ed25519 key file.
pub fn load_identity(path: &Path) -> Result<Keypair, IdentityError> {
    let bytes = read_private(path)?;
    peerup_core::identity::decode(&bytes).map_err(|source| IdentityError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Reads the identity key at `path`, creating a new one (mode 0600) if
/// the file does not exist.
///
/// # Errors
/// [`IdentityError`] for a key that cannot be read, has loose permissions,
/// or is not an Ed25519 key file.
pub fn load_or_create_identity(path: &Path) -> Result<Keypair, IdentityError> {
    load_or_create_identity_once(path, true)
}

fn load_or_create_identity_once(path: &Path, may_retry: bool) -> Result<Keypair, IdentityError> {
    match read_private(path) {
        Ok(bytes) => {
            peerup_core::identity::decode(&bytes).map_err(|source| IdentityError::Decode {
                path: path.to_owned(),
                source,
            })
        }
        Err(e) if e.is_not_found() => {
            let keypair = generate_identity()?;
            let bytes = peerup_core::identity::encode(&keypair).ok_or_else(|| {
                IdentityError::NotEd25519 {
                    path: path.to_owned(),
                }
            })?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                ensure_private_dir(dir)?;
            }
            if create_new_atomic(path, bytes.as_slice())? {
                tracing::info!(path = %path.display(), peer = %keypair.public().to_peer_id(), "created identity key");
                Ok(keypair)
            } else if may_retry {
                // Another process created it first: use that one.
                load_or_create_identity_once(path, false)
            } else {
                Err(IdentityError::Unreadable {
                    path: path.to_owned(),
                })
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A fresh Ed25519 identity from the OS's randomness.
///
/// # Errors
/// [`RandomError`] when the OS has no randomness to give.
pub fn generate_identity() -> Result<Keypair, RandomError> {
    Ok(peerup_core::identity::keypair_from_seed(
        crate::error::random()?,
    ))
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

    #[cfg(unix)]
    #[test]
    fn read_private_refuses_a_file_in_a_directory_others_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir("dirmode");
        let p = d.join("config.yaml");
        write_atomic(&p, b"version: 1\n").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = read_private(&p).unwrap_err();
        assert!(matches!(e, FsError::Ownership(_)), "{e}");
        assert!(e.to_string().contains("chmod o-w"), "{e}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(read_private(&p).unwrap(), b"version: 1\n");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn files_beyond_the_size_limit_are_refused_unread() {
        let d = tmpdir("big");
        let p = d.join("authorized_keys");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_FILE_LEN + 1).unwrap();
        let e = read(&p).unwrap_err();
        assert!(matches!(e, FsError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        File::create(&p).unwrap().set_len(MAX_FILE_LEN).unwrap();
        assert_eq!(read(&p).unwrap().len() as u64, MAX_FILE_LEN);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_identity_lock_keeps_a_second_node_out() {
        let d = tmpdir("lock");
        let key = d.join("identity.key");
        assert!(create_new_atomic(&key, b"k1").unwrap());
        // Created once: a second creation keeps the first file.
        assert!(!create_new_atomic(&key, b"k2").unwrap());
        assert_eq!(fs::read(&key).unwrap(), b"k1");
        let held = lock_identity(&key).unwrap();
        let e = lock_identity(&key).unwrap_err();
        assert!(matches!(e, FsError::IdentityInUse { .. }), "{e}");
        // The holder is named (this very process).
        #[cfg(target_os = "linux")]
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        assert!(lock_identity_as(&key, LockMode::Shared).is_err());
        drop(held);
        // Commands that only dial out share it; a daemon then waits.
        let a = lock_identity_as(&key, LockMode::Shared).unwrap();
        let b = lock_identity_as(&key, LockMode::Shared).unwrap();
        assert!(lock_identity(&key).is_err());
        drop((a, b));
        lock_identity(&key).unwrap();
        // No lock file is left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
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
