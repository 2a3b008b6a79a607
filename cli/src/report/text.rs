//! The report as text for people: one robot, or several side by side.
//!
//! The report is first laid out as [`Block`]s (lines and tables), which the text renderer
//! here and the page in [`super::html`] both print, so the page's tables are the text's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use perf_daemon::text_table::{Align, Table};

use super::activity::{ActivitySection, StateStats, DRIFT_RATIO};
use super::resources::{InstanceStats, ResourceSection};
use super::services::{ServiceSection, ServiceStateStats, NO_CONTEXT};
use super::trend::{GROWING_PERCENT_PER_HOUR, MIN_SAMPLES, MIN_SPAN_NS, MIN_Z};
use super::{Fleet, Report};
use crate::units::human_ns;
use crate::window::Utc;

/// `text` with control characters (a newline in a command line) shown escaped.
pub(crate) fn printable(text: &str) -> String {
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

/// One piece of the report's layout.
#[derive(Debug, Clone)]
pub enum Block {
    /// A line of text (a heading or a note).
    Line(String),
    /// An empty line between parts.
    Blank,
    /// A table.
    Table(Table),
}

/// Prints `blocks` as text.
pub fn render_blocks(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Line(line) => {
                out.push_str(line);
                out.push('\n');
            }
            Block::Blank => out.push('\n'),
            Block::Table(t) => t.render_into(&mut out),
        }
    }
    out
}

/// A section's first line: what it counts, the time span covered, and the file.
fn heading(what: &str, span: Option<(u64, u64)>, file: &Path) -> Block {
    let mut out = what.to_owned();
    if let Some((first, last)) = span {
        let _ = write!(
            out,
            " from {} to {} ({})",
            Utc(first),
            Utc(last),
            human_ns(last.saturating_sub(first) as f64)
        );
    }
    let _ = write!(out, "  [{}]", file.display());
    Block::Line(out)
}

/// A percentile cell: `~` in front when it comes from the sketch (within 1 %).
fn percentile(ns: u64, exact: bool) -> String {
    let v = human_ns(ns as f64);
    if exact {
        v
    } else {
        format!("~{v}")
    }
}

/// The second half's median against the first's, as a signed percentage.
pub(crate) fn change(s: &StateStats) -> String {
    s.drift
        .ratio
        .map_or_else(|| "-".into(), |r| format!("{:+.0} %", (r - 1.0) * 100.0))
}

/// A memory slope for people.
pub(crate) fn slope(i: &InstanceStats) -> String {
    i.memory
        .slope_percent_per_hour
        .map_or_else(|| "-".into(), |b| format!("{b:+.3} %/h"))
}

/// CPU % of one core, or `-`.
pub(crate) fn cpu_percent(p: Option<f64>) -> String {
    p.map_or_else(|| "-".into(), |p| format!("{p:.1} %"))
}

/// When a process instance started.
pub(crate) fn started(i: &InstanceStats) -> String {
    if i.running_since.is_finite() && i.running_since >= 0.0 {
        Utc((i.running_since * 1e9) as u64).to_string()
    } else {
        format!("{}", i.running_since)
    }
}

fn states_table(a: &ActivitySection, out: &mut Vec<Block>) {
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
            percentile(s.p50_ns, s.percentiles_exact),
            percentile(s.p95_ns, s.percentiles_exact),
            percentile(s.p99_ns, s.percentiles_exact),
            human_ns(s.max_ns as f64),
        ]);
    }
    out.push(Block::Table(rows));
    if a.states.iter().any(|s| !s.percentiles_exact) {
        out.push(Block::Line(
            "~ percentiles from a sketch (more records than kept exactly): within 1 %".into(),
        ));
    }
}

fn drift_table(a: &ActivitySection, out: &mut Vec<Block>) {
    out.push(Block::Blank);
    out.push(Block::Line(format!(
        "drift: median duration in the first half of each state's span against the second \
         (slower or faster at {DRIFT_RATIO}x)"
    )));
    let mut rows = Table::new([
        ("STATE", Align::Left),
        ("FIRST HALF", Align::Right),
        ("P50", Align::Right),
        ("SECOND HALF", Align::Right),
        ("P50", Align::Right),
        ("CHANGE", Align::Right),
        ("DRIFT", Align::Left),
    ]);
    let ns = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| human_ns(v as f64));
    for s in &a.states {
        let d = &s.drift;
        rows.row([
            s.state.clone(),
            d.first_half_records.to_string(),
            ns(d.first_half_p50_ns),
            d.second_half_records.to_string(),
            ns(d.second_half_p50_ns),
            change(s),
            d.verdict.label().to_owned(),
        ]);
    }
    out.push(Block::Table(rows));
}

