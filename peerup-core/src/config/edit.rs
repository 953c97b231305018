//! Minimal text edits of `peerup.yaml` (WIRE.md §9): the `names:` map
//! (`peerup join`, `peerup name`), the `relay.addresses` list
//! (`peerup relay add/remove`), the `services:` map (`peerup service
//! add/remove/enable/disable`) and the `forwards:` map (`peerup proxy
//! --persist/--remove`).
//!
//! Input: the file's text and what to change. Output: the new text, or an
//! [`EditError`] and no text. The caller reads the file, calls one of
//! [`set_name`], [`remove_name`], [`add_relay`], [`remove_relay`],
//! [`add_service`], [`remove_service`], [`set_service_enabled`],
//! [`add_forward`], [`remove_forward`], and writes the result (atomically; see [`confirm`](super::confirm)).
//!
//! ## What is preserved
//! The file is edited by hand, so an edit touches as few lines as it can:
//! the line of the entry added, replaced or removed, the line of the
//! `names:` / `addresses:` key when the collection turns from empty (`{}`,
//! `[]`, `~`, `null`, nothing) to not or back, and the lines of a flow
//! collection (`{...}`, `[...]`) that is rewritten. Every other byte stays as it
//! was: comments (also the commented-out examples `peerup init` writes
//! after `names: {}`), blank lines, key order, quoting and spacing, the
//! comment after a value that is replaced in place, `\r\n` or `\n` line
//! ends, and a missing newline at the end of the file (a last line gets one
//! only when a line is added after it).
//!
//! New lines use the file's dominant line end and its indentation: the
//! existing children's indent, else the file's smallest indent step (2 in
//! a file without one). Only spaces are written, never a tab. Values are
//! double-quoted like the seed README's sample (`  home: "12D3KooW..."`,
//! `    - "/ip4/203.0.113.7/tcp/7777/p2p/12D3KooW..."`).
//!
//! ## Shapes handled
//! - `names:` missing (a block is appended at the end of the file, after a
//!   blank line), empty,
//!   a block mapping (a new name goes after the last entry; an existing one
//!   has its value replaced in place), or a flow mapping `{home: ...}` (its
//!   lines are rewritten as a block, entries in their order).
//! - `relay:` missing (appended), empty, or a block mapping with or without
//!   `addresses:`; `addresses:` empty, a block list (`- "..."` items,
//!   indented or not) or a flow list `[...]` (rewritten as a block).
//! - `services:` missing (a block is appended at the end of the file),
//!   empty (`services: {}` is what `peerup service remove` leaves when the
//!   last one goes), or a block mapping: a new service goes after the last
//!   one, written as `peerup config show` writes one (`enabled`,
//!   `local_address`, `allowed_peers` as a `- "..."` list); a removed one
//!   loses its key line, every line up to its last value and the comment
//!   lines right after it indented deeper than its key (they are its own;
//!   other comments stay); `enabled` is
//!   replaced in place, or added as the service's first field when it was
//!   left to its default. A flow mapping (`services: {...}`, or a service
//!   written `ssh: {...}`) is refused: rewriting it would need every
//!   service's fields re-rendered, and such files are rare.
//! - `forwards:` as `services:`: a new forward goes after the last one
//!   (`peer`, `service`, `local_address`, `enabled`), a removed one loses
//!   its lines and its own comments; a flow mapping is refused.
//!
//! Anything else the editor cannot change safely (an anchor, a tag, a value
//! over several lines, comments inside a multi-line `[...]` that a rewrite
//! would drop) is refused with [`EditError::Unsupported`] naming the line,
//! so the user edits that spot by hand.
//!
//! ## The re-parse guarantee
//! Every function first loads the input with [`Config::parse`]; an input
//! that does not load is refused with [`EditError::Invalid`] carrying the
//! [`ConfigError`]. After editing, the result is loaded again and compared
//! with the input's config changed exactly as asked: the whole config, not
//! only the edited field. A result that does not load
//! ([`EditError::Broke`]) or loads to anything else
//! ([`EditError::NoEffect`]) is never returned.
//!
//! Errors name the file `peerup.yaml`; [`EditError::with_file`] names the
//! real one.

use core::fmt;
use std::borrow::Cow;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

use super::de::{List, Text};
use super::diag::{ConfigError, FieldPath};
use super::emit;
use super::node::{Config, Forward, PeerRef, Service};
use super::yaml_lines::{self, Line, split_key};
use crate::naming::Name;
use crate::relay_addr::RelayAddr;
use crate::wire::label::DnsLabel;
use crate::wire::protocol::is_reserved_service_name;
use crate::{Multiaddr, PeerId};

/// The file named in errors until [`EditError::with_file`] is applied.
const FILE: &str = "peerup.yaml";

/// Why an edit was refused. No text is returned with it: the file is to
/// be left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The text does not load as a config, so it is not edited.
    #[error(transparent)]
    Invalid {
        /// Why it does not load.
        error: ConfigError,
    },
    /// [`remove_name`] of a name that is not in `names`.
    #[error("no name `{name}` in names ({})", known_names(.known))]
    NameNotFound {
        /// The name asked for.
        name: String,
        /// The names that are defined, sorted.
        known: Vec<String>,
    },
    /// [`remove_name`] of a name a service's `allowed_peers` refers to.
    #[error("name `{name}` is used in services.{service}.allowed_peers; remove it there first")]
    NameInUse {
        /// The name.
        name: String,
        /// The first service that lists it.
        service: String,
    },
    /// [`remove_name`] of a name a forward's `peer` refers to.
    #[error("name `{name}` is used in forwards.{forward}.peer; remove the forward first")]
    NameUsedByForward {
        /// The name.
        name: String,
        /// The first forward that uses it.
        forward: String,
    },
    /// [`add_forward`] of a name already in `forwards`.
    #[error("forward `{name}` is already in forwards")]
    ForwardExists {
        /// The forward.
        name: String,
    },
    /// [`remove_forward`] of a forward that is not in `forwards`.
    #[error("no forward `{name}` in forwards ({})", known_forwards(.known))]
    ForwardNotFound {
        /// The name asked for.
        name: String,
        /// The forwards that are configured, sorted.
        known: Vec<String>,
    },
    /// [`add_forward`] of a forward the config would not load with: a
    /// `peer` name missing from `names`, a local address another forward
    /// takes, or one forward too many.
    #[error("forward `{name}`: {reason}")]
    InvalidForward {
        /// The forward.
        name: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// [`add_relay`] of an address already listed (compared as multiaddrs).
    #[error("relay address {addr} is already in relay.addresses")]
    RelayExists {
        /// The address.
        addr: Multiaddr,
    },
    /// [`remove_relay`] of an address that is not listed.
    #[error("relay address {addr} is not in relay.addresses ({})", configured_relays(.configured))]
    RelayNotFound {
        /// The address asked for.
        addr: Multiaddr,
        /// The addresses that are listed, in file order.
        configured: Vec<Multiaddr>,
    },
    /// [`add_service`] of a name already in `services`.
    #[error("service `{name}` is already in services")]
    ServiceExists {
        /// The service.
        name: String,
    },
    /// [`remove_service`] or [`set_service_enabled`] of a service that is
    /// not in `services`.
    #[error("no service `{name}` in services ({})", known_services(.known))]
    ServiceNotFound {
        /// The name asked for.
        name: String,
        /// The services that are configured, sorted.
        known: Vec<String>,
    },
    /// [`add_service`] of a service the config would not load with: a
    /// reserved name, or an `allowed_peers` name missing from `names`.
    #[error("service `{name}`: {reason}")]
    InvalidService {
        /// The service.
        name: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// The field is written in a shape this editor does not change.
    #[error("cannot edit {path} safely: line {line}: {reason}; edit the file by hand")]
    Unsupported {
        /// The field being edited.
        path: FieldPath,
        /// The 1-based line of the input where the problem is (which may
        /// be outside the field: the lines before it must be understood
        /// to find it).
        line: usize,
        /// What is on that line.
        reason: String,
    },
    /// The edited text would not load. A bug in this editor, or a shape
    /// it misjudged; nothing is returned.
    #[error(
        "editing {path} would give a config that does not load ({error}); nothing was changed, edit the file by hand"
    )]
    Broke {
        /// The field being edited.
        path: FieldPath,
        /// Why the edited text does not load (its lines are those of the
        /// edited text, which is not returned).
        error: Box<ConfigError>,
    },
    /// The edited text loads, but not to the config asked for. A bug in
    /// this editor, or a shape it misjudged; nothing is returned.
    #[error(
        "editing {path} did not give {expected} with everything else unchanged; nothing was changed, edit the file by hand"
    )]
    NoEffect {
        /// The field being edited.
        path: FieldPath,
        /// The intended effect, in words.
        expected: String,
    },
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "no names are defined".to_owned()
    } else {
        format!("known: {}", known.join(", "))
    }
}

