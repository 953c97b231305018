//! The `authorized_keys` document (WIRE.md §7): parse, query, edit, render.
//!
//! ## Format
//! One peer per line, SSH style:
//!
//! ```text
//! # File: authorized_keys
//! 12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL  # my-laptop
//! 12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA  expires=2026-12-31T23:59:59Z  group=phones  # my-phone
//! ```
//!
//! - A line is split off at `\n`; a `\r` right before it belongs to the
//!   terminator (`\r\n`). The last line may have no terminator.
//! - Each line is trimmed of ASCII whitespace for parsing. An empty line is
//!   [`LineKind::Blank`]; a line starting with `#` is [`LineKind::Comment`].
//! - Otherwise the first `#` starts the comment (its text is what follows,
//!   trimmed; an empty comment is no comment). What comes before it is split
//!   on ASCII whitespace: the first token is the peer ID (base58, such as
//!   `12D3KooW...`), every other token is `key=value`. A key is
//!   `[a-z0-9_-]+`; a value is not empty and holds no whitespace, `#`,
//!   control character or bidirectional-text control.
//! - Known attributes: [`EXPIRES`] (RFC 3339), [`VERIFIED`]
//!   (`sha256:` and 8 hex digits), [`GROUP`] and [`HMAC_PROOF`] (any valid
//!   value). Unknown attributes are kept, in their order.
//! - A line that breaks a rule is [`LineKind::Invalid`] and keeps its
//!   [`LineError`] with its 1-based line number. A peer ID listed a second
//!   time makes the second line invalid ([`LineError::DuplicatePeer`]).
//!
//! ## One parser for validate, load and list
//! [`Document::parse`] never fails and never panics: every line is
//! classified and kept. `peerup auth validate` and the loaders use
//! [`Document::parse_strict`], which returns every bad line at once
//! ([`InvalidLines`]); `peerup auth list` uses [`Document::parse`] and shows
//! [`Document::errors`] beside the entries.
//!
//! ## Authorization and the expiry boundary
//! [`Document::status`] decides, and [`Document::is_authorized`] and
//! [`Document::authorized_peers`] follow it. A peer is authorized at `now`
//! iff it has a valid entry, no invalid line names it, and the entry has no
//! `expires` or `now < expires`: **at `now == expires` the entry has
//! expired**. Invalid lines never authorize anybody, and a peer named on an
//! invalid line (a duplicate, a typo in `expires=`) is denied even if
//! another line for it is valid: an ambiguous file fails closed. The time is
//! an argument; this module never reads a clock.
//!
//! ## Edits keep the file
//! [`Document::add`], [`Document::remove`], [`Document::set_attribute`],
//! [`Document::set_expires`], [`Document::remove_attribute`] and
//! [`Document::set_comment`] change only the line of the peer they name.
//! Every other line (comments, blank lines, invalid lines, unknown
//! attributes, odd spacing, `\r\n` or `\n` terminators) is rendered back
//! byte for byte by [`Document::render`], and `render(parse(s)) == s` for
//! every string `s`. An edited line is written canonically by
//! [`render_entry`]: the peer ID, then two spaces before each `key=value`
//! in the fixed order `expires`, `verified`, `group`, `hmac_proof`, then
//! unknown keys in their existing order, then two spaces before `# comment`.
//! An `expires` value keeps its original text unless it is changed.
//! [`Document::add`] appends, first giving a last line that lacks a
//! terminator one, and uses `\r\n` when most of the file's lines do.
//! After every edit the document equals `Document::parse(&doc.render())`.
//!
//! ## How callers use it
//! The adapter reads the file, calls [`Document::parse`] (or
//! [`Document::parse_strict`]), edits the document, calls
//! [`Document::render`] and replaces the file atomically (temporary file in
//! the same directory, fsync, rename). This module never touches a file.

use std::collections::{BTreeMap, BTreeSet};

use crate::PeerId;
use crate::time::UnixTime;

/// The `expires` attribute: an RFC 3339 time at which the entry stops
/// authorizing its peer.
pub const EXPIRES: &str = "expires";
/// The `verified` attribute: `sha256:` followed by 8 hex digits.
pub const VERIFIED: &str = "verified";
/// The `group` attribute.
pub const GROUP: &str = "group";
/// The `hmac_proof` attribute.
pub const HMAC_PROOF: &str = "hmac_proof";

/// The earliest instant RFC 3339 can write: 0000-01-01T00:00:00Z.
const MIN_RFC3339: UnixTime = UnixTime::from_secs(-62_167_219_200);
/// The latest instant RFC 3339 can write: 9999-12-31T23:59:59.999Z.
const MAX_RFC3339: UnixTime = UnixTime::from_millis(253_402_300_799_999);

// ---------------------------------------------------------------------------
// Errors

/// Why an attribute (`key=value`) is not valid, in a file or in an edit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The key is empty (`=value`).
    #[error("attribute \"={value}\" has no key (expected key=value, like group=home)")]
    EmptyKey {
        /// The value that had no key.
        value: String,
    },
    /// The key has a character outside `a-z`, `0-9`, `_` and `-`.
    #[error("attribute key {key:?} may only use lowercase letters, digits, '_' and '-'")]
    InvalidKey {
        /// The rejected key.
        key: String,
    },
    /// The value is empty (`key=`).
    #[error("attribute {key:?} has an empty value (expected {key}=value)")]
    EmptyValue {
        /// The key whose value is empty.
        key: String,
    },
    /// The value holds whitespace, `#`, a control character or a
    /// bidirectional-text control.
    #[error(
        "value {value:?} of attribute {key:?} must not contain whitespace, '#' or control characters"
    )]
    InvalidValue {
        /// The key.
        key: String,
        /// The rejected value.
        value: String,
    },
    /// `expires` is not an RFC 3339 time.
    #[error("expires={value:?} is not an RFC 3339 time (like 2026-12-31T23:59:59Z)")]
    InvalidExpires {
        /// The rejected value.
        value: String,
    },
    /// `verified` is not `sha256:` followed by 8 hex digits.
    #[error("verified={value:?} is not sha256: followed by 8 hex digits (like sha256:1a2b3c4d)")]
    InvalidVerified {
        /// The rejected value.
        value: String,
    },
    /// A key that reads like `expires` misspelled. Unknown keys are kept,
    /// but this one would silently authorize the peer forever.
    #[error(
        "attribute {key:?} looks like a misspelled `expires` (it would never expire); write expires=<RFC 3339 time>"
    )]
    LooksLikeExpires {
        /// The rejected key.
        key: String,
    },
}

/// Why one line of an `authorized_keys` file is invalid. Every variant
/// carries the 1-based line number ([`LineError::line`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineError {
    /// The first token is not a peer ID.
    #[error("line {line}: {text:?} is not a valid peer ID (expected base58 like 12D3KooW...)")]
    InvalidPeerId {
        /// 1-based line number.
        line: usize,
        /// The rejected token.
        text: String,
    },
    /// A token after the peer ID has no `=`.
    #[error(
        "line {line}: {token:?} is not a key=value attribute (like group=home); comments go after '#'"
    )]
    MissingEquals {
        /// 1-based line number.
        line: usize,
        /// The rejected token.
        token: String,
    },
    /// An attribute is not valid.
    #[error("line {line}: {error}")]
    Attribute {
        /// 1-based line number.
        line: usize,
        /// What is wrong with the attribute.
        error: AttributeError,
    },
    /// The same attribute key appears twice on the line.
    #[error("line {line}: attribute {key:?} appears more than once")]
    DuplicateAttribute {
        /// 1-based line number.
        line: usize,
        /// The repeated key.
        key: String,
    },
    /// The peer ID was already listed on an earlier line.
    #[error("line {line}: peer {peer} is already listed on line {first_line}")]
    DuplicatePeer {
        /// 1-based line number of this (second) listing.
        line: usize,
        /// The repeated peer.
        peer: PeerId,
        /// 1-based line number of the first listing.
        first_line: usize,
    },
}

impl LineError {
    /// The 1-based number of the bad line.
    pub fn line(&self) -> usize {
        match self {
            LineError::InvalidPeerId { line, .. }
            | LineError::MissingEquals { line, .. }
            | LineError::Attribute { line, .. }
            | LineError::DuplicateAttribute { line, .. }
            | LineError::DuplicatePeer { line, .. } => *line,
        }
    }
}

/// Every bad line of a document, in line order (never empty), from
/// [`Document::parse_strict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe_lines(.errors))]
pub struct InvalidLines {
    errors: Vec<LineError>,
}

impl InvalidLines {
    /// The errors, one per bad line, in line order.
    pub fn errors(&self) -> &[LineError] {
        &self.errors
    }

    /// The errors, one per bad line, in line order.
    pub fn into_errors(self) -> Vec<LineError> {
        self.errors
    }
}

fn describe_lines(errors: &[LineError]) -> String {
    let list = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    match errors.len() {
        1 => format!("1 invalid line: {list}"),
        n => format!("{n} invalid lines: {list}"),
    }
}

/// A comment that cannot be written: it would span lines or hide text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("comment {comment:?} must be a single line without control characters")]
pub struct CommentError {
    /// The rejected comment.
    pub comment: String,
}

