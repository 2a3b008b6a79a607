//! Full and read-only storage, on a real (tmpfs) file system: records wait in the rings and
//! arrive once the storage recovers, without a restart.

use std::path::Path;
use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::{count, record, wait_for, Dirs, Tmpfs};

/// The kit's tmpfs on `at`, or `None` (and a `SKIPPED` line) where mounting is refused.
fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
    Tmpfs::mount(at, size)
        .map_err(|e| {
            eprintln!(
                "SKIPPED: {e}; run as root where mount is permitted to cover full/read-only storage"
            )
        })
        .ok()
}

/// The durations in the CSV, sorted, after checking the context table has the same rows.
fn durations(dirs: &Dirs) -> Vec<u64> {
    let mut d: Vec<u64> = dirs.rows_in_both().0.iter().map(|r| r.2).collect();
    d.sort_unstable();
    d
}

#[test]
fn full_then_read_only_storage_keeps_records_and_recovers() {
    let dirs = crate::dirs();
    // Room for both tables' 5,800 rows.
    let Some(fs) = mount(&dirs.storage, "1m") else {
        return;
    };
    let ring = ProducerRing::create(&dirs.shm, "svc", &["CALIBRATING"], 1 << 14).unwrap();
    let daemon = dirs.daemon("0.02");
    let mut next = 0u64;
    let mut push = |n: u64| {
        for _ in 0..n {
            ring.push(&record(0, next, next)).unwrap();
            next += 1;
        }
    };
    push(100);
    // Committed, not just appended: the rows are released only after both tables and the
    // checkpoint are durable. Filling the disk between the two appends, or before the
    // checkpoint, would roll the round back below the lengths taken here.
    wait_for("first rows committed", Duration::from_secs(10), || {
        ring.counters().released == 100
    });
    assert_eq!(dirs.rows().len(), 100);

    // Full: nothing is consumed while it lasts, the cause is logged once.
    let filler = fs.fill("filler", 0);
    let csv_len = dirs.csv().len();
    let context_len = dirs.context_csv().len();
    push(5_000);
    daemon.wait_log("storage is full", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    // Each retry may append what fits in the last page's slack before it fails, and cuts
    // that back at once: the files are back at their committed length between retries
    // (a look in the instant between, which emulation makes long, sees the partial append).
    wait_for(
        "the partial appends cut back",
        Duration::from_secs(5),
        || dirs.csv().len() == csv_len && dirs.context_csv().len() == context_len,
    );
    assert_eq!(ring.counters().released, 100);
    assert_eq!(
        count(&daemon.log(), "storage is full"),
        1,
        "{}",
        daemon.log_text()
    );

    std::fs::remove_file(filler).unwrap();
    wait_for(
        "rows after the disk was freed",
        Duration::from_secs(10),
        // Complete rows only: a round that did not fit is cut back after its write, and a
        // look in between sees half a row.
        || dirs.complete_rows() == 5_100,
    );
    daemon.wait_log("storage is writable again", Duration::from_secs(5));
    wait_for("the rows committed", Duration::from_secs(10), || {
        ring.counters().released == 5_100
    });

    // Read-only: the same.
    fs.remount("ro");
    push(700);
    daemon.wait_log("storage is read-only", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dirs.rows().len(), 5_100);
    assert_eq!(ring.counters().released, 5_100);
    assert_eq!(
        count(&daemon.log(), "storage is read-only"),
        1,
        "{}",
        daemon.log_text()
    );
    fs.remount("rw");
    wait_for(
        "rows after remounting read-write",
        Duration::from_secs(10),
        || dirs.complete_rows() == 5_800,
    );

    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert_eq!(durations(&dirs), (0..5_800).collect::<Vec<_>>());
    assert_eq!(ring.counters().released, 5_800);
    drop(fs);
}

#[test]
fn read_only_storage_at_start_is_waited_for() {
    let dirs = crate::dirs();
    let Some(fs) = mount(&dirs.storage, "256k") else {
        return;
    };
    let ring = ProducerRing::create(&dirs.shm, "svc", &["CALIBRATING"], 1 << 10).unwrap();
    for i in 0..10 {
        ring.push(&record(0, i, i)).unwrap();
    }
    // A first drain creates the lock file, headers, CSV and checkpoint.
    assert!(dirs.once().status.success());
    for i in 10..30 {
        ring.push(&record(0, i, i)).unwrap();
    }
    fs.remount("ro");
    // `once` cannot commit: one line naming the cause, exit 1, nothing consumed.
    let out = perf_testkit::output_within(
        dirs.drainer_cmd(&["once", "--log-level", "warning"]),
        Duration::from_secs(30),
    );
    let err = perf_testkit::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("storage is read-only"), "{err}");
    assert_eq!(ring.counters().released, 10);

    let daemon = dirs.daemon("0.02");
    daemon.wait_log("storage is read-only", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ring.counters().released, 10);
    fs.remount("rw");
    wait_for("rows", Duration::from_secs(10), || dirs.rows().len() == 30);
    let (status, _) = daemon.terminate();
    assert_eq!(status.code(), Some(0));
    assert_eq!(durations(&dirs), (0..30).collect::<Vec<_>>());
    drop(fs);
}

#[test]
fn the_very_first_start_on_read_only_storage_waits_too() {
    let dirs = crate::dirs();
    let Some(fs) = mount(&dirs.storage, "256k") else {
        return;
    };
    // Read-only before the drainer ever ran: no lock file, no checkpoint, no CSV.
    fs.remount("ro");
    let ring = ProducerRing::create(&dirs.shm, "svc", &["CALIBRATING"], 1 << 10).unwrap();
    for i in 0..25 {
        ring.push(&record(0, i, i)).unwrap();
    }
    let daemon = dirs.daemon("0.02");
    daemon.wait_log("records stay in the rings", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ring.counters().released, 0);
    assert_eq!(
        count(&daemon.log(), "records stay in the rings"),
        1,
        "logged once a minute at most: {}",
        daemon.log_text()
    );
    fs.remount("rw");
    wait_for("rows", Duration::from_secs(10), || dirs.rows().len() == 25);
    daemon.wait_log("storage usable after", Duration::from_secs(5));
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert_eq!(durations(&dirs), (0..25).collect::<Vec<_>>());
    drop(fs);
}
