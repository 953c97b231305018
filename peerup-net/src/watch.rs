//! Noticing that a file changed (authorized_keys, the config), for live
//! reloads.
//!
//! Two sources, because either alone misses changes: the platform's
//! notification API (inotify on Linux, through the `notify` crate), which
//! sees a change at once, watching each file's directory (an atomic write
//! replaces the file, so a watch on the file itself would be lost with the
//! old inode); and a poll every few seconds, for file systems without
//! notifications (NFS, some containers) and for events lost to a full
//! queue.
//!
//! A change is only a hint: the caller compares a [`Fingerprint`] of the
//! bytes it would load now with the fingerprint of the bytes it loaded
//! last, so nothing depends on modification times or on when a stamp was
//! taken (a daemon that took its stamps after loading the file once missed
//! a pairing written in between, and denied the new peer forever).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use sha2::{Digest, Sha256};

use crate::runtime::Runtime;

/// The SHA-256 of a file's bytes (or of its absence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Fingerprint(Sha256::digest(bytes).into())
    }

    /// The fingerprint of a file that does not exist.
    pub fn missing() -> Self {
        Fingerprint([0; 32])
    }

    /// The fingerprint of the file at `path` now (no permission check: the
    /// caller's loader does those); [`Fingerprint::missing`] when it cannot
    /// be read.
    pub fn of_file(path: &Path) -> Self {
        match crate::fs::read(path) {
            Ok(bytes) => Fingerprint::of(&bytes),
            Err(_) => Fingerprint::missing(),
        }
    }
}

/// How long to wait after a notification for the writes to settle: an
/// editor that writes in place (truncate, then write) would otherwise be
/// read half-written.
const SETTLE: Duration = Duration::from_millis(100);

/// The longest a stream of notifications is let settle: events closer
/// than [`SETTLE`] without end (a file rewritten in a loop) would
/// otherwise hold back every reload, a revocation too, and the poll with
/// them, for as long as they lasted.
const SETTLE_AT_MOST: Duration = Duration::from_secs(1);

/// Watches some files; [`FileWatcher::changed`] resolves when one of them
/// may have changed.
pub struct FileWatcher {
    // Kept alive: dropping it stops the notifications.
    _watcher: Option<notify::RecommendedWatcher>,
    events: mpsc::Receiver<()>,
    rt: Arc<dyn Runtime>,
    poll: Duration,
}

impl std::fmt::Debug for FileWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatcher")
            .field("notifications", &self._watcher.is_some())
            .field("poll", &self.poll)
            .finish()
    }
}

impl FileWatcher {
    /// Watches `files` (their directories, for events naming them), and
    /// polls every `poll`. Never fails: without notifications (no inotify,
    /// a directory missing) it polls only, and says so in the log.
    pub fn new(rt: Arc<dyn Runtime>, files: &[PathBuf], poll: Duration) -> Self {
        let (tx, events) = mpsc::channel(1);
        let names: Vec<PathBuf> = files.to_vec();
        let watcher = (|| -> notify::Result<notify::RecommendedWatcher> {
            use notify::Watcher;
            let mut tx = tx;
            let wanted = names.clone();
            let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(ev) = res
                    && may_change(&ev.kind)
                    && ev
                        .paths
                        .iter()
                        .any(|p| wanted.iter().any(|w| same_file_name(p, w)))
                {
                    // A full channel already holds a wake-up.
                    let _ = tx.try_send(());
                }
            })?;
            let mut dirs: Vec<PathBuf> = names.iter().map(|f| dir_of(f)).collect();
            dirs.sort();
            dirs.dedup();
            for d in dirs {
                w.watch(&d, notify::RecursiveMode::NonRecursive)?;
            }
            Ok(w)
        })();
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, poll = ?poll, "no file change notifications; polling only");
                None
            }
        };
        FileWatcher {
            _watcher: watcher,
            events,
            rt,
            poll,
        }
    }

    /// Resolves when a watched file may have changed (a notification,
    /// settled), or when the poll interval passed.
    pub async fn changed(&mut self) {
        use futures::FutureExt;
        let mut tick = self.rt.sleep(self.poll).fuse();
        futures::select_biased! {
            ev = self.events.next() => {
                if ev.is_none() {
                    // The watcher is gone: poll only.
                    tick.await;
                    return;
                }
                // Let a burst of writes finish, then take them as one;
                // a burst that does not end is taken after
                // SETTLE_AT_MOST.
                let mut cap = self.rt.sleep(SETTLE_AT_MOST).fuse();
                loop {
                    let mut settle = self.rt.sleep(SETTLE).fuse();
                    futures::select_biased! {
                        () = cap => return,
                        more = self.events.next() => if more.is_none() { return },
                        () = settle => return,
                    }
                }
            }
            () = tick => {}
        }
    }
}

