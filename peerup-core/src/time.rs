//! Time as plain values: the core never reads a clock.
//!
//! Two kinds of time come in as arguments:
//!
//! - [`Instant`]: monotonic time for timers (a stream deadline, a retry).
//!   It is a duration since an origin the caller picks once (an adapter
//!   keeps a `std::time::Instant` origin and converts; a simulation starts
//!   at [`Instant::ZERO`]), so simulations are deterministic to the
//!   nanosecond and need no real clock at all.
//! - [`UnixTime`]: wall-clock facts that survive a restart (an `expires=`
//!   attribute in `authorized_keys`, a commit-confirmed deadline), which the
//!   caller reads from its clock.

use core::fmt;
use core::time::Duration;

use ::time::format_description::well_known::Rfc3339;
use ::time::{OffsetDateTime, UtcOffset};

/// A monotonic instant: the time elapsed since the caller's origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(Duration);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(Duration::ZERO);

    /// The instant `since_origin` after the origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    /// Time since the origin.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// `self + d`, saturating at the largest representable instant.
    pub fn saturating_add(self, d: Duration) -> Self {
        Instant(self.0.saturating_add(d))
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl core::ops::AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = self.saturating_add(d);
    }
}

impl core::ops::Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: never panics.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{:?}", self.0)
    }
}

/// A wall-clock instant: milliseconds since the Unix epoch (UTC).
///
/// Millisecond resolution is finer than any deadline peerup keeps and lets
/// the value round-trip through RFC 3339 text exactly when the text has at
/// most millisecond precision.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(i64);

/// The text is not an RFC 3339 timestamp (`2026-01-31T12:00:00Z`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 timestamp (like 2026-01-31T12:00:00Z)")]
pub struct Rfc3339Error {
    /// The rejected text.
    pub text: String,
}

impl UnixTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// From whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        UnixTime(secs.saturating_mul(1000))
    }

    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        UnixTime(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards negative infinity).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// From a [`std::time::SystemTime`] the caller read. Times before the
    /// epoch or beyond the representable range saturate.
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => UnixTime(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => UnixTime(i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m)),
        }
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        UnixTime(self.0.saturating_add(ms))
    }

    /// How long from `self` until `later`; zero if `later` is not after `self`.
    pub fn until(self, later: UnixTime) -> Duration {
        let diff = later.0.saturating_sub(self.0);
        Duration::from_millis(u64::try_from(diff).unwrap_or(0))
    }

    /// Parses RFC 3339 text, any UTC offset (`2026-01-31T12:00:00+01:00`).
    ///
    /// # Errors
    /// [`Rfc3339Error`] when the text is not RFC 3339 or out of range.
    pub fn parse_rfc3339(text: &str) -> Result<Self, Rfc3339Error> {
        let err = || Rfc3339Error {
            text: text.to_owned(),
        };
        let dt = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| err())?;
        let nanos = dt.unix_timestamp_nanos();
        let millis = nanos.div_euclid(1_000_000);
        Ok(UnixTime(i64::try_from(millis).map_err(|_| err())?))
    }

    fn to_datetime(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if self.0 < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            far_future()
        })
    }

    /// RFC 3339 in UTC: `2026-01-31T12:00:00Z`, with milliseconds only when
    /// they are not zero.
    pub fn to_rfc3339(self) -> String {
        let dt = self.to_datetime().to_offset(UtcOffset::UTC);
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
        let ms = dt.millisecond();
        if ms == 0 {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
        } else {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
        }
    }

    /// The UTC calendar date, `YYYY-MM-DD` (used in default comments such as
    /// `joined-2026-01-31`).
    pub fn date(self) -> String {
        let dt = self.to_datetime().to_offset(UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day()
        )
    }
}

fn far_future() -> OffsetDateTime {
    // 9999-12-31T23:59:59Z, the largest instant RFC 3339 can write.
    OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixTime({})", self.to_rfc3339())
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Exponential backoff: `min`, doubling on every failure up to `max`,
/// back to `min` after a success. Used where a loop retries an operation
/// that fails for a reason that lasts (an accept loop out of descriptors
/// must not spin at 100% CPU; a relay that refuses a reservation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`, never waits longer than `max`.
    pub const fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// Another failure: how long to wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        let wait = self.next.min(self.max);
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// A success: the next failure waits `min` again.
    pub fn succeed(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets_on_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(10), ms(1000));
        let waits: Vec<Duration> = (0..9).map(|_| b.fail()).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000].map(ms).to_vec()
        );
        b.succeed();
        assert_eq!(b.fail(), ms(10));
    }

    #[test]
    fn parses_utc_and_offsets() {
        let t = UnixTime::parse_rfc3339("2026-01-31T12:00:00Z").unwrap();
        assert_eq!(t.as_secs(), 1_769_860_800);
        let o = UnixTime::parse_rfc3339("2026-01-31T13:00:00+01:00").unwrap();
        assert_eq!(t, o);
        assert_eq!(t.to_rfc3339(), "2026-01-31T12:00:00Z");
        assert_eq!(t.date(), "2026-01-31");
    }

    #[test]
    fn rejects_non_rfc3339() {
        for bad in [
            "",
            "2026-01-31",
            "2026-01-31 12:00:00",
            "tomorrow",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(UnixTime::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn until_saturates_at_zero() {
        let a = UnixTime::from_secs(10);
        let b = UnixTime::from_secs(12);
        assert_eq!(a.until(b), Duration::from_secs(2));
        assert_eq!(b.until(a), Duration::ZERO);
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::ZERO + Duration::from_secs(5);
        assert_eq!(t - Instant::ZERO, Duration::from_secs(5));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(format!("{t:?}"), "t+5s");
    }

    proptest! {
        #[test]
        fn rfc3339_round_trips(ms in -62_135_596_800_000i64..253_402_300_799_000) {
            let t = UnixTime::from_millis(ms);
            prop_assert_eq!(UnixTime::parse_rfc3339(&t.to_rfc3339()).unwrap(), t);
        }
    }
}
