//! Serde helpers shared by the config schemas.
//!
//! Every value is validated *inside* the deserializer's visitor, so that
//! `serde_yaml` attaches the position of the offending scalar to the error
//! (an error raised after `String::deserialize` returns would only carry
//! the position of the enclosing mapping). Maps refuse duplicate keys, which
//! `BTreeMap`'s own impl would silently overwrite.

use core::fmt;
use core::marker::PhantomData;
use std::collections::BTreeMap;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The prefix of the duplicate-key error; the diagnostics layer looks for
/// it to point at the second occurrence.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key `";

/// A value read from one YAML scalar.
pub(crate) trait TextValue: Sized {
    /// What the visitor expects, for "invalid type" errors.
    const EXPECTING: &'static str;
    /// Parses and validates the scalar's text.
    fn from_text(text: &str) -> Result<Self, String>;
}

struct TextVisitor<T>(PhantomData<T>);

impl<T: TextValue> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_text(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_text(&v.to_string()).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::from_text(&v.to_string()).map_err(E::custom)
    }
}

/// Deserializes one scalar through [`TextValue::from_text`].
pub(crate) fn text<'de, D: Deserializer<'de>, T: TextValue>(d: D) -> Result<T, D::Error> {
    d.deserialize_str(TextVisitor(PhantomData))
}

/// Deserializes one value through [`TextValue::from_text`], letting a
/// self-describing format pick the type (a JSON number arrives as a
/// number). For standalone types; config fields use [`text`], which keeps
/// YAML's text as written (`0x10` stays `0x10`).
pub(crate) fn any_text<'de, D: Deserializer<'de>, T: TextValue>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(TextVisitor(PhantomData))
}

/// A scalar validated by `T`, usable as a sequence element or map key.
pub(crate) struct Text<T>(pub(crate) T);

impl<'de, T: TextValue> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        text(d).map(Text)
    }
}

struct OptionVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptionVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or nothing")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::deserialize(d).map(Some)
    }
}

/// `null`, `~` or nothing become `None`.
pub(crate) fn optional<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_option(OptionVisitor(PhantomData))
}

/// A section (`relay:`) that may be empty or `null`: its defaults then.
pub(crate) fn section<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    optional(d).map(Option::unwrap_or_default)
}

/// An optional scalar (`session_duration:`); `null` is `None`.
pub(crate) fn optional_text<'de, D: Deserializer<'de>, T: TextValue>(
    d: D,
) -> Result<Option<T>, D::Error> {
    optional::<D, Text<T>>(d).map(|o| o.map(|t| t.0))
}

struct SeqVisitor<T>(PhantomData<T>);

impl<'de, T: TextValue> Visitor<'de> for SeqVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list, each item {}", T::EXPECTING)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Text(v)) = seq.next_element::<Text<T>>()? {
            out.push(v);
        }
        Ok(out)
    }
}

/// A list of scalars, `None` when `null` or empty-valued (`key:`).
pub(crate) fn optional_list<'de, D: Deserializer<'de>, T: TextValue>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    optional::<D, List<T>>(d).map(|o| o.map(|l| l.0))
}

/// A list of scalars; `null` is an empty list.
pub(crate) fn list<'de, D: Deserializer<'de>, T: TextValue>(d: D) -> Result<Vec<T>, D::Error> {
    optional_list(d).map(Option::unwrap_or_default)
}

/// A list of validated scalars.
pub(crate) struct List<T>(pub(crate) Vec<T>);

impl<'de, T: TextValue> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SeqVisitor(PhantomData)).map(List)
    }
}

struct MapVisitor<K, V>(PhantomData<(K, V)>);

impl<'de, K, V> Visitor<'de> for MapVisitor<K, V>
where
    K: TextValue + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping whose keys are {}", K::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(Text(key)) = map.next_key::<Text<K>>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE_KEY}{key}` (each key may appear once)"
                )));
            }
            let value = map.next_value::<V>()?;
            out.insert(key, value);
        }
        Ok(out)
    }
}

/// A mapping with validated keys that refuses duplicates; `null` is empty.
pub(crate) fn strict_map<'de, D, K, V>(d: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: TextValue + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    optional::<D, StrictMap<K, V>>(d).map(|o| o.map(|m| m.0).unwrap_or_default())
}

struct StrictMap<K, V>(BTreeMap<K, V>);

