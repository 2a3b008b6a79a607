//! Is memory growing with uptime? A robust slope and a verdict.
//!
//! The slope is Theil–Sen's: the median of the slopes between every pair of points. Half of
//! the points can be wild (a burst while a protocol loads, a sample taken mid-garbage
//! collection) before it moves, where a least-squares line follows every spike. Whether the
//! rise is real rather than noise is Mann–Kendall's test on the same pairs: `S` counts the
//! pairs that go up minus those that go down, and `z` scales it by its spread under "no
//! trend" (without the ties correction, which would only make `z` larger: the test stays
//! on the cautious side).
//!
//! Bounded memory: the points are the bins of a [`super::timeline::Timeline`] (at most 256,
//! each the mean time and mean memory of the samples in it), so the pairs are at most
//! 32,640 however long the series. A series of up to 256 samples one second or more apart
//! is used sample by sample, so the estimate is exactly Theil–Sen's; a longer one is
//! Theil–Sen over bin means, which also averages the sampling noise away.

use serde::Serialize;

/// Fewer samples than this: too little data.
pub const MIN_SAMPLES: u64 = 10;
/// A shorter span (first to last sample): too little data, ns. Half an hour.
pub const MIN_SPAN_NS: u64 = 30 * 60 * 1_000_000_000;
/// A slope of at least this (percentage points of the machine's memory per hour) counts as
/// growth: 0.01 % of a Flex's 4 GiB is 0.4 MiB/h, 10 MiB a day.
pub const GROWING_PERCENT_PER_HOUR: f64 = 0.01;
/// Mann–Kendall `z` at least this: the rise is not noise (one-sided p ≈ 0.001).
pub const MIN_Z: f64 = 3.0;

/// The verdict on a memory series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Too few samples, or too short a span, to tell.
    TooLittleData,
    /// No growth at or above the threshold that stands out from the noise.
    Flat,
    /// Grows by at least [`GROWING_PERCENT_PER_HOUR`], and Mann–Kendall agrees.
    Growing,
}

impl Verdict {
    /// As shown in text.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::TooLittleData => "too little data",
            Verdict::Flat => "flat",
            Verdict::Growing => "growing",
        }
    }
}

/// A fitted trend.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trend {
    /// Theil–Sen slope, percentage points per hour; `None` with fewer than two points.
    pub slope_percent_per_hour: Option<f64>,
    /// Line through the points at the slope: value at hour 0 (the first sample).
    #[serde(skip)]
    pub intercept: f64,
    /// Mann–Kendall z.
    pub mann_kendall_z: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Fits `points` (hours since the first sample, memory %) from `samples` samples spanning
