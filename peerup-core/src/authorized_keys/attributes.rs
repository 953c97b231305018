//! Attributes of an entry (`key=value`): the known keys, their checks, and
//! [`Attributes`], which only ever holds valid values.

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

    /// Whether the `verified` value records the verification code `code`
    /// (of this machine and the entry's peer, [`crate::verify::Code::new`]).
    /// False when `verified` is unset or was set for another pair.
    pub fn is_verified_for(&self, code: &crate::verify::Code) -> bool {
        self.verified().is_some_and(|v| code.matches_verified(v))
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
pub(super) fn distance(a: &str, b: &str) -> usize {
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

pub(super) fn validate_key(key: &str, value: &str) -> Result<(), AttributeError> {
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
pub(crate) fn is_unsafe_char(c: char) -> bool {
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
