//! Diagnostics for config files: where a problem is and what it is.
//!
//! Input: the file name (used only in messages) and the file's text.
//! Output: errors and warnings that name the file, the field path
//! (`relay.addresses[0]`, `services.ssh.local_address`), the line and, when
//! known, the column:
//!
//! ```text
//! peerup.yaml:12:7: relay.addresses[0]: relay address `/ip4/1.2.3.4/tcp/7777` must end with /p2p/<relay-peer-id>
//! peerup.yaml:4:3: network.listen_adresses: unknown key (ignored); check its spelling and indentation
//! ```
//!
//! This is the **peerup fixes** of WIRE.md §9: the Go version ignored
//! unknown keys silently and reported errors without a place.
//!
//! How positions are found: `serde_yaml` reports the line and column of
//! the value that failed (every value is validated inside its visitor, see
//! the private `de` module), `serde_path_to_error` the field path, and
//! `serde_ignored` the path of each unknown key. Unknown keys and checks made
//! after parsing (an unknown name in `allowed_peers`) have a path but no
//! position; [`locate`], a small indentation-based scanner of block-style
//! YAML, finds their line.

use core::fmt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};

use super::SUPPORTED_VERSION;
use super::yaml_lines::{self, split_key};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    /// A mapping key: `relay`, `ssh`.
    Key(String),
    /// A list position, from 0.
    Index(usize),
    /// A key that is not text (a list used as a key).
    Unknown,
}

/// Where a value sits in the document: `services.ssh.allowed_peers[1]`.
///
/// The root path displays as the empty string. Keys other than plain
/// `[A-Za-z0-9_-]` words are shown quoted (`names."nas.garage"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// The document itself.
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// This path followed by a mapping key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Segment::Key(key.into()));
        self
    }

    /// This path followed by a list position.
    #[must_use]
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Segment::Index(index));
        self
    }

    /// A path of keys: `FieldPath::keys(&["relay", "addresses"])`.
    pub fn keys(keys: &[&str]) -> Self {
        FieldPath(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
    }

    /// The steps, outermost first.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether this is the document itself.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Self {
        FieldPath(
            path.iter()
                .map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
                    serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
                    serde_path_to_error::Segment::Enum { variant } => Segment::Key(variant.clone()),
                    serde_path_to_error::Segment::Unknown => Segment::Unknown,
                })
                .collect(),
        )
    }

    fn from_ignored(path: &serde_ignored::Path<'_>) -> Self {
        fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<Segment>) {
            match path {
                serde_ignored::Path::Root => {}
                serde_ignored::Path::Seq { parent, index } => {
                    walk(parent, out);
                    out.push(Segment::Index(*index));
                }
                serde_ignored::Path::Map { parent, key } => {
                    walk(parent, out);
                    out.push(Segment::Key(key.clone()));
                }
                serde_ignored::Path::Some { parent }
                | serde_ignored::Path::NewtypeStruct { parent }
                | serde_ignored::Path::NewtypeVariant { parent } => walk(parent, out),
            }
        }
        let mut out = Vec::new();
        walk(path, &mut out);
        FieldPath(out)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if !k.is_empty()
                        && k.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                    {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Segment::Unknown => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str("?")?;
                }
            }
        }
        Ok(())
    }
}

/// A position in the file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1, when known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "{}:{c}", self.line),
            None => write!(f, "{}", self.line),
        }
    }
}

/// `file:line:col: path: ` (parts that are unknown are left out).
fn prefix(file: &Path, location: Option<&Location>, path: Option<&FieldPath>) -> String {
    let mut out = file.display().to_string();
    if let Some(l) = location {
        out.push(':');
        out.push_str(&l.to_string());
    }
    out.push_str(": ");
    if let Some(p) = path.filter(|p| !p.is_root()) {
        out.push_str(&p.to_string());
        out.push_str(": ");
    }
    out
}

