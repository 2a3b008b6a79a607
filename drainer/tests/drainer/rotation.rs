//! The drainer's own rotation (`--max-file-size`, `--rotated-files`): both tables are capped,
//! rotated into numbered `.gz` files, and a kill at any step of a rotation neither loses nor
//! duplicates a row across the rotated files and the live one.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use perf_drainer::drain::ROUND_RECORDS;
use perf_drainer::failpoint::{ENV, ROTATION_POINTS};
use perf_ring::ProducerRing;
use perf_table::{archive, TableSpec, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};
use perf_testkit::{count, stderr, Dirs};

use crate::crash::{assert_exactly_once, history, push, SERVICES, STATES};

const TABLES: [&TableSpec; 2] = [&ROBOT_ACTIVITY, &ROBOT_ACTIVITY_CONTEXT];

/// `perf-drainer once` with a cap of `max` and `keep` rotated files, and `fp` as its
/// failpoint if given.
fn once(dirs: &Dirs, max: &str, keep: usize, fp: Option<String>) -> std::process::Output {
    dirs.once_with(|c| {
        c.args(["--max-file-size", max, "--rotated-files", &keep.to_string()]);
        if let Some(fp) = fp {
            c.env(ENV, fp);
        }
    })
}

/// Hidden temporaries and plain (not yet compressed) numbered files of either table.
fn unsettled(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for spec in TABLES {
        for seg in archive::segments(dir, spec).unwrap() {
            if !seg.compressed {
                out.push(seg.path.display().to_string());
            }
        }
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".gz.tmp") {
            out.push(name);
        }
    }
    out
}

#[test]
fn both_tables_are_rotated_under_the_cap_and_read_back_whole() {
    let dirs = crate::dirs();
    let a = ProducerRing::create(&dirs.shm, SERVICES[0], STATES, 1 << 12).unwrap();
    let b = ProducerRing::create(&dirs.shm, SERVICES[1], STATES, 1 << 12).unwrap();
    let mut next = 0;
    let mut accepted = Vec::new();
    // Rounds of about 200 rows (12 KB, 18 KB of context) against a 32 KiB cap.
    for _ in 0..12 {
        accepted.extend(push(&[&a, &b], &mut next, 200));
        let out = once(&dirs, "32K", 100, None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for spec in TABLES {
        let segs = archive::segments(&dirs.storage, spec).unwrap();
        assert!(segs.len() >= 2, "{}: {segs:?}", spec.name);
        assert!(segs.iter().all(|s| s.compressed), "{segs:?}");
        // Every file, rotated or live, is under the cap (a round never goes past it).
        let live = std::fs::metadata(dirs.storage.join(spec.name))
            .unwrap()
            .len();
        assert!(live <= 32 << 10, "{}: {live}", spec.name);
        for seg in &segs {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut seg.open().unwrap(), &mut bytes).unwrap();
            assert!(
                bytes.len() <= 32 << 10 && bytes.ends_with(b"\r\n"),
                "{seg:?}"
            );
        }
    }
    assert_eq!(unsettled(&dirs.storage), Vec::<String>::new());
    assert_exactly_once(&dirs, accepted);
}

#[test]
fn a_round_over_the_cap_stays_live_until_the_next_one() {
    let dirs = crate::dirs();
    let mut next = 0;
    for round in 1..=3u64 {
        // A producer that is gone by the drain: its ring is drained, removed and forgotten,
        // and the forgetting is one more commit, without rows.
        let a = ProducerRing::create(&dirs.shm, SERVICES[0], STATES, 1 << 12).unwrap();
        push(&[&a], &mut next, 300);
        drop(a);
        let out = once(&dirs, "4K", 100, None);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains("finished"), "{}", stderr(&out));
        // Each round is bigger than the cap: it goes whole into a fresh live file, and
        // stays there (the commit without rows rotates nothing).
        let (live, _) = dirs.rows_in_both();
        assert_eq!(live.len(), 300, "round {round}");
        let segs = archive::segments(&dirs.storage, &ROBOT_ACTIVITY).unwrap();
        assert_eq!(segs.len() as u64, round - 1, "round {round}: {segs:?}");
    }
}

