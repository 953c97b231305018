//! A peer that sends maximal yamux frames, as js-libp2p's yamux (8.x)
//! does: one data frame as large as the whole window it was granted.
//! Unpatched rust-yamux 0.14.1 refuses any frame over 1 MiB and closes the
//! connection; peerup's patched copy (patches/README.md) accepts frames up
//! to the window it granted, and still refuses a header claiming more.
//!
//! The peer is written by hand over an in-memory pipe against a
//! `yamux::Connection`, the muxer peerup's libp2p connections run on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::AsyncReadExt as _;
use futures::future::poll_fn;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::compat::TokioAsyncReadCompatExt;

const DATA: u8 = 0;
const WINDOW_UPDATE: u8 = 1;
const PING: u8 = 2;
const GO_AWAY: u8 = 3;
const SYN: u16 = 1;
const ACK: u16 = 2;
const FIN: u16 = 4;
const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Upper bound for the whole exchange; only reached when something is
/// broken.
const LIMIT: Duration = Duration::from_secs(60);

/// A yamux header: version 0, type, flags, stream ID, length, big-endian.
fn header(ty: u8, flags: u16, stream: u32, len: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[1] = ty;
    h[2..4].copy_from_slice(&flags.to_be_bytes());
    h[4..8].copy_from_slice(&stream.to_be_bytes());
    h[8..12].copy_from_slice(&len.to_be_bytes());
    h
}

async fn send_data(io: &mut DuplexStream, flags: u16, len: usize) -> std::io::Result<()> {
    io.write_all(&header(DATA, flags, 1, u32::try_from(len).unwrap()))
        .await?;
    io.write_all(&vec![0x42; len]).await
}

/// Reads frames until at least one window update for stream 1 arrived;
/// returns the credit it (they) granted, or `None` if the server closed.
async fn next_credit(io: &mut DuplexStream) -> Option<usize> {
    loop {
        let mut h = [0u8; 12];
        io.read_exact(&mut h).await.ok()?;
        let stream = u32::from_be_bytes(h[4..8].try_into().unwrap());
        let len = u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize;
        match h[1] {
            WINDOW_UPDATE if stream == 1 && len > 0 => return Some(len),
            DATA => {
                let mut b = vec![0; len];
                io.read_exact(&mut b).await.ok()?;
            }
            _ => {}
        }
    }
}