/// Why a config file was refused. Every variant names the file; all but
/// `Empty` carry the position when it is known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No settings at all: empty, blank or only comments.
    #[error(
        "{}is empty (no settings); write the settings, or run `peerup init` to create a config",
        prefix(file, None, None)
    )]
    Empty {
        /// The file, as the caller named it.
        file: PathBuf,
    },
    /// Not well-formed YAML (a tab for indentation, an unclosed quote,
    /// several documents).
    #[error("{}{reason}", prefix(file, location.as_ref(), None))]
    Syntax {
        /// The file, as the caller named it.
        file: PathBuf,
        /// Where the YAML parser stopped.
        location: Option<Location>,
        /// The parser's reason.
        reason: String,
    },
    /// A field has a bad value, a wrong type, is missing or is repeated.
    #[error("{}{reason}", prefix(file, location.as_ref(), Some(path)))]
    Invalid {
        /// The file, as the caller named it.
        file: PathBuf,
        /// The field.
        path: FieldPath,
        /// Where the value is.
        location: Option<Location>,
        /// What is wrong with it.
        reason: String,
    },
    /// `version` is newer than this peerup understands.
    #[error(
        "{}config version {found} is newer than this peerup supports ({}); please upgrade peerup",
        prefix(file, location.as_ref(), Some(&FieldPath::keys(&["version"]))),
        SUPPORTED_VERSION
    )]
    UnsupportedVersion {
        /// The file, as the caller named it.
        file: PathBuf,
        /// Where the version is.
        location: Option<Location>,
        /// The version in the file.
        found: u64,
    },
    /// `allowed_peers` names a peer that is not in `names`.
    #[error(
        "{}`{name}` is neither a peer ID nor a name under `names:` ({})",
        prefix(file, location.as_ref(), Some(path)),
        known_names(known)
    )]
    UnknownPeerName {
        /// The file, as the caller named it.
        file: PathBuf,
        /// The list entry.
        path: FieldPath,
        /// Where the entry is.
        location: Option<Location>,
        /// The unknown name.
        name: String,
        /// The names that are defined, sorted.
        known: Vec<String>,
    },
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        "no names are defined".to_owned()
    } else {
        format!("defined names: {}", known.join(", "))
    }
}

impl ConfigError {
    /// The file named in the error.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Empty { file }
            | ConfigError::Syntax { file, .. }
            | ConfigError::Invalid { file, .. }
            | ConfigError::UnsupportedVersion { file, .. }
            | ConfigError::UnknownPeerName { file, .. } => file,
        }
    }

    /// Where in the file, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Empty { .. } => None,
            ConfigError::Syntax { location, .. }
            | ConfigError::Invalid { location, .. }
            | ConfigError::UnsupportedVersion { location, .. }
            | ConfigError::UnknownPeerName { location, .. } => *location,
        }
    }

    /// The field, when the error is about one.
    pub fn path(&self) -> Option<FieldPath> {
        match self {
            ConfigError::Empty { .. } | ConfigError::Syntax { .. } => None,
            ConfigError::Invalid { path, .. } | ConfigError::UnknownPeerName { path, .. } => {
                Some(path.clone())
            }
            ConfigError::UnsupportedVersion { .. } => Some(FieldPath::keys(&["version"])),
        }
    }
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// A key this peerup does not know; it is ignored.
    UnknownKey,
    /// `relay.addresses` is empty.
    NoRelayAddresses,
    /// `network.listen_addresses` is an explicit empty list.
    NoListenAddresses,
    /// `security.enable_connection_gating: false` on a node.
    ConnectionGatingDisabled,
    /// A service with `enabled: false`.
    ServiceDisabled {
        /// The service.
        service: String,
    },
    /// A service with `allowed_peers: []`.
    NobodyAllowed {
        /// The service.
        service: String,
    },
    /// A path starting with `~`, which is not expanded.
    TildeNotExpanded {
        /// The path as written.
        value: String,
    },
    /// `security.enable_connection_gating: false` on a relay.
    RelayOpenToAll,
    /// A relay without gating and with unlimited sessions.
    UnlimitedSessionsWithoutGating,
    /// The relay's health endpoint listens beyond the loopback interface.
    HealthEndpointExposed {
        /// The configured address.
        address: String,
    },
    /// A forward listens beyond the loopback interface: whoever reaches
    /// the port reaches the peer's service as this machine.
    ForwardExposed {
        /// The forward.
        forward: String,
        /// Its local address.
        address: String,
    },
    /// More unknown keys than are worth listing one by one.
    MoreUnknownKeys {
        /// How many were not listed.
        count: usize,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::UnknownKey => f.write_str("unknown key (ignored); check its spelling and indentation"),
            WarningKind::MoreUnknownKeys { count } => write!(
                f,
                "{count} more unknown keys (ignored), not listed; is this a peerup config?"
            ),
            WarningKind::NoRelayAddresses => f.write_str(
                "no relay addresses configured: peers behind NAT cannot reach this node; add one with `peerup relay add`",
            ),
            WarningKind::NoListenAddresses => {
                f.write_str("empty list: this node will not listen for direct connections")
            }
            WarningKind::ConnectionGatingDisabled => {
                f.write_str("connection gating is disabled: any peer may connect, not only those in authorized_keys")
            }
            WarningKind::ServiceDisabled { service } => {
                write!(f, "service `{service}` is disabled (enabled: false) and will not be exposed")
            }
            WarningKind::NobodyAllowed { service } => write!(
                f,
                "allowed_peers is empty, so no peer may use service `{service}`; remove the key to allow every authorized peer"
            ),
            WarningKind::TildeNotExpanded { value } => write!(
                f,
                "`{value}` starts with `~`, which is not expanded; use an absolute path or one relative to the config file"
            ),
            WarningKind::RelayOpenToAll => f.write_str(
                "connection gating is disabled: any peer may reserve a slot and relay traffic through this server",
            ),
            WarningKind::UnlimitedSessionsWithoutGating => f.write_str(
                "sessions are unlimited while connection gating is disabled: anyone may relay without limit",
            ),
            WarningKind::HealthEndpointExposed { address } => {
                write!(f, "the health endpoint listens on {address}, reachable beyond this machine")
            }
            WarningKind::ForwardExposed { forward, address } => write!(
                f,
                "forward `{forward}` listens on {address}, reachable beyond this machine: whoever reaches that port uses the peer's service as this machine (use 127.0.0.1 unless that is the point)"
            ),
        }
    }
}

