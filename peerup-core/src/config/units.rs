//! Durations and byte sizes as written in config files.
//!
//! Input: the text of one YAML value (`"2m"`, `"1h30m"`, `"64MB"`, `1024`).
//! Output: a [`core::time::Duration`] or a byte count, and back to the
//! shortest text that parses to the same value.
//!
//! **Durations** follow Go's `time.ParseDuration` (the seed's config files
//! hold Go durations, WIRE.md §9 `relay.reservation_interval`, §11
//! `resources.reservation_ttl`): a sequence of decimal numbers, each with an
//! optional fraction and a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such
//! as `300ms`, `1.5h` or `2h45m`. A bare `0` is allowed. Unlike Go, a sign
//! is refused (no config value is negative) and the total must fit in Go's
//! range (`i64` nanoseconds, about 292 years), so every file peerup accepts
//! the Go version accepts too. Rendering writes each non-zero component
//! once, largest first (`1h30m`, `2m`, `1s500ms`, `0s`), which Go parses as
//! well.
//!
//! **Sizes** (WIRE.md §11 `resources.session_data_limit`) are a whole number
//! with an optional unit, case-insensitive: `B`, `K`/`KB`/`KiB`,
//! `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, `T`/`TB`/`TiB`. **All units are binary**:
//! `1MB` is 1,048,576 bytes, exactly as `1MiB`, so `64MB` means what the Go
//! relay meant by it. A YAML integer is a byte count. Rendering uses the
//! largest unit that divides the value exactly, spelled with `i` so it is
//! unambiguous (`64MiB`, `1536KiB`, `1000B`, `0`).

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

/// Nanoseconds per duration unit. A unit is everything between a number and
/// the next digit or `.`, and is matched whole.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µ MICRO SIGN, as Go accepts
    ("\u{3bc}s", 1_000), // μ GREEK SMALL LETTER MU, as Go accepts
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
];

/// The largest duration a config may hold: Go's `time.Duration` range.
pub const MAX_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The text is empty.
    #[error("a duration must not be empty; write it like 30s, 2m or 1h30m")]
    Empty,
    /// A leading `+` or `-`.
    #[error("duration `{text}` must not have a sign; write it like 30s, 2m or 1h30m")]
    Signed {
        /// The rejected text.
        text: String,
    },
    /// A number without a unit (other than a bare `0`).
    #[error(
        "duration `{text}` needs a unit after {number}: ns, us, ms, s, m or h (like 30s, 2m or 1h30m)"
    )]
    MissingUnit {
        /// The rejected text.
        text: String,
        /// The number that lacks a unit.
        number: String,
    },
    /// A unit that is not one of `ns us µs ms s m h`.
    #[error("duration `{text}` has unknown unit `{unit}`; use ns, us, ms, s, m or h")]
    UnknownUnit {
        /// The rejected text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// Something other than digits, `.` and units.
    #[error("`{text}` is not a duration; write it like 30s, 2m, 1.5h or 1h30m")]
    Invalid {
        /// The rejected text.
        text: String,
    },
    /// More than about 292 years.
    #[error("duration `{text}` is too long (at most about 292 years)")]
    Overflow {
        /// The rejected text.
        text: String,
    },
}

