//! What only the sampler's tests need: the binary, children whose command line is in
//! place, `system_resource_data` rows. Markers, reaped children and waiting come from the
//! workspace's test kit, `perf-testkit`.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

pub use perf_testkit::{marker, wait_until, Reaped};

/// The daemon binary built by this package.
pub const BIN: &str = env!("CARGO_BIN_EXE_system-resource-tracker");

/// Waits until the child's command line contains `marker`.
///
/// `spawn` returns once the kernel has closed the child's close-on-exec descriptors, which
/// happens before the new program's arguments are in place: for a moment
/// `/proc/PID/cmdline` is empty.
pub fn exec_done(child: Reaped, marker: &str) -> Reaped {
    let path = format!("/proc/{}/cmdline", child.pid());
    let done = wait_until(Duration::from_secs(10), || {
        std::fs::read(&path).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    });
    assert!(done, "child {} never showed {marker}", child.pid());
    child
}

/// `sh -c SCRIPT MARKER ARGS...`: the marker becomes part of the command line.
pub fn sh(script: &str, marker: &str, args: &[&str]) -> Reaped {
    let child = Reaped(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(marker)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh"),
    );
    exec_done(child, marker)
}

/// Parses the CSV rows of a `system_resource_data` file.
pub fn rows(data: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(data)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}
