//! Producer crashes: `perf-load` processes SIGKILLed at random moments while they write,
//! with `perf-drainer run` draining all along. The drainer never stalls (every dead ring is
//! drained and removed within a deadline), never writes a torn or garbage row, writes every
//! published record once, and its books for each dead ring add up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perf_testkit::{wait_until, Rng};
use perf_tests::stress::{alarming, books, dirs, load_report, scaled, LoadSpec, Summary, Tally};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

#[test]
fn stress_producer_crash_killed_writers_drain_cleanly() {
    let mut rng = Rng::from_env("stress_producer_crash");
    let mut summary = Summary::new("stress_producer_crash", rng.seed());
    let dirs = dirs();
    let daemon = dirs.daemon_with("0.02", |_| {});
    // tag → (spec, pid, finished report if it was not killed first)
    type Run = (LoadSpec, u32, Option<perf_tests::stress::LoadReport>);
    let mut runs: HashMap<u32, Run> = HashMap::new();
    let mut run_id = 1;
    let (mut mid_write, mut finished) = (0u64, 0u64);
    // Kill delays are drawn from 0..window; the window adapts so that about half of the
    // producers are killed while they write (their speed depends on the machine's load).
    let mut window_ms: u64 = 40;
    for _ in 0..scaled(12) {
        summary.trials += 1;
        let procs = rng.range(2, 4);
        let mut children = Vec::new();
        for _ in 0..procs {
            // Big enough that writing takes a few hundred ms; never more than the ring
            // holds, so a ring never drops and each thread's ids are gap-free.
            let threads = rng.range(1, 4) as u32;
            let capacity: u64 = 1 << 16;
            let spec = LoadSpec {
                service: "crashy".into(),
                threads,
                records: (capacity / u64::from(threads)) as u32,
                capacity,
                hold_ms: rng.range(0, 100),
                run_id,
            };
            run_id += 1;
            let child = spec.spawn(Path::new(PERF_LOAD), &dirs.shm);
            let kill_at = Instant::now() + rng.millis(0, window_ms);
            children.push((spec, child, kill_at));
        }
        for (spec, mut child, kill_at) in children {
            let pid = child.id();
            let now = Instant::now();
            if kill_at > now {
                std::thread::sleep(kill_at - now);
            }
            let alive = child.try_wait().expect("try_wait").is_none();
            if alive {
                child.kill().expect("SIGKILL perf-load");
                summary.kills += 1;
            }
            let report = load_report(child);
            if report.is_none() {
                mid_write += 1;
                window_ms = (window_ms * 11 / 10 + 1).min(2_000);
            } else {
                finished += 1;
                window_ms = (window_ms * 8 / 10).max(2);
            }
            runs.insert(spec.run_id, (spec, pid, report));
        }
    }
    // Every dead ring is drained and removed: the drainer did not stall on a half-written
    // ring.
    let drained = wait_until(Duration::from_secs(60), || dirs.rings().is_empty());
    let leftovers: Vec<PathBuf> = dirs.rings();
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    let books = books(&log);
    // What each run is expected to have in the CSV: a finished run its committed count; a
    // killed one what the drainer wrote from its ring (checked against the ids below).
    let mut expected: HashMap<u32, Option<u64>> = HashMap::new();
    let by_pid: HashMap<u32, perf_tests::stress::Books> =
        books.values().map(|b| (b.pid, *b)).collect();
    for (tag, (_, _, report)) in &runs {
        expected.insert(*tag, report.as_ref().map(|r| r.committed));
    }
    let tally = Tally::of(&dirs.csv(), &expected);
    let written_rows: u64 = tally.per_tag.values().sum();
    summary.written = written_rows;
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    summary.note = format!(
        "{mid_write} killed before reporting, {finished} finished, {} abandoned slots",
        books.values().map(|b| b.abandoned).sum::<u64>()
    );
    summary.report();

    assert!(
        drained,
        "dead rings not drained and removed within 60 s: {leftovers:?}"
    );
    assert!(status.success(), "drainer exit {status:?}");
    assert!(alarming(&log).is_empty(), "{:#?}", alarming(&log));
    assert!(tally.clean(), "{}", tally.describe());
    assert!(
        mid_write > 0,
        "no producer was killed mid-write: tune the delays"
    );
    // Each ring's books: nothing dropped (rings were big enough), at most one abandoned
    // slot per writer thread (the one it had claimed when killed), and what was written
    // is exactly what the CSV holds for its run.
    for (path, b) in &books {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        assert_eq!(b.dropped, 0, "{name}: {b:?}");
        assert_eq!(b.invalid, 0, "{name}: {b:?}");
        assert_eq!(
            b.committed,
            b.written + b.abandoned + b.earlier,
            "{name}: {b:?}"
        );
    }
    for (tag, (spec, pid, report)) in &runs {
        let seqs = tally.seqs(*tag);
        let rows: u64 = seqs.values().map(|v| v.len() as u64).sum();
        if let Some(r) = report {
            assert_eq!(rows, r.committed, "run {tag}");
            let b = books.get(&r.ring).expect("books of a finished run");
            assert_eq!(b.written, r.committed);
        }
        // A killed writer thread published its records in order, so its ids are
        // 0..n with no hole (a hole would be a published record lost).
        for (thread, s) in &seqs {
            assert!(*thread < spec.threads, "run {tag}: thread {thread}");
            let expect: Vec<u32> = (0..s.len() as u32).collect();
            assert!(
                *s == expect,
                "run {tag} thread {thread}: {} ids with holes (last {:?})",
                s.len(),
                s.last()
            );
        }
        // Rows of a run are what the drainer wrote from its ring; a run killed before its
        // ring was published has none.
        match by_pid.get(pid) {
            Some(b) => assert_eq!(b.written, rows, "run {tag} (pid {pid}): {b:?}"),
            None => assert_eq!(rows, 0, "run {tag} (pid {pid}) has rows but no ring"),
        }
    }
    // Books of killed runs: sum of written over all rings equals the rows in the CSV.
    let book_rows: u64 = books.values().map(|b| b.written).sum();
    assert_eq!(book_rows, written_rows, "books vs CSV rows");
}

