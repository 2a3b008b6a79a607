//! A ring file renamed over the path of a ring being drained: both rings are drained to
//! their end, exactly once, and only a file the path still names is removed.

use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::{count, record, wait_for};

const STATES: &[&str] = &["CALIBRATING"];

fn push(ring: &ProducerRing, ids: std::ops::Range<u64>) {
    for i in ids {
        ring.push(&record(0, i, i)).unwrap();
    }
}

#[test]
fn a_ring_renamed_over_a_drained_one_is_drained_too_and_nothing_twice() {
    let dirs = crate::dirs();
    let elsewhere = dirs.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let a = ProducerRing::create(&dirs.shm, "svc-a", STATES, 64).unwrap();
    let b = ProducerRing::create(&dirs.shm, "svc-b", STATES, 64).unwrap();
    // Made outside the ring directory: the drainer first sees it at a's path.
    let c = ProducerRing::create(&elsewhere, "svc-c", STATES, 64).unwrap();
    push(&a, 0..10);
    push(&b, 100..110);
    push(&c, 200..210);
    let daemon = dirs.daemon("0.05");
    wait_for("a's and b's rows", Duration::from_secs(10), || {
        dirs.rows().len() == 20
    });

    // c over a: a lives on (its producer and the drainer both map it), c is new.
    std::fs::rename(c.path(), a.path()).unwrap();
    push(&a, 10..15);
    push(&c, 210..215);
    let ok = perf_testkit::wait_until(Duration::from_secs(10), || dirs.rows().len() == 40);
    assert!(ok, "{} rows\n{}", dirs.rows().len(), daemon.log_text());

    // b, a ring being drained, over c: b is followed to its new name, c lives on.
    std::fs::rename(b.path(), a.path()).unwrap();
    push(&b, 110..115);
    push(&c, 215..220);
    wait_for(
        "the rows after the second rename",
        Duration::from_secs(10),
        || dirs.rows().len() == 50,
    );
    let at_a = a.path().to_path_buf();
    drop((a, b, c));
    wait_for("the finished ring removed", Duration::from_secs(10), || {
        !at_a.exists()
    });
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");

    let mut got: Vec<u64> = dirs.rows().iter().map(|r| r.2).collect();
    got.sort_unstable();
    let want: Vec<u64> = (0..15).chain(100..115).chain(200..220).collect();
    assert_eq!(got, want, "{log:#?}");
    assert!(dirs.rings().is_empty(), "{:?}", dirs.rings());
    // b was removed by its new name; a and c, renamed over, were left alone, and nothing
    // claims a file it did not remove.
    assert_eq!(count(&log, "finished and removed"), 1, "{log:#?}");
    assert_eq!(count(&log, "which is left alone"), 2, "{log:#?}");
    assert_eq!(count(&log, "cannot be removed"), 0, "{log:#?}");
    assert_eq!(count(&log, "cannot remove"), 0, "{log:#?}");
    assert_eq!(count(&log, "was renamed to"), 1, "{log:#?}");
}
