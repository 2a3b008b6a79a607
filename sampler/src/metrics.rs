//! The tracker's metrics for Prometheus (served by `perf_daemon::metrics`).
//!
//! While it samples, the sampler ([`crate::sample::Sampler::with_metrics`]) adds each
//! process it wrote a row for to a [`Tally`] keyed by command line (the CSV's `command`);
//! after the sample, [`TrackerMetrics::sampled`] swaps that tally in as the current one under a mutex (no copying, no encoding: a
//! scrape encodes it on the exporter's thread). So the series show the latest sample, and
//! a command whose processes are all gone disappears at the next sample.
//!
//! | metric | kind | labels |
//! | --- | --- | --- |
//! | `perf_tracker_user_cpu_seconds_total` | counter | `command` |
//! | `perf_tracker_system_cpu_seconds_total` | counter | `command` |
//! | `perf_tracker_resident_memory_bytes` | gauge | `command` |
//! | `perf_tracker_memory_ratio` (the CSV's `memory_percent` / 100) | gauge | `command` |
//! | `perf_tracker_processes` | gauge | `command` |
//! | `perf_tracker_processes_matched` | gauge | |
//! | `perf_tracker_sample_duration_seconds` | gauge | |
//! | `perf_tracker_samples_total` | counter | |
//! | `perf_tracker_commands_overflow_total` | counter | |
//! | `perf_tracker_build_info` | gauge (1) | `version` |
//!
//! Several processes with the same command line are summed (CPU, memory) and counted
//! (`perf_tracker_processes`); when one of them exits, its CPU seconds leave the sum,
//! which Prometheus' `rate` treats as a counter reset. Command lines are cut to
//! [`MAX_COMMAND_BYTES`] for the label. At most [`MAX_COMMANDS`] distinct command lines
//! per sample get series of their own; the processes of any further ones are summed under
//! `command="(other)"` and each is counted in `perf_tracker_commands_overflow_total`, so
//! a filter that matches too much costs a bounded number of series and says so.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use perf_daemon::metrics::labels::Capped;
use perf_daemon::metrics::{CycleDone, Exporter, Exposition, MetricsError, Settings};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::proc::Usage;

/// Distinct command lines with series of their own, per sample.
pub const MAX_COMMANDS: usize = 100;
/// Longest `command` label value, in bytes.
pub const MAX_COMMAND_BYTES: usize = 256;

/// The processes of one command line in one sample, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommandUsage {
    /// Processes.
    pub processes: u64,
    /// User CPU seconds.
    pub user_cpu_seconds: f64,
    /// System CPU seconds.
    pub system_cpu_seconds: f64,
    /// Resident bytes.
    pub resident_bytes: u64,
    /// Percent of `MemTotal`, as in the CSV.
    pub memory_percent: f64,
}

/// One sample's usage by command line.
#[derive(Debug, Clone)]
pub struct Tally(Capped<CommandUsage>);

impl Default for Tally {
    fn default() -> Tally {
        Tally(Capped::new(MAX_COMMANDS, MAX_COMMAND_BYTES))
    }
}

impl Tally {
    /// Adds a process running `command`.
    pub fn add(&mut self, command: &str, usage: &Usage) {
        let c = self.0.entry(command);
        c.processes += 1;
        c.user_cpu_seconds += usage.user_cpu_time;
        c.system_cpu_seconds += usage.system_cpu_time;
        c.resident_bytes = c.resident_bytes.saturating_add(usage.resident_bytes);
        c.memory_percent += usage.memory_percent;
    }

    /// The sums for `command` (as cut for the label), if it was seen.
    pub fn get(&self, command: &str) -> Option<&CommandUsage> {
        let command = perf_daemon::metrics::labels::truncated(command, MAX_COMMAND_BYTES);
        self.0.iter().find(|(c, _)| *c == command).map(|(_, u)| u)
    }
}

#[derive(Debug, Clone)]
struct Current {
    commands: Tally,
    matched: u64,
    sample_seconds: f64,
    samples: u64,
    overflowed: u64,
}

/// The handle the sampling loop updates; cheap to clone.
#[derive(Debug, Clone)]
pub struct TrackerMetrics {
    current: Arc<Mutex<Current>>,
    cycle_done: CycleDone,
}

