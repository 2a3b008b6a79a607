//! The drainer's metrics for Prometheus (served by `perf_daemon::metrics`).
//!
//! The drain loop counts into plain per-ring fields while it formats rows
//! ([`StateHistogram::observe`], a few nanoseconds a record), and hands a round's counts
//! to [`DrainMetrics::committed`] only after the round is durable: the histograms count
//! exactly the rows in the CSV, and a round rolled back (storage full) counts nothing.
//! That hand-over takes one mutex once per round; a scrape takes the same mutex only to
//! copy the books (then encodes the copy), so neither waits on the other for more than
//! microseconds, however many scrapes come.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `perf_drainer_activity_duration_seconds` | histogram ([`BUCKETS_NS`]) | `state` |
//! | `perf_drainer_records_written_total` | counter | `service` |
//! | `perf_drainer_records_dropped_total` (the rings' own "ring full" counters) | counter | `service` |
//! | `perf_drainer_records_invalid_total` (state index outside the ring's table) | counter | `service` |
//! | `perf_drainer_records_abandoned_total` (claimed by a dead producer, never published) | counter | `service` |
//! | `perf_drainer_rings_open` | gauge | |
//! | `perf_drainer_storage_errors_total` | counter | `cause` |
//! | `perf_drainer_last_commit_age_seconds` | gauge | |
//! | `perf_drainer_label_overflow_total` | counter | `label` |
//! | `perf_drainer_build_info` | gauge (1) | `version` |
//!
//! Service and state names come from the ring files, which any producer writes: at most
//! [`MAX_SERVICES`] services and [`MAX_STATES`] states get series of their own (each name
//! cut to [`MAX_LABEL_BYTES`]); records of any further ones are counted under `(other)`
//! and in `perf_drainer_label_overflow_total`. Counters start at zero when the daemon
//! starts (Prometheus' `rate`/`increase` handle the reset).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use perf_daemon::metrics::labels::Capped;
use perf_daemon::metrics::{CycleDone, Exporter, Exposition, MetricsError, Settings};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds of the duration histogram's buckets, in ns: from 1 ms (cached-analysis
/// lookups take tens of ms) through the 10–30 s of an analysis to 4 h (protocol runs take
/// hours), about two per decade, plus `+Inf`. 24 buckets.
pub const BUCKETS_NS: [u64; 23] = {
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;
    [
        MS,
        5 * MS / 2,
        5 * MS,
        10 * MS,
        25 * MS,
        50 * MS,
        100 * MS,
        250 * MS,
        500 * MS,
        S,
        5 * S / 2,
        5 * S,
        10 * S,
        15 * S,
        20 * S,
        30 * S,
        60 * S,
        300 * S,
        900 * S,
        1800 * S,
        3600 * S,
        7200 * S,
        14400 * S,
    ]
};
/// Buckets including `+Inf`.
const NBUCKETS: usize = BUCKETS_NS.len() + 1;
/// Services with series of their own.
pub const MAX_SERVICES: usize = 32;
/// States with a histogram of their own.
pub const MAX_STATES: usize = 64;
/// Longest service or state label value, in bytes.
pub const MAX_LABEL_BYTES: usize = 128;

/// [`BUCKETS_NS`] padded with `u64::MAX` to a power of two, for [`bucket`].
const PADDED: [u64; 32] = {
    let mut a = [u64::MAX; 32];
    let mut i = 0;
    while i < BUCKETS_NS.len() {
        a[i] = BUCKETS_NS[i];
        i += 1;
    }
    a
};

/// The bucket of `duration_ns`: the index of the first bound >= it (Prometheus buckets are
/// "less or equal"), `BUCKETS_NS.len()` for `+Inf`.
///
/// A binary search without branches: five steps of compare-and-add over [`PADDED`]. Robot
/// durations are unpredictable, so `partition_point`'s branches mispredicted about every
/// other step, which cost the drain loop about a fifth of its throughput.
#[inline]
fn bucket(duration_ns: u64) -> usize {
    let mut base = 0;
    let mut half = PADDED.len() / 2;
    while half > 0 {
        // Everything in PADDED[base..base + half] is below the duration if its last one is.
        base += usize::from(PADDED[base + half - 1] < duration_ns) * half;
        half /= 2;
    }
    base
}

