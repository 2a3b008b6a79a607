//! Values over time in bounded memory: at most [`MAX_BINS`] bins of equal width.
//!
//! The time span of a file is not known until it has been read, so the bins start one
//! second wide and, whenever one more would be needed, every pair of neighbours merges
//! into one twice as wide. The width that ends up used is the smallest power-of-two number
//! of seconds whose bins hold the whole span in at most [`MAX_BINS`], whatever order the
//! rows came in, so the same data always gives the same bins. Each bin is a summary that
//! can absorb another ([`Merge`]): sums, counts, a sketch.

use std::collections::BTreeMap;

/// Most bins a timeline keeps.
pub const MAX_BINS: usize = 256;

/// The narrowest bin.
const BASE_WIDTH_NS: u64 = 1_000_000_000;

/// A bin summary that can take in a neighbour's.
pub trait Merge: Default {
    /// Adds everything `other` holds.
    fn merge(&mut self, other: Self);
}

/// Bins of `B` keyed by time.
#[derive(Debug, Clone)]
pub struct Timeline<B> {
    width_ns: u64,
    bins: BTreeMap<u64, B>,
}

impl<B: Merge> Default for Timeline<B> {
    fn default() -> Self {
        Timeline {
            width_ns: BASE_WIDTH_NS,
            bins: BTreeMap::new(),
        }
    }
}

impl<B: Merge> Timeline<B> {
    /// The bin that holds time `t_ns`, made (and the bins coarsened) if needed.
    pub fn at(&mut self, t_ns: u64) -> &mut B {
        while !self.bins.contains_key(&(t_ns / self.width_ns)) && self.bins.len() >= MAX_BINS {
            self.coarsen();
        }
        self.bins.entry(t_ns / self.width_ns).or_default()
    }

    fn coarsen(&mut self) {
        // Width doubles; a u64 of ns cannot need more than 2^34 s bins.
        self.width_ns = self.width_ns.saturating_mul(2);
        let old = std::mem::take(&mut self.bins);
        for (k, b) in old {
            self.bins.entry(k / 2).or_default().merge(b);
        }
    }

    /// Bin width, ns.
    pub fn width_ns(&self) -> u64 {
        self.width_ns
    }

    /// `(start of the bin in ns since the epoch, bin)` in time order.
    pub fn bins(&self) -> impl Iterator<Item = (u64, &B)> {
        self.bins
            .iter()
            .map(move |(&k, b)| (k.saturating_mul(self.width_ns), b))
    }

    /// Number of bins.
    pub fn len(&self) -> usize {
        self.bins.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Clone, PartialEq)]
    struct Count(u64);
    impl Merge for Count {
        fn merge(&mut self, other: Self) {
            self.0 += other.0;
        }
    }

    fn fill(times: impl Iterator<Item = u64>) -> Timeline<Count> {
        let mut t: Timeline<Count> = Timeline::default();
        for x in times {
            t.at(x).0 += 1;
        }
        t
    }

    #[test]
    fn bins_stay_bounded_and_the_result_does_not_depend_on_order() {
        let s = 1_000_000_000u64;
        let times: Vec<u64> = (0..10_000u64)
            .map(|i| 1_700_000_000 * s + i * 7 * s)
            .collect();
        let forward = fill(times.iter().copied());
        let backward = fill(times.iter().rev().copied());
        assert!(forward.len() <= MAX_BINS);
        assert_eq!(forward.width_ns(), backward.width_ns());
        let f: Vec<_> = forward.bins().map(|(t, c)| (t, c.0)).collect();
        let b: Vec<_> = backward.bins().map(|(t, c)| (t, c.0)).collect();
        assert_eq!(f, b);
        assert_eq!(f.iter().map(|x| x.1).sum::<u64>(), 10_000);
        // 70,000 s over 256 bins: 512 s wide (256 s would need 274).
        assert_eq!(forward.width_ns(), 512 * s);
    }

    #[test]
    fn few_points_keep_one_second_bins() {
        let t = fill([5_000_000_000u64, 5_500_000_000, 9_000_000_000].into_iter());
        assert_eq!(t.width_ns(), 1_000_000_000);
        let v: Vec<_> = t.bins().map(|(t, c)| (t, c.0)).collect();
        assert_eq!(v, [(5_000_000_000, 2), (9_000_000_000, 1)]);
        assert!(fill([u64::MAX, 0].into_iter()).len() <= MAX_BINS);
    }
}
