//! The messages of relay pairing, byte-compatible with Go peer-up
//! (`internal/relay/pairing.go`, `internal/relay/notify.go`).
//!
//! ## `/peerup/relay-pair/1.0.0` (WIRE.md §13), opened by the joiner on the relay
//! ```text
//! J->R  Request   [token: 16][u8 len <= 64][name]            then J half-closes
//! R->J  Response  [0x00][u8 len]["pairing failed"]                      failure
//!                 [0x01][u8 len][group ID][u8 group size][u8 peer count]  success
//!                 per peer: [u8 len][peer ID, raw multihash][u8 len][name]
//! ```
//! ## `/peerup/peer-notify/1.0.0` (WIRE.md §14), opened by the relay on a node
//! ```text
//! Introduction    [0x01][u8 len][group ID][u8 group size][u8 count]
//!                 per peer: [u16 BE len][peer ID, base58 text][u8 len][name]
//!                           [proof: 32 bytes, zero-padded]
//! ```
//!
//! ## Reading a message
//! Each message is the whole of its stream in one direction: the reader
//! reads to end of stream, at most `MAX_LEN + 1` bytes ([`Request::MAX_LEN`],
//! [`Response::MAX_LEN`], [`Introduction::MAX_LEN`]) under a deadline, and
//! calls `decode` once on what it read. A reader that wants to stop early
//! may call `decode` on what has arrived so far: an error whose
//! `is_truncated()` is true means "read more". `decode` is linear in the
//! input, never panics and allocates at most the message it returns.
//!
//! ## What a hostile side can send, and what the decoders refuse
//! - **A joiner to the relay** (the relay decodes [`Request`] from peers on
//!   probation, WIRE.md §13 "Enrollment"): at most [`Request::MAX_LEN`]
//!   (81) bytes are ever read; a name over [`MAX_NAME_LEN`] bytes, not
//!   UTF-8 or holding a control or bidirectional-text character (it becomes
//!   a comment in `relay_authorized_keys`, where a line break would forge a
//!   line) is refused, and so are bytes after the name.
//! - **A relay to a joiner** ([`Response`]) or **to a node**
//!   ([`Introduction`]): at most [`Response::MAX_LEN`] (255*300, Go's
//!   limit) or [`Introduction::MAX_LEN`] bytes; the group ID must be a
//!   [`GroupId`] (it becomes a `group=` attribute); every peer ID must be
//!   exactly one valid multihash in its canonical form (raw bytes in the
//!   answer, base58 text of at most
//!   [`MAX_PEER_ID_TEXT`] bytes in an
//!   introduction); names follow the rule above (at most 64 bytes in an
//!   answer, where they come from requests, 255 in an introduction, where
//!   they are the relay's `authorized_keys` comments); no peer may be listed
//!   twice; the count must be below the group size (which counts the
//!   receiver) and the group size above 0; nothing may follow the last peer
//!   (a count that disagrees with the data fails as truncated or as
//!   trailing bytes). A failure message must be printable ASCII, since the
//!   joiner shows it. Whether the listed peers may be trusted (a relay in
//!   the config, a known group, the group size against the known members)
//!   is the caller's decision, not the decoder's.
//!
//! Names are display text here, not yet [`Name`](crate::naming::Name)s:
//! the caller makes them valid and unique before they go into `names:`.
//!
//! The group proof ([`Proof`]) is `HMAC-SHA256(key = token, msg = group
//! ID)`: the relay keeps it for each joiner and sends it in introductions;
//! the joiner stores its own as `hmac_proof=<hex>` on the relay's line.

use core::fmt;
use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::PeerId;
use crate::authorized_keys::is_unsafe_char;
use crate::identity::{MAX_PEER_ID_TEXT, parse_peer_id_text};
use crate::invite::pairing_code::{PairingToken, TOKEN_LEN};

pub use crate::wire::protocol::{PEER_NOTIFY, RELAY_PAIR};

/// Longest name, in bytes, in a [`Request`] and in a [`Response`]'s peers
/// (Go's `maxNameLen`).
pub const MAX_NAME_LEN: usize = 64;

/// Longest name, in bytes, in an [`Introduction`]: the length byte's limit
/// (the names are the relay's `authorized_keys` comments).
pub const MAX_INTRODUCED_NAME_LEN: usize = u8::MAX as usize;

/// Bytes in a [`Proof`].
pub const PROOF_LEN: usize = 32;