#[test]
fn only_the_newest_rotated_files_are_kept() {
    let dirs = crate::dirs();
    let a = ProducerRing::create(&dirs.shm, SERVICES[0], STATES, 1 << 12).unwrap();
    let mut next = 0;
    for _ in 0..8 {
        push(&[&a], &mut next, 300);
        let out = once(&dirs, "16K", 2, None);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for spec in TABLES {
        let seqs: Vec<u64> = archive::segments(&dirs.storage, spec)
            .unwrap()
            .iter()
            .map(|s| s.seq)
            .collect();
        assert_eq!(seqs.len(), 2, "{}: {seqs:?}", spec.name);
        assert_eq!(seqs[0] + 1, seqs[1], "{seqs:?}");
    }
    // What is left is the newest rows, each once, in order.
    let (rows, _) = history(&dirs);
    let durations: Vec<u64> = rows.iter().map(|r| r.2).collect();
    assert_eq!(*durations.last().unwrap(), next - 1);
    assert!(
        durations.windows(2).all(|w| w[0] + 1 == w[1]),
        "{durations:?}"
    );
}

#[test]
fn crash_at_every_rotation_step_then_restart_is_exactly_once() {
    for point in ROTATION_POINTS {
        // The second pass is the context table's step in the same rotation, or (for the
        // checkpoint) the next rotation.
        for nth in [1u64, 2] {
            let dirs = crate::dirs();
            let a = ProducerRing::create(&dirs.shm, SERVICES[0], STATES, 1 << 17).unwrap();
            let b = ProducerRing::create(&dirs.shm, SERVICES[1], STATES, 1 << 17).unwrap();
            // Only pruning needs files beyond the number kept; elsewhere all are kept, so
            // that every record can be looked for.
            let keep = if *point == "settle-removed" { 1 } else { 1000 };
            let mut next = 0;
            let mut accepted = push(&[&a, &b], &mut next, 1_000);
            // Fills the empty live files past the cap: the next commit rotates.
            let out = once(&dirs, "8K", keep, None);
            assert!(out.status.success(), "{}", stderr(&out));
            // Each round rotates both tables before it is appended; a second rotation (three
            // rounds) is needed for the checkpoint's second pass and for pruning.
            let second = nth == 2 && *point == "rotate-checkpoint" || *point == "settle-removed";
            let rounds = if second { 2 * ROUND_RECORDS as u64 } else { 0 };
            accepted.extend(push(&[&a, &b], &mut next, rounds + 1_000));

            let crashed = once(&dirs, "8K", keep, Some(format!("{point}:{nth}")));
            assert_eq!(
                crashed.status.signal(),
                Some(9),
                "{point}:{nth} did not crash: {}",
                stderr(&crashed)
            );
            accepted.extend(push(&[&a, &b], &mut next, 500));

            let out = once(&dirs, "8K", keep, None);
            let log = stderr(&out);
            assert!(out.status.success(), "{point}:{nth}: {log}");
            // A kill after a table's rename and before the checkpoint leaves the checkpoint
            // naming the numbered file; the restart says so for each such table. The
            // settle steps run on a thread of their own while the loop goes on draining:
            // their kill lands wherever the loop is then (mid-commit, mid-rotation), so
            // only exactly-once is checked for them.
            let interrupted = match (*point, nth) {
                ("rotate-renamed" | "rotate-created", 1) => 1,
                ("rotate-renamed" | "rotate-created", 2) => 2,
                _ => 0,
            };
            if !point.starts_with("settle-") {
                assert_eq!(
                    count(
                        &log.lines().map(str::to_owned).collect::<Vec<_>>(),
                        "finishing a rotation"
                    ),
                    interrupted,
                    "{point}:{nth}: {log}"
                );
                assert!(!log.contains("cutting "), "{point}:{nth}: {log}");
            }
            assert_eq!(
                unsettled(&dirs.storage),
                Vec::<String>::new(),
                "{point}:{nth}"
            );
            for ring in [&a, &b] {
                let c = ring.counters();
                assert_eq!(c.released, c.claimed, "{point}:{nth}");
            }
            if keep == 1 {
                // Pruned rows are gone by design; what is kept is each row once, and the
                // newest of every ring.
                for spec in TABLES {
                    let segs = archive::segments(&dirs.storage, spec).unwrap();
                    assert_eq!(segs.len(), 1, "{point}:{nth} {}: {segs:?}", spec.name);
                }
                let (rows, _) = history(&dirs);
                let mut got: Vec<u64> = rows.iter().map(|r| r.2).collect();
                got.sort_unstable();
                assert!(
                    got.windows(2).all(|w| w[0] < w[1]),
                    "{point}:{nth}: duplicates"
                );
                assert!(got.iter().all(|d| accepted.contains(d)));
                assert!(got.contains(&(next - 1)) && got.contains(&(next - 2)));
            } else {
                assert_exactly_once(&dirs, accepted);
            }
        }
    }
}
