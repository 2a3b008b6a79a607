//! The system resource part: per command line, and per process instance its CPU use and
//! whether its memory grows.
//!
//! A process instance ([`crate::instances`]) is a command with one `running_since`: a
//! restart is a new instance, so a restart (memory back down, then up again) never looks
//! like a leak. The instances and the CPU between successive samples come from
//! [`crate::instances`], which the timeline export uses too.
//!
//! Memory per instance is a timeline of at most 256 bins ([`super::timeline`]): bounded for
//! any length of series.

use std::path::PathBuf;

use serde::Serialize;

use super::timeline::{Merge, Timeline};
use super::trend::{self, Trend, Verdict};
use crate::data::ResourceRef;
use crate::instances::{cpu_percent, Instances};

const NS_PER_HOUR: f64 = 3.6e12;

/// Figures for one command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStats {
    /// The command line.
    pub command: String,
    /// Rows (one per process per sample).
    pub samples: u64,
    /// Distinct processes seen running it (by start time; a CPU-time drop also counts as a
    /// new process).
    pub processes: u64,
    /// CPU seconds (user + system) used between each process's first and last sample.
    pub cpu_seconds: f64,
    /// Mean memory %, over the rows.
    pub mean_memory_percent: f64,
    /// Highest memory %.
    pub peak_memory_percent: f64,
    /// The most worrying memory verdict of its instances (growing, then flat, then too
    /// little data).
    pub memory_trend: Verdict,
}

/// One bin of an instance's timeline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleBin {
    /// Samples in the bin.
    pub samples: u64,
    /// Sum of their times, hours since the instance's first sample.
    pub hours_sum: f64,
    /// Sum of their memory %.
    pub memory_sum: f64,
    /// CPU seconds used over the intervals ending in this bin.
    pub cpu_seconds: f64,
    /// Length of those intervals, s.
    pub interval_seconds: f64,
}

impl Merge for SampleBin {
    fn merge(&mut self, o: Self) {
        self.samples += o.samples;
        self.hours_sum += o.hours_sum;
        self.memory_sum += o.memory_sum;
        self.cpu_seconds += o.cpu_seconds;
        self.interval_seconds += o.interval_seconds;
    }
}

impl SampleBin {
    /// Mean memory % in the bin.
    pub fn memory(&self) -> f64 {
        self.memory_sum / self.samples as f64
    }

    /// CPU % of one core over the bin's intervals, if any.
    pub fn cpu_percent(&self) -> Option<f64> {
        (self.interval_seconds > 0.0).then(|| cpu_percent(self.cpu_seconds, self.interval_seconds))
    }
}

/// One process instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceStats {
    /// The command line.
    pub command: String,
    /// Process start, seconds since the epoch (as the tracker wrote it).
    pub running_since: f64,
    /// First sample, ns since the epoch.
    pub first_sample_ns: u64,
    /// Last sample, ns since the epoch.
    pub last_sample_ns: u64,
    /// Samples.
    pub samples: u64,
    /// CPU seconds (user + system) used between the first and the last sample.
    pub cpu_seconds: f64,
    /// CPU (user + system) as % of one core between the first and the last sample.
    pub cpu_percent: Option<f64>,
    /// Mean memory %.
    pub mean_memory_percent: f64,
    /// Highest memory %.
    pub peak_memory_percent: f64,
    /// Memory trend.
    pub memory: Trend,
    /// Memory and CPU over time, for plots.
    #[serde(skip)]
    pub timeline: Vec<(u64, SampleBin)>,
}

/// The system resource part.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSection {
    /// The file read.
    pub file: PathBuf,
    /// Rows in the window.
    pub rows: u64,
    /// Earliest sample, ns since the epoch.
    pub first_sample_ns: Option<u64>,
    /// Latest sample, ns since the epoch.
    pub last_sample_ns: Option<u64>,
    /// One entry per command, by CPU used (most first).
    pub commands: Vec<ProcessStats>,
    /// One entry per process instance, by command, then start.
    pub instances: Vec<InstanceStats>,
}

#[derive(Debug)]
struct InstanceAcc {
    command: usize,
    running_since: f64,
    first_t: u64,
    last_t: u64,
    first_cpu: f64,
    last_cpu: f64,
    samples: u64,
    mem_sum: f64,
    mem_peak: f64,
    timeline: Timeline<SampleBin>,
}

