//! Records and ring files as tests make and read them.

use std::path::{Path, PathBuf};

use perf_ring::{ConsumerRing, Record};

/// A record of thread 1.
pub fn record(state: u32, start: u64, duration: u64) -> Record {
    Record {
        start_ns: start,
        duration_ns: duration,
        state,
        tid: 1,
    }
}

/// Every published record of the ring at `path` (read, not released), with the ring's
/// state names.
pub fn ring_records(path: &Path) -> (Vec<Record>, Vec<String>) {
    let mut consumer =
        ConsumerRing::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut out = Vec::new();
    while consumer.read_batch(&mut out, 1 << 16).expect("read ring") > 0 {}
    (out, consumer.info().states.clone())
}

/// The `*.ring` files in `dir`, sorted.
pub fn ring_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ring"))
        .collect();
    v.sort();
    v
}

/// CLOCK_REALTIME now, ns.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_ring::ProducerRing;

    #[test]
    fn records_written_come_back_from_the_ring_file() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ProducerRing::create(dir.path(), "kit", &["CALIBRATING"], 8).unwrap();
        ring.push(&record(0, 5, 6)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        assert_eq!(ring_files(dir.path()), vec![ring.path().to_path_buf()]);
        let (records, states) = ring_records(ring.path());
        assert_eq!(records, vec![record(0, 5, 6)]);
        assert_eq!(states, vec!["CALIBRATING".to_owned()]);
    }
}
