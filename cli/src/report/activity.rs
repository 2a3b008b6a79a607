//! The robot activity part: per state, the durations' figures and whether they drift.
//!
//! Rows stream in one at a time ([`ActivityAcc::add`]); memory per state is the exact
//! durations up to [`super::sketch::EXACT_LIMIT`], a sketch, and a timeline of at most
//! 256 bins, whatever the file's length.
//!
//! Drift compares the first half of the state's time span (first to last record) with the
//! second: the median duration of each. "Slower" when the second half's median is at least
//! [`DRIFT_RATIO`] times the first's, "faster" when at most its inverse, "steady" between,
//! "too little data" when a half has fewer than [`DRIFT_MIN_RECORDS`] records. Medians come
//! from the bins' sketches (within 1 %), and a bin straddling the middle counts with the
//! half its start is in (at most 1/256 of the span).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::sketch::{Durations, LogSketch};
use super::timeline::{Merge, Timeline};
use crate::data::ActivityRef;

/// Second half's median over the first's at or above this: slower (its inverse: faster).
pub const DRIFT_RATIO: f64 = 1.25;
/// Fewest records in each half for a drift verdict.
pub const DRIFT_MIN_RECORDS: u64 = 30;

/// Whether a state's durations changed over the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftVerdict {
    /// A half has fewer than [`DRIFT_MIN_RECORDS`] records.
    TooLittleData,
    /// Within [`DRIFT_RATIO`] either way.
    Steady,
    /// The second half's median is at least [`DRIFT_RATIO`] times the first's.
    Slower,
    /// The second half's median is at most 1 / [`DRIFT_RATIO`] of the first's.
    Faster,
}

impl DriftVerdict {
    /// As shown in text.
    pub fn label(self) -> &'static str {
        match self {
            DriftVerdict::TooLittleData => "too little data",
            DriftVerdict::Steady => "steady",
            DriftVerdict::Slower => "slower",
            DriftVerdict::Faster => "faster",
        }
    }
}

/// First half of the window against the second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// Records in the first half.
    pub first_half_records: u64,
    /// Records in the second half.
    pub second_half_records: u64,
    /// Median duration in the first half, ns (within 1 %).
    pub first_half_p50_ns: Option<u64>,
    /// Median duration in the second half, ns (within 1 %).
    pub second_half_p50_ns: Option<u64>,
    /// Second over first.
    pub ratio: Option<f64>,
    /// The verdict.
    pub verdict: DriftVerdict,
}

/// One bin of a state's timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DurationBin {
    /// Records starting in the bin.
    pub count: u64,
    /// Their durations.
    pub sketch: LogSketch,
    /// Longest, ns.
    pub max_ns: u64,
}

impl Merge for DurationBin {
    fn merge(&mut self, other: Self) {
        self.count += other.count;
        self.sketch.merge(&other.sketch);
        self.max_ns = self.max_ns.max(other.max_ns);
    }
}

/// Figures for one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateStats {
    /// State name.
    pub state: String,
    /// Records.
    pub count: u64,
    /// Sum of durations, ns.
    pub total_ns: u128,
    /// Mean duration, ns.
    pub mean_ns: f64,
    /// Median (nearest rank), ns.
    pub p50_ns: u64,
    /// 95th percentile (nearest rank), ns.
    pub p95_ns: u64,
    /// 99th percentile (nearest rank), ns.
    pub p99_ns: u64,
    /// Longest, ns.
    pub max_ns: u64,
    /// Whether the percentiles are exact (false: from the sketch, within 1 %).
    pub percentiles_exact: bool,
    /// Change over the window.
    pub drift: Drift,
    /// Durations over time, for plots.
    #[serde(skip)]
    pub timeline: Vec<(u64, DurationBin)>,
    /// Width of the timeline's bins, ns.
    #[serde(skip)]
    pub bin_width_ns: u64,
    /// All durations, for the distribution plot.
    #[serde(skip)]
    pub sketch: LogSketch,
}

/// The robot activity part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivitySection {
    /// The file read.
    pub file: PathBuf,
    /// Records in the window.
    pub records: u64,
    /// Earliest start in the window, ns since the epoch.
    pub first_start_ns: Option<u64>,
    /// Latest end (start + duration) in the window, ns since the epoch.
    pub last_end_ns: Option<u64>,
    /// One entry per state, known states in their defined order, then others by name.
    pub states: Vec<StateStats>,
}

#[derive(Debug, Default)]
struct StateAcc {
    count: u64,
    total: u128,
    max: u64,
    first_start: u64,
    last_start: u64,
    durations: Durations,
    timeline: Timeline<DurationBin>,
}

