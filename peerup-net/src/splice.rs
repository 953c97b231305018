//! The proxy copy loop: one proxied connection, both directions, in one
//! future, driven by the core's [`HalfClose`].
//!
//! - One future (so one task) per connection, polling both directions: no
//!   task pair per connection, no channel between them.
//! - Bytes are read straight into a per-direction buffer and written from
//!   it: one copy, the least the `AsyncRead`/`AsyncWrite` interface allows.
//! - Buffers start small ([`MIN_BUF`]) so an idle connection costs little
//!   memory, and grow (to [`MAX_BUF`]) when reads fill them, because small
//!   writes are the biggest throughput loss on a yamux stream (each becomes
//!   its own frame and encrypted record).
//! - Writes are flushed when the source has nothing more to give, not per
//!   chunk.
//! - EOF in one direction shuts down the write side of the other end (half
//!   close); an error or reset on either end resets both.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::io::{AsyncRead, AsyncWrite};
use peerup_core::proxy::{Direction, HalfClose, HalfCloseOutput, Side};

/// Initial buffer per direction.
pub const MIN_BUF: usize = 16 * 1024;
/// Largest buffer per direction.
pub const MAX_BUF: usize = 256 * 1024;
/// Read/write rounds per poll before yielding to other tasks.
const BUDGET: usize = 64;

/// Byte counters a caller can watch while the splice runs (for `status`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes copied local -> remote.
    pub sent: AtomicU64,
    /// Bytes copied remote -> local.
    pub received: AtomicU64,
    /// Totals the copies are added to as well (a service's
    /// `peerup_proxy_bytes_total`, sent then received).
    totals: Option<[prometheus_client::metrics::counter::Counter; 2]>,
}

impl Counters {
    /// Counters that also add every byte to `sent` and `received`.
    pub fn with_totals(
        sent: prometheus_client::metrics::counter::Counter,
        received: prometheus_client::metrics::counter::Counter,
    ) -> Self {
        Counters {
            totals: Some([sent, received]),
            ..Counters::default()
        }
    }
}

/// How a splice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes copied local -> remote.
    pub sent: u64,
    /// Bytes copied remote -> local.
    pub received: u64,
    /// Whether it ended in a reset (an error on either end) rather than a
    /// clean close of both directions.
    pub reset: bool,
}

#[derive(Debug)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
    end: usize,
    unflushed: bool,
    shutting: bool,
}

impl Buf {
    fn new() -> Self {
        Buf {
            data: Vec::new(),
            pos: 0,
            end: 0,
            unflushed: false,
            shutting: false,
        }
    }

    /// Makes room for a read: allocates on first use, grows when the last
    /// read filled the buffer.
    fn prepare(&mut self) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = vec![0; MIN_BUF];
        } else if self.end == self.data.len() && self.data.len() < MAX_BUF {
            self.data = vec![0; (self.data.len() * 4).min(MAX_BUF)];
        }
        self.pos = 0;
        self.end = 0;
        &mut self.data
    }
}

/// Copies between `local` (a TCP socket) and `remote` (a libp2p stream)
/// until both directions are done or either end fails.
pub struct Splice<L, R> {
    local: L,
    remote: R,
    hc: HalfClose,
    bufs: [Buf; 2],
    counters: Arc<Counters>,
}