/// The one failure message of the relay (WIRE.md §13): unknown, used,
/// burned and expired tokens all look the same to the joiner.
pub const FAILURE_MESSAGE: &str = "pairing failed";

/// Status byte of a failure [`Response`].
pub const STATUS_FAILED: u8 = 0x00;

/// Status byte of a success [`Response`].
pub const STATUS_PAIRED: u8 = 0x01;

/// Version byte of an [`Introduction`].
pub const INTRODUCTION_VERSION: u8 = 0x01;

/// Hex of `HMAC-SHA256`.
type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------
// Group ID

/// The ID of a pairing group: 1 to [`GroupId::MAX_LEN`] ASCII letters,
/// digits, `-`, `_` or `.`. The relay makes it from 4 random bytes in hex
/// (8 characters, as Go does); the rule keeps anything else out of the
/// `group=` attribute it becomes, of a terminal and of a shell command.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(String);

/// Why a text is not a [`GroupId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupIdError {
    /// No characters.
    #[error("group ID is empty")]
    Empty,
    /// More than [`GroupId::MAX_LEN`] bytes.
    #[error("group ID is {len} bytes; at most {} are allowed", GroupId::MAX_LEN)]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A byte outside `A-Z a-z 0-9 - _ .`.
    #[error(
        "group ID has byte 0x{byte:02x} at position {position}; only letters, digits, '-', '_' and '.' are allowed"
    )]
    InvalidByte {
        /// The byte.
        byte: u8,
        /// Its 1-based position.
        position: usize,
    },
}

impl GroupId {
    /// Longest group ID, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates a group ID.
    ///
    /// # Errors
    /// [`GroupIdError`] naming the first problem.
    pub fn new(text: &str) -> Result<Self, GroupIdError> {
        Self::from_bytes(text.as_bytes())
    }

    /// The group ID the relay makes from 4 random bytes: their lower-case
    /// hex (WIRE.md §13).
    pub fn from_random(bytes: [u8; 4]) -> Self {
        GroupId(hex(&bytes))
    }

    /// The group ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, GroupIdError> {
        if bytes.is_empty() {
            return Err(GroupIdError::Empty);
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(GroupIdError::TooLong { len: bytes.len() });
        }
        if let Some(i) = bytes
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        {
            return Err(GroupIdError::InvalidByte {
                byte: bytes[i],
                position: i + 1,
            });
        }
        // Only ASCII is left.
        Ok(GroupId(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl core::str::FromStr for GroupId {
    type Err = GroupIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupId::new(s)
    }
}

// ---------------------------------------------------------------------------
// Proof

/// The group proof: `HMAC-SHA256(key = token, msg = group ID)`, showing its
/// holder had a valid token of the group. Not a secret (the token cannot be
/// recovered from it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof([u8; PROOF_LEN]);

/// Why a text is not a [`Proof`] in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hmac_proof {text:?} is not 64 hex digits")]
pub struct ProofHexError {
    /// The rejected text (at most its first 80 characters).
    pub text: String,
}

impl Proof {
    /// The proof of `token` for `group`.
    pub fn compute(token: &PairingToken, group: &GroupId) -> Self {
        Proof(mac(token, group).finalize().into_bytes().into())
    }

    /// Whether this is the proof of `token` for `group`, in constant time.
    pub fn is_proof_of(&self, token: &PairingToken, group: &GroupId) -> bool {
        mac(token, group).verify_slice(&self.0).is_ok()
    }

    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; PROOF_LEN]) -> Self {
        Proof(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PROOF_LEN] {
        &self.0
    }

    /// Lower-case hex, the `hmac_proof=` value.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case), as stored in `hmac_proof=`.
    ///
    /// # Errors
    /// [`ProofHexError`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, ProofHexError> {
        let error = || ProofHexError {
            text: text.chars().take(80).collect(),
        };
        if text.len() != 2 * PROOF_LEN {
            return Err(error());
        }
        let mut out = [0u8; PROOF_LEN];
        for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let hi = hex_value(pair[0]).ok_or_else(error)?;
            let lo = hex_value(pair[1]).ok_or_else(error)?;
            *byte = hi << 4 | lo;
        }
        Ok(Proof(out))
    }
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proof({})", self.to_hex())
    }
}