/// Takes in `system_resource_data` rows one at a time.
#[derive(Debug, Default)]
pub struct ResourceAcc {
    instances_seen: Instances,
    instances: Vec<InstanceAcc>,
    rows: u64,
    first: Option<u64>,
    last: Option<u64>,
}

impl ResourceAcc {
    /// Counts one row (already known to be inside the window).
    pub fn add(&mut self, r: &ResourceRef<'_>) {
        self.rows += 1;
        let t = r.query_time;
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        let sample = self.instances_seen.add(r);
        if sample.first {
            self.instances.push(InstanceAcc {
                command: sample.command,
                running_since: r.running_since,
                first_t: t,
                last_t: t,
                first_cpu: sample.cpu,
                last_cpu: sample.cpu,
                samples: 0,
                mem_sum: 0.0,
                mem_peak: f64::MIN,
                timeline: Timeline::default(),
            });
        }
        let inst = &mut self.instances[sample.instance];
        let (dt, dcpu) = sample
            .interval
            .map_or((0.0, 0.0), |i| (i.seconds(), i.cpu_seconds));
        inst.samples += 1;
        inst.mem_sum += r.memory_percent;
        inst.mem_peak = inst.mem_peak.max(r.memory_percent);
        inst.last_t = inst.last_t.max(t);
        inst.last_cpu = sample.cpu;
        let hours = t.saturating_sub(inst.first_t) as f64 / NS_PER_HOUR;
        let bin = inst.timeline.at(t);
        bin.samples += 1;
        bin.hours_sum += hours;
        bin.memory_sum += r.memory_percent;
        bin.cpu_seconds += dcpu;
        bin.interval_seconds += dt;
    }

