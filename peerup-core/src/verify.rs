//! The verification code two people compare after pairing (WIRE.md §15,
//! `peerup verify <peer>`), byte-compatible with Go peer-up's
//! `pkg/p2pnet/verify.go` (`ComputeFingerprint`, `FingerprintPrefix`).
//!
//! ```text
//! h      = SHA-256(raw peer ID bytes of the lower peer || those of the other)
//! emoji  = EMOJI[h[0]] EMOJI[h[2]] EMOJI[h[4]] EMOJI[h[6]]
//! number = (h[8] << 16 | h[9] << 8 | h[10]) mod 1_000_000, shown NNN-NNN
//! stored = verified=sha256:<hex of h[0..4]>
//! ```
//!
//! "Lower" is the bytewise order of the raw multihash bytes (Go compares
//! the `peer.ID` strings, which hold those bytes), so both sides compute
//! the same code whichever of the two they are. The Go table has emoji
//! only, no words: the number is the form to read out.
//!
//! Only the first 4 bytes of `h` are stored: `verified=` records that a
//! person compared the code for this pair, it is not a secret or a MAC.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::PeerId;

/// The 256 emoji of Go peer-up's `emojiTable`, in its order. Entries
/// written as escapes end in U+FE0F (emoji presentation), as in Go.
#[rustfmt::skip]
pub const EMOJI: [&str; 256] = [
    // Animals
    "🐶", "🐱", "🐭", "🐹", "🐰", "🦊", "🐻", "🐼",
    "🐨", "🐯", "🦁", "🐮", "🐷", "🐸", "🐵", "🐔",
    "🐧", "🐦", "🐤", "🦆", "🦅", "🦉", "🦇", "🐺",
    "🐗", "🐴", "🦄", "🐝", "🐛", "🦋", "🐌", "🐞",
    // Sea creatures
    "🐙", "🦑", "🦐", "🦀", "🐡", "🐠", "🐟", "🐬",
    "🐳", "🐋", "🦈", "🐊", "🐅", "🐆", "🦓", "🦍",
    // More animals
    "🐘", "🦛", "🦏", "🐪", "🐫", "🦒", "🦘", "🐃",
    "🐂", "🐄", "🐎", "🐖", "🐏", "🐑", "🦙", "🐐",
    // Nature
    "🌵", "🎄", "🌲", "🌳", "🌴", "🌱", "🌿", "🍀",
    "🍁", "🍂", "🍃", "🌺", "🌻", "🌹", "🥀", "🌷",
    "🌼", "🌸", "💐", "🍄", "🌰", "🎃", "🌑", "🌒",
    "🌓", "🌔", "🌕", "🌖", "🌗", "🌘", "🌙", "🌚",
    // Weather
    "⭐", "🌟", "💫", "✨", "\u{2604}\u{fe0f}", "\u{1f324}\u{fe0f}", "⛅", "\u{1f325}\u{fe0f}",
    "\u{1f326}\u{fe0f}", "\u{1f327}\u{fe0f}", "\u{26c8}\u{fe0f}", "\u{1f329}\u{fe0f}", "\u{1f32a}\u{fe0f}", "🌈", "\u{2600}\u{fe0f}", "🌊",
    // Food
    "🍎", "🍊", "🍋", "🍌", "🍉", "🍇", "🍓", "🍈",
    "🍒", "🍑", "🥭", "🍍", "🥥", "🥝", "🍅", "🥑",
    "\u{1f336}\u{fe0f}", "🥕", "🥔", "🧅", "🌽", "🥦", "🥒", "🥬",
    "🍆", "🥜", "🫘", "🍞", "🥐", "🥖", "🧀", "🥚",
    // Objects
    "🔑", "\u{1f5dd}\u{fe0f}", "🔒", "🔓", "🔨", "🪓", "\u{26cf}\u{fe0f}", "🔧",
    "🔩", "\u{2699}\u{fe0f}", "🧲", "🔫", "💣", "🧨", "🪚", "🔪",
    "\u{1f5e1}\u{fe0f}", "\u{1f6e1}\u{fe0f}", "🏹", "🎯", "🪃", "🧰", "🔬", "🔭",
    "📡", "💉", "🩸", "💊", "🩹", "🧬", "🦠", "🧫",
    // Musical
    "🎸", "🎹", "🥁", "🎺", "🎷", "🪗", "🎻", "🪕",
    "🎵", "🎶", "🎼", "🎤", "🎧", "📻", "\u{1f399}\u{fe0f}", "📯",
    // Transport
    "🚀", "🛸", "🚁", "⛵", "🚂", "🚗", "🚕", "\u{1f3ce}\u{fe0f}",
    "🚌", "🚎", "🚑", "🚒", "🛻", "🚜", "🛵", "\u{1f3cd}\u{fe0f}",
    // Sports/Games
    "⚽", "🏀", "🏈", "⚾", "🥎", "🎾", "🏐", "🏉",
    "🎱", "🏓", "🏸", "🥊", "🎿", "\u{26f7}\u{fe0f}", "🏂", "🪂",
    // Symbols
    "\u{2764}\u{fe0f}", "🧡", "💛", "💚", "💙", "💜", "🤎", "🖤",
    "💎", "🔥", "💧", "🌀", "🎪", "🎭", "🎨", "🧩",
    "\u{265f}\u{fe0f}", "🎲", "🧸", "🪆", "🪄", "🎩", "👑", "💍",
    "🏆", "🥇", "🥈", "🥉", "🏅", "\u{1f396}\u{fe0f}", "\u{1f3f5}\u{fe0f}", "\u{1f397}\u{fe0f}",
];

