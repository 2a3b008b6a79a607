//! The one exactly-once verdict every drain test ends with.

use std::process::ExitStatus;

use perf_testkit::Dirs;

use super::{alarming, History, LoadReport, Tally};

/// The verdict every drain test ends with: the drainer caught up (`drained`, within the
/// test's deadline) and exited cleanly, logged nothing alarming, the CSV (its whole
/// history, rotated files included) holds every committed record of `reports` exactly
/// once, and the context table holds the same rows with consistent context.
pub fn assert_drained_exactly_once(
    dirs: &Dirs,
    drained: bool,
    status: ExitStatus,
    log: &[String],
    tally: &Tally,
    reports: &[LoadReport],
) {
    let history = super::history(&dirs.storage, (&[], &[]));
    assert_exactly_once_in(dirs, &history, drained, status, log, tally, reports);
}

/// [`assert_drained_exactly_once`] over `history` (files rotated away by the test too).
pub fn assert_exactly_once_in(
    dirs: &Dirs,
    history: &History,
    drained: bool,
    status: ExitStatus,
    log: &[String],
    tally: &Tally,
    reports: &[LoadReport],
) {
    assert!(
        drained,
        "not drained in time: {} rows, rings left {:?}",
        super::complete_rows(&dirs.storage),
        dirs.rings()
    );
    assert!(status.success(), "drainer exit {status:?}");
    assert!(alarming(log).is_empty(), "{:#?}", alarming(log));
    assert!(tally.clean(), "{}", tally.describe());
    let committed: Vec<(u32, u64)> = reports.iter().map(|r| (r.run_id, r.committed)).collect();
    let csv = String::from_utf8_lossy(&history.compat);
    if let Err(e) = crate::load::verify_csv(&csv, &committed) {
        panic!("CSV does not hold every committed record exactly once: {e}");
    }
    if let Err(e) = crate::context::verify_context(&history.compat, &history.context) {
        panic!("the context table does not hold the CSV's rows with their context: {e}");
    }
}
