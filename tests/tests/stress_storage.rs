//! Storage faults: the storage directory is a small tmpfs that is repeatedly filled (to
//! the last page, or leaving a few KiB so that appends and checkpoints fail half-way),
//! remounted read-only, and given back, at random, while `perf-load` processes keep
//! writing and the drainer is now and then SIGKILLed mid-fault. Once space returns
//! everything arrives by itself: every record committed to a ring is in the CSV exactly
//! once. Half the drainers started cap the tables at 256 KiB (`--max-file-size`), so
//! rotations meet the faults too (a rename on read-only storage, a compression with no
//! room); the check then reads the rotated files as well. Skipped with a printed reason
//! where mounting is not permitted.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use perf_testkit::{count, wait_until, Dirs, Rng, Tmpfs};
use perf_tests::stress::{
    assert_drained_exactly_once, complete_rows, dirs, history, load_report_within, scale, scaled,
    LoadSpec, Summary, Tally, Waves,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

/// `perf-drainer run`, rotating its tables at 256 KiB (every file kept) when `cap`.
fn drainer(dirs: &Dirs, cap: bool) -> perf_testkit::Daemon {
    dirs.daemon_with("0.02", |c| {
        if cap {
            c.args(["--max-file-size", "256K", "--rotated-files", "1000000"]);
        }
    })
}

#[test]
fn stress_storage_full_and_read_only_then_recovery() {
    let mut rng = Rng::from_env("stress_storage");
    let mut summary = Summary::new("stress_storage", rng.seed());
    let dirs = dirs();
    // Room for all the rows in both tables (about 5 MiB per unit of scale in
    // robot_activity_data and 7 MiB in robot_activity_context_data, which the drainer
    // writes by default) plus a drain round of slack.
    let fs = match Tmpfs::mount(&dirs.storage, &format!("{}m", 20 * scale())) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED stress_storage: {why}; run as root where mount is permitted");
            summary.note = format!("SKIPPED: {why}");
            summary.report();
            return;
        }
    };

    let producers = Waves::start(
        Path::new(PERF_LOAD),
        &dirs.shm,
        rng.fork(),
        (10, 100),
        |rng| {
            vec![LoadSpec {
                service: "store".into(),
                threads: rng.range(1, 3) as u32,
                records: rng.range(100, 2_000) as u32,
                // Big enough to wait out a fault of a second or two without dropping.
                capacity: 1 << 16,
                hold_ms: rng.range(0, 300),
                run_id: 0,
            }]
        },
    );

    let mut log = Vec::new();
    let mut daemon = Some(drainer(&dirs, rng.chance(1, 2)));
    // Let the first start create the lock file before the first fault (a first start on
    // read-only storage waits for it; drainer/tests/drainer/storage.rs covers that).
    assert!(
        wait_until(Duration::from_secs(30), || daemon
            .as_ref()
            .is_some_and(|d| d.logged("draining rings in"))),
        "drainer did not start"
    );
    let (mut full, mut nearly, mut ro, mut kills) = (0, 0, 0, 0);
    for _ in 0..scaled(12) {
        summary.trials += 1;
        // A fault...
        let filler = match rng.below(3) {
            0 => {
                full += 1;
                Some(fs.fill("filler", 0))
            }
            1 => {
                nearly += 1;
                Some(fs.fill("filler", rng.range(1, 16) * 4096))
            }
            _ => {
                ro += 1;
                fs.remount("ro");
                None
            }
        };
        std::thread::sleep(rng.millis(50, 600));
        // ...during which the drainer may die and come back.
        if rng.chance(1, 3) {
            if let Some(d) = daemon.take() {
                log.extend(d.kill());
            }
            kills += 1;
            daemon = Some(drainer(&dirs, rng.chance(1, 2)));
            std::thread::sleep(rng.millis(20, 300));
        }
        // The drainer waits faults out; it never gives up and exits.
        if let Some(d) = daemon.as_mut() {
            if let Some(status) = d.exited() {
                panic!(
                    "drainer exited ({status:?}) during a storage fault:\n{}",
                    d.log().join("\n")
                );
            }
        }
        // ...then recovery.
        match filler {
            Some(path) => std::fs::remove_file(path).expect("remove filler"),
            None => fs.remount("rw"),
        }
        std::thread::sleep(rng.millis(50, 400));
    }
    let reports = producers.finish();
    let total: u64 = reports.iter().map(|r| r.committed).sum();
    let drained = wait_until(Duration::from_secs(60), || {
        complete_rows(&dirs.storage) as u64 >= total && dirs.rings().is_empty()
    });
    let daemon = daemon.take().expect("a running drainer");
    let (status, last_log) = daemon.terminate_within(Duration::from_secs(30));
    log.extend(last_log);
    summary.rotations = count(&log, "perf_table::table: rotated ") as u64;
    let expected: HashMap<u32, Option<u64>> = reports
        .iter()
        .map(|r| (r.run_id, Some(r.committed)))
        .collect();
    let tally = Tally::of(&history(&dirs.storage, (&[], &[])).compat, &expected);
    summary.kills = kills;
    summary.written = total;
    summary.dropped = reports.iter().map(|r| r.dropped).sum();
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    let said = |s: &str| log.iter().filter(|l| l.contains(s)).count();
    summary.note = format!(
        "faults: {full} full, {nearly} nearly full, {ro} read-only; logged: {} full, {} read-only, {} recovered, {} rotations left to settle later",
        said("storage is full"),
        said("storage is read-only"),
        said("storage is writable again"),
        said("rotated files stay as they are")
    );
    summary.report();

    assert_drained_exactly_once(&dirs, drained, status, &log, &tally, &reports);
    assert_eq!(
        summary.dropped, 0,
        "rings were sized to wait out the faults"
    );
    assert!(
        said("storage is full") + said("storage is read-only") > 0,
        "no fault was ever noticed by the drainer"
    );
    drop(fs);
}

/// Regression: a drain round is one all-or-nothing append of up to `ROUND_RECORDS` rows
/// (about 1.8 MB). It used to fail for good with ENOSPC whenever less than that was free,
/// writing nothing although most of the backlog would fit; rounds now shrink on ENOSPC.
#[test]
fn stress_storage_free_space_smaller_than_a_round_still_drains() {
    let dirs = dirs();
    let fs = match Tmpfs::mount(&dirs.storage, "1m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    // 40000 rows, about 2.2 MB: more than the storage holds, and more than it has free.
    let spec = LoadSpec {
        service: "small".into(),
        threads: 2,
        records: 20_000,
        capacity: 1 << 16,
        hold_ms: 0,
        run_id: 1,
    };
    let r = load_report_within(
        spec.spawn(Path::new(PERF_LOAD), &dirs.shm),
        Duration::from_secs(60),
    );
    assert_eq!(r.committed, 40_000);
    let out = dirs.once_within(Duration::from_secs(60), |_| {});
    let rows = dirs.complete_rows();
    drop(fs);
    assert!(
        rows > 0,
        "1 MiB free, yet not one row written: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