impl<'de, K, V> Deserialize<'de> for StrictMap<K, V>
where
    K: TextValue + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor(PhantomData)).map(StrictMap)
    }
}

/// A whole number of at least 1 (a count of reservations, circuits...).
pub(crate) struct Count(pub(crate) u32);

impl TextValue for Count {
    const EXPECTING: &'static str = "a whole number of at least 1";
    fn from_text(text: &str) -> Result<Self, String> {
        match text.parse::<u32>() {
            Ok(0) => Err("must be at least 1".to_owned()),
            Ok(n) => Ok(Count(n)),
            Err(_) => Err(format!(
                "`{text}` is not a whole number from 1 to {}",
                u32::MAX
            )),
        }
    }
}

/// A file path as written: not empty, no NUL byte.
pub(crate) struct FilePath(pub(crate) String);

impl TextValue for FilePath {
    const EXPECTING: &'static str = "a file path";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Err("a file path must not be empty".to_owned())
        } else if text.contains('\0') {
            Err("a file path must not contain a NUL character".to_owned())
        } else {
            Ok(FilePath(text.to_owned()))
        }
    }
}

/// A multiaddr.
impl TextValue for crate::Multiaddr {
    const EXPECTING: &'static str = "a multiaddr like /ip4/0.0.0.0/tcp/0";
    fn from_text(text: &str) -> Result<Self, String> {
        crate::identity::parse_multiaddr_text(text).map_err(|e| {
            format!(
                "`{}` is not a valid multiaddr: {e}",
                crate::identity::excerpt(text)
            )
        })
    }
}

impl TextValue for crate::relay_addr::RelayAddr {
    const EXPECTING: &'static str = "a relay multiaddr ending in /p2p/<relay-peer-id>";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|e: crate::relay_addr::RelayAddrError| e.to_string())
    }
}

impl TextValue for crate::PeerId {
    const EXPECTING: &'static str = "a peer ID like 12D3KooW...";
    fn from_text(text: &str) -> Result<Self, String> {
        crate::naming::parse_peer_id(text).map_err(|e| e.to_string())
    }
}

impl TextValue for crate::naming::Name {
    const EXPECTING: &'static str = "a friendly name like `home`";
    fn from_text(text: &str) -> Result<Self, String> {
        crate::naming::Name::new(text).map_err(|e| e.to_string())
    }
}

/// `discovery.network`: a DNS label, or empty for "no network name".
pub(crate) struct NetworkName(pub(crate) Option<crate::wire::label::DnsLabel>);

impl TextValue for NetworkName {
    const EXPECTING: &'static str = "a network name (a DNS label like `family`)";
    fn from_text(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Ok(NetworkName(None));
        }
        crate::wire::label::DnsLabel::new(text)
            .map(|l| NetworkName(Some(l)))
            .map_err(|e| format!("network name {e}"))
    }
}

/// `discovery.network`, where `null` and `""` both mean none.
pub(crate) fn network_name<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::wire::label::DnsLabel>, D::Error> {
    optional_text::<D, NetworkName>(d).map(|o| o.and_then(|n| n.0))
}

/// A required path field.
pub(crate) fn file_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text::<D, FilePath>(d).map(|p| p.0)
}

/// A count field (at least 1).
pub(crate) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    text::<D, Count>(d).map(|c| c.0)
}

/// A duration that must not be zero.
pub(crate) struct PositiveDuration(pub(crate) core::time::Duration);

impl TextValue for PositiveDuration {
    const EXPECTING: &'static str = "a duration like 30s, 2m or 1h30m";
    fn from_text(text: &str) -> Result<Self, String> {
        let d = super::units::parse_duration(text).map_err(|e| e.to_string())?;
        if d.is_zero() {
            return Err(format!("must be longer than zero (like 2m), not `{text}`"));
        }
        Ok(PositiveDuration(d))
    }
}

/// A duration field that must be > 0.
pub(crate) fn positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<core::time::Duration, D::Error> {
    text::<D, PositiveDuration>(d).map(|p| p.0)
}

/// An optional duration field (`0` allowed).
pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<core::time::Duration>, D::Error> {
    optional_text::<D, super::units::HumanDuration>(d).map(|o| o.map(|h| h.0))
}

/// An optional size field (`0` allowed).
pub(crate) fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    optional_text::<D, super::units::ByteSize>(d).map(|o| o.map(|s| s.0))
}