/// Advice about a config that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The file, as the caller named it.
    pub file: PathBuf,
    /// The field the advice is about.
    pub path: FieldPath,
    /// Where the field is, when it is in the file.
    pub location: Option<Location>,
    /// The advice.
    pub kind: WarningKind,
}

impl Warning {
    /// A warning about `path`, located with `locator`.
    pub(crate) fn at(file: &Path, locator: &Locator, path: FieldPath, kind: WarningKind) -> Self {
        let location = locator.locate(&path);
        Warning {
            file: file.to_owned(),
            path,
            location,
            kind,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            prefix(&self.file, self.location.as_ref(), Some(&self.path)),
            self.kind
        )
    }
}

// ---------------------------------------------------------------------------
// The locator.

struct Frame {
    indent: usize,
    seg: Segment,
}

/// Every key and list item of block-style YAML with its full path and
/// position (the column of the key or the `-`).
fn scan(text: &str) -> Vec<(Vec<Segment>, Location)> {
    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // Inside a block scalar (`key: |`) owned by an entry at this indent.
    let mut block: Option<usize> = None;
    for (i, line) in yaml_lines::lines(text).iter().map(|l| l.body).enumerate() {
        let line_no = i + 1;
        let indent = yaml_lines::indent(line);
        let mut rest = &line[indent..];
        if let Some(owner) = block {
            if rest.trim().is_empty() || indent > owner {
                continue;
            }
            block = None;
        }
        if rest.trim().is_empty() || rest.starts_with('#') {
            continue;
        }
        if indent == 0 && (rest.starts_with("---") || rest.starts_with("...")) {
            let after = &rest[3..];
            if after.is_empty() || after.starts_with([' ', '\t']) {
                stack.clear();
                continue;
            }
        }
        let mut col = indent;
        loop {
            if rest == "-" || rest.starts_with("- ") {
                let mut next = 0;
                while let Some(top) = stack.last() {
                    if top.indent > col {
                        stack.pop();
                        continue;
                    }
                    if top.indent == col
                        && let Segment::Index(n) = top.seg
                    {
                        next = n + 1;
                        stack.pop();
                    }
                    break;
                }
                stack.push(Frame {
                    indent: col,
                    seg: Segment::Index(next),
                });
                out.push((
                    stack.iter().map(|f| f.seg.clone()).collect(),
                    loc(line_no, line, col),
                ));
                let after = &rest[1..];
                let spaces = yaml_lines::indent(after);
                col += 1 + spaces;
                rest = &after[spaces..];
                if rest.is_empty() || rest.starts_with('#') {
                    break;
                }
                continue;
            }
            if let Some((key, value)) = split_key(rest) {
                while stack.last().is_some_and(|t| t.indent >= col) {
                    stack.pop();
                }
                stack.push(Frame {
                    indent: col,
                    seg: Segment::Key(key),
                });
                out.push((
                    stack.iter().map(|f| f.seg.clone()).collect(),
                    loc(line_no, line, col),
                ));
                let value = value.trim_start();
                if value.starts_with(['|', '>']) {
                    block = Some(col);
                }
            }
            break;
        }
    }
    out
}