fn known_services(known: &[String]) -> String {
    if known.is_empty() {
        "no services are configured".to_owned()
    } else {
        format!("configured: {}", known.join(", "))
    }
}

fn known_forwards(known: &[String]) -> String {
    if known.is_empty() {
        "no forwards are configured".to_owned()
    } else {
        format!("configured: {}", known.join(", "))
    }
}

fn configured_relays(configured: &[Multiaddr]) -> String {
    if configured.is_empty() {
        "none are configured".to_owned()
    } else {
        let list: Vec<String> = configured.iter().map(ToString::to_string).collect();
        format!("configured: {}", list.join(", "))
    }
}

impl EditError {
    /// The same error, with the [`ConfigError`]s it carries naming `file`
    /// instead of `peerup.yaml`.
    #[must_use]
    pub fn with_file(self, file: &Path) -> Self {
        match self {
            EditError::Invalid { error } => EditError::Invalid {
                error: rename(error, file),
            },
            EditError::Broke { path, error } => EditError::Broke {
                path,
                error: Box::new(rename(*error, file)),
            },
            other => other,
        }
    }
}

fn rename(mut error: ConfigError, to: &Path) -> ConfigError {
    match &mut error {
        ConfigError::Empty { file }
        | ConfigError::Syntax { file, .. }
        | ConfigError::Invalid { file, .. }
        | ConfigError::UnsupportedVersion { file, .. }
        | ConfigError::UnknownPeerName { file, .. } => *file = to.to_owned(),
    }
    error
}

/// Maps `name` to `peer` in `names:`: replaces the value of an existing
/// entry in place (keeping a comment after it), or adds the entry after
/// the last one, creating `names:` at the end of the file when there is
/// none. A name that already maps to `peer` gives the text unchanged.
///
/// # Errors
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `names:` written in a shape the editor
/// does not change, [`EditError::Broke`] / [`EditError::NoEffect`] when the
/// result fails the re-parse check.
pub fn set_name(text: &str, name: &Name, peer: PeerId) -> Result<String, EditError> {
    let before = load(text)?;
    if before.names.get(name.as_str()) == Some(peer) {
        return Ok(text.to_owned());
    }
    let mut after = before;
    after.names.insert(name.clone(), peer);

    let doc = Doc::new(text);
    let path = FieldPath::keys(&["names"]);
    let line = |indent: usize, name: &Name, peer: &PeerId| {
        format!(
            "{}{}: {}",
            spaces(indent),
            emit::key(name.as_str()),
            emit::quote(&peer.to_string())
        )
    };
    let edits = match doc.top_entry("names", &path)? {
        None => doc.append(vec!["names:".to_owned(), line(doc.unit, name, &peer)]),
        Some(e) => match doc.shape(&e, &path, b'{')? {
            Shape::Empty { end_line, tail } => vec![Edit {
                from: e.line,
                to: end_line + 1,
                lines: vec![
                    doc.block_head(&e, end_line, tail),
                    line(doc.unit, name, &peer),
                ],
            }],
            Shape::Flow(span) => {
                let mut entries = doc.flow_names(span, &path)?;
                match entries.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = peer,
                    None => entries.push((name.clone(), peer)),
                }
                let mut lines = vec![doc.block_head(&e, span.end_line, span.end)];
                lines.extend(entries.iter().map(|(n, p)| line(doc.unit, n, p)));
                vec![Edit {
                    from: e.line,
                    to: span.end_line + 1,
                    lines,
                }]
            }
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &path)?;
                let child_path = path.clone().key(name.as_str());
                match children
                    .iter()
                    .find(|c| c.key.as_deref() == Some(name.as_str()))
                {
                    Some(c) => {
                        let span = doc.single_line_scalar(c, &child_path)?;
                        let body = doc.body(c.line);
                        vec![Edit {
                            from: c.line,
                            to: c.line + 1,
                            lines: vec![format!(
                                "{}{}{}",
                                &body[..span.start],
                                emit::quote(&peer.to_string()),
                                &body[span.end..]
                            )],
                        }]
                    }
                    None => {
                        let last = children.last().map_or(from, |c| c.last + 1);
                        vec![Edit::insert(last, line(indent, name, &peer))]
                    }
                }
            }
        },
    };
    doc.finish(edits, &after, path, || format!("names.{name}: {peer}"))
}

/// Removes `name` from `names:` (its whole line). When no name is left,
/// the key becomes `names: {}` (a comment on its line is kept).
///
/// # Errors
/// [`EditError::NameNotFound`] listing the known names,
/// [`EditError::NameInUse`] when a service's `allowed_peers` lists the
/// name, [`EditError::NameUsedByForward`] when a forward's `peer` is the
/// name, [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for an entry the editor does not change
/// (a value over several lines), [`EditError::Broke`] /
/// [`EditError::NoEffect`] when the result fails the re-parse check.
pub fn remove_name(text: &str, name: &Name) -> Result<String, EditError> {
    let before = load(text)?;
    if before.names.get(name.as_str()).is_none() {
        return Err(EditError::NameNotFound {
            name: name.to_string(),
            known: before.names.iter().map(|(n, _)| n.to_string()).collect(),
        });
    }
    for (service, s) in &before.services {
        if s.allowed_peers
            .iter()
            .flatten()
            .any(|r| matches!(r, PeerRef::Name(n) if n == name))
        {
            return Err(EditError::NameInUse {
                name: name.to_string(),
                service: service.to_string(),
            });
        }
    }
    if let Some((forward, _)) = before
        .forwards
        .iter()
        .find(|(_, f)| matches!(&f.peer, PeerRef::Name(n) if n == name))
    {
        return Err(EditError::NameUsedByForward {
            name: name.to_string(),
            forward: forward.to_string(),
        });
    }
    let mut after = before;
    after.names.remove(name.as_str());

    let doc = Doc::new(text);
    let path = FieldPath::keys(&["names"]);
    let mut edits = Vec::new();
    if let Some(e) = doc.top_entry("names", &path)? {
        match doc.shape(&e, &path, b'{')? {
            // The config says the name is there: leave the text alone and
            // let the re-parse check report the disagreement.
            Shape::Empty { .. } => {}
            Shape::Flow(span) => {
                let mut entries = doc.flow_names(span, &path)?;
                entries.retain(|(n, _)| n != name);
                let lines = if entries.is_empty() {
                    vec![doc.empty_head(&e, span.end_line, span.end, "{}")]
                } else {
                    let mut lines = vec![doc.block_head(&e, span.end_line, span.end)];
                    lines.extend(entries.iter().map(|(n, p)| {
                        format!(
                            "{}{}: {}",
                            spaces(doc.unit),
                            emit::key(n.as_str()),
                            emit::quote(&p.to_string())
                        )
                    }));
                    lines
                };
                edits.push(Edit {
                    from: e.line,
                    to: span.end_line + 1,
                    lines,
                });
            }
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &path)?;
                let child_path = path.clone().key(name.as_str());
                if let Some(c) = children
                    .iter()
                    .find(|c| c.key.as_deref() == Some(name.as_str()))
                {
                    doc.single_line_scalar(c, &child_path)?;
                    edits.push(Edit::remove(c.line));
                    if children.len() == 1 {
                        edits.push(Edit::replace(
                            e.line,
                            doc.empty_head(&e, e.line, e.head, "{}"),
                        ));
                    }
                }
            }
        }
    }
    doc.finish(edits, &after, path, || format!("no names.{name}"))
}

