//! The whole document: parse, query, edit, render.

use std::collections::{BTreeMap, BTreeSet};

use super::attributes::{AttributeError, Attributes};
use super::line::{
    CommentError, Entry, Line, LineEnding, LineError, LineKind, classify, normalize_comment,
    render_canonical, render_entry, split_lines,
};
use crate::PeerId;
use crate::time::UnixTime;

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

/// A parsed `authorized_keys` file: every line, classified, with its exact
/// text. See the [module documentation](super).
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