/// Parses a Go-style duration (`2m`, `1h30m`, `1.5h`, `500ms`, `0`).
///
/// # Errors
/// [`DurationError`] naming the problem and quoting the text.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.starts_with(['+', '-']) {
        return Err(DurationError::Signed {
            text: text.to_owned(),
        });
    }
    let invalid = || DurationError::Invalid {
        text: text.to_owned(),
    };
    let overflow = || DurationError::Overflow {
        text: text.to_owned(),
    };
    let max = u128::from(MAX_DURATION.as_secs()) * 1_000_000_000
        + u128::from(MAX_DURATION.subsec_nanos());
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest;
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_text, after_int) = rest.split_at(int_len);
        let mut int: u128 = 0;
        for b in int_text.bytes() {
            int = int
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .ok_or_else(overflow)?;
            if int > max {
                return Err(overflow());
            }
        }
        // Fraction: digits beyond 18 are below a nanosecond even for hours
        // and are dropped (truncation), as Go drops them.
        let mut frac: u128 = 0;
        let mut scale: u128 = 1;
        let mut frac_len = 0;
        rest = after_int;
        if let Some(after_dot) = rest.strip_prefix('.') {
            frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let (frac_text, after_frac) = after_dot.split_at(frac_len);
            for b in frac_text.bytes().take(18) {
                frac = frac * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            rest = after_frac;
        } else if int_len == 0 {
            return Err(invalid());
        }
        if int_len == 0 && frac_len == 0 {
            return Err(invalid());
        }
        // Unit: everything up to the next number.
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (unit, after_unit) = rest.split_at(unit_len);
        if unit.is_empty() {
            let number = &start[..start.len() - rest.len()];
            return Err(DurationError::MissingUnit {
                text: text.to_owned(),
                number: number.to_owned(),
            });
        }
        let Some(&(_, per)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            if unit.chars().all(|c| c.is_alphabetic()) {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: unit.to_owned(),
                });
            }
            return Err(invalid());
        };
        let per = u128::from(per);
        let part = int.checked_mul(per).ok_or_else(overflow)? + frac * per / scale;
        total = total.checked_add(part).ok_or_else(overflow)?;
        if total > max {
            return Err(overflow());
        }
        rest = after_unit;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow())?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, nanos))
}

/// Renders a duration compactly: each non-zero component once, largest
/// first (`1h30m`, `2m`, `1s500ms`, `250us`); zero is `0s`.
///
/// For durations up to [`MAX_DURATION`], [`parse_duration`] gives back the
/// same value.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let mut nanos = d.as_nanos();
    let mut out = String::new();
    for (name, per) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let n = nanos / per;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
        }
        nanos %= per;
    }
    out
}

/// A [`Duration`] that reads and writes Go-style text (`2m`, `1h30m`).
///
/// Deserializes from a string, or from the integer `0`; serializes as the
/// compact text of [`format_duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Self {
        d.0
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de::any_text::<D, HumanDuration>(d)
    }
}

impl super::de::TextValue for HumanDuration {
    const EXPECTING: &'static str = "a duration like 30s, 2m or 1h30m";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: DurationError| e.to_string())
    }
}

/// Why a text is not a byte size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// The text is empty.
    #[error("a size must not be empty; write it like 64MB, 512KB or 1024")]
    Empty,
    /// No whole number at the start (a sign, a fraction, a letter).
    #[error(
        "`{text}` is not a size; write a whole number with an optional unit, like 64MB, 1536KB or 1024"
    )]
    Invalid {
        /// The rejected text.
        text: String,
    },
    /// A unit other than `B`, `K(i)(B)`, `M..`, `G..`, `T..`.
    #[error(
        "size `{text}` has unknown unit `{unit}`; use B, KB, MB, GB or TB (binary: 1MB = 1024KB)"
    )]
    UnknownUnit {
        /// The rejected text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// More than `u64::MAX` bytes.
    #[error("size `{text}` is too large")]
    Overflow {
        /// The rejected text.
        text: String,
    },
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;

/// Parses a byte size (`64MB`, `2GiB`, `512k`, `1024`, `0`); every unit is
/// binary.
///
/// # Errors
/// [`SizeError`] naming the problem and quoting the text.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(SizeError::Invalid {
            text: text.to_owned(),
        });
    }
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim_start_matches(' ');
    let per = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ if unit.starts_with(['.', ',', '_']) => {
            return Err(SizeError::Invalid {
                text: text.to_owned(),
            });
        }
        _ => {
            return Err(SizeError::UnknownUnit {
                text: text.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let overflow = || SizeError::Overflow {
        text: text.to_owned(),
    };
    let n: u64 = number.parse().map_err(|_| overflow())?;
    n.checked_mul(per).ok_or_else(overflow)
}

/// Renders a byte size with the largest binary unit that divides it
/// exactly (`64MiB`, `1536KiB`, `1000B`); zero is `0`.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for (name, per) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes.is_multiple_of(per) {
            return format!("{}{name}", bytes / per);
        }
    }
    format!("{bytes}B")
}

