//! The stream protocols: ping-pong lines (WIRE.md §3) and the proxy's half-close bookkeeping.

use core::time::Duration;

use multiaddr::Protocol;

use crate::Multiaddr;
use crate::proxy::half_close::{Direction, HalfClose, HalfCloseOutput, Side};
use crate::wire::ConnectionPath;
use crate::wire::pingpong::{self, Reply, Stats};

use super::*;
use crate::models::{HalfCloseModel, HalfCloseOp};

// ---------------------------------------------------------------------------
// pingpong

/// The ping-pong line protocol (WIRE.md §3). The input is a byte stream
/// cut into lines as a responder reads it (each line answered and the
/// answer classified as a client would), then read again as RTT samples
/// for [`Stats`], and as a binary multiaddr for [`ConnectionPath::of`].
///
/// # Panics
/// When line framing breaks its bounds, when `respond` or `classify`
/// disagree with the protocol, or when [`Stats`] disagrees with a model.
pub fn pingpong(data: &[u8]) {
    let mut buf = data;
    loop {
        match pingpong::line(buf) {
            pingpong::Line::Complete(line, used) => {
                assert_eq!(used, line.len() + 1);
                assert!(used <= pingpong::MAX_LINE, "a line of {used} bytes");
                assert_eq!(buf[used - 1], b'\n');
                assert!(!line.contains(&b'\n'));
                let answer = pingpong::respond(line);
                let is_ping = line.trim_ascii() == b"ping";
                assert_eq!(
                    answer,
                    if is_ping {
                        pingpong::PONG
                    } else {
                        pingpong::UNKNOWN
                    }
                );
                let reply = &answer[..answer.len() - 1];
                assert_eq!(pingpong::classify(reply) == Reply::Pong, is_ping);
                match pingpong::classify(line) {
                    Reply::Pong => assert_eq!(line.trim_ascii(), b"pong"),
                    Reply::Unexpected(s) => {
                        assert_ne!(line.trim_ascii(), b"pong");
                        assert_eq!(s, String::from_utf8_lossy(line.trim_ascii()));
                    }
                }
                buf = &buf[used..];
            }
            pingpong::Line::Incomplete => {
                assert!(buf.len() < pingpong::MAX_LINE && !buf.contains(&b'\n'));
                break;
            }
            pingpong::Line::TooLong => {
                assert!(buf.len() >= pingpong::MAX_LINE);
                assert!(!buf[..pingpong::MAX_LINE].contains(&b'\n'));
                break;
            }
        }
    }

    // Stats against a model.
    let mut input = Input::new(data);
    let mut stats = Stats::new();
    let (mut sent, mut received) = (0u64, 0u64);
    let mut samples: Vec<Duration> = Vec::new();
    while !input.is_empty() {
        let op = input.u8();
        if op & 1 == 0 {
            stats.sent();
            sent += 1;
        } else {
            let nanos = match (op >> 1) & 3 {
                0 => u64::from(input.u16()) * 1_000,
                1 => u64::from(input.u16()) * 1_000_000,
                2 => input.u64(),
                _ => u64::MAX,
            };
            let secs = if (op >> 3) & 1 == 1 { u64::MAX } else { 0 };
            let rtt = Duration::from_nanos(nanos).saturating_add(Duration::from_secs(secs));
            stats.received(rtt);
            received += 1;
            samples.push(rtt);
        }
        assert_eq!(stats.sent_count(), sent);
        assert_eq!(stats.received_count(), received);
        let loss = stats.loss_percent();
        assert!((0.0..=100.0).contains(&loss), "loss {loss}%");
        let total = samples
            .iter()
            .fold(Duration::ZERO, |t, s| t.saturating_add(*s));
        let expected = samples
            .iter()
            .min()
            .zip(samples.iter().max())
            .map(|(min, max)| {
                let n = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
                (*min, total / n, *max)
            });
        assert_eq!(stats.rtt(), expected, "rtt min/avg/max");
        let summary = stats.summary();
        assert!(
            summary.starts_with(&format!("{sent} sent, {received} received, ")),
            "{summary}"
        );
        assert_eq!(summary.contains("rtt"), received > 0, "{summary}");
    }
    if let Ok(addr) = Multiaddr::try_from(data.to_vec()) {
        let relayed = addr.iter().any(|p| p == Protocol::P2pCircuit);
        let path = ConnectionPath::of(&addr);
        assert_eq!(path == ConnectionPath::Relayed, relayed);
        let shown = pingpong::format_reply(1, Duration::from_millis(1), path);
        assert!(shown.ends_with(&format!("path=[{path}]")));
    }
}

// ---------------------------------------------------------------------------
// half_close

/// The proxy's half-close bookkeeping: each byte is one copy-loop event
/// (data copied, EOF, shutdown done, error) applied to [`HalfClose`] and to
/// the naive model of its proptest.
///
/// # Panics
/// When the machine and the model disagree on the result of a call, the
/// outputs, the byte counts or the open, finished and reset flags, or when
/// it both closes and resets or does either twice.
pub fn half_close(data: &[u8]) {
    let mut input = Input::new(data);
    let mut machine = HalfClose::new();
    let mut model = HalfCloseModel::default();
    let mut finals = 0;
    while !input.is_empty() {
        let b = input.u8();
        let dir = if b & 4 == 0 {
            Direction::LocalToRemote
        } else {
            Direction::RemoteToLocal
        };
        let side = if b & 8 == 0 {
            Side::Local
        } else {
            Side::Remote
        };
        let op = match b % 4 {
            0 => HalfCloseOp::Copied(dir, u64::from(input.u16()) << (b >> 4)),
            1 => HalfCloseOp::Eof(dir),
            2 => HalfCloseOp::ShutdownDone(dir),
            _ => HalfCloseOp::Error(side),
        };
        let ok = op.apply_to(&mut machine);
        let (model_ok, model_out) = model.apply(op);
        assert_eq!(ok, model_ok, "{op:?}: result");
        let out: Vec<HalfCloseOutput> = core::iter::from_fn(|| machine.poll_output()).collect();
        assert_eq!(out, model_out, "{op:?}: outputs");
        finals += out
            .iter()
            .filter(|o| matches!(o, HalfCloseOutput::Close | HalfCloseOutput::Reset))
            .count();
        assert!(finals <= 1, "closed or reset twice");
        model.assert_matches(&machine);
    }
}
