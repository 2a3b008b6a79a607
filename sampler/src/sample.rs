//! One sample: every process whose command line matches a filter, as CSV rows.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use perf_table::Row;
use procfs::process::Process;
use procfs::{ProcError, ProcResult};

use crate::cmdline::format_command;
use crate::fnmatch::Pattern;
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
}

/// The sampler: filters plus the buffers reused from one sample to the next.
#[derive(Debug)]
pub struct Sampler {
    filters: Vec<Pattern>,
    info: SystemInfo,
    raw: Vec<u8>,
    command: String,
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
        }
    }

    /// Samples every process in /proc, appending one row per matching process to `out`.
    ///
    /// Fails only if /proc itself cannot be read; single processes are skipped.
    ///
    /// System calls are most of the cost, so every file is read by path (open, one read,
    /// close) without opening a `/proc/PID` handle first, and parsed by `procfs`: that
    /// halves the calls spent on each process. See [`read_usage_at`] on pid reuse.
    pub fn sample(&mut self, out: &mut Vec<u8>) -> Result<SampleStats, ProcFsError> {
        let btime = boot_time(&mut self.raw)?;
        let entries = std::fs::read_dir("/proc")
            .map_err(|e| ProcFsError::List(ProcError::Io(e, Some("/proc".into()))))?;
        let mut stats = SampleStats::default();
        let mut path = String::with_capacity(32);
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
            path.clear();
            let _ = write!(path, "/proc/{pid}/cmdline");
            if read_cmdline_at(&path, &mut self.raw).is_err() {
                stats.skipped += 1;
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
                    stats.rows += 1;
                }
                Err(skip) => {
                    log::debug!("skipping pid {pid}: {skip}");
                    stats.skipped += 1;
                }
            }
        }
        Ok(stats)
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
        Ok(true)
    }
}
