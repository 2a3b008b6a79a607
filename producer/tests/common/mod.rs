//! What only the producer's test binaries share (each includes it with `mod common`); ring
//! files and their records come from the workspace's test kit, `perf-testkit`.

#![allow(dead_code)]

use std::path::Path;

use perf_producer::{Config, Tracker};

/// A tracker that is on, with its ring in `dir`.
pub fn tracker_in(dir: &Path, capacity: u64) -> Tracker {
    let mut config = Config::new("test-svc");
    config.enabled = Some(true);
    config.shm_dir = Some(dir.to_path_buf());
    config.capacity = Some(capacity);
    let tracker = Tracker::new(config);
    assert!(tracker.is_enabled(), "{:?}", tracker.setup_error());
    tracker
}

/// The kernel tid of the calling thread.
pub fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}