/// The bytes of `h` that pick the emoji.
pub const EMOJI_BYTES: [usize; 4] = [0, 2, 4, 6];

/// The prefix of a `verified=` value.
pub const VERIFIED_PREFIX: &str = "sha256:";

/// The verification code of a pair of peers; the same for `(a, b)` and
/// `(b, a)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Code {
    hash: [u8; 32],
}

impl Code {
    /// The code of the pair `a`, `b` (in either order).
    pub fn new(a: &PeerId, b: &PeerId) -> Self {
        let (a, b) = (a.to_bytes(), b.to_bytes());
        let (lower, upper) = if a <= b { (a, b) } else { (b, a) };
        let mut sha = Sha256::new();
        sha.update(&lower);
        sha.update(&upper);
        Code {
            hash: sha.finalize().into(),
        }
    }

    /// `h`, the SHA-256 of the pair.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The indices into [`EMOJI`]: bytes 0, 2, 4 and 6 of `h`.
    pub fn emoji_indices(&self) -> [u8; 4] {
        EMOJI_BYTES.map(|i| self.hash[i])
    }

    /// The four emoji.
    pub fn emoji(&self) -> [&'static str; 4] {
        self.emoji_indices().map(|i| EMOJI[usize::from(i)])
    }

    /// The four emoji joined by spaces, as Go shows them.
    pub fn emoji_text(&self) -> String {
        self.emoji().join(" ")
    }

    /// The number, below 1,000,000: bytes 8..10 of `h` as a 24-bit
    /// big-endian integer, mod 10^6.
    pub fn number(&self) -> u32 {
        u32::from_be_bytes([0, self.hash[8], self.hash[9], self.hash[10]]) % 1_000_000
    }

    /// The number as `NNN-NNN`.
    pub fn number_text(&self) -> String {
        let n = self.number();
        format!("{:03}-{:03}", n / 1000, n % 1000)
    }