/// Whether an event can mean new bytes. Opening a file is an event too
/// (inotify's IN_OPEN, which `notify` subscribes to; other platforms'
/// backends may report reads and read-only closes as well), and the
/// caller reads the files after every wake-up: taken for changes, each
/// reload caused the next, and an idle daemon read and hashed its config
/// and authorized_keys about five times a second each, forever. A
/// write's close is kept, and every kind that is not a plain read: a
/// change of the bytes always comes with one (IN_MODIFY, IN_CLOSE_WRITE,
/// IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_ATTRIB).
fn may_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    !matches!(
        kind,
        EventKind::Access(
            AccessKind::Read
                | AccessKind::Open(_)
                | AccessKind::Close(AccessMode::Read | AccessMode::Execute)
        )
    )
}

fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Whether an event's path names the watched file (the event may carry an
/// absolute path where the config holds a relative one).
fn same_file_name(event: &Path, watched: &Path) -> bool {
    event.file_name().is_some() && event.file_name() == watched.file_name()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real inotify events, in the order they happened: a read of the
    /// watched file (as the caller's reload does), then an atomic replace
    /// (as peerup and editors write). The read's events are not changes;
    /// the replace is.
    #[test]
    fn reading_a_watched_file_is_not_a_change() {
        use notify::Watcher;
        let dir = std::env::temp_dir().join(format!("peerup-watch-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("authorized_keys");
        crate::fs::write_atomic(&file, b"# before\n").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let _ = tx.send(ev);
            }
        })
        .unwrap();
        w.watch(&dir, notify::RecursiveMode::NonRecursive).unwrap();
        assert_eq!(crate::fs::read(&file).unwrap(), b"# before\n");
        crate::fs::write_atomic(&file, b"# after\n").unwrap();
        let mut reads = Vec::new();
        let change = loop {
            let ev = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("no event for the replace within 30 s");
            if !ev.paths.iter().any(|p| same_file_name(p, &file)) {
                continue;
            }
            if may_change(&ev.kind) {
                break ev.kind;
            }
            reads.push(ev.kind);
        };
        assert!(
            !reads.is_empty(),
            "the read made no event: this test shows nothing here"
        );
        assert!(
            matches!(
                change,
                notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
                    | notify::EventKind::Create(_)
            ),
            "the first change seen is not the replace: {change:?} (after {reads:?})"
        );
        drop(w);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_kind_but_a_plain_read_may_change_the_file() {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind};
        for read in [
            AccessKind::Read,
            AccessKind::Open(AccessMode::Any),
            AccessKind::Open(AccessMode::Write),
            AccessKind::Close(AccessMode::Read),
            AccessKind::Close(AccessMode::Execute),
        ] {
            assert!(!may_change(&EventKind::Access(read)), "{read:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Access(AccessKind::Close(AccessMode::Any)),
            EventKind::Access(AccessKind::Any),
            EventKind::Access(AccessKind::Other),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Metadata(
                notify::event::MetadataKind::Permissions,
            )),
            EventKind::Remove(notify::event::RemoveKind::File),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(may_change(&change), "{change:?}");
        }
    }

    #[test]
    fn fingerprints_follow_the_bytes() {
        assert_eq!(Fingerprint::of(b"a"), Fingerprint::of(b"a"));
        assert_ne!(Fingerprint::of(b"a"), Fingerprint::of(b"b"));
        assert_ne!(Fingerprint::of(b""), Fingerprint::missing());
        assert_eq!(
            Fingerprint::of_file(Path::new("/nonexistent/peerup/authorized_keys")),
            Fingerprint::missing()
        );
    }
}
