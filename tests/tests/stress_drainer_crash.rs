//! Drainer crashes: `perf-drainer run` SIGKILLed at random instants, or killed by its own
//! failpoints (`PERF_DRAINER_CRASH_AT=after-append|after-sync|after-checkpoint|after-release`
//! or a step of a rotation, at a random pass), and restarted, many times in one run, while
//! `perf-load` processes keep writing and exiting. Most runs cap the tables at a few KiB
//! (`--max-file-size`), so rotations happen every few commits and many kills land inside
//! one. The final history of both tables (rotated files, then the live one) has no partial
//! line, no duplicate and no loss; the checkpoint is valid JSON after every crash; every
//! dead ring ends up removed; no rotation is left unfinished.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use perf_drainer::failpoint::{ENV, POINTS, ROTATION_POINTS};
use perf_table::{archive, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};
use perf_testkit::{count, wait_until, Rng};
use perf_tests::stress::{
    assert_drained_exactly_once, complete_rows, dirs, history, scaled, LoadSpec, Summary, Tally,
    Waves,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

/// Rotated files kept: all of them, so that every record can be looked for.
const KEEP_ALL: &str = "1000000";

/// What of a rotation is unfinished in `dir`: numbered files not yet compressed, and
/// compressions' temporaries. New right after a kill, it means the kill landed inside one.
fn rotation_unfinished(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".gz.tmp"))
        .collect();
    for spec in [&ROBOT_ACTIVITY, &ROBOT_ACTIVITY_CONTEXT] {
        for seg in archive::segments(dir, spec).unwrap() {
            if !seg.compressed {
                names.push(seg.path.display().to_string());
            }
        }
    }
    names.sort();
    names
}

#[test]
fn stress_drainer_crash_restarts_are_exactly_once() {
    let mut rng = Rng::from_env("stress_drainer_crash");
    let mut summary = Summary::new("stress_drainer_crash", rng.seed());
    let dirs = dirs();

    // Producers: waves of perf-load processes until told to stop.
    let producers = Waves::start(
        Path::new(PERF_LOAD),
        &dirs.shm,
        rng.fork(),
        (0, 50),
        |rng| {
            (0..rng.range(1, 3))
                .map(|_| LoadSpec {
                    service: format!("svc{}", rng.below(3)),
                    threads: rng.range(1, 4) as u32,
                    records: rng.range(500, 8_000) as u32,
                    capacity: 1 << rng.range(12, 16),
                    hold_ms: rng.range(0, 400),
                    run_id: 0,
                })
                .collect()
        },
    );

    let mut all_logs = Vec::new();
    let (mut failpoint_kills, mut sigkills, mut cuts) = (0u64, 0u64, 0usize);
    // Pruning is never reached with every file kept.
    let points: Vec<&str> = POINTS
        .iter()
        .copied()
        .filter(|p| *p != "settle-removed")
        .collect();
    let unrotated: Vec<&str> = POINTS
        .iter()
        .copied()
        .filter(|p| !ROTATION_POINTS.contains(p))
        .collect();
    let mut left_unfinished = Vec::new();
    for _ in 0..scaled(40) {
        summary.trials += 1;
        let interval = format!("{:.3}", rng.range(1, 30) as f64 / 1000.0);
        // Two runs in three rotate (a few rounds per file); the others append for ever,
        // as a drainer whose cap was turned off.
        let cap = rng
            .chance(2, 3)
            .then(|| format!("{}K", 1 << rng.range(3, 7)));
        let failpoint = rng.chance(1, 2).then(|| {
            let from = if cap.is_some() { &points } else { &unrotated };
            format!("{}:{}", rng.pick(from), rng.range(1, 6))
        });
        let mut daemon = dirs.daemon_with(&interval, |c| {
            if let Some(fp) = &failpoint {
                c.env(ENV, fp);
            }
            if let Some(cap) = &cap {
                c.args(["--max-file-size", cap, "--rotated-files", KEEP_ALL]);
            }
        });
        let status = if failpoint.is_some() {
            // Killed by the failpoint once it reaches that commit; if traffic is too thin
            // to get there soon, by us.
            daemon.wait_exit_within(rng.millis(200, 1_500))
        } else {
            std::thread::sleep(rng.millis(1, 80));
            None
        };
        match status {
            Some(s) => {
                assert_eq!(
                    s.signal(),
                    Some(9),
                    "drainer with {failpoint:?} exited otherwise: {s:?}\n{}",
                    daemon.log().join("\n")
                );
                failpoint_kills += 1;
            }
            None => sigkills += 1,
        }
        let log = daemon.kill();
        cuts += log.iter().filter(|l| l.contains("cutting ")).count();
        summary.rotations += count(&log, "perf_table::table: rotated ") as u64;
        // A run without the cap does not settle: what an earlier kill left is not new.
        let unfinished = rotation_unfinished(&dirs.storage);
        if !unfinished.is_empty() && unfinished != left_unfinished {
            summary.rotation_kills += 1;
        }
        left_unfinished = unfinished;
        all_logs.extend(log);
        // The checkpoint is replaced atomically: whenever the drainer dies, it parses.
        let ckpt = dirs.storage.join(perf_drainer::checkpoint::FILE_NAME);
        if let Ok(text) = std::fs::read_to_string(&ckpt) {
            assert!(
                serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "checkpoint torn after a crash: {text:?}"
            );
        }
    }
    let reports = producers.finish();
    summary.kills = failpoint_kills + sigkills;

    // One last, uninterrupted drainer: everything arrives, every ring is removed.
    // It finishes whatever rotation the last kill interrupted.
    let daemon = dirs.daemon_with("0.01", |c| {
        c.args(["--max-file-size", "64K", "--rotated-files", KEEP_ALL]);
    });
    let total: u64 = reports.iter().map(|r| r.committed).sum();
    let drained = wait_until(Duration::from_secs(60), || {
        complete_rows(&dirs.storage) as u64 >= total && dirs.rings().is_empty()
    });
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    summary.rotations += count(&log, "perf_table::table: rotated ") as u64;
    all_logs.extend(log);
    let expected: HashMap<u32, Option<u64>> = reports
        .iter()
        .map(|r| (r.run_id, Some(r.committed)))
        .collect();
    let tally = Tally::of(&history(&dirs.storage, (&[], &[])).compat, &expected);
    summary.written = total;
    summary.dropped = reports.iter().map(|r| r.dropped).sum();
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    summary.note = format!(
        "{failpoint_kills} by failpoint, {sigkills} SIGKILL, {cuts} partial appends cut back, {} producer runs, {} rotated files",
        reports.len(),
        archive::segments(&dirs.storage, &ROBOT_ACTIVITY).unwrap().len()
            + archive::segments(&dirs.storage, &ROBOT_ACTIVITY_CONTEXT)
                .unwrap()
                .len()
    );
    summary.report();

    assert_drained_exactly_once(&dirs, drained, status, &all_logs, &tally, &reports);
    assert!(failpoint_kills > 0, "no failpoint fired");
    assert!(summary.rotations > 0, "no rotation happened");
    assert_eq!(
        rotation_unfinished(&dirs.storage),
        Vec::<String>::new(),
        "a rotation was left unfinished"
    );
}