/// A byte count that reads and writes size text (`64MB`, `2GiB`, `1024`).
///
/// Deserializes from a string or a non-negative integer (bytes);
/// serializes as the text of [`format_size`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = SizeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.0))
    }
}

impl From<u64> for ByteSize {
    fn from(n: u64) -> Self {
        ByteSize(n)
    }
}

impl From<ByteSize> for u64 {
    fn from(n: ByteSize) -> Self {
        n.0
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_size(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de::any_text::<D, ByteSize>(d)
    }
}

impl super::de::TextValue for ByteSize {
    const EXPECTING: &'static str = "a size like 64MB, 512KB or 1024";
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e: SizeError| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(text: &str) -> Duration {
        parse_duration(text).unwrap()
    }

    #[test]
    fn parses_go_durations() {
        assert_eq!(d("2m"), Duration::from_secs(120));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("10s"), Duration::from_secs(10));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d("0s"), Duration::ZERO);
        assert_eq!(d("1ns"), Duration::from_nanos(1));
        assert_eq!(d("3us"), Duration::from_micros(3));
        assert_eq!(d("3\u{b5}s"), Duration::from_micros(3));
        assert_eq!(d("3\u{3bc}s"), Duration::from_micros(3));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(d("5.s"), Duration::from_secs(5));
        assert_eq!(d("1h1h"), Duration::from_secs(7200));
        assert_eq!(
            d("2h45m30.5s"),
            Duration::from_millis((2 * 3600 + 45 * 60 + 30) * 1000 + 500)
        );
        assert_eq!(d("0.000000001s"), Duration::from_nanos(1));
        assert_eq!(
            d("0.0000000019s"),
            Duration::from_nanos(1),
            "sub-nanosecond digits truncate"
        );
        assert_eq!(d("2562047h47m16.854775807s"), MAX_DURATION);
    }

    #[test]
    fn rejects_bad_durations_with_reasons() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Signed { .. })
        ));
        assert!(matches!(
            parse_duration("+1s"),
            Err(DurationError::Signed { .. })
        ));
        assert!(matches!(
            parse_duration("-0"),
            Err(DurationError::Signed { .. })
        ));
        assert!(
            matches!(parse_duration("5"), Err(DurationError::MissingUnit { number, .. }) if number == "5")
        );
        assert!(
            matches!(parse_duration("1h30"), Err(DurationError::MissingUnit { number, .. }) if number == "30")
        );
        assert!(matches!(
            parse_duration("00"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(
            matches!(parse_duration("5d"), Err(DurationError::UnknownUnit { unit, .. }) if unit == "d")
        );
        assert!(matches!(
            parse_duration("5 s"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("5sec"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration(".s"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("1..5s"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_duration(" 5s"),
            Err(DurationError::Invalid { .. })
        ));
        assert!(matches!(
            parse_duration("2562047h47m16.854775808s"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
        assert!(matches!(
            parse_duration("3000000h"),
            Err(DurationError::Overflow { .. })
        ));
        let msg = parse_duration("5").unwrap_err().to_string();
        assert!(msg.contains("needs a unit"), "{msg}");
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_secs(3605)), "1h5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_nanos(1_001)), "1us1ns");
        assert_eq!(HumanDuration(Duration::from_secs(3600)).to_string(), "1h");
    }

    #[test]
    fn parses_sizes_in_binary_units() {
        let s = |t: &str| parse_size(t).unwrap();
        assert_eq!(s("64MB"), 64 * MIB);
        assert_eq!(s("64MiB"), 64 * MIB);
        assert_eq!(s("64mb"), 64 * MIB);
        assert_eq!(s("64M"), 64 * MIB);
        assert_eq!(s("64 MB"), 64 * MIB);
        assert_eq!(s("2GiB"), 2 * GIB);
        assert_eq!(s("512KB"), 512 * KIB);
        assert_eq!(s("512k"), 512 * KIB);
        assert_eq!(s("1TB"), TIB);
        assert_eq!(s("1024"), 1024);
        assert_eq!(s("1024B"), 1024);
        assert_eq!(s("0"), 0);
        assert_eq!(s("18446744073709551615"), u64::MAX);
        assert_eq!(s("16777215TiB"), 16_777_215 * TIB);
    }

    #[test]
    fn rejects_bad_sizes_with_reasons() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert!(matches!(parse_size("MB"), Err(SizeError::Invalid { .. })));
        assert!(matches!(parse_size("-1MB"), Err(SizeError::Invalid { .. })));
        assert!(matches!(
            parse_size("1.5GB"),
            Err(SizeError::Invalid { .. })
        ));
        assert!(
            matches!(parse_size("64XB"), Err(SizeError::UnknownUnit { unit, .. }) if unit == "XB")
        );
        assert!(matches!(
            parse_size("64PB"),
            Err(SizeError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("18446744073709551616"),
            Err(SizeError::Overflow { .. })
        ));
        assert!(matches!(
            parse_size("16777216TiB"),
            Err(SizeError::Overflow { .. })
        ));
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(64 * MIB), "64MiB");
        assert_eq!(format_size(1536 * KIB), "1536KiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(0), "0");
        assert_eq!(format_size(TIB), "1TiB");
        assert_eq!(ByteSize(2 * GIB).to_string(), "2GiB");
    }

    #[test]
    fn serde_accepts_text_and_integers() {
        let v: ByteSize = serde_yaml::from_str("1024").unwrap();
        assert_eq!(v, ByteSize(1024));
        let v: ByteSize = serde_yaml::from_str("\"64MB\"").unwrap();
        assert_eq!(v, ByteSize(64 * MIB));
        let v: HumanDuration = serde_yaml::from_str("0").unwrap();
        assert_eq!(v, HumanDuration(Duration::ZERO));
        let v: HumanDuration = serde_yaml::from_str("1h30m").unwrap();
        assert_eq!(v.0, Duration::from_secs(5400));
        assert!(serde_yaml::from_str::<HumanDuration>("5").is_err());
        assert!(serde_yaml::from_str::<HumanDuration>("[1]").is_err());
        assert_eq!(
            serde_yaml::to_string(&HumanDuration(Duration::from_secs(90))).unwrap(),
            "1m30s\n"
        );
        assert_eq!(
            serde_yaml::to_string(&ByteSize(64 * MIB)).unwrap(),
            "64MiB\n"
        );
        let v: ByteSize = serde_json::from_str("4096").unwrap();
        assert_eq!(v, ByteSize(4096));
        let v: HumanDuration = serde_json::from_str("0").unwrap();
        assert_eq!(v, HumanDuration(Duration::ZERO));
    }

    fn duration_in_range() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..=9_223_372_035, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            (0u64..100_000).prop_map(Duration::from_secs),
            (0u64..100_000).prop_map(Duration::from_millis),
            Just(MAX_DURATION),
        ]
    }

    proptest! {
        #[test]
        fn duration_round_trips(dur in duration_in_range()) {
            prop_assert_eq!(parse_duration(&format_duration(dur)).unwrap(), dur);
        }

        #[test]
        fn size_round_trips(n in prop_oneof![any::<u64>(), (0u64..1 << 24).prop_map(|k| k * KIB), (0u64..1 << 20).prop_map(|k| k * MIB)]) {
            prop_assert_eq!(parse_size(&format_size(n)).unwrap(), n);
        }

        #[test]
        fn parsers_never_panic(text in ".{0,40}") {
            let _ = parse_duration(&text);
            let _ = parse_size(&text);
        }

        #[test]
        fn unit_shaped_text_never_panics(text in "[0-9.]{0,25}(ns|us|ms|s|m|h|µ|x|MB|kib|B)?[0-9.hms]{0,10}") {
            let _ = parse_duration(&text);
            let _ = parse_size(&text);
        }
    }
}
