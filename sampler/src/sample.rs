//! One sample: every process whose command line matches a filter, as CSV rows.
//!
//! Each sample lists `/proc` (kept open, rewound each time), so new processes appear in
//! the very next sample; when no process has been created or reaped since the last
//! listing, counters the kernel keeps say so and that listing is used again (see
//! [`crate::forks`]). A process found with a command line keeps its `/proc` files open
//! ([`ProcFiles`]) and is re-read with `pread` every sample: its command line (exec and
//! setproctitle change it in place, and the Python tracker saw the change at the next
//! sample), its `stat` and `statm` when the command line matches. A kept descriptor of a
//! process that has gone reads as [`Skip::Gone`]; its entry is dropped and the pid, which
//! may now be a new process's, is opened afresh. The command line last read is kept with
//! the formatted command and whether it matched, so an unchanged one costs a `pread` and a
//! comparison. Descriptors are kept up to a budget (see [`perf_daemon::fd_limit`]);
//! processes beyond it are read by path each sample.
//!
//! Before any of that, the process's CPU clock is read: if it shows the figure it showed
//! just before the last complete read, the process has not run since, so its command line
//! and `stat` are as read then and only a matched process's `statm` is read again (see
//! [`crate::cpu_clock`] for why that holds, and how the pid behind a clock is known to be
//! the same process).
//!
//! Most of /proc is kernel threads (59 of 65 entries on the CI machine), which never have a
//! command line. A process found without one has its `stat` read once: a thread made by
//! `kthreadd` never execs, so it is remembered by pid and the inode of its `/proc/PID`
//! entry (a new process under a reused pid gets a new entry, so a new inode) and not read
//! again. Any other process without a command line (a zombie, a process in the middle of
//! exec, a usermode helper before its exec) is kept like the others and read again
//! whenever it has run.

use rustc_hash::FxHashMap;

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use procfs::process::Process;
use procfs::{ProcError, ProcResult};

use crate::cmdline::format_command;
use crate::cpu_clock;
use crate::fnmatch::Pattern;
use crate::forks::TaskCounters;
use crate::kept::{is_match, KeptTable};
use crate::metrics::{Tally, TrackerMetrics};
use crate::proc::{read_cmdline, read_usage, BootTime, ProcFsError, Skip, SystemInfo};
use crate::row::{write_row, Record};
use crate::visit::{now_ns, visit, Scratch};
use perf_daemon::fd_limit;

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
    /// Command lines read (the rest were known kernel threads, see the module docs).
    pub cmdlines_read: usize,
    /// Processes read by path because the descriptor budget was spent.
    pub by_path: usize,
    /// Kept processes whose CPU clock showed they had not run since their last read, so
    /// only their `statm` was read, if they matched (see [`crate::cpu_clock`]).
    pub unchanged: usize,
    /// Whether no process had been created or reaped since the last listing of `/proc`,
    /// which this sample used again instead of listing it (see [`crate::forks`]).
    pub listing_reused: bool,
}

/// The sampler: filters, the processes it keeps open, and buffers reused between samples.
#[derive(Debug)]
pub struct Sampler {
    filters: Vec<Pattern>,
    info: SystemInfo,
    raw: Vec<u8>,
    statm: Vec<u8>,
    command: String,
    path: String,
    /// Samples taken so far.
    samples: u64,
    /// `/proc`, opened by the first sample.
    proc_dir: Option<Dir>,
    /// Whether processes' CPU clocks may be trusted, told by the first sample.
    clocks: Option<bool>,
    /// Whether any process was created or reaped since the last listing.
    task_counters: TaskCounters,
    /// `(pid, inode of /proc/PID)` of every process in the last listing of `/proc`.
    listing: Vec<(i32, u64)>,
    /// Whether that listing went without a read error, and so may be used again.
    listing_complete: bool,
    btime: BootTime,
    kept: KeptTable,
    /// Kernel threads: pid → inode of /proc/PID.
    kthreads: FxHashMap<i32, u64>,
    /// The map being built by the current sample (swapped with `kthreads` at its end).
    next_kthreads: FxHashMap<i32, u64>,
    /// Usage by command line, published to the metrics after each sample, when they are on.
    metrics: Option<(TrackerMetrics, Tally)>,
}