/// `span_ns`.
pub fn fit(points: &[(f64, f64)], samples: u64, span_ns: u64) -> Trend {
    let mut slopes = Vec::with_capacity(points.len() * points.len().saturating_sub(1) / 2);
    let mut s: i64 = 0;
    for (i, &(xi, yi)) in points.iter().enumerate() {
        for &(xj, yj) in &points[i + 1..] {
            if xj != xi {
                slopes.push((yj - yi) / (xj - xi));
            }
            // Mann–Kendall counts in time order: points are sorted by x.
            s += match (yj - yi).partial_cmp(&0.0) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let slope = median(&mut slopes);
    let intercept = slope.map_or(0.0, |b| {
        let mut rest: Vec<f64> = points.iter().map(|&(x, y)| y - b * x).collect();
        median(&mut rest).unwrap_or(0.0)
    });
    let n = points.len() as f64;
    let z = (points.len() >= 3).then(|| {
        let var = n * (n - 1.0) * (2.0 * n + 5.0) / 18.0;
        let s = s as f64;
        // Continuity correction.
        (s - s.signum()) / var.sqrt()
    });
    let verdict = if samples < MIN_SAMPLES || span_ns < MIN_SPAN_NS || slope.is_none() {
        Verdict::TooLittleData
    } else if slope.is_some_and(|b| b >= GROWING_PERCENT_PER_HOUR) && z.is_some_and(|z| z >= MIN_Z)
    {
        Verdict::Growing
    } else {
        Verdict::Flat
    };
    Trend {
        slope_percent_per_hour: slope,
        intercept,
        mann_kendall_z: z,
        verdict,
    }
}

/// The median (mean of the middle two for an even count); `None` when empty.
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator: noise that is the same on every run.
    struct Noise(u64);
    impl Noise {
        /// Roughly normal, mean 0, standard deviation 1 (sum of 12 uniforms).
        fn next(&mut self) -> f64 {
            let mut sum = 0.0;
            for _ in 0..12 {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                sum += (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            }
            sum - 6.0
        }
    }

    const HOUR_NS: u64 = 3_600_000_000_000;

    /// `hours` of samples every 10 s, memory from `f(hour)` plus noise of `sd`, through
    /// the same binning the report uses.
    fn series(hours: f64, sd: f64, seed: u64, f: impl Fn(f64) -> f64) -> Trend {
        use super::super::timeline::{Merge, Timeline};
        #[derive(Default)]
        struct Bin(f64, f64, f64);
        impl Merge for Bin {
            fn merge(&mut self, o: Self) {
                self.0 += o.0;
                self.1 += o.1;
                self.2 += o.2;
            }
        }
        let mut noise = Noise(seed);
        let mut timeline: Timeline<Bin> = Timeline::default();
        let n = (hours * 360.0) as u64;
        for i in 0..n {
            let t = i * 10_000_000_000;
            let h = t as f64 / HOUR_NS as f64;
            let b = timeline.at(t);
            b.0 += 1.0;
            b.1 += h;
            b.2 += f(h) + sd * noise.next();
        }
        let points: Vec<(f64, f64)> = timeline
            .bins()
            .map(|(_, b)| (b.1 / b.0, b.2 / b.0))
            .collect();
        fit(&points, n, n.saturating_sub(1) * 10_000_000_000)
    }

    #[test]
    fn flat_with_noise_is_flat() {
        for seed in 1..=5 {
            let t = series(24.0, 0.3, seed, |_| 5.0);
            assert_eq!(t.verdict, Verdict::Flat, "seed {seed}: {t:?}");
            assert!(t.slope_percent_per_hour.unwrap().abs() < GROWING_PERCENT_PER_HOUR);
        }
    }

    #[test]
    fn steady_growth_is_growing_with_the_right_slope() {
        let t = series(12.0, 0.0, 1, |h| 2.0 + 0.05 * h);
        assert_eq!(t.verdict, Verdict::Growing);
        assert!(
            (t.slope_percent_per_hour.unwrap() - 0.05).abs() < 1e-9,
            "{t:?}"
        );
        assert!((t.intercept - 2.0).abs() < 1e-6, "{t:?}");
    }

    #[test]
    fn growth_hidden_in_noise_is_found() {
        // 0.02 %/h under noise ten times the hourly rise, and a few wild spikes.
        let t = series(48.0, 0.2, 7, |h| {
            let spike = if (h * 10.0) as u64 % 97 == 0 {
                30.0
            } else {
                0.0
            };
            3.0 + 0.02 * h + spike
        });
        assert_eq!(t.verdict, Verdict::Growing, "{t:?}");
        let b = t.slope_percent_per_hour.unwrap();
        assert!((b - 0.02).abs() < 0.004, "{t:?}");
    }

    #[test]
    fn a_handful_of_samples_is_too_little_data() {
        let points: Vec<(f64, f64)> = (0..5).map(|i| (f64::from(i), f64::from(i))).collect();
        let t = fit(&points, 5, 5 * HOUR_NS);
        assert_eq!(t.verdict, Verdict::TooLittleData);
        // Steep growth over ten minutes is not enough to call it either.
        let t = series(1.0 / 6.0, 0.0, 1, |h| 1.0 + 10.0 * h);
        assert_eq!(t.verdict, Verdict::TooLittleData);
        assert_eq!(fit(&[], 0, 0).slope_percent_per_hour, None);
    }
}
