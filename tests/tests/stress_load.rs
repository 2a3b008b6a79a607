//! Load: waves of `perf-load` processes × threads writing while `perf-drainer run` drains.
//! At the end every committed record is in the CSV exactly once, every ring is removed,
//! and each ring's books (`committed = written + dropped`) match what its producer counted.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use perf_testkit::Rng;
use perf_tests::stress::{
    assert_drained_exactly_once, books, dirs, load_report_within, scaled, LoadSpec, Summary, Tally,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

#[test]
fn stress_load_many_producers_exactly_once() {
    let mut rng = Rng::from_env("stress_load");
    let mut summary = Summary::new("stress_load", rng.seed());
    let dirs = dirs();
    let interval = format!("{:.3}", rng.range(5, 200) as f64 / 1000.0);
    let daemon = dirs.daemon_with(&interval, |_| {});
    let mut expected: HashMap<u32, Option<u64>> = HashMap::new();
    let mut reports = Vec::new();
    let mut run_id = 1;
    for _ in 0..scaled(4) {
        summary.trials += 1;
        let procs = rng.range(3, 6);
        let children: Vec<_> = (0..procs)
            .map(|_| {
                let spec = LoadSpec {
                    service: format!("load{}", rng.below(4)),
                    threads: rng.range(2, 6) as u32,
                    records: rng.range(2_000, 30_000) as u32,
                    // Small rings now and then: a slow cycle then makes producers drop.
                    capacity: 1 << rng.range(14, 18),
                    hold_ms: rng.range(0, 300),
                    run_id,
                };
                run_id += 1;
                (spec.clone(), spec.spawn(Path::new(PERF_LOAD), &dirs.shm))
            })
            .collect();
        for (spec, child) in children {
            let r = load_report_within(child, Duration::from_secs(120));
            assert_eq!(r.run_id, spec.run_id);
            assert_eq!(r.committed + r.dropped, spec.attempted(), "{spec:?}");
            expected.insert(r.run_id, Some(r.committed));
            summary.written += r.committed;
            summary.dropped += r.dropped;
            reports.push(r);
        }
        std::thread::sleep(rng.millis(0, 200));
    }
    let total: u64 = reports.iter().map(|r| r.committed).sum();
    let drained = perf_testkit::wait_until(Duration::from_secs(60), || {
        dirs.complete_rows() as u64 >= total && dirs.rings().is_empty()
    });
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    let tally = Tally::of(&dirs.csv(), &expected);
    summary.lost = tally.lost;
    summary.duplicated = tally.duplicated;
    summary.report();
    assert_drained_exactly_once(&dirs, drained, status, &log, &tally, &reports);
    // Each ring's books, as the drainer logged them when it removed the ring, match what
    // its producer counted: committed (claimed + dropped) = written + dropped.
    let books = books(&log);
    for r in &reports {
        let b = books
            .get(&r.ring)
            .unwrap_or_else(|| panic!("no books logged for {}", r.ring.display()));
        assert_eq!(b.written, r.committed, "{}: {b:?}", r.ring.display());
        assert_eq!(b.dropped, r.dropped, "{}: {b:?}", r.ring.display());
        assert_eq!(b.committed, r.committed + r.dropped, "{}", r.ring.display());
        assert_eq!(
            (b.invalid, b.abandoned, b.earlier),
            (0, 0, 0),
            "{}",
            r.ring.display()
        );
    }
}