/// Adds `addr` at the end of `relay.addresses`, creating `relay:` and
/// `addresses:` when they are missing.
///
/// # Errors
/// [`EditError::RelayExists`] when an equal multiaddr is listed already,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `relay:` or `addresses:` written in a
/// shape the editor does not change (such as `relay: {...}`),
/// [`EditError::Broke`] / [`EditError::NoEffect`] when the result fails
/// the re-parse check.
pub fn add_relay(text: &str, addr: &RelayAddr) -> Result<String, EditError> {
    let before = load(text)?;
    if before.relay.addresses.contains(addr) {
        return Err(EditError::RelayExists {
            addr: addr.multiaddr().clone(),
        });
    }
    let mut after = before;
    after.relay.addresses.push(addr.clone());

    let doc = Doc::new(text);
    let relay_path = FieldPath::keys(&["relay"]);
    let path = relay_path.clone().key("addresses");
    let unit = doc.unit;
    let item = |indent: usize, a: &RelayAddr| {
        format!("{}- {}", spaces(indent), emit::quote(&a.to_string()))
    };
    let addresses = |indent: usize| format!("{}addresses:", spaces(indent));
    let edits = match doc.top_entry("relay", &relay_path)? {
        None => doc.append(vec![
            "relay:".to_owned(),
            addresses(unit),
            item(2 * unit, addr),
        ]),
        Some(r) => match doc.shape(&r, &relay_path, b'{')? {
            Shape::Empty { end_line, tail } => vec![Edit {
                from: r.line,
                to: end_line + 1,
                lines: vec![
                    doc.block_head(&r, end_line, tail),
                    addresses(unit),
                    item(2 * unit, addr),
                ],
            }],
            Shape::Flow(span) => {
                return Err(unsupported(
                    &relay_path,
                    span.line,
                    "a flow mapping `relay: {...}`; write it as an indented block",
                ));
            }
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &relay_path)?;
                match children
                    .iter()
                    .find(|c| c.key.as_deref() == Some("addresses"))
                {
                    None => {
                        let last = children.last().map_or(from, |c| c.last + 1);
                        vec![Edit {
                            from: last,
                            to: last,
                            lines: vec![addresses(indent), item(indent + unit, addr)],
                        }]
                    }
                    Some(a) => match doc.shape(a, &path, b'[')? {
                        Shape::Empty { end_line, tail } => vec![Edit {
                            from: a.line,
                            to: end_line + 1,
                            lines: vec![
                                doc.block_head(a, end_line, tail),
                                item(indent + unit, addr),
                            ],
                        }],
                        Shape::Flow(span) => {
                            let mut list = doc.flow_relays(span, &path)?;
                            list.push(addr.clone());
                            let mut lines = vec![doc.block_head(a, span.end_line, span.end)];
                            lines.extend(list.iter().map(|x| item(indent + unit, x)));
                            vec![Edit {
                                from: a.line,
                                to: span.end_line + 1,
                                lines,
                            }]
                        }
                        Shape::Block {
                            from,
                            to,
                            indent: item_indent,
                        } => {
                            let items = doc.entries(from, to, item_indent, true, &path)?;
                            let last = items.last().map_or(from, |c| c.last + 1);
                            vec![Edit::insert(last, item(item_indent, addr))]
                        }
                    },
                }
            }
        },
    };
    doc.finish(edits, &after, path, || {
        format!("{addr} at the end of relay.addresses")
    })
}

/// Removes every item of `relay.addresses` equal to `addr` as a multiaddr
/// (however it is written: quoted or not, `/ipfs/` or `/p2p/`). When none
/// is left, the key becomes `addresses: []` (a comment on its line is
/// kept).
///
/// # Errors
/// [`EditError::RelayNotFound`] listing the configured relays,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for an item the editor does not change (one
/// over several lines), [`EditError::Broke`] / [`EditError::NoEffect`] when
/// the result fails the re-parse check.
pub fn remove_relay(text: &str, addr: &RelayAddr) -> Result<String, EditError> {
    let before = load(text)?;
    if !before.relay.addresses.contains(addr) {
        return Err(EditError::RelayNotFound {
            addr: addr.multiaddr().clone(),
            configured: before
                .relay
                .addresses
                .iter()
                .map(|a| a.multiaddr().clone())
                .collect(),
        });
    }
    let mut after = before;
    after.relay.addresses.retain(|a| a != addr);

    let doc = Doc::new(text);
    let relay_path = FieldPath::keys(&["relay"]);
    let path = relay_path.clone().key("addresses");
    let mut edits = Vec::new();
    // Shapes without the address cannot occur for a config that lists it;
    // they make no edit and the re-parse check reports the disagreement.
    if let Some(r) = doc.top_entry("relay", &relay_path)?
        && let Shape::Block { from, to, indent } = doc.shape(&r, &relay_path, b'{')?
        && let Some(a) = doc
            .entries(from, to, indent, false, &relay_path)?
            .into_iter()
            .find(|c| c.key.as_deref() == Some("addresses"))
    {
        match doc.shape(&a, &path, b'[')? {
            Shape::Empty { .. } => {}
            Shape::Flow(span) => {
                let mut list = doc.flow_relays(span, &path)?;
                list.retain(|x| x != addr);
                let lines = if list.is_empty() {
                    vec![doc.empty_head(&a, span.end_line, span.end, "[]")]
                } else {
                    let mut lines = vec![doc.block_head(&a, span.end_line, span.end)];
                    lines.extend(list.iter().map(|x| {
                        format!(
                            "{}- {}",
                            spaces(indent + doc.unit),
                            emit::quote(&x.to_string())
                        )
                    }));
                    lines
                };
                edits.push(Edit {
                    from: a.line,
                    to: span.end_line + 1,
                    lines,
                });
            }
            Shape::Block {
                from,
                to,
                indent: item_indent,
            } => {
                let items = doc.entries(from, to, item_indent, true, &path)?;
                let mut kept = 0;
                for (i, it) in items.iter().enumerate() {
                    let matches = match it.value {
                        Inline::Scalar(s) => serde_yaml::from_str::<Text<RelayAddr>>(doc.slice(s))
                            .is_ok_and(|Text(a)| a == *addr),
                        _ => false,
                    };
                    if matches {
                        doc.single_line_scalar(it, &path.clone().index(i))?;
                        edits.push(Edit::remove(it.line));
                    } else {
                        kept += 1;
                    }
                }
                if kept == 0 {
                    edits.push(Edit::replace(
                        a.line,
                        doc.empty_head(&a, a.line, a.head, "[]"),
                    ));
                }
            }
        }
    }
    doc.finish(edits, &after, path, || {
        format!("no {addr} in relay.addresses")
    })
}

