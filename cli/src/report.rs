//! `perf-metrics report`: per-state timing figures and per-process CPU and memory.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use perf_daemon::text_table::{Align, Table};
use serde::Serialize;

use crate::data::{self, Activity, Problem, Resource};
use crate::units::human_ns;
use crate::window::{Utc, Window};

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
}

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
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Directory read.
    pub dir: PathBuf,
    /// `--since`, ns since the epoch.
    pub since_ns: Option<u64>,
    /// `--until`, ns since the epoch.
    pub until_ns: Option<u64>,
    /// `None` when `robot_activity_data` is missing.
    pub robot_activity: Option<ActivitySection>,
    /// `None` when `system_resource_data` is missing.
    pub system_resources: Option<ResourceSection>,
    /// Lines that could not be read (each also printed to stderr).
    pub malformed_lines: u64,
}

/// Reading the directory failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Neither table is there.
    #[error("no robot_activity_data or system_resource_data in {0}")]
    Empty(PathBuf),
    /// A table exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// Reads both tables in `dir` and computes the report for `window`. Each bad line is given
/// to `on_problem` (and counted); a missing table leaves its section out.
pub fn build(
    dir: &Path,
    window: Window,
    on_problem: &mut dyn FnMut(&Problem),
) -> Result<Report, ReportError> {
    let mut problems = Vec::new();
    let activity_path = dir.join(perf_table::ROBOT_ACTIVITY.name);
    let resource_path = dir.join(perf_table::SYSTEM_RESOURCE.name);
    let activity = read_optional(&activity_path, |p| data::read_activity(p, &mut problems))?;
    let resources = read_optional(&resource_path, |p| data::read_resources(p, &mut problems))?;
    if activity.is_none() && resources.is_none() {
        return Err(ReportError::Empty(dir.to_path_buf()));
    }
    for p in &problems {
        on_problem(p);
    }
    Ok(Report {
        dir: dir.to_path_buf(),
        since_ns: window.since,
        until_ns: window.until,
        robot_activity: activity.map(|rows| activity_section(activity_path, &rows, window)),
        system_resources: resources.map(|rows| resource_section(resource_path, &rows, window)),
        malformed_lines: problems.len() as u64,
    })
}

