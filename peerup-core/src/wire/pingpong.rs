//! The application ping (WIRE.md §3), `/pingpong/1.0.0` by default.
//!
//! One new stream per ping. The client writes `ping\n` and reads one line;
//! the responder answers `pong\n` (anything else: `unknown\n`) and closes.
//! The client gives up after [`CLIENT_TIMEOUT`]. RTT runs from the write to
//! the reply line. A reply is shown as `seq=N rtt=X.Xms path=[DIRECT]`, and
//! a run ends with `N sent, N received, X% loss, rtt min/avg/max = a/b/c ms`.

use core::time::Duration;

use super::path::ConnectionPath;

/// What the client sends.
pub const PING: &[u8] = b"ping\n";
/// The answer to `ping`.
pub const PONG: &[u8] = b"pong\n";
/// The answer to anything else.
pub const UNKNOWN: &[u8] = b"unknown\n";
/// How long the client waits for the reply line.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest line either side reads; a peer that sends more without a
/// newline gets `unknown` (responder) or a protocol error (client).
pub const MAX_LINE: usize = 64;

/// The result of looking for one line at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line (without its `\n`), and the bytes it used.
    Complete(&'a [u8], usize),
    /// No newline yet and still under [`MAX_LINE`]: read more.
    Incomplete,
    /// [`MAX_LINE`] bytes without a newline.
    TooLong,
}

/// Finds the first line in `buf`.
pub fn line(buf: &[u8]) -> Line<'_> {
    match buf.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(i) => Line::Complete(&buf[..i], i + 1),
        None if buf.len() >= MAX_LINE => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// The responder's answer to a request line (surrounding whitespace, such
/// as a `\r`, is ignored, as the Go version does).
pub fn respond(request: &[u8]) -> &'static [u8] {
    if request.trim_ascii() == b"ping" {
        PONG
    } else {
        UNKNOWN
    }
}

/// What the client made of the reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `pong`.
    Pong,
    /// Anything else, lossily decoded for display.
    Unexpected(String),
}

/// Classifies a reply line.
pub fn classify(reply: &[u8]) -> Reply {
    let t = reply.trim_ascii();
    if t == b"pong" {
        Reply::Pong
    } else {
        Reply::Unexpected(String::from_utf8_lossy(t).into_owned())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One reply line: `seq=N rtt=X.Xms path=[DIRECT]`.
pub fn format_reply(seq: u64, rtt: Duration, path: ConnectionPath) -> String {
    format!("seq={seq} rtt={:.1}ms path=[{path}]", ms(rtt))
}

/// Counts of a ping run, for the summary line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    sent: u64,
    received: u64,
    min: Option<Duration>,
    max: Option<Duration>,
    total: Duration,
}

impl Stats {
    /// No pings yet.
    pub fn new() -> Self {
        Stats::default()
    }

    /// A ping was sent.
    pub fn sent(&mut self) {
        self.sent += 1;
    }

    /// A pong came back after `rtt`.
    pub fn received(&mut self, rtt: Duration) {
        self.received += 1;
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        self.max = Some(self.max.map_or(rtt, |m| m.max(rtt)));
        self.total = self.total.saturating_add(rtt);
    }

    /// Pings sent.
    pub fn sent_count(&self) -> u64 {
        self.sent
    }

    /// Pongs received.
    pub fn received_count(&self) -> u64 {
        self.received
    }

    /// Loss in percent (0 when nothing was sent).
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        let lost = self.sent.saturating_sub(self.received);
        lost as f64 * 100.0 / self.sent as f64
    }

    /// Smallest, mean and largest RTT, if any pong came back.
    pub fn rtt(&self) -> Option<(Duration, Duration, Duration)> {
        let (min, max) = (self.min?, self.max?);
        let avg = self.total / u32::try_from(self.received).unwrap_or(u32::MAX).max(1);
        Some((min, avg, max))
    }

    /// `N sent, N received, X% loss, rtt min/avg/max = a/b/c ms` (the rtt
    /// part only when a pong came back).
    pub fn summary(&self) -> String {
        let head = format!(
            "{} sent, {} received, {:.0}% loss",
            self.sent,
            self.received,
            self.loss_percent()
        );
        match self.rtt() {
            Some((min, avg, max)) => {
                format!(
                    "{head}, rtt min/avg/max = {:.1}/{:.1}/{:.1} ms",
                    ms(min),
                    ms(avg),
                    ms(max)
                )
            }
            None => head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn responder_answers() {
        assert_eq!(respond(b"ping"), PONG);
        assert_eq!(respond(b"ping\r"), PONG);
        assert_eq!(respond(b"PING"), UNKNOWN);
        assert_eq!(respond(b""), UNKNOWN);
        assert_eq!(respond(b"pingping"), UNKNOWN);
    }

    #[test]
    fn line_framing() {
        assert_eq!(line(b"ping\nrest"), Line::Complete(b"ping", 5));
        assert_eq!(line(b"pi"), Line::Incomplete);
        assert_eq!(line(&[b'a'; MAX_LINE]), Line::TooLong);
        assert_eq!(line(&[b'a'; MAX_LINE - 1]), Line::Incomplete);
        let mut v = vec![b'a'; MAX_LINE - 1];
        v.push(b'\n');
        assert!(matches!(line(&v), Line::Complete(_, n) if n == MAX_LINE));
    }

    #[test]
    fn client_classifies() {
        assert_eq!(classify(b"pong"), Reply::Pong);
        assert_eq!(classify(b"unknown"), Reply::Unexpected("unknown".into()));
    }

    #[test]
    fn output_formats() {
        assert_eq!(
            format_reply(1, Duration::from_micros(12_345), ConnectionPath::Direct),
            "seq=1 rtt=12.3ms path=[DIRECT]"
        );
        assert_eq!(
            format_reply(7, Duration::from_millis(80), ConnectionPath::Relayed),
            "seq=7 rtt=80.0ms path=[RELAYED]"
        );
        let mut s = Stats::new();
        for rtt in [10, 20, 30] {
            s.sent();
            s.received(Duration::from_millis(rtt));
        }
        s.sent();
        assert_eq!(
            s.summary(),
            "4 sent, 3 received, 25% loss, rtt min/avg/max = 10.0/20.0/30.0 ms"
        );
        let mut none = Stats::new();
        none.sent();
        assert_eq!(none.summary(), "1 sent, 0 received, 100% loss");
        assert_eq!(Stats::new().summary(), "0 sent, 0 received, 0% loss");
    }

    proptest! {
        #[test]
        fn line_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Line::Complete(l, n) = line(&buf) {
                prop_assert_eq!(n, l.len() + 1);
                prop_assert!(n <= MAX_LINE);
            }
        }
    }
}
