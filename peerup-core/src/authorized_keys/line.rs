//! One line of the file: what it is ([`LineKind`]), its errors, its entry,
//! how it is split off and classified, and how an entry is written.

use std::collections::BTreeMap;

use super::attributes::{AttributeError, Attributes, is_unsafe_char, validate_key};
use crate::PeerId;
use crate::time::UnixTime;

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

/// A comment that cannot be written: it would span lines or hide text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("comment {comment:?} must be a single line without control characters")]
pub struct CommentError {
    /// The rejected comment.
    pub comment: String,
}

/// Checks a comment for writing and normalizes it: trimmed, and no comment
/// when empty.
pub(super) fn normalize_comment(comment: Option<&str>) -> Result<Option<&str>, CommentError> {
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

/// A valid entry: a peer, its attributes and its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(super) peer: PeerId,
    pub(super) line: usize,
    pub(super) attributes: Attributes,
    pub(super) comment: Option<String>,
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

pub(super) fn render_canonical(
    peer: &PeerId,
    attributes: &Attributes,
    comment: Option<&str>,
) -> String {
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
    pub(super) number: usize,
    pub(super) text: String,
    pub(super) ending: LineEnding,
    pub(super) kind: LineKind,
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

/// Splits text into lines and terminators; `render` is their concatenation.
pub(super) fn split_lines(text: &str) -> impl Iterator<Item = (&str, LineEnding)> {
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
pub(super) fn classify(
    content: &str,
    line: usize,
    first_seen: &mut BTreeMap<PeerId, usize>,
) -> LineKind {
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
