//! One sample: every process whose command line matches a filter, as CSV rows.
//!
//! Most of /proc is kernel threads (59 of 65 entries on the CI machine), which never have a
//! command line, and reading `/proc/PID/cmdline` is most of a sample's cost. So a process
//! found without one is remembered by pid and the inode of its `/proc/PID` entry (a new
//! process under a reused pid gets a new entry, so a new inode) and not read again for
//! [`RECHECK_EMPTY_EVERY`] samples (one minute at the default 10 s interval), staggered by
//! pid so the re-reads spread over the samples. Only a kernel thread that execs a user
//! program (a usermode helper such as modprobe, short-lived) gains a command line without
//! a new entry; it is seen at the next re-read. Every process that has a command line is
//! read every sample: exec and setproctitle change it in place.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::DirEntryExt;
use std::time::{SystemTime, UNIX_EPOCH};

use perf_table::Row;
use procfs::process::Process;
use procfs::{ProcError, ProcResult};

use crate::cmdline::format_command;
use crate::fnmatch::Pattern;
use crate::metrics::{Tally, TrackerMetrics};
use crate::proc::{
    boot_time, read_cmdline, read_cmdline_at, read_usage, read_usage_at, ProcFsError, Skip,
    SystemInfo, Usage,
};

/// One row of `system_resource_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// When the process was read, ns since the epoch (CLOCK_REALTIME).
    pub query_time: u64,
    /// The command line as the Python tracker formatted it.
    pub command: &'a str,
    /// CPU and memory.
    pub usage: Usage,
}

/// Appends `record` to `buf` as one CSV row in the Python tracker's column order and format.
pub fn write_row(buf: &mut Vec<u8>, record: &Record<'_>) {
    Row::new(buf)
        .uint(record.query_time)
        .str(record.command)
        .float(record.usage.running_since)
        .float(record.usage.user_cpu_time)
        .float(record.usage.system_cpu_time)
        .float(record.usage.memory_percent)
        .end();
}

/// Counts for one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Processes listed in /proc.
    pub listed: usize,
    /// Processes whose command line matched a filter.
    pub matched: usize,
    /// Rows written (matched and readable).
    pub rows: usize,
    /// Processes skipped because they vanished, were zombies or could not be read.
    pub skipped: usize,
    /// Command lines read (the rest were known to be empty, see the module docs).
    pub cmdlines_read: usize,
}

/// Samples between two reads of a command line that was empty (see the module docs).
pub const RECHECK_EMPTY_EVERY: u64 = 6;

/// Whether a process remembered as `(inode, recheck_at)` without a command line can be
/// skipped in sample `sample`, where its /proc entry now has inode `ino`.
fn still_empty((known_ino, recheck_at): (u64, u64), ino: u64, sample: u64) -> bool {
    known_ino == ino && sample < recheck_at
}

/// The sample at which to read again the empty command line of `pid`, read in `sample`:
/// staggered by pid, so the re-reads spread over the samples instead of all falling in one.
fn recheck_at(pid: i32, sample: u64) -> u64 {
    sample + RECHECK_EMPTY_EVERY + u64::from(pid.unsigned_abs()) % RECHECK_EMPTY_EVERY
}

/// The sampler: filters plus the buffers reused from one sample to the next.
#[derive(Debug)]
pub struct Sampler {
    filters: Vec<Pattern>,
    info: SystemInfo,
    raw: Vec<u8>,
    command: String,
    /// Samples taken so far.
    samples: u64,
    /// pid → (inode of /proc/PID, sample at which to read its empty command line again).
    no_cmdline: HashMap<i32, (u64, u64)>,
    /// The map being built by the current sample (swapped with `no_cmdline` at its end).
    next_no_cmdline: HashMap<i32, (u64, u64)>,
    /// Usage by command line, published to the metrics after each sample, when they are on.
    metrics: Option<(TrackerMetrics, Tally)>,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Sampler {
    /// A sampler for `filters` on a machine described by `info`.
    pub fn new(filters: Vec<Pattern>, info: SystemInfo) -> Sampler {
        Sampler {
            filters,
            info,
            raw: Vec::with_capacity(4096),
            command: String::with_capacity(256),
            samples: 0,
            no_cmdline: HashMap::new(),
            next_no_cmdline: HashMap::new(),
            metrics: None,
        }
    }

    /// Also sums each row's usage by command line and hands it to `metrics` at the end of
    /// every [`Sampler::sample`] (a swap under a mutex: see [`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: TrackerMetrics) -> Sampler {
        self.metrics = Some((metrics, Tally::default()));
        self
    }

