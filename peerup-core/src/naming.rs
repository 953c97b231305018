//! Friendly names for peers (`names:` in `peerup.yaml`) and the resolution
//! of a command's `<target>`.
//!
//! Resolution tries the names map first, then parses a peer ID, so a name
//! always wins over an ID-shaped text. A name cannot itself be a valid peer
//! ID, so the two never shadow each other silently.
//!
//! A name is 1-63 characters of `A-Z a-z 0-9 . _ -`, starting with a letter
//! or digit: enough for `home`, `Laptop`, `nas.garage`, and nothing that
//! could break a YAML key, a shell argument or a log line. Names arrive from
//! the network during pairing, so this rule is a security boundary too.

use core::fmt;
use core::str::FromStr;
use std::collections::BTreeMap;

use crate::PeerId;

/// A validated friendly name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

/// Why a text is not a friendly name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty text.
    #[error("a name must not be empty")]
    Empty,
    /// More than 63 characters.
    #[error("name `{text}` is longer than 63 characters")]
    TooLong {
        /// The rejected text.
        text: String,
    },
    /// A character outside the allowed set, or a bad first character.
    #[error(
        "name `{text}` has {found:?} at position {position}; use letters, digits, '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidChar {
        /// The rejected text.
        text: String,
        /// The offending character.
        found: char,
        /// 1-based character position.
        position: usize,
    },
    /// The text is a peer ID, which would make resolution ambiguous.
    #[error("name `{text}` is itself a peer ID; pick a short friendly name like `home`")]
    IsPeerId {
        /// The rejected text.
        text: String,
    },
}

impl Name {
    /// Longest name, in bytes.
    pub const MAX_LEN: usize = 63;

    /// Validates a friendly name.
    ///
    /// # Errors
    /// [`NameError`] naming the first problem.
    pub fn new(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        for (i, c) in text.chars().enumerate() {
            let ok = if i == 0 {
                c.is_ascii_alphanumeric()
            } else {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
            };
            if !ok {
                return Err(NameError::InvalidChar {
                    text: text.to_owned(),
                    found: c,
                    position: i + 1,
                });
            }
        }
        if text.len() > Self::MAX_LEN {
            return Err(NameError::TooLong {
                text: text.to_owned(),
            });
        }
        // Real peer IDs are 46 (`Qm...`) or 52 (`12D3KooW...`) characters;
        // some short words also decode as a tiny identity multihash, and
        // those are fine as names (resolution tries names first anyway).
        if text.len() >= 32 && crate::identity::parse_peer_id_text(text).is_some() {
            return Err(NameError::IsPeerId {
                text: text.to_owned(),
            });
        }
        Ok(Name(text.to_owned()))
    }

    /// The name text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::new(s)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A friendly name for `peer` made from `wanted`, a name another
/// machine chose (a pairing answer, an introduction): characters a name
/// cannot hold become `-`, leading ones that cannot start it are dropped,
/// it is cut to fit, and when another peer already has it in `names` the
/// first free of `wanted-2`, `wanted-3`, ... is taken. A name `peer`
/// already has is kept as it is.
///
/// `None` when nothing usable is left (empty, only punctuation, a peer
/// ID) or no suffix up to 1,000 is free.
pub fn unique_name(wanted: &str, peer: &PeerId, names: &Names) -> Option<Name> {
    let cleaned: String = wanted
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(Name::MAX_LEN)
        .collect();
    let base = Name::new(cleaned.trim_end_matches(['-', '.', '_'])).ok()?;
    let free = |n: &Name| names.get(n.as_str()).is_none_or(|p| p == *peer);
    if free(&base) {
        return Some(base);
    }
    (2..=1000).find_map(|i| {
        let suffix = format!("-{i}");
        let stem: String = base
            .as_str()
            .chars()
            .take(Name::MAX_LEN - suffix.len())
            .collect();
        Name::new(&format!("{stem}{suffix}"))
            .ok()
            .filter(|n| free(n))
    })
}

/// Parses a peer ID with an error that says what was expected.
///
/// # Errors
/// [`PeerIdError`] quoting the text.
pub fn parse_peer_id(text: &str) -> Result<PeerId, PeerIdError> {
    crate::identity::parse_peer_id_text(text.trim()).ok_or_else(|| PeerIdError {
        text: crate::identity::excerpt(text),
    })
}

/// A text that is not a peer ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid peer ID (expected base58 like 12D3KooW...)")]
pub struct PeerIdError {
    /// The rejected text.
    pub text: String,
}

/// The names map: name -> peer ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    map: BTreeMap<Name, PeerId>,
}

