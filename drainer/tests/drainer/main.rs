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

/// Starts this test binary again to run only the ignored test `test` (a child process for
/// a test to kill), with `env` set to `dir`, and waits for its `READY <path>` line.
fn spawn_self(
    test: &str,
    env: &str,
    dir: &std::path::Path,
) -> (std::process::Child, std::path::PathBuf) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--nocapture"])
        .env(env, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let path = stdout
        .lines()
        .find_map(|line| line.unwrap().strip_prefix("READY ").map(Into::into))
        .unwrap_or_else(|| panic!("{test} did not start"));
    (child, path)
}