/// The location of the byte offset `col` of `line`, column in characters.
fn loc(line_no: usize, line: &str, col: usize) -> Location {
    let column = line.get(..col).map_or(col, |s| s.chars().count()) + 1;
    Location {
        line: line_no,
        column: Some(column),
    }
}

/// The keys and list items of a document, scanned once, for looking up
/// the position of many paths (see [`locate`]).
#[derive(Debug, Clone, Default)]
pub struct Locator {
    positions: BTreeMap<Vec<Segment>, Vec<Location>>,
}

impl Locator {
    /// Scans `text` (block-style YAML; anything else yields fewer hits,
    /// never a panic).
    pub fn new(text: &str) -> Self {
        let mut positions: BTreeMap<Vec<Segment>, Vec<Location>> = BTreeMap::new();
        for (path, location) in scan(text) {
            positions.entry(path).or_default().push(location);
        }
        Locator { positions }
    }

    /// The position of `path`, or of its deepest enclosing field that is in
    /// the text; see [`locate`].
    pub fn locate(&self, path: &FieldPath) -> Option<Location> {
        let segs = path.segments();
        (1..=segs.len()).rev().find_map(|n| {
            self.positions
                .get(&segs[..n])
                .and_then(|all| all.first().copied())
        })
    }

    /// Every position of exactly `path`, in order (a repeated key has
    /// several).
    pub fn all(&self, path: &FieldPath) -> &[Location] {
        self.positions
            .get(path.segments())
            .map_or(&[], Vec::as_slice)
    }
}

/// Finds the line (and column) of a field in block-style YAML.
///
/// Returns the position of the key (or list item) at `path`; if there is
/// none, that of the deepest enclosing field that is in the text (a value
/// inside a flow list `[a, b]` is reported at its key's line); `None` when
/// not even the first step is found. Best effort: flow collections and
/// multi-line scalars are not descended into. To look up many paths in one
/// text, build a [`Locator`] once.
pub fn locate(text: &str, path: &FieldPath) -> Option<Location> {
    Locator::new(text).locate(path)
}

// ---------------------------------------------------------------------------
// The parse driver.

/// Whether the text holds no YAML content (blank, comments, `---`).
fn is_blank(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t == "\u{feff}"
    })
}

/// The `version` key, read before anything else so that a newer file is
/// refused with "please upgrade" rather than with an error about a field
/// this peerup does not understand.
struct Probe(Option<u64>);

struct ProbeVisitor;

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of settings (like `identity:` and `network:`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0.as_deref() == Some("version") {
                version = map.next_value::<VersionValue>()?.0;
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(Probe(version))
    }
}

impl<'de> de::Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ProbeVisitor)
    }
}