/// Durations of one state, per bucket (not cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateHistogram {
    buckets: [u64; NBUCKETS],
    sum_ns: u128,
    count: u64,
}

impl Default for StateHistogram {
    fn default() -> StateHistogram {
        StateHistogram {
            buckets: [0; NBUCKETS],
            sum_ns: 0,
            count: 0,
        }
    }
}

impl StateHistogram {
    /// Counts one duration.
    #[inline]
    pub fn observe(&mut self, duration_ns: u64) {
        self.buckets[bucket(duration_ns)] += 1;
        self.sum_ns += u128::from(duration_ns);
        self.count += 1;
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn add(&mut self, other: &StateHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.saturating_add(b);
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.count = self.count.saturating_add(other.count);
    }
}

/// What one ring contributed to a committed round.
#[derive(Debug)]
pub struct RingRound<'a> {
    /// The service named in the ring's header.
    pub service: &'a str,
    /// The ring's state table.
    pub states: &'a [String],
    /// Durations per state index (as long as `states`, or empty with nothing to add).
    pub durations: &'a [StateHistogram],
    /// Rows committed from the ring in the round.
    pub written: u64,
    /// Records skipped for a bad state index.
    pub invalid: u64,
    /// Positions of a dead producer stepped over.
    pub abandoned: u64,
    /// Growth of the ring's own dropped counter since last reported.
    pub dropped: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ServiceBooks {
    written: u64,
    dropped: u64,
    invalid: u64,
    abandoned: u64,
}

#[derive(Debug, Clone)]
struct Books {
    states: Capped<StateHistogram>,
    services: Capped<ServiceBooks>,
    rings_open: u64,
    /// Per [`storage_cause`] label, in its order.
    storage_errors: [u64; STORAGE_CAUSES.len()],
    last_commit: Instant,
}

/// The `cause` label values of `perf_drainer_storage_errors_total`.
const STORAGE_CAUSES: [&str; 4] = ["full", "read_only", "not_writable", "other"];

/// The `cause` label (index into [`STORAGE_CAUSES`]) of a storage error, by errno.
fn storage_cause(e: &std::io::Error) -> usize {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => 0,
        Some(libc::EROFS) => 1,
        Some(libc::EACCES) | Some(libc::EPERM) => 2,
        _ => 3,
    }
}

/// The handle the drain loop updates; cheap to clone. Register it with
/// [`DrainMetrics::register`].
#[derive(Debug, Clone)]
pub struct DrainMetrics {
    books: Arc<Mutex<Books>>,
    cycle_done: CycleDone,
}

impl DrainMetrics {
    /// New metrics, registered in `registry` (with the build info).
    pub fn register(registry: &mut Registry) -> DrainMetrics {
        let m = DrainMetrics {
            books: Arc::new(Mutex::new(Books {
                states: Capped::new(MAX_STATES, MAX_LABEL_BYTES),
                services: Capped::new(MAX_SERVICES, MAX_LABEL_BYTES),
                rings_open: 0,
                storage_errors: [0; STORAGE_CAUSES.len()],
                last_commit: Instant::now(),
            })),
            cycle_done: CycleDone::default(),
        };
        registry.register_collector(Box::new(Encode(m.clone())));
        perf_daemon::metrics::register_build_info(
            registry,
            "perf_drainer",
            env!("CARGO_PKG_VERSION"),
        );
        m
    }

    /// Calls `cycle_done` at the end of every cycle (the exporter's textfile writer).
    pub fn notify_after_cycles(mut self, cycle_done: CycleDone) -> DrainMetrics {
        self.cycle_done = cycle_done;
        self
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // A panic elsewhere while holding it leaves plain numbers: still fine to use.
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A round is durable: adds what each ring contributed.
    pub fn committed<'a>(&self, rings: impl IntoIterator<Item = RingRound<'a>>) {
        let mut b = self.books();
        let now = Instant::now();
        b.last_commit = now;
        for r in rings {
            let s = b.services.entry(r.service);
            s.written += r.written;
            s.dropped += r.dropped;
            s.invalid += r.invalid;
            s.abandoned += r.abandoned;
            for (name, h) in r.states.iter().zip(r.durations) {
                if h.count > 0 {
                    b.states.entry(name).add(h);
                }
            }
        }
    }