impl fmt::Display for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn mac(token: &PairingToken, group: &GroupId) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    };
    mac.update(group.as_str().as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Names

/// Why a name on the wire is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// Longer than the message allows.
    #[error("name is {len} bytes; at most {max} are allowed")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit of the message.
        max: usize,
    },
    /// Not UTF-8.
    #[error("name is not UTF-8")]
    NotUtf8,
    /// A control character (line break, tab, escape...) or a
    /// bidirectional-text control.
    #[error(
        "name has {found:?} at position {position}; control and bidirectional-text characters are not allowed"
    )]
    ControlCharacter {
        /// The character.
        found: char,
        /// Its 1-based character position.
        position: usize,
    },
}

/// Checks a name's text: at most `max` bytes, no control or
/// bidirectional-text character (so it is a valid `authorized_keys`
/// comment, on one line).
fn check_name(name: &str, max: usize) -> Result<(), TextError> {
    if name.len() > max {
        return Err(TextError::TooLong {
            len: name.len(),
            max,
        });
    }
    match name
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || is_unsafe_char(*c))
    {
        Some((i, found)) => Err(TextError::ControlCharacter {
            found,
            position: i + 1,
        }),
        None => Ok(()),
    }
}

fn name_from_bytes(bytes: &[u8], max: usize) -> Result<String, TextError> {
    if bytes.len() > max {
        return Err(TextError::TooLong {
            len: bytes.len(),
            max,
        });
    }
    let text = core::str::from_utf8(bytes).map_err(|_| TextError::NotUtf8)?;
    check_name(text, max)?;
    Ok(text.to_owned())
}

// ---------------------------------------------------------------------------
// Errors

/// Why a message cannot be encoded (the caller's data breaks a rule the
/// decoder enforces; nothing is written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The joiner's name in a [`Request`].
    #[error("the name cannot be sent: {0}")]
    InvalidName(TextError),
    /// The name of a listed peer.
    #[error("the name of peer {index} ({peer}) cannot be sent: {error}")]
    InvalidPeerName {
        /// 0-based index in the list.
        index: usize,
        /// The peer.
        peer: PeerId,
        /// What is wrong.
        error: TextError,
    },
    /// A failure message that is not printable ASCII or is over 255 bytes.
    #[error("failure message {message:?} is not at most 255 bytes of printable ASCII")]
    InvalidMessage {
        /// The message.
        message: String,
    },
    /// Group size 0 (it counts the receiver).
    #[error("group size 0 cannot be sent; it counts the receiver")]
    GroupSizeZero,
    /// At least as many peers as the group size (which counts the receiver).
    #[error("{count} peers cannot be listed in a group of {group_size}")]
    TooManyPeers {
        /// The number of peers.
        count: usize,
        /// The group size.
        group_size: u8,
    },
    /// A peer listed twice.
    #[error("peer {peer} is listed twice")]
    DuplicatePeer {
        /// The peer.
        peer: PeerId,
    },
    /// A peer ID too long for its length field (never the case for
    /// Ed25519 or SHA-256 peer IDs).
    #[error("peer ID {peer} is too long for the message")]
    PeerIdTooLong {
        /// The peer.
        peer: PeerId,
    },
}

/// What is wrong with one listed peer of a [`Response`] or an
/// [`Introduction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The data ends inside the entry.
    #[error("truncated in the {field}")]
    Truncated {
        /// Which field was cut.
        field: &'static str,
    },
    /// The peer ID text of an introduction is longer than
    /// [`MAX_PEER_ID_TEXT`] bytes.
    #[error("peer ID is {len} bytes; at most {MAX_PEER_ID_TEXT} are allowed")]
    PeerIdTooLong {
        /// Its length field.
        len: usize,
    },
    /// The peer ID is not exactly one valid multihash in its canonical
    /// form (raw bytes in an answer, base58 text in an introduction).
    #[error("invalid peer ID")]
    InvalidPeerId,
    /// The name breaks the rule.
    #[error("{0}")]
    InvalidName(TextError),
    /// The peer was already listed.
    #[error("peer {peer} is listed twice")]
    Duplicate {
        /// The peer.
        peer: PeerId,
    },
}

/// Why the bytes of a pairing request are refused (by the relay).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The data ends inside a field.
    #[error("pairing request is truncated in the {field}")]
    Truncated {
        /// Which field was cut.
        field: &'static str,
    },
    /// The name breaks the rule.
    #[error("pairing request has an invalid name: {0}")]
    InvalidName(TextError),
    /// Bytes after the name.
    #[error("pairing request has {len} bytes after the name")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