/// A mapping key: its text, or `None` for a non-scalar key.
struct KeyText(Option<String>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        Ok(KeyText(Some(v.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<KeyText, D::Error> {
        d.deserialize_any(KeyVisitor)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(KeyText(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(KeyText(None))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<KeyText, A::Error> {
        let (de::IgnoredAny, variant) = data.variant::<de::IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<de::IgnoredAny>(variant)?;
        Ok(KeyText(None))
    }
}

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

/// The `version` value: a whole number, or nothing.
struct VersionValue(Option<u64>);

struct VersionVisitor;

const VERSION_REASON: &str = "the config version must be a whole number, like `version: 1`";

impl<'de> Visitor<'de> for VersionVisitor {
    type Value = VersionValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number, like `version: 1`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<VersionValue, E> {
        Ok(VersionValue(Some(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<VersionValue, E> {
        u64::try_from(v)
            .map(|v| VersionValue(Some(v)))
            .map_err(|_| E::custom(VERSION_REASON))
    }

    fn visit_unit<E: de::Error>(self) -> Result<VersionValue, E> {
        Ok(VersionValue(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<VersionValue, E> {
        Ok(VersionValue(None))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<VersionValue, E> {
        Err(E::custom(VERSION_REASON))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<VersionValue, E> {
        Err(E::custom(VERSION_REASON))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<VersionValue, E> {
        Err(E::custom(VERSION_REASON))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<VersionValue, A::Error> {
        Err(de::Error::custom(VERSION_REASON))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<VersionValue, A::Error> {
        Err(de::Error::custom(VERSION_REASON))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<VersionValue, A::Error> {
        Err(de::Error::custom(VERSION_REASON))
    }
}

impl<'de> de::Deserialize<'de> for VersionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VersionVisitor)
    }
}

fn yaml_location(e: &serde_yaml::Error) -> Option<Location> {
    e.location().map(|l| Location {
        line: l.line(),
        column: Some(l.column()),
    })
}

/// The serde_yaml message without the position and path it embeds
/// (reported separately) and with its jargon translated.
fn clean_reason(message: &str, location: Option<Location>, path: &FieldPath) -> String {
    let mut reason = message.to_owned();
    if let Some(Location {
        line,
        column: Some(column),
    }) = location
    {
        reason = reason.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    // serde_yaml prefixes "<its path>: ", which is ours or a prefix of it.
    if let Some((head, tail)) = reason.split_once(": ")
        && !head.is_empty()
        && !head.contains(char::is_whitespace)
        && (path.to_string().starts_with(head) || head == ".")
    {
        reason = tail.to_owned();
    }
    // Derived structs say "expected struct Relay": name the YAML shape.
    if let Some(i) = reason.find("expected struct ") {
        reason.truncate(i);
        reason.push_str("expected a mapping of settings");
    }
    reason.replace("unit value", "nothing (null)")
}

/// The `---` line that starts a second document.
fn second_document(text: &str) -> Option<Location> {
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if let Some(rest) = t.strip_prefix("---")
            && (rest.is_empty() || rest.starts_with([' ', '\t']))
        {
            if content {
                return Some(Location {
                    line: i + 1,
                    column: Some(1),
                });
            }
            content = !rest.trim().is_empty() && !rest.trim_start().starts_with('#');
        } else if !t.trim().is_empty() && !t.trim_start().starts_with('#') && t != "..." {
            content = true;
        }
    }
    None
}

fn syntax_error(file: &Path, text: &str, e: &serde_yaml::Error) -> ConfigError {
    let mut location = yaml_location(e);
    let mut reason = clean_reason(&e.to_string(), location, &FieldPath::root());
    if reason.contains("recursion limit exceeded") {
        reason = "values nested too deeply (more than 128 levels); a config is a few levels deep"
            .to_owned();
    }
    if reason.contains("more than one document") {
        reason = "the file holds more than one YAML document (a second `---`); a config is a single document"
            .to_owned();
        location = location.or_else(|| second_document(text));
    }
    let tab = location
        .and_then(|l| text.lines().nth(l.line.saturating_sub(1)))
        .is_some_and(|line| line.contains('\t'));
    if tab {
        reason.push_str(" (YAML indentation must use spaces, not tabs)");
    }
    ConfigError::Syntax {
        file: file.to_owned(),
        location,
        reason,
    }
}

fn invalid_error(
    file: &Path,
    text: &str,
    e: serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let locator = Locator::new(text);
    let mut path = FieldPath::from_serde(e.path());
    let inner = e.into_inner();
    let mut location = yaml_location(&inner);
    let reason = clean_reason(&inner.to_string(), location, &path);
    // A repeated key: point at its second occurrence, not at the mapping.
    let duplicate = ["duplicate field `", super::de::DUPLICATE_KEY]
        .iter()
        .find_map(|p| reason.strip_prefix(p))
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_owned());
    if let Some(key) = duplicate {
        path = path.key(key);
        if let Some(second) = locator.all(&path).get(1) {
            location = Some(*second);
        }
    }
    // A missing field: point at the mapping's key (`ssh:`), not at its
    // first child.
    if reason.starts_with("missing field `")
        && let Some(parent) = locator.all(&path).first()
    {
        location = Some(*parent);
    }
    if location.is_none() {
        location = locator.locate(&path);
    }
    ConfigError::Invalid {
        file: file.to_owned(),
        path,
        location,
        reason,
    }
}

/// Parses a config document into `T`: refuses empty text, bad YAML and a
/// `version` other than 1, and turns unknown keys into warnings.
///
/// The caller adds its own checks after this (cross-field rules, advice).
/// Unknown keys reported one by one; more are counted in one warning.
pub const MAX_UNKNOWN_KEYS: usize = 100;

/// Walks a document like `IgnoredAny`, refusing it once it has produced
/// more values than the budget allows (see [`parse_document`], step 1).
struct Budget<'a>(&'a core::cell::Cell<usize>);

impl Budget<'_> {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.0.get().checked_sub(1) {
            Some(left) => {
                self.0.set(left);
                Ok(())
            }
            None => Err(E::custom(
                "the YAML expands to far more values than its text holds (anchors and aliases, `&name` and `*name`, repeat values); a peerup config needs neither: write the values out",
            )),
        }
    }
}

impl<'de> de::DeserializeSeed<'de> for Budget<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Budget<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        d.deserialize_any(self)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.take()?;
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(Budget(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(Budget(self.0))?.is_some() {
            map.next_value_seed(Budget(self.0))?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.take()?;
        let ((), variant) = data.variant_seed(Budget(self.0))?;
        variant.newtype_variant_seed(Budget(self.0))
    }
}

pub(crate) fn parse_document<T: DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<(T, Vec<Warning>), ConfigError> {
    if is_blank(text) {
        return Err(ConfigError::Empty {
            file: file.to_owned(),
        });
    }
    // 1. Well-formed YAML, one document, and no bigger than its text: an
    //    alias repeats what its anchor holds wherever it appears, so a few
    //    kilobytes can expand to millions of values (17 s and 1.4 GB for
    //    46 KB). Every value of a document without aliases takes at least
    //    half a byte of its text, so a budget of two values per byte
    //    refuses only expansion, and bounds the work of every later pass.
    let budget = core::cell::Cell::new(text.len().saturating_mul(2).saturating_add(64));
    if let Err(e) =
        de::DeserializeSeed::deserialize(Budget(&budget), serde_yaml::Deserializer::from_str(text))
    {
        return Err(syntax_error(file, text, &e));
    }
    // 2. A mapping, of a version this peerup supports.
    let probe: Probe = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| invalid_error(file, text, e))?;
    match probe.0 {
        None | Some(1) => {}
        Some(0) => {
            let path = FieldPath::keys(&["version"]);
            return Err(ConfigError::Invalid {
                file: file.to_owned(),
                location: locate(text, &path),
                path,
                reason: "config version 0 is not valid; the first version is 1 (`version: 1`)"
                    .to_owned(),
            });
        }
        Some(found) => {
            return Err(ConfigError::UnsupportedVersion {
                file: file.to_owned(),
                location: locate(text, &FieldPath::keys(&["version"])),
                found,
            });
        }
    }
    // 3. The schema, collecting unknown keys.
    let mut unknown = Vec::new();
    let mut unlisted = 0usize;
    let de = serde_yaml::Deserializer::from_str(text);
    let mut record = |p: serde_ignored::Path<'_>| {
        if unknown.len() < MAX_UNKNOWN_KEYS {
            unknown.push(FieldPath::from_ignored(&p));
        } else {
            unlisted += 1;
        }
    };
    let value: T =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut record))
            .map_err(|e| invalid_error(file, text, e))?;
    let locator = Locator::new(text);
    let mut warnings: Vec<Warning> = unknown
        .into_iter()
        .map(|p| Warning::at(file, &locator, p, WarningKind::UnknownKey))
        .collect();
    if unlisted > 0 {
        warnings.push(Warning::at(
            file,
            &locator,
            FieldPath::root(),
            WarningKind::MoreUnknownKeys { count: unlisted },
        ));
    }
    Ok((value, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, path: FieldPath) -> Option<(usize, usize)> {
        locate(text, &path).map(|l| (l.line, l.column.unwrap_or(0)))
    }

    const DOC: &str = "\
# comment
version: 1
relay:
  addresses:
    - /ip4/1.2.3.4/tcp/7777/p2p/X   # first
    - \"/ip4/5.6.7.8/tcp/7777/p2p/Y\"
  reservation_interval: 2m
services:
  ssh:
    local_address: localhost:22
    allowed_peers: [home, laptop]
  \"web\":
    note: |
      key: not a key
      - nor an item
    local_address: 'localhost:80'
list:
- a: 1
  b: 2
- a: 3
names: {home: x}
";

    #[test]
    fn locates_keys_and_items() {
        assert_eq!(at(DOC, FieldPath::keys(&["version"])), Some((2, 1)));
        assert_eq!(
            at(DOC, FieldPath::keys(&["relay", "addresses"])),
            Some((4, 3))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["relay", "addresses"]).index(0)),
            Some((5, 5))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["relay", "addresses"]).index(1)),
            Some((6, 5))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["relay", "reservation_interval"])),
            Some((7, 3))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["services", "ssh", "local_address"])),
            Some((10, 5))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["services", "web", "local_address"])),
            Some((16, 5))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["list"]).index(0).key("b")),
            Some((19, 3))
        );
        assert_eq!(
            at(DOC, FieldPath::keys(&["list"]).index(1).key("a")),
            Some((20, 3))
        );
    }

    #[test]
    fn falls_back_to_the_enclosing_field() {
        // Inside a flow list: the key's line.
        assert_eq!(
            at(
                DOC,
                FieldPath::keys(&["services", "ssh", "allowed_peers"]).index(1)
            ),
            Some((11, 5))
        );
        assert_eq!(at(DOC, FieldPath::keys(&["names", "home"])), Some((21, 1)));
        // Block scalar content is not mistaken for keys.
        assert_eq!(
            at(DOC, FieldPath::keys(&["services", "web", "note", "key"])),
            Some((13, 5))
        );
        assert_eq!(at(DOC, FieldPath::keys(&["nowhere", "x"])), None);
        assert_eq!(at(DOC, FieldPath::root()), None);
    }

    #[test]
    fn finds_repeated_keys() {
        let text = "a: 1\nb:\n  c: 1\n  c: 2\n";
        let locator = Locator::new(text);
        let all = locator.all(&FieldPath::keys(&["b", "c"]));
        assert_eq!(all.iter().map(|l| l.line).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn splits_keys() {
        assert_eq!(split_key("a: b"), Some(("a".to_owned(), " b")));
        assert_eq!(split_key("a:"), Some(("a".to_owned(), "")));
        assert_eq!(split_key("\"a: b\": c"), Some(("a: b".to_owned(), " c")));
        assert_eq!(split_key("'it''s' : c"), Some(("it's".to_owned(), " c")));
        assert_eq!(split_key("http://x"), None);
        assert_eq!(split_key("x # a: b"), None);
        assert_eq!(split_key("[a, b]"), None);
        assert_eq!(split_key("\"unterminated: x"), None);
    }

    #[test]
    fn path_display() {
        assert_eq!(
            FieldPath::keys(&["relay", "addresses"])
                .index(0)
                .to_string(),
            "relay.addresses[0]"
        );
        assert_eq!(
            FieldPath::keys(&["names", "nas.garage"]).to_string(),
            "names.\"nas.garage\""
        );
        assert_eq!(FieldPath::root().to_string(), "");
    }

    #[test]
    fn blank_texts() {
        for t in ["", "\n", "  \n# only\n", "---\n", "---\n...\n", "\u{feff}"] {
            assert!(is_blank(t), "{t:?}");
        }
        assert!(!is_blank("a: 1"));
        assert!(!is_blank("--- {}"));
    }

    #[test]
    fn scanner_survives_odd_text() {
        for t in [
            "- - -",
            ":",
            "\"",
            "'",
            "- \"a\\",
            "é: ü\n  - ö",
            "a:\n\t- b",
            "- |\n  x\n- y",
        ] {
            let _ = scan(t);
        }
    }
}