/// Why an edit of a [`Document`] was refused. The document is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// [`Document::add`] of a peer that a line already names.
    #[error("peer {peer} is already in authorized_keys (line {line})")]
    AlreadyPresent {
        /// The peer.
        peer: PeerId,
        /// 1-based number of the first line naming it.
        line: usize,
    },
    /// No line names the peer.
    #[error("peer {peer} is not in authorized_keys")]
    NotFound {
        /// The peer.
        peer: PeerId,
    },
    /// The peer is named only on an invalid line, which cannot be edited
    /// safely (it can be removed).
    #[error("peer {peer} cannot be edited: {error}; fix or remove that line first")]
    InvalidLine {
        /// The peer.
        peer: PeerId,
        /// The error of the first invalid line naming the peer.
        error: Box<LineError>,
    },
    /// The attribute is not valid.
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// The comment is not valid.
    #[error(transparent)]
    Comment(#[from] CommentError),
}

// ---------------------------------------------------------------------------
// Attributes

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expires {
    at: UnixTime,
    /// The text as written, so an unchanged value is written back as it was.
    text: String,
}

/// The `key=value` attributes of an entry. Every value held is valid:
/// attributes are only set through the same checks the parser applies.
///
/// [`Attributes::iter`] yields them in the canonical order: `expires`,
/// `verified`, `group`, `hmac_proof`, then unknown keys in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    expires: Option<Expires>,
    verified: Option<String>,
    group: Option<String>,
    hmac_proof: Option<String>,
    unknown: Vec<(String, String)>,
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// `self` with `key=value` set.
    ///
    /// # Errors
    /// [`AttributeError`] as for [`Attributes::set`].
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, AttributeError> {
        self.set(key, value)?;
        Ok(self)
    }

    /// `self` with `expires` set to `at` (see [`Attributes::set_expires`]).
    pub fn with_expires(mut self, at: UnixTime) -> Self {
        self.set_expires(at);
        self
    }

    /// Sets `key=value` after the checks of the parser, and returns the
    /// previous value. An unknown key keeps its position if already present,
    /// else goes last.
    ///
    /// # Errors
    /// [`AttributeError`] for an empty or malformed key, an empty value, a
    /// value with whitespace, `#` or control characters, an `expires` that
    /// is not RFC 3339 or a `verified` that is not `sha256:` and 8 hex
    /// digits. `self` is unchanged then.
    pub fn set(&mut self, key: &str, value: &str) -> Result<Option<String>, AttributeError> {
        validate_key(key, value)?;
        validate_value(key, value)?;
        let owned = value.to_owned();
        Ok(match key {
            EXPIRES => {
                let at =
                    UnixTime::parse_rfc3339(value).map_err(|_| AttributeError::InvalidExpires {
                        value: owned.clone(),
                    })?;
                self.expires
                    .replace(Expires { at, text: owned })
                    .map(|e| e.text)
            }
            VERIFIED => {
                if !is_verified(value) {
                    return Err(AttributeError::InvalidVerified { value: owned });
                }
                self.verified.replace(owned)
            }
            GROUP => self.group.replace(owned),
            HMAC_PROOF => self.hmac_proof.replace(owned),
            _ => match self.unknown.iter_mut().find(|(k, _)| k == key) {
                Some((_, slot)) => Some(core::mem::replace(slot, owned)),
                None => {
                    self.unknown.push((key.to_owned(), owned));
                    None
                }
            },
        })
    }

    /// Sets `expires` to `at`, written as [`UnixTime::to_rfc3339`], and
    /// returns the previous instant. If `expires` already names the same
    /// instant its text is kept. An instant outside what RFC 3339 can write
    /// (years 0000 to 9999) is clamped to that range.
    pub fn set_expires(&mut self, at: UnixTime) -> Option<UnixTime> {
        let at = at.clamp(MIN_RFC3339, MAX_RFC3339);
        let previous = self.expires();
        if previous != Some(at) {
            self.expires = Some(Expires {
                at,
                text: at.to_rfc3339(),
            });
        }
        previous
    }

    /// Removes `key` and returns its value, if it was set.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        match key {
            EXPIRES => self.expires.take().map(|e| e.text),
            VERIFIED => self.verified.take(),
            GROUP => self.group.take(),
            HMAC_PROOF => self.hmac_proof.take(),
            _ => {
                let index = self.unknown.iter().position(|(k, _)| k == key)?;
                Some(self.unknown.remove(index).1)
            }
        }
    }

    /// The value of `key` as written.
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            EXPIRES => self.expires_text(),
            VERIFIED => self.verified(),
            GROUP => self.group(),
            HMAC_PROOF => self.hmac_proof(),
            _ => self
                .unknown
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// When the entry expires.
    pub fn expires(&self) -> Option<UnixTime> {
        self.expires.as_ref().map(|e| e.at)
    }

    /// The `expires` value as written.
    pub fn expires_text(&self) -> Option<&str> {
        self.expires.as_ref().map(|e| e.text.as_str())
    }

    /// The `verified` value (`sha256:` and 8 hex digits).
    pub fn verified(&self) -> Option<&str> {
        self.verified.as_deref()
    }

    /// The `group` value.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The `hmac_proof` value.
    pub fn hmac_proof(&self) -> Option<&str> {
        self.hmac_proof.as_deref()
    }

    /// The unknown attributes, in their order.
    pub fn unknown(&self) -> impl Iterator<Item = (&str, &str)> {
        self.unknown.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every attribute as `(key, value)`, in the canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let known = [
            (EXPIRES, self.expires_text()),
            (VERIFIED, self.verified()),
            (GROUP, self.group()),
            (HMAC_PROOF, self.hmac_proof()),
        ];
        known
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .chain(self.unknown())
    }

    /// The number of attributes.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// Edit distance between two short ASCII keys.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn validate_key(key: &str, value: &str) -> Result<(), AttributeError> {
    if key.is_empty() {
        return Err(AttributeError::EmptyKey {
            value: value.to_owned(),
        });
    }
    if !key
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
    {
        return Err(AttributeError::InvalidKey {
            key: key.to_owned(),
        });
    }
    if key != EXPIRES
        && key.len() <= 16
        && (key.starts_with("expir") || distance(key, EXPIRES) <= 2)
    {
        return Err(AttributeError::LooksLikeExpires {
            key: key.to_owned(),
        });
    }
    Ok(())
}

fn validate_value(key: &str, value: &str) -> Result<(), AttributeError> {
    if value.is_empty() {
        return Err(AttributeError::EmptyValue {
            key: key.to_owned(),
        });
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || c == '#' || is_unsafe_char(c))
    {
        return Err(AttributeError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

fn is_verified(value: &str) -> bool {
    value
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Characters never written by an edit: line breaks and other control
/// characters (tab aside), and the bidirectional-text controls that can make
/// a line display differently from what it says.
fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Checks a comment for writing and normalizes it: trimmed, and no comment
/// when empty.
fn normalize_comment(comment: Option<&str>) -> Result<Option<&str>, CommentError> {
    let Some(comment) = comment else {
        return Ok(None);
    };
    if comment.chars().any(is_unsafe_char) {
        return Err(CommentError {
            comment: comment.to_owned(),
        });
    }
    let trimmed = comment.trim_ascii();
    Ok((!trimmed.is_empty()).then_some(trimmed))
}

// ---------------------------------------------------------------------------
// Entries and lines

/// A valid entry: a peer, its attributes and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    peer: PeerId,
    line: usize,
    attributes: Attributes,
    comment: Option<String>,
}

impl Entry {
    /// The authorized peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The 1-based line number of the entry.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The attributes.
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// When the entry expires, if it does.
    pub fn expires(&self) -> Option<UnixTime> {
        self.attributes.expires()
    }

    /// The comment (text after `#`, trimmed), if not empty.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Whether the entry has expired at `now` (`now >= expires`).
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires().is_some_and(|expires| now >= expires)
    }

    /// The entry written canonically, without a line terminator (as
    /// [`render_entry`] writes it).
    pub fn to_line(&self) -> String {
        render_canonical(&self.peer, &self.attributes, self.comment.as_deref())
    }
}

/// Writes an entry line canonically, without a line terminator: the peer
/// ID, two spaces before each `key=value` in the order of
/// [`Attributes::iter`], then two spaces before `# comment`. The comment is
/// trimmed; an empty one is left out.
///
/// ```text
/// 12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL  expires=2026-12-31T23:59:59Z  # my-laptop
/// ```
///
/// # Errors
/// [`CommentError`] if the comment holds a line break, another control
/// character (tab aside) or a bidirectional-text control.
pub fn render_entry(
    peer: &PeerId,
    attributes: &Attributes,
    comment: Option<&str>,
) -> Result<String, CommentError> {
    Ok(render_canonical(
        peer,
        attributes,
        normalize_comment(comment)?,
    ))
}

fn render_canonical(peer: &PeerId, attributes: &Attributes, comment: Option<&str>) -> String {
    let mut line = peer.to_string();
    for (key, value) in attributes.iter() {
        line.push_str("  ");
        line.push_str(key);
        line.push('=');
        line.push_str(value);
    }
    if let Some(comment) = comment.filter(|c| !c.is_empty()) {
        line.push_str("  # ");
        line.push_str(comment);
    }
    line
}

/// How a line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`.
    Lf,
    /// `\r\n`.
    CrLf,
    /// No terminator: the last line of a file without a trailing newline.
    Missing,
}

impl LineEnding {
    /// The terminator's text (empty for [`LineEnding::Missing`]).
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::Missing => "",
        }
    }
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or whitespace only.
    Blank,
    /// Starts with `#` once trimmed.
    Comment,
    /// A valid entry.
    Entry(Box<Entry>),
    /// A line that breaks a rule; it authorizes nobody.
    Invalid {
        /// The peer ID of the line, when its first token is one.
        peer: Option<PeerId>,
        /// What is wrong.
        error: LineError,
    },
}