fn parse_pid(name: &[u8]) -> Option<i32> {
    if name.first().is_none_or(|b| !b.is_ascii_digit()) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

impl Sampler {
    /// A sampler for `filters` on a machine described by `info`.
    ///
    /// Raises this process's soft descriptor limit to the hard one, and keeps `/proc`
    /// descriptors within it (see [`perf_daemon::fd_limit`]).
    pub fn new(filters: Vec<Pattern>, info: SystemInfo) -> Sampler {
        let budget = fd_limit::budget(fd_limit::raise_nofile_limit());
        Sampler::with_fd_budget(filters, info, budget)
    }

    /// A sampler that keeps at most `fd_budget` `/proc` descriptors open, reading the
    /// processes beyond that by path every sample.
    pub fn with_fd_budget(filters: Vec<Pattern>, info: SystemInfo, fd_budget: usize) -> Sampler {
        Sampler {
            filters,
            info,
            raw: Vec::with_capacity(4096),
            statm: Vec::with_capacity(4096),
            command: String::with_capacity(256),
            path: String::with_capacity(32),
            samples: 0,
            proc_dir: None,
            clocks: None,
            task_counters: TaskCounters::default(),
            listing: Vec::with_capacity(512),
            listing_complete: false,
            btime: BootTime::default(),
            kept: KeptTable {
                known: FxHashMap::default(),
                fds: 0,
                budget: fd_budget,
                out_of_fds_logged: false,
            },
            kthreads: FxHashMap::default(),
            next_kthreads: FxHashMap::default(),
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
    pub fn sample(&mut self, out: &mut Vec<u8>) -> Result<SampleStats, ProcFsError> {
        let started = std::time::Instant::now();
        let btime = self.btime.read(&mut self.raw)?;
        let mut dir = match self.proc_dir.take() {
            Some(dir) => dir,
            None => Dir::open(
                "/proc",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ProcFsError::List(ProcError::Io(e.into(), Some("/proc".into()))))?,
        };
        let clocks = *self
            .clocks
            .get_or_insert_with(cpu_clock::proc_is_our_pid_namespace);
        let mut stats = SampleStats::default();
        self.samples += 1;
        self.next_kthreads.clear();
        // Read before the listing it vouches for (see `crate::forks`).
        let unchanged = self.task_counters.unchanged(&mut self.raw);
        if unchanged && self.listing_complete {
            stats.listing_reused = true;
        } else {
            self.listing.clear();
            self.listing_complete = true;
            // The iterator rewinds the directory when dropped, ready for the next sample.
            for entry in dir.iter() {
                let Ok(entry) = entry else {
                    self.listing_complete = false;
                    continue;
                };
                if let Some(pid) = parse_pid(entry.file_name().to_bytes()) {
                    self.listing.push((pid, entry.ino()));
                }
            }
        }
        for &listed in &self.listing {
            stats.listed += 1;
            let mut scratch = Scratch {
                info: &self.info,
                btime,
                clocks,
                buf: &mut self.raw,
                statm: &mut self.statm,
                path: &mut self.path,
                out,
                stats: &mut stats,
                tally: self.metrics.as_mut().map(|(_, t)| t),
            };
            visit(
                &mut self.kept,
                &self.kthreads,
                &mut self.next_kthreads,
                &self.filters,
                self.samples,
                listed,
                &mut scratch,
            );
        }
        self.proc_dir = Some(dir);
        self.kept.drop_unlisted(self.samples);
        std::mem::swap(&mut self.kthreads, &mut self.next_kthreads);
        if let Some((m, tally)) = &mut self.metrics {
            m.sampled(tally, stats.matched, started.elapsed());
        }
        Ok(stats)
    }

    /// Kernel threads currently remembered, not to be read again.
    pub fn known_kernel_threads(&self) -> usize {
        self.kthreads.len()
    }

    /// `/proc` descriptors currently kept open for processes.
    pub fn kept_descriptors(&self) -> usize {
        self.kept.fds
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
        if !is_match(&self.filters, &self.command) {
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
    use crate::cpu_clock::CpuClock;

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

    /// Rows of one sample by `s`, as fields.
    fn fields(s: &mut Sampler) -> (SampleStats, Vec<Vec<String>>) {
        let mut out = Vec::new();
        let stats = s.sample(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows = text
            .split_terminator("\r\n")
            .map(|r| {
                r.split("\",\"")
                    .map(|f| f.trim_matches('"').to_owned())
                    .collect()
            })
            .collect();
        (stats, rows)
    }

    #[test]
    fn an_idle_process_is_read_again_only_once_it_has_run() {
        use std::io::Write;
        let marker = format!("idle-gate-{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x; read y", &marker])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let mut s = Sampler::new(
            vec![Pattern::new(&format!("sh -c read x; read y {marker}"))],
            SystemInfo::read().unwrap(),
        );
        let clock = CpuClock::of(pid);
        let settled = |s: &mut Sampler| {
            // Until exec is done and the shell waits in `read`, every sample reads it.
            for _ in 0..200 {
                let before = clock.read();
                let got = fields(s);
                if got.1.len() == 1 && clock.read() == before {
                    return got;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            panic!("the child never settled");
        };
        let (_, full) = settled(&mut s);
        let read_at = s.kept.known[&pid].read_at;
        assert_eq!(
            read_at,
            clock.read(),
            "a complete read keeps the clock's figure"
        );
        let (stats, quick) = fields(&mut s);
        assert!(stats.unchanged >= 1, "{stats:?}");
        assert_eq!(s.kept.known[&pid].read_at, read_at);
        // The same figures as the complete read, but for the time of the query.
        assert_eq!(quick.len(), 1);
        assert_eq!(quick[0][1..], full[0][1..]);
        assert_ne!(quick[0][0], full[0][0]);

        child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
        let ran = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            clock.read() != read_at
        });
        assert!(ran, "the child never ran");
        let (_, after) = settled(&mut s);
        assert_eq!(after.len(), 1);
        let now = s.kept.known[&pid].read_at;
        assert!(
            now > read_at,
            "read again in full: {now:?} after {read_at:?}"
        );
        drop(child.stdin.take());
        child.wait().unwrap();
    }

    #[test]
    fn a_process_created_since_the_last_listing_is_in_the_next_sample() {
        let mut s = Sampler::new(
            vec![Pattern::new("no-such-process-*")],
            SystemInfo::read().unwrap(),
        );
        fields(&mut s);
        fields(&mut s);
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let (stats, _) = fields(&mut s);
        assert!(!stats.listing_reused, "{stats:?}");
        assert!(s.listing.iter().any(|&(p, _)| p == pid), "{pid} not listed");
        child.kill().unwrap();
        child.wait().unwrap();
        let (stats, _) = fields(&mut s);
        assert!(!stats.listing_reused, "a process was reaped: {stats:?}");
        assert!(
            !s.listing.iter().any(|&(p, _)| p == pid),
            "{pid} still listed"
        );
    }

    #[test]
    fn pids_are_the_numeric_entries() {
        assert_eq!(parse_pid(b"4242"), Some(4242));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b"+1"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"99999999999"), None);
    }
}
