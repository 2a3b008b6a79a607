//! Integration tests of the `perf-drainer` binary (one test binary, one module per area).
//! The helpers are the workspace's test kit, `perf-testkit`.

mod cli;
mod compat;
mod context;
mod crash;
mod hostile;
mod idle;
mod lifecycle;
mod many;
mod metrics;
mod notify;
mod replaced;
mod rotation;
mod stale;
mod storage;

/// The daemon this package builds.
const BIN: &str = env!("CARGO_BIN_EXE_perf-drainer");

/// A ring directory and a storage directory of the test's own, for this package's drainer.
fn dirs() -> perf_testkit::Dirs {
    perf_testkit::Dirs::new().drainer(BIN)
}