/// Why the bytes of a pairing answer are refused (by the joiner).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// More than [`Response::MAX_LEN`] bytes.
    #[error("pairing answer is longer than {} bytes", Response::MAX_LEN)]
    TooLong {
        /// The length given.
        len: usize,
    },
    /// The data ends inside a field of the header.
    #[error("pairing answer is truncated in the {field}")]
    Truncated {
        /// Which field was cut.
        field: &'static str,
    },
    /// A status byte other than 0 (failed) or 1 (paired).
    #[error("pairing answer has unknown status 0x{status:02x}")]
    UnknownStatus {
        /// The status byte.
        status: u8,
    },
    /// The failure message is not printable ASCII.
    #[error("pairing failure message is not printable ASCII")]
    InvalidMessage,
    /// The group ID breaks its rule.
    #[error("pairing answer has an invalid group ID: {0}")]
    InvalidGroupId(GroupIdError),
    /// Group size 0.
    #[error("pairing answer has group size 0")]
    GroupSizeZero,
    /// At least as many peers as the group size, which counts the joiner.
    #[error("pairing answer lists {count} peers in a group of {group_size}")]
    TooManyPeers {
        /// The peer count.
        count: u8,
        /// The group size.
        group_size: u8,
    },
    /// A listed peer is invalid.
    #[error("pairing answer: peer {index}: {error}")]
    Peer {
        /// 0-based index in the list.
        index: usize,
        /// What is wrong.
        error: PeerError,
    },
    /// Bytes after the last peer (or after the failure message): the count
    /// and the data disagree.
    #[error("pairing answer has {len} bytes after its last field")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

/// Why the bytes of a peer introduction are refused (by the node).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntroductionError {
    /// More than [`Introduction::MAX_LEN`] bytes.
    #[error("peer introduction is longer than {} bytes", Introduction::MAX_LEN)]
    TooLong {
        /// The length given.
        len: usize,
    },
    /// The data ends inside a field of the header.
    #[error("peer introduction is truncated in the {field}")]
    Truncated {
        /// Which field was cut.
        field: &'static str,
    },
    /// A version byte other than 1.
    #[error("peer introduction has unsupported version 0x{version:02x}")]
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// The group ID breaks its rule.
    #[error("peer introduction has an invalid group ID: {0}")]
    InvalidGroupId(GroupIdError),
    /// Group size 0.
    #[error("peer introduction has group size 0")]
    GroupSizeZero,
    /// At least as many peers as the group size, which counts the receiver.
    #[error("peer introduction lists {count} peers in a group of {group_size}")]
    TooManyPeers {
        /// The peer count.
        count: u8,
        /// The group size.
        group_size: u8,
    },
    /// A listed peer is invalid.
    #[error("peer introduction: peer {index}: {error}")]
    Peer {
        /// 0-based index in the list.
        index: usize,
        /// What is wrong.
        error: PeerError,
    },
    /// Bytes after the last peer: the count and the data disagree.
    #[error("peer introduction has {len} bytes after its last peer")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

impl RequestError {
    /// Whether more bytes could make the request valid (read more, unless
    /// the stream has ended).
    pub fn is_truncated(&self) -> bool {
        matches!(self, RequestError::Truncated { .. })
    }
}

impl ResponseError {
    /// Whether more bytes could make the answer valid (read more, unless
    /// the stream has ended).
    pub fn is_truncated(&self) -> bool {
        matches!(
            self,
            ResponseError::Truncated { .. }
                | ResponseError::Peer {
                    error: PeerError::Truncated { .. },
                    ..
                }
        )
    }
}

impl IntroductionError {
    /// Whether more bytes could make the introduction valid (read more,
    /// unless the stream has ended).
    pub fn is_truncated(&self) -> bool {
        matches!(
            self,
            IntroductionError::Truncated { .. }
                | IntroductionError::Peer {
                    error: PeerError::Truncated { .. },
                    ..
                }
        )
    }
}

// ---------------------------------------------------------------------------
// Reading

/// A cursor over a message; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    fn u16(&mut self) -> Option<u16> {
        let (head, rest) = self.buf.split_first_chunk::<2>()?;
        self.buf = rest;
        Some(u16::from_be_bytes(*head))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.buf.get(..n)?;
        self.buf = &self.buf[n..];
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*head)
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }
}