    /// A cycle ended with everything it read committed (possibly nothing): the commit age
    /// restarts.
    pub fn cycle_ok(&self, rings_open: usize) {
        {
            let mut b = self.books();
            b.last_commit = Instant::now();
            b.rings_open = rings_open as u64;
        }
        self.cycle_done.notify();
    }

    /// A cycle failed on storage with `error` ([`crate::StorageError::io`]).
    pub fn storage_failed(&self, error: &std::io::Error, rings_open: usize) {
        {
            let mut b = self.books();
            b.storage_errors[storage_cause(error)] += 1;
            b.rings_open = rings_open as u64;
        }
        self.cycle_done.notify();
    }
}

/// The drainer's metrics and their exporter (server and/or textfile, started now), if
/// `settings` asks for any.
pub fn expose(settings: &Settings) -> Result<Option<(Exporter, DrainMetrics)>, MetricsError> {
    if !settings.enabled() {
        return Ok(None);
    }
    let mut registry = Registry::default();
    let metrics = DrainMetrics::register(&mut registry);
    let exporter = Exporter::start(Exposition::new(registry), settings)?;
    let metrics = metrics.notify_after_cycles(exporter.cycle_done());
    Ok(Some((exporter, metrics)))
}

/// Encodes the books on each scrape.
#[derive(Debug)]
struct Encode(DrainMetrics);

