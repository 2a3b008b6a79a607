//! `--since` / `--until`: a time window over the records, and times shown to people.

use std::fmt;

/// A half-open window `[since, until)` in ns since the epoch; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// First instant included.
    pub since: Option<u64>,
    /// First instant excluded.
    pub until: Option<u64>,
}

impl Window {
    /// Whether `t_ns` falls inside.
    pub fn contains(&self, t_ns: u64) -> bool {
        self.since.is_none_or(|s| t_ns >= s) && self.until.is_none_or(|u| t_ns < u)
    }
}

/// Parses a point in time: RFC 3339 (`2024-07-31T18:20:00Z`, `2024-07-31T20:20:00.5+02:00`,
/// a space instead of the `T` is fine) or seconds since the Unix epoch (`1722450000`,
/// `1722450000.25`). Returns ns since the epoch.
///
/// ```
/// use perf_metrics::window::parse_time;
/// assert_eq!(parse_time("1722450000.25"), Ok(1_722_450_000_250_000_000));
/// assert_eq!(parse_time("2024-07-31T18:20:00Z"), Ok(1_722_450_000_000_000_000));
/// assert_eq!(parse_time("2024-07-31T20:20:00+02:00"), Ok(1_722_450_000_000_000_000));
/// assert!(parse_time("yesterday").is_err());
/// ```
pub fn parse_time(value: &str) -> Result<u64, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return parse_epoch_seconds(value);
    }
    let ts: jiff::Timestamp = value.parse().map_err(|e| {
        format!("expected RFC 3339 (e.g. 2024-07-31T18:20:00Z) or seconds since the epoch: {e}")
    })?;
    u64::try_from(ts.as_nanosecond()).map_err(|_| "times before 1970 are not supported".into())
}

/// Exact decimal seconds to ns (no float rounding: `0.1` is 100000000 ns).
fn parse_epoch_seconds(value: &str) -> Result<u64, String> {
    let bad = || format!("{value:?} is not seconds since the epoch (e.g. 1722450000.5)");
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    if whole.is_empty() || frac.contains('.') || frac.len() > 9 {
        return Err(bad());
    }
    let secs: u64 = whole.parse().map_err(|_| bad())?;
    let frac_ns: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(frac_ns))
        .ok_or_else(|| format!("{value:?} is too far in the future"))
}

/// A time for people: RFC 3339 in UTC with milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Utc(pub u64);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_nanosecond(i128::from(self.0)) {
            Ok(ts) => write!(f, "{ts:.3}"),
            Err(_) => write!(f, "{} ns since the epoch", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1.000000001"), Ok(1_000_000_001));
        assert_eq!(parse_time(" 12.5 "), Ok(12_500_000_000));
        for bad in [".5", "1.2.3", "1.0000000001", "99999999999999999999", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            parse_time("2024-07-31 18:20:00.123456789Z"),
            Ok(1_722_450_000_123_456_789)
        );
        assert!(parse_time("1969-12-31T23:59:59Z").is_err());
        assert!(parse_time("2024-07-31").is_err());
    }

    #[test]
    fn windows_are_half_open() {
        let w = Window {
            since: Some(10),
            until: Some(20),
        };
        assert!(!w.contains(9) && w.contains(10) && w.contains(19) && !w.contains(20));
        assert!(Window::default().contains(u64::MAX));
    }

    #[test]
    fn utc_display() {
        assert_eq!(
            Utc(1_722_450_000_123_456_789).to_string(),
            "2024-07-31T18:20:00.123Z"
        );
    }
}