    /// Samples every process in /proc, appending one row per matching process to `out`.
    ///
    /// Fails only if /proc itself cannot be read; single processes are skipped.
    ///
    /// System calls are most of the cost, so every file is read by path (open, one read,
    /// close) without opening a `/proc/PID` handle first, and parsed by `procfs`: that
    /// halves the calls spent on each process. See [`read_usage_at`] on pid reuse.
    pub fn sample(&mut self, out: &mut Vec<u8>) -> Result<SampleStats, ProcFsError> {
        let started = std::time::Instant::now();
        let btime = boot_time(&mut self.raw)?;
        let entries = std::fs::read_dir("/proc")
            .map_err(|e| ProcFsError::List(ProcError::Io(e, Some("/proc".into()))))?;
        let mut stats = SampleStats::default();
        let mut path = String::with_capacity(32);
        self.samples += 1;
        self.next_no_cmdline.clear();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            stats.listed += 1;
            let ino = entry.ino();
            let known = self.no_cmdline.get(&pid).copied();
            if let Some(keep) = known.filter(|&k| still_empty(k, ino, self.samples)) {
                self.next_no_cmdline.insert(pid, keep);
                continue;
            }
            path.clear();
            let _ = write!(path, "/proc/{pid}/cmdline");
            stats.cmdlines_read += 1;
            if read_cmdline_at(&path, &mut self.raw).is_err() {
                stats.skipped += 1;
                continue;
            }
            if self.raw.is_empty() {
                let recheck_at = recheck_at(pid, self.samples);
                self.next_no_cmdline.insert(pid, (ino, recheck_at));
                continue;
            }
            format_command(&self.raw, &mut self.command);
            if !self.is_match() {
                continue;
            }
            stats.matched += 1;
            let query_time = now_ns();
            match read_usage_at(pid, &self.info, btime, &mut path, &mut self.raw) {
                Ok(usage) => {
                    write_row(
                        out,
                        &Record {
                            query_time,
                            command: &self.command,
                            usage,
                        },
                    );
                    if let Some((_, t)) = &mut self.metrics {
                        t.add(&self.command, &usage);
                    }
                    stats.rows += 1;
                }
                Err(skip) => {
                    log::debug!("skipping pid {pid}: {skip}");
                    stats.skipped += 1;
                }
            }
        }
        // Entries of processes no longer listed fall away with the old map.
        std::mem::swap(&mut self.no_cmdline, &mut self.next_no_cmdline);
        if let Some((m, tally)) = &mut self.metrics {
            m.sampled(tally, stats.matched, started.elapsed());
        }
        Ok(stats)
    }

    /// Processes currently remembered as having no command line.
    pub fn known_without_cmdline(&self) -> usize {
        self.no_cmdline.len()
    }

    fn is_match(&self) -> bool {
        !self.command.is_empty() && self.filters.iter().any(|f| f.matches(&self.command))
    }

    /// Samples the given processes (as listed by `procfs`) with boot time `btime`.
    pub fn sample_processes<I>(
        &mut self,
        processes: I,
        btime: u64,
        out: &mut Vec<u8>,
    ) -> SampleStats
    where
        I: IntoIterator<Item = ProcResult<Process>>,
    {
        let mut stats = SampleStats::default();
        for process in processes {
            stats.listed += 1;
            // A listing error means the process went away before its directory was opened.
            let Ok(process) = process else {
                stats.skipped += 1;
                continue;
            };
            self.sample_counted(&process, btime, out, &mut stats);
        }
        stats
    }

    fn sample_counted(
        &mut self,
        process: &Process,
        btime: u64,
        out: &mut Vec<u8>,
        stats: &mut SampleStats,
    ) {
        {
            match self.sample_one(process, btime, out) {
                Ok(false) => {}
                Ok(true) => {
                    stats.matched += 1;
                    stats.rows += 1;
                }
                Err((matched, skip)) => {
                    log::debug!("skipping pid {}: {skip}", process.pid);
                    stats.matched += usize::from(matched);
                    stats.skipped += 1;
                }
            }
        }
    }

    /// Returns whether a row was written; on a skip, whether the command line had matched.
    fn sample_one(
        &mut self,
        process: &Process,
        btime: u64,
        out: &mut Vec<u8>,
    ) -> Result<bool, (bool, Skip)> {
        read_cmdline(process, &mut self.raw).map_err(|s| (false, s))?;
        format_command(&self.raw, &mut self.command);
        if !self.is_match() {
            return Ok(false);
        }
        let query_time = now_ns();
        let usage = read_usage(process, &self.info, btime).map_err(|s| (true, s))?;
        write_row(
            out,
            &Record {
                query_time,
                command: &self.command,
                usage,
            },
        );
        if let Some((_, t)) = &mut self.metrics {
            t.add(&self.command, &usage);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_command_lines_are_skipped_until_their_recheck() {
        let at = recheck_at(7, 10);
        assert!((10 + RECHECK_EMPTY_EVERY..10 + 2 * RECHECK_EMPTY_EVERY).contains(&at));
        assert!(still_empty((42, at), 42, 11));
        assert!(still_empty((42, at), 42, at - 1));
        assert!(!still_empty((42, at), 42, at), "due for a re-read");
        assert!(
            !still_empty((42, at), 43, 11),
            "a new /proc entry is a new process: read it"
        );
    }

    #[test]
    fn with_metrics_each_sample_is_published_by_command_line() {
        let me = std::env::current_exe().unwrap();
        let filter = Pattern::new(&format!("{}*", me.display()));
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = TrackerMetrics::register(&mut registry);
        let exposition = perf_daemon::metrics::Exposition::new(registry);
        let mut sampler =
            Sampler::new(vec![filter], SystemInfo::read().unwrap()).with_metrics(metrics);
        let mut rows = Vec::new();
        let stats = sampler.sample(&mut rows).unwrap();
        assert!(stats.rows >= 1, "{stats:?}");
        let text = exposition.openmetrics();
        let line = text
            .lines()
            .find(|l| l.starts_with("perf_tracker_resident_memory_bytes{command=\""))
            .unwrap_or_else(|| panic!("no resident bytes in\n{text}"));
        assert!(line.contains(&me.display().to_string()), "{line}");
        let bytes: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(bytes > 0, "{line}");
        assert!(text.contains(&format!("perf_tracker_processes_matched {}", stats.matched)));
        assert!(text.contains("perf_tracker_samples_total 1"));
    }

    #[test]
    fn rechecks_are_spread_over_the_samples() {
        let slots: std::collections::BTreeSet<u64> =
            (1..=60).map(|pid| recheck_at(pid, 0)).collect();
        assert_eq!(slots.len() as u64, RECHECK_EMPTY_EVERY);
    }
}
