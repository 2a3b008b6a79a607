//! Many rings and more than one would-be consumer: over a thousand finished rings plus
//! more live rings than the drainer may hold descriptors for, under a soft and hard
//! `RLIMIT_NOFILE` of 256 that the drainer cannot raise, while a second `once` and a second
//! `run` on the same ring directory are tried (and must be refused) and a ring is renamed
//! over a live one. Every record lands exactly once, every ring is removed, the drainer
//! never logs an open failure, and it says once that rings wait.

use std::collections::HashMap;
use std::time::Duration;

use perf_ring::{ProducerRing, Record};
use perf_testkit::{count, limit_open_files, output_within, stderr, wait_until, Dirs, Rng};
use perf_tests::load::{encode, Id};
use perf_tests::stress::{alarming, dirs, scaled, Summary, Tally};

/// The drainer's descriptor limit: 256 - 64 reserved = 192 live rings at once.
const NOFILE: u64 = 256;
const STATES: &[&str] = &["CALIBRATING"];

/// A record with the id (`tag`, 0, `seq`).
fn rec(tag: u32, seq: u32) -> Record {
    Record {
        start_ns: 1_722_450_000_000_000_000 + u64::from(seq),
        duration_ns: encode(Id {
            tag,
            thread: 0,
            seq,
        })
        .expect("id fits"),
        state: 0,
        tid: 1,
    }
}

/// Pushes `n` records with the next sequence numbers of `tag`.
fn push(ring: &ProducerRing, tag: u32, next: &mut u32, n: u32) -> u64 {
    for _ in 0..n {
        ring.push(&rec(tag, *next)).expect("room in the ring");
        *next += 1;
    }
    u64::from(n)
}

/// Tries `sub` (`once` or `run`) on the ring directory of `dirs` with a storage directory
/// of its own; returns whether it was refused with the one expected line.
fn refused(dirs: &Dirs, sub: &str) -> bool {
    let other = Dirs::new();
    let mut cmd = dirs.drainer_cmd(&[]);
    cmd.args([sub, "--interval", "0.05", "--storage-dir"])
        .arg(&other.storage);
    let out = output_within(cmd, Duration::from_secs(60));
    let err = stderr(&out);
    let line = format!(
        "another perf-drainer already drains the rings in {}",
        dirs.shm.display()
    );
    let ok = out.status.code() == Some(1) && err.lines().count() == 1 && err.contains(&line);
    assert!(
        ok,
        "{sub} on a drained ring directory: {:?} {err}",
        out.status
    );
    // Refused before touching anything: no table written beside.
    assert!(!other.csv_path().exists());
    ok
}

#[test]
fn stress_many_rings_under_a_low_descriptor_limit() {
    let mut rng = Rng::from_env("stress_many_rings");
    let mut summary = Summary::new("stress_many_rings", rng.seed());
    let (mut most, mut refusals, mut renamed) = (0u64, 0u64, 0u64);
    for trial in 0..scaled(2) {
        summary.trials += 1;
        let tag = 1_000 + trial as u32;
        let mut next = 0u32;
        let mut committed = 0u64;
        let dirs = dirs();
        let dead = rng.range(1_030, 1_200);
        let live = rng.range(200, 260);
        for _ in 0..dead {
            let ring = ProducerRing::create(&dirs.shm, "dead", STATES, 8).unwrap();
            committed += push(&ring, tag, &mut next, rng.range(1, 8) as u32);
        }
        let mut rings: Vec<ProducerRing> = (0..live)
            .map(|i| {
                let ring =
                    ProducerRing::create(&dirs.shm, &format!("live{}", i % 7), STATES, 64).unwrap();
                committed += push(&ring, tag, &mut next, rng.range(0, 20) as u32);
                ring
            })
            .collect();
        most = most.max(dead + live);

        let daemon = dirs.daemon_with("0.05", |c| limit_open_files(c, NOFILE));
        daemon.wait_log("wait to be drained", Duration::from_secs(60));
        refusals += u64::from(refused(&dirs, "once"));
        refusals += u64::from(refused(&dirs, "run"));

        // A ring made elsewhere renamed over a live ring's path: both drain.
        let elsewhere = dirs.root().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let newcomer = ProducerRing::create(&elsewhere, "newcomer", STATES, 64).unwrap();
        committed += push(&newcomer, tag, &mut next, 10);
        // One the drainer has open: renaming over a ring nobody opened yet destroys it, as
        // it would for any file.
        let opened = || {
            let log = daemon.log_text();
            (0..rings.len())
                .filter(|&i| log.contains(&format!("draining {}:", rings[i].path().display())))
                .collect::<Vec<usize>>()
        };
        assert!(
            wait_until(Duration::from_secs(60), || !opened().is_empty()),
            "trial {trial}: no live ring opened"
        );
        let open = opened();
        let victim = open[rng.below(open.len() as u64) as usize];
        std::fs::rename(newcomer.path(), rings[victim].path()).unwrap();
        renamed += 1;
        rings.push(newcomer);

        // Producers go in random batches, writing a little more first.
        while !rings.is_empty() {
            let n = (rng.range(1, 40) as usize).min(rings.len());
            for _ in 0..n {
                let ring = rings.swap_remove(rng.below(rings.len() as u64) as usize);
                committed += push(&ring, tag, &mut next, rng.range(0, 20) as u32);
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, 100)));
        }
        let settled = wait_until(Duration::from_secs(120), || dirs.rings().is_empty());
        let (status, log) = daemon.terminate_within(Duration::from_secs(60));
        assert!(status.success(), "trial {trial}: drainer exit {status:?}");
        assert!(
            settled,
            "trial {trial}: {} rings left:\n{}",
            dirs.rings().len(),
            log.join("\n")
        );
        let alarms = alarming(&log);
        assert!(alarms.is_empty(), "trial {trial}: {alarms:#?}");
        for bad in [
            "Too many open files",
            "skipping",
            "cannot remove",
            "cannot be removed",
        ] {
            assert_eq!(count(&log, bad), 0, "trial {trial}: {bad}: {log:#?}");
        }
        assert!(count(&log, "which is left alone") >= 1, "trial {trial}");

        let expected: HashMap<u32, Option<u64>> = [(tag, Some(committed))].into();
        let tally = Tally::of(&dirs.csv(), &expected);
        summary.written += committed;
        summary.lost += tally.lost;
        summary.duplicated += tally.duplicated;
        assert!(tally.clean(), "trial {trial}: {}", tally.describe());
    }
    summary.note = format!(
        "up to {most} rings at once under RLIMIT_NOFILE {NOFILE}, {refusals} second consumers refused, {renamed} rings renamed over live ones"
    );
    summary.report();
}