impl TrackerMetrics {
    /// New metrics, registered in `registry` (with the build info).
    pub fn register(registry: &mut Registry) -> TrackerMetrics {
        let m = TrackerMetrics {
            current: Arc::new(Mutex::new(Current {
                commands: Tally::default(),
                matched: 0,
                sample_seconds: 0.0,
                samples: 0,
                overflowed: 0,
            })),
            cycle_done: CycleDone::default(),
        };
        registry.register_collector(Box::new(Encode(m.clone())));
        perf_daemon::metrics::register_build_info(
            registry,
            "perf_tracker",
            env!("CARGO_PKG_VERSION"),
        );
        m
    }

    /// Calls `cycle_done` after every sample (the exporter's textfile writer).
    pub fn notify_after_samples(mut self, cycle_done: CycleDone) -> TrackerMetrics {
        self.cycle_done = cycle_done;
        self
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        // Plain numbers stay usable after a panic elsewhere.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sample is done: `tally` becomes the current one and comes back empty (holding
    /// the previous one's allocation).
    pub fn sampled(&self, tally: &mut Tally, matched: usize, took: Duration) {
        let overflowed = std::mem::take(&mut tally.0.overflowed);
        {
            let mut c = self.current();
            std::mem::swap(&mut c.commands, tally);
            c.matched = matched as u64;
            c.sample_seconds = took.as_secs_f64();
            c.samples += 1;
            c.overflowed += overflowed;
        }
        tally.0.clear();
        tally.0.overflowed = 0;
        self.cycle_done.notify();
    }
}

/// The tracker's metrics and their exporter (server and/or textfile, started now), if
/// `settings` asks for any.
pub fn expose(settings: &Settings) -> Result<Option<(Exporter, TrackerMetrics)>, MetricsError> {
    if !settings.enabled() {
        return Ok(None);
    }
    let mut registry = Registry::default();
    let metrics = TrackerMetrics::register(&mut registry);
    let exporter = Exporter::start(Exposition::new(registry), settings)?;
    let metrics = metrics.notify_after_samples(exporter.cycle_done());
    Ok(Some((exporter, metrics)))
}

#[derive(Debug)]
struct Encode(TrackerMetrics);

impl Collector for Encode {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A copy: the sampler's next swap never waits for this encode.
        let c = self.0.current().clone();
        let commands = &c.commands.0;
        let mut m = enc.encode_descriptor(
            "perf_tracker_user_cpu",
            "User CPU time of the tracked processes, summed by command line.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for (command, u) in commands.iter() {
            ConstCounter::new(u.user_cpu_seconds)
                .encode(m.encode_family(&[("command", command)])?)?;
        }
        let mut m = enc.encode_descriptor(
            "perf_tracker_system_cpu",
            "System CPU time of the tracked processes, summed by command line.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        for (command, u) in commands.iter() {
            ConstCounter::new(u.system_cpu_seconds)
                .encode(m.encode_family(&[("command", command)])?)?;
        }
        let mut m = enc.encode_descriptor(
            "perf_tracker_resident_memory",
            "Resident memory of the tracked processes, summed by command line.",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?;
        for (command, u) in commands.iter() {
            ConstGauge::new(u.resident_bytes as i64)
                .encode(m.encode_family(&[("command", command)])?)?;
        }
        // Not Unit::Ratios: its suffix is "_ratios", Prometheus' convention is "_ratio".
        let ratio = Unit::Other("ratio".into());
        let mut m = enc.encode_descriptor(
            "perf_tracker_memory",
            "Resident memory as a fraction of MemTotal (the CSV's memory_percent / 100), summed by command line.",
            Some(&ratio),
            MetricType::Gauge,
        )?;
        for (command, u) in commands.iter() {
            ConstGauge::new(u.memory_percent / 100.0)
                .encode(m.encode_family(&[("command", command)])?)?;
        }
        let mut m = enc.encode_descriptor(
            "perf_tracker_processes",
            "Tracked processes read in the last sample, by command line.",
            None,
            MetricType::Gauge,
        )?;
        for (command, u) in commands.iter() {
            ConstGauge::new(u.processes as i64)
                .encode(m.encode_family(&[("command", command)])?)?;
        }
        let g = ConstGauge::new(c.matched as i64);
        g.encode(enc.encode_descriptor(
            "perf_tracker_processes_matched",
            "Processes whose command line matched a filter in the last sample.",
            None,
            g.metric_type(),
        )?)?;
        let g = ConstGauge::new(c.sample_seconds);
        g.encode(enc.encode_descriptor(
            "perf_tracker_sample_duration",
            "Time the last sample took.",
            Some(&Unit::Seconds),
            g.metric_type(),
        )?)?;
        let n = ConstCounter::new(c.samples);
        n.encode(enc.encode_descriptor(
            "perf_tracker_samples",
            "Samples taken.",
            None,
            n.metric_type(),
        )?)?;
        let n = ConstCounter::new(c.overflowed);
        n.encode(enc.encode_descriptor(
            "perf_tracker_commands_overflow",
            "Processes summed under command=\"(other)\" because a sample had more distinct command lines than get series of their own.",
            None,
            n.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_daemon::metrics::Exposition;

    fn usage(user: f64, rss: u64) -> Usage {
        Usage {
            running_since: 0.0,
            user_cpu_time: user,
            system_cpu_time: 0.5,
            memory_percent: 1.0,
            resident_bytes: rss,
        }
    }

    #[test]
    fn a_sample_shows_by_command_and_replaces_the_last() {
        let mut registry = Registry::default();
        let m = TrackerMetrics::register(&mut registry);
        let e = Exposition::new(registry);
        let mut t = Tally::default();
        t.add("python3 -m robot_server \"x\"", &usage(1.5, 4096));
        t.add("python3 -m robot_server \"x\"", &usage(2.0, 8192));
        t.add("sleep 100", &usage(0.0, 100));
        m.sampled(&mut t, 4, Duration::from_millis(3));
        assert_eq!(t.0.len(), 0, "the tally comes back empty");
        let text = e.openmetrics();
        for line in [
            "perf_tracker_user_cpu_seconds_total{command=\"python3 -m robot_server \\\"x\\\"\"} 3.5",
            "perf_tracker_resident_memory_bytes{command=\"python3 -m robot_server \\\"x\\\"\"} 12288",
            "perf_tracker_memory_ratio{command=\"sleep 100\"} 0.01",
            "perf_tracker_processes{command=\"python3 -m robot_server \\\"x\\\"\"} 2",
            "perf_tracker_processes_matched 4",
            "perf_tracker_sample_duration_seconds 0.003",
            "perf_tracker_samples_total 1",
            "# UNIT perf_tracker_resident_memory_bytes bytes",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        t.add("sleep 100", &usage(0.0, 200));
        m.sampled(&mut t, 1, Duration::from_millis(1));
        let text = e.openmetrics();
        assert!(!text.contains("robot_server"), "gone with its processes");
        assert!(text.contains("perf_tracker_resident_memory_bytes{command=\"sleep 100\"} 200"));
    }

    #[test]
    fn commands_past_the_cap_are_summed_under_other_and_counted() {
        let mut registry = Registry::default();
        let m = TrackerMetrics::register(&mut registry);
        let e = Exposition::new(registry);
        let mut t = Tally::default();
        for i in 0..MAX_COMMANDS + 3 {
            t.add(&format!("worker {i}"), &usage(1.0, 10));
        }
        t.add(&"x".repeat(10_000), &usage(1.0, 10));
        m.sampled(&mut t, MAX_COMMANDS + 4, Duration::ZERO);
        let text = e.openmetrics();
        assert!(text.contains("perf_tracker_processes{command=\"(other)\"} 4"));
        assert!(text.contains("perf_tracker_commands_overflow_total 4"));
        assert_eq!(
            text.matches("perf_tracker_processes{").count(),
            MAX_COMMANDS + 1
        );
    }

    #[test]
    fn long_command_lines_are_cut_for_the_label() {
        let mut t = Tally::default();
        let long = "y".repeat(1000);
        t.add(&long, &usage(1.0, 10));
        assert_eq!(t.get(&long).map(|u| u.processes), Some(1));
        assert!(t.0.iter().all(|(c, _)| c.len() == MAX_COMMAND_BYTES));
    }
}
