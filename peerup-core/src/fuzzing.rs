//! Fuzz targets for every parser and state machine of the core (issue #10).
//!
//! Each function takes the fuzzer's bytes, runs one parser or machine on
//! them and **asserts** the property it checks: a broken property panics,
//! and a panic is what the fuzzer reports. No target can pass vacuously by
//! only "not crashing". The cargo-fuzz targets in `fuzz/` are one-line
//! calls into these functions, and `tests/fuzz_corpus.rs` replays every
//! corpus and regression file through them on stable Rust.
//!
//! | target | input | property |
//! |---|---|---|
//! | [`invite_code`] | bytes, and the same bytes as text | `from_bytes` accepts only canonical bytes (`to_bytes` gives them back); the text form decodes to the same result; `decode(encode(c)) == c` |
//! | [`sealed_frame`] | a buffer; a key, nonce and plaintext | `decode` bounds and `needed`; `seal`/`open` round trip; a wrong key or a flipped bit never opens; re-sealing an opened frame gives it back |
//! | [`invite_handshake`] | a script of stream events and time steps, or a seeded [`sim::Pair`](crate::sim::Pair) with tampering joiners | no `Authorize` or `Paired` unless the joiner holds the token; at most one pairing; finished states are terminal; no session outlives its deadline |
//! | [`config_node`] | `peerup.yaml` text | never panics; `parse(render(c)) == c`; the comment-keeping edits give exactly the asked-for config and keep comment lines |
//! | [`config_relay`] | `relay-server.yaml` text | never panics; `parse(render(c)) == c` |
//! | [`authorized_keys`] | edit script and document text | `render(parse(s)) == s` byte for byte; `parse(render(d)) == d`; edits change only their peer's line and never another peer's authorization |
//! | [`relay_addr()`] | `peerup relay add` input | accepted input round-trips through its text form and keeps the given peer ID |
//! | [`names`] | a script of name operations | [`Name::new`] against its rule; [`Names`] against a `BTreeMap` model |
//! | [`pingpong()`] | a stream of lines; RTT samples | line framing bounds; responder and classifier agree; [`Stats`] against a model |
//! | [`half_close`] | copy-loop events | [`HalfClose`] against the naive model of its proptest |
//! | [`confirm`] | applies, confirms, restarts, time, crashes, damaged markers | the commit-confirmed promises of the `model` proptest, on an in-memory disk |
//!
//! Every function is deterministic (no clock, no OS randomness), so a
//! crash input replays exactly.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use data_encoding::BASE32_NOPAD;
use multiaddr::Protocol;

use crate::authorized_keys::{Attributes, Document, LineEnding, Status};
use crate::config::archive::{ArchivePaths, PendingMarker};
use crate::config::confirm::{Action, Confirm, ConfirmError, Event, MarkerState, OnDisk, Output};
use crate::config::edit::{self, EditError};
use crate::config::{Config, RelayConfig, WarningKind};
use crate::identity::keypair_from_seed;
use crate::invite::code::GROUP;
use crate::invite::handshake::{
    InviteState, Inviter, InviterConfig, InviterEvent, InviterOutput, Joiner, JoinerConfig,
    JoinerOutput, SessionRandom, StreamId,
};
use crate::invite::{InviteCode, Token};
use crate::naming::{Name, Names};
use crate::proxy::half_close::{Direction, HalfClose, HalfCloseOutput, Side};
use crate::relay_addr::{self, RelayAddr, RelayInputError};
use crate::sim::{Clients, InviterEnd, JoinerEnd, LinkConfig, Pair, Tamper};
use crate::time::{Instant, UnixTime};
use crate::wire::pingpong::{self, Reply, Stats};
use crate::wire::sealed::{self, Decoded, FrameError, Key};
use crate::{Multiaddr, PeerId};

// ---------------------------------------------------------------------------
// Shared helpers

/// A cursor over the fuzzer's bytes. Reads past the end give zeros, so
/// every input is a complete (if dull) scenario.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A number below `n` (`n` at most 256 to be uniform; 0 gives 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::from(self.u8()) % n
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    /// A length byte, then up to `max` bytes.
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.u8()).min(max).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// As [`Input::bytes`], decoded lossily.
    fn text(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }

    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// Number of fixed peers the targets draw from.
const POOL: usize = 12;

/// Peer `i` of a fixed pool of Ed25519 peer IDs (seeds 1, 2, ...).
fn peer(i: usize) -> PeerId {
    static PEERS: OnceLock<Vec<PeerId>> = OnceLock::new();
    let peers = PEERS.get_or_init(|| {
        (1..=POOL as u8)
            .map(|n| keypair_from_seed([n; 32]).public().to_peer_id())
            .collect()
    });
    peers[i % POOL]
}

/// The index of `p` in the pool.
fn pool_index(p: &PeerId) -> Option<usize> {
    (0..POOL).find(|&i| peer(i) == *p)
}

fn name(text: &str) -> Option<Name> {
    Name::new(text).ok()
}

/// A few names, and no name.
fn pick_name(input: &mut Input<'_>) -> Option<Name> {
    name(["home", "laptop", "nas.garage", "", "Phone-2"][input.below(5)])
}

// ---------------------------------------------------------------------------
// invite_code