    /// The section for `file`.
    pub fn finish(self, file: PathBuf) -> ResourceSection {
        let mut instances: Vec<InstanceStats> = self
            .instances
            .into_iter()
            .map(|a| {
                let points: Vec<(f64, f64)> = a
                    .timeline
                    .bins()
                    .map(|(_, b)| (b.hours_sum / b.samples as f64, b.memory()))
                    .collect();
                let span = a.last_t.saturating_sub(a.first_t);
                let cpu_percent =
                    (span > 0).then(|| cpu_percent(a.last_cpu - a.first_cpu, span as f64 / 1e9));
                InstanceStats {
                    command: self.instances_seen.command(a.command).to_owned(),
                    running_since: a.running_since,
                    first_sample_ns: a.first_t,
                    last_sample_ns: a.last_t,
                    samples: a.samples,
                    cpu_seconds: a.last_cpu - a.first_cpu,
                    cpu_percent,
                    mean_memory_percent: a.mem_sum / a.samples as f64,
                    peak_memory_percent: a.mem_peak,
                    memory: trend::fit(&points, a.samples, span),
                    timeline: a.timeline.bins().map(|(t, b)| (t, b.clone())).collect(),
                }
            })
            .collect();
        instances.sort_by(|a, b| {
            a.command
                .cmp(&b.command)
                .then(a.running_since.total_cmp(&b.running_since))
                .then(a.first_sample_ns.cmp(&b.first_sample_ns))
        });

        let mut commands: Vec<ProcessStats> = Vec::new();
        for i in &instances {
            let cpu = i.cpu_seconds;
            match commands.last_mut().filter(|c| c.command == i.command) {
                Some(c) => {
                    // Weighted back into a mean over all rows below.
                    c.mean_memory_percent += i.mean_memory_percent * i.samples as f64;
                    c.samples += i.samples;
                    c.processes += 1;
                    c.cpu_seconds += cpu;
                    c.peak_memory_percent = c.peak_memory_percent.max(i.peak_memory_percent);
                    c.memory_trend = c.memory_trend.max(i.memory.verdict);
                }
                None => commands.push(ProcessStats {
                    command: i.command.clone(),
                    samples: i.samples,
                    processes: 1,
                    cpu_seconds: cpu,
                    mean_memory_percent: i.mean_memory_percent * i.samples as f64,
                    peak_memory_percent: i.peak_memory_percent,
                    memory_trend: i.memory.verdict,
                }),
            }
        }
        for c in &mut commands {
            c.mean_memory_percent /= c.samples as f64;
        }
        commands.sort_by(|a, b| {
            b.cpu_seconds
                .total_cmp(&a.cpu_seconds)
                .then(a.command.cmp(&b.command))
        });
        ResourceSection {
            file,
            rows: self.rows,
            first_sample_ns: self.first,
            last_sample_ns: self.last,
            commands,
            instances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(t: u64, cmd: &str, since: f64, cpu: f64, mem: f64) -> ResourceRef<'_> {
        ResourceRef {
            query_time: t,
            command: cmd.into(),
            running_since: since,
            user_cpu_time: cpu,
            system_cpu_time: 0.5,
            memory_percent: mem,
        }
    }

    fn section(rows: &[ResourceRef<'_>]) -> ResourceSection {
        let mut acc = ResourceAcc::default();
        for r in rows {
            acc.add(r);
        }
        acc.finish("f".into())
    }

    #[test]
    fn cpu_is_counted_per_process_and_restarts_start_afresh() {
        let s = 1_000_000_000;
        let rows = [
            res(s, "a", 10.0, 1.0, 1.0),
            res(s, "a", 11.0, 5.0, 3.0), // a second process with the same command
            res(2 * s, "a", 10.0, 2.0, 1.0),
            res(2 * s, "a", 11.0, 5.5, 3.0),
            res(3 * s, "a", 10.0, 0.25, 2.0), // restarted in the same second: a drop
            res(4 * s, "a", 10.0, 1.25, 2.0),
            res(4 * s, "b", 1.0, 9.0, 0.5),
        ];
        let s = section(&rows);
        assert_eq!(s.rows, 7);
        let a = &s.commands[0];
        assert_eq!(a.command, "a");
        assert_eq!(a.samples, 6);
        assert_eq!(a.processes, 3);
        assert_eq!(a.cpu_seconds, 1.0 + 0.5 + 1.0);
        assert_eq!(a.peak_memory_percent, 3.0);
        assert_eq!(a.mean_memory_percent, 12.0 / 6.0);
        assert_eq!(s.commands[1].cpu_seconds, 0.0);
        assert_eq!(s.commands[1].processes, 1);
        // CPU % of one core per instance: 1 s over 1 s, 0.5 s over 1 s, 1 s over 1 s.
        let cpu: Vec<Option<f64>> = s.instances.iter().map(|i| i.cpu_percent).collect();
        assert_eq!(cpu, [Some(100.0), Some(100.0), Some(50.0), None]);
    }

    #[test]
    fn a_restart_mid_series_is_two_flat_instances_not_a_leak() {
        // A service whose memory climbs for its first 10 minutes (warm-up) and then stays
        // flat, restarted after 12 h: the command's rows, seen as one series, are a
        // sawtooth that a per-command fit would call growth.
        let s = 1_000_000_000u64;
        let t0 = 1_700_000_000 * s;
        let mut rows = Vec::new();
        for (start, since) in [(0u64, 1_699_999_990.0), (12 * 3600, 1_700_043_190.0)] {
            for i in 0..(12 * 360u64) {
                let age = i * 10;
                let mem = 2.0 + (age.min(600) as f64) / 600.0 + 0.01 * ((i % 5) as f64);
                rows.push((t0 + (start + age) * s, since, i as f64 * 0.1, mem));
            }
        }
        let refs: Vec<ResourceRef<'_>> = rows
            .iter()
            .map(|&(t, since, cpu, mem)| res(t, "python3 -m robot_server", since, cpu, mem))
            .collect();
        let sec = section(&refs);
        assert_eq!(sec.instances.len(), 2);
        for i in &sec.instances {
            assert_eq!(i.memory.verdict, Verdict::Flat, "{:?}", i.memory);
            // 0.1 s of CPU every 10 s: 1 % of a core.
            assert!((i.cpu_percent.unwrap() - 1.0).abs() < 1e-6, "{i:?}");
        }
        assert_eq!(sec.commands[0].processes, 2);
        assert_eq!(sec.commands[0].memory_trend, Verdict::Flat);

        // The same rows as one process (no restart recorded): a clear climb over 24 h.
        let same: Vec<ResourceRef<'_>> = rows
            .iter()
            .enumerate()
            .map(|(n, &(t, _, _, _))| {
                let mem = 2.0 + n as f64 / rows.len() as f64;
                res(t, "leaky", 1.0, n as f64, mem)
            })
            .collect();
        assert_eq!(section(&same).instances[0].memory.verdict, Verdict::Growing);
    }
}
