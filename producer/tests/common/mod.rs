//! Helpers shared by the producer's test binaries (each includes it with `mod common`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use perf_producer::{Config, Tracker};
use perf_ring::{ConsumerRing, Record};

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

/// Every published record of the ring at `path`, with the ring's state names.
pub fn records(path: &Path) -> (Vec<Record>, Vec<String>) {
    let mut consumer = ConsumerRing::open(path).unwrap();
    let mut out = Vec::new();
    while consumer.read_batch(&mut out, 1 << 16).unwrap() > 0 {}
    (out, consumer.info().states.clone())
}

/// Ring files in `dir`, sorted.
pub fn rings(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ring"))
        .collect();
    v.sort();
    v
}

/// The kernel tid of the calling thread.
pub fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

/// CLOCK_REALTIME now, ns.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
