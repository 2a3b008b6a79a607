//! External rotation while the drainer runs: logrotate's two ways, `copytruncate` and
//! rename + create, done by this test to both tables at random instants while `perf-load`
//! processes write and `perf-drainer run` drains. Every committed record ends up exactly
//! once across the files rotated away and the live ones, with no NUL hole and no partial
//! row, and the drainer notices each rotation.
//!
//! `copytruncate` has a window of its own: rows appended between the copy and the truncate
//! are in neither file. logrotate cannot close it; this test does, the way an operator
//! would have to, by stopping the drainer (SIGSTOP, then waiting until the kernel says it
//! is stopped) around the copy and the truncate. Rename + create needs no such care: the
//! drainer's rows go to the renamed file until it sees the new one.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perf_table::{ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};
use perf_testkit::{count, resume, stop, wait_until, Rng};
use perf_tests::stress::{
    assert_exactly_once_in, dirs, history, scaled, LoadSpec, Summary, Tally, Waves,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

/// What logrotate does to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    CopyTruncate,
    RenameCreate,
}

/// Rotates `live` to `to` the `way` logrotate would; false if there was no file yet.
fn rotate(live: &Path, to: &Path, way: Way) -> bool {
    match way {
        Way::CopyTruncate => {
            if std::fs::copy(live, to).is_err() {
                return false;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .open(live)
                .and_then(|f| f.set_len(0))
                .expect("truncate");
        }
        Way::RenameCreate => {
            match std::fs::rename(live, to) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return false,
                Err(e) => panic!("rename {}: {e}", live.display()),
            }
            // As logrotate's `create`: never over a file the drainer already made.
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(live)
            {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => panic!("create {}: {e}", live.display()),
            }
        }
    }
    true
}

#[test]
fn stress_rotation_external_copytruncate_and_rename_lose_nothing() {
    let mut rng = Rng::from_env("stress_rotation");
    let mut summary = Summary::new("stress_rotation", rng.seed());
    let dirs = dirs();
    let producers = Waves::start(
        Path::new(PERF_LOAD),
        &dirs.shm,
        rng.fork(),
        (0, 30),
        |rng| {
            (0..rng.range(1, 4))
                .map(|_| LoadSpec {
                    service: format!("svc{}", rng.below(3)),
                    threads: rng.range(1, 4) as u32,
                    records: rng.range(1_000, 10_000) as u32,
                    // Large enough to wait out a stopped drainer without dropping.
                    capacity: 1 << 17,
                    hold_ms: rng.range(0, 200),
                    run_id: 0,
                })
                .collect()
        },
    );
    let interval = format!("{:.3}", rng.range(1, 20) as f64 / 1000.0);
    let daemon = dirs.daemon_with(&interval, |_| {});
    let tables = [&ROBOT_ACTIVITY, &ROBOT_ACTIVITY_CONTEXT];
    // Per table, the files rotated away, oldest first.
    let mut away: [Vec<PathBuf>; 2] = [Vec::new(), Vec::new()];
    let (mut copytruncates, mut renames) = (0u64, 0u64);
    for trial in 0..scaled(30) {
        summary.trials += 1;
        std::thread::sleep(rng.millis(10, 150));
        let way = if rng.chance(1, 2) {
            Way::CopyTruncate
        } else {
            Way::RenameCreate
        };
        // logrotate rotates each file on its own: one table, or both.
        let which: Vec<usize> = match rng.below(3) {
            0 => vec![0],
            1 => vec![1],
            _ => vec![0, 1],
        };
        if way == Way::CopyTruncate {
            assert!(
                stop(daemon.pid(), Duration::from_secs(10)),
                "the drainer did not stop"
            );
        }
        for &t in &which {
            let live = dirs.storage.join(tables[t].name);
            let to = dirs
                .storage
                .join(format!("{}-logrotate.{trial}", tables[t].name));
            if rotate(&live, &to, way) {
                away[t].push(to);
                match way {
                    Way::CopyTruncate => copytruncates += 1,
                    Way::RenameCreate => renames += 1,
                }
            }
        }
        if way == Way::CopyTruncate {
            resume(daemon.pid());
        }
    }
    let reports = producers.finish();
    let total: u64 = reports.iter().map(|r| r.committed).sum();
    let rows_now = || {
        let h = history(&dirs.storage, (&away[0], &away[1]));
        h.compat.windows(2).filter(|w| w == b"\r\n").count() as u64
    };
    let drained = wait_until(Duration::from_secs(60), || {
        rows_now() >= total && dirs.rings().is_empty()
    });
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));

    let h = history(&dirs.storage, (&away[0], &away[1]));
    for f in away.iter().flatten() {
        let bytes = std::fs::read(f).unwrap();
        assert!(!bytes.contains(&0), "NUL bytes in {}", f.display());
    }
    assert!(
        !h.compat.contains(&0) && !h.context.contains(&0),
        "NUL bytes"
    );
    let expected: HashMap<u32, Option<u64>> = reports
        .iter()
        .map(|r| (r.run_id, Some(r.committed)))
        .collect();
    let tally = Tally::of(&h.compat, &expected);
    summary.written = total;
    summary.dropped = reports.iter().map(|r| r.dropped).sum();
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    summary.rotations = copytruncates + renames;
    // Seen mid-cycle by the open table, or when a cycle opens it against the checkpoint.
    let shrank = count(&log, " shrank from ") + count(&log, "shorter than the checkpointed");
    let moved = count(&log, " was moved away") + count(&log, "not the file the checkpoint");
    summary.note = format!(
        "{copytruncates} copytruncate, {renames} rename+create; noticed {shrank} cut, {moved} replaced, {} producer runs",
        reports.len()
    );
    summary.report();

    assert_exactly_once_in(&dirs, &h, drained, status, &log, &tally, &reports);
    assert!(copytruncates > 0 && renames > 0, "{}", summary.note);
}
