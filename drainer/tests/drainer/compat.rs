//! The same records give the same bytes as the Python package.

use perf_ring::ProducerRing;
use perf_testkit::{compat, record, stderr, stdout};

#[test]
fn compat_records_through_a_real_ring_give_the_python_bytes() {
    let dirs = crate::dirs();
    let states = compat::states();
    let ring = ProducerRing::create(&dirs.shm, "robot-server", &states, 64).unwrap();
    // The rows of the fixture, in order; each state's index is its row's.
    let rows = compat::robot_activity();
    for (state, row) in rows.iter().enumerate() {
        ring.push(&record(state as u32, row.start, row.duration))
            .unwrap();
    }
    let out = dirs.once();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("drained {} rows from 1 rings into ", rows.len())),
        "{}",
        stdout(&out)
    );
    assert_eq!(stdout(&out).lines().count(), 1);
    assert_eq!(dirs.csv(), compat::bytes("robot_activity_data"));
    assert_eq!(
        std::fs::read(dirs.storage.join("robot_activity_data_headers")).unwrap(),
        compat::bytes("robot_activity_data_headers")
    );

    // A live producer's ring stays; draining again adds nothing.
    assert!(ring.path().exists());
    let out = dirs.once();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dirs.csv(), compat::bytes("robot_activity_data"));
    assert_eq!(ring.counters().released, rows.len() as u64);
}