/// Invite codes (WIRE.md §5): the bytes go to [`InviteCode::from_bytes`],
/// their base32 text (grouped, and messed up with case and whitespace) to
/// [`InviteCode::decode`], and the bytes as text to `decode` as well.
///
/// # Panics
/// When `from_bytes` accepts bytes that `to_bytes` does not give back
/// (two encodings of one code), when the text form decodes differently
/// from the bytes, or when a decoded code does not survive
/// `encode`/`decode` and `to_bytes`/`from_bytes`.
pub fn invite_code(data: &[u8]) {
    let from_bytes = InviteCode::from_bytes(data);
    if let Ok(code) = &from_bytes {
        check_invite_code(code);
        let bytes = code
            .to_bytes()
            .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
        assert!(
            bytes == data,
            "from_bytes accepted bytes that to_bytes does not give back:\n{data:02x?}\n{bytes:02x?}"
        );
    }
    if !data.is_empty() {
        let text = group(&BASE32_NOPAD.encode(data));
        assert_eq!(
            InviteCode::decode(&text),
            from_bytes,
            "the text form decodes differently from the bytes: {text}"
        );
        let messy = format!(" {}\r\n", text.to_lowercase().replace('-', " -\t"));
        assert_eq!(
            InviteCode::decode(&messy),
            from_bytes,
            "case and whitespace changed the decoding: {messy:?}"
        );
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(code) = InviteCode::decode(text)
    {
        check_invite_code(&code);
    }
}

/// Base32 text in dash-joined groups, as [`InviteCode::encode`] writes it.
fn group(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / GROUP);
    for (i, c) in text.chars().enumerate() {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

fn check_invite_code(code: &InviteCode) {
    assert_ne!(code.relay_port, 0, "a code with relay port 0 decoded");
    let bytes = code
        .to_bytes()
        .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
    assert_eq!(
        InviteCode::from_bytes(&bytes).as_ref(),
        Ok(code),
        "from_bytes(to_bytes(c)) != c"
    );
    let text = code
        .encode()
        .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
    assert!(
        text.bytes()
            .all(|b| b == b'-' || b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "encode wrote a character outside A-Z, 2-7 and '-': {text}"
    );
    assert!(
        text.split('-').all(|g| (1..=GROUP).contains(&g.len())),
        "encode wrote a group longer than {GROUP}: {text}"
    );
    assert_eq!(
        InviteCode::decode(&text).as_ref(),
        Ok(code),
        "decode(encode(c)) != c"
    );
    // The relay address the joiner dials is a valid relay address, and
    // building a code from it gives the same code.
    let relay = RelayAddr::new(code.relay_addr())
        .unwrap_or_else(|e| panic!("a decoded code carries an unusable relay address: {e}"));
    assert_eq!(relay.peer_id(), code.relay_peer);
    let rebuilt = InviteCode::new(
        code.token.clone(),
        &relay,
        code.network.clone(),
        code.inviter,
    )
    .unwrap_or_else(|e| panic!("InviteCode::new refused a decoded code's relay: {e}"));
    assert_eq!(&rebuilt, code, "InviteCode::new built another code");
}

// ---------------------------------------------------------------------------
// sealed_frame

/// Sealed frames (WIRE.md §6). The whole input is decoded as a buffer;
/// then it is read as a key (32 bytes), a nonce (24), a selector (2) and a
/// plaintext (the rest, or the rest repeated to a chosen length, so both
/// sides of the 4,056-byte limit are reached).
///
/// # Panics
/// When `decode` takes a frame whose length is out of bounds, reports a
/// wrong `needed` count or a wrong error, when a sealed frame does not
/// decode and open to its plaintext, when a wrong key or a flipped bit
/// opens it, or when an opened frame does not re-seal to itself.
pub fn sealed_frame(data: &[u8]) {
    check_decode(data);
    let mut input = Input::new(data);
    let key = Key::from_bytes(input.array());
    let nonce: [u8; sealed::NONCE_LEN] = input.array();
    let selector = input.u16();
    let rest = input.rest();
    let plaintext: Vec<u8> = if selector & 1 == 0 || rest.is_empty() {
        rest.to_vec()
    } else {
        let len = usize::from(selector >> 1) % (sealed::MAX_PLAINTEXT + 64);
        rest.iter().copied().cycle().take(len).collect()
    };

    // Whatever frame the buffer holds: if it opens under the key, sealing
    // its plaintext with its nonce gives the same frame (the AEAD is
    // deterministic), so a frame has exactly one valid form.
    if let Ok(Decoded::Frame(frame, _)) = sealed::decode(data)
        && let Ok(opened) = sealed::open(&key, &frame)
    {
        let mut n = [0u8; sealed::NONCE_LEN];
        n.copy_from_slice(frame.nonce());
        assert_eq!(
            sealed::seal(&key, n, &opened).ok(),
            Some(frame),
            "an opened frame does not re-seal to itself"
        );
    }

    match sealed::seal(&key, nonce, &plaintext) {
        Err(e) => {
            assert!(
                plaintext.len() > sealed::MAX_PLAINTEXT && e.len == plaintext.len(),
                "seal refused {} bytes: {e}",
                plaintext.len()
            );
        }
        Ok(frame) => {
            assert!(
                plaintext.len() <= sealed::MAX_PLAINTEXT,
                "seal accepted {} bytes",
                plaintext.len()
            );
            assert_eq!(frame.len(), plaintext.len() + sealed::MIN_LEN);
            assert!(!frame.is_empty());
            assert_eq!(frame.nonce(), nonce.as_slice());
            let wire = frame.encode();
            assert_eq!(wire.len(), frame.encoded_len());
            match sealed::decode(&wire) {
                Ok(Decoded::Frame(back, used)) => {
                    assert_eq!(used, wire.len());
                    assert_eq!(back, frame, "decode(encode(f)) != f");
                }
                other => panic!("a sealed frame does not decode: {other:?}"),
            }
            // A prefix is incomplete, and says how much is missing: the
            // rest of the length prefix, then the rest of the frame.
            let cut = usize::from(selector) % wire.len();
            let needed = if cut < sealed::HEADER_LEN {
                sealed::HEADER_LEN - cut
            } else {
                wire.len() - cut
            };
            assert_eq!(
                sealed::decode(&wire[..cut]),
                Ok(Decoded::Incomplete { needed }),
                "prefix of {cut} bytes"
            );
            assert_eq!(
                sealed::open(&key, &frame).as_deref(),
                Ok(plaintext.as_slice()),
                "open(seal(p)) != p"
            );
            // A wrong key (one bit off) never opens.
            let bit = usize::from(selector) % 256;
            let mut wrong = *key.as_bytes();
            wrong[bit / 8] ^= 1 << (bit % 8);
            assert!(
                sealed::open(&Key::from_bytes(wrong), &frame).is_err(),
                "a frame opened under a wrong key"
            );
            // A flipped bit anywhere in the nonce, ciphertext or tag never
            // opens.
            let body_bits = (wire.len() - sealed::HEADER_LEN) * 8;
            let bit = usize::from(selector.rotate_left(5)) % body_bits;
            let mut tampered = wire.clone();
            tampered[sealed::HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
            match sealed::decode(&tampered) {
                Ok(Decoded::Frame(t, _)) => assert!(
                    sealed::open(&key, &t).is_err(),
                    "a tampered frame opened (bit {bit})"
                ),
                other => panic!("a tampered body changed the framing: {other:?}"),
            }
        }
    }
}

/// `decode` on an arbitrary buffer, checked against the layout.
fn check_decode(buf: &[u8]) {
    let result = sealed::decode(buf);
    let (hi, lo) = match buf {
        [hi, lo, ..] => (*hi, *lo),
        _ => {
            assert_eq!(
                result,
                Ok(Decoded::Incomplete {
                    needed: sealed::HEADER_LEN - buf.len()
                }),
                "a buffer without a whole length prefix"
            );
            return;
        }
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let expected_error = match len {
        0 => Some(FrameError::Empty),
        n if n < sealed::MIN_LEN => Some(FrameError::TooShort { len: n }),
        n if n > sealed::MAX_LEN => Some(FrameError::TooLong { len: n }),
        _ => None,
    };
    match (result, expected_error) {
        (Err(e), Some(expected)) => assert_eq!(e, expected),
        (Err(e), None) => panic!("decode refused a valid length {len}: {e}"),
        (Ok(d), Some(expected)) => panic!("decode accepted length {len} ({expected}): {d:?}"),
        (Ok(Decoded::Incomplete { needed }), None) => {
            assert!(
                buf.len() < sealed::HEADER_LEN + len,
                "incomplete though the frame is whole"
            );
            assert_eq!(needed, sealed::HEADER_LEN + len - buf.len());
        }
        (Ok(Decoded::Frame(frame, used)), None) => {
            assert_eq!(used, sealed::HEADER_LEN + len);
            assert_eq!(frame.len(), len);
            assert_eq!(
                frame.encode(),
                &buf[..used],
                "the frame is not the buffer's bytes"
            );
            assert_eq!(frame.nonce(), &buf[2..2 + sealed::NONCE_LEN]);
            assert_eq!(frame.ciphertext(), &buf[2 + sealed::NONCE_LEN..used]);
        }
    }
}

// ---------------------------------------------------------------------------
// invite_handshake

/// The invite's token in every handshake scenario.
const TOKEN: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
/// Wall-clock time at the start of every scenario.
const WALL: UnixTime = UnixTime::from_secs(1_800_000_000);
/// The inviter's peer (pool index).
const INVITER: usize = 1;

fn invite_for(token: [u8; 8]) -> InviteCode {
    InviteCode {
        token: Token::from_bytes(token),
        relay_ip: Ipv4Addr::new(192, 0, 2, 1),
        relay_port: 7777,
        relay_peer: peer(0),
        network: None,
        inviter: peer(INVITER),
    }
}

/// The invite handshake (WIRE.md §6). The first byte picks the mode:
///
/// - even: a **script** drives one [`Inviter`] and up to four streams
///   (honest joiners, joiners with a wrong token, raw attackers) through
///   arbitrary deliveries in any split, injected bytes both ways, EOFs,
///   resets, time steps, save results (`Ok`, `Err`, unasked) and cancels;
/// - odd: a seeded [`Pair`] with a random link (delay, chunking, loss) and
///   up to eight joiners in two waves, each honest, wrong-token or
///   tampering ([`Tamper`]), with an inviter whose saves may fail.
///
/// # Panics
/// When a peer without the token is authorized or told it is paired, when
/// a joiner is told it is paired but the inviter did not save it, when two
/// pairings happen or are saved at once, when a finished joiner or invite
/// acts again or a terminal invite state changes, when more failed
/// attempts are evaluated than the limit allows, when a session outlives
/// its deadline, or when one honest joiner on a clean link does not pair.
pub fn invite_handshake(data: &[u8]) {
    let mut input = Input::new(data);
    if input.u8() & 1 == 0 {
        let _ = Script::new(&mut input).run(&mut input);
    } else {
        handshake_sim(&mut input);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A joiner holding the invite's token.
    Honest,
    /// A joiner with a token that differs in one bit.
    WrongToken,
    /// No joiner: only what the script injects.
    Raw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Paired,
    Failed,
}

/// One stream of the script and both of its directions.
struct Actor {
    kind: Kind,
    peer: PeerId,
    stream: StreamId,
    name: Option<Name>,
    token: [u8; 8],
    deadline: Duration,
    joiner: Option<Joiner>,
    opened: bool,
    /// Joiner -> inviter, not yet delivered.
    to_inviter: Vec<u8>,
    joiner_fin: bool,
    joiner_fin_sent: bool,
    joiner_rst: bool,
    joiner_rst_sent: bool,
    /// Inviter -> joiner, not yet delivered.
    to_joiner: Vec<u8>,
    inviter_fin: bool,
    inviter_fin_sent: bool,
    inviter_rst: bool,
    inviter_rst_sent: bool,
    outcome: Option<Outcome>,
    /// The joiner finished and its last outputs were carried out.
    done: bool,
}

/// The invite's state, whether it finished, and each joiner's outcome.
type Snapshot = (InviteState, bool, Vec<Option<Outcome>>);

struct Script {
    now: Instant,
    inviter: Inviter,
    inviter_name: Option<Name>,
    max_failed: u32,
    max_concurrent: usize,
    /// Peers the inviter said it blocked.
    blocked: BTreeSet<PeerId>,
    actors: Vec<Actor>,
    /// The stream whose `Authorize` awaits `handle_authorized`.
    pending_save: Option<StreamId>,
    /// The stream whose successful save is being reported right now.
    answering: Option<StreamId>,
    /// The stream whose pairing the inviter saved and confirmed.
    saved: Option<StreamId>,
    sessions_opened: u64,
}

impl Script {
    fn new(input: &mut Input<'_>) -> Self {
        let inviter_name = pick_name(input);
        let max_failed = 1 + input.below(8) as u32;
        let max_concurrent = 1 + input.below(4);
        let stream_deadline = Duration::from_millis(250 * (1 + u64::from(input.u8())));
        let hello_deadline = Duration::from_millis(250 * (1 + u64::from(input.u8())));
        let max_strikes = 1 + input.below(4) as u32;
        let expiry = Duration::from_secs(u64::from(input.u8()));
        let config = InviterConfig::new(WALL.saturating_add(expiry))
            .with_name(inviter_name.clone())
            .with_max_failed_attempts(max_failed)
            .with_max_concurrent(max_concurrent)
            .with_stream_deadline(stream_deadline)
            .with_hello_deadline(hello_deadline)
            .with_max_strikes_per_peer(max_strikes);
        let inviter = Inviter::new(Token::from_bytes(TOKEN), config, Instant::ZERO, WALL);
        let count = 1 + input.below(4);
        // Several streams may come from one peer (one identity retrying,
        // or squatting the slots).
        let peers = 1 + input.below(count);
        let actors = (0..count)
            .map(|i| {
                let kind = match input.below(4) {
                    0 | 1 => Kind::Honest,
                    2 => Kind::WrongToken,
                    _ => Kind::Raw,
                };
                let mut token = TOKEN;
                if kind == Kind::WrongToken {
                    let bit = input.below(64);
                    token[bit / 8] ^= 1 << (bit % 8);
                }
                Actor {
                    kind,
                    peer: peer(2 + i % peers),
                    stream: i as StreamId,
                    name: pick_name(input),
                    token,
                    deadline: Duration::from_millis(250 * (1 + u64::from(input.u8()))),
                    joiner: None,
                    opened: false,
                    to_inviter: Vec::new(),
                    joiner_fin: false,
                    joiner_fin_sent: false,
                    joiner_rst: false,
                    joiner_rst_sent: false,
                    to_joiner: Vec::new(),
                    inviter_fin: false,
                    inviter_fin_sent: false,
                    inviter_rst: false,
                    inviter_rst_sent: false,
                    outcome: None,
                    done: false,
                }
            })
            .collect();
        let mut script = Script {
            now: Instant::ZERO,
            inviter,
            inviter_name,
            max_failed,
            max_concurrent,
            blocked: BTreeSet::new(),
            actors,
            pending_save: None,
            answering: None,
            saved: None,
            sessions_opened: 0,
        };
        script.drain();
        script
    }

    fn run(mut self, input: &mut Input<'_>) -> Self {
        let mut ops = 0;
        while !input.is_empty() && ops < 512 {
            ops += 1;
            let op = input.u8();
            let a = input.below(self.actors.len());
            let before = self.snapshot();
            match op % 14 {
                0 | 1 => self.open(a),
                2 => {
                    let k = 1 + usize::from(input.u8());
                    self.deliver_to_inviter(a, k);
                }
                3 => {
                    let k = 1 + usize::from(input.u8());
                    self.deliver_to_joiner(a, k);
                }
                4 => {
                    // An attacker's bytes on the stream, to the inviter.
                    let bytes = input.bytes(96);
                    if self.actors[a].opened {
                        let stream = self.actors[a].stream;
                        self.inviter.handle_data(self.now, stream, bytes);
                    }
                }
                5 => {
                    // Forged bytes from "the inviter", to the joiner.
                    let bytes = input.bytes(96);
                    let now = self.now;
                    if let Some(j) = &mut self.actors[a].joiner {
                        j.handle_data(now, bytes);
                    }
                }
                6 => {
                    // The remote closes early (an attacker, or the link).
                    if self.actors[a].opened {
                        let stream = self.actors[a].stream;
                        self.inviter.handle_eof(self.now, stream);
                    }
                }
                7 => {
                    let now = self.now;
                    if let Some(j) = &mut self.actors[a].joiner {
                        j.handle_eof(now);
                    }
                }
                8 => {
                    // The link breaks the stream: both ends see a reset.
                    let now = self.now;
                    let actor = &mut self.actors[a];
                    if actor.opened {
                        self.inviter.handle_reset(now, actor.stream);
                        if let Some(j) = &mut actor.joiner {
                            j.handle_reset(now);
                        }
                    }
                }
                9 => {
                    let step = Duration::from_millis(100 * u64::from(input.u8()));
                    self.advance(self.now + step);
                }
                10 => {
                    // Wake at the earliest timer, as an adapter does.
                    if let Some(t) = self.next_timeout() {
                        self.advance(t.max(self.now));
                    }
                }
                11 => {
                    let ok = input.bool();
                    match self.pending_save {
                        Some(stream) => self.answer(stream, ok),
                        None => {
                            // A save report nobody asked for pairs nobody.
                            let stream = self.actors[a].stream;
                            self.inviter.handle_authorized(self.now, stream, Ok(()));
                        }
                    }
                }
                12 => self.inviter.cancel(),
                _ => self.pump(a),
            }
            self.drain();
            self.check(before);
        }
        self.settle()
    }

    fn next_timeout(&self) -> Option<Instant> {
        let joiners = self
            .actors
            .iter()
            .filter_map(|a| a.joiner.as_ref().and_then(Joiner::poll_timeout));
        joiners.chain(self.inviter.poll_timeout()).min()
    }

    fn advance(&mut self, to: Instant) {
        self.now = self.now.max(to);
        let now = self.now;
        self.inviter.handle_timeout(now);
        for actor in &mut self.actors {
            if let Some(j) = &mut actor.joiner {
                j.handle_timeout(now);
            }
        }
    }

    fn open(&mut self, a: usize) {
        let now = self.now;
        let actor = &mut self.actors[a];
        if actor.opened {
            // Stream IDs are never reused (the adapter's contract).
            return;
        }
        actor.opened = true;
        if actor.kind != Kind::Raw {
            let i = a as u8;
            let random = SessionRandom {
                ephemeral: [0x40 + i; 32],
                nonce: [0x80 + i; 24],
            };
            let config = JoinerConfig::default()
                .with_name(actor.name.clone())
                .with_deadline(actor.deadline);
            actor.joiner = Some(Joiner::new(&invite_for(actor.token), config, now, random));
        }
        // Fresh randomness for every inviter session.
        self.sessions_opened += 1;
        let mut ephemeral = [0x11u8; 32];
        ephemeral[8..16].copy_from_slice(&self.sessions_opened.to_le_bytes());
        let mut nonce = [0x22u8; 24];
        nonce[8..16].copy_from_slice(&self.sessions_opened.to_le_bytes());
        let stream = actor.stream;
        let peer = actor.peer;
        self.inviter
            .handle_stream(now, stream, peer, SessionRandom { ephemeral, nonce });
    }

    /// Delivers the joiner's next bytes (a reset first, an EOF last);
    /// returns whether anything was delivered.
    fn deliver_to_inviter(&mut self, a: usize, k: usize) -> bool {
        let now = self.now;
        let actor = &mut self.actors[a];
        if !actor.opened {
            return false;
        }
        if actor.joiner_rst && !actor.joiner_rst_sent {
            actor.joiner_rst_sent = true;
            actor.to_inviter.clear();
            self.inviter.handle_reset(now, actor.stream);
            return true;
        }
        if !actor.to_inviter.is_empty() {
            let n = k.clamp(1, actor.to_inviter.len());
            let chunk: Vec<u8> = actor.to_inviter.drain(..n).collect();
            self.inviter.handle_data(now, actor.stream, &chunk);
            return true;
        }
        if actor.joiner_fin && !actor.joiner_fin_sent {
            actor.joiner_fin_sent = true;
            self.inviter.handle_eof(now, actor.stream);
            return true;
        }
        false
    }

    /// Delivers the inviter's next bytes to the joiner (a reset first, an
    /// EOF last); returns whether anything was delivered.
    fn deliver_to_joiner(&mut self, a: usize, k: usize) -> bool {
        let now = self.now;
        let actor = &mut self.actors[a];
        let Some(joiner) = &mut actor.joiner else {
            // A raw stream: what the inviter sends goes nowhere.
            actor.to_joiner.clear();
            return false;
        };
        if actor.inviter_rst && !actor.inviter_rst_sent {
            actor.inviter_rst_sent = true;
            actor.to_joiner.clear();
            joiner.handle_reset(now);
            return true;
        }
        if !actor.to_joiner.is_empty() {
            let n = k.clamp(1, actor.to_joiner.len());
            let chunk: Vec<u8> = actor.to_joiner.drain(..n).collect();
            joiner.handle_data(now, &chunk);
            return true;
        }
        if actor.inviter_fin && !actor.inviter_fin_sent {
            actor.inviter_fin_sent = true;
            joiner.handle_eof(now);
            return true;
        }
        false
    }

    /// Delivers everything both ways until the stream is quiet.
    fn pump(&mut self, a: usize) {
        for _ in 0..64 {
            let to_inviter = self.deliver_to_inviter(a, usize::MAX);
            self.drain();
            let to_joiner = self.deliver_to_joiner(a, usize::MAX);
            self.drain();
            if !to_inviter && !to_joiner {
                return;
            }
        }
    }

    fn answer(&mut self, stream: StreamId, ok: bool) {
        self.pending_save = None;
        if ok {
            self.answering = Some(stream);
            self.inviter.handle_authorized(self.now, stream, Ok(()));
        } else {
            self.inviter
                .handle_authorized(self.now, stream, Err("disk full".to_owned()));
        }
        self.drain();
        self.answering = None;
    }

    fn actor_of(&mut self, stream: StreamId) -> &mut Actor {
        match self.actors.iter_mut().find(|a| a.stream == stream) {
            Some(a) => a,
            None => panic!("inviter output for stream {stream}, which nobody opened"),
        }
    }

    /// Carries out every output of every machine and checks each.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            while let Some(out) = self.inviter.poll_output() {
                any = true;
                self.inviter_output(out);
            }
            for a in 0..self.actors.len() {
                any |= self.joiner_outputs(a);
            }
            if !any {
                return;
            }
        }
    }

    fn inviter_output(&mut self, out: InviterOutput) {
        match out {
            InviterOutput::Send { stream, data } => {
                let actor = self.actor_of(stream);
                assert!(
                    actor.opened,
                    "inviter wrote to stream {stream} before it opened"
                );
                assert!(
                    !actor.inviter_fin && !actor.inviter_rst,
                    "inviter wrote to stream {stream} after closing it"
                );
                actor.to_joiner.extend_from_slice(&data);
            }
            InviterOutput::Finish { stream } => self.actor_of(stream).inviter_fin = true,
            InviterOutput::Reset { stream } => self.actor_of(stream).inviter_rst = true,
            InviterOutput::Authorize { stream, peer, name } => {
                assert!(
                    !self.blocked.contains(&peer),
                    "Authorize for a peer that was blocked"
                );
                let state = self.inviter.state();
                let (pending, saved) = (self.pending_save, self.saved);
                let actor = self.actor_of(stream);
                assert_eq!(
                    peer, actor.peer,
                    "Authorize names another peer than the stream's"
                );
                assert!(
                    actor.kind == Kind::Honest,
                    "Authorize for a {:?} stream: a peer without the token was authorized",
                    actor.kind
                );
                assert_eq!(name, actor.name, "the joiner's name arrived changed");
                assert!(pending.is_none(), "two pairings awaiting a save at once");
                assert!(saved.is_none(), "Authorize after the invite was used");
                assert_eq!(
                    state,
                    InviteState::Taken,
                    "Authorize without taking the invite"
                );
                self.pending_save = Some(stream);
            }
            InviterOutput::Event(event) => match event {
                InviterEvent::Paired { peer, name } => {
                    let Some(stream) = self.answering else {
                        panic!("Paired without a successful save report");
                    };
                    assert!(self.saved.is_none(), "a second pairing was saved");
                    let actor = self.actor_of(stream);
                    assert_eq!(peer, actor.peer, "Paired names another peer");
                    assert_eq!(name, actor.name, "Paired with another name");
                    self.saved = Some(stream);
                }
                InviterEvent::Acknowledged { peer } => {
                    let saved = self
                        .saved
                        .and_then(|s| self.actors.iter().find(|a| a.stream == s))
                        .map(|a| a.peer);
                    assert_eq!(
                        saved,
                        Some(peer),
                        "Acknowledged from a peer that did not pair"
                    );
                }
                InviterEvent::Burned => {
                    assert_eq!(self.inviter.state(), InviteState::Burned);
                }
                InviterEvent::Expired => {
                    assert_eq!(self.inviter.state(), InviteState::Expired);
                }
                InviterEvent::PeerBlocked { peer } => {
                    assert!(
                        self.inviter.is_blocked(&peer),
                        "blocked, but not by its count"
                    );
                    assert!(self.blocked.insert(peer), "blocked twice");
                }
                InviterEvent::AttemptFailed { .. } => {}
            },
        }
    }

    /// Carries out a joiner's outputs; returns whether there were any.
    fn joiner_outputs(&mut self, a: usize) -> bool {
        let saved = self.saved;
        let inviter_name = self.inviter_name.clone();
        let actor = &mut self.actors[a];
        let Some(joiner) = &mut actor.joiner else {
            return false;
        };
        let mut any = false;
        while let Some(out) = joiner.poll_output() {
            any = true;
            assert!(!actor.done, "joiner {a} acted after it finished: {out:?}");
            assert!(
                actor.outcome.is_none()
                    || matches!(out, JoinerOutput::Finish | JoinerOutput::Reset),
                "joiner {a} acted after its outcome: {out:?}"
            );
            match out {
                JoinerOutput::Send(data) => {
                    assert!(
                        !actor.joiner_fin && !actor.joiner_rst,
                        "joiner {a} wrote after closing"
                    );
                    actor.to_inviter.extend_from_slice(&data);
                }
                JoinerOutput::Finish => actor.joiner_fin = true,
                JoinerOutput::Reset => actor.joiner_rst = true,
                JoinerOutput::Paired { peer, name } => {
                    assert!(
                        actor.kind == Kind::Honest,
                        "a {:?} joiner was told it is paired",
                        actor.kind
                    );
                    assert_eq!(peer, self::peer(INVITER), "paired with another inviter");
                    assert_eq!(
                        saved,
                        Some(actor.stream),
                        "joiner {a} told it is paired but the inviter did not save its pairing"
                    );
                    assert_eq!(name, inviter_name, "the inviter's name arrived changed");
                    actor.outcome = Some(Outcome::Paired);
                }
                JoinerOutput::Failed(_) => actor.outcome = Some(Outcome::Failed),
            }
        }
        assert_eq!(
            joiner.is_finished(),
            actor.outcome.is_some(),
            "joiner {a} finished without an outcome, or the reverse"
        );
        actor.done = joiner.is_finished();
        any
    }

    fn snapshot(&self) -> Snapshot {
        (
            self.inviter.state(),
            self.inviter.is_finished(),
            self.actors.iter().map(|a| a.outcome).collect(),
        )
    }

    fn check(&self, before: Snapshot) {
        let (state_before, finished_before, outcomes_before) = before;
        let state = self.inviter.state();
        match state_before {
            InviteState::Used | InviteState::Expired => assert_eq!(
                state, state_before,
                "the terminal invite state {state_before:?} changed"
            ),
            // Only the pairing whose save was in flight may still complete.
            InviteState::Burned | InviteState::Cancelled => assert!(
                state == state_before || (state == InviteState::Used && self.saved.is_some()),
                "a {state_before:?} invite became {state:?}"
            ),
            InviteState::Open | InviteState::Taken => {}
        }
        if finished_before {
            assert!(
                self.inviter.is_finished(),
                "a finished inviter came back to life"
            );
        }
        assert_eq!(
            state == InviteState::Used,
            self.saved.is_some(),
            "state {state:?} but saved {:?}",
            self.saved
        );
        let saved_peer = self
            .saved
            .and_then(|s| self.actors.iter().find(|a| a.stream == s))
            .map(|a| a.peer);
        for a in &self.actors {
            let n = self.inviter.sessions_of(&a.peer);
            assert!(n <= 1, "{n} sessions at once for one peer");
            if self.blocked.contains(&a.peer)
                && self.pending_save.is_none()
                && saved_peer != Some(a.peer)
            {
                assert_eq!(n, 0, "a blocked peer still has a session");
            }
        }
        assert!(
            self.inviter.active_sessions() <= self.max_concurrent,
            "{} sessions, limit {}",
            self.inviter.active_sessions(),
            self.max_concurrent
        );
        assert!(
            self.inviter.failed_attempts() <= self.max_failed,
            "{} failed attempts were evaluated, limit {}",
            self.inviter.failed_attempts(),
            self.max_failed
        );
        for (actor, outcome) in self.actors.iter().zip(outcomes_before) {
            if outcome.is_some() {
                assert_eq!(
                    actor.outcome, outcome,
                    "a finished joiner changed its outcome"
                );
            }
        }
    }

    /// Answers every save, delivers everything and lets every timer fire:
    /// afterwards no session may be left and every joiner has finished.
    fn settle(mut self) -> Self {
        for _ in 0..64 {
            let before = self.snapshot();
            if let Some(stream) = self.pending_save {
                self.answer(stream, true);
            }
            for a in 0..self.actors.len() {
                self.pump(a);
            }
            match self.next_timeout() {
                Some(t) => self.advance(t.max(self.now)),
                None => break,
            }
            self.drain();
            self.check(before);
        }
        let before = self.snapshot();
        self.advance(self.now + Duration::from_secs(2 * 86_400));
        self.drain();
        if let Some(stream) = self.pending_save {
            self.answer(stream, true);
        }
        for a in 0..self.actors.len() {
            self.pump(a);
        }
        self.drain();
        self.check(before);
        assert_eq!(
            self.inviter.active_sessions(),
            0,
            "sessions outlived their deadline"
        );
        assert!(
            self.inviter.is_finished(),
            "invite {:?} after its expiry",
            self.inviter.state()
        );
        assert_eq!(self.inviter.poll_timeout(), None);
        for (a, actor) in self.actors.iter().enumerate() {
            if let Some(j) = &actor.joiner {
                assert!(
                    j.is_finished(),
                    "joiner {a} still waiting after its deadline"
                );
                assert_eq!(j.poll_timeout(), None);
            }
        }
        self
    }
}

/// One joiner of the simulation, as set up.
struct SimJoiner {
    right_token: bool,
    tamper: Tamper,
    name: Option<Name>,
    deadline: Duration,
}

fn handshake_sim(input: &mut Input<'_>) {
    let seed = input.u64();
    let min_delay = Duration::from_millis(u64::from(input.u8()));
    let max_delay = min_delay + Duration::from_millis(u64::from(input.u16() % 1000));
    let loss = if input.bool() {
        u32::from(input.u16()) * 4
    } else {
        0
    };
    let link = LinkConfig {
        min_delay,
        max_delay,
        loss_per_million: loss,
        max_chunk: 1 + input.below(64),
    };
    let inviter_name = pick_name(input);
    let expiry = Duration::from_millis(10 * u64::from(input.u16()));
    let stream_deadline = Duration::from_millis(100 * (1 + u64::from(input.u8())));
    let max_failed = 1 + input.below(6) as u32;
    let config = InviterConfig::new(WALL.saturating_add(expiry))
        .with_name(inviter_name.clone())
        .with_max_failed_attempts(max_failed)
        .with_max_concurrent(1 + input.below(4))
        .with_stream_deadline(stream_deadline);
    let mut inviter = InviterEnd::new(Inviter::new(
        Token::from_bytes(TOKEN),
        config,
        Instant::ZERO,
        WALL,
    ));
    inviter.save_fails = input.below(4) == 0;
    let save_fails = inviter.save_fails;
    let mut pair = Pair::new(inviter, Clients::default(), seed, link);
    let waves = 1 + input.below(2);
    let mut joiners: Vec<SimJoiner> = Vec::new();
    for _ in 0..waves {
        for _ in 0..1 + input.below(4) {
            let index = joiners.len();
            let right_token = input.below(4) != 0;
            let tamper = match input.below(10) {
                0..=3 => Tamper::None,
                4 => Tamper::TruncateFrame(usize::from(input.u8())),
                5 => Tamper::OversizeFrame,
                6 => Tamper::GarbageFrame,
                7 => Tamper::GarbageHello,
                8 => Tamper::Silent,
                _ => Tamper::SilentAfterHello,
            };
            let mut token = TOKEN;
            if !right_token {
                let bit = input.below(64);
                token[bit / 8] ^= 1 << (bit % 8);
            }
            let name = pick_name(input);
            let deadline = Duration::from_millis(100 * (1 + u64::from(input.u8())));
            let i = index as u8;
            let random = SessionRandom {
                ephemeral: [0x40 + i; 32],
                nonce: [0x80 + i; 24],
            };
            let config = JoinerConfig::default()
                .with_name(name.clone())
                .with_deadline(deadline);
            let machine = Joiner::new(&invite_for(token), config, pair.now(), random);
            pair.b.0.push(JoinerEnd::new(
                machine,
                peer(2 + index),
                index as StreamId + 1,
                tamper.clone(),
            ));
            joiners.push(SimJoiner {
                right_token,
                tamper,
                name,
                deadline,
            });
        }
        assert!(
            pair.drive_bounded(200_000),
            "the simulation did not settle (seed {seed})"
        );
    }

    let (i, c) = (&pair.a, &pair.b);
    assert!(
        i.authorized.len() <= 1,
        "invite used twice: {:?}",
        i.authorized
    );
    for (p, n) in &i.authorized {
        let index = pool_index(p).and_then(|x| x.checked_sub(2));
        let Some(j) = index.and_then(|x| joiners.get(x)) else {
            panic!("authorized {p}, who never joined");
        };
        assert!(
            j.right_token && j.tamper == Tamper::None,
            "authorized a joiner without the token or that tampered ({:?})",
            j.tamper
        );
        assert_eq!(*n, j.name, "authorized with another name");
    }
    for (end, j) in c.0.iter().zip(&joiners) {
        assert!(end.is_finished(), "joiner {} never finished", end.me);
        if let Some((p, n)) = &end.paired {
            assert!(
                j.right_token && j.tamper == Tamper::None,
                "a joiner without the token paired"
            );
            assert_eq!(*p, peer(INVITER), "paired with another inviter");
            assert_eq!(*n, inviter_name, "the inviter's name arrived changed");
            assert!(
                i.authorized.iter().any(|(a, _)| *a == end.me),
                "joiner {} paired but the inviter did not save it",
                end.me
            );
        }
    }
    assert_eq!(i.machine.active_sessions(), 0, "sessions left behind");
    // Liveness: one honest joiner on a clean link, with time for the four
    // legs of the handshake, pairs.
    if let [j] = joiners.as_slice() {
        let legs = max_delay * 4;
        if j.right_token
            && j.tamper == Tamper::None
            && loss == 0
            && !save_fails
            && legs < j.deadline
            && legs < stream_deadline
            && legs < expiry
        {
            assert!(
                c.0[0].paired.is_some(),
                "an honest joiner did not pair: {:?} (seed {seed})",
                c.0[0].failed
            );
        }
    }
}

// ---------------------------------------------------------------------------
// config_node and config_relay

/// `peerup.yaml` (WIRE.md §9): the input, lossily decoded, goes to
/// [`Config::parse`]. A config that parses is rendered (plain and
/// commented) and parsed back, and edited with
/// [`edit::set_name`], [`edit::remove_name`], [`edit::add_relay`] and
/// [`edit::remove_relay`] (what to edit is picked from a hash of the
/// input).
///
/// # Panics
/// When an error does not name the file, when a rendered config does not
/// parse back to itself or warns of unknown keys, when an edit of a
/// config that parses reports `Invalid`, `Broke` or `NoEffect`, gives a
/// text that does not parse to exactly the asked-for config, or drops a
/// comment line.
pub fn config_node(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("peerup.yaml");
    let config = match Config::parse(file, &text) {
        Ok((config, _)) => config,
        Err(e) => {
            assert!(
                e.to_string().starts_with("peerup.yaml"),
                "an error does not name the file: {e}"
            );
            return;
        }
    };
    for rendered in [config.render(), config.render_commented()] {
        let (back, warnings) = Config::parse(file, &rendered)
            .unwrap_or_else(|e| panic!("a rendered config does not parse: {e}\n{rendered}"));
        assert_eq!(back, config, "parse(render(c)) != c\n{rendered}");
        assert!(
            warnings.iter().all(|w| w.kind != WarningKind::UnknownKey),
            "render wrote an unknown key: {warnings:?}\n{rendered}"
        );
    }
    assert_eq!(
        config.render(),
        Config::parse(file, &config.render())
            .map(|(c, _)| c.render())
            .unwrap_or_default(),
        "render is not stable"
    );
    node_edits(&text, &config, data);
}

fn node_edits(text: &str, config: &Config, data: &[u8]) {
    let pick = data.iter().fold(data.len(), |h, &b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    });
    let existing: Vec<Name> = config.names.iter().map(|(n, _)| n.clone()).collect();
    let fallback = ["home", "laptop", "nas.garage", "x"][(pick >> 1) % 4];
    let name = match existing.get((pick >> 1) % existing.len().max(1)) {
        Some(n) if pick & 1 == 0 => n.clone(),
        _ => match Name::new(fallback) {
            Ok(n) => n,
            Err(e) => panic!("{fallback}: {e}"),
        },
    };
    let who = peer(pick >> 4);

    let mut expected = config.clone();
    expected.names.insert(name.clone(), who);
    checked_edit(
        text,
        edit::set_name(text, &name, who),
        &expected,
        "set_name",
    );

    let mut expected = config.clone();
    expected.names.remove(name.as_str());
    checked_edit(
        text,
        edit::remove_name(text, &name),
        &expected,
        "remove_name",
    );

    let relay = match config
        .relay
        .addresses
        .get((pick >> 6) % config.relay.addresses.len().max(1))
    {
        Some(r) if pick & 32 == 0 => r.clone(),
        _ => {
            let host = Ipv4Addr::from(u32::try_from(pick & 0xffff_ffff).unwrap_or(1));
            let addr = Multiaddr::from(host)
                .with(Protocol::Tcp(7777))
                .with(Protocol::P2p(peer(0)));
            match RelayAddr::new(addr) {
                Ok(r) => r,
                Err(e) => panic!("{e}"),
            }
        }
    };
    let mut expected = config.clone();
    expected.relay.addresses.push(relay.clone());
    checked_edit(text, edit::add_relay(text, &relay), &expected, "add_relay");

    let mut expected = config.clone();
    expected.relay.addresses.retain(|a| *a != relay);
    checked_edit(
        text,
        edit::remove_relay(text, &relay),
        &expected,
        "remove_relay",
    );
}

fn checked_edit(text: &str, result: Result<String, EditError>, expected: &Config, what: &str) {
    let new = match result {
        Ok(new) => new,
        Err(EditError::Invalid { error }) => {
            panic!("{what} refused a config that parses: {error}\n{text}")
        }
        // The editor's own safety net caught a shape it misjudged. With
        // line breaks that YAML knows and the editor does not (a lone `\r`,
        // NEL, LS, PS) that is a documented refusal; otherwise a bug.
        Err(e @ (EditError::Broke { .. } | EditError::NoEffect { .. })) => {
            let exotic = text
                .replace("\r\n", "\n")
                .contains(['\r', '\u{85}', '\u{2028}', '\u{2029}']);
            assert!(exotic, "{what}: editor bug: {e}\n{text}");
            return;
        }
        Err(_) => return,
    };
    match Config::parse(Path::new("peerup.yaml"), &new) {
        Ok((c, _)) => assert!(
            c == *expected,
            "{what} gave another config\n--- before\n{text}\n--- after\n{new}"
        ),
        Err(e) => panic!("{what} gave a config that does not parse: {e}\n{new}"),
    }
    // Comment lines survive an edit, in order.
    let mut after = new.lines().map(str::trim);
    for comment in text.lines().map(str::trim).filter(|l| l.starts_with('#')) {
        assert!(
            after.any(|l| l == comment),
            "{what} dropped the comment {comment:?}\n--- before\n{text}\n--- after\n{new}"
        );
    }
}

/// `relay-server.yaml` (WIRE.md §11): the input, lossily decoded, goes to
/// [`RelayConfig::parse`]; a config that parses is rendered (plain and
/// commented) and parsed back.
///
/// # Panics
/// When an error does not name the file or a rendered config does not
/// parse back to itself.
pub fn config_relay(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("relay-server.yaml");
    let config = match RelayConfig::parse(file, &text) {
        Ok((config, _)) => config,
        Err(e) => {
            assert!(
                e.to_string().starts_with("relay-server.yaml"),
                "an error does not name the file: {e}"
            );
            return;
        }
    };
    for rendered in [config.render(), config.render_commented()] {
        let (back, warnings) = RelayConfig::parse(file, &rendered)
            .unwrap_or_else(|e| panic!("a rendered relay config does not parse: {e}\n{rendered}"));
        assert_eq!(back, config, "parse(render(c)) != c\n{rendered}");
        assert!(
            warnings.iter().all(|w| w.kind != WarningKind::UnknownKey),
            "render wrote an unknown key: {warnings:?}\n{rendered}"
        );
        // Derived values agree.
        assert_eq!(back.session_duration(), config.session_duration());
        assert_eq!(back.session_data_limit(), config.session_data_limit());
    }
}

// ---------------------------------------------------------------------------
// authorized_keys

/// The `authorized_keys` document (WIRE.md §7). The first byte is the
/// length of an edit script that follows; the rest, lossily decoded, is
/// the document. Each edit (`add`, `remove`, `set_attribute`,
/// `set_expires`, `remove_attribute`, `set_comment`) names a peer of the
/// document or of a fixed pool.
///
/// # Panics
/// When `render(parse(s)) != s`, `parse(render(d)) != d`, line numbers or
/// statuses are inconsistent, a peer named on an invalid line is
/// authorized, a canonical entry line parses to another entry, a refused
/// edit changed the document, or an accepted edit changed another line or
/// another peer's authorization, or did not do what it said.
pub fn authorized_keys(data: &[u8]) {
    let mut input = Input::new(data);
    let script_len = usize::from(input.u8());
    let rest = input.rest();
    let (script, text) = rest.split_at(script_len.min(rest.len()));
    let text = String::from_utf8_lossy(text);

    let mut doc = Document::parse(&text);
    assert!(doc.render() == *text, "render(parse(s)) != s");
    check_document(&doc);
    assert_eq!(
        Document::parse_strict(&text).is_ok(),
        doc.is_valid(),
        "parse_strict disagrees with parse"
    );

    let mut input = Input::new(script);
    while !input.is_empty() {
        let before = doc.clone();
        let op = input.u8();
        let mut peers: Vec<PeerId> = before.lines().iter().filter_map(|l| l.peer()).collect();
        peers.extend([peer(2), peer(3), peer(4)]);
        let target = peers[input.below(peers.len())];
        let result = match op % 6 {
            0 => {
                let mut attributes = Attributes::new();
                for _ in 0..input.below(3) {
                    let (key, value) = (attribute_key(&mut input), attribute_value(&mut input));
                    let _ = attributes.set(&key, &value);
                }
                let comment = comment(&mut input);
                let r = doc.add(target, attributes.clone(), comment.as_deref());
                if r.is_ok() {
                    check_added(&before, &doc, target, &attributes, comment.as_deref());
                }
                r.map(drop)
            }
            1 => {
                let r = doc.remove(&target);
                if let Ok(removed) = &r {
                    let kept: Vec<(&str, LineEnding)> = before
                        .lines()
                        .iter()
                        .filter(|l| l.peer() != Some(target))
                        .map(|l| (l.text(), l.ending()))
                        .collect();
                    let now: Vec<(&str, LineEnding)> =
                        doc.lines().iter().map(|l| (l.text(), l.ending())).collect();
                    assert_eq!(now, kept, "remove changed other lines");
                    assert!(
                        removed.lines().iter().all(|l| l.peer() == Some(target)),
                        "remove took a line of another peer"
                    );
                }
                r.map(drop)
            }
            2 => {
                let (key, value) = (attribute_key(&mut input), attribute_value(&mut input));
                let r = doc.set_attribute(&target, &key, &value);
                if r.is_ok() {
                    let entry = doc.get(&target);
                    assert_eq!(
                        entry.and_then(|e| e.attributes().get(&key)),
                        Some(value.as_str()),
                        "set_attribute did not set {key}"
                    );
                }
                r.map(drop)
            }
            3 => {
                let at = UnixTime::from_millis(i64::from(input.u16()) * 86_400_000 - 1_000_000);
                let r = doc.set_expires(&target, at);
                if r.is_ok() {
                    assert_eq!(doc.get(&target).and_then(|e| e.expires()), Some(at));
                }
                r.map(drop)
            }
            4 => {
                let key = attribute_key(&mut input);
                let r = doc.remove_attribute(&target, &key);
                if r.is_ok() {
                    assert!(
                        doc.get(&target)
                            .is_some_and(|e| e.attributes().get(&key).is_none()),
                        "remove_attribute left {key}"
                    );
                }
                r.map(drop)
            }
            _ => {
                let comment = comment(&mut input);
                let r = doc.set_comment(&target, comment.as_deref());
                if r.is_ok() {
                    let want = comment
                        .as_deref()
                        .map(str::trim_ascii)
                        .filter(|c| !c.is_empty());
                    assert_eq!(doc.get(&target).and_then(|e| e.comment()), want);
                }
                r.map(drop)
            }
        };
        match result {
            Err(_) => assert_eq!(doc, before, "a refused edit changed the document"),
            Ok(()) => {
                if op % 6 >= 2 {
                    check_one_line_changed(&before, &doc, target);
                }
                check_others_unchanged(&before, &doc, target, &peers);
            }
        }
        check_document(&doc);
    }
}

fn attribute_key(input: &mut Input<'_>) -> String {
    match input.below(10) {
        0 => "expires".to_owned(),
        1 => "verified".to_owned(),
        2 => "group".to_owned(),
        3 => "hmac_proof".to_owned(),
        4 => "x-note_1".to_owned(),
        5 => "Bad".to_owned(),
        _ => input.text(12),
    }
}

fn attribute_value(input: &mut Input<'_>) -> String {
    match input.below(10) {
        0 => "2026-12-31T23:59:59Z".to_owned(),
        1 => "2026-12-31T23:59:59.5+02:00".to_owned(),
        2 => "sha256:1a2b3c4d".to_owned(),
        3 => "home".to_owned(),
        4 => "a b".to_owned(),
        5 => "\u{202e}x".to_owned(),
        _ => input.text(24),
    }
}

fn comment(input: &mut Input<'_>) -> Option<String> {
    match input.below(4) {
        0 => None,
        1 => Some("my-laptop".to_owned()),
        _ => Some(input.text(24)),
    }
}

/// The invariants of a document, edited or not.
fn check_document(doc: &Document) {
    let rendered = doc.render();
    assert_eq!(&Document::parse(&rendered), doc, "parse(render(d)) != d");
    let now = UnixTime::from_secs(1_800_000_000);
    let authorized = doc.authorized_peers(now);
    for (index, line) in doc.lines().iter().enumerate() {
        assert_eq!(line.number(), index + 1, "line numbers are not 1, 2, ...");
        if index + 1 < doc.lines().len() {
            assert_ne!(
                line.ending(),
                LineEnding::Missing,
                "a line in the middle has no end"
            );
        }
        if let Some(error) = line.error() {
            assert_eq!(error.line(), index + 1, "an error names another line");
            if let Some(p) = line.peer() {
                assert!(
                    !doc.is_authorized(&p, now) && !authorized.contains(&p),
                    "{p} is named on an invalid line and still authorized"
                );
            }
        }
        if let Some(entry) = line.entry() {
            assert_eq!(
                authorized.contains(&entry.peer()),
                doc.is_authorized(&entry.peer(), now),
                "authorized_peers disagrees with is_authorized"
            );
            // The canonical line of an entry parses to the same entry.
            let canonical = Document::parse(&entry.to_line());
            let Some(again) = canonical.lines().first().and_then(|l| l.entry()) else {
                panic!(
                    "the canonical line of an entry is not an entry: {}",
                    entry.to_line()
                );
            };
            assert_eq!(again.peer(), entry.peer());
            assert_eq!(again.attributes(), entry.attributes());
            assert_eq!(again.comment(), entry.comment());
        }
    }
    for p in &authorized {
        assert!(doc.contains(p), "authorized {p}, who has no entry");
    }
}

fn check_added(
    before: &Document,
    after: &Document,
    target: PeerId,
    attributes: &Attributes,
    comment: Option<&str>,
) {
    assert_eq!(
        after.lines().len(),
        before.lines().len() + 1,
        "add did not add one line"
    );
    // The old bytes stay as they were, a new line end aside: the new text
    // is the old one, a line end if the last line had none, and the entry.
    // (A last line ending in `\r` then ends in `\r\n`: same bytes, but
    // its text loses the `\r`.)
    let (old, new) = (before.render(), after.render());
    let Some(added) = new.strip_prefix(&old) else {
        panic!("add changed the text before the new line:\n{old:?}\n{new:?}");
    };
    let added = match before.lines().last() {
        Some(l) if l.ending() == LineEnding::Missing => added
            .strip_prefix("\r\n")
            .or_else(|| added.strip_prefix('\n'))
            .unwrap_or_else(|| panic!("add did not end the last line: {added:?}")),
        _ => added,
    };
    assert!(
        added.ends_with('\n') && !added.trim_end_matches(['\r', '\n']).contains(['\r', '\n']),
        "add wrote more than one line: {added:?}"
    );
    let Some(entry) = after.lines().last().and_then(|l| l.entry()) else {
        panic!("add did not append an entry");
    };
    assert_eq!(entry.peer(), target);
    assert_eq!(entry.attributes(), attributes);
    let want = comment.map(str::trim_ascii).filter(|c| !c.is_empty());
    assert_eq!(entry.comment(), want);
}

fn check_one_line_changed(before: &Document, after: &Document, target: PeerId) {
    assert_eq!(
        after.lines().len(),
        before.lines().len(),
        "an edit added or removed lines"
    );
    for (old, new) in before.lines().iter().zip(after.lines()) {
        assert_eq!(old.ending(), new.ending(), "an edit changed a line end");
        if old.entry().is_none_or(|e| e.peer() != target) {
            assert_eq!(old, new, "an edit of {target} changed another line");
        }
    }
}

fn check_others_unchanged(before: &Document, after: &Document, target: PeerId, peers: &[PeerId]) {
    // The line an invalid status names moves when lines are added or
    // removed; the status itself may not change.
    let status = |doc: &Document, p: &PeerId, now| match doc.status(p, now) {
        Status::Invalid { .. } => Status::Invalid { line: 0 },
        other => other,
    };
    for now in [0, 1_800_000_000, 4_000_000_000] {
        let now = UnixTime::from_secs(now);
        for p in peers.iter().filter(|p| **p != target) {
            assert_eq!(
                status(before, p, now),
                status(after, p, now),
                "an edit of {target} changed the status of {p}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// relay_addr

/// `peerup relay add` input: the first byte picks the `--peer-id` (none or
/// one of two peers), the rest, lossily decoded, is the input. The input
/// is also parsed as a [`RelayAddr`], and the raw bytes as a binary
/// multiaddr.
///
/// # Panics
/// When an accepted input does not round-trip through its text form, does
/// not keep the given peer ID, or is not a valid relay address.
pub fn relay_addr(data: &[u8]) {
    let mut input = Input::new(data);
    let given = match input.u8() % 3 {
        0 => None,
        n => Some(peer(usize::from(n))),
    };
    let raw = input.rest();
    let text = String::from_utf8_lossy(raw);
    match relay_addr::parse_input(&text, given) {
        Ok(addr) => {
            check_relay_addr(&addr);
            if let Some(p) = given {
                assert_eq!(addr.peer_id(), p, "parse_input dropped --peer-id");
            }
            let shown = addr.to_string();
            assert_eq!(
                relay_addr::parse_input(&shown, None).as_ref(),
                Ok(&addr),
                "the text form does not parse back"
            );
            assert_eq!(
                relay_addr::parse_input(&shown, Some(addr.peer_id())).as_ref(),
                Ok(&addr),
                "the text form with its own --peer-id does not parse back"
            );
        }
        Err(RelayInputError::MissingPeerId { transport, .. }) => {
            assert!(given.is_none(), "MissingPeerId though --peer-id was given");
            assert!(
                !matches!(transport.iter().last(), Some(Protocol::P2p(_))),
                "MissingPeerId for an address ending in /p2p/"
            );
        }
        Err(RelayInputError::PeerIdMismatch {
            in_addr, given: g, ..
        }) => {
            assert_ne!(in_addr, g, "PeerIdMismatch of equal IDs");
        }
        Err(_) => {}
    }
    if let Ok(addr) = text.parse::<RelayAddr>() {
        check_relay_addr(&addr);
    }
    if let Ok(m) = Multiaddr::try_from(raw.to_vec())
        && let Ok(addr) = RelayAddr::new(m)
    {
        assert!(addr.multiaddr().iter().last() == Some(Protocol::P2p(addr.peer_id())));
    }
}

fn check_relay_addr(addr: &RelayAddr) {
    let back: RelayAddr = addr
        .to_string()
        .parse()
        .unwrap_or_else(|e| panic!("a relay address does not parse from its text: {e}"));
    assert_eq!(&back, addr, "a relay address changed through its text form");
    let protos: Vec<Protocol<'_>> = addr.multiaddr().iter().collect();
    assert_eq!(protos.last(), Some(&Protocol::P2p(addr.peer_id())));
    assert!(
        !protos.contains(&Protocol::P2pCircuit),
        "a circuit address was accepted"
    );
    let port = match (protos.get(1), protos.get(2)) {
        (Some(Protocol::Tcp(p)), _) | (Some(Protocol::Udp(p)), Some(Protocol::QuicV1)) => *p,
        _ => panic!("a relay address without a transport: {addr}"),
    };
    assert_ne!(port, 0, "a relay address with port 0: {addr}");
    assert_eq!(
        addr.transport().with(Protocol::P2p(addr.peer_id())),
        *addr.multiaddr()
    );
    let circuit = addr.circuit_to(peer(5));
    assert!(circuit.to_string().starts_with(&addr.to_string()));
}

// ---------------------------------------------------------------------------
// names

/// Friendly names and target resolution: a script of operations
/// (`Name::new`, `insert`, `remove`, `get`, `resolve`, `names_of`) on one
/// [`Names`], each with a text from the input, checked against the naming
/// rule and a `BTreeMap` model.
///
/// # Panics
/// When [`Name::new`] disagrees with the rule (1-63 of `A-Za-z0-9._-`,
/// starting with a letter or digit, never a full-length peer ID), or
/// [`Names`] disagrees with the model (a name first, then a peer ID).
pub fn names(data: &[u8]) {
    let mut input = Input::new(data);
    let mut names = Names::new();
    let mut model: BTreeMap<String, PeerId> = BTreeMap::new();
    while !input.is_empty() {
        let op = input.u8();
        let who = peer(input.below(4));
        let text = match (op / 8) % 4 {
            0 => who.to_string(),
            1 => format!(" {} ", ["home", "laptop", "12D3KooW"][input.below(3)]),
            _ => input.text(80),
        };
        check_name(&text);
        match op % 6 {
            0 => {
                if let Ok(n) = Name::new(&text) {
                    assert_eq!(names.insert(n, who), model.insert(text.clone(), who));
                }
            }
            1 => assert_eq!(names.remove(&text), model.remove(&text), "remove({text:?})"),
            2 => assert_eq!(names.get(&text), model.get(&text).copied(), "get({text:?})"),
            3 | 4 => {
                let trimmed = text.trim();
                let expected = match model.get(trimmed) {
                    Some(p) => Some(*p),
                    None => crate::identity::parse_peer_id_text(trimmed),
                };
                match names.resolve(&text) {
                    Ok(p) => assert_eq!(Some(p), expected, "resolve({text:?})"),
                    Err(e) => {
                        assert_eq!(expected, None, "resolve({text:?}) failed: {e}");
                        assert_eq!(e.target, crate::identity::excerpt(&text));
                        let known: Vec<String> = model.keys().cloned().collect();
                        assert_eq!(e.known, known, "the error lists other names");
                    }
                }
            }
            _ => {
                let of: Vec<&str> = names.names_of(&who).map(Name::as_str).collect();
                let want: Vec<&str> = model
                    .iter()
                    .filter(|(_, p)| **p == who)
                    .map(|(n, _)| n.as_str())
                    .collect();
                assert_eq!(of, want, "names_of");
            }
        }
        assert_eq!(names.len(), model.len());
        assert!(
            names
                .iter()
                .map(|(n, p)| (n.as_str(), *p))
                .eq(model.iter().map(|(n, p)| (n.as_str(), *p))),
            "the names map differs from the model"
        );
    }
}

/// Checks [`Name::new`] on `text` against the rule.
fn check_name(text: &str) {
    let charset = text
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '.' | '_' | '-')));
    let is_peer_id = text.len() >= 32 && crate::identity::parse_peer_id_text(text).is_some();
    let valid = !text.is_empty() && text.len() <= Name::MAX_LEN && charset && !is_peer_id;
    match Name::new(text) {
        Ok(n) => {
            assert!(valid, "Name::new accepted {text:?}");
            assert_eq!(n.as_str(), text);
            assert_eq!(n.to_string(), text);
            assert_eq!(text.parse::<Name>().as_ref(), Ok(&n));
        }
        Err(e) => assert!(!valid, "Name::new refused {text:?}: {e}"),
    }
}

// ---------------------------------------------------------------------------
// pingpong

/// The ping-pong line protocol (WIRE.md §3). The input is a byte stream
/// cut into lines as a responder reads it (each line answered and the
/// answer classified as a client would), then read again as RTT samples
/// for [`Stats`], and as a binary multiaddr for [`pingpong::Path::of`].
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
        let path = pingpong::Path::of(&addr);
        assert_eq!(path == pingpong::Path::Relayed, relayed);
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
        let ok = match op {
            HalfCloseOp::Copied(d, n) => machine.handle_copied(d, n).is_ok(),
            HalfCloseOp::Eof(d) => machine.handle_eof(d).is_ok(),
            HalfCloseOp::ShutdownDone(d) => machine.handle_shutdown_done(d).is_ok(),
            HalfCloseOp::Error(s) => {
                machine.handle_error(s);
                true
            }
        };
        let (model_ok, model_out) = model.apply(op);
        assert_eq!(ok, model_ok, "{op:?}: result");
        let out: Vec<HalfCloseOutput> = core::iter::from_fn(|| machine.poll_output()).collect();
        assert_eq!(out, model_out, "{op:?}: outputs");
        finals += out
            .iter()
            .filter(|o| matches!(o, HalfCloseOutput::Close | HalfCloseOutput::Reset))
            .count();
        assert!(finals <= 1, "closed or reset twice");
        assert_eq!(machine.is_finished(), model.reset || model.closed);
        assert_eq!(machine.is_reset(), model.reset);
        for (i, d) in [Direction::LocalToRemote, Direction::RemoteToLocal]
            .into_iter()
            .enumerate()
        {
            assert_eq!(machine.bytes(d), model.bytes[i], "{d:?}: bytes");
            assert_eq!(
                machine.is_open(d),
                !model.reset && !model.eof[i],
                "{d:?}: open"
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum HalfCloseOp {
    Copied(Direction, u64),
    Eof(Direction),
    ShutdownDone(Direction),
    Error(Side),
}

/// The naive reference of `proxy::half_close`'s proptest.
#[derive(Default)]
struct HalfCloseModel {
    eof: [bool; 2],
    shut: [bool; 2],
    reset: bool,
    closed: bool,
    bytes: [u64; 2],
}

impl HalfCloseModel {
    fn apply(&mut self, op: HalfCloseOp) -> (bool, Vec<HalfCloseOutput>) {
        let index = |d: Direction| usize::from(d == Direction::RemoteToLocal);
        if self.reset {
            return (true, vec![]);
        }
        match op {
            HalfCloseOp::Copied(d, n) => {
                if self.eof[index(d)] {
                    return (false, vec![]);
                }
                self.bytes[index(d)] = self.bytes[index(d)].saturating_add(n);
                (true, vec![])
            }
            HalfCloseOp::Eof(d) => {
                if self.eof[index(d)] {
                    return (false, vec![]);
                }
                self.eof[index(d)] = true;
                (true, vec![HalfCloseOutput::ShutdownWrite(d.destination())])
            }
            HalfCloseOp::ShutdownDone(d) => {
                if !self.eof[index(d)] || self.shut[index(d)] {
                    return (false, vec![]);
                }
                self.shut[index(d)] = true;
                if self.shut == [true, true] {
                    self.closed = true;
                    return (true, vec![HalfCloseOutput::Close]);
                }
                (true, vec![])
            }
            HalfCloseOp::Error(_) => {
                if self.closed {
                    return (true, vec![]);
                }
                self.reset = true;
                (true, vec![HalfCloseOutput::Reset])
            }
        }
    }
}

// ---------------------------------------------------------------------------
// confirm

/// The config file of the commit-confirmed scenarios.
const CFG: &str = "/etc/peerup/config.yaml";

/// An in-memory directory that carries out actions the way the adapter
/// must: atomically, stopping at the first failure (a crash).
struct Disk {
    files: BTreeMap<PathBuf, Vec<u8>>,
    paths: ArchivePaths,
}

impl Disk {
    fn on_disk(&self) -> OnDisk {
        let marker = match self.files.get(&self.paths.pending) {
            None => MarkerState::Absent,
            Some(b) => match PendingMarker::decode(core::str::from_utf8(b).unwrap_or("")) {
                Ok(m) => MarkerState::Present(m),
                Err(e) => MarkerState::Damaged(e.to_string()),
            },
        };
        OnDisk {
            marker,
            backup_exists: self.files.contains_key(&self.paths.pre_confirmed),
        }
    }

    fn config(&self) -> Vec<u8> {
        match self.files.get(Path::new(CFG)) {
            Some(c) => c.clone(),
            None => panic!("the config file is gone"),
        }
    }

    fn archive(&self) -> Option<Vec<u8>> {
        self.files.get(&self.paths.last_good).cloned()
    }

    /// Carries out the machine's outputs; stops after `limit` actions (a
    /// crash). Returns (events, exit requested, crashed).
    fn run(&mut self, m: &mut Confirm, limit: usize) -> (Vec<Event>, bool, bool) {
        let (mut events, mut exit, mut done) = (vec![], false, 0);
        while let Some(o) = m.poll_output() {
            match o {
                Output::Event(e) => events.push(e),
                Output::Action(a) => {
                    if done == limit {
                        return (events, exit, true);
                    }
                    done += 1;
                    match a {
                        Action::WriteAtomic { path, contents } => {
                            self.files.insert(path, contents);
                        }
                        Action::Rename { from, to } => {
                            let Some(v) = self.files.remove(&from) else {
                                panic!("rename of the missing file {}", from.display());
                            };
                            self.files.insert(to, v);
                        }
                        Action::Remove { path } => {
                            self.files.remove(&path);
                        }
                        Action::ExitForRestart => exit = true,
                    }
                }
            }
        }
        (events, exit, false)
    }

    fn start(&mut self, now: UnixTime) -> (Confirm, Vec<Event>, bool) {
        let config = self.config();
        let mut m = Confirm::start(
            PathBuf::from(CFG),
            self.paths.clone(),
            now,
            &self.on_disk(),
            &config,
        );
        let (events, exit, _) = self.run(&mut m, usize::MAX);
        (m, events, exit)
    }

    fn cli(&self) -> Confirm {
        Confirm::offline(PathBuf::from(CFG), self.paths.clone(), &self.on_disk())
    }
}

/// Commit-confirmed (WIRE.md §10): each op of the input is an apply (with
/// a timeout and a crash after 0-3 of its actions, or none), a confirm in
/// the daemon or from the CLI (which may crash too), a restart, a time
/// step, a rollback, or a damaged marker, carried out on an in-memory disk
/// as the `model` proptest of `config::confirm` does. At the end every
/// deadline passes.
///
/// # Panics
/// When two changes are pending at once, the config is one that was never
/// written, the archive holds a config that was never confirmed, a settled
/// machine runs an unconfirmed config, a restart past the deadline keeps
/// the new config, an action renames a missing file, a marker does not
/// round-trip, or an unconfirmed config survives its deadline.
pub fn confirm(data: &[u8]) {
    let mut input = Input::new(data);
    let paths = match ArchivePaths::new(Path::new(CFG)) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    let mut d = Disk {
        files: BTreeMap::from([(PathBuf::from(CFG), b"v0".to_vec())]),
        paths,
    };
    let mut now = UnixTime::from_secs(1_000);
    // Every config ever confirmed (the first counts), and ever written.
    let mut confirmed: Vec<Vec<u8>> = vec![b"v0".to_vec()];
    let mut written: Vec<Vec<u8>> = vec![b"v0".to_vec()];
    // (old, new, deadline) of an unresolved apply.
    let mut pending: Option<(Vec<u8>, Vec<u8>, UnixTime)> = None;
    let mut next = 1u32;
    let (mut daemon, _, mut exit) = d.start(now);
    let mut ops = 0;
    while !input.is_empty() && ops < 256 {
        ops += 1;
        let mut restarts = 0;
        while exit {
            restarts += 1;
            assert!(restarts < 8, "the daemon keeps exiting at start");
            let (m, _, e) = d.start(now);
            daemon = m;
            exit = e;
            if let Some((old, _, deadline)) = &pending
                && now >= *deadline
            {
                assert!(
                    d.config() == *old,
                    "a restart past the deadline kept the new config"
                );
                pending = None;
            }
        }
        let b = input.u8();
        let crash_after = if b & 0x80 == 0 {
            None
        } else {
            Some(usize::from((b >> 5) & 3))
        };
        match b % 7 {
            0 => {
                let secs = 1 + u64::from(input.u16() % 599);
                let new = format!("v{next}").into_bytes();
                next += 1;
                let mut cli = d.cli();
                let current = d.config();
                match cli.apply(now, &current, &new, Duration::from_secs(secs)) {
                    Err(ConfirmError::AlreadyPending { .. }) => {
                        assert!(
                            pending.is_some()
                                || matches!(d.on_disk().marker, MarkerState::Present(_)),
                            "apply refused with nothing pending"
                        );
                        assert!(cli.poll_output().is_none(), "a refused apply wrote");
                    }
                    Err(e) => panic!("apply failed: {e}"),
                    Ok(()) => {
                        assert!(
                            pending.is_none(),
                            "apply accepted while another change is pending"
                        );
                        written.push(new.clone());
                        let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                        // The marker (second action) makes the change pending.
                        if !crashed || crash_after.unwrap_or(0) >= 2 {
                            pending =
                                Some((current, new, now.saturating_add(Duration::from_secs(secs))));
                        }
                    }
                }
                // README: apply, then restart the service.
                let (m, _, e) = d.start(now);
                daemon = m;
                exit = e;
            }
            1 => {
                let current = d.config();
                let outside_confirm = d.on_disk().marker == MarkerState::Absent;
                if daemon.confirm(&current).is_ok() {
                    // The daemon may not have seen a confirm from another
                    // process yet; confirming again is harmless.
                    assert!(
                        pending.is_some() || outside_confirm,
                        "the daemon confirmed with nothing pending"
                    );
                    d.run(&mut daemon, usize::MAX);
                    confirmed.push(current);
                    pending = None;
                }
            }
            2 => {
                let mut cli = d.cli();
                let current = d.config();
                if cli.confirm(&current).is_ok() {
                    let crashed = d.run(&mut cli, crash_after.unwrap_or(usize::MAX)).2;
                    // The marker's removal (first action) is the commit.
                    if !crashed || crash_after.unwrap_or(0) >= 1 {
                        confirmed.push(current);
                        pending = None;
                    }
                }
            }
            3 => {
                let (m, _, e) = d.start(now);
                daemon = m;
                exit = e;
            }
            4 => {
                now = now.saturating_add(Duration::from_secs(u64::from(input.u16() % 900)));
                if daemon
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    daemon.handle_timeout(now, &d.on_disk());
                    exit = d.run(&mut daemon, usize::MAX).1;
                }
            }
            5 => {
                let mut cli = d.cli();
                let archive = d.archive();
                if cli.rollback(archive.as_deref()).is_ok() {
                    d.run(&mut cli, usize::MAX);
                    pending = None;
                    let (m, _, e) = d.start(now);
                    daemon = m;
                    exit = e;
                }
            }
            _ => {
                // The marker is damaged on disk (a bad disk, a hand edit):
                // the change counts as unconfirmed and reverts at start.
                let junk = input.bytes(64).to_vec();
                if let Ok(marker) = PendingMarker::decode(&String::from_utf8_lossy(&junk)) {
                    let text = marker
                        .encode()
                        .unwrap_or_else(|e| panic!("a decoded marker does not encode: {e}"));
                    assert_eq!(
                        PendingMarker::decode(&text).as_ref(),
                        Ok(&marker),
                        "a marker does not round-trip"
                    );
                }
                let old = d.files.insert(d.paths.pending.clone(), junk);
                if !matches!(d.on_disk().marker, MarkerState::Damaged(_)) {
                    // Not damaged after all: put the file back.
                    match old {
                        Some(o) => d.files.insert(d.paths.pending.clone(), o),
                        None => d.files.remove(&d.paths.pending),
                    };
                } else {
                    let (m, events, e) = d.start(now);
                    assert!(
                        matches!(events.first(), Some(Event::DamagedMarker { .. })),
                        "a damaged marker went unreported: {events:?}"
                    );
                    if let Some((old, _, _)) = &pending {
                        assert!(
                            e && d.config() == *old,
                            "a damaged marker did not revert to the old config"
                        );
                    }
                    pending = None;
                    daemon = m;
                    exit = e;
                }
            }
        }
        // Invariants after every step.
        let config = d.config();
        assert!(
            written.contains(&config),
            "the config is neither old nor new"
        );
        if let Some(a) = d.archive() {
            assert!(
                confirmed.contains(&a),
                "the archive holds an unconfirmed config {a:?}"
            );
        }
        if let Some((old, new, _)) = &pending {
            assert!(
                config == *old || config == *new,
                "the config is neither old nor new"
            );
        }
        let marker = matches!(d.on_disk().marker, MarkerState::Present(_));
        if !marker && pending.is_none() {
            assert!(
                confirmed.contains(&config),
                "settled on an unconfirmed config"
            );
        }
    }
    // Finally every deadline passes: an unconfirmed change reverts, a
    // confirmed one stays.
    now = now.saturating_add(Duration::from_secs(10_000));
    let mut settled = false;
    for _ in 0..8 {
        let (mut m, _, e) = d.start(now);
        if !e {
            m.handle_timeout(now, &d.on_disk());
            if !d.run(&mut m, usize::MAX).1 {
                settled = true;
                break;
            }
        }
    }
    assert!(
        settled,
        "the daemon keeps exiting after every deadline passed"
    );
    assert!(
        confirmed.contains(&d.config()),
        "an unconfirmed config survived its deadline"
    );
    assert_eq!(d.on_disk(), OnDisk::settled(), "files left behind");
}

/// A fuzz target: the fuzzer's bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary and corpus folder.
pub const TARGETS: [(&str, Target); 11] = [
    ("invite_code", invite_code),
    ("sealed_frame", sealed_frame),
    ("invite_handshake", invite_handshake),
    ("config_node", config_node),
    ("config_relay", config_relay),
    ("authorized_keys", authorized_keys),
    ("relay_addr", relay_addr),
    ("names", names),
    ("pingpong", pingpong),
    ("half_close", half_close),
    ("confirm", confirm),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_small_inputs_pass() {
        for (_, target) in TARGETS {
            target(&[]);
            for b in 0..=255u8 {
                target(&[b]);
                target(&[b, b, b]);
            }
        }
    }

    /// Script header: inviter named `home`, 3 attempts, 2 sessions, 30 s
    /// per stream and for the hello, 3 strikes per peer, expiry in 200 s,
    /// then one actor (one peer) of `kind` named `laptop` with 30 s; then
    /// `ops`.
    fn script(kind: u8, ops: &[u8]) -> Script {
        let mut data = vec![0, 2, 1, 120, 120, 2, 200, 0, 0, kind];
        if kind == 2 {
            data.push(5);
        }
        data.extend([1, 120]);
        data.extend(ops);
        let mut input = Input::new(&data);
        Script::new(&mut input).run(&mut input)
    }

    // Ops: open 0, pump 13, answer 11 (then ok).
    const PAIR: [u8; 9] = [0, 0, 13, 0, 11, 0, 1, 13, 0];

    #[test]
    fn the_script_pairs_an_honest_joiner() {
        let s = script(0, &PAIR);
        assert_eq!(s.saved, Some(0));
        assert_eq!(s.actors[0].outcome, Some(Outcome::Paired));
        assert_eq!(s.inviter.state(), InviteState::Used);
    }

    #[test]
    fn the_script_refuses_a_wrong_token_and_a_failed_save() {
        let s = script(2, &PAIR);
        assert_eq!(s.saved, None);
        assert_eq!(s.actors[0].outcome, Some(Outcome::Failed));
        assert_eq!(s.inviter.failed_attempts(), 1);
        let s = script(0, &[0, 0, 13, 0, 11, 0, 0, 13, 0]);
        assert_eq!(s.saved, None);
        assert_eq!(s.actors[0].outcome, Some(Outcome::Failed));
        assert_eq!(s.inviter.state(), InviteState::Expired);
    }

    #[test]
    #[should_panic(expected = "a peer without the token was authorized")]
    fn the_script_catches_an_authorized_attacker() {
        let mut s = script(3, &[0, 0]);
        s.inviter_output(InviterOutput::Authorize {
            stream: 0,
            peer: peer(2),
            name: None,
        });
    }
}
