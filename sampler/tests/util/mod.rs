//! Helpers shared by the integration tests: the binary, unique markers, children that are
//! killed and reaped even when a test fails.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The daemon binary built by this package.
pub const BIN: &str = env!("CARGO_BIN_EXE_system-resource-tracker");

/// A string no other process on the machine has in its command line.
pub fn marker(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "srt-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A child process that is killed and reaped on drop.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Reaped {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).unwrap()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the child's command line contains `marker`.
///
/// `spawn` returns once the kernel has closed the child's close-on-exec descriptors, which
/// happens before the new program's arguments are in place: for a moment
/// `/proc/PID/cmdline` is empty.
pub fn exec_done(child: Reaped, marker: &str) -> Reaped {
    let path = format!("/proc/{}/cmdline", child.pid());
    let done = wait_for(10, || {
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

/// Waits until `cond` holds, up to `secs` seconds.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}