/// One line of the document, with its exact text and terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    number: usize,
    text: String,
    ending: LineEnding,
    kind: LineKind,
}

impl Line {
    /// The 1-based line number.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The exact text, without the terminator.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The terminator.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    /// What the line is.
    pub fn kind(&self) -> &LineKind {
        &self.kind
    }

    /// The valid entry on this line, if it is one.
    pub fn entry(&self) -> Option<&Entry> {
        match &self.kind {
            LineKind::Entry(entry) => Some(entry),
            _ => None,
        }
    }

    /// The error of this line, if it is invalid.
    pub fn error(&self) -> Option<&LineError> {
        match &self.kind {
            LineKind::Invalid { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The peer the line names, valid or not.
    pub fn peer(&self) -> Option<PeerId> {
        match &self.kind {
            LineKind::Entry(entry) => Some(entry.peer),
            LineKind::Invalid { peer, .. } => *peer,
            LineKind::Blank | LineKind::Comment => None,
        }
    }
}

/// The lines removed by [`Document::remove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    lines: Vec<Line>,
}

impl Removed {
    /// The valid entry removed, if the peer had one.
    pub fn entry(&self) -> Option<&Entry> {
        self.lines.iter().find_map(Line::entry)
    }

    /// Every removed line (the entry and any invalid line naming the peer),
    /// with its line number before the removal.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

/// Whether a peer may connect, and why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A valid entry that has not expired.
    Authorized,
    /// A valid entry whose `expires` is at or before `now`.
    Expired {
        /// When it expired.
        at: UnixTime,
    },
    /// The peer is named on an invalid line; it is denied even if another
    /// line for it is valid.
    Invalid {
        /// 1-based number of the first invalid line naming the peer.
        line: usize,
    },
    /// No line names the peer.
    NotListed,
}

// ---------------------------------------------------------------------------
// The document

/// A parsed `authorized_keys` file: every line, classified, with its exact
/// text. See the [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    lines: Vec<Line>,
}

impl Document {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a document. Never fails: bad lines become
    /// [`LineKind::Invalid`] (see [`Document::errors`]).
    pub fn parse(text: &str) -> Self {
        let mut first_seen = BTreeMap::new();
        let lines = split_lines(text)
            .enumerate()
            .map(|(index, (content, ending))| {
                let number = index + 1;
                Line {
                    number,
                    text: content.to_owned(),
                    ending,
                    kind: classify(content, number, &mut first_seen),
                }
            })
            .collect();
        Document { lines }
    }

    /// Parses a document in which every line must be valid (for
    /// `peerup auth validate` and loading).
    ///
    /// # Errors
    /// [`InvalidLines`] holding the error of every bad line.
    pub fn parse_strict(text: &str) -> Result<Self, InvalidLines> {
        let document = Self::parse(text);
        let errors: Vec<LineError> = document.errors().cloned().collect();
        if errors.is_empty() {
            Ok(document)
        } else {
            Err(InvalidLines { errors })
        }
    }

    /// The document as text: every line's exact text and terminator.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.text.len() + 2).sum());
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// Every line, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// The valid entries, in line order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(Line::entry)
    }

    /// The error of every invalid line, in line order.
    pub fn errors(&self) -> impl Iterator<Item = &LineError> {
        self.lines.iter().filter_map(Line::error)
    }

    /// Whether every line is valid.
    pub fn is_valid(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The number of valid entries.
    pub fn len(&self) -> usize {
        self.entries().count()
    }

    /// Whether there is no valid entry.
    pub fn is_empty(&self) -> bool {
        self.entries().next().is_none()
    }

    /// The valid entry for `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.entries().find(|e| e.peer == *peer)
    }

    /// Whether `peer` has a valid entry (expired or not). A peer named only
    /// on invalid lines is not contained, yet [`Document::add`] refuses it.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.get(peer).is_some()
    }

    /// Whether `peer` may connect at `now`, and why not. See the module
    /// documentation for the rules and the expiry boundary.
    pub fn status(&self, peer: &PeerId, now: UnixTime) -> Status {
        if let Some(line) = self
            .lines
            .iter()
            .find(|l| l.error().is_some() && l.peer() == Some(*peer))
        {
            return Status::Invalid { line: line.number };
        }
        match self.get(peer) {
            None => Status::NotListed,
            Some(entry) => match entry.expires() {
                Some(at) if now >= at => Status::Expired { at },
                _ => Status::Authorized,
            },
        }
    }

    /// Whether `peer` is authorized at `now`: it has a valid entry, no
    /// invalid line names it, and `now < expires` if the entry expires.
    pub fn is_authorized(&self, peer: &PeerId, now: UnixTime) -> bool {
        self.status(peer, now) == Status::Authorized
    }

    /// Every peer authorized at `now` (as [`Document::is_authorized`]).
    pub fn authorized_peers(&self, now: UnixTime) -> BTreeSet<PeerId> {
        let tainted: BTreeSet<PeerId> = self
            .lines
            .iter()
            .filter(|l| l.error().is_some())
            .filter_map(Line::peer)
            .collect();
        self.entries()
            .filter(|e| !e.is_expired(now) && !tainted.contains(&e.peer))
            .map(Entry::peer)
            .collect()
    }

    /// The valid entries that have expired at `now`, in line order.
    pub fn expired(&self, now: UnixTime) -> impl Iterator<Item = &Entry> {
        self.entries().filter(move |e| e.is_expired(now))
    }

    /// Appends an entry for `peer`, written by [`render_entry`]. If the last
    /// line lacks a terminator it gets one first. The new line ends with
    /// `\r\n` when most lines of the document do, else `\n`.
    ///
    /// # Errors
    /// [`EditError::AlreadyPresent`] if any line (valid or not) names
    /// `peer`; [`EditError::Comment`] for a comment [`render_entry`]
    /// refuses.
    pub fn add(
        &mut self,
        peer: PeerId,
        attributes: Attributes,
        comment: Option<&str>,
    ) -> Result<(), EditError> {
        if let Some(line) = self.lines.iter().find(|l| l.peer() == Some(peer)) {
            return Err(EditError::AlreadyPresent {
                peer,
                line: line.number,
            });
        }
        let text = render_entry(&peer, &attributes, comment)?;
        let ending = self.preferred_ending();
        if let Some(last) = self.lines.last_mut()
            && last.ending == LineEnding::Missing
        {
            last.ending = ending;
        }
        self.lines.push(Line {
            number: 0,
            text,
            ending,
            kind: LineKind::Blank,
        });
        self.reparse();
        Ok(())
    }

    /// Removes every line naming `peer`: its entry and any invalid line
    /// (such as a duplicate), so the peer cannot resurface. Other lines are
    /// kept byte for byte.
    ///
    /// # Errors
    /// [`EditError::NotFound`] if no line names `peer`.
    pub fn remove(&mut self, peer: &PeerId) -> Result<Removed, EditError> {
        if !self.lines.iter().any(|l| l.peer() == Some(*peer)) {
            return Err(EditError::NotFound { peer: *peer });
        }
        let (removed, kept) = core::mem::take(&mut self.lines)
            .into_iter()
            .partition(|l| l.peer() == Some(*peer));
        self.lines = kept;
        self.reparse();
        Ok(Removed { lines: removed })
    }

    /// Sets `key=value` on the entry of `peer` and returns the previous
    /// value. The line is rewritten canonically unless nothing changes.
    ///
    /// # Errors
    /// [`EditError::NotFound`], [`EditError::InvalidLine`] (the peer is only
    /// on an invalid line), [`EditError::Attribute`] for a key or value the
    /// parser would refuse.
    pub fn set_attribute(
        &mut self,
        peer: &PeerId,
        key: &str,
        value: &str,
    ) -> Result<Option<String>, EditError> {
        self.edit(peer, |attributes, _| Ok(attributes.set(key, value)?))
    }

    /// Sets `expires` on the entry of `peer` to `at` (see
    /// [`Attributes::set_expires`]) and returns the previous instant.
    ///
    /// # Errors
    /// [`EditError::NotFound`], [`EditError::InvalidLine`].
    pub fn set_expires(
        &mut self,
        peer: &PeerId,
        at: UnixTime,
    ) -> Result<Option<UnixTime>, EditError> {
        self.edit(peer, |attributes, _| Ok(attributes.set_expires(at)))
    }

    /// Removes `key` from the entry of `peer` and returns its value (`None`
    /// if it was not set; the line is then untouched).
    ///
    /// # Errors
    /// [`EditError::NotFound`], [`EditError::InvalidLine`].
    pub fn remove_attribute(
        &mut self,
        peer: &PeerId,
        key: &str,
    ) -> Result<Option<String>, EditError> {
        self.edit(peer, |attributes, _| Ok(attributes.remove(key)))
    }

    /// Sets (or with `None` or an empty text, removes) the comment of the
    /// entry of `peer` and returns the previous one.
    ///
    /// # Errors
    /// [`EditError::NotFound`], [`EditError::InvalidLine`],
    /// [`EditError::Comment`] for a comment [`render_entry`] refuses.
    pub fn set_comment(
        &mut self,
        peer: &PeerId,
        comment: Option<&str>,
    ) -> Result<Option<String>, EditError> {
        let comment = normalize_comment(comment)?.map(str::to_owned);
        self.edit(peer, |_, slot| Ok(core::mem::replace(slot, comment)))
    }

    /// Applies `change` to a copy of the entry's attributes and comment and
    /// rewrites the line canonically if they differ.
    fn edit<T>(
        &mut self,
        peer: &PeerId,
        change: impl FnOnce(&mut Attributes, &mut Option<String>) -> Result<T, EditError>,
    ) -> Result<T, EditError> {
        let index = self.entry_index(peer)?;
        let Some(entry) = self.lines[index].entry() else {
            return Err(EditError::NotFound { peer: *peer });
        };
        let (mut attributes, mut comment) = (entry.attributes.clone(), entry.comment.clone());
        let out = change(&mut attributes, &mut comment)?;
        if attributes != entry.attributes || comment != entry.comment {
            self.lines[index].text = render_canonical(peer, &attributes, comment.as_deref());
            self.reparse();
        }
        Ok(out)
    }

    fn entry_index(&self, peer: &PeerId) -> Result<usize, EditError> {
        if let Some(index) = self
            .lines
            .iter()
            .position(|l| l.entry().is_some_and(|e| e.peer == *peer))
        {
            return Ok(index);
        }
        match self
            .lines
            .iter()
            .find(|l| l.peer() == Some(*peer))
            .and_then(Line::error)
        {
            Some(error) => Err(EditError::InvalidLine {
                peer: *peer,
                error: Box::new(error.clone()),
            }),
            None => Err(EditError::NotFound { peer: *peer }),
        }
    }

    fn preferred_ending(&self) -> LineEnding {
        let crlf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::CrLf)
            .count();
        let lf = self
            .lines
            .iter()
            .filter(|l| l.ending == LineEnding::Lf)
            .count();
        if crlf > lf {
            LineEnding::CrLf
        } else {
            LineEnding::Lf
        }
    }

    /// Re-parses the rendered text, so that the document always equals
    /// `Document::parse(&self.render())` (line numbers, duplicates).
    fn reparse(&mut self) {
        *self = Self::parse(&self.render());
    }
}

