//! Drainer crashes: `perf-drainer run` SIGKILLed at random instants, or killed by its own
//! failpoints (`PERF_DRAINER_CRASH_AT=after-append|after-sync|after-checkpoint|after-release`
//! at a random commit), and restarted, many times in one run, while `perf-load` processes
//! keep writing and exiting. The final CSV has no partial line, no duplicate and no loss;
//! the checkpoint is valid JSON after every crash; every dead ring ends up removed.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use perf_drainer::failpoint::{ENV, POINTS};
use perf_testkit::{wait_until, Rng};
use perf_tests::stress::{
    assert_drained_exactly_once, dirs, scaled, LoadSpec, Summary, Tally, Waves,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

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
    for _ in 0..scaled(40) {
        summary.trials += 1;
        let interval = format!("{:.3}", rng.range(1, 30) as f64 / 1000.0);
        let failpoint = rng
            .chance(1, 2)
            .then(|| format!("{}:{}", rng.pick(POINTS), rng.range(1, 6)));
        let mut daemon = dirs.daemon_with(&interval, |c| {
            if let Some(fp) = &failpoint {
                c.env(ENV, fp);
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
    let daemon = dirs.daemon_with("0.01", |_| {});
    let total: u64 = reports.iter().map(|r| r.committed).sum();
    let drained = wait_until(Duration::from_secs(60), || {
        dirs.complete_rows() as u64 >= total && dirs.rings().is_empty()
    });
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    all_logs.extend(log);
    let expected: HashMap<u32, Option<u64>> = reports
        .iter()
        .map(|r| (r.run_id, Some(r.committed)))
        .collect();
    let tally = Tally::of(&dirs.csv(), &expected);
    summary.written = total;
    summary.dropped = reports.iter().map(|r| r.dropped).sum();
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    summary.note = format!(
        "{failpoint_kills} by failpoint, {sigkills} SIGKILL, {cuts} partial appends cut back, {} producer runs",
        reports.len()
    );
    summary.report();

    assert_drained_exactly_once(&dirs, drained, status, &all_logs, &tally, &reports);
    assert!(failpoint_kills > 0, "no failpoint fired");
}