impl Collector for Encode {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A copy (a few kB): the loop's next commit never waits for this encode.
        let b = self.0.books().clone();
        let mut h = enc.encode_descriptor(
            "perf_drainer_activity_duration",
            "Durations of the tracked blocks committed to robot_activity_data, by state.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        let mut buckets = [(0.0, 0); NBUCKETS];
        for (state, s) in b.states.iter() {
            for (i, slot) in buckets.iter_mut().enumerate() {
                let bound = BUCKETS_NS.get(i).map_or(f64::INFINITY, |&n| n as f64 / 1e9);
                *slot = (bound, s.buckets[i]);
            }
            h.encode_family(&[("state", state)])?.encode_histogram(
                s.sum_ns as f64 / 1e9,
                s.count,
                &buckets,
                None::<&std::collections::HashMap<usize, Exemplar<NoLabelSet, f64>>>,
            )?;
        }
        type Field = fn(&ServiceBooks) -> u64;
        let per_service: [(&str, &str, Field); 4] = [
            (
                "perf_drainer_records_written",
                "Rows appended to robot_activity_data and made durable, by service.",
                |s| s.written,
            ),
            (
                "perf_drainer_records_dropped",
                "Records the service could not record because its ring was full (the rings' own counters).",
                |s| s.dropped,
            ),
            (
                "perf_drainer_records_invalid",
                "Records skipped for a state index outside their ring's state table, by service.",
                |s| s.invalid,
            ),
            (
                "perf_drainer_records_abandoned",
                "Ring positions a dead producer claimed but never published, by service.",
                |s| s.abandoned,
            ),
        ];
        for (name, help, field) in per_service {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (service, s) in b.services.iter() {
                ConstCounter::new(field(s)).encode(m.encode_family(&[("service", service)])?)?;
            }
        }
        let rings = ConstGauge::new(b.rings_open as i64);
        rings.encode(enc.encode_descriptor(
            "perf_drainer_rings_open",
            "Ring files being drained.",
            None,
            rings.metric_type(),
        )?)?;
        let mut m = enc.encode_descriptor(
            "perf_drainer_storage_errors",
            "Drain cycles that failed on the storage (records waited in the rings), by cause.",
            None,
            MetricType::Counter,
        )?;
        for (cause, n) in STORAGE_CAUSES.iter().zip(b.storage_errors) {
            ConstCounter::new(n).encode(m.encode_family(&[("cause", *cause)])?)?;
        }
        let age = ConstGauge::new(b.last_commit.elapsed().as_secs_f64());
        age.encode(enc.encode_descriptor(
            "perf_drainer_last_commit_age",
            "Time since the drainer last had everything it read durable in the CSV (grows only while storage fails).",
            Some(&Unit::Seconds),
            age.metric_type(),
        )?)?;
        let mut m = enc.encode_descriptor(
            "perf_drainer_label_overflow",
            "Updates counted under (other) because more distinct services or states were seen than get series of their own.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(b.services.overflowed)
            .encode(m.encode_family(&[("label", "service")])?)?;
        ConstCounter::new(b.states.overflowed).encode(m.encode_family(&[("label", "state")])?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_daemon::metrics::Exposition;

    #[test]
    fn buckets_cover_a_millisecond_to_hours_in_order() {
        assert_eq!(BUCKETS_NS[0], 1_000_000);
        assert!(*BUCKETS_NS.last().unwrap() >= 3_600_000_000_000);
        assert!(BUCKETS_NS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn the_branch_free_search_is_partition_point() {
        let mut probes = vec![0, 1, u64::MAX - 1, u64::MAX];
        for &b in &BUCKETS_NS {
            probes.extend([b - 1, b, b + 1]);
        }
        for d in probes {
            assert_eq!(
                bucket(d),
                BUCKETS_NS.partition_point(|&b| b < d),
                "duration {d}"
            );
        }
    }

    #[test]
    fn observe_uses_less_or_equal_buckets() {
        let mut h = StateHistogram::default();
        h.observe(0);
        h.observe(1_000_000); // exactly 1 ms: the first bucket
        h.observe(1_000_001);
        h.observe(u64::MAX);
        assert_eq!(h.buckets[0], 2);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[NBUCKETS - 1], 1, "+Inf");
        assert_eq!(h.count(), 4);
    }

    fn exposition() -> (Exposition, DrainMetrics) {
        let mut registry = Registry::default();
        let m = DrainMetrics::register(&mut registry);
        (Exposition::new(registry), m)
    }

    #[test]
    fn a_committed_round_shows_in_the_exposition() {
        let (e, m) = exposition();
        let states = vec!["ANALYZING_PROTOCOL".to_string(), "CALIBRATING".to_string()];
        let mut durations = vec![StateHistogram::default(); 2];
        durations[0].observe(14_000_000_000);
        durations[0].observe(12_000_000_000);
        m.committed([RingRound {
            service: "robot-server \"main\"",
            states: &states,
            durations: &durations,
            written: 2,
            invalid: 1,
            abandoned: 0,
            dropped: 7,
        }]);
        m.storage_failed(&std::io::Error::from_raw_os_error(libc::ENOSPC), 3);
        let text = e.openmetrics();
        for line in [
            "# TYPE perf_drainer_activity_duration_seconds histogram",
            "# UNIT perf_drainer_activity_duration_seconds seconds",
            "perf_drainer_activity_duration_seconds_count{state=\"ANALYZING_PROTOCOL\"} 2",
            "perf_drainer_activity_duration_seconds_sum{state=\"ANALYZING_PROTOCOL\"} 26.0",
            "perf_drainer_activity_duration_seconds_bucket{le=\"10.0\",state=\"ANALYZING_PROTOCOL\"} 0",
            "perf_drainer_activity_duration_seconds_bucket{le=\"15.0\",state=\"ANALYZING_PROTOCOL\"} 2",
            "perf_drainer_activity_duration_seconds_bucket{le=\"+Inf\",state=\"ANALYZING_PROTOCOL\"} 2",
            "perf_drainer_records_written_total{service=\"robot-server \\\"main\\\"\"} 2",
            "perf_drainer_records_dropped_total{service=\"robot-server \\\"main\\\"\"} 7",
            "perf_drainer_records_invalid_total{service=\"robot-server \\\"main\\\"\"} 1",
            "perf_drainer_rings_open 3",
            "perf_drainer_storage_errors_total{cause=\"full\"} 1",
            "perf_drainer_storage_errors_total{cause=\"read_only\"} 0",
            "perf_drainer_build_info{version=\"",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            !text.contains("CALIBRATING"),
            "a state with nothing committed has no series yet"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn too_many_services_fold_into_other() {
        let (e, m) = exposition();
        let names: Vec<String> = (0..MAX_SERVICES + 5).map(|i| format!("svc{i}")).collect();
        m.committed(names.iter().map(|n| RingRound {
            service: n,
            states: &[],
            durations: &[],
            written: 1,
            invalid: 0,
            abandoned: 0,
            dropped: 0,
        }));
        let text = e.openmetrics();
        assert!(text.contains("perf_drainer_records_written_total{service=\"(other)\"} 5"));
        assert!(text.contains("perf_drainer_label_overflow_total{label=\"service\"} 5"));
    }
}