/// Reads `[u8 len][group ID][u8 group size][u8 count]` and checks the
/// count against the size.
fn read_group_header(r: &mut Reader<'_>) -> Result<(GroupId, u8, u8), HeaderError> {
    let len = r.u8().ok_or(HeaderError::Truncated("group ID length"))?;
    let id = r
        .take(usize::from(len))
        .ok_or(HeaderError::Truncated("group ID"))?;
    let group = GroupId::from_bytes(id).map_err(HeaderError::GroupId)?;
    let group_size = r.u8().ok_or(HeaderError::Truncated("group size"))?;
    let count = r.u8().ok_or(HeaderError::Truncated("peer count"))?;
    if group_size == 0 {
        return Err(HeaderError::GroupSizeZero);
    }
    if count >= group_size {
        return Err(HeaderError::TooManyPeers { count, group_size });
    }
    Ok((group, group_size, count))
}

/// The errors of [`read_group_header`], mapped into each message's enum.
enum HeaderError {
    Truncated(&'static str),
    GroupId(GroupIdError),
    GroupSizeZero,
    TooManyPeers { count: u8, group_size: u8 },
}

impl From<HeaderError> for ResponseError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Truncated(field) => ResponseError::Truncated { field },
            HeaderError::GroupId(e) => ResponseError::InvalidGroupId(e),
            HeaderError::GroupSizeZero => ResponseError::GroupSizeZero,
            HeaderError::TooManyPeers { count, group_size } => {
                ResponseError::TooManyPeers { count, group_size }
            }
        }
    }
}

impl From<HeaderError> for IntroductionError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Truncated(field) => IntroductionError::Truncated { field },
            HeaderError::GroupId(e) => IntroductionError::InvalidGroupId(e),
            HeaderError::GroupSizeZero => IntroductionError::GroupSizeZero,
            HeaderError::TooManyPeers { count, group_size } => {
                IntroductionError::TooManyPeers { count, group_size }
            }
        }
    }
}

/// Checks a peer list for encoding: a size above 0, fewer peers than it,
/// no duplicates. Returns the count byte.
fn check_list<'a>(
    group_size: u8,
    peers: impl ExactSizeIterator<Item = &'a PeerId>,
) -> Result<u8, EncodeError> {
    if group_size == 0 {
        return Err(EncodeError::GroupSizeZero);
    }
    let count = peers.len();
    let byte = u8::try_from(count)
        .ok()
        .filter(|&c| c < group_size)
        .ok_or(EncodeError::TooManyPeers { count, group_size })?;
    let mut seen = BTreeSet::new();
    for peer in peers {
        if !seen.insert(peer) {
            return Err(EncodeError::DuplicatePeer { peer: *peer });
        }
    }
    Ok(byte)
}

fn push_group_header(out: &mut Vec<u8>, group: &GroupId, group_size: u8, count: u8) {
    // A group ID is at most 64 bytes.
    out.push(group.as_str().len() as u8);
    out.extend_from_slice(group.as_str().as_bytes());
    out.push(group_size);
    out.push(count);
}

// ---------------------------------------------------------------------------
// Request

/// J->R: the joiner's token and name (WIRE.md §13). The joiner half-closes
/// its write side after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The code's token (redacted from `Debug`).
    pub token: PairingToken,
    /// The joiner's name, may be empty: at most [`MAX_NAME_LEN`] bytes of
    /// UTF-8 without control characters.
    pub name: String,
}

impl Request {
    /// The longest request: token, length byte and a 64-byte name.
    pub const MAX_LEN: usize = TOKEN_LEN + 1 + MAX_NAME_LEN;

    /// The bytes of the request.
    ///
    /// # Errors
    /// [`EncodeError::InvalidName`] for a name over [`MAX_NAME_LEN`] bytes
    /// or with control characters (Go cuts a long name at 64 bytes, maybe
    /// inside a character; peerup refuses it instead).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        check_name(&self.name, MAX_NAME_LEN).map_err(EncodeError::InvalidName)?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(self.token.as_bytes());
        // At most 64, checked above.
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }

    /// The length of [`Request::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        TOKEN_LEN + 1 + self.name.len()
    }

    /// Parses a whole request (what the relay read until the joiner's
    /// half-close, at most [`Request::MAX_LEN`] + 1 bytes).
    ///
    /// # Errors
    /// [`RequestError`]: truncated, a name over [`MAX_NAME_LEN`] bytes,
    /// not UTF-8 or with control characters, or bytes after the name.
    pub fn decode(buf: &[u8]) -> Result<Self, RequestError> {
        let mut r = Reader { buf };
        let token = r
            .array::<TOKEN_LEN>()
            .ok_or(RequestError::Truncated { field: "token" })?;
        let token = PairingToken::from_bytes(token);
        let len = usize::from(r.u8().ok_or(RequestError::Truncated {
            field: "name length",
        })?);
        if len > MAX_NAME_LEN {
            return Err(RequestError::InvalidName(TextError::TooLong {
                len,
                max: MAX_NAME_LEN,
            }));
        }
        let name = r
            .take(len)
            .ok_or(RequestError::Truncated { field: "name" })?;
        let name = name_from_bytes(name, MAX_NAME_LEN).map_err(RequestError::InvalidName)?;
        if r.remaining() > 0 {
            return Err(RequestError::TrailingBytes { len: r.remaining() });
        }
        Ok(Request { token, name })
    }
}

