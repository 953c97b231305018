//! The C allocator's settings for a process that moves bulk data.
//!
//! glibc's malloc returns freed memory at the top of each heap to the
//! kernel once more than 128 KiB is free there. A proxy that decrypts
//! and copies frames of tens of KiB crosses that line constantly: memory
//! goes back to the kernel and is faulted in and zeroed again moments
//! later. Measured with `peerup-bench`, that churn costs about 15% of the
//! CPU per byte on the direct path (page faults and zeroing). So a peerup
//! process asks malloc to keep up to [`TRIM_THRESHOLD`] of free memory
//! while it works ([`tune_for_throughput`]), and hands it back in one go
//! when the last proxied connection ends ([`release_free_memory`]): busy
//! daemons keep their working set, idle ones shrink back.
//!
//! The threshold is 1 MiB, not more: `malloc_trim` returns the free top
//! of the main heap but not of the per-thread heaps (glibc trims those
//! only on a free), so each runtime thread's heap keeps up to the
//! threshold after traffic (in the relay; `peerup` puts every thread on
//! the main heap, [`keep_large_buffers`]). Measured: 1 MiB keeps the whole CPU gain of
//! 64 MiB (about 3.1 CPU s/GiB on the direct path against 3.6-4.5 with
//! glibc's default) while an idle daemon after traffic stays at 17.4-18.0 MiB
//! (64 MiB: 19.8-22.8; the default: 16.5).
//!
//! Process-wide, so only binaries call [`tune_for_throughput`]; an
//! application embedding peerup keeps its own allocator policy, and
//! [`release_free_memory`] does nothing unless a binary opted in. Both
//! are no-ops outside glibc.

use std::sync::atomic::{AtomicBool, Ordering};

/// Free memory malloc may keep at the top of a heap.
pub const TRIM_THRESHOLD: usize = 1 << 20;

static TUNED: AtomicBool = AtomicBool::new(false);

/// Keeps freed memory in the process (up to [`TRIM_THRESHOLD`] per heap)
/// instead of returning it to the kernel on every free. Call once, early
/// in `main`. Returns whether the setting took effect (glibc only).
///
/// `PEERUP_MALLOC=default` in the environment leaves malloc as it is (to
/// compare, or if this setting ever misbehaves).
pub fn tune_for_throughput() -> bool {
    if std::env::var_os("PEERUP_MALLOC").is_some_and(|v| v == "default") {
        return false;
    }
    let ok = imp::set_trim_threshold(TRIM_THRESHOLD);
    TUNED.store(ok, Ordering::Relaxed);
    ok
}

/// Free memory a busy heap keeps at its top when it is trimmed.
pub const TOP_PAD: usize = 4 << 20;

/// Also serves buffers up to [`TRIM_THRESHOLD`] from the heap instead of
/// fresh mappings, from one heap for all threads, which keeps [`TOP_PAD`]
/// free at its top while it works. For `peerup` (a proxy, a daemon), which
/// gives the memory back when its last proxied connection closes
/// ([`release_free_memory`]); not the relay, which never does. Call after
/// [`tune_for_throughput`], before any thread starts; does nothing unless
/// it took effect.
///
/// - **mmap threshold.** Setting the trim threshold fixes glibc's mmap
///   threshold at 128 KiB, so each 256 KiB buffer (a proxy's copy, quinn's
///   copy of a 256 KiB write) was mapped, faulted in page by page, zeroed
///   and unmapped again: 7% of a QUIC sender's CPU in `perf` (page faults
///   under quinn's `SendStream::write`).
/// - **One heap, with a 4 MiB pad.** A daemon runs two runtime threads,
///   each with a heap of its own, and glibc trims a thread's heap on a
///   free whenever more than the threshold is free at its top, down to
///   the pad (128 KiB by default): the daemon receiving a direct TCP
///   transfer gave its yamux frames' memory back and faulted it in again
///   (`madvise`, page faults, zeroing in `perf`), 1.12 CPU s/GiB against
///   the sending proxy's 0.8. With a 4 MiB pad it spent 0.64-0.67. But
///   `malloc_trim` releases the top of the main heap only, so the pad
///   alone left an idle daemon at 30 MiB after traffic (each thread's heap
///   kept its pad); with every thread on the main heap it spent 0.72-0.79
///   and is trimmed whole when the daemon goes idle: 22.0-22.2 MiB after
///   traffic, against 22.4-23.1 before.
pub fn keep_large_buffers() {
    if TUNED.load(Ordering::Relaxed) {
        imp::set_mmap_threshold(TRIM_THRESHOLD);
        imp::one_heap(TOP_PAD);
    }
}

/// Returns free memory to the kernel, if [`tune_for_throughput`] made
/// malloc keep it. Cheap enough to call whenever a node goes idle.
pub fn release_free_memory() {
    if TUNED.load(Ordering::Relaxed) {
        imp::trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
mod imp {
    pub(super) fn set_trim_threshold(bytes: usize) -> bool {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt takes two integers and touches only malloc's own
        // state, under malloc's lock; any value is valid input.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, bytes) == 1 }
    }

    pub(super) fn set_mmap_threshold(bytes: usize) {
        let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: as for M_TRIM_THRESHOLD above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
        }
    }

    pub(super) fn one_heap(top_pad: usize) {
        let top_pad = libc::c_int::try_from(top_pad).unwrap_or(libc::c_int::MAX);
        // SAFETY: as for M_TRIM_THRESHOLD above.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
            libc::mallopt(libc::M_TOP_PAD, top_pad);
        }
    }

    pub(super) fn trim() {
        // SAFETY: malloc_trim takes an integer and releases free pages of
        // every arena under their locks; no pointers are involved.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod imp {
    pub(super) fn set_trim_threshold(_bytes: usize) -> bool {
        false
    }

    pub(super) fn set_mmap_threshold(_bytes: usize) {}

    pub(super) fn one_heap(_top_pad: usize) {}

    pub(super) fn trim() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_is_harmless_either_way() {
        release_free_memory();
        let tuned = tune_for_throughput();
        assert_eq!(tuned, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Allocate and free well past the threshold's scale, then release.
        drop(vec![1u8; 4 << 20]);
        release_free_memory();
    }
}
