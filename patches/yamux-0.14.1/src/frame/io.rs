// Copyright (c) 2019 Parity Technologies (UK) Ltd.
//
// Licensed under the Apache License, Version 2.0 or MIT license, at your option.
//
// A copy of the Apache License, Version 2.0 is included in the software as
// LICENSE-APACHE and a copy of the MIT license is included in the software
// as LICENSE-MIT. You may also obtain a copy of the Apache License, Version 2.0
// at https://www.apache.org/licenses/LICENSE-2.0 and a copy of the MIT license
// at https://opensource.org/licenses/MIT.

use super::{
    header::{self, HeaderDecodeError},
    Frame,
};
use crate::connection::Id;
use futures::{prelude::*, ready};
use parking_lot::Mutex;
use std::{
    cmp,
    collections::VecDeque,
    fmt, io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

/// Minimum accepted Yamux data frame body length, and the size of the body buffer allocated up
/// front (larger bodies grow the buffer as their bytes arrive).
///
/// Larger frames are accepted up to the largest receive window granted so far (see
/// [`Io::max_body_len`]): peers such as js-libp2p send data frames as large as their send window.
const MAX_FRAME_BODY_LEN: usize = crate::MIB;

/// A [`Stream`] and writer of [`Frame`] values.
#[derive(Debug)]
pub(crate) struct Io<T> {
    id: Id,
    io: T,
    read_state: ReadState,
    write_queue: WriteQueue,
    /// See `Active::accumulated_max_stream_windows`.
    accumulated_max_stream_windows: Arc<Mutex<usize>>,
    /// Largest data frame body accepted: the largest credit ever granted to a stream,
    /// sampled whenever a window update is written (never below `MAX_FRAME_BODY_LEN`).
    max_body_len: usize,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Io<T> {
    pub(crate) fn new(id: Id, io: T, accumulated_max_stream_windows: Arc<Mutex<usize>>) -> Self {
        Io {
            id,
            io,
            read_state: ReadState::Init,
            write_queue: WriteQueue {
                frames: VecDeque::new(),
                offset: 0,
                len: 0,
                poisoned: false,
            },
            accumulated_max_stream_windows,
            max_body_len: MAX_FRAME_BODY_LEN,
        }
    }
}

// PATCH(peerup): frames queued and written together (see peerup's patches/README.md).
/// Frames accepted by `start_send` and not yet written whole. They go out
/// together, header and body of each as slices of one vectored write, so a
/// security layer that seals every write into records and writes them at
/// once (TLS) sends a burst of frames with one system call, not one per
/// frame. Written when `WRITE_BATCH` bytes are queued, and on every flush:
/// the connection flushes whenever it has no further frame ready to send,
/// so nothing waits for more.
struct WriteQueue {
    frames: VecDeque<([u8; header::HEADER_SIZE], Vec<u8>)>,
    /// Bytes of the front frame (its header, then its body) already written.
    offset: usize,
    /// Bytes queued and not yet written.
    len: usize,
    poisoned: bool,
}

/// Queued bytes at which `poll_ready` writes before taking another frame.
const WRITE_BATCH: usize = 64 * 1024;

/// At most this many slices per vectored write (a header and a body each).
const MAX_SLICES: usize = 64;

impl fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "(WriteQueue (frames {}) (bytes {}) (offset {}){})",
            self.frames.len(),
            self.len,
            self.offset,
            if self.poisoned { " poisoned" } else { "" }
        )
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Io<T> {
    /// Writes from the front of the queue, one vectored write.
    fn poll_write_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let q = &mut self.write_queue;
        if q.poisoned {
            return Poll::Ready(Err(io::Error::other(
                "Sink is in poisoned state due to previous write error",
            )));
        }
        let mut bufs = [io::IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        let mut total = 0;
        let mut skip = q.offset;
        for (header, body) in &q.frames {
            for part in [&header[..], &body[..]] {
                let cut = skip.min(part.len());
                skip -= cut;
                let part = &part[cut..];
                if !part.is_empty() && count < MAX_SLICES {
                    bufs[count] = io::IoSlice::new(part);
                    count += 1;
                    total += part.len();
                }
            }
            if count == MAX_SLICES {
                break;
            }
        }
        debug_assert!(count > 0, "poll_write_some with nothing queued");
        // Any error poisons the sink: a layer that took part of the bytes
        // before failing (TLS buffers what it seals) must not be handed
        // them again.
        let n = match ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &bufs[..count])) {
            Ok(0) => {
                q.poisoned = true;
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Ok(n) if n > total => {
                q.poisoned = true;
                return Poll::Ready(Err(io::Error::other(format!(
                    "Writer returned invalid write count n={n}: > {total}"
                ))));
            }
            Ok(n) => n,
            Err(e) => {
                q.poisoned = true;
                return Poll::Ready(Err(e));
            }
        };
        q.len -= n;
        let mut n = n;
        while n > 0 {
            let (header, body) = q.frames.front().expect("bytes written belong to queued frames");
            let rest = header.len() + body.len() - q.offset;
            if n < rest {
                q.offset += n;
                break;
            }
            n -= rest;
            q.offset = 0;
            q.frames.pop_front();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Sink<Frame<()>> for Io<T> {
    type Error = io::Error;

    // PATCH(peerup): frames queued and written together (see peerup's patches/README.md).
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = Pin::into_inner(self);
        log::trace!("{}: write: {:?}", this.id, this.write_queue);
        // Bytes bound the data queued; the count bounds frames with no body
        // (pongs to a peer that pings and never reads: 12 bytes each).
        while this.write_queue.len >= WRITE_BATCH
            || this.write_queue.frames.len() >= MAX_SLICES / 2
            || this.write_queue.poisoned
        {
            ready!(this.poll_write_some(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, f: Frame<()>) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if f.header.tag() == header::Tag::WindowUpdate {
            // No stream's window exceeds DEFAULT_CREDIT + accumulated_max_stream_windows.
            let granted =
                crate::DEFAULT_CREDIT as usize + *this.accumulated_max_stream_windows.lock();
            this.max_body_len = cmp::max(this.max_body_len, granted);
        }
        let header = header::encode(&f.header);
        let body = f.body;
        this.write_queue.len += header.len() + body.len();
        this.write_queue.frames.push_back((header, body));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = Pin::into_inner(self);
        while this.write_queue.len > 0 || this.write_queue.poisoned {
            ready!(this.poll_write_some(cx))?;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = Pin::into_inner(self);
        while this.write_queue.len > 0 || this.write_queue.poisoned {
            ready!(this.poll_write_some(cx))?;
        }
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// The stages of reading a new `Frame`.
enum ReadState {
    /// Initial reading state.
    Init,
    /// Reading the frame header.
    Header {
        offset: usize,
        buffer: [u8; header::HEADER_SIZE],
    },
    /// Reading the frame body.
    Body {
        header: header::Header<()>,
        offset: usize,
        buffer: Vec<u8>,
    },
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for Io<T> {
    type Item = Result<Frame<()>, FrameDecodeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            log::trace!("{}: read: {:?}", this.id, this.read_state);
            match this.read_state {
                ReadState::Init => {
                    this.read_state = ReadState::Header {
                        offset: 0,
                        buffer: [0; header::HEADER_SIZE],
                    };
                }
                ReadState::Header {
                    ref mut offset,
                    ref mut buffer,
                } => {
                    if *offset == header::HEADER_SIZE {
                        let header = match header::decode(buffer) {
                            Ok(hd) => hd,
                            Err(e) => return Poll::Ready(Some(Err(e.into()))),
                        };

                        log::trace!("{}: read: {}", this.id, header);

                        if header.tag() != header::Tag::Data {
                            this.read_state = ReadState::Init;
                            return Poll::Ready(Some(Ok(Frame::new(header))));
                        }

                        let body_len = header.len().val() as usize;

                        if body_len > this.max_body_len {
                            return Poll::Ready(Some(Err(FrameDecodeError::FrameTooLarge(
                                body_len,
                            ))));
                        }

                        this.read_state = ReadState::Body {
                            header,
                            offset: 0,
                            buffer: Vec::new(),
                        };

                        continue;
                    }

                    let buf = &mut buffer[*offset..header::HEADER_SIZE];
                    match ready!(Pin::new(&mut this.io).poll_read(cx, buf))? {
                        0 => {
                            if *offset == 0 {
                                return Poll::Ready(None);
                            }
                            let e = FrameDecodeError::Io(io::ErrorKind::UnexpectedEof.into());
                            return Poll::Ready(Some(Err(e)));
                        }
                        n => *offset += n,
                    }
                }
                ReadState::Body {
                    ref header,
                    ref mut offset,
                    ref mut buffer,
                } => {
                    let body_len = header.len().val() as usize;

                    if *offset == body_len {
                        let h = header.clone();
                        let v = std::mem::take(buffer);
                        this.read_state = ReadState::Init;
                        return Poll::Ready(Some(Ok(Frame { header: h, body: v })));
                    }

                    if *offset == buffer.len() {
                        // Grow as bytes arrive: a header alone allocates at most 1 MiB.
                        let len =
                            cmp::min(body_len, cmp::max(2 * buffer.len(), MAX_FRAME_BODY_LEN));
                        buffer.reserve_exact(len - buffer.len()); // we already double `len`
                        buffer.resize(len, 0);
                    }

                    let buf = &mut buffer[*offset..];
                    match ready!(Pin::new(&mut this.io).poll_read(cx, buf))? {
                        0 => {
                            let e = FrameDecodeError::Io(io::ErrorKind::UnexpectedEof.into());
                            return Poll::Ready(Some(Err(e)));
                        }
                        n => *offset += n,
                    }
                }
            }
        }
    }
}

impl fmt::Debug for ReadState {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ReadState::Init => f.write_str("(ReadState::Init)"),
            ReadState::Header { offset, .. } => {
                write!(f, "(ReadState::Header (offset {offset}))")
            }
            ReadState::Body {
                header,
                offset,
                buffer,
            } => {
                write!(
                    f,
                    "(ReadState::Body (header {}) (offset {}) (buffer-len {}))",
                    header,
                    offset,
                    buffer.len()
                )
            }
        }
    }
}

/// Possible errors while decoding a message frame.
#[non_exhaustive]
#[derive(Debug)]
pub enum FrameDecodeError {
    /// An I/O error.
    Io(io::Error),
    /// Decoding the frame header failed.
    Header(HeaderDecodeError),
    /// A data frame body length is larger than the configured maximum.
    FrameTooLarge(usize),
}

impl std::fmt::Display for FrameDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            FrameDecodeError::Io(e) => write!(f, "i/o error: {e}"),
            FrameDecodeError::Header(e) => write!(f, "decode error: {e}"),
            FrameDecodeError::FrameTooLarge(n) => write!(f, "frame body is too large ({n})"),
        }
    }
}

impl std::error::Error for FrameDecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameDecodeError::Io(e) => Some(e),
            FrameDecodeError::Header(e) => Some(e),
            FrameDecodeError::FrameTooLarge(_) => None,
        }
    }
}

