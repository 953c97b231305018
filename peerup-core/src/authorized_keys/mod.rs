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

mod attributes;
mod document;
mod line;
#[cfg(test)]
mod tests;

pub(crate) use attributes::is_unsafe_char;
pub use attributes::{AttributeError, Attributes, EXPIRES, GROUP, HMAC_PROOF, VERIFIED};
pub use document::{Document, EditError, InvalidLines, Removed, Status};
pub use line::{CommentError, Entry, Line, LineEnding, LineError, LineKind, render_entry};