// ---------------------------------------------------------------------------
// Response

/// R->J: the relay's answer (WIRE.md §13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `[0x00][u8 len][message]`: always [`FAILURE_MESSAGE`] from a relay,
    /// whatever went wrong.
    Failed {
        /// Printable ASCII, at most 255 bytes.
        message: String,
    },
    /// `[0x01]...`: paired.
    Paired(Paired),
}

/// A successful pairing: the group and the members that joined before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    /// The group, which becomes the `group=` attribute.
    pub group: GroupId,
    /// The number of codes in the group, the joiner included (above 0).
    pub group_size: u8,
    /// The members already paired, in the relay's order; fewer than
    /// `group_size`, none twice.
    pub peers: Vec<PairedPeer>,
}

/// A member listed in a [`Paired`] answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedPeer {
    /// Its peer ID (raw multihash bytes on the wire).
    pub peer: PeerId,
    /// The name it paired with, may be empty: at most [`MAX_NAME_LEN`]
    /// bytes, display text.
    pub name: String,
}

impl Response {
    /// The most a joiner reads: 255*300 bytes (Go's `ReadPairingResponse`
    /// limit). The longest valid answer (a 64-byte group ID, 254 peers
    /// with 44-byte IDs and 64-byte names) is about 27 KiB, so the limit
    /// only bounds a hostile relay.
    pub const MAX_LEN: usize = 255 * 300;

    /// The relay's one failure answer.
    pub fn failed() -> Self {
        Response::Failed {
            message: FAILURE_MESSAGE.to_owned(),
        }
    }

    /// The bytes of the answer.
    ///
    /// # Errors
    /// [`EncodeError`] when the answer breaks a rule [`Response::decode`]
    /// enforces: a failure message that is not printable ASCII, group
    /// size 0, as many peers as the group size, a peer listed twice, a
    /// name over [`MAX_NAME_LEN`] bytes or with control characters.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            Response::Failed { message } => {
                if message.len() > usize::from(u8::MAX) || !is_printable(message.as_bytes()) {
                    return Err(EncodeError::InvalidMessage {
                        message: message.clone(),
                    });
                }
                let mut out = Vec::with_capacity(2 + message.len());
                out.push(STATUS_FAILED);
                out.push(message.len() as u8);
                out.extend_from_slice(message.as_bytes());
                Ok(out)
            }
            Response::Paired(paired) => {
                let count = check_list(paired.group_size, paired.peers.iter().map(|p| &p.peer))?;
                let mut out = Vec::with_capacity(self.encoded_len());
                out.push(STATUS_PAIRED);
                push_group_header(&mut out, &paired.group, paired.group_size, count);
                for (index, p) in paired.peers.iter().enumerate() {
                    check_name(&p.name, MAX_NAME_LEN).map_err(|error| {
                        EncodeError::InvalidPeerName {
                            index,
                            peer: p.peer,
                            error,
                        }
                    })?;
                    let id = p.peer.to_bytes();
                    let id_len = u8::try_from(id.len())
                        .map_err(|_| EncodeError::PeerIdTooLong { peer: p.peer })?;
                    out.push(id_len);
                    out.extend_from_slice(&id);
                    out.push(p.name.len() as u8);
                    out.extend_from_slice(p.name.as_bytes());
                }
                Ok(out)
            }
        }
    }

    /// The length of [`Response::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Response::Failed { message } => 2 + message.len(),
            Response::Paired(paired) => {
                4 + paired.group.as_str().len()
                    + paired
                        .peers
                        .iter()
                        .map(|p| 2 + p.peer.to_bytes().len() + p.name.len())
                        .sum::<usize>()
            }
        }
    }

    /// Parses a whole answer (what the joiner read until the relay closed,
    /// at most [`Response::MAX_LEN`] + 1 bytes).
    ///
    /// # Errors
    /// [`ResponseError`] naming the first problem; see the module doc for
    /// what is refused.
    pub fn decode(buf: &[u8]) -> Result<Self, ResponseError> {
        if buf.len() > Self::MAX_LEN {
            return Err(ResponseError::TooLong { len: buf.len() });
        }
        let mut r = Reader { buf };
        let status = r.u8().ok_or(ResponseError::Truncated { field: "status" })?;
        let response = match status {
            STATUS_FAILED => {
                let len = r.u8().ok_or(ResponseError::Truncated {
                    field: "message length",
                })?;
                let message = r
                    .take(usize::from(len))
                    .ok_or(ResponseError::Truncated { field: "message" })?;
                if !is_printable(message) {
                    return Err(ResponseError::InvalidMessage);
                }
                Response::Failed {
                    // Printable ASCII, checked above.
                    message: String::from_utf8_lossy(message).into_owned(),
                }
            }
            STATUS_PAIRED => {
                let (group, group_size, count) = read_group_header(&mut r)?;
                let mut peers = Vec::with_capacity(usize::from(count));
                let mut seen = BTreeSet::new();
                for index in 0..usize::from(count) {
                    let p = read_paired_peer(&mut r, &mut seen)
                        .map_err(|error| ResponseError::Peer { index, error })?;
                    peers.push(p);
                }
                Response::Paired(Paired {
                    group,
                    group_size,
                    peers,
                })
            }
            status => return Err(ResponseError::UnknownStatus { status }),
        };
        if r.remaining() > 0 {
            return Err(ResponseError::TrailingBytes { len: r.remaining() });
        }
        Ok(response)
    }
}