impl From<std::io::Error> for FrameDecodeError {
    fn from(e: std::io::Error) -> Self {
        FrameDecodeError::Io(e)
    }
}

impl From<HeaderDecodeError> for FrameDecodeError {
    fn from(e: HeaderDecodeError) -> Self {
        FrameDecodeError::Header(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::{Arbitrary, Gen, QuickCheck};
    use rand::Rng;

    impl Arbitrary for Frame<()> {
        fn arbitrary(g: &mut Gen) -> Self {
            let mut header: header::Header<()> = Arbitrary::arbitrary(g);
            let body = if header.tag() == header::Tag::Data {
                header.set_len(header.len().val() % 4096);
                let mut b = vec![0; header.len().val() as usize];
                rand::rng().fill_bytes(&mut b);
                b
            } else {
                Vec::new()
            };
            Frame { header, body }
        }
    }

    #[test]
    fn encode_decode_identity() {
        fn property(f: Frame<()>) -> bool {
            futures::executor::block_on(async move {
                let id = crate::connection::Id::next();
                let mut io = Io::new(id, futures::io::Cursor::new(Vec::new()), Default::default());
                if io.send(f.clone()).await.is_err() {
                    return false;
                }
                if io.flush().await.is_err() {
                    return false;
                }
                io.io.set_position(0);
                if let Ok(Some(x)) = io.try_next().await {
                    x == f
                } else {
                    false
                }
            })
        }

        QuickCheck::new()
            .tests(10_000)
            .quickcheck(property as fn(Frame<()>) -> bool)
    }
}