fn services_table(s: &ServiceSection, out: &mut Vec<Block>) {
    out.push(Block::Blank);
    out.push(Block::Line(format!(
        "per service: {} records with context (robot_activity_context_data), {} without",
        s.records_with_context, s.records_without_context
    )));
    let mut rows = Table::new(
        [
            "SERVICE", "STATE", "COUNT", "TOTAL", "MEAN", "P50", "P95", "P99", "MAX",
        ]
        .into_iter()
        .enumerate()
        .map(|(i, h)| (h, if i < 2 { Align::Left } else { Align::Right })),
    );
    for x in &s.states {
        rows.row([
            printable(&x.service),
            x.state.clone(),
            x.count.to_string(),
            human_ns(x.total_ns as f64),
            human_ns(x.mean_ns),
            percentile(x.p50_ns, x.percentiles_exact),
            percentile(x.p95_ns, x.percentiles_exact),
            percentile(x.p99_ns, x.percentiles_exact),
            human_ns(x.max_ns as f64),
        ]);
    }
    out.push(Block::Table(rows));
    if s.context_rows_unmatched > 0 {
        out.push(Block::Line(format!(
            "{} rows of robot_activity_context_data match no row of robot_activity_data (it is longer than the data, or the data lost rows); left out",
            s.context_rows_unmatched
        )));
    }
}

fn commands_table(r: &ResourceSection, out: &mut Vec<Block>) {
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
    out.push(Block::Table(rows));
}

fn instances_table(r: &ResourceSection, out: &mut Vec<Block>) {
    out.push(Block::Blank);
    out.push(Block::Line(format!(
        "process instances: CPU as % of one core; memory trend = Theil-Sen slope, growing at \
         {GROWING_PERCENT_PER_HOUR:+} %/h or more with Mann-Kendall z >= {MIN_Z}, too little \
         data under {MIN_SAMPLES} samples or {}",
        human_ns(MIN_SPAN_NS as f64)
    )));
    let mut rows = Table::new([
        ("STARTED", Align::Left),
        ("SAMPLES", Align::Right),
        ("SPAN", Align::Right),
        ("CPU", Align::Right),
        ("MEM MEAN", Align::Right),
        ("MEM SLOPE", Align::Right),
        ("TREND", Align::Left),
        ("COMMAND", Align::Left),
    ]);
    for i in &r.instances {
        rows.row([
            started(i),
            i.samples.to_string(),
            human_ns(i.last_sample_ns.saturating_sub(i.first_sample_ns) as f64),
            cpu_percent(i.cpu_percent),
            format!("{:.2} %", i.mean_memory_percent),
            slope(i),
            i.memory.verdict.label().to_owned(),
            printable(&i.command),
        ]);
    }
    out.push(Block::Table(rows));
}

/// One robot's report as text.
pub fn render_text(report: &Report) -> String {
    render_blocks(&report_blocks(report))
}

/// One robot's report, laid out.
pub fn report_blocks(report: &Report) -> Vec<Block> {
    let mut out = Vec::new();
    match &report.robot_activity {
        None => out.push(Block::Line(format!(
            "robot activity: no robot_activity_data in {}",
            report.dir.display()
        ))),
        Some(a) => {
            let what = format!("robot activity: {} records", a.records);
            out.push(heading(&what, a.first_start_ns.zip(a.last_end_ns), &a.file));
            if !a.states.is_empty() {
                states_table(a, &mut out);
                drift_table(a, &mut out);
            }
            if let Some(s) = report.services.as_ref().filter(|s| !s.states.is_empty()) {
                services_table(s, &mut out);
            }
        }
    }
    out.push(Block::Blank);
    match &report.system_resources {
        None => out.push(Block::Line(format!(
            "processes: no system_resource_data in {}",
            report.dir.display()
        ))),
        Some(r) => {
            let what = format!("processes: {} samples", r.rows);
            out.push(heading(
                &what,
                r.first_sample_ns.zip(r.last_sample_ns),
                &r.file,
            ));
            if !r.commands.is_empty() {
                commands_table(r, &mut out);
                instances_table(r, &mut out);
            }
        }
    }
    if report.malformed_lines > 0 {
        out.push(Block::Blank);
        out.push(Block::Line(format!(
            "{} malformed line{} skipped (listed on stderr)",
            report.malformed_lines,
            if report.malformed_lines == 1 { "" } else { "s" }
        )));
    }
    out
}

/// A column of a side-by-side table: its header and how a robot's entry shows in it.
type Figure<'a, T> = (&'a str, &'a dyn Fn(&T) -> String);