/// Hidden ring temporaries (`.….ring.tmp`) in `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".ring.tmp"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn stress_producer_crash_killed_while_creating_leaves_nothing_behind() {
    let mut rng = Rng::from_env("stress_producer_crash_creating");
    let mut summary = Summary::new("stress_producer_crash_creating", rng.seed());
    let mut dirs = dirs();
    // On a tmpfs, as /dev/shm is, allocating the ring takes long enough to be killed in.
    let tmpfs = perf_testkit::Tmpfs::mount(&dirs.root().join("shmfs"), "1g");
    let place = match &tmpfs {
        Ok(t) => {
            dirs.shm = t.path().join("rings");
            std::fs::create_dir(&dirs.shm).unwrap();
            "tmpfs".to_string()
        }
        Err(why) => format!("disk ({why})"),
    };
    let daemon = dirs.daemon_with("0.05", |_| {});
    let (mut left, mut rings_left, mut finished) = (0u64, 0u64, 0u64);
    // Kill delays are drawn from 0..window, adapted so that kills land around the ring's
    // creation: after start-up, before the report.
    let mut window_us: u64 = 20_000;
    for run_id in 1..=scaled(20) as u32 {
        summary.trials += 1;
        let spec = LoadSpec {
            service: "creating".into(),
            threads: 1,
            records: 0,
            capacity: 1 << 21,
            hold_ms: 0,
            run_id,
        };
        let mut child = spec.spawn(Path::new(PERF_LOAD), &dirs.shm);
        let pid = child.id();
        std::thread::sleep(Duration::from_micros(rng.range(0, window_us)));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("SIGKILL perf-load");
            summary.kills += 1;
        }
        let report = load_report(child);
        let made_by = |paths: Vec<PathBuf>| {
            paths.iter().any(|p| {
                let name = p.file_name().unwrap_or_default();
                perf_ring::stale::temporary_creator(name) == Some(pid)
                    || name.to_string_lossy().contains(&format!("-{pid}-"))
            })
        };
        if report.is_some() {
            finished += 1;
            window_us = (window_us * 8 / 10).max(100);
        } else if made_by(temporaries(&dirs.shm)) {
            left += 1;
            // Aim a little later next time, so that some die after the rename.
            window_us = (window_us * 11 / 10).min(500_000);
        } else if made_by(dirs.rings()) {
            rings_left += 1;
            window_us = (window_us * 9 / 10).max(100);
        } else {
            // Killed before it made anything: later.
            window_us = (window_us * 12 / 10).min(500_000);
        }
    }
    let clean = wait_until(Duration::from_secs(60), || {
        temporaries(&dirs.shm).is_empty() && dirs.rings().is_empty()
    });
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    let removed = perf_testkit::count(&log, ": the temporary of a ring its creator");
    summary.note = format!(
        "on {place}: {left} killed while creating (temporary left, {removed} removed), {rings_left} killed after, {finished} finished"
    );
    summary.report();
    assert!(status.success(), "drainer exit {status:?}");
    assert!(
        clean,
        "left: {:?} {:?}\n{}",
        temporaries(&dirs.shm),
        dirs.rings(),
        log.join("\n")
    );
    let alarms = alarming(&log);
    assert!(alarms.is_empty(), "{alarms:#?}");
    assert_eq!(removed as u64, left, "{log:#?}");
    drop(tmpfs);
}
