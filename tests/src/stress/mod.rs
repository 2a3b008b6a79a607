//! What only the reliability suite (`tests/stress_*.rs`) needs, one concern per file: the
//! bounded and long modes ([`scale`]), the summary table ([`summary`]), `perf-load`
//! producers ([`producers`]), the CSV tally that counts lost and duplicated records
//! ([`tally`]), the drainer's books read back from its log ([`books`]), a table's whole
//! history across rotations ([`history`]), and the exactly-once verdict ([`verdict`]).
//!
//! Directories, daemons, commands with a time limit, the tmpfs guard and the seeded
//! generator are the workspace's test kit, `perf-testkit`; [`dirs`] gives a test its
//! directories with the drainer built for it.
//!
//! Environment:
//! - `PERF_STRESS=long` multiplies trials and durations by 10 (`PERF_STRESS_SCALE=N` sets
//!   the factor directly);
//! - `PERF_TEST_SEED=N` (or its older name `PERF_STRESS_SEED`) replays a run (every
//!   randomized test prints its seed);
//! - `PERF_STRESS_SUMMARY=path` appends each test's summary line to `path`.

pub mod books;
pub mod history;
pub mod producers;
pub mod scale;
pub mod summary;
pub mod tally;
pub mod verdict;

pub use books::{alarming, alarming_except, books, Books};
pub use history::{complete_rows, history, History};
pub use producers::{load_report, load_report_within, LoadReport, LoadSpec, Waves};
pub use scale::{scale, scaled};
pub use summary::{Summary, SUMMARY_HEADER};
pub use tally::{well_formed_row, Tally};
pub use verdict::{assert_drained_exactly_once, assert_exactly_once_in};

/// A ring directory and a created storage directory of the test's own, with the
/// `perf-drainer` binary (built on first use) for the kit's drainer commands.
pub fn dirs() -> perf_testkit::Dirs {
    perf_testkit::Dirs::with_storage().drainer(crate::bins::perf_drainer())
}