/// A yamux server that accepts streams and reads them to the end; returns
/// the bytes read, or the connection's error.
fn server(io: DuplexStream) -> tokio::task::JoinHandle<Result<usize, String>> {
    let mut config = yamux::Config::default();
    // As peerup's own config (peerup_net::runtime::yamux_config).
    config.set_max_num_streams(2048);
    let mut conn = yamux::Connection::new(io.compat(), config, yamux::Mode::Server);
    tokio::spawn(async move {
        let mut readers = Vec::new();
        loop {
            match poll_fn(|cx| conn.poll_next_inbound(cx)).await {
                Some(Ok(mut s)) => readers.push(tokio::spawn(async move {
                    let mut n = 0usize;
                    let mut buf = vec![0u8; 64 * KIB];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return n,
                            Ok(k) => n += k,
                        }
                    }
                })),
                Some(Err(e)) => return Err(e.to_string()),
                None => {
                    let mut total = 0;
                    for r in readers {
                        total += r.await.unwrap();
                    }
                    return Ok(total);
                }
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_as_large_as_the_granted_window_is_accepted() {
    let (mut client, server_io) = tokio::io::duplex(64 * MIB);
    let server = server(server_io);
    tokio::time::timeout(LIMIT, async move {
        // 1. The server measures the round trip with its first ping. Answer
        //    it late, as a peer across a slow link would: the window then
        //    doubles at every update (it grows when the sender used half of
        //    it within two round trips), so it passes 1 MiB in a few steps.
        let mut h = [0u8; 12];
        client.read_exact(&mut h).await.unwrap();
        assert_eq!((h[1], u16::from_be_bytes([h[2], h[3]])), (PING, SYN));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let nonce = u32::from_be_bytes(h[8..12].try_into().unwrap());
        client
            .write_all(&header(PING, ACK, 0, nonce))
            .await
            .unwrap();

        // 2. Open stream 1 and spend every byte of credit, one frame at a
        //    time (each at most 1 MiB), until the credit passes 1 MiB.
        let mut credit = 256 * KIB;
        let mut flags = SYN;
        let mut sent = 0;
        while credit <= MIB {
            send_data(&mut client, flags, credit).await.unwrap();
            flags = 0;
            sent += credit;
            credit = next_credit(&mut client).await.expect("server closed");
        }

        // 3. One data frame as large as the whole credit, as js-libp2p's
        //    yamux sends it.
        assert!(credit > MIB, "{credit}");
        // (Unpatched, the server hangs up here and the writes fail.)
        let _ = send_data(&mut client, 0, credit).await;
        sent += credit;
        let _ = client.write_all(&header(WINDOW_UPDATE, FIN, 1, 0)).await;
        let _ = client.write_all(&header(GO_AWAY, 0, 0, 0)).await;
        let result = server.await.unwrap();
        assert_eq!(
            result,
            Ok(sent),
            "the server must accept a frame as large as the credit it granted"
        );
    })
    .await
    .expect("the exchange did not finish");
}

#[tokio::test]
async fn a_frame_larger_than_any_granted_window_is_refused_on_its_header() {
    let (mut client, server_io) = tokio::io::duplex(MIB);
    let server = server(server_io);
    send_data(&mut client, SYN, KIB).await.unwrap();
    // A header alone, claiming a body of 4 GiB: refused before any
    // allocation, as before the patch.
    client
        .write_all(&header(DATA, 0, 1, u32::MAX))
        .await
        .unwrap();
    let e = tokio::time::timeout(LIMIT, server)
        .await
        .expect("the server did not notice")
        .unwrap();
    assert_eq!(
        e,
        Err(format!(
            "decode error: frame body is too large ({})",
            u32::MAX
        ))
    );
}

/// How an [`OnWrite`] writes: handed the inner writer and the slices of
/// every write (plain writes as one slice).
type WriteFn<T> = Box<
    dyn FnMut(
            std::pin::Pin<&mut T>,
            &mut std::task::Context<'_>,
            &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>>
        + Send,
>;

/// A connection's pipe whose writes go through `write` (to take part of
/// them, to count them); reads, flushes and closes pass through.
struct OnWrite<T> {
    inner: T,
    write: WriteFn<T>,
}

impl<T> OnWrite<T> {
    fn new(
        inner: T,
        write: impl FnMut(
            std::pin::Pin<&mut T>,
            &mut std::task::Context<'_>,
            &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>>
        + Send
        + 'static,
    ) -> Self {
        OnWrite {
            inner,
            write: Box::new(write),
        }
    }
}

impl<T: futures::AsyncRead + Unpin> futures::AsyncRead for OnWrite<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: futures::AsyncWrite + Unpin> futures::AsyncWrite for OnWrite<T> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.poll_write_vectored(cx, &[std::io::IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = &mut *self;
        (this.write)(std::pin::Pin::new(&mut this.inner), cx, bufs)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Write sizes cycling so that writes end inside headers, between a
/// header and its body, and inside bodies.
const STEPS: [usize; 8] = [1, 5, 11, 12, 13, 700, 16 * KIB + 12, 3];

/// Sends `data` on one stream of a yamux client over `client_io` to a
/// yamux server over `server_io`, and checks that every byte arrives in
/// order within the limit.
async fn send_through<C>(client_io: C, server_io: DuplexStream, data: Vec<u8>)
where
    C: futures::AsyncRead + futures::AsyncWrite + Unpin + Send + 'static,
{
    use futures::AsyncWriteExt as _;
    let expect = data.clone();
    let mut server = yamux::Connection::new(
        server_io.compat(),
        yamux::Config::default(),
        yamux::Mode::Server,
    );
    let received = tokio::spawn(async move {
        let mut s = poll_fn(|cx| server.poll_next_inbound(cx))
            .await
            .expect("a stream")
            .expect("no connection error");
        let drive = tokio::spawn(async move {
            while let Some(Ok(_)) = poll_fn(|cx| server.poll_next_inbound(cx)).await {}
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        drive.abort();
        got
    });
    let mut client =
        yamux::Connection::new(client_io, yamux::Config::default(), yamux::Mode::Client);
    let mut s = poll_fn(|cx| client.poll_new_outbound(cx)).await.unwrap();
    let drive = tokio::spawn(async move {
        while let Some(Ok(_)) = poll_fn(|cx| client.poll_next_inbound(cx)).await {}
    });
    tokio::time::timeout(LIMIT, async move {
        s.write_all(&data).await.unwrap();
        s.close().await.unwrap();
        let got = received.await.unwrap();
        assert!(
            got == expect,
            "{} bytes arrived of {}",
            got.len(),
            expect.len()
        );
    })
    .await
    .expect("the stream did not arrive");
    drive.abort();
}

/// The patch also writes a frame's header and body in one vectored write
/// (one TLS write, one system call, instead of two), and a burst of frames
/// together: every byte still arrives, in order, whatever part of the
/// slices each write takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_written_a_few_bytes_at_a_time_arrive_whole() {
    let (client_io, server_io) = tokio::io::duplex(64 * KIB);
    let whole_frames = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // A writer that takes a few bytes at a time (sizes cycling through
    // `STEPS`), counting the writes handed a header and a body together.
    let counted = whole_frames.clone();
    let mut step = 0;
    let client_io = OnWrite::new(client_io.compat(), move |inner, cx, bufs| {
        if bufs.len() >= 2 && bufs[0].len() == 12 && !bufs[1].is_empty() {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let limit = STEPS[step % STEPS.len()];
        let mut chunk = Vec::with_capacity(limit);
        for b in bufs {
            let take = (limit - chunk.len()).min(b.len());
            chunk.extend_from_slice(&b[..take]);
        }
        let r = futures::AsyncWrite::poll_write(inner, cx, &chunk);
        if matches!(r, std::task::Poll::Ready(Ok(_))) {
            step += 1;
        }
        r
    });
    let data: Vec<u8> = (0..MIB + 777).map(|i| (i * 31 % 251) as u8).collect();
    send_through(client_io, server_io, data).await;
    assert!(
        whole_frames.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no write was handed a header and its body together"
    );
}

/// A write of 1 MiB becomes 64 data frames of 16 KiB; the connection hands
/// the frames that are ready together to one vectored write (so TLS seals
/// them into records and sends them with one system call), and flushes
/// once none is left ready: the bytes arrive whole, in fewer writes than
/// frames. On one thread, so the stream queues its frames (10 at most)
/// before the connection runs.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_frames_goes_out_in_one_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let (client_io, server_io) = tokio::io::duplex(4 * MIB);
    let writes = Arc::new(AtomicUsize::new(0));
    let most_slices = Arc::new(AtomicUsize::new(0));
    // A pipe that takes all it is handed, as a socket with room does
    // (the compat layer's vectored write takes the first slice only),
    // counting the writes and the most slices any one was handed.
    let (counted, most) = (writes.clone(), most_slices.clone());
    let client_io = OnWrite::new(client_io.compat(), move |inner, cx, bufs| {
        let whole: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let r = futures::AsyncWrite::poll_write(inner, cx, &whole);
        if matches!(r, std::task::Poll::Ready(Ok(_))) {
            counted.fetch_add(1, Relaxed);
            most.fetch_max(bufs.len(), Relaxed);
        }
        r
    });
    let data: Vec<u8> = (0..MIB).map(|i| (i * 7 % 253) as u8).collect();
    send_through(client_io, server_io, data).await;
    let (writes, most) = (writes.load(Relaxed), most_slices.load(Relaxed));
    assert!(
        most >= 8,
        "no write was handed 4 frames or more (at most {most} slices in one write)"
    );
    assert!(writes < 64, "{writes} writes for 64 data frames");
}

/// A socket that always has pings to read and never takes a byte: a peer
/// that pings and never reads. Counts the bytes read.
struct PingsNeverRead {
    pings_read: usize,
    at: usize,
}

impl futures::AsyncRead for PingsNeverRead {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let ping = header(PING, SYN, 0, 7);
        let mut n = 0;
        while n < buf.len() {
            buf[n] = ping[self.at];
            n += 1;
            self.at = (self.at + 1) % ping.len();
            if self.at == 0 {
                self.pings_read += 1;
            }
        }
        std::task::Poll::Ready(Ok(n))
    }
}

impl futures::AsyncWrite for PingsNeverRead {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        _buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Pending
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Pending
    }
}

/// Frames queued for writing are bounded in number as well as in bytes: a
/// peer that sends pings and never reads gets a few dozen pongs queued,
/// then the connection stops reading it (unbounded by count, 64 KiB of
/// 12-byte pongs was 5,461 of them, 40 bytes of memory each).
#[test]
fn a_peer_that_pings_and_never_reads_is_read_no_further() {
    let mut io = PingsNeverRead {
        pings_read: 0,
        at: 0,
    };
    let mut conn = yamux::Connection::new(&mut io, yamux::Config::default(), yamux::Mode::Server);
    let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
    // One poll runs the connection until nothing more can be done: every
    // ping read is answered, until the socket takes nothing more.
    assert!(conn.poll_next_inbound(&mut cx).is_pending());
    drop(conn);
    assert!(
        io.pings_read < 100,
        "{} pings read from a peer that reads nothing",
        io.pings_read
    );
}