/// Takes in `robot_activity_data` rows one at a time.
#[derive(Debug, Default)]
pub struct ActivityAcc {
    states: BTreeMap<String, StateAcc>,
    records: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl ActivityAcc {
    /// Counts one row (already known to be inside the window).
    pub fn add(&mut self, r: ActivityRef<'_>) {
        self.records += 1;
        self.first = Some(self.first.map_or(r.start_ns, |f| f.min(r.start_ns)));
        let end = r.start_ns.saturating_add(r.duration_ns);
        self.last = Some(self.last.map_or(end, |l| l.max(end)));
        // Look up by &str first: no allocation for a state already seen.
        let acc = match self.states.get_mut(r.state) {
            Some(acc) => acc,
            None => self.states.entry(r.state.to_owned()).or_insert(StateAcc {
                durations: Durations::new(),
                first_start: r.start_ns,
                last_start: r.start_ns,
                ..StateAcc::default()
            }),
        };
        acc.count += 1;
        acc.total += u128::from(r.duration_ns);
        acc.max = acc.max.max(r.duration_ns);
        acc.first_start = acc.first_start.min(r.start_ns);
        acc.last_start = acc.last_start.max(r.start_ns);
        acc.durations.add(r.duration_ns);
        let bin = acc.timeline.at(r.start_ns);
        bin.count += 1;
        bin.sketch.add(r.duration_ns);
        bin.max_ns = bin.max_ns.max(r.duration_ns);
    }

    /// The section for `file`.
    pub fn finish(self, file: PathBuf) -> ActivitySection {
        let mut states: Vec<StateStats> = self
            .states
            .into_iter()
            .map(|(state, mut a)| {
                let p = a.durations.percentiles(&[50, 95, 99]);
                let drift = drift(&a);
                StateStats {
                    state,
                    count: a.count,
                    total_ns: a.total,
                    mean_ns: a.total as f64 / a.count as f64,
                    p50_ns: p[0],
                    p95_ns: p[1],
                    p99_ns: p[2],
                    max_ns: a.max,
                    percentiles_exact: a.durations.exact(),
                    drift,
                    bin_width_ns: a.timeline.width_ns(),
                    timeline: a.timeline.bins().map(|(t, b)| (t, b.clone())).collect(),
                    sketch: a.durations.sketch().clone(),
                }
            })
            .collect();
        states.sort_by_key(|s| state_order(&s.state));
        ActivitySection {
            file,
            records: self.records,
            first_start_ns: self.first,
            last_end_ns: self.last,
            states,
        }
    }
}

fn drift(a: &StateAcc) -> Drift {
    let middle = a.first_start + (a.last_start - a.first_start) / 2;
    let (mut first, mut second) = (LogSketch::default(), LogSketch::default());
    for (start, bin) in a.timeline.bins() {
        // The bin's start and the middle, both clamped to the data, decide its half.
        if start.max(a.first_start) <= middle && a.last_start > a.first_start {
            first.merge(&bin.sketch);
        } else {
            second.merge(&bin.sketch);
        }
    }
    let p50 = |s: &LogSketch| s.quantile(50.0).map(|q| q.round() as u64);
    let (m1, m2) = (p50(&first), p50(&second));
    let ratio = match (m1, m2) {
        (Some(a), Some(b)) if a > 0 => Some(b as f64 / a as f64),
        _ => None,
    };
    let verdict = match ratio {
        _ if first.count() < DRIFT_MIN_RECORDS || second.count() < DRIFT_MIN_RECORDS => {
            DriftVerdict::TooLittleData
        }
        Some(r) if r >= DRIFT_RATIO => DriftVerdict::Slower,
        Some(r) if r <= 1.0 / DRIFT_RATIO => DriftVerdict::Faster,
        Some(_) => DriftVerdict::Steady,
        // Zero-length durations in the first half: no ratio to speak of.
        None => DriftVerdict::TooLittleData,
    };
    Drift {
        first_half_records: first.count(),
        second_half_records: second.count(),
        first_half_p50_ns: m1,
        second_half_p50_ns: m2,
        ratio,
        verdict,
    }
}

/// Order of states: known states in their index order, then unknown ones by name.
pub(crate) fn state_order(name: &str) -> (usize, String) {
    let known = perf_producer::RobotActivityState::NAMES;
    match known.iter().position(|k| *k == name) {
        Some(i) => (i, String::new()),
        None => (known.len(), name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn section(rows: impl Iterator<Item = (u64, u64)>) -> StateStats {
        let mut acc = ActivityAcc::default();
        for (start, dur) in rows {
            acc.add(ActivityRef {
                state: "ANALYZING_PROTOCOL",
                start_ns: start,
                duration_ns: dur,
            });
        }
        acc.finish("f".into()).states.remove(0)
    }

    #[test]
    fn analysis_getting_slower_shows_as_drift() {
        // A week of analyses, one an hour, 2 s at first and 4 s by the end, with jitter.
        let week = (0..168u64).map(|h| {
            let jitter = (h * 7919 % 13) as f64 / 13.0 - 0.5;
            let secs = 2.0 + 2.0 * h as f64 / 168.0 + 0.3 * jitter;
            (1_700_000_000 * S + h * 3600 * S, (secs * 1e9) as u64)
        });
        let s = section(week);
        assert_eq!(s.drift.verdict, DriftVerdict::Slower, "{:?}", s.drift);
        assert_eq!(
            s.drift.first_half_records + s.drift.second_half_records,
            168
        );
        assert!(s.timeline.len() <= super::super::timeline::MAX_BINS);
    }

    #[test]
    fn steady_and_too_little() {
        let steady = (0..200u64).map(|i| (i * 60 * S, 1_000_000 + (i % 7) * 10_000));
        assert_eq!(section(steady).drift.verdict, DriftVerdict::Steady);
        let few = (0..10u64).map(|i| (i * S, i * 1000));
        assert_eq!(section(few).drift.verdict, DriftVerdict::TooLittleData);
        let faster = (0..200u64).map(|i| (i * 60 * S, if i < 100 { 10 * S } else { S }));
        assert_eq!(section(faster).drift.verdict, DriftVerdict::Faster);
        // One instant: no halves.
        let same = (0..100u64).map(|_| (5 * S, 7));
        assert_eq!(section(same).drift.verdict, DriftVerdict::TooLittleData);
    }
}