fn is_printable(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..=0x7e).contains(b))
}

fn read_paired_peer(
    r: &mut Reader<'_>,
    seen: &mut BTreeSet<PeerId>,
) -> Result<PairedPeer, PeerError> {
    let len = r.u8().ok_or(PeerError::Truncated {
        field: "peer ID length",
    })?;
    let raw = r
        .take(usize::from(len))
        .ok_or(PeerError::Truncated { field: "peer ID" })?;
    // `from_bytes` refuses trailing bytes; the round trip refuses another
    // encoding of the same ID.
    let peer = PeerId::from_bytes(raw)
        .ok()
        .filter(|p| p.to_bytes() == raw)
        .ok_or(PeerError::InvalidPeerId)?;
    let name = read_name(r, MAX_NAME_LEN)?;
    if !seen.insert(peer) {
        return Err(PeerError::Duplicate { peer });
    }
    Ok(PairedPeer { peer, name })
}

fn read_name(r: &mut Reader<'_>, max: usize) -> Result<String, PeerError> {
    let len = r.u8().ok_or(PeerError::Truncated {
        field: "name length",
    })?;
    let len = usize::from(len);
    if len > max {
        return Err(PeerError::InvalidName(TextError::TooLong { len, max }));
    }
    let name = r.take(len).ok_or(PeerError::Truncated { field: "name" })?;
    name_from_bytes(name, max).map_err(PeerError::InvalidName)
}

// ---------------------------------------------------------------------------
// Introduction

/// Relay -> node: members of a group the node is in (WIRE.md §14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduction {
    /// The group.
    pub group: GroupId,
    /// The number of members, the receiver included (above 0; Go counts
    /// the relay's `authorized_keys` lines with this group).
    pub group_size: u8,
    /// The members introduced; fewer than `group_size`, none twice.
    pub peers: Vec<IntroducedPeer>,
}

/// A member listed in an [`Introduction`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroducedPeer {
    /// Its peer ID (base58 text on the wire).
    pub peer: PeerId,
    /// Its name on the relay (the comment of its line), may be empty: at
    /// most [`MAX_INTRODUCED_NAME_LEN`] bytes, display text.
    pub name: String,
    /// Its group proof; `None` is written as 32 zero bytes, and 32 zero
    /// bytes read as `None` (the relay no longer holds the proof, or never
    /// did).
    pub proof: Option<Proof>,
}

impl Introduction {
    /// The longest valid introduction, and the most a node reads: a 64-byte
    /// group ID and 255 peers, each with a 128-byte ID text, a 255-byte
    /// name and the proof (106,658 bytes; Go reads without a bound).
    pub const MAX_LEN: usize = 4
        + GroupId::MAX_LEN
        + 255 * (2 + MAX_PEER_ID_TEXT + 1 + MAX_INTRODUCED_NAME_LEN + PROOF_LEN);

