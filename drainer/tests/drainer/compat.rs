//! The same records give the same bytes as the Python package.

use std::path::PathBuf;

use perf_ring::ProducerRing;

use crate::util::{record, stderr, stdout, Dirs};

const STATES: &[&str] = &[
    "ANALYZING_PROTOCOL",
    "GETTING_CACHED_ANALYSIS",
    "RUNNING_PROTOCOL",
    "CALIBRATING",
    "ROBOT_STARTING_UP",
    "ROBOT_SHUTTING_DOWN",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../table/tests/compat")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn compat_records_through_a_real_ring_give_the_python_bytes() {
    let dirs = Dirs::new();
    let ring = ProducerRing::create(&dirs.shm, "robot-server", STATES, 64).unwrap();
    // The six records of ../shared/compat/README.md, in order.
    let records = [
        (0, 1722450000123456789, 2500000000),
        (1, 1722450003000000000, 1234567),
        (2, 1722450004000000001, 0),
        (3, 1722450005999999999, u64::MAX),
        (4, 0, 1),
        (5, 1722450100000000000, 42),
    ];
    for (state, start, duration) in records {
        ring.push(&record(state, start, duration)).unwrap();
    }
    let out = dirs.once();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("drained 6 rows from 1 rings into "),
        "{}",
        stdout(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 1);
    assert_eq!(dirs.csv(), fixture("robot_activity_data"));
    assert_eq!(
        std::fs::read(dirs.storage.join("robot_activity_data_headers")).unwrap(),
        fixture("robot_activity_data_headers")
    );

    // A live producer's ring stays; draining again adds nothing.
    assert!(ring.path().exists());
    let out = dirs.once();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dirs.csv(), fixture("robot_activity_data"));
    assert_eq!(ring.counters().released, 6);
}
