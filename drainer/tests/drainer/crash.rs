//! Exactly once across crashes: every record accepted by a ring appears in the CSV exactly
//! once, and in the context table exactly once with its service, pid and tid, with no
//! partial line, whatever instant the drainer was killed at.

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use perf_drainer::drain::ROUND_RECORDS;
use perf_drainer::failpoint::{ENV, POINTS, ROTATION_POINTS};
use perf_ring::ProducerRing;
use perf_table::{archive, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};

use perf_testkit::dirs::{parse_context_rows, parse_rows};
use perf_testkit::{count, stderr, ContextRow, Dirs, Rng};

pub(crate) const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING", "RUNNING_PROTOCOL"];

/// Services of the rings [`push`] writes to, in its round-robin order.
pub(crate) const SERVICES: &[&str] = &["svc-a", "svc-b"];

/// The thread id [`push`] gives the record with duration `id`.
fn tid_of(id: u64) -> u32 {
    100 + (id % 7) as u32
}

/// Pushes records with unique durations `next..next+n` round-robin into `rings`; returns
/// the durations the rings accepted.
pub(crate) fn push(rings: &[&ProducerRing], next: &mut u64, n: u64) -> Vec<u64> {
    let mut accepted = Vec::new();
    for _ in 0..n {
        let id = *next;
        *next += 1;
        let ring = rings[(id % rings.len() as u64) as usize];
        let record = perf_ring::Record {
            start_ns: 1_722_450_000_000_000_000 + id,
            duration_ns: id,
            state: (id % 3) as u32,
            tid: tid_of(id),
        };
        if ring.push(&record).is_ok() {
            accepted.push(id);
        }
    }
    accepted
}

/// Every row of both tables, rotated files (oldest first) then the live file, after
/// checking that the context table holds the very same rows in the same order.
pub(crate) fn history(dirs: &Dirs) -> (Vec<(String, u64, u64)>, Vec<ContextRow>) {
    let rows = parse_rows(&archive::history(&dirs.storage, &ROBOT_ACTIVITY).unwrap());
    let context =
        parse_context_rows(&archive::history(&dirs.storage, &ROBOT_ACTIVITY_CONTEXT).unwrap());
    let plain: Vec<(String, u64, u64)> = context
        .iter()
        .map(|c| (c.state.clone(), c.start, c.duration))
        .collect();
    assert!(
        plain == rows,
        "the context table's rows differ from the CSV's"
    );
    (rows, context)
}

/// The CSV holds exactly `accepted`, each once, and so does the context table, with each
/// record's ring's service, the producer's pid and the writer's tid. Rotated files count:
/// the history of each table is read, oldest first.
pub(crate) fn assert_exactly_once(dirs: &Dirs, mut accepted: Vec<u64>) {
    let (rows, context) = history(dirs);
    for c in &context {
        assert_eq!(c.service, SERVICES[(c.duration % 2) as usize], "{c:?}");
        assert_eq!(c.pid, std::process::id(), "{c:?}");
        assert_eq!(c.tid, tid_of(c.duration), "{c:?}");
    }
    let mut got: Vec<u64> = rows.iter().map(|r| r.2).collect();
    got.sort_unstable();
    let dups = got.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "{dups} duplicated rows");
    accepted.sort_unstable();
    assert_eq!(got.len(), accepted.len(), "rows vs accepted records");
    assert_eq!(got, accepted);
    for (state, start, duration) in rows {
        assert_eq!(state, STATES[(duration % 3) as usize]);
        assert_eq!(start, 1_722_450_000_000_000_000 + duration);
    }
}

#[test]
fn crash_at_every_failpoint_then_restart_is_exactly_once() {
    for point in POINTS.iter().filter(|p| !ROTATION_POINTS.contains(p)) {
        for nth in [1u64, 2] {
            let dirs = crate::dirs();
            let a = ProducerRing::create(&dirs.shm, SERVICES[0], STATES, 1 << 17).unwrap();
            let b = ProducerRing::create(&dirs.shm, SERVICES[1], STATES, 1 << 17).unwrap();
            let mut next = 0;
            // Enough for two rounds when the crash is at the second pass.
            let first = if nth == 1 {
                1_000
            } else {
                2 * ROUND_RECORDS as u64 + 1_000
            };
            let mut accepted = push(&[&a, &b], &mut next, first);

            let crashed = dirs.once_with(|c| {
                c.env(ENV, format!("{point}:{nth}"));
            });
            assert_eq!(
                crashed.status.signal(),
                Some(9),
                "{point}:{nth} did not crash: {}",
                stderr(&crashed)
            );
            // The crashed drainer released nothing it had not checkpointed.
            accepted.extend(push(&[&a, &b], &mut next, 500));

            let out = dirs.once();
            let log = stderr(&out);
            assert!(out.status.success(), "{point}:{nth}: {log}");
            // Each table that got rows the checkpoint does not cover is cut back.
            let cut = match *point {
                "after-append" => 1,
                "after-context-append" | "after-sync" => 2,
                _ => 0,
            };
            assert_eq!(log.matches("cutting ").count(), cut, "{point}:{nth}: {log}");
            assert_exactly_once(&dirs, accepted);
            for ring in [&a, &b] {
                let c = ring.counters();
                assert_eq!(c.released, c.claimed, "{point}:{nth}");
            }
        }
    }
}

#[test]
fn sigkill_at_random_instants_then_restart_is_exactly_once() {
    let dirs = crate::dirs();
    let mut rng = Rng::from_env("sigkill_at_random_instants_then_restart_is_exactly_once");
    let stop = Arc::new(AtomicBool::new(false));
    let shm = dirs.shm.clone();
    let stop2 = Arc::clone(&stop);
    let producer = std::thread::spawn(move || {
        let a = ProducerRing::create(&shm, SERVICES[0], STATES, 1 << 14).unwrap();
        let b = ProducerRing::create(&shm, SERVICES[1], STATES, 1 << 12).unwrap();
        let mut next = 0;
        let mut accepted = Vec::new();
        while !stop2.load(Ordering::Relaxed) {
            accepted.extend(push(&[&a, &b], &mut next, 100));
            std::thread::sleep(Duration::from_millis(1));
        }
        (accepted, next, a, b)
    });
    let (mut cuts, mut resumed) = (0, 0);
    for _ in 0..40 {
        let daemon = dirs.daemon("0.002");
        std::thread::sleep(Duration::from_millis(2 + rng.below(40)));
        // A kill mid-append may leave half a row on disk; the next start cuts it away.
        let log = daemon.kill();
        cuts += count(&log, "cutting ");
        resumed += count(&log, "from position ") - count(&log, "from position 0");
    }
    eprintln!(
        "restarts that cut back an interrupted append: {cuts}; rings resumed mid-way: {resumed}"
    );
    stop.store(true, Ordering::Relaxed);
    let (accepted, pushed, a, b) = producer.join().unwrap();
    let out = dirs.once();
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!("{} records pushed, {} accepted", pushed, accepted.len());
    assert!(
        accepted.len() > 10_000,
        "too little traffic to mean anything"
    );
    assert_exactly_once(&dirs, accepted);
    for ring in [&a, &b] {
        let c = ring.counters();
        assert_eq!(c.released, c.claimed);
    }
}