    /// The bytes of the introduction.
    ///
    /// # Errors
    /// [`EncodeError`] when the introduction breaks a rule
    /// [`Introduction::decode`] enforces: group size 0, as many peers as
    /// the group size, a peer listed twice, a name over
    /// [`MAX_INTRODUCED_NAME_LEN`] bytes or with control characters.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let count = check_list(self.group_size, self.peers.iter().map(|p| &p.peer))?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(INTRODUCTION_VERSION);
        push_group_header(&mut out, &self.group, self.group_size, count);
        for (index, p) in self.peers.iter().enumerate() {
            check_name(&p.name, MAX_INTRODUCED_NAME_LEN).map_err(|error| {
                EncodeError::InvalidPeerName {
                    index,
                    peer: p.peer,
                    error,
                }
            })?;
            let id = p.peer.to_base58();
            if id.len() > MAX_PEER_ID_TEXT {
                return Err(EncodeError::PeerIdTooLong { peer: p.peer });
            }
            // At most 128, checked above.
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id.as_bytes());
            out.push(p.name.len() as u8);
            out.extend_from_slice(p.name.as_bytes());
            let proof: &[u8; PROOF_LEN] = p.proof.as_ref().map_or(&[0; PROOF_LEN], Proof::as_bytes);
            out.extend_from_slice(proof);
        }
        Ok(out)
    }

    /// The length of [`Introduction::encode`]'s bytes.
    pub fn encoded_len(&self) -> usize {
        4 + self.group.as_str().len()
            + self
                .peers
                .iter()
                .map(|p| 2 + p.peer.to_base58().len() + 1 + p.name.len() + PROOF_LEN)
                .sum::<usize>()
    }

    /// Parses a whole introduction (what the node read until the relay
    /// closed, at most [`Introduction::MAX_LEN`] + 1 bytes).
    ///
    /// # Errors
    /// [`IntroductionError`] naming the first problem; see the module doc
    /// for what is refused.
    pub fn decode(buf: &[u8]) -> Result<Self, IntroductionError> {
        if buf.len() > Self::MAX_LEN {
            return Err(IntroductionError::TooLong { len: buf.len() });
        }
        let mut r = Reader { buf };
        let version = r
            .u8()
            .ok_or(IntroductionError::Truncated { field: "version" })?;
        if version != INTRODUCTION_VERSION {
            return Err(IntroductionError::UnsupportedVersion { version });
        }
        let (group, group_size, count) = read_group_header(&mut r)?;
        let mut peers = Vec::with_capacity(usize::from(count));
        let mut seen = BTreeSet::new();
        for index in 0..usize::from(count) {
            let p = read_introduced_peer(&mut r, &mut seen)
                .map_err(|error| IntroductionError::Peer { index, error })?;
            peers.push(p);
        }
        if r.remaining() > 0 {
            return Err(IntroductionError::TrailingBytes { len: r.remaining() });
        }
        Ok(Introduction {
            group,
            group_size,
            peers,
        })
    }
}

fn read_introduced_peer(
    r: &mut Reader<'_>,
    seen: &mut BTreeSet<PeerId>,
) -> Result<IntroducedPeer, PeerError> {
    let len = r.u16().ok_or(PeerError::Truncated {
        field: "peer ID length",
    })?;
    let len = usize::from(len);
    if len > MAX_PEER_ID_TEXT {
        return Err(PeerError::PeerIdTooLong { len });
    }
    let text = r
        .take(len)
        .ok_or(PeerError::Truncated { field: "peer ID" })?;
    // Base58 is ASCII; the round trip refuses any other spelling.
    let peer = core::str::from_utf8(text)
        .ok()
        .and_then(|t| parse_peer_id_text(t).filter(|p| p.to_base58() == t))
        .ok_or(PeerError::InvalidPeerId)?;
    let name = read_name(r, MAX_INTRODUCED_NAME_LEN)?;
    let proof = r
        .array::<PROOF_LEN>()
        .ok_or(PeerError::Truncated { field: "proof" })?;
    if !seen.insert(peer) {
        return Err(PeerError::Duplicate { peer });
    }
    Ok(IntroducedPeer {
        peer,
        name,
        proof: (proof != [0; PROOF_LEN]).then_some(Proof(proof)),
    })
}

#[cfg(test)]
mod tests;
