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
//! | [`pairing_code`] | bytes (also with the first byte set to 2), and the same bytes as text | `AnyCode` agrees with the decoder the first byte names; decoding accepts only canonical bytes, within `MIN_LEN..=MAX_LEN`, no trailing bytes; text and bytes agree; encode/decode and rebuilding from the relay address round-trip |
//! | [`relay_pair`] | a buffer decoded as a request and as an answer, then a script building both | decoders accept only canonical bytes within their bound, answers within their rules (count below group size, no peer twice, names valid `authorized_keys` comments, group IDs valid `group=` values); every strict prefix reads as truncated; encodable messages round-trip |
//! | [`peer_notify`] | a buffer decoded as an introduction, then a script building one; the text as `hmac_proof=` and `verified=` values | as `relay_pair` for introductions (a zero proof is absent); proof hex round-trips; a `verified=` value matches only its own pair |
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
//! | [`reservation()`] | relay config and swarm events, time steps | [`crate::reservation::Reservations`] against the model of its proptest (`models::reservation`) |
//! | [`confirm`] | applies, confirms, restarts, time, crashes, damaged markers | the commit-confirmed promises of the `model` proptest, on an in-memory disk |
//!
//! Every function is deterministic (no clock, no OS randomness), so a
//! crash input replays exactly.

use std::sync::OnceLock;

use crate::PeerId;
use crate::identity::keypair_from_seed;
use crate::naming::Name;

mod authorized_keys;
mod config;
mod handshake;
mod invite_code;
mod names;
mod pairing;
mod reservation;
mod streams;

pub use authorized_keys::authorized_keys;
pub use config::{config_node, config_relay, confirm};
pub use handshake::invite_handshake;
pub use invite_code::{invite_code, sealed_frame};
pub use names::{names, relay_addr};
pub use pairing::{pairing_code, peer_notify, relay_pair};
pub use reservation::reservation;
pub use streams::{half_close, pingpong};

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

/// A fuzz target: the fuzzer's bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary and corpus folder.
pub const TARGETS: [(&str, Target); 15] = [
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
    ("reservation", reservation),
    ("pairing_code", pairing_code),
    ("relay_pair", relay_pair),
    ("peer_notify", peer_notify),
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
}
