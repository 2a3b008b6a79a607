//! Rings coming and going while the daemon runs; shutdown; status.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use perf_ring::ProducerRing;

use perf_testkit::{count, record, stderr, stdout, wait_for, Dirs};

const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING"];
const CHILD_ENV: &str = "DRAINER_TEST_CHILD_DIR";
const CHILD_RECORDS: u64 = 500;
/// Offset of the ring's claimed counter (`tail`) in the file (ring FORMAT.md).
const TAIL_OFFSET: u64 = 2176;

#[test]
fn new_rings_are_found_while_running_and_sigterm_exits_zero() {
    let dirs = crate::dirs();
    let daemon = dirs.daemon("0.02");
    daemon.wait_log("draining rings in", Duration::from_secs(10));

    let a = ProducerRing::create(&dirs.shm, "svc-a", STATES, 1024).unwrap();
    for i in 0..100 {
        a.push(&record(0, i, i)).unwrap();
    }
    wait_for("ring a's rows", Duration::from_secs(10), || {
        dirs.rows().len() == 100
    });

    let b = ProducerRing::create(&dirs.shm, "svc-b", STATES, 1024).unwrap();
    for i in 100..250 {
        b.push(&record(1, i, i)).unwrap();
    }
    for i in 250..300 {
        a.push(&record(0, i, i)).unwrap();
    }
    wait_for("ring b's rows", Duration::from_secs(10), || {
        dirs.rows().len() == 300
    });

    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    let mut durations: Vec<u64> = dirs.rows().iter().map(|r| r.2).collect();
    durations.sort_unstable();
    assert_eq!(durations, (0..300).collect::<Vec<_>>());
    assert_eq!(count(&log, "draining "), 3, "{log:#?}"); // start-up line + one per ring
                                                         // Both producers live: their rings stay.
    assert!(a.path().exists() && b.path().exists());
}

#[test]
fn sigterm_drains_once_more_instead_of_waiting_for_the_interval() {
    let dirs = crate::dirs();
    let ring = ProducerRing::create(&dirs.shm, "svc", STATES, 1024).unwrap();
    let daemon = dirs.daemon("30");
    daemon.wait_log(
        &format!("draining {}", ring.path().display()),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..42 {
        ring.push(&record(1, i, i)).unwrap();
    }
    let start = Instant::now();
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(dirs.rows().len(), 42, "{log:#?}");
    assert_eq!(count(&log, "final drain done: 42 rows"), 1, "{log:#?}");
}

/// Not a test: the producer process of `dead_producer_is_drained_then_removed`, started as
/// this test binary with `--ignored --exact`.
#[test]
#[ignore = "helper process for dead_producer_is_drained_then_removed"]
fn child_producer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let ring = ProducerRing::create(&PathBuf::from(dir), "child", STATES, 1024).unwrap();
    for i in 0..CHILD_RECORDS {
        ring.push(&record((i % 2) as u32, 1_000 + i, i)).unwrap();
    }
    // A record whose state index is outside the table: skipped and counted.
    ring.push(&record(99, 0, 0)).unwrap();
    // Three positions claimed and never published, as if three threads died mid-record.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ring.path())
        .unwrap();
    let claimed = ring.counters().claimed;
    file.write_all_at(&(claimed + 3).to_le_bytes(), TAIL_OFFSET)
        .unwrap();
    println!("READY {}", ring.path().display());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn dead_producer_is_drained_then_removed() {
    let dirs = crate::dirs();
    let daemon = dirs.daemon("0.02");
    let (mut child, path) = crate::spawn_self("lifecycle::child_producer", CHILD_ENV, &dirs.shm);
    wait_for("the child's rows", Duration::from_secs(10), || {
        dirs.rows().len() == CHILD_RECORDS as usize
    });
    // Alive: the ring stays, waiting at the unpublished claims.
    std::thread::sleep(Duration::from_millis(100));
    assert!(path.exists());

    child.kill().unwrap();
    child.wait().unwrap();
    wait_for("the dead ring's removal", Duration::from_secs(10), || {
        !path.exists()
    });
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0));
    let rows = dirs.rows();
    assert_eq!(rows.len(), CHILD_RECORDS as usize);
    let mut durations: Vec<u64> = rows.iter().map(|r| r.2).collect();
    durations.sort_unstable();
    assert_eq!(durations, (0..CHILD_RECORDS).collect::<Vec<_>>());
    let books = format!(
        "finished and removed: committed {} = written {CHILD_RECORDS} + dropped 0 + invalid 1 + abandoned 3",
        CHILD_RECORDS + 4
    );
    assert_eq!(count(&log, &books), 1, "{log:#?}");
    assert_eq!(count(&log, "state index 99"), 1, "{log:#?}");
    assert_eq!(count(&log, "does NOT add up"), 0, "{log:#?}");
    // The checkpoint forgot it.
    let ckpt = std::fs::read_to_string(dirs.storage.join(".perf-drainer.checkpoint")).unwrap();
    let ckpt: serde_json::Value = serde_json::from_str(&ckpt).unwrap();
    assert_eq!(ckpt["rings"].as_object().unwrap().len(), 0, "{ckpt}");
}

#[test]
fn status_shows_rings_as_a_table_and_as_json() {
    let dirs = crate::dirs();
    let ring = ProducerRing::create(&dirs.shm, "robot-server", STATES, 8).unwrap();
    let mut dropped = 0;
    for i in 0..10 {
        if ring.push(&record(0, i, i)).is_err() {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 2);
    std::fs::write(dirs.shm.join("junk"), b"not a ring").unwrap();

    let out = perf_testkit::output_within(dirs.drainer_cmd(&["status"]), Duration::from_secs(10));
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    for col in [
        "FILE",
        "SERVICE",
        "PID",
        "ALIVE",
        "CAPACITY",
        "IN RING",
        "COMMITTED",
        "DROPPED",
        "VALID",
    ] {
        assert!(lines[0].contains(col), "{table}");
    }
    assert!(
        lines[1].starts_with("junk ") && lines[1].contains("no: not a valid ring"),
        "{table}"
    );
    let ring_line: Vec<&str> = lines[2].split_whitespace().collect();
    let pid = std::process::id().to_string();
    assert_eq!(
        &ring_line[1..],
        &[
            "robot-server",
            pid.as_str(),
            "yes",
            "8",
            "8",
            "10",
            "2",
            "yes"
        ],
        "{table}"
    );

    let json = |dirs: &Dirs| {
        let out = perf_testkit::output_within(
            dirs.drainer_cmd(&["status", "--json"]),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = json(&dirs);
    let r = &v["rings"][1];
    assert_eq!(r["valid"], true);
    assert_eq!(r["service"], "robot-server");
    assert_eq!(r["alive"], true);
    assert_eq!(r["in_ring"], 8);
    assert_eq!(r["committed"], 10);
    assert_eq!(r["dropped"], 2);
    assert_eq!(r["written"], serde_json::Value::Null);
    assert_eq!(v["rings"][0]["valid"], false);
    assert!(v["rings"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("not a valid ring"));
    assert_eq!(v["rings"][0]["skip"]["kind"], "invalid");

    assert!(dirs.once().status.success());
    let v = json(&dirs);
    let r = &v["rings"][1];
    assert_eq!(r["in_ring"], 0);
    assert_eq!(r["written"], 8);
    assert_eq!(r["committed"], 10);
}
