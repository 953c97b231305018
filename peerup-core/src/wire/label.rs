//! DNS labels: the form of service names and of `discovery.network`.
//!
//! WIRE.md §2: `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`. A name of this form
//! cannot smuggle a `/` into a protocol ID, so it also stops protocol-ID
//! injection (`/peerup/<service>/1.0.0`).

use core::fmt;
use core::str::FromStr;

/// A validated DNS label (1-63 characters of `a-z`, `0-9` and `-`, not
/// starting or ending with `-`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DnsLabel(String);

/// Why a text is not a DNS label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// The text is empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than 63 characters.
    #[error("`{text}` is {len} characters long; at most 63 are allowed")]
    TooLong {
        /// The rejected text.
        text: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character outside `a-z`, `0-9`, `-`.
    #[error(
        "`{text}` contains {found:?} at position {position}; use only lowercase letters a-z, digits 0-9 and '-'"
    )]
    InvalidChar {
        /// The rejected text.
        text: String,
        /// The offending character.
        found: char,
        /// Its 1-based character position.
        position: usize,
    },
    /// Starts or ends with `-`.
    #[error("`{text}` must start and end with a letter or digit, not '-'")]
    EdgeHyphen {
        /// The rejected text.
        text: String,
    },
}

impl DnsLabel {
    /// The longest label, in bytes.
    pub const MAX_LEN: usize = 63;

    /// Validates `text` as a DNS label.
    ///
    /// # Errors
    /// [`LabelError`] naming the first problem.
    pub fn new(text: &str) -> Result<Self, LabelError> {
        if text.is_empty() {
            return Err(LabelError::Empty);
        }
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(LabelError::InvalidChar {
                text: text.to_owned(),
                found: c,
                position: i + 1,
            });
        }
        if text.len() > Self::MAX_LEN {
            return Err(LabelError::TooLong {
                text: text.to_owned(),
                len: text.len(),
            });
        }
        if text.starts_with('-') || text.ends_with('-') {
            return Err(LabelError::EdgeHyphen {
                text: text.to_owned(),
            });
        }
        Ok(DnsLabel(text.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DnsLabel {
    type Err = LabelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DnsLabel::new(s)
    }
}

impl AsRef<str> for DnsLabel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl serde::Serialize for DnsLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for DnsLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DnsLabel::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The regex of WIRE.md §2, checked by hand (no regex engine in the core).
/// Exposed for tests that compare against the regex's meaning.
pub fn is_dns_label(text: &str) -> bool {
    DnsLabel::new(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_labels() {
        for ok in ["a", "ssh", "xrdp", "web-1", "0", "a1-b2", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
    }

    #[test]
    fn rejects_non_labels_with_reason() {
        assert_eq!(DnsLabel::new(""), Err(LabelError::Empty));
        assert!(matches!(
            DnsLabel::new("SSH"),
            Err(LabelError::InvalidChar {
                found: 'S',
                position: 1,
                ..
            })
        ));
        assert!(matches!(
            DnsLabel::new("ssh/1.0.0"),
            Err(LabelError::InvalidChar {
                found: '/',
                position: 4,
                ..
            })
        ));
        assert!(matches!(
            DnsLabel::new("a_b"),
            Err(LabelError::InvalidChar { found: '_', .. })
        ));
        assert!(matches!(
            DnsLabel::new("-a"),
            Err(LabelError::EdgeHyphen { .. })
        ));
        assert!(matches!(
            DnsLabel::new("a-"),
            Err(LabelError::EdgeHyphen { .. })
        ));
        assert!(matches!(
            DnsLabel::new(&"a".repeat(64)),
            Err(LabelError::TooLong { len: 64, .. })
        ));
        assert!(matches!(
            DnsLabel::new("é"),
            Err(LabelError::InvalidChar { found: 'é', .. })
        ));
    }

    /// Reference for the regex `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`.
    fn regex_model(s: &str) -> bool {
        let b = s.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match b.len() {
            0 => false,
            1 => alnum(b[0]),
            n if n <= 63 => {
                alnum(b[0]) && alnum(b[n - 1]) && b[1..n - 1].iter().all(|&c| alnum(c) || c == b'-')
            }
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_spec_regex(s in "[a-z0-9A-Z_./-]{0,70}") {
            prop_assert_eq!(is_dns_label(&s), regex_model(&s));
        }
    }
}
