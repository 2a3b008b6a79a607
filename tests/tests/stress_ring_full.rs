//! Ring full: tiny rings and a drainer that does not drain while producers write (an
//! interval of an hour: one cycle at start, then nothing until SIGTERM's final drain), or a
//! slow one. Producers never block (perf-load finishes although nobody frees a slot),
//! drops are counted exactly (committed + dropped = attempted; with no drain in between,
//! committed is exactly the capacity), and the CSV holds exactly the committed records.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use perf_testkit::{wait_until, Rng};
use perf_tests::stress::{
    alarming, books, dirs, load_report_within, scaled, LoadSpec, Summary, Tally,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");

#[test]
fn stress_ring_full_producers_never_block_and_drops_are_exact() {
    let mut rng = Rng::from_env("stress_ring_full");
    let mut summary = Summary::new("stress_ring_full", rng.seed());
    for trial in 0..scaled(4) {
        summary.trials += 1;
        let dirs = dirs();
        // Even trials: no drain at all while writing. Odd ones: a slow drain (0.2-1 s).
        let frozen = trial % 2 == 0;
        let interval = if frozen {
            "3600".to_owned()
        } else {
            format!("{:.3}", rng.range(200, 1_000) as f64 / 1000.0)
        };
        let daemon = dirs.daemon_with(&interval, |_| {});
        // Let its first cycle pass, so that "frozen" really is idle while producers write.
        assert!(
            wait_until(Duration::from_secs(30), || daemon
                .logged("draining rings in")),
            "drainer did not start"
        );
        std::thread::sleep(Duration::from_millis(500));
        let specs: Vec<LoadSpec> = (0..rng.range(2, 5))
            .map(|i| LoadSpec {
                service: "tiny".into(),
                threads: rng.range(1, 6) as u32,
                records: rng.range(1_000, 50_000) as u32,
                capacity: 1 << rng.range(0, 8),
                // Frozen rings stay alive until the final drain; the others die soon.
                hold_ms: if frozen { 0 } else { rng.range(0, 500) },
                run_id: i as u32 + 1,
            })
            .collect();
        let children: Vec<_> = specs
            .iter()
            .map(|s| s.spawn(Path::new(PERF_LOAD), &dirs.shm))
            .collect();
        // Generous: a producer that waited for the drainer would need the hour.
        let reports: Vec<_> = children
            .into_iter()
            .map(|c| load_report_within(c, Duration::from_secs(90)))
            .collect();
        let log_so_far = daemon.log();
        for (spec, r) in specs.iter().zip(&reports) {
            assert_eq!(r.committed + r.dropped, spec.attempted(), "{spec:?}");
            // "Frozen" holds only if the drainer's first cycle (right after its start-up
            // line) was over before this ring appeared; on a very loaded machine it may
            // not have been, and then it may have freed slots.
            let touched = log_so_far
                .iter()
                .any(|l| l.contains(&format!("draining {}", r.ring.display())));
            if frozen && !touched {
                assert_eq!(
                    r.committed,
                    spec.capacity.min(spec.attempted()),
                    "with nothing drained a ring takes exactly its capacity: {spec:?}"
                );
            } else {
                assert!(r.committed >= spec.capacity.min(spec.attempted()));
            }
            summary.written += r.committed;
            summary.dropped += r.dropped;
        }
        if !frozen {
            assert!(wait_until(Duration::from_secs(60), || dirs
                .rings()
                .is_empty()));
        }
        let (status, log) = daemon.terminate_within(Duration::from_secs(30));
        assert!(status.success(), "drainer exit {status:?}");
        assert!(alarming(&log).is_empty(), "{:#?}", alarming(&log));
        let expected: HashMap<u32, Option<u64>> = reports
            .iter()
            .map(|r| (r.run_id, Some(r.committed)))
            .collect();
        let tally = Tally::of(&dirs.csv(), &expected);
        summary.lost += tally.lost;
        summary.duplicated += tally.duplicated;
        assert!(tally.clean(), "trial {trial}: {}", tally.describe());
        // The drainer's books for each ring agree with the producer's counts.
        let books = books(&log);
        for r in &reports {
            let b = books
                .get(&r.ring)
                .unwrap_or_else(|| panic!("trial {trial}: no books for {}", r.ring.display()));
            assert_eq!(
                (b.written, b.dropped, b.committed),
                (r.committed, r.dropped, r.committed + r.dropped),
                "trial {trial}: {}",
                r.ring.display()
            );
        }
        assert!(dirs.rings().is_empty(), "rings left: {:?}", dirs.rings());
    }
    summary.report();
    assert!(summary.dropped > 0, "no ring ever filled up");
}
