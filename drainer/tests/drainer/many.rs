//! More rings than descriptors: under a soft and hard `RLIMIT_NOFILE` of 256, 1,100
//! finished rings (more than the 1,024 a process may map at once, too) all drain, exactly
//! once, and are removed.

use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::{count, limit_open_files, output_within, record, stderr, stdout};

const RINGS: u64 = 1_100;
const PER_RING: u64 = 5;
const NOFILE: u64 = 256;

#[test]
fn more_finished_rings_than_descriptors_all_drain() {
    let dirs = crate::dirs();
    for r in 0..RINGS {
        let ring = ProducerRing::create(&dirs.shm, "many", &["CALIBRATING"], 8).unwrap();
        for i in 0..PER_RING {
            let id = r * PER_RING + i;
            ring.push(&record(0, id, id)).unwrap();
        }
        // Dropped: its producer is gone, the ring waits to be drained.
    }
    let mut cmd = dirs.drainer_cmd(&["once", "--log-level", "debug"]);
    limit_open_files(&mut cmd, NOFILE);
    let out = output_within(cmd, Duration::from_secs(120));
    let log: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut got: Vec<u64> = dirs.rows().iter().map(|r| r.2).collect();
    got.sort_unstable();
    assert_eq!(got.len() as u64, RINGS * PER_RING, "{}", stdout(&out));
    assert_eq!(got, (0..RINGS * PER_RING).collect::<Vec<_>>());
    assert!(dirs.rings().is_empty(), "{} rings left", dirs.rings().len());
    assert_eq!(count(&log, "finished and removed"), RINGS as usize);
    // Past the mapping table, the rest waited for the first ones to finish (said once).
    assert_eq!(count(&log, "wait to be drained"), 1, "{log:#?}");
    assert_eq!(count(&log, "skipping"), 0, "{log:#?}");
    assert_eq!(count(&log, "Too many open files"), 0, "{log:#?}");
}