/// Adds the service `name` at the end of `services:` (creating `services:`
/// at the end of the file when there is none), written as
/// `peerup config show` writes it:
///
/// ```yaml
/// services:
///   ssh:
///     enabled: true
///     local_address: "localhost:22"
///     allowed_peers:
///       - "laptop"
/// ```
///
/// # Errors
/// [`EditError::ServiceExists`] when `name` is configured already,
/// [`EditError::InvalidService`] for a reserved name or an
/// `allowed_peers` name not in `names`, [`EditError::Invalid`] when
/// `text` does not load, [`EditError::Unsupported`] for a `services:`
/// written as a flow mapping (or in another shape the editor does not
/// change), [`EditError::Broke`] / [`EditError::NoEffect`] when the
/// result fails the re-parse check.
pub fn add_service(text: &str, name: &DnsLabel, service: &Service) -> Result<String, EditError> {
    let before = load(text)?;
    if before.services.contains_key(name) {
        return Err(EditError::ServiceExists {
            name: name.to_string(),
        });
    }
    if is_reserved_service_name(name.as_str()) {
        return Err(EditError::InvalidService {
            name: name.to_string(),
            reason: format!(
                "the name is reserved: /peerup/{name}/1.0.0 is one of peerup's own protocols"
            ),
        });
    }
    for r in service.allowed_peers.iter().flatten() {
        if let PeerRef::Name(n) = r
            && before.names.get(n.as_str()).is_none()
        {
            return Err(EditError::InvalidService {
                name: name.to_string(),
                reason: format!(
                    "allowed_peers names `{n}`, which is not in names ({})",
                    known_names(
                        &before
                            .names
                            .iter()
                            .map(|(n, _)| n.to_string())
                            .collect::<Vec<_>>()
                    )
                ),
            });
        }
    }
    let mut after = before;
    after.services.insert(name.clone(), service.clone());
    add_entry(
        text,
        &after,
        "services",
        |indent, unit| service_lines(indent, unit, name, service),
        || format!("a service `{name}`"),
    )
}

/// Adds an entry at the end of the top-level block mapping `section`
/// (creating it at the end of the file when there is none, or turning an
/// empty one into a block); `block(indent, unit)` gives the entry's lines
/// at `indent`. A flow mapping `section: {...}` is refused.
fn add_entry(
    text: &str,
    after: &Config,
    section: &str,
    block: impl Fn(usize, usize) -> Vec<String>,
    effect: impl FnOnce() -> String,
) -> Result<String, EditError> {
    let doc = Doc::new(text);
    let path = FieldPath::keys(&[section]);
    let unit = doc.unit;
    let edits = match doc.top_entry(section, &path)? {
        None => {
            let mut lines = vec![format!("{section}:")];
            lines.extend(block(unit, unit));
            doc.append(lines)
        }
        Some(e) => match doc.shape(&e, &path, b'{')? {
            Shape::Empty { end_line, tail } => {
                let mut lines = vec![doc.block_head(&e, end_line, tail)];
                lines.extend(block(unit, unit));
                vec![Edit {
                    from: e.line,
                    to: end_line + 1,
                    lines,
                }]
            }
            Shape::Flow(span) => return Err(flow_map(&path, section, span.line)),
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &path)?;
                let last = children
                    .last()
                    .map_or(from, |c| doc.own_comments_end(c.last + 1, indent));
                vec![Edit {
                    from: last,
                    to: last,
                    lines: block(indent, unit),
                }]
            }
        },
    };
    doc.finish(edits, after, path, effect)
}

/// Removes the service `name`: its key line and every line up to its
/// last value. When no service is left, the key becomes `services: {}`
/// (a comment on its line is kept).
///
/// # Errors
/// [`EditError::ServiceNotFound`] listing the configured services,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `services:` written as a flow mapping
/// or a service behind an anchor, alias or tag, [`EditError::Broke`] /
/// [`EditError::NoEffect`] when the result fails the re-parse check (an
/// alias elsewhere of an anchor inside the service, say).
pub fn remove_service(text: &str, name: &DnsLabel) -> Result<String, EditError> {
    let before = load(text)?;
    if !before.services.contains_key(name) {
        return Err(service_not_found(&before, name));
    }
    let mut after = before;
    after.services.remove(name);
    remove_entry(text, &after, "services", name, || {
        format!("no service `{name}`")
    })
}

/// Removes the entry `name` of the top-level block mapping `section`: its
/// key line, every line up to its last value and the comment lines right
/// after it indented deeper than its key. When none is left, the key
/// becomes `section: {}` (a comment on its line is kept).
fn remove_entry(
    text: &str,
    after: &Config,
    section: &str,
    name: &DnsLabel,
    effect: impl FnOnce() -> String,
) -> Result<String, EditError> {
    let doc = Doc::new(text);
    let path = FieldPath::keys(&[section]);
    let mut edits = Vec::new();
    if let Some(e) = doc.top_entry(section, &path)? {
        match doc.shape(&e, &path, b'{')? {
            // The config says the entry is there: leave the text alone
            // and let the re-parse check report the disagreement.
            Shape::Empty { .. } => {}
            Shape::Flow(span) => return Err(flow_map(&path, section, span.line)),
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &path)?;
                if let Some(c) = children
                    .iter()
                    .find(|c| c.key.as_deref() == Some(name.as_str()))
                {
                    if matches!(c.value, Inline::Other) {
                        return Err(unsupported(
                            &path.clone().key(name.as_str()),
                            c.line,
                            "an anchor, alias, tag or block scalar",
                        ));
                    }
                    edits.push(Edit {
                        from: c.line,
                        to: doc.own_comments_end(c.last + 1, indent),
                        lines: Vec::new(),
                    });
                    if children.len() == 1 {
                        edits.push(Edit::replace(
                            e.line,
                            doc.empty_head(&e, e.line, e.head, "{}"),
                        ));
                    }
                }
            }
        }
    }
    doc.finish(edits, after, path, effect)
}