/// Splits text into lines and terminators; `render` is their concatenation.
fn split_lines(text: &str) -> impl Iterator<Item = (&str, LineEnding)> {
    text.split_inclusive('\n').map(|piece| {
        if let Some(content) = piece.strip_suffix("\r\n") {
            (content, LineEnding::CrLf)
        } else if let Some(content) = piece.strip_suffix('\n') {
            (content, LineEnding::Lf)
        } else {
            (piece, LineEnding::Missing)
        }
    })
}

/// Classifies one line. `first_seen` maps each peer ID met so far (on any
/// line, valid or not) to its first line.
fn classify(content: &str, line: usize, first_seen: &mut BTreeMap<PeerId, usize>) -> LineKind {
    let trimmed = content.trim_ascii();
    if trimmed.is_empty() {
        return LineKind::Blank;
    }
    if trimmed.starts_with('#') {
        return LineKind::Comment;
    }
    let (head, comment) = match trimmed.split_once('#') {
        Some((head, comment)) => (head, Some(comment.trim_ascii())),
        None => (trimmed, None),
    };
    let mut tokens = head.split_ascii_whitespace();
    // The trimmed line is not empty and does not start with '#', so there is
    // a first token; an empty text would fail to parse anyway.
    let peer_text = tokens.next().unwrap_or_default();
    let Some(peer) = crate::identity::parse_peer_id_text(peer_text) else {
        let error = LineError::InvalidPeerId {
            line,
            text: crate::identity::excerpt(peer_text),
        };
        return LineKind::Invalid { peer: None, error };
    };
    let invalid = |error| LineKind::Invalid {
        peer: Some(peer),
        error,
    };
    if let Some(&first_line) = first_seen.get(&peer) {
        return invalid(LineError::DuplicatePeer {
            line,
            peer,
            first_line,
        });
    }
    first_seen.insert(peer, line);
    let mut attributes = Attributes::new();
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return invalid(LineError::MissingEquals {
                line,
                token: token.to_owned(),
            });
        };
        if let Err(error) = validate_key(key, value) {
            return invalid(LineError::Attribute { line, error });
        }
        if attributes.get(key).is_some() {
            return invalid(LineError::DuplicateAttribute {
                line,
                key: key.to_owned(),
            });
        }
        if let Err(error) = attributes.set(key, value) {
            return invalid(LineError::Attribute { line, error });
        }
    }
    let comment = comment.filter(|c| !c.is_empty()).map(str::to_owned);
    LineKind::Entry(Box::new(Entry {
        peer,
        line,
        attributes,
        comment,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const A: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const B: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn a() -> PeerId {
        A.parse().unwrap()
    }

    fn b() -> PeerId {
        B.parse().unwrap()
    }

    /// Deterministic peer IDs for proptests.
    fn pool() -> &'static [PeerId] {
        static POOL: OnceLock<Vec<PeerId>> = OnceLock::new();
        POOL.get_or_init(|| {
            (1..=24u8)
                .map(|seed| {
                    libp2p_identity::Keypair::ed25519_from_bytes([seed; 32])
                        .unwrap()
                        .public()
                        .to_peer_id()
                })
                .collect()
        })
    }

    fn t(text: &str) -> UnixTime {
        UnixTime::parse_rfc3339(text).unwrap()
    }

    fn errors(text: &str) -> Vec<LineError> {
        Document::parse(text).errors().cloned().collect()
    }

    fn only_error(text: &str) -> LineError {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs.into_iter().next().unwrap()
    }

    // ---- parsing -------------------------------------------------------

    /// `expire=` (a typo) used to be kept as an unknown attribute, leaving
    /// the peer authorized forever.
    #[test]
    fn a_misspelled_expires_invalidates_the_line() {
        for key in [
            "expire",
            "expiry",
            "expries",
            "exipres",
            "expiration",
            "Expires",
        ] {
            let doc = Document::parse(&format!("{A}  {key}=2000-01-01T00:00:00Z\n"));
            assert!(!doc.is_authorized(&a(), UnixTime::from_secs(0)), "{key}");
            assert_eq!(doc.errors().count(), 1, "{key}");
        }
        // Other unknown keys are kept.
        let doc = Document::parse(&format!("{A}  owner=me  x=1\n"));
        assert!(doc.is_authorized(&a(), UnixTime::from_secs(0)));
        assert_eq!(distance("expires", "expires"), 0);
        assert_eq!(distance("expire", "expires"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    /// A 2 MB token took over 100 s to decode as base58 (quadratic); it is
    /// now refused on its length, and quoted shortened.
    #[test]
    fn a_huge_token_is_an_invalid_line_quoted_short() {
        let text = format!("{A}\n{}\n", "1".repeat(2_000_000));
        let doc = Document::parse(&text);
        assert_eq!(doc.entries().count(), 1);
        let errs: Vec<_> = doc.errors().collect();
        assert_eq!(errs.len(), 1);
        let msg = errs[0].to_string();
        assert!(msg.len() < 200, "{}", &msg[..200.min(msg.len())]);
        assert!(msg.contains("... (2000000 bytes)"), "{msg}");
        assert_eq!(doc.render(), text);
    }

    #[test]
    fn parses_go_sample_with_two_space_comment() {
        let text = format!(
            "# File: authorized_keys\n# Format: <peer_id> # optional comment\n{A}  # my-laptop\n{B}  # my-phone\n"
        );
        let doc = Document::parse_strict(&text).unwrap();
        let entries: Vec<_> = doc.entries().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].peer(), a());
        assert_eq!(entries[0].line(), 3);
        assert_eq!(entries[0].comment(), Some("my-laptop"));
        assert!(entries[0].attributes().is_empty());
        assert_eq!(entries[1].peer(), b());
        assert_eq!(entries[1].line(), 4);
        assert_eq!(entries[1].comment(), Some("my-phone"));
        assert_eq!(doc.render(), text);
        assert_eq!(entries[0].to_line(), format!("{A}  # my-laptop"));
    }

    #[test]
    fn classifies_blank_comment_entry_and_invalid_lines() {
        let text = format!("\n   \t\n  # note\n{A}\nnot-a-peer\n");
        let doc = Document::parse(&text);
        let kinds: Vec<_> = doc.lines().iter().map(Line::kind).collect();
        assert_eq!(kinds[0], &LineKind::Blank);
        assert_eq!(kinds[1], &LineKind::Blank);
        assert_eq!(kinds[2], &LineKind::Comment);
        assert!(matches!(kinds[3], LineKind::Entry(e) if e.peer() == a() && e.line() == 4));
        assert!(matches!(kinds[4], LineKind::Invalid { peer: None, error } if error.line() == 5));
        assert_eq!(doc.lines()[1].text(), "   \t");
        assert_eq!(
            doc.lines().iter().map(Line::number).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(doc.len(), 1);
        assert!(!doc.is_valid());
    }

    #[test]
    fn first_hash_starts_the_comment_and_comment_is_trimmed() {
        let doc = Document::parse(&format!("  {A}#  one # two  \t\n{B} group=x #\n"));
        let e = doc.get(&a()).unwrap();
        assert_eq!(e.comment(), Some("one # two"));
        assert!(e.attributes().is_empty());
        let e = doc.get(&b()).unwrap();
        assert_eq!(e.comment(), None, "an empty comment is no comment");
        assert_eq!(e.attributes().group(), Some("x"));
    }

    #[test]
    fn parses_known_attributes() {
        let text = format!(
            "{A} hmac_proof=abc= group=home verified=sha256:0a1B2c3D expires=2026-12-31T23:59:59Z # x\n"
        );
        let doc = Document::parse_strict(&text).unwrap();
        let attrs = doc.get(&a()).unwrap().attributes();
        assert_eq!(attrs.expires(), Some(t("2026-12-31T23:59:59Z")));
        assert_eq!(attrs.expires_text(), Some("2026-12-31T23:59:59Z"));
        assert_eq!(attrs.verified(), Some("sha256:0a1B2c3D"));
        assert_eq!(attrs.group(), Some("home"));
        assert_eq!(attrs.hmac_proof(), Some("abc="));
        assert_eq!(attrs.len(), 4);
        let order: Vec<_> = attrs.iter().map(|(k, _)| k).collect();
        assert_eq!(order, [EXPIRES, VERIFIED, GROUP, HMAC_PROOF]);
    }

    #[test]
    fn keeps_unknown_attributes_in_order() {
        let doc = Document::parse(&format!("{A} zeta=1 group=g alpha=2 mid-key_3=a=b\n"));
        let attrs = doc.get(&a()).unwrap().attributes();
        let unknown: Vec<_> = attrs.unknown().collect();
        assert_eq!(
            unknown,
            [("zeta", "1"), ("alpha", "2"), ("mid-key_3", "a=b")]
        );
        assert_eq!(attrs.get("alpha"), Some("2"));
        assert_eq!(attrs.get("nope"), None);
    }

    #[test]
    fn expires_with_offset_and_fraction_keeps_text() {
        let doc = Document::parse(&format!("{A} expires=2026-01-31T13:00:00.5+01:00\n"));
        let e = doc.get(&a()).unwrap();
        assert_eq!(e.expires(), Some(t("2026-01-31T12:00:00.5Z")));
        assert_eq!(
            e.attributes().expires_text(),
            Some("2026-01-31T13:00:00.5+01:00")
        );
    }

    #[test]
    fn rejects_invalid_peer_id_quoting_it() {
        let err = only_error(&format!("{A}\n# c\n12D3Koo # short\n"));
        assert_eq!(
            err,
            LineError::InvalidPeerId {
                line: 3,
                text: "12D3Koo".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "line 3: \"12D3Koo\" is not a valid peer ID (expected base58 like 12D3KooW...)"
        );
    }

    #[test]
    fn invalid_peer_id_quote_shows_invisible_characters() {
        let err = only_error(&format!("\u{feff}{A}\n"));
        assert_eq!(err.line(), 1);
        assert!(err.to_string().contains("\\u{feff}12D3KooW"), "{err}");
    }

    #[test]
    fn rejects_attribute_without_equals() {
        let err = only_error(&format!("\n{A} my-laptop\n"));
        assert_eq!(
            err,
            LineError::MissingEquals {
                line: 2,
                token: "my-laptop".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: \"my-laptop\" is not a key=value attribute (like group=home); comments go after '#'"
        );
    }

    #[test]
    fn rejects_empty_key_and_empty_value() {
        let err = only_error(&format!("{A} =x\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 1,
                error: AttributeError::EmptyKey { value: "x".into() }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 1: attribute \"=x\" has no key (expected key=value, like group=home)"
        );
        let err = only_error(&format!("{A}\n{B} group=\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 2,
                error: AttributeError::EmptyValue {
                    key: "group".into()
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2: attribute \"group\" has an empty value (expected group=value)"
        );
    }

    #[test]
    fn rejects_invalid_key() {
        let err = only_error(&format!("{A} Expires=2026-12-31T23:59:59Z\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 1,
                error: AttributeError::InvalidKey {
                    key: "Expires".into()
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 1: attribute key \"Expires\" may only use lowercase letters, digits, '_' and '-'"
        );
    }

    #[test]
    fn rejects_invalid_expires_naming_rfc3339() {
        let err = only_error(&format!("{A}\n\n{B}  expires=2026-12-31  # phone\n"));
        assert_eq!(
            err,
            LineError::Attribute {
                line: 3,
                error: AttributeError::InvalidExpires {
                    value: "2026-12-31".into()
                }
            }
        );
        assert_eq!(
            err.to_string(),
            "line 3: expires=\"2026-12-31\" is not an RFC 3339 time (like 2026-12-31T23:59:59Z)"
        );
    }

    #[test]
    fn verified_is_sha256_and_eight_hex_digits() {
        for good in ["sha256:0123abcd", "sha256:ABCDEF09", "sha256:aBcD1234"] {
            let doc = Document::parse_strict(&format!("{A} verified={good}\n")).unwrap();
            assert_eq!(doc.get(&a()).unwrap().attributes().verified(), Some(good));
        }
        for bad in [
            "sha256:0123abc",
            "sha256:0123abcde",
            "sha256:0123abcg",
            "0123abcd",
            "SHA256:0123abcd",
            "sha1:0123abcd",
        ] {
            let err = only_error(&format!("{A} verified={bad}\n"));
            assert_eq!(
                err,
                LineError::Attribute {
                    line: 1,
                    error: AttributeError::InvalidVerified { value: bad.into() }
                }
            );
        }
        assert_eq!(
            only_error(&format!("{A} verified=x\n")).to_string(),
            "line 1: verified=\"x\" is not sha256: followed by 8 hex digits (like sha256:1a2b3c4d)"
        );
    }

    #[test]
    fn rejects_value_with_control_or_unicode_space() {
        for bad in ["a\u{0}b", "a\u{a0}b", "a\u{202e}b", "a\u{b}b"] {
            let err = only_error(&format!("{A} group={bad}\n"));
            assert_eq!(
                err,
                LineError::Attribute {
                    line: 1,
                    error: AttributeError::InvalidValue {
                        key: "group".into(),
                        value: bad.into()
                    }
                }
            );
        }
    }

    #[test]
    fn rejects_duplicate_attribute() {
        let err = only_error(&format!("{A} group=a foo=1 group=b\n"));
        assert_eq!(
            err,
            LineError::DuplicateAttribute {
                line: 1,
                key: "group".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "line 1: attribute \"group\" appears more than once"
        );
        let err = only_error(&format!("{A} foo=1 foo=1\n"));
        assert_eq!(
            err,
            LineError::DuplicateAttribute {
                line: 1,
                key: "foo".into()
            }
        );
    }

    #[test]
    fn rejects_duplicate_peer_naming_first_line() {
        let text = format!("# c\n{A}  # one\n{B}\n\n{A}  # two\n");
        let err = only_error(&text);
        assert_eq!(
            err,
            LineError::DuplicatePeer {
                line: 5,
                peer: a(),
                first_line: 2
            }
        );
        assert_eq!(
            err.to_string(),
            format!("line 5: peer {A} is already listed on line 2")
        );
        // a first listing that is itself invalid still counts
        let err = errors(&format!("{A} bad\n{A}\n"));
        assert_eq!(
            err[1],
            LineError::DuplicatePeer {
                line: 2,
                peer: a(),
                first_line: 1
            }
        );
    }

    #[test]
    fn parse_strict_returns_every_bad_line() {
        let text = format!("{A}\nfoo\n{B} x\n# ok\n{A}\n");
        let err = Document::parse_strict(&text).unwrap_err();
        let lines: Vec<_> = err.errors().iter().map(LineError::line).collect();
        assert_eq!(lines, [2, 3, 5]);
        assert!(
            err.to_string()
                .starts_with("3 invalid lines: line 2: \"foo\""),
            "{err}"
        );
        let one = Document::parse_strict("foo").unwrap_err();
        assert_eq!(
            one.to_string(),
            "1 invalid line: line 1: \"foo\" is not a valid peer ID (expected base58 like 12D3KooW...)"
        );
        assert_eq!(one.into_errors().len(), 1);
        assert!(Document::parse_strict("").unwrap().is_empty());
    }

    #[test]
    fn render_is_exact_for_crlf_mixed_and_no_trailing_newline() {
        for text in [
            "",
            "\n",
            "\r\n",
            "\r",
            "a\rb",
            "x\r\n\r\ny\nz",
            &format!("{A}  # x\r\n# c\r\n{B}"),
            &format!("  {A}\t\t# odd   spacing  \n\n\n"),
        ] {
            assert_eq!(Document::parse(text).render(), text);
        }
        let doc = Document::parse("a\r\nb\nc");
        let endings: Vec<_> = doc.lines().iter().map(Line::ending).collect();
        assert_eq!(
            endings,
            [LineEnding::CrLf, LineEnding::Lf, LineEnding::Missing]
        );
        assert_eq!(doc.lines()[0].text(), "a");
        assert_eq!(Document::parse("\n").lines().len(), 1);
        assert_eq!(Document::parse("").lines().len(), 0);
    }

    // ---- authorization -----------------------------------------------

    #[test]
    fn expires_boundary_is_exclusive() {
        let doc = Document::parse(&format!("{A} expires=2026-12-31T23:59:59Z\n{B}\n"));
        let at = t("2026-12-31T23:59:59Z");
        let before = UnixTime::from_millis(at.as_millis() - 1);
        assert!(doc.is_authorized(&a(), before));
        assert_eq!(doc.status(&a(), before), Status::Authorized);
        assert!(
            !doc.is_authorized(&a(), at),
            "at now == expires the entry has expired"
        );
        assert_eq!(doc.status(&a(), at), Status::Expired { at });
        assert!(!doc.is_authorized(&a(), UnixTime::from_millis(at.as_millis() + 1)));
        assert!(doc.get(&a()).unwrap().is_expired(at));
        assert!(!doc.get(&a()).unwrap().is_expired(before));
        assert!(doc.is_authorized(&b(), at), "no expires never expires");
        assert_eq!(doc.authorized_peers(before), BTreeSet::from([a(), b()]));
        assert_eq!(doc.authorized_peers(at), BTreeSet::from([b()]));
        let expired: Vec<_> = doc.expired(at).map(Entry::peer).collect();
        assert_eq!(expired, [a()]);
        assert_eq!(doc.expired(before).count(), 0);
        assert!(doc.contains(&a()), "an expired entry is still contained");
    }

    #[test]
    fn invalid_lines_never_authorize() {
        let now = t("2026-01-01T00:00:00Z");
        let doc = Document::parse(&format!("{A} expires=tomorrow\n{B} verified=nope\n"));
        assert!(!doc.is_authorized(&a(), now));
        assert!(!doc.is_authorized(&b(), now));
        assert_eq!(doc.status(&a(), now), Status::Invalid { line: 1 });
        assert!(doc.authorized_peers(now).is_empty());
        assert!(!doc.contains(&a()));
        assert!(doc.get(&a()).is_none());
    }

    #[test]
    fn a_peer_with_an_invalid_duplicate_is_denied() {
        // The second line tries to restrict the peer; the file is ambiguous.
        let now = t("2026-01-01T00:00:00Z");
        let doc = Document::parse(&format!("{A}\n{A} expires=2025-01-01T00:00:00Z\n{B}\n"));
        assert!(doc.contains(&a()));
        assert_eq!(doc.status(&a(), now), Status::Invalid { line: 2 });
        assert!(!doc.is_authorized(&a(), now));
        assert_eq!(doc.authorized_peers(now), BTreeSet::from([b()]));
    }

    #[test]
    fn unlisted_peer_is_not_authorized() {
        let doc = Document::parse(&format!("{A}\n"));
        assert_eq!(doc.status(&b(), UnixTime::EPOCH), Status::NotListed);
        assert!(!doc.is_authorized(&b(), UnixTime::EPOCH));
        assert!(!Document::new().is_authorized(&a(), UnixTime::EPOCH));
    }

    // ---- edits -------------------------------------------------------

    const MESSY: &str = "# header  \n\n  # indented comment\r\nnot-a-peer  # bad\n";

    #[test]
    fn add_appends_canonical_line_and_keeps_the_rest() {
        let mut doc = Document::parse(MESSY);
        let attrs = Attributes::new()
            .with("group", "home")
            .unwrap()
            .with_expires(t("2026-12-31T23:59:59Z"))
            .with("zz", "1")
            .unwrap();
        doc.add(a(), attrs, Some("  my-laptop ")).unwrap();
        assert_eq!(
            doc.render(),
            format!("{MESSY}{A}  expires=2026-12-31T23:59:59Z  group=home  zz=1  # my-laptop\n")
        );
        assert_eq!(doc.get(&a()).unwrap().line(), 5);
        doc.add(b(), Attributes::new(), None).unwrap();
        assert!(doc.render().ends_with(&format!("# my-laptop\n{B}\n")));
    }

    #[test]
    fn add_to_file_without_trailing_newline_terminates_last_line() {
        let mut doc = Document::parse(&format!("# c\n{A}  # x"));
        doc.add(b(), Attributes::new(), Some("phone")).unwrap();
        assert_eq!(doc.render(), format!("# c\n{A}  # x\n{B}  # phone\n"));
        assert!(doc.is_valid());
        let mut doc = Document::parse("# only a comment");
        doc.add(a(), Attributes::new(), None).unwrap();
        assert_eq!(doc.render(), format!("# only a comment\n{A}\n"));
    }

    #[test]
    fn add_uses_crlf_in_a_crlf_file() {
        let mut doc = Document::parse(&format!("# c\r\n{A}"));
        doc.add(b(), Attributes::new(), None).unwrap();
        assert_eq!(doc.render(), format!("# c\r\n{A}\r\n{B}\r\n"));
        let mut doc = Document::new();
        doc.add(a(), Attributes::new(), None).unwrap();
        assert_eq!(doc.render(), format!("{A}\n"));
    }

    #[test]
    fn add_refuses_a_peer_already_present_even_on_an_invalid_line() {
        let text = format!("{A}\n{B} broken\n");
        let mut doc = Document::parse(&text);
        assert_eq!(
            doc.add(a(), Attributes::new(), None),
            Err(EditError::AlreadyPresent { peer: a(), line: 1 })
        );
        assert_eq!(
            doc.add(b(), Attributes::new(), None),
            Err(EditError::AlreadyPresent { peer: b(), line: 2 })
        );
        assert_eq!(doc.render(), text);
        assert_eq!(
            EditError::AlreadyPresent { peer: a(), line: 1 }.to_string(),
            format!("peer {A} is already in authorized_keys (line 1)")
        );
    }

    #[test]
    fn add_refuses_a_comment_that_would_inject_a_line() {
        let mut doc = Document::parse("# c\n");
        for bad in [
            format!("x\n{B}"),
            format!("x\r{B}"),
            "a\u{85}b".into(),
            "a\u{2028}b".into(),
            "a\u{202e}b".into(),
        ] {
            let err = doc.add(a(), Attributes::new(), Some(&bad)).unwrap_err();
            assert_eq!(
                err,
                EditError::Comment(CommentError {
                    comment: bad.clone()
                })
            );
        }
        assert_eq!(doc.render(), "# c\n");
        assert!(render_entry(&a(), &Attributes::new(), Some("tab\tok")).is_ok());
        assert!(render_entry(&a(), &Attributes::new(), Some("bell\u{7}")).is_err());
    }

    #[test]
    fn remove_returns_entry_and_keeps_other_lines() {
        let text = format!("# keep\r\n{A}  # laptop\n  \n{B} unknown\n");
        let mut doc = Document::parse(&text);
        let removed = doc.remove(&a()).unwrap();
        assert_eq!(removed.entry().unwrap().comment(), Some("laptop"));
        assert_eq!(removed.lines().len(), 1);
        assert_eq!(removed.lines()[0].number(), 2);
        assert_eq!(doc.render(), format!("# keep\r\n  \n{B} unknown\n"));
        // line numbers follow the new text
        assert_eq!(doc.errors().next().unwrap().line(), 3);
        assert_eq!(doc.remove(&a()), Err(EditError::NotFound { peer: a() }));
        assert_eq!(
            EditError::NotFound { peer: a() }.to_string(),
            format!("peer {A} is not in authorized_keys")
        );
    }

    #[test]
    fn remove_takes_duplicates_so_the_peer_cannot_resurface() {
        let mut doc = Document::parse(&format!("{A}\n# c\n{A} # dup\n{B}"));
        let removed = doc.remove(&a()).unwrap();
        assert_eq!(
            removed.lines().iter().map(Line::number).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(doc.render(), format!("# c\n{B}"));
        assert!(!doc.contains(&a()));
        // an invalid-only peer can be removed too
        let mut doc = Document::parse(&format!("{A} expires=bad\n"));
        let removed = doc.remove(&a()).unwrap();
        assert!(removed.entry().is_none());
        assert_eq!(doc.render(), "");
    }

    #[test]
    fn remove_last_line_without_newline_keeps_previous_line() {
        let mut doc = Document::parse(&format!("# c\n{A}"));
        doc.remove(&a()).unwrap();
        assert_eq!(doc.render(), "# c\n");
    }

    #[test]
    fn set_attribute_rewrites_only_that_line_canonically() {
        let text = format!(
            "# top\r\n{A}   zz=9 group=old    expires=2027-01-01T00:00:00+02:00 #  laptop \r\n\nnot-a-peer\n{B} x=1\n"
        );
        let mut doc = Document::parse(&text);
        let previous = doc
            .set_attribute(&a(), "verified", "sha256:deadBEEF")
            .unwrap();
        assert_eq!(previous, None);
        assert_eq!(
            doc.render(),
            format!(
                "# top\r\n{A}  expires=2027-01-01T00:00:00+02:00  verified=sha256:deadBEEF  group=old  zz=9  # laptop\r\n\nnot-a-peer\n{B} x=1\n"
            )
        );
        assert_eq!(
            doc.set_attribute(&a(), "group", "new").unwrap().as_deref(),
            Some("old")
        );
        assert_eq!(doc.get(&a()).unwrap().attributes().group(), Some("new"));
        assert_eq!(doc.set_attribute(&a(), "new-key", "v").unwrap(), None);
        assert!(doc.render().contains("zz=9  new-key=v  # laptop\r\n"));
    }

    #[test]
    fn set_attribute_with_unchanged_value_keeps_line_bytes() {
        let text = format!("{A}    group=g\t# c\n");
        let mut doc = Document::parse(&text);
        assert_eq!(
            doc.set_attribute(&a(), "group", "g").unwrap().as_deref(),
            Some("g")
        );
        assert_eq!(doc.remove_attribute(&a(), "nope").unwrap(), None);
        assert_eq!(
            doc.set_comment(&a(), Some(" c ")).unwrap().as_deref(),
            Some("c")
        );
        assert_eq!(doc.render(), text);
    }

    #[test]
    fn set_attribute_validates_like_the_parser() {
        let text = format!("{A}\n");
        let mut doc = Document::parse(&text);
        let cases = [
            ("", "x", AttributeError::EmptyKey { value: "x".into() }),
            (
                "Group",
                "x",
                AttributeError::InvalidKey {
                    key: "Group".into(),
                },
            ),
            ("a b", "x", AttributeError::InvalidKey { key: "a b".into() }),
            (
                "group",
                "",
                AttributeError::EmptyValue {
                    key: "group".into(),
                },
            ),
            (
                "group",
                "a b",
                AttributeError::InvalidValue {
                    key: "group".into(),
                    value: "a b".into(),
                },
            ),
            (
                "group",
                "a#b",
                AttributeError::InvalidValue {
                    key: "group".into(),
                    value: "a#b".into(),
                },
            ),
            (
                "group",
                "a\nb",
                AttributeError::InvalidValue {
                    key: "group".into(),
                    value: "a\nb".into(),
                },
            ),
            (
                "expires",
                "soon",
                AttributeError::InvalidExpires {
                    value: "soon".into(),
                },
            ),
            (
                "verified",
                "sha256:1",
                AttributeError::InvalidVerified {
                    value: "sha256:1".into(),
                },
            ),
        ];
        for (key, value, expected) in cases {
            assert_eq!(
                doc.set_attribute(&a(), key, value),
                Err(EditError::Attribute(expected))
            );
        }
        assert_eq!(doc.render(), text);
    }

    #[test]
    fn edits_of_missing_or_invalid_peers_are_refused() {
        let text = format!("{A} group=a group=b\n");
        let mut doc = Document::parse(&text);
        let dup = LineError::DuplicateAttribute {
            line: 1,
            key: "group".into(),
        };
        assert_eq!(
            doc.set_attribute(&a(), "group", "c"),
            Err(EditError::InvalidLine {
                peer: a(),
                error: Box::new(dup.clone())
            })
        );
        assert_eq!(
            doc.set_comment(&a(), Some("x")),
            Err(EditError::InvalidLine {
                peer: a(),
                error: Box::new(dup)
            })
        );
        assert_eq!(
            doc.set_expires(&b(), UnixTime::EPOCH),
            Err(EditError::NotFound { peer: b() })
        );
        assert_eq!(
            doc.remove_attribute(&b(), "group"),
            Err(EditError::NotFound { peer: b() })
        );
        assert_eq!(doc.render(), text);
        assert_eq!(
            doc.set_attribute(&a(), "group", "c")
                .unwrap_err()
                .to_string(),
            format!(
                "peer {A} cannot be edited: line 1: attribute \"group\" appears more than once; fix or remove that line first"
            )
        );
    }

    #[test]
    fn editing_the_valid_line_of_a_duplicated_peer_keeps_the_duplicate_invalid() {
        let mut doc = Document::parse(&format!("{A}\n{A}\n"));
        doc.set_comment(&a(), Some("first")).unwrap();
        assert_eq!(doc.render(), format!("{A}  # first\n{A}\n"));
        assert_eq!(
            doc.status(&a(), UnixTime::EPOCH),
            Status::Invalid { line: 2 }
        );
    }

    #[test]
    fn set_expires_writes_rfc3339_and_keeps_equal_text() {
        let text = format!("{A} expires=2026-12-31T23:59:59+00:00 group=g\n");
        let mut doc = Document::parse(&text);
        let same = t("2026-12-31T23:59:59Z");
        assert_eq!(doc.set_expires(&a(), same).unwrap(), Some(same));
        assert_eq!(doc.render(), text, "same instant: original text kept");
        let later = UnixTime::from_millis(same.as_millis() + 1500);
        assert_eq!(doc.set_expires(&a(), later).unwrap(), Some(same));
        assert_eq!(
            doc.render(),
            format!("{A}  expires=2027-01-01T00:00:00.500Z  group=g\n")
        );
        assert_eq!(doc.get(&a()).unwrap().expires(), Some(later));
    }

    #[test]
    fn set_expires_clamps_to_what_rfc3339_can_write() {
        let mut doc = Document::parse(&format!("{A}\n"));
        for at in [
            UnixTime::from_millis(i64::MAX),
            UnixTime::from_millis(i64::MIN),
        ] {
            doc.set_expires(&a(), at).unwrap();
            assert!(doc.is_valid(), "{}", doc.render());
            let attrs = Attributes::new().with_expires(at);
            let written = UnixTime::parse_rfc3339(attrs.expires_text().unwrap()).unwrap();
            assert_eq!(attrs.expires(), Some(written));
            assert_eq!(doc.get(&a()).unwrap().expires(), Some(written));
        }
    }

    #[test]
    fn editing_another_attribute_keeps_original_expires_text() {
        let mut doc = Document::parse(&format!("{A} expires=2026-12-31T23:59:59.000+00:00\n"));
        doc.set_attribute(&a(), "group", "g").unwrap();
        assert_eq!(
            doc.render(),
            format!("{A}  expires=2026-12-31T23:59:59.000+00:00  group=g\n")
        );
    }

    #[test]
    fn remove_attribute_and_set_comment() {
        let mut doc = Document::parse(&format!("{A} group=g foo=1 # old\n"));
        assert_eq!(
            doc.remove_attribute(&a(), "group").unwrap().as_deref(),
            Some("g")
        );
        assert_eq!(doc.render(), format!("{A}  foo=1  # old\n"));
        assert_eq!(
            doc.set_comment(&a(), Some("new # with hash"))
                .unwrap()
                .as_deref(),
            Some("old")
        );
        assert_eq!(doc.render(), format!("{A}  foo=1  # new # with hash\n"));
        assert_eq!(doc.get(&a()).unwrap().comment(), Some("new # with hash"));
        assert_eq!(
            doc.set_comment(&a(), Some("  ")).unwrap().as_deref(),
            Some("new # with hash")
        );
        assert_eq!(doc.render(), format!("{A}  foo=1\n"));
        assert_eq!(
            doc.set_comment(&a(), Some("x\ny")),
            Err(EditError::Comment(CommentError {
                comment: "x\ny".into()
            }))
        );
        assert_eq!(
            doc.remove_attribute(&a(), "foo").unwrap().as_deref(),
            Some("1")
        );
        assert_eq!(doc.render(), format!("{A}\n"));
    }

    #[test]
    fn attributes_builder_and_canonical_render() {
        let attrs = Attributes::new()
            .with("x-extra", "1")
            .unwrap()
            .with("hmac_proof", "p")
            .unwrap()
            .with("group", "g")
            .unwrap()
            .with("verified", "sha256:00000000")
            .unwrap()
            .with("expires", "2030-01-01T00:00:00Z")
            .unwrap();
        assert_eq!(
            render_entry(&a(), &attrs, Some("c")).unwrap(),
            format!(
                "{A}  expires=2030-01-01T00:00:00Z  verified=sha256:00000000  group=g  hmac_proof=p  x-extra=1  # c"
            )
        );
        assert_eq!(render_entry(&a(), &Attributes::new(), Some("")).unwrap(), A);
        let mut attrs = attrs;
        assert_eq!(
            attrs.remove("expires").as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        assert_eq!(attrs.remove("x-extra").as_deref(), Some("1"));
        assert_eq!(attrs.remove("x-extra"), None);
        assert_eq!(attrs.len(), 3);
        assert!(Attributes::new().with("group", "a b").is_err());
    }

    #[test]
    fn debug_is_readable() {
        let doc = Document::parse(&format!("{A} group=g # c\nbad\n"));
        let debug = format!("{doc:?}");
        assert!(
            debug.contains(A) && debug.contains("InvalidPeerId"),
            "{debug}"
        );
    }

    // ---- proptests ---------------------------------------------------

    /// Fragments that exercise the parser's edges.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just("\r".to_owned()),
            Just("#".to_owned()),
            Just("=".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just(A.to_owned()),
            Just(B.to_owned()),
            Just("expires=".to_owned()),
            Just("2026-12-31T23:59:59Z".to_owned()),
            Just("verified=sha256:0a1b2c3d".to_owned()),
            Just("group=x".to_owned()),
            Just("é漢\u{feff}\u{202e}".to_owned()),
            any::<String>(),
        ]
    }

    fn messy_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
        ]
    }

    fn token() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._:/+=é漢-]{1,12}"
    }

    fn attribute() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            (-62_167_219_200i64..253_402_300_799)
                .prop_map(|s| (EXPIRES.to_owned(), UnixTime::from_secs(s).to_rfc3339())),
            Just((
                EXPIRES.to_owned(),
                "2026-01-31T13:00:00.25+01:00".to_owned()
            )),
            "[0-9a-fA-F]{8}".prop_map(|h| (VERIFIED.to_owned(), format!("sha256:{h}"))),
            token().prop_map(|v| (GROUP.to_owned(), v)),
            token().prop_map(|v| (HMAC_PROOF.to_owned(), v)),
            ("[a-z0-9_-]{1,8}", token()).prop_filter("unknown key", |(k, _)| ![
                EXPIRES, VERIFIED, GROUP, HMAC_PROOF
            ]
            .contains(&k.as_str())),
        ]
    }

    /// Entries as (peer, attributes, comment, line).
    type Summary = Vec<(PeerId, Vec<(String, String)>, Option<String>, usize)>;

    #[derive(Debug, Clone)]
    struct GenEntry {
        attrs: Vec<(String, String)>,
        comment: Option<String>,
        text_without_peer: (String, Vec<String>, String, String),
    }

    #[derive(Debug, Clone)]
    enum GenLine {
        Blank(String),
        Comment(String),
        Entry(GenEntry),
    }

    fn gen_entry() -> impl Strategy<Value = GenEntry> {
        (
            "[ \t]{0,2}",
            prop::collection::vec((attribute(), "[ \t]{1,3}"), 0..5),
            prop::option::of(("[ \t]{0,3}", "[^\r\n]{0,16}")),
            "[ \t]{0,2}",
        )
            .prop_map(|(lead, attrs, comment, trail)| {
                let mut seen = BTreeSet::new();
                let attrs: Vec<_> = attrs
                    .into_iter()
                    .filter(|((k, _), _)| seen.insert(k.clone()))
                    .collect();
                let mut middle = Vec::new();
                for ((k, v), sep) in &attrs {
                    middle.push(format!("{sep}{k}={v}"));
                }
                let (comment_text, expected_comment) = match comment {
                    None => (String::new(), None),
                    Some((sep, c)) => {
                        let expected = c.trim_ascii();
                        (
                            format!("{sep}#{c}"),
                            (!expected.is_empty()).then(|| expected.to_owned()),
                        )
                    }
                };
                GenEntry {
                    attrs: attrs.into_iter().map(|(kv, _)| kv).collect(),
                    comment: expected_comment,
                    text_without_peer: (lead, middle, comment_text, trail),
                }
            })
    }

    fn gen_line() -> impl Strategy<Value = GenLine> {
        prop_oneof![
            1 => "[ \t]{0,3}".prop_map(GenLine::Blank),
            1 => "[ \t]{0,2}#[^\r\n]{0,16}".prop_map(GenLine::Comment),
            4 => gen_entry().prop_map(GenLine::Entry),
        ]
    }

    /// A valid document: its text and the expected entries
    /// (peer, attributes, comment, line).
    #[derive(Debug, Clone)]
    struct GenDoc {
        text: String,
        entries: Summary,
    }

    fn gen_doc(trailing_newline: bool) -> impl Strategy<Value = GenDoc> {
        (
            prop::collection::vec((gen_line(), any::<bool>()), 0..12),
            0..12usize,
            any::<bool>(),
        )
            .prop_map(move |(lines, offset, missing_last)| {
                let mut text = String::new();
                let mut entries = Vec::new();
                let count = lines.len();
                for (index, (line, crlf)) in lines.into_iter().enumerate() {
                    match line {
                        GenLine::Blank(s) | GenLine::Comment(s) => text.push_str(&s),
                        GenLine::Entry(e) => {
                            let peer = pool()[offset + entries.len()];
                            let (lead, middle, comment, trail) = e.text_without_peer;
                            text.push_str(&format!(
                                "{lead}{peer}{}{comment}{trail}",
                                middle.concat()
                            ));
                            entries.push((peer, e.attrs, e.comment, index + 1));
                        }
                    }
                    let last = index + 1 == count;
                    if !(last && missing_last && !trailing_newline) {
                        text.push_str(if crlf { "\r\n" } else { "\n" });
                    }
                }
                GenDoc { text, entries }
            })
    }

    fn summary(doc: &Document) -> Summary {
        doc.entries()
            .map(|e| {
                let attrs = e
                    .attributes()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                (e.peer(), attrs, e.comment().map(str::to_owned), e.line())
            })
            .collect()
    }

    fn sorted(mut entries: Summary) -> Summary {
        // canonical order: known keys first, unknown keys keep their order
        let rank = |k: &str| {
            [EXPIRES, VERIFIED, GROUP, HMAC_PROOF]
                .iter()
                .position(|x| *x == k)
        };
        for (_, attrs, _, _) in &mut entries {
            attrs.sort_by_key(|(k, _)| rank(k).unwrap_or(4));
        }
        entries
    }

    proptest! {
        #[test]
        fn render_of_parse_is_identity(text in messy_text()) {
            let doc = Document::parse(&text);
            prop_assert_eq!(doc.render(), text.clone());
            prop_assert_eq!(Document::parse(&doc.render()), doc.clone());
            for (index, line) in doc.lines().iter().enumerate() {
                prop_assert_eq!(line.number(), index + 1);
                if let Some(error) = line.error() {
                    prop_assert_eq!(error.line(), index + 1);
                }
            }
            prop_assert_eq!(Document::parse_strict(&text).is_ok(), doc.is_valid());
        }

        #[test]
        fn generated_documents_parse_to_their_entries(generated in gen_doc(false)) {
            let doc = Document::parse_strict(&generated.text).unwrap();
            prop_assert_eq!(summary(&doc), sorted(generated.entries.clone()));
            prop_assert_eq!(doc.render(), generated.text.clone());
            // every entry written canonically parses to the same entries
            let canonical: String = doc
                .lines()
                .iter()
                .map(|l| {
                    let text = l.entry().map_or_else(|| l.text().to_owned(), Entry::to_line);
                    format!("{text}{}", l.ending().as_str())
                })
                .collect();
            let reparsed = Document::parse_strict(&canonical).unwrap();
            prop_assert_eq!(summary(&reparsed), summary(&doc));
            let entries: Vec<_> = reparsed.entries().cloned().collect();
            let original: Vec<_> = doc.entries().cloned().collect();
            prop_assert_eq!(entries, original);
        }

        #[test]
        fn add_then_remove_restores_the_text(
            text in prop_oneof![
                gen_doc(true).prop_map(|g| g.text),
                messy_text().prop_map(|t| if t.is_empty() || t.ends_with('\n') { t } else { t + "\n" }),
            ],
            seed in 12..24usize,
            attrs in prop::collection::vec(attribute(), 0..4),
            comment in prop::option::of("[^\r\n\u{0}-\u{1f}\u{7f}-\u{9f}]{0,12}"),
        ) {
            let peer = pool()[seed];
            let mut doc = Document::parse(&text);
            prop_assume!(!doc.lines().iter().any(|l| l.peer() == Some(peer)));
            let mut attributes = Attributes::new();
            for (k, v) in &attrs {
                attributes.set(k, v).unwrap();
            }
            let comment = comment.filter(|c| !c.chars().any(is_unsafe_char));
            doc.add(peer, attributes.clone(), comment.as_deref()).unwrap();
            let entry = doc.get(&peer).unwrap().clone();
            prop_assert_eq!(entry.attributes(), &attributes);
            prop_assert_eq!(entry.comment(), comment.as_deref().map(str::trim_ascii).filter(|c| !c.is_empty()));
            prop_assert_eq!(doc.lines().len(), Document::parse(&text).lines().len() + 1);
            let removed = doc.remove(&peer).unwrap();
            prop_assert_eq!(removed.entry(), Some(&entry));
            prop_assert_eq!(doc.render(), text);
        }

        #[test]
        fn set_attribute_keeps_other_lines(
            generated in gen_doc(false),
            pick in any::<prop::sample::Index>(),
            (key, value) in attribute(),
        ) {
            prop_assume!(!generated.entries.is_empty());
            let before = Document::parse(&generated.text);
            let target = generated.entries[pick.index(generated.entries.len())].0;
            let target_line = before.get(&target).unwrap().line();
            let mut doc = before.clone();
            doc.set_attribute(&target, &key, &value).unwrap();
            prop_assert_eq!(doc.lines().len(), before.lines().len());
            for (old, new) in before.lines().iter().zip(doc.lines()) {
                prop_assert_eq!(old.ending(), new.ending());
                if old.number() != target_line {
                    prop_assert_eq!(old, new);
                }
            }
            let entry = doc.get(&target).unwrap();
            prop_assert_eq!(entry.attributes().get(&key), Some(value.as_str()));
            prop_assert_eq!(entry.comment(), before.get(&target).unwrap().comment());
            prop_assert!(doc.is_valid());
        }

        #[test]
        fn edits_on_arbitrary_text_never_panic_and_stay_consistent(
            text in messy_text(),
            ops in prop::collection::vec((0..5u8, 0..2usize, token(), "[a-z_-]{1,6}"), 0..8),
        ) {
            let mut doc = Document::parse(&text);
            for (op, who, value, key) in ops {
                let peer = [a(), b()][who];
                let _ = match op {
                    0 => doc.add(peer, Attributes::new(), Some(&value)).map(drop),
                    1 => doc.remove(&peer).map(drop),
                    2 => doc.set_attribute(&peer, &key, &value).map(drop),
                    3 => doc.remove_attribute(&peer, &key).map(drop),
                    _ => doc.set_comment(&peer, Some(&value)).map(drop),
                };
                prop_assert_eq!(Document::parse(&doc.render()), doc.clone());
            }
        }
    }
}