fn read_optional<T>(
    path: &Path,
    read: impl FnOnce(&Path) -> io::Result<Vec<T>>,
) -> Result<Option<Vec<T>>, ReportError> {
    match read(path) {
        Ok(rows) => Ok(Some(rows)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The value at nearest rank `ceil(p/100 × n)` of sorted, non-empty `sorted`.
fn nearest_rank(sorted: &[u64], p: u32) -> u64 {
    let n = sorted.len() as u64;
    let rank = (u64::from(p) * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

/// Order of states: known states in their index order, then unknown ones by name.
pub(crate) fn state_order(name: &str) -> (usize, String) {
    let known = perf_producer::RobotActivityState::NAMES;
    match known.iter().position(|k| *k == name) {
        Some(i) => (i, String::new()),
        None => (known.len(), name.to_owned()),
    }
}

/// Per-state figures over the records of `rows` inside `window`.
pub fn activity_section(file: PathBuf, rows: &[Activity], window: Window) -> ActivitySection {
    let mut by_state: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut first = None::<u64>;
    let mut last = None::<u64>;
    let mut records = 0;
    for r in rows.iter().filter(|r| window.contains(r.start_ns)) {
        records += 1;
        by_state.entry(&r.state).or_default().push(r.duration_ns);
        first = Some(first.map_or(r.start_ns, |f| f.min(r.start_ns)));
        let end = r.start_ns.saturating_add(r.duration_ns);
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    let mut states: Vec<StateStats> = by_state
        .into_iter()
        .map(|(state, mut d)| {
            d.sort_unstable();
            let total: u128 = d.iter().map(|&v| u128::from(v)).sum();
            StateStats {
                state: state.to_owned(),
                count: d.len() as u64,
                total_ns: total,
                mean_ns: total as f64 / d.len() as f64,
                p50_ns: nearest_rank(&d, 50),
                p95_ns: nearest_rank(&d, 95),
                p99_ns: nearest_rank(&d, 99),
                max_ns: d[d.len() - 1],
            }
        })
        .collect();
    states.sort_by_key(|s| state_order(&s.state));
    ActivitySection {
        file,
        records,
        first_start_ns: first,
        last_end_ns: last,
        states,
    }
}

/// Per-command figures over the samples of `rows` inside `window`.
pub fn resource_section(file: PathBuf, rows: &[Resource], window: Window) -> ResourceSection {
    let mut inside: Vec<&Resource> = rows
        .iter()
        .filter(|r| window.contains(r.query_time))
        .collect();
    inside.sort_by_key(|r| r.query_time);

    #[derive(Default)]
    struct Acc {
        samples: u64,
        processes: u64,
        cpu: f64,
        mem_sum: f64,
        mem_peak: f64,
        /// Last CPU total of each process, keyed by its start time.
        last_cpu: HashMap<u64, f64>,
    }
    let mut by_command: BTreeMap<&str, Acc> = BTreeMap::new();
    for r in &inside {
        let acc = by_command.entry(&r.command).or_default();
        acc.samples += 1;
        acc.mem_sum += r.memory_percent;
        acc.mem_peak = acc.mem_peak.max(r.memory_percent);
        let cpu = r.user_cpu_time + r.system_cpu_time;
        match acc.last_cpu.insert(r.running_since.to_bits(), cpu) {
            None => acc.processes += 1,
            // Cumulative CPU time never goes down in one process: a drop is a new process
            // that started in the same second; its CPU from before its first sample is not
            // in the window.
            Some(prev) if cpu < prev => acc.processes += 1,
            Some(prev) => acc.cpu += cpu - prev,
        }
    }
    let mut commands: Vec<ProcessStats> = by_command
        .into_iter()
        .map(|(command, a)| ProcessStats {
            command: command.to_owned(),
            samples: a.samples,
            processes: a.processes,
            cpu_seconds: a.cpu,
            mean_memory_percent: a.mem_sum / a.samples as f64,
            peak_memory_percent: a.mem_peak,
        })
        .collect();
    commands.sort_by(|a, b| {
        b.cpu_seconds
            .total_cmp(&a.cpu_seconds)
            .then(a.command.cmp(&b.command))
    });
    ResourceSection {
        file,
        rows: inside.len() as u64,
        first_sample_ns: inside.first().map(|r| r.query_time),
        last_sample_ns: inside.last().map(|r| r.query_time),
        commands,
    }
}

/// `text` with control characters (a newline in a command line) shown escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A section's first line: what it counts, the time span covered, and the file.
fn heading(out: &mut String, what: &str, span: Option<(u64, u64)>, file: &std::path::Path) {
    out.push_str(what);
    if let Some((first, last)) = span {
        let _ = write!(
            out,
            " from {} to {} ({})",
            Utc(first),
            Utc(last),
            human_ns(last.saturating_sub(first) as f64)
        );
    }
    let _ = writeln!(out, "  [{}]", file.display());
}

/// The report as text for people.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    match &report.robot_activity {
        None => {
            let _ = writeln!(
                out,
                "robot activity: no robot_activity_data in {}",
                report.dir.display()
            );
        }
        Some(a) => {
            let what = format!("robot activity: {} records", a.records);
            heading(
                &mut out,
                &what,
                a.first_start_ns.zip(a.last_end_ns),
                &a.file,
            );
            if !a.states.is_empty() {
                let mut rows = Table::new(
                    [
                        "STATE", "COUNT", "TOTAL", "MEAN", "P50", "P95", "P99", "MAX",
                    ]
                    .into_iter()
                    .enumerate()
                    .map(|(i, h)| (h, if i == 0 { Align::Left } else { Align::Right })),
                );
                for s in &a.states {
                    rows.row([
                        s.state.clone(),
                        s.count.to_string(),
                        human_ns(s.total_ns as f64),
                        human_ns(s.mean_ns),
                        human_ns(s.p50_ns as f64),
                        human_ns(s.p95_ns as f64),
                        human_ns(s.p99_ns as f64),
                        human_ns(s.max_ns as f64),
                    ]);
                }
                rows.render_into(&mut out);
            }
        }
    }
    out.push('\n');
    match &report.system_resources {
        None => {
            let _ = writeln!(
                out,
                "processes: no system_resource_data in {}",
                report.dir.display()
            );
        }
        Some(r) => {
            let what = format!("processes: {} samples", r.rows);
            heading(
                &mut out,
                &what,
                r.first_sample_ns.zip(r.last_sample_ns),
                &r.file,
            );
            if !r.commands.is_empty() {
                let mut rows = Table::new([
                    ("CPU USED", Align::Left),
                    ("SAMPLES", Align::Right),
                    ("PROCS", Align::Right),
                    ("MEM MEAN", Align::Right),
                    ("MEM PEAK", Align::Right),
                    ("COMMAND", Align::Left),
                ]);
                for c in &r.commands {
                    rows.row([
                        format!("{:.2} s", c.cpu_seconds),
                        c.samples.to_string(),
                        c.processes.to_string(),
                        format!("{:.2} %", c.mean_memory_percent),
                        format!("{:.2} %", c.peak_memory_percent),
                        printable(&c.command),
                    ]);
                }
                rows.render_into(&mut out);
            }
        }
    }
    if report.malformed_lines > 0 {
        let _ = writeln!(
            out,
            "\n{} malformed line{} skipped (listed on stderr)",
            report.malformed_lines,
            if report.malformed_lines == 1 { "" } else { "s" }
        );
    }
    out
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

    fn res(t: u64, cmd: &str, since: f64, cpu: f64, mem: f64) -> Resource {
        Resource {
            query_time: t,
            command: cmd.into(),
            running_since: since,
            user_cpu_time: cpu,
            system_cpu_time: 0.5,
            memory_percent: mem,
        }
    }

    #[test]
    fn cpu_is_counted_per_process_and_restarts_start_afresh() {
        let rows = [
            res(1, "a", 10.0, 1.0, 1.0),
            res(1, "a", 11.0, 5.0, 3.0), // a second process with the same command
            res(2, "a", 10.0, 2.0, 1.0),
            res(2, "a", 11.0, 5.5, 3.0),
            res(3, "a", 10.0, 0.25, 2.0), // restarted in the same second: a drop
            res(4, "a", 10.0, 1.25, 2.0),
            res(4, "b", 1.0, 9.0, 0.5),
        ];
        let s = resource_section("f".into(), &rows, Window::default());
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
    }
}
