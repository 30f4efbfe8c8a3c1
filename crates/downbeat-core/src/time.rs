//! Time as plain values: milliseconds since the Unix epoch, and human durations.
//!
//! The core never reads a clock; callers pass `now` in.

use std::fmt;

use serde::Serialize;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn saturating_sub(self, d: Millis) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }
    pub fn since(self, earlier: Timestamp) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
    /// RFC 3339 in UTC with second precision, e.g. `2026-03-01T09:30:00Z`.
    pub fn rfc3339(self) -> String {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            Err(_) => format!("@{}ms", self.0),
        }
    }
    /// Parses RFC 3339 (`2026-03-01T09:30:00Z`, offsets allowed).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        s.parse::<jiff::Timestamp>()
            .ok()
            .map(|t| Timestamp(t.as_millisecond()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// A non-negative span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Millis(pub i64);

impl Millis {
    pub const SECOND: Millis = Millis(1000);
    pub const MINUTE: Millis = Millis(60_000);
    pub const HOUR: Millis = Millis(3_600_000);
    pub const DAY: Millis = Millis(86_400_000);

    /// Parses `90s`, `30m`, `1h`, `1h30m`, `2d`, `1w`.
    pub fn parse(s: &str) -> Result<Millis, String> {
        let s = s.trim();
        let bad = || format!("invalid duration `{s}` (use forms like 90s, 30m, 1h30m, 2d, 1w)");
        if s.is_empty() {
            return Err(bad());
        }
        let mut total: i64 = 0;
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let unit = match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 7 * 86_400_000,
                _ => return Err(bad()),
            };
            let n: i64 = num.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            num.clear();
        }
        if !num.is_empty() {
            return Err(bad());
        }
        Ok(Millis(total))
    }

    /// As a [`std::time::Duration`] (a negative span is zero).
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }

    /// A [`std::time::Duration`] in whole milliseconds (saturating).
    pub fn of(d: std::time::Duration) -> Millis {
        Millis(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Short human form: `3d`, `5h`, `12m`, `40s`.
    pub fn human(self) -> String {
        let ms = self.0.max(0);
        if ms >= Self::DAY.0 {
            format!("{}d", ms / Self::DAY.0)
        } else if ms >= Self::HOUR.0 {
            format!("{}h", ms / Self::HOUR.0)
        } else if ms >= Self::MINUTE.0 {
            format!("{}m", ms / Self::MINUTE.0)
        } else {
            format!("{}s", ms / 1000)
        }
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.human())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(Millis::parse("90s").unwrap(), Millis(90_000));
        assert_eq!(Millis::parse("1h30m").unwrap(), Millis(5_400_000));
        assert_eq!(Millis::parse("2d").unwrap(), Millis(172_800_000));
        for bad in ["", "h", "10", "5x", "1h5"] {
            assert!(Millis::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let t = Timestamp::parse_rfc3339("2026-03-01T09:30:00Z").unwrap();
        assert_eq!(t.rfc3339(), "2026-03-01T09:30:00Z");
        assert_eq!(Millis(3 * 3_600_000 + 5).human(), "3h");
    }
}

/// Serializes durations as whole milliseconds (`serialize_with = "millis::one"`), the shape
/// every `*_ms` field of the JSON output has.
pub mod millis {
    use std::time::Duration;

    use serde::Serialize;

    fn ms(d: &Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn one<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        ms(d).serialize(s)
    }

    pub fn option<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.as_ref().map(ms).serialize(s)
    }
}