    /// The `verified=` value: `sha256:` and the hex of the first 4 bytes
    /// of `h`, lower case.
    pub fn verified_value(&self) -> String {
        let mut out = String::from(VERIFIED_PREFIX);
        for b in &self.hash[..4] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Whether a stored `verified=` value records this pair: `sha256:` and
    /// the 8 hex digits of [`Code::verified_value`], in either case (the
    /// attribute accepts both). A value for another pair (a peer whose ID
    /// changed, a line copied from another machine) does not match.
    pub fn matches_verified(&self, value: &str) -> bool {
        value.strip_prefix(VERIFIED_PREFIX).is_some_and(|hex| {
            hex.eq_ignore_ascii_case(&self.verified_value()[VERIFIED_PREFIX.len()..])
        })
    }
}

impl fmt::Display for Code {
    /// `<emoji>  (<NNN-NNN>)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  ({})", self.emoji_text(), self.number_text())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Code")
            .field("emoji", &self.emoji_indices())
            .field("number", &self.number_text())
            .field("verified", &self.verified_value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::keypair_from_seed;
    use proptest::prelude::*;

    fn peer(seed: u8) -> PeerId {
        keypair_from_seed([seed; 32]).public().to_peer_id()
    }

    /// SHA-256 of the table's entries joined by `\n`, computed from the Go
    /// source (`pkg/p2pnet/verify.go` at the mirrored HEAD) by extracting
    /// the quoted strings of `emojiTable`.
    const GO_TABLE_SHA256: &str =
        "98d47310f038b57bad561c5a26eb54ee2ae5d67a57412fa6a2854021373a1269";

    #[test]
    fn table_is_gos() {
        let joined = EMOJI.join("\n");
        let digest: [u8; 32] = Sha256::digest(joined.as_bytes()).into();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, GO_TABLE_SHA256);
        // Go's TestEmojiTableComplete: no empty entry, no duplicate.
        let mut seen = std::collections::BTreeSet::new();
        for e in EMOJI {
            assert!(!e.is_empty());
            assert!(seen.insert(e), "duplicate {e}");
        }
    }

    #[test]
    fn symmetric_and_formatted() {
        let (a, b) = (peer(1), peer(2));
        let c = Code::new(&a, &b);
        assert_eq!(c, Code::new(&b, &a));
        assert_ne!(c, Code::new(&a, &peer(3)));
        let n = c.number_text();
        assert_eq!(n.len(), 7);
        assert_eq!(&n[3..4], "-");
        assert_eq!(c.emoji_text().split(' ').count(), 4);
        let v = c.verified_value();
        assert_eq!(v.len(), 15);
        assert!(v.starts_with("sha256:"));
        assert!(c.matches_verified(&v));
        assert!(c.matches_verified(&v.to_uppercase().replace("SHA256:", "sha256:")));
        assert!(!c.matches_verified(&v.to_uppercase()));
        assert!(!c.matches_verified(&Code::new(&a, &peer(3)).verified_value()));
        assert!(!c.matches_verified(&v[..14]));
        assert!(!c.matches_verified(&format!("{v}0")));
        assert!(!c.matches_verified(""));
        assert_eq!(c.to_string(), format!("{}  ({})", c.emoji_text(), n));
    }

    #[test]
    fn hash_is_lower_then_upper() {
        let (a, b) = (peer(1), peer(2));
        let (x, y) = (a.to_bytes(), b.to_bytes());
        let (lo, hi) = if x < y { (x, y) } else { (y, x) };
        let h: [u8; 32] = Sha256::digest([lo, hi].concat()).into();
        assert_eq!(Code::new(&a, &b).hash(), &h);
        // A peer with itself is defined too.
        let h: [u8; 32] = Sha256::digest([a.to_bytes(), a.to_bytes()].concat()).into();
        assert_eq!(Code::new(&a, &a).hash(), &h);
    }

    proptest! {
        #[test]
        fn any_pair(s in any::<[u8; 32]>(), t in any::<[u8; 32]>()) {
            let a = keypair_from_seed(s).public().to_peer_id();
            let b = keypair_from_seed(t).public().to_peer_id();
            let c = Code::new(&a, &b);
            prop_assert_eq!(c, Code::new(&b, &a));
            prop_assert!(c.number() < 1_000_000);
            prop_assert!(c.matches_verified(&c.verified_value()));
            let h = c.hash();
            let n = (u32::from(h[8]) << 16 | u32::from(h[9]) << 8 | u32::from(h[10])) % 1_000_000;
            prop_assert_eq!(c.number_text(), format!("{:03}-{:03}", n / 1000, n % 1000));
            prop_assert_eq!(c.emoji(), [EMOJI[usize::from(h[0])], EMOJI[usize::from(h[2])], EMOJI[usize::from(h[4])], EMOJI[usize::from(h[6])]]);
        }

        #[test]
        fn matches_verified_never_panics(value in ".{0,40}") {
            let _ = Code::new(&peer(1), &peer(2)).matches_verified(&value);
        }
    }
}
