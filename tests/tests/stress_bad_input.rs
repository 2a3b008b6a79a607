//! Bad input: a corpus of hostile entries (`perf_tests::hostile`: random bytes, truncated,
//! wrong magic/version/sizes, huge or illegal capacities, bad state counts, state and service
//! names with commas, quotes, newlines and non-ASCII, lying counters and sequence words,
//! out-of-range state indices, symlinks, a FIFO, a socket, a directory, a hard link to a live
//! ring, a foreign owner) beside live `perf-load` rings, plus a ring truncated while the
//! drainer has it mapped. The good rings drain exactly once; each bad entry is skipped with
//! one clear log line or (valid header, lying contents) drained without trusting it; no
//! panic, no hang.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use perf_ring::ProducerRing;
use perf_testkit::{wait_until, Rng};
use perf_tests::hostile::{crafted, plant_corpus, Expect, HOSTILE_TAG};
use perf_tests::stress::{
    alarming_except, dirs, load_report_within, scaled, LoadSpec, Summary, Tally,
};

const PERF_LOAD: &str = env!("CARGO_BIN_EXE_perf-load");
const VICTIM_CASE: u32 = 99;

#[test]
fn stress_bad_input_is_skipped_and_good_rings_drain() {
    let mut rng = Rng::from_env("stress_bad_input");
    let mut summary = Summary::new("stress_bad_input", rng.seed());
    for trial in 0..scaled(2) {
        summary.trials += 1;
        let dirs = dirs();
        let specs: Vec<LoadSpec> = (0..2)
            .map(|i| LoadSpec {
                service: "good".into(),
                threads: rng.range(1, 4) as u32,
                records: rng.range(1_000, 20_000) as u32,
                capacity: 1 << 16,
                hold_ms: 1_500,
                run_id: i + 1,
            })
            .collect();
        let children: Vec<_> = specs
            .iter()
            .map(|s| s.spawn(Path::new(PERF_LOAD), &dirs.shm))
            .collect();
        assert!(wait_until(Duration::from_secs(30), || dirs.rings().len() == 2));
        let good = dirs.rings()[0].clone();
        let planted = plant_corpus(&dirs.shm, &good, &mut rng);

        // A live ring that will be truncated under the drainer's mapping.
        let victim = ProducerRing::create(&dirs.shm, "victim", &["CALIBRATING"], 64).unwrap();
        for seq in 0..10 {
            victim.push(&crafted(VICTIM_CASE, seq, 0)).unwrap();
        }
        let victim_path = victim.path().to_path_buf();

        let daemon = dirs.daemon_with("0.05", |_| {});
        let opened = format!("draining {}", victim_path.display());
        assert!(
            wait_until(Duration::from_secs(30), || daemon.logged(&opened)),
            "victim never opened"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&victim_path)
            .unwrap()
            .set_len(100)
            .unwrap();
        // Published after the cut: the drainer must not see these (nor crash on them).
        let vanished = wait_until(Duration::from_secs(30), || {
            daemon.logged("truncated while mapped")
        });

        let reports: Vec<_> = children
            .into_iter()
            .map(|c| load_report_within(c, Duration::from_secs(120)))
            .collect();
        let skip_line = |name: &str| format!("skipping {}: ", dirs.shm.join(name).display());
        let settled = wait_until(Duration::from_secs(60), || {
            let log = daemon.log();
            planted.iter().all(|p| match &p.expect {
                Expect::Skipped(_) => {
                    let needle = skip_line(&p.name);
                    log.iter().any(|l| l.contains(&needle))
                }
                _ => !dirs.shm.join(&p.name).exists(),
            }) && reports.iter().all(|r| !r.ring.exists())
        });
        drop(victim);
        let (status, log) = daemon.terminate_within(Duration::from_secs(30));
        summary.bad_files += planted.len() as u64 + 1;

        let liars: Vec<&str> = planted
            .iter()
            .filter(|p| !matches!(p.expect, Expect::Skipped(_)))
            .map(|p| p.name.as_str())
            .collect();
        let alarms = alarming_except(&log, &liars);
        assert!(alarms.is_empty(), "trial {trial}: {alarms:#?}");
        assert!(status.success(), "trial {trial}: drainer exit {status:?}");
        assert!(
            settled,
            "trial {trial}: not settled in 60 s:\n{}",
            log.join("\n")
        );
        assert!(
            vanished,
            "trial {trial}: truncation under the mapping not reported"
        );

        let mut expected: HashMap<u32, Option<u64>> = reports
            .iter()
            .map(|r| (r.run_id, Some(r.committed)))
            .collect();
        expected.insert(HOSTILE_TAG, None);
        let tally = Tally::of(&dirs.csv(), &expected);
        summary.written += reports.iter().map(|r| r.committed).sum::<u64>();
        summary.lost += tally.lost;
        summary.duplicated += tally.duplicated;
        assert!(tally.clean(), "trial {trial}: {}", tally.describe());

        let crafted_seqs = tally.seqs(HOSTILE_TAG);
        for p in &planted {
            match &p.expect {
                Expect::Skipped(why) => {
                    let needle = skip_line(&p.name);
                    let lines: Vec<&String> = log.iter().filter(|l| l.contains(&needle)).collect();
                    assert_eq!(lines.len(), 1, "trial {trial}: {}: {lines:#?}", p.name);
                    assert!(
                        why.iter().any(|w| lines[0].contains(w)),
                        "trial {trial}: {}: expected one of {why:?} in {:?}",
                        p.name,
                        lines[0]
                    );
                }
                Expect::Drained { case, seqs } => {
                    let got = crafted_seqs.get(case).cloned().unwrap_or_default();
                    assert_eq!(&got, seqs, "trial {trial}: {}", p.name);
                }
                Expect::DrainedSubset { .. } => {}
            }
        }
        assert!(
            log.iter().any(|l| l.contains("record with state index")),
            "trial {trial}: out-of-range state index not reported"
        );
        // What the victim gave before the cut is a prefix of what it had.
        if let Some(v) = crafted_seqs.get(&VICTIM_CASE) {
            assert_eq!(*v, (0..v.len() as u32).collect::<Vec<_>>());
        }
    }
    summary.report();
}