/// A target that is neither a known name nor a peer ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot resolve target `{target}`: it is not a name in config ({}) nor a valid peer ID", known_list(.known))]
pub struct ResolveError {
    /// The target as given.
    pub target: String,
    /// The known names, sorted.
    pub known: Vec<String>,
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "no names are configured; add one under `names:`".to_owned()
    } else {
        format!("known names: {}", known.join(", "))
    }
}

impl Names {
    /// An empty map.
    pub fn new() -> Self {
        Names::default()
    }

    /// Maps `name` to `peer`, returning the previous peer of that name.
    pub fn insert(&mut self, name: Name, peer: PeerId) -> Option<PeerId> {
        self.map.insert(name, peer)
    }

    /// Removes a name.
    pub fn remove(&mut self, name: &str) -> Option<PeerId> {
        let key = Name::new(name).ok()?;
        self.map.remove(&key)
    }

    /// The peer of a name.
    pub fn get(&self, name: &str) -> Option<PeerId> {
        let key = Name::new(name).ok()?;
        self.map.get(&key).copied()
    }

    /// The names of a peer, in order.
    pub fn names_of(&self, peer: &PeerId) -> impl Iterator<Item = &Name> {
        self.map
            .iter()
            .filter(move |(_, p)| *p == peer)
            .map(|(n, _)| n)
    }

    /// All entries, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &PeerId)> {
        self.map.iter()
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no names are known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Resolves a command's target: a name first, then a peer ID.
    ///
    /// # Errors
    /// [`ResolveError`] listing the known names.
    pub fn resolve(&self, target: &str) -> Result<PeerId, ResolveError> {
        let target_trimmed = target.trim();
        if let Some(peer) = self.get(target_trimmed) {
            return Ok(peer);
        }
        crate::identity::parse_peer_id_text(target_trimmed).ok_or_else(|| ResolveError {
            target: crate::identity::excerpt(target),
            known: self.map.keys().map(|n| n.0.clone()).collect(),
        })
    }
}

impl FromIterator<(Name, PeerId)> for Names {
    fn from_iter<I: IntoIterator<Item = (Name, PeerId)>>(iter: I) -> Self {
        Names {
            map: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: &str = "12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";
    const PHONE: &str = "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYUXCUVwbj7QbA";

    fn names() -> Names {
        [
            (Name::new("home").unwrap(), HOME.parse().unwrap()),
            (Name::new("phone").unwrap(), PHONE.parse().unwrap()),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn resolves_name_first_then_peer_id() {
        let n = names();
        assert_eq!(n.resolve("home").unwrap().to_string(), HOME);
        assert_eq!(n.resolve(PHONE).unwrap().to_string(), PHONE);
        assert_eq!(n.resolve(" home ").unwrap().to_string(), HOME);
    }

    #[test]
    fn unknown_name_lists_known_names() {
        let err = names().resolve("hmoe").unwrap_err();
        assert_eq!(err.known, vec!["home", "phone"]);
        let msg = err.to_string();
        assert!(
            msg.contains("`hmoe`") && msg.contains("known names: home, phone"),
            "{msg}"
        );
        let empty = Names::new().resolve("home").unwrap_err().to_string();
        assert!(empty.contains("no names are configured"), "{empty}");
    }

    #[test]
    fn name_rules() {
        for ok in ["home", "Laptop", "nas.garage", "a_b", "x1-2", "1pao"] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert!(matches!(
            Name::new("-x"),
            Err(NameError::InvalidChar { position: 1, .. })
        ));
        assert!(matches!(
            Name::new("my laptop"),
            Err(NameError::InvalidChar { found: ' ', .. })
        ));
        assert!(matches!(
            Name::new("a:b"),
            Err(NameError::InvalidChar { found: ':', .. })
        ));
        assert!(matches!(
            Name::new(&"a".repeat(64)),
            Err(NameError::TooLong { .. })
        ));
        assert!(matches!(Name::new(HOME), Err(NameError::IsPeerId { .. })));
    }

    proptest::proptest! {
        #[test]
        fn name_and_resolve_never_panic(text in ".{0,80}") {
            let _ = Name::new(&text);
            let _ = names().resolve(&text);
        }
    }

    #[test]
    fn names_of_a_peer() {
        let n = names();
        let home: PeerId = HOME.parse().unwrap();
        assert_eq!(
            n.names_of(&home).map(Name::as_str).collect::<Vec<_>>(),
            vec!["home"]
        );
    }
}
