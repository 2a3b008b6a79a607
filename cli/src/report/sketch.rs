//! Duration percentiles in bounded memory: exact while they fit, a log-bucket sketch after.
//!
//! A state's durations are kept exactly up to [`EXACT_LIMIT`] values (8 MiB), so every
//! report of a day or a week gives true nearest-rank percentiles, durations that occurred.
//! Past that (a year of `GETTING_CACHED_ANALYSIS`), percentiles come from a [`LogSketch`]:
//! buckets whose bounds grow by 2 % (the DDSketch idea), so a percentile read from it is
//! within 1 % of a duration that occurred at that rank. Count, total, mean and max are
//! always exact. The sketch has at most about 2,300 buckets for the whole `u64` range.

use std::collections::BTreeMap;

/// Values kept exactly per state before percentiles switch to the sketch.
pub const EXACT_LIMIT: usize = 1 << 20;

/// Bucket bounds grow by this factor: a value is within `(GAMMA - 1) / 2` of its bucket's
/// representative.
const GAMMA: f64 = 1.02;

/// A mergeable histogram with relative-error buckets: bucket `i` holds values in
/// `(GAMMA^(i-1), GAMMA^i]`; zero has its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogSketch {
    zeros: u64,
    buckets: BTreeMap<i32, u64>,
    count: u64,
}

impl LogSketch {
    fn index(value: u64) -> i32 {
        // ln(u64::MAX) / ln(1.02) is about 2,240: always fits.
        ((value as f64).ln() / GAMMA.ln()).ceil() as i32
    }

    /// The value a bucket stands for: the middle of its bounds (in relative terms).
    fn representative(index: i32) -> f64 {
        GAMMA.powi(index) * 2.0 / (1.0 + GAMMA)
    }

    /// Counts one value.
    pub fn add(&mut self, value: u64) {
        self.count += 1;
        if value == 0 {
            self.zeros += 1;
        } else {
            *self.buckets.entry(Self::index(value)).or_default() += 1;
        }
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &LogSketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        for (&i, &n) in &other.buckets {
            *self.buckets.entry(i).or_default() += n;
        }
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The nearest-rank `p`-th percentile (`p` in 0..=100), within 1 %; `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        if rank <= self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (&i, &n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(Self::representative(i));
            }
        }
        self.buckets
            .keys()
            .next_back()
            .map(|&i| Self::representative(i))
    }

    /// Counts in `per_decade` equal log-width bins per power of ten, for a histogram:
    /// `(lower bound, upper bound, count)` in ascending order, zeros left out.
    pub fn log_bins(&self, per_decade: u32) -> Vec<(f64, f64, u64)> {
        let mut bins: BTreeMap<i64, u64> = BTreeMap::new();
        let per_decade = f64::from(per_decade.max(1));
        for (&i, &n) in &self.buckets {
            let v = Self::representative(i);
            let b = (v.log10() * per_decade).floor() as i64;
            *bins.entry(b).or_default() += n;
        }
        bins.into_iter()
            .map(|(b, n)| {
                let lo = 10f64.powf(b as f64 / per_decade);
                let hi = 10f64.powf((b + 1) as f64 / per_decade);
                (lo, hi, n)
            })
            .collect()
    }
}

/// One state's durations: exact values while they fit, always the sketch.
#[derive(Debug, Clone, Default)]
pub struct Durations {
    exact: Option<Vec<u64>>,
    limit: usize,
    sketch: LogSketch,
}

impl Durations {
    /// An empty set that keeps values exactly up to [`EXACT_LIMIT`].
    pub fn new() -> Durations {
        Durations::with_limit(EXACT_LIMIT)
    }

    /// An empty set that keeps values exactly up to `limit`.
    pub fn with_limit(limit: usize) -> Durations {
        Durations {
            exact: Some(Vec::new()),
            limit,
            sketch: LogSketch::default(),
        }
    }

    /// Counts one duration.
    pub fn add(&mut self, ns: u64) {
        self.sketch.add(ns);
        if let Some(v) = &mut self.exact {
            if v.len() < self.limit {
                v.push(ns);
            } else {
                // From here on only the sketch: free the values.
                self.exact = None;
            }
        }
    }

    /// Whether percentiles are exact.
    pub fn exact(&self) -> bool {
        self.exact.is_some()
    }

    /// The sketch of all durations.
    pub fn sketch(&self) -> &LogSketch {
        &self.sketch
    }

    /// Percentiles `ps` (nearest rank): exact while the values fit, else from the sketch.
    pub fn percentiles(&mut self, ps: &[u32]) -> Vec<u64> {
        match &mut self.exact {
            Some(v) if !v.is_empty() => {
                v.sort_unstable();
                ps.iter().map(|&p| nearest_rank(v, p)).collect()
            }
            _ => ps
                .iter()
                .map(|&p| {
                    self.sketch
                        .quantile(f64::from(p))
                        .map_or(0, |q| q.round() as u64)
                })
                .collect(),
        }
    }
}

/// The value at nearest rank `ceil(p/100 × n)` of sorted, non-empty `sorted`.
pub fn nearest_rank(sorted: &[u64], p: u32) -> u64 {
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 50), 50);
        assert_eq!(nearest_rank(&v, 95), 95);
        assert_eq!(nearest_rank(&v, 99), 99);
        assert_eq!(nearest_rank(&[7], 99), 7);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 95), 4);
    }

    #[test]
    fn the_sketch_is_within_one_percent_of_the_exact_rank() {
        let mut s = LogSketch::default();
        let mut exact = Vec::new();
        let mut x: u64 = 12345;
        for _ in 0..100_000 {
            // A spread of magnitudes from ns to minutes.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = 1 + (x >> 20) % 100_000_000_000;
            s.add(v);
            exact.push(v);
        }
        s.add(0);
        exact.push(0);
        exact.sort_unstable();
        for p in [1u32, 50, 90, 95, 99, 100] {
            let want = nearest_rank(&exact, p) as f64;
            let got = s.quantile(f64::from(p)).unwrap();
            assert!((got - want).abs() <= want * 0.0101, "p{p}: {got} vs {want}");
        }
        assert_eq!(s.quantile(0.0), Some(0.0));
        let mut merged = LogSketch::default();
        merged.merge(&s);
        assert_eq!(merged, s);
        assert_eq!(LogSketch::default().quantile(50.0), None);
        assert!(LogSketch::index(u64::MAX) < 2300);
    }

    #[test]
    fn durations_switch_to_the_sketch_past_the_limit() {
        let mut d = Durations::new();
        for v in 1..=10u64 {
            d.add(v * 1000);
        }
        assert!(d.exact());
        assert_eq!(d.percentiles(&[50, 100]), [5000, 10000]);
        for _ in 0..EXACT_LIMIT {
            d.add(7);
        }
        assert!(!d.exact());
        let p = d.percentiles(&[50]);
        assert!((p[0] as f64 - 7.0).abs() <= 0.07 + 0.5, "{p:?}");
    }

    #[test]
    fn log_bins_cover_the_values() {
        let mut s = LogSketch::default();
        for v in [10u64, 11, 100, 1000, 1000] {
            s.add(v);
        }
        let bins = s.log_bins(1);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 5);
        assert!(bins.iter().all(|b| b.0 < b.1));
    }
}
