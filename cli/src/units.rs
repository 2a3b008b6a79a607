//! Durations and sizes for people.

/// A duration in ns with a unit that keeps about three significant digits: `850 ns`,
/// `12.3 µs`, `4.56 ms`, `2.50 s`, `3.2 min`, `5.0 h`.
///
/// ```
/// use perf_metrics::units::human_ns;
/// assert_eq!(human_ns(0.0), "0 ns");
/// assert_eq!(human_ns(1_234_567.0), "1.23 ms");
/// assert_eq!(human_ns(2_500_000_000.0), "2.50 s");
/// ```
pub fn human_ns(ns: f64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e3, "µs"), (1e6, "ms"), (1e9, "s"), (60e9, "min")];
    if !ns.is_finite() || ns < 0.0 {
        return format!("{ns} ns");
    }
    if ns < 999.5 {
        return format!("{ns:.0} ns");
    }
    if ns >= 3600e9 {
        return format!("{:.1} h", ns / 3600e9);
    }
    let mut pick = UNITS[0];
    for unit in UNITS {
        if ns >= unit.0 * 0.9995 {
            pick = unit;
        }
    }
    let v = ns / pick.0;
    if pick.1 == "min" {
        return format!("{v:.1} min");
    }
    if v < 9.995 {
        format!("{v:.2} {}", pick.1)
    } else if v < 99.95 {
        format!("{v:.1} {}", pick.1)
    } else {
        format!("{v:.0} {}", pick.1)
    }
}

/// Seconds for people (CPU time): `0.123 s`, `12.3 s`, `4.2 min`.
pub fn human_seconds(s: f64) -> String {
    human_ns(s * 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        let cases = [
            (999.0, "999 ns"),
            (999.6, "1.00 µs"),
            (12_345.0, "12.3 µs"),
            (123_456.0, "123 µs"),
            (999_999.0, "1.00 ms"),
            (59_000_000_000.0, "59.0 s"),
            (90e9, "1.5 min"),
            (7200e9, "2.0 h"),
            (u64::MAX as f64, "5124095.6 h"),
        ];
        for (ns, want) in cases {
            assert_eq!(human_ns(ns), want, "{ns}");
        }
        assert_eq!(human_seconds(0.5), "500 ms");
    }
}
