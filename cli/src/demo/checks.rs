//! The end of the demo: drain what the services left until no ring is left, check that
//! every record the services committed is in the CSV exactly once, and put the report
//! together.

use std::fmt::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use perf_drainer::scan::AllowedUids;
use perf_drainer::Drainer;

use super::daemons::{Counters, FINAL_DRAIN_LIMIT};
use super::services::Services;
use super::DemoError;

/// Drains until every ring (all producers are gone now) is drained and removed, or
/// [`FINAL_DRAIN_LIMIT`] passes. Returns how many rings are left (`usize::MAX`: unknown).
pub(super) fn drain_to_the_end(
    drainer: &mut Drainer,
    counters: &Counters,
    ring_dir: &Path,
    out: &Path,
    allowed: &AllowedUids,
    problems: &mut Vec<String>,
) -> usize {
    let deadline = Instant::now() + FINAL_DRAIN_LIMIT;
    let mut left = usize::MAX;
    while Instant::now() < deadline {
        match drainer.cycle(deadline) {
            Ok(r) => {
                counters.rows.fetch_add(r.written, Ordering::Relaxed);
            }
            Err(e) => problems.push(format!("final drain failed: {e}")),
        }
        left = perf_drainer::status::collect(ring_dir, out, allowed)
            .map_or(usize::MAX, |s| s.rings.len());
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    left
}

/// The services table and the exactly-once check; failed checks go to `problems`.
pub(super) fn summarise(
    services: &Services,
    counters: &Counters,
    rings_left: usize,
    ring_dir: &Path,
    out: &Path,
    problems: &mut Vec<String>,
) -> String {
    let mut text = String::new();
    let mut committed = 0u64;
    let mut crashed = Vec::new();
    let _ = writeln!(
        text,
        "{:<20} {:>8} {:>7} {:>9} {:>7}  END",
        "SERVICE", "PID", "THREADS", "COMMITTED", "DROPPED"
    );
    for s in &services.0 {
        let (outcome, status) = match &s.ended {
            Some((o, st)) => (o.as_ref(), Some(*st)),
            None => (None, None),
        };
        let end = match status {
            Some(st) if st.signal() == Some(libc::SIGKILL) && s.crashes => {
                "crashed (SIGKILL) mid-run".to_string()
            }
            Some(st) if st.success() && !s.crashes => "exited normally".to_string(),
            Some(st) => {
                problems.push(format!("{} ended unexpectedly: {st}", s.name));
                format!("unexpected: {st}")
            }
            None => "unknown".into(),
        };
        let Some(o) = outcome else {
            problems.push(format!("{} did not report what it committed", s.name));
            continue;
        };
        committed += o.committed;
        if s.crashes {
            crashed.push(format!("{} by the crashed {}", o.committed, s.name));
        }
        let _ = writeln!(
            text,
            "{:<20} {:>8} {:>7} {:>9} {:>7}  {end}",
            s.name, o.pid, s.threads, o.committed, o.dropped
        );
    }
    let written = counters.rows.load(Ordering::Relaxed);
    let table = out.join(perf_table::ROBOT_ACTIVITY.name);
    let _ = writeln!(
        text,
        "\ncommitted: {committed} records by {} services ({})",
        services.0.len(),
        crashed.join(", ")
    );
    let _ = writeln!(
        text,
        "written: {written} rows to {}{}",
        table.display(),
        if written == committed {
            ", each committed record exactly once"
        } else {
            ""
        }
    );
    if written != committed {
        problems.push(format!(
            "the services committed {committed} records but the drainer wrote {written} rows"
        ));
    }
    let _ = writeln!(
        text,
        "sampled: {} rows in {} samples to {}",
        counters.sample_rows.load(Ordering::Relaxed),
        counters.samples.load(Ordering::Relaxed),
        out.join(perf_table::SYSTEM_RESOURCE.name).display()
    );
    let _ = writeln!(
        text,
        "rings left behind: {} (ring directory {} removed)",
        if rings_left == usize::MAX {
            "unknown".to_string()
        } else {
            rings_left.to_string()
        },
        ring_dir.display()
    );
    if rings_left != 0 {
        problems.push(format!(
            "{rings_left} rings were left in {}",
            ring_dir.display()
        ));
    }
    text
}

/// The page of plots the demo writes beside the CSVs.
pub(super) const PAGE: &str = "report.html";

/// The report over what this run wrote (records since `since_ns`), printed and as a page
/// of plots ([`PAGE`] beside the CSVs), the files and what to try next; an error if the
/// files do not read back cleanly.
pub(super) fn report(out: &Path, since_ns: u64) -> Result<String, DemoError> {
    let mut text = String::new();
    let window = crate::window::Window {
        since: Some(since_ns),
        until: None,
    };
    let mut report_problems = Vec::new();
    let report =
        match crate::report::build(out, window, &mut |p| report_problems.push(p.to_string())) {
            Ok(report) => report,
            Err(e) => return Err(DemoError::Check(format!("report: {e}"))),
        };
    text.push_str(&crate::report::render_text(&report));
    let page = out.join(PAGE);
    let fleet = crate::report::Fleet {
        robots: vec![(crate::report::default_name(out), report)],
    };
    crate::report::html::write(&page, &fleet).map_err(|source| DemoError::Setup {
        what: "cannot write the page of plots",
        path: page.clone(),
        source,
    })?;
    if !report_problems.is_empty() {
        return Err(DemoError::Check(format!(
            "the files the demo wrote have malformed lines: {}",
            report_problems.join("; ")
        )));
    }
    let _ = writeln!(text, "\nfiles written:");
    for table in [
        perf_table::ROBOT_ACTIVITY,
        perf_table::ROBOT_ACTIVITY_CONTEXT,
        perf_table::SYSTEM_RESOURCE,
    ] {
        let _ = writeln!(text, "  {}", out.join(table.name).display());
        let _ = writeln!(
            text,
            "  {}",
            out.join(format!("{}_headers", table.name)).display()
        );
    }
    let _ = writeln!(
        text,
        "  {}   (this run's report as a page of plots: open it in a browser)",
        page.display()
    );
    let _ = writeln!(
        text,
        "\nnext: perf-metrics report {0}\n      perf-metrics export --chrome-trace trace.json {0}   (open in ui.perfetto.dev)",
        out.display()
    );
    Ok(text)
}
