//! The one exactly-once verdict every drain test ends with.

use std::process::ExitStatus;

use perf_testkit::Dirs;

use super::{alarming, LoadReport, Tally};

/// The verdict every drain test ends with: the drainer caught up (`drained`, within the
/// test's deadline) and exited cleanly, logged nothing alarming, the CSV holds every
/// committed record of `reports` exactly once, and the context table holds the same rows
/// with consistent context.
pub fn assert_drained_exactly_once(
    dirs: &Dirs,
    drained: bool,
    status: ExitStatus,
    log: &[String],
    tally: &Tally,
    reports: &[LoadReport],
) {
    assert!(
        drained,
        "not drained in time: {} rows, rings left {:?}",
        dirs.complete_rows(),
        dirs.rings()
    );
    assert!(status.success(), "drainer exit {status:?}");
    assert!(alarming(log).is_empty(), "{:#?}", alarming(log));
    assert!(tally.clean(), "{}", tally.describe());
    let committed: Vec<(u32, u64)> = reports.iter().map(|r| (r.run_id, r.committed)).collect();
    if let Err(e) = crate::load::verify_csv(&String::from_utf8_lossy(&dirs.csv()), &committed) {
        panic!("CSV does not hold every committed record exactly once: {e}");
    }
    if let Err(e) = crate::context::verify_context(&dirs.csv(), &dirs.context_csv()) {
        panic!("the context table does not hold the CSV's rows with their context: {e}");
    }
}