impl<L, R> Splice<L, R>
where
    L: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + AsyncWrite + Unpin,
{
    /// A splice that reports progress in `counters`.
    pub fn new(local: L, remote: R, counters: Arc<Counters>) -> Self {
        Splice {
            local,
            remote,
            hc: HalfClose::new(),
            bufs: [Buf::new(), Buf::new()],
            counters,
        }
    }

    /// Both ends, for the caller to drop (or abort) after the outcome.
    pub fn into_inner(self) -> (L, R) {
        (self.local, self.remote)
    }

    fn outcome(&self) -> Outcome {
        Outcome {
            sent: self.hc.bytes(Direction::LocalToRemote),
            received: self.hc.bytes(Direction::RemoteToLocal),
            reset: self.hc.is_reset(),
        }
    }

    fn apply_outputs(&mut self) {
        while let Some(o) = self.hc.poll_output() {
            match o {
                HalfCloseOutput::ShutdownWrite(side) => {
                    let dir = match side {
                        Side::Remote => Direction::LocalToRemote,
                        Side::Local => Direction::RemoteToLocal,
                    };
                    self.bufs[index(dir)].shutting = true;
                }
                HalfCloseOutput::Close | HalfCloseOutput::Reset => {}
            }
        }
    }

    /// Drives one direction as far as it goes without blocking; returns
    /// whether it made progress.
    fn poll_dir(&mut self, cx: &mut Context<'_>, dir: Direction) -> bool {
        let i = index(dir);
        let (src, dst): (&mut (dyn AsyncRead + Unpin), &mut (dyn AsyncWrite + Unpin)) = match dir {
            Direction::LocalToRemote => (&mut self.local as _, &mut self.remote as _),
            Direction::RemoteToLocal => (&mut self.remote as _, &mut self.local as _),
        };
        let buf = &mut self.bufs[i];
        if buf.shutting {
            return match Pin::new(dst).poll_close(cx) {
                Poll::Ready(Ok(())) => {
                    buf.shutting = false;
                    // Only fails if called twice, which `shutting` prevents.
                    let _ = self.hc.handle_shutdown_done(dir);
                    self.apply_outputs();
                    true
                }
                Poll::Ready(Err(_)) => {
                    self.hc.handle_error(dir.destination());
                    true
                }
                Poll::Pending => false,
            };
        }
        if !self.hc.is_open(dir) {
            return false;
        }
        if buf.pos < buf.end {
            return match Pin::new(dst).poll_write(cx, &buf.data[buf.pos..buf.end]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.hc.handle_error(dir.destination());
                    true
                }
                Poll::Ready(Ok(n)) => {
                    buf.pos += n;
                    buf.unflushed = true;
                    let counter = match dir {
                        Direction::LocalToRemote => &self.counters.sent,
                        Direction::RemoteToLocal => &self.counters.received,
                    };
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    if let Some(totals) = &self.counters.totals {
                        totals[i].inc_by(n as u64);
                    }
                    let _ = self.hc.handle_copied(dir, n as u64);
                    true
                }
                Poll::Pending => false,
            };
        }
        let space = buf.prepare();
        match Pin::new(src).poll_read(cx, space) {
            Poll::Ready(Ok(0)) => {
                buf.unflushed = false;
                // EOF: the shutdown of the destination follows (and flushes).
                let _ = self.hc.handle_eof(dir);
                self.apply_outputs();
                true
            }
            Poll::Ready(Ok(n)) => {
                buf.end = n;
                true
            }
            Poll::Ready(Err(_)) => {
                self.hc.handle_error(dir.source());
                true
            }
            Poll::Pending => {
                // Nothing more to read for now: push out what was written.
                if buf.unflushed {
                    match Pin::new(dst).poll_flush(cx) {
                        Poll::Ready(Ok(())) => buf.unflushed = false,
                        Poll::Ready(Err(_)) => {
                            self.hc.handle_error(dir.destination());
                            return true;
                        }
                        Poll::Pending => {}
                    }
                }
                false
            }
        }
    }
}

fn index(dir: Direction) -> usize {
    match dir {
        Direction::LocalToRemote => 0,
        Direction::RemoteToLocal => 1,
    }
}

impl<L, R> Future for Splice<L, R>
where
    L: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + AsyncWrite + Unpin,
{
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        for _ in 0..BUDGET {
            if this.hc.is_finished() {
                return Poll::Ready(this.outcome());
            }
            let a = this.poll_dir(cx, Direction::LocalToRemote);
            let b = this.poll_dir(cx, Direction::RemoteToLocal);
            if !a && !b {
                return Poll::Pending;
            }
        }
        if this.hc.is_finished() {
            return Poll::Ready(this.outcome());
        }
        // Budget spent with both sides still busy: let other tasks run.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// An I/O error for a stream that was reset, for callers that surface a
/// splice's reset as an error.
pub fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "proxied connection reset")
}