/// A table with one column per robot for each figure: `key` names the row, `figures` are
/// `(header, cell)` for one robot's entry (`None`: the robot has no such row).
fn side_by_side<T>(
    key_header: &str,
    robots: &PerRobot<T>,
    figures: &[Figure<'_, T>],
    key_last: bool,
    order: impl Fn(&str) -> (usize, String),
) -> Block {
    let mut keys: BTreeMap<(usize, String), String> = BTreeMap::new();
    for (_, rows) in robots {
        for (k, _) in rows {
            keys.insert(order(k), k.clone());
        }
    }
    let mut columns: Vec<(String, Align)> = Vec::new();
    if !key_last {
        columns.push((key_header.to_owned(), Align::Left));
    }
    for (header, _) in figures {
        for (name, _) in robots {
            columns.push((format!("{header} {name}"), Align::Right));
        }
    }
    if key_last {
        columns.push((key_header.to_owned(), Align::Left));
    }
    let mut table = Table::new(columns);
    for key in keys.values() {
        let mut cells = Vec::new();
        if !key_last {
            cells.push(printable(key));
        }
        for (_, figure) in figures {
            for (_, rows) in robots {
                cells.push(
                    rows.iter()
                        .find(|(k, _)| k == key)
                        .map_or_else(|| "-".into(), |(_, v)| figure(v)),
                );
            }
        }
        if key_last {
            cells.push(printable(key));
        }
        table.row(cells);
    }
    Block::Table(table)
}

/// Each robot's name with its rows of one kind, keyed (for [`side_by_side`]).
type PerRobot<T> = Vec<(String, Vec<(String, T)>)>;

fn per_robot<'a, T>(
    fleet: &'a Fleet,
    rows: impl Fn(&'a Report) -> Vec<(String, T)>,
) -> PerRobot<T> {
    fleet
        .robots
        .iter()
        .map(|(name, r)| (name.clone(), rows(r)))
        .collect()
}

/// Several robots: one column per robot per figure. One robot: [`render_text`].
pub fn render_fleet(fleet: &Fleet) -> String {
    render_blocks(&fleet_blocks(fleet))
}

/// The fleet's report, laid out: one robot's as [`report_blocks`], several side by side.
pub fn fleet_blocks(fleet: &Fleet) -> Vec<Block> {
    if let Some(report) = fleet.single() {
        return report_blocks(report);
    }
    let mut out = Vec::new();
    for (name, report) in &fleet.robots {
        out.push(Block::Line(format!(
            "robot {name}: {}",
            report.dir.display()
        )));
    }
    let states = per_robot(fleet, |r| {
        r.robot_activity
            .iter()
            .flat_map(|a| &a.states)
            .map(|s| (s.state.clone(), s))
            .collect()
    });
    out.push(Block::Blank);
    out.push(Block::Line("robot activity per state".into()));
    let count = |s: &&StateStats| s.count.to_string();
    let p50 = |s: &&StateStats| percentile(s.p50_ns, s.percentiles_exact);
    let p95 = |s: &&StateStats| percentile(s.p95_ns, s.percentiles_exact);
    let drift = |s: &&StateStats| s.drift.verdict.label().to_owned();
    out.push(side_by_side(
        "STATE",
        &states,
        &[
            ("COUNT", &count),
            ("P50", &p50),
            ("P95", &p95),
            ("DRIFT", &drift),
        ],
        false,
        super::state_order,
    ));

    if fleet.robots.iter().any(|(_, r)| r.services.is_some()) {
        type Svc<'a> = &'a ServiceStateStats;
        let services = per_robot(fleet, |r| {
            r.services
                .iter()
                .flat_map(|s| &s.states)
                .map(|x| (format!("{}  {}", x.service, x.state), x))
                .collect()
        });
        out.push(Block::Blank);
        out.push(Block::Line(
            "robot activity per service and state (robots with robot_activity_context_data)".into(),
        ));
        let count = |x: &Svc<'_>| x.count.to_string();
        let p50 = |x: &Svc<'_>| percentile(x.p50_ns, x.percentiles_exact);
        let p95 = |x: &Svc<'_>| percentile(x.p95_ns, x.percentiles_exact);
        out.push(side_by_side(
            "SERVICE  STATE",
            &services,
            &[("COUNT", &count), ("P50", &p50), ("P95", &p95)],
            false,
            |k| (usize::from(k.starts_with(NO_CONTEXT)), k.to_owned()),
        ));
    }

    type Cmd<'a> = &'a super::ProcessStats;
    let commands = per_robot(fleet, |r| {
        r.system_resources
            .iter()
            .flat_map(|s| &s.commands)
            .map(|c| (c.command.clone(), c))
            .collect()
    });
    out.push(Block::Blank);
    out.push(Block::Line("processes per command".into()));
    let cpu = |c: &Cmd<'_>| format!("{:.2} s", c.cpu_seconds);
    let mem = |c: &Cmd<'_>| format!("{:.2} %", c.mean_memory_percent);
    let trend = |c: &Cmd<'_>| c.memory_trend.label().to_owned();
    out.push(side_by_side(
        "COMMAND",
        &commands,
        &[("CPU", &cpu), ("MEM", &mem), ("TREND", &trend)],
        true,
        |k| (0, k.to_owned()),
    ));
    for (name, report) in &fleet.robots {
        if report.malformed_lines > 0 {
            out.push(Block::Blank);
            out.push(Block::Line(format!(
                "{name}: {} malformed lines skipped (listed on stderr)",
                report.malformed_lines
            )));
        }
    }
    out
}