/// Sets `services.<name>.enabled`: the value is replaced in place
/// (keeping a comment after it), or `enabled:` is added as the service's
/// first field when the file left it to its default (true). A service
/// already in that state gives the text unchanged.
///
/// # Errors
/// [`EditError::ServiceNotFound`] listing the configured services,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `services:` or a service written as a
/// flow mapping, or an `enabled` that is not a single-line value,
/// [`EditError::Broke`] / [`EditError::NoEffect`] when the result fails
/// the re-parse check.
pub fn set_service_enabled(
    text: &str,
    name: &DnsLabel,
    enabled: bool,
) -> Result<String, EditError> {
    let before = load(text)?;
    let Some(current) = before.services.get(name) else {
        return Err(service_not_found(&before, name));
    };
    if current.enabled == enabled {
        return Ok(text.to_owned());
    }
    let mut after = before.clone();
    if let Some(s) = after.services.get_mut(name) {
        s.enabled = enabled;
    }

    let doc = Doc::new(text);
    let path = FieldPath::keys(&["services"]);
    let service_path = path.clone().key(name.as_str());
    let field_path = service_path.clone().key("enabled");
    let value = emit::boolean(enabled);
    let mut edits = Vec::new();
    if let Some(e) = doc.top_entry("services", &path)? {
        match doc.shape(&e, &path, b'{')? {
            Shape::Empty { .. } => {}
            Shape::Flow(span) => return Err(flow_services(&path, span.line)),
            Shape::Block { from, to, indent } => {
                let children = doc.entries(from, to, indent, false, &path)?;
                if let Some(c) = children
                    .iter()
                    .find(|c| c.key.as_deref() == Some(name.as_str()))
                {
                    match doc.shape(c, &service_path, b'{')? {
                        Shape::Empty { .. } => {}
                        Shape::Flow(span) => {
                            return Err(unsupported(
                                &service_path,
                                span.line,
                                "a flow mapping `{...}`; write the service as an indented block",
                            ));
                        }
                        Shape::Block { from, to, indent } => {
                            let fields = doc.entries(from, to, indent, false, &service_path)?;
                            match fields.iter().find(|f| f.key.as_deref() == Some("enabled")) {
                                Some(f) => {
                                    let span = doc.single_line_scalar(f, &field_path)?;
                                    let body = doc.body(f.line);
                                    edits.push(Edit::replace(
                                        f.line,
                                        format!(
                                            "{}{value}{}",
                                            &body[..span.start],
                                            &body[span.end..]
                                        ),
                                    ));
                                }
                                None => {
                                    let at = fields.first().map_or(from, |f| f.line);
                                    edits.push(Edit::insert(
                                        at,
                                        format!("{}enabled: {value}", spaces(indent)),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    doc.finish(edits, &after, field_path, || {
        format!("services.{name}.enabled: {value}")
    })
}

/// Adds the forward `name` at the end of `forwards:` (creating
/// `forwards:` at the end of the file when there is none), written as
/// `peerup config show` writes it:
///
/// ```yaml
/// forwards:
///   home-ssh:
///     peer: "home"
///     service: "ssh"
///     local_address: "127.0.0.1:2222"
///     enabled: true
/// ```
///
/// # Errors
/// [`EditError::ForwardExists`] when `name` is configured already,
/// [`EditError::InvalidForward`] for a `peer` name not in `names`, a
/// local address another forward takes, or more than
/// [`MAX_FORWARDS`](super::node::MAX_FORWARDS) forwards,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `forwards:` written as a flow
/// mapping (or in another shape the editor does not change),
/// [`EditError::Broke`] / [`EditError::NoEffect`] when the result fails
/// the re-parse check.
pub fn add_forward(text: &str, name: &DnsLabel, forward: &Forward) -> Result<String, EditError> {
    let before = load(text)?;
    if before.forwards.contains_key(name) {
        return Err(EditError::ForwardExists {
            name: name.to_string(),
        });
    }
    let invalid = |reason: String| EditError::InvalidForward {
        name: name.to_string(),
        reason,
    };
    if let PeerRef::Name(n) = &forward.peer
        && before.names.get(n.as_str()).is_none()
    {
        let known: Vec<String> = before.names.iter().map(|(n, _)| n.to_string()).collect();
        return Err(invalid(format!(
            "peer `{n}` is not in names ({})",
            known_names(&known)
        )));
    }
    if let Some((other, o)) = before
        .forwards
        .iter()
        .find(|(_, o)| o.conflicts_with(forward))
    {
        return Err(invalid(format!(
            "{} takes the same port as forward `{other}` ({})",
            forward.local_address, o.local_address
        )));
    }
    if before.forwards.len() >= super::node::MAX_FORWARDS {
        return Err(invalid(format!(
            "at most {} forwards are allowed",
            super::node::MAX_FORWARDS
        )));
    }
    let mut after = before;
    after.forwards.insert(name.clone(), forward.clone());
    add_entry(
        text,
        &after,
        "forwards",
        |indent, unit| forward_lines(indent, unit, name, forward),
        || format!("a forward `{name}`"),
    )
}

/// Removes the forward `name`: its key line, every line up to its last
/// value and its own comments. When none is left, the key becomes
/// `forwards: {}` (a comment on its line is kept).
///
/// # Errors
/// [`EditError::ForwardNotFound`] listing the configured forwards,
/// [`EditError::Invalid`] when `text` does not load,
/// [`EditError::Unsupported`] for a `forwards:` written as a flow mapping
/// or a forward behind an anchor, alias or tag, [`EditError::Broke`] /
/// [`EditError::NoEffect`] when the result fails the re-parse check.
pub fn remove_forward(text: &str, name: &DnsLabel) -> Result<String, EditError> {
    let before = load(text)?;
    if !before.forwards.contains_key(name) {
        return Err(EditError::ForwardNotFound {
            name: name.to_string(),
            known: before.forwards.keys().map(ToString::to_string).collect(),
        });
    }
    let mut after = before;
    after.forwards.remove(name);
    remove_entry(text, &after, "forwards", name, || {
        format!("no forward `{name}`")
    })
}

/// The lines of a new forward entry at `indent`, its fields one `unit`
/// deeper.
fn forward_lines(indent: usize, unit: usize, name: &DnsLabel, f: &Forward) -> Vec<String> {
    let field = spaces(indent + unit);
    vec![
        format!("{}{}:", spaces(indent), emit::key(name.as_str())),
        format!("{field}peer: {}", emit::quote(&f.peer.to_string())),
        format!("{field}service: {}", emit::quote(f.service.as_str())),
        format!(
            "{field}local_address: {}",
            emit::quote(&f.local_address.to_string())
        ),
        format!("{field}enabled: {}", emit::boolean(f.enabled)),
    ]
}

/// The lines of a new service entry at `indent`, its fields one `unit`
/// deeper.
fn service_lines(indent: usize, unit: usize, name: &DnsLabel, s: &Service) -> Vec<String> {
    let field = spaces(indent + unit);
    let mut lines = vec![
        format!("{}{}:", spaces(indent), emit::key(name.as_str())),
        format!("{field}enabled: {}", emit::boolean(s.enabled)),
        format!(
            "{field}local_address: {}",
            emit::quote(&s.local_address.to_string())
        ),
    ];
    match &s.allowed_peers {
        None => {}
        Some(list) if list.is_empty() => lines.push(format!("{field}allowed_peers: []")),
        Some(list) => {
            lines.push(format!("{field}allowed_peers:"));
            let item = spaces(indent + 2 * unit);
            lines.extend(
                list.iter()
                    .map(|p| format!("{item}- {}", emit::quote(&p.to_string()))),
            );
        }
    }
    lines
}

fn service_not_found(config: &Config, name: &DnsLabel) -> EditError {
    EditError::ServiceNotFound {
        name: name.to_string(),
        known: config.services.keys().map(ToString::to_string).collect(),
    }
}

fn flow_services(path: &FieldPath, line: usize) -> EditError {
    flow_map(path, "services", line)
}

fn flow_map(path: &FieldPath, section: &str, line: usize) -> EditError {
    unsupported(
        path,
        line,
        &format!("a flow mapping `{section}: {{...}}`; write it as an indented block"),
    )
}

fn load(text: &str) -> Result<Config, EditError> {
    Config::parse(Path::new(FILE), text)
        .map(|(config, _)| config)
        .map_err(|error| EditError::Invalid { error })
}

fn unsupported(path: &FieldPath, line: usize, reason: &str) -> EditError {
    EditError::Unsupported {
        path: path.clone(),
        line: line + 1,
        reason: reason.to_owned(),
    }
}

fn spaces(n: usize) -> String {
    " ".repeat(n)
}

// ---------------------------------------------------------------------------
// The document as lines (split by [`yaml_lines`]).

/// Lines `from..to` replaced by `lines` (an insertion when `from == to`).
struct Edit {
    from: usize,
    to: usize,
    lines: Vec<String>,
}

impl Edit {
    fn insert(at: usize, line: String) -> Self {
        Edit {
            from: at,
            to: at,
            lines: vec![line],
        }
    }

    fn replace(line: usize, with: String) -> Self {
        Edit {
            from: line,
            to: line + 1,
            lines: vec![with],
        }
    }

    fn remove(line: usize) -> Self {
        Edit {
            from: line,
            to: line + 1,
            lines: Vec::new(),
        }
    }
}

/// A value written on the line of its key or `-`, possibly running on to
/// later lines (a quoted scalar or a flow collection). Lines are 0-based,
/// offsets are bytes in the line's body.
#[derive(Debug, Clone, Copy)]
struct Span {
    line: usize,
    start: usize,
    end_line: usize,
    end: usize,
    /// A `# comment` inside (only possible over several lines).
    comment: bool,
}

/// What follows `key:` or `-` on its line.
#[derive(Debug, Clone, Copy)]
enum Inline {
    /// Nothing (maybe a comment): the value is on the next lines, or null.
    Nothing,
    /// A plain or quoted scalar.
    Scalar(Span),
    /// `[...]` or `{...}`.
    Flow(Span),
    /// An anchor, alias, tag, block scalar or nested collection.
    Other,
}

/// A key of a block mapping, or an item of a block list.
#[derive(Debug)]
struct Entry {
    line: usize,
    /// The key, unquoted; `None` for a list item.
    key: Option<String>,
    /// Byte offset in the body just after the `:` or `-`.
    head: usize,
    value: Inline,
    /// The last line holding content of this entry.
    last: usize,
}

/// A collection value, as far as the editor is concerned.
enum Shape {
    /// Nothing, `~`, `null`, `{}` or `[]`, ending on `end_line` where the
    /// text from byte `tail` on is the rest of the line (spaces, comment).
    Empty { end_line: usize, tail: usize },
    /// A non-empty flow collection.
    Flow(Span),
    /// A block collection on lines `from..to`, entries at `indent`.
    Block {
        from: usize,
        to: usize,
        indent: usize,
    },
}

struct Doc<'a> {
    text: &'a str,
    lines: Vec<Line<'a>>,
    /// The line end for new lines: `\r\n` when most lines use it.
    eol: &'static str,
    /// The indent step for new nesting levels.
    unit: usize,
}

fn is_item(rest: &str) -> bool {
    rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t")
}

fn is_null(scalar: &str) -> bool {
    matches!(scalar, "~" | "null" | "Null" | "NULL")
}

/// Whether `rest` (what follows a value on its line) is only spaces and a
/// comment.
fn is_tail(rest: &str) -> bool {
    let t = rest.trim_start_matches([' ', '\t']);
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Self {
        let lines = yaml_lines::lines(text);
        let crlf = lines.iter().filter(|l| l.eol == "\r\n").count();
        let lf = lines.iter().filter(|l| l.eol == "\n").count();
        let mut doc = Doc {
            text,
            lines,
            eol: if crlf > lf { "\r\n" } else { "\n" },
            unit: 2,
        };
        doc.unit = (0..doc.lines.len())
            .filter(|&i| doc.is_content(i))
            .map(|i| doc.indent(i))
            .filter(|&n| n > 0)
            .min()
            .unwrap_or(2);
        doc
    }

    fn body(&self, i: usize) -> &'a str {
        self.lines[i].body
    }

    fn indent(&self, i: usize) -> usize {
        yaml_lines::indent(self.body(i))
    }

    /// The first line from `from` on that is not a comment line indented
    /// deeper than `indent`: comments right after an entry's last value,
    /// at its fields' depth, belong to the entry (`# allowed_peers: []`
    /// under a service).
    fn own_comments_end(&self, from: usize, indent: usize) -> usize {
        let mut i = from;
        while i < self.lines.len()
            && self.body(i).trim_start().starts_with('#')
            && self.indent(i) > indent
        {
            i += 1;
        }
        i
    }

    /// Not blank and not only a comment.
    fn is_content(&self, i: usize) -> bool {
        let t = self.body(i).trim();
        !t.is_empty() && !t.starts_with('#')
    }

    fn offset(&self, line: usize, col: usize) -> usize {
        self.lines[line].start + col
    }

    fn slice(&self, span: Span) -> &'a str {
        &self.text[self.offset(span.line, span.start)..self.offset(span.end_line, span.end)]
    }

    /// The top-level key `key`, if the document has it; `path` is the
    /// field being edited, for errors.
    fn top_entry(&self, key: &str, path: &FieldPath) -> Result<Option<Entry>, EditError> {
        let root = self.entries(0, self.lines.len(), 0, false, path)?;
        Ok(root.into_iter().find(|e| e.key.as_deref() == Some(key)))
    }

    /// The entries of the block collection on lines `from..to` whose
    /// entries start at `indent` (a list when `seq`). Deeper lines belong
    /// to the entry above them, as do `-` items at the same indent under a
    /// key with nothing after it (a list written without indentation).
    fn entries(
        &self,
        from: usize,
        to: usize,
        indent: usize,
        seq: bool,
        path: &FieldPath,
    ) -> Result<Vec<Entry>, EditError> {
        let mut out: Vec<Entry> = Vec::new();
        let mut i = from;
        while i < to {
            if !self.is_content(i) {
                i += 1;
                continue;
            }
            let body = self.body(i);
            let ind = self.indent(i);
            let mut rest = &body[ind..];
            if i == 0 {
                rest = rest.strip_prefix('\u{feff}').unwrap_or(rest);
            }
            let compact_item = ind == indent
                && !seq
                && is_item(rest)
                && out
                    .last()
                    .is_some_and(|e| matches!(e.value, Inline::Nothing));
            if ind > indent || compact_item {
                let Some(e) = out.last_mut() else {
                    return Err(unsupported(
                        path,
                        i,
                        "an indent deeper than the lines after it",
                    ));
                };
                // A quoted value or flow collection in a nested line may
                // run on over lines of any indent: skip them whole.
                e.last = self.nested_end(i, ind);
                i = e.last + 1;
                continue;
            }
            if ind < indent {
                return Err(unsupported(
                    path,
                    i,
                    "an indent shallower than the lines before it",
                ));
            }
            if ind == 0
                && (rest.starts_with('%') || rest.starts_with("---") || rest.starts_with("..."))
            {
                if rest.starts_with('%') || is_tail(&rest[3..]) {
                    i += 1;
                    continue;
                }
                return Err(unsupported(path, i, "content after a document marker"));
            }
            let (key, head) = if seq {
                if !is_item(rest) {
                    return Err(unsupported(path, i, "expected a `- ` list item"));
                }
                (None, body.len() - rest.len() + 1)
            } else {
                let Some((key, value)) = split_key(rest) else {
                    return Err(unsupported(path, i, "expected a `key: value` line"));
                };
                (Some(key), body.len() - value.len())
            };
            let value = self.inline(i, head, path)?;
            let last = match value {
                Inline::Scalar(s) | Inline::Flow(s) => s.end_line,
                Inline::Nothing | Inline::Other => i,
            };
            out.push(Entry {
                line: i,
                key,
                head,
                value,
                last,
            });
            i = last + 1;
        }
        Ok(out)
    }

    /// The last line of the nested content line `i` (indent `ind`): `i`
    /// unless its value is quoted or a flow collection spanning lines.
    fn nested_end(&self, i: usize, ind: usize) -> usize {
        let body = self.body(i);
        let rest = &body[ind..];
        let head = if is_item(rest) {
            Some(ind + 1)
        } else {
            split_key(rest).map(|(_, value)| body.len() - value.len())
        };
        match head.map(|h| self.inline(i, h, &FieldPath::root())) {
            Some(Ok(Inline::Scalar(s) | Inline::Flow(s))) => s.end_line,
            _ => i,
        }
    }

    /// What follows byte `head` of line `i`.
    fn inline(&self, i: usize, head: usize, path: &FieldPath) -> Result<Inline, EditError> {
        let body = self.body(i);
        let value = body[head..].trim_start_matches([' ', '\t']);
        let start = body.len() - value.len();
        let Some(first) = value.chars().next() else {
            return Ok(Inline::Nothing);
        };
        let after_first = &value[first.len_utf8()..];
        match first {
            '#' => Ok(Inline::Nothing),
            '[' | '{' | '"' | '\'' => {
                let span = self.scan_flow(i, start, path)?;
                if !is_tail(&self.body(span.end_line)[span.end..]) {
                    // `"key": value` in a list item: a nested mapping.
                    return Ok(Inline::Other);
                }
                Ok(if first == '[' || first == '{' {
                    Inline::Flow(span)
                } else {
                    Inline::Scalar(span)
                })
            }
            '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' => Ok(Inline::Other),
            '-' | '?' | ':' if after_first.is_empty() || after_first.starts_with([' ', '\t']) => {
                Ok(Inline::Other)
            }
            _ => {
                let bytes = value.as_bytes();
                let mut end = value.len();
                for k in 1..bytes.len() {
                    if bytes[k] == b'#' && matches!(bytes[k - 1], b' ' | b'\t') {
                        end = k;
                        break;
                    }
                }
                let scalar = value[..end].trim_end_matches([' ', '\t']);
                if scalar.ends_with(':') || scalar.contains(": ") || scalar.contains(":\t") {
                    return Ok(Inline::Other);
                }
                Ok(Inline::Scalar(Span {
                    line: i,
                    start,
                    end_line: i,
                    end: start + scalar.len(),
                    comment: false,
                }))
            }
        }
    }

    /// Finds the end of the quoted scalar or flow collection that starts
    /// at byte `col` of line `line`.
    fn scan_flow(&self, line: usize, col: usize, path: &FieldPath) -> Result<Span, EditError> {
        #[derive(PartialEq)]
        enum Quote {
            No,
            Double,
            Single,
        }
        let mut quote = Quote::No;
        let mut depth = 0usize;
        let mut comment = false;
        let mut li = line;
        let mut from = col;
        // The last byte outside quotes that was not a space: a quote opens
        // a quoted scalar only where a scalar starts (first, or after `[`,
        // `{`, `,` or `:`); inside a plain scalar (`{a: b "c}`) it is text.
        let mut last = b'[';
        while li < self.lines.len() {
            let bytes = self.body(li).as_bytes();
            let mut prev = b' ';
            let mut k = from;
            while k < bytes.len() {
                let b = bytes[k];
                let mut closed = false;
                match quote {
                    Quote::Double => match b {
                        b'\\' => {
                            k += 2;
                            prev = b'x';
                            continue;
                        }
                        b'"' => {
                            quote = Quote::No;
                            closed = depth == 0;
                        }
                        _ => {}
                    },
                    Quote::Single => {
                        if b == b'\'' {
                            if bytes.get(k + 1) == Some(&b'\'') {
                                k += 2;
                                prev = b'x';
                                continue;
                            }
                            quote = Quote::No;
                            closed = depth == 0;
                        }
                    }
                    Quote::No => match b {
                        b'#' if matches!(prev, b' ' | b'\t') => {
                            comment = true;
                            break;
                        }
                        b'"' | b'\''
                            if matches!(prev, b' ' | b'\t' | b'[' | b'{' | b',' | b':')
                                && matches!(last, b'[' | b'{' | b',' | b':') =>
                        {
                            quote = if b == b'"' {
                                Quote::Double
                            } else {
                                Quote::Single
                            };
                        }
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' => {
                            let Some(d) = depth.checked_sub(1) else {
                                return Err(unsupported(path, li, "an unmatched bracket"));
                            };
                            depth = d;
                            closed = depth == 0;
                        }
                        _ => {}
                    },
                }
                if !matches!(b, b' ' | b'\t') {
                    last = b;
                }
                if closed {
                    return Ok(Span {
                        line,
                        start: col,
                        end_line: li,
                        end: k + 1,
                        comment,
                    });
                }
                prev = b;
                k += 1;
            }
            li += 1;
            from = 0;
        }
        Err(unsupported(path, line, "an unclosed quote or bracket"))
    }

    /// The shape of the collection under `e`; `open` is `{` for a
    /// mapping, `[` for a list.
    fn shape(&self, e: &Entry, path: &FieldPath, open: u8) -> Result<Shape, EditError> {
        match e.value {
            Inline::Nothing if e.last > e.line => {
                let from = e.line + 1;
                let first = (from..=e.last)
                    .find(|&i| self.is_content(i))
                    .unwrap_or(e.last);
                Ok(Shape::Block {
                    from,
                    to: e.last + 1,
                    indent: self.indent(first),
                })
            }
            Inline::Nothing => Ok(Shape::Empty {
                end_line: e.line,
                tail: e.head,
            }),
            Inline::Scalar(s) if e.last == s.end_line && is_null(self.slice(s)) => {
                Ok(Shape::Empty {
                    end_line: s.end_line,
                    tail: s.end,
                })
            }
            Inline::Scalar(s) => Err(unsupported(
                path,
                s.line,
                "a single value where a mapping or list belongs",
            )),
            Inline::Flow(s) => {
                let text = self.slice(s);
                if text.as_bytes().first() != Some(&open) {
                    return Err(unsupported(
                        path,
                        s.line,
                        "a list where a mapping belongs, or the reverse",
                    ));
                }
                if e.last > s.end_line {
                    return Err(unsupported(
                        path,
                        s.end_line + 1,
                        "lines after the closing bracket",
                    ));
                }
                let inner = text.get(1..text.len() - 1).unwrap_or_default();
                if !s.comment && inner.trim().is_empty() {
                    return Ok(Shape::Empty {
                        end_line: s.end_line,
                        tail: s.end,
                    });
                }
                if s.comment {
                    return Err(unsupported(
                        path,
                        s.line,
                        "comments inside a multi-line flow collection, which rewriting it would drop",
                    ));
                }
                Ok(Shape::Flow(s))
            }
            Inline::Other => Err(unsupported(
                path,
                e.line,
                "an anchor, alias, tag or block scalar",
            )),
        }
    }

    /// The entry's value when it is a scalar on the entry's own line.
    fn single_line_scalar(&self, e: &Entry, path: &FieldPath) -> Result<Span, EditError> {
        match e.value {
            Inline::Scalar(s) if s.end_line == e.line && e.last == e.line => Ok(s),
            _ => Err(unsupported(
                path,
                e.line,
                "a value that is not a single-line scalar",
            )),
        }
    }

    /// The key line of `e` with its value (ending on `end_line` before
    /// byte `tail`) removed, ready for block children below it. A comment
    /// after the value stays.
    fn block_head(&self, e: &Entry, end_line: usize, tail: usize) -> String {
        format!(
            "{}{}",
            &self.body(e.line)[..e.head],
            &self.body(end_line)[tail..]
        )
    }

    /// The key line of `e` with `empty` (`{}` or `[]`) as its value.
    fn empty_head(&self, e: &Entry, end_line: usize, tail: usize, empty: &str) -> String {
        format!(
            "{} {empty}{}",
            &self.body(e.line)[..e.head],
            &self.body(end_line)[tail..]
        )
    }

    /// The entries of `names: {...}`, in their order.
    fn flow_names(&self, span: Span, path: &FieldPath) -> Result<Vec<(Name, PeerId)>, EditError> {
        serde_yaml::from_str::<FlowNames>(self.slice(span))
            .map(|n| n.0)
            .map_err(|_| unsupported(path, span.line, "a flow mapping the editor cannot read"))
    }

    /// The items of `addresses: [...]`, in their order.
    fn flow_relays(&self, span: Span, path: &FieldPath) -> Result<Vec<RelayAddr>, EditError> {
        serde_yaml::from_str::<List<RelayAddr>>(self.slice(span))
            .map(|l| l.0)
            .map_err(|_| unsupported(path, span.line, "a flow list the editor cannot read"))
    }

    /// An edit appending `lines` as a new top-level section, after a blank
    /// line unless the file ends with one.
    fn append(&self, lines: Vec<String>) -> Vec<Edit> {
        let n = self.lines.len();
        let mut all = Vec::with_capacity(lines.len() + 1);
        if self.lines.last().is_some_and(|l| !l.body.trim().is_empty()) {
            all.push(String::new());
        }
        all.extend(lines);
        vec![Edit {
            from: n,
            to: n,
            lines: all,
        }]
    }

    /// The text with `edits` (non-overlapping) applied. A replaced line
    /// keeps its line end; new lines get the file's; a line without one
    /// gets one when something follows it.
    fn apply(&self, mut edits: Vec<Edit>) -> String {
        edits.sort_by_key(|e| (e.from, e.to));
        let mut pieces: Vec<(Cow<'a, str>, &'a str)> = Vec::with_capacity(self.lines.len() + 4);
        let mut i = 0;
        for e in edits {
            while i < e.from {
                pieces.push((Cow::Borrowed(self.lines[i].body), self.lines[i].eol));
                i += 1;
            }
            for (k, line) in e.lines.into_iter().enumerate() {
                let eol = if k == 0 && e.to > e.from {
                    self.lines[e.from].eol
                } else {
                    self.eol
                };
                pieces.push((Cow::Owned(line), eol));
            }
            i = i.max(e.to);
        }
        while i < self.lines.len() {
            pieces.push((Cow::Borrowed(self.lines[i].body), self.lines[i].eol));
            i += 1;
        }
        let n = pieces.len();
        let mut out = String::with_capacity(self.text.len() + 128);
        for (k, (body, eol)) in pieces.iter().enumerate() {
            out.push_str(body);
            out.push_str(if eol.is_empty() && k + 1 < n {
                self.eol
            } else {
                eol
            });
        }
        out
    }

    /// Applies `edits` and checks the result: it must load, to exactly
    /// `expected`.
    fn finish(
        &self,
        edits: Vec<Edit>,
        expected: &Config,
        path: FieldPath,
        effect: impl FnOnce() -> String,
    ) -> Result<String, EditError> {
        let text = self.apply(edits);
        match Config::parse(Path::new(FILE), &text) {
            Err(error) => Err(EditError::Broke {
                path,
                error: Box::new(error),
            }),
            Ok((config, _)) if config == *expected => Ok(text),
            Ok(_) => Err(EditError::NoEffect {
                path,
                expected: effect(),
            }),
        }
    }
}

/// A `names:` flow mapping read in its order, with the config's own
/// validation of keys and values.
struct FlowNames(Vec<(Name, PeerId)>);

struct FlowNamesVisitor;

impl<'de> Visitor<'de> for FlowNamesVisitor {
    type Value = FlowNames;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of names to peer IDs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlowNames, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(name)) = map.next_key::<Text<Name>>()? {
            let Text(peer) = map.next_value::<Text<PeerId>>()?;
            out.push((name, peer));
        }
        Ok(FlowNames(out))
    }
}

impl<'de> Deserialize<'de> for FlowNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FlowNamesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_text(text: &str) -> String {
        let doc = Doc::new(text);
        let start = doc.body(0).find(['[', '{', '"', '\'']).unwrap();
        let span = doc.scan_flow(0, start, &FieldPath::root()).unwrap();
        doc.slice(span).to_owned()
    }

    #[test]
    fn flow_scanning_respects_quotes_and_comments() {
        assert_eq!(
            span_text("a: [x, \"]#\", 'it''s']  # c"),
            "[x, \"]#\", 'it''s']"
        );
        assert_eq!(span_text("a: {k: \"\\\"}\"} x"), "{k: \"\\\"}\"}");
        assert_eq!(span_text("a: [it's, b]"), "[it's, b]");
        assert_eq!(span_text("a: [x, # c\n  y]\n"), "[x, # c\n  y]");
        let doc = Doc::new("a: [x, # c\n  y]\n");
        assert!(doc.scan_flow(0, 3, &FieldPath::root()).unwrap().comment);
        let doc = Doc::new("a: [x, {y]\n");
        assert!(doc.scan_flow(0, 3, &FieldPath::root()).is_err());
        // A quote inside a plain scalar is text (found by the fuzzer: the
        // scan ran past `}` to the end of the file).
        assert_eq!(span_text("a: {k: x \"y}\nb: 1\n"), "{k: x \"y}");
        assert_eq!(span_text("a: [x 'y, \"z\"]"), "[x 'y, \"z\"]");
        assert_eq!(span_text("a: {\"k\": \"}\"}"), "{\"k\": \"}\"}");
    }

    #[test]
    fn reads_line_ends_and_indent_step() {
        let doc = Doc::new("a:\r\n    b: 1\r\nc: 2\n");
        assert_eq!(doc.eol, "\r\n");
        assert_eq!(doc.unit, 4);
        assert_eq!(doc.lines[2].eol, "\n");
        let doc = Doc::new("a: 1");
        assert_eq!((doc.eol, doc.unit, doc.lines[0].eol), ("\n", 2, ""));
    }

    #[test]
    fn tails_are_only_spaces_and_comments() {
        assert!(is_tail(""));
        assert!(is_tail("  "));
        assert!(is_tail("  # c"));
        assert!(!is_tail("# c"));
        assert!(!is_tail(" x"));
    }
}
