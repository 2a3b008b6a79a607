//! Fuzzing ring validation and consumption on stable Rust: seeded, structure-aware random
//! ring files (valid headers with random records, counters at the edges, lying sequence
//! words, out-of-range states; then random byte edits, cuts and extensions) go through
//! `perf_ring::validate`, `ConsumerRing` (with the file rewritten and truncated under its
//! mapping between reads), and the drainer's library (`Drainer::drain_all`) in-process.
//!
//! Properties: no panic, no crash (SIGBUS included); a ring yields at most `capacity`
//! records per pass; every CSV row is well-formed (`"STATE","digits","digits"`, a valid
//! state name); the drainer always finishes.
//!
//! Runs for `PERF_STRESS_FUZZ_SECS` seconds (default 8, times the `PERF_STRESS` scale).
//! Each case prints its seed if it fails; `PERF_TEST_SEED` replays the whole run.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use perf_drainer::scan::AllowedUids;
use perf_drainer::{Config, Drainer};
use perf_ring::{ConsumerRing, ProducerRing, Record};
use perf_testkit::{Dirs, Rng};
use perf_tests::hostile::{counters, crafted, off, publish, put_u32, put_u64, template};
use perf_tests::stress::{scale, well_formed_row, Summary};

const NAMES: &[&str] = &[
    "ANALYZING_PROTOCOL",
    "CALIBRATING",
    "RUNNING_PROTOCOL",
    "A",
    "Z9_",
];

/// Prints the case's seed if the case panics.
struct CaseGuard(u64);

impl Drop for CaseGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "failing fuzz case seed: {} (the run's seed replays it)",
                self.0
            );
        }
    }
}

/// An interesting u64: an edge, or anything.
fn edge_u64(rng: &mut Rng, near: u64) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => u64::MAX,
        2 => u64::MAX - rng.below(70),
        3 => near.wrapping_add(rng.below(10)),
        4 => near.wrapping_sub(rng.below(10)),
        5 => 1 << rng.below(64),
        6 => rng.next_u64(),
        _ => near,
    }
}

/// A random ring file, mostly well-structured so that the consumer gets past validation.
fn case_bytes(rng: &mut Rng, templates: &mut Vec<(u64, usize, Vec<u8>)>) -> (Vec<u8>, u64) {
    let capacity = 1u64 << rng.below(7);
    let nstates = rng.range(1, NAMES.len() as u64) as usize;
    let mut b = match templates
        .iter()
        .find(|(c, n, _)| *c == capacity && *n == nstates)
    {
        Some((_, _, t)) => t.clone(),
        None => {
            let t = template(&NAMES[..nstates], capacity);
            templates.push((capacity, nstates, t.clone()));
            t
        }
    };
    // Fresh ring id, so that the drainer never confuses two cases.
    put_u64(&mut b, 40, rng.next_u64());
    let base = match rng.below(4) {
        0 => 0,
        1 => rng.below(1_000),
        2 => u64::MAX - rng.below(3 * capacity + 3),
        _ => rng.next_u64() >> rng.below(64),
    };
    let n = rng.below(capacity + 1);
    for i in 0..n {
        let pos = base.wrapping_add(i);
        let state = if rng.chance(1, 8) {
            rng.next_u64() as u32
        } else {
            rng.below(nstates as u64) as u32
        };
        publish(&mut b, capacity, pos, &crafted(1, i as u32, state));
        if rng.chance(1, 10) {
            // A lying sequence word.
            let at = 4096 + (pos % capacity) as usize * 32;
            let lie = edge_u64(rng, pos);
            put_u64(&mut b, at, lie);
        }
    }
    let tail = edge_u64(rng, base.wrapping_add(n));
    let head = edge_u64(rng, base);
    let dropped = edge_u64(rng, 0);
    counters(&mut b, tail, head, dropped);
    // Random damage, mostly small.
    for _ in 0..rng.below(4) {
        // Field edits need the header; a cut may have taken it.
        let op = rng.below(6);
        if b.len() < 4096 && matches!(op, 0..=2 | 5) {
            continue;
        }
        match op {
            0 => {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next_u64() as u8;
            }
            1 => {
                // A header field at an edge value.
                let at = *rng.pick(&[
                    off::VERSION,
                    off::HEADER_SIZE,
                    off::SLOT_SIZE,
                    off::STATE_COUNT,
                ]);
                let v = edge_u64(rng, 1) as u32;
                put_u32(&mut b, at, v);
            }
            2 => {
                let v = edge_u64(rng, capacity);
                put_u64(&mut b, off::CAPACITY, v);
            }
            3 => {
                let cut = rng.below(b.len() as u64 + 1) as usize;
                b.truncate(cut);
            }
            4 => {
                let extra = rng.below(64) as usize;
                b.extend(rng.bytes(extra));
            }
            _ => {
                // A state name byte.
                let at = off::STATES + rng.below(64 * 32) as usize;
                b[at] = *rng.pick(&[b',', b'"', b'\n', b'\r', b'a', 0xc3, 0, b'Z']);
            }
        }
    }
    (b, capacity)
}

/// Reads the ring through `ConsumerRing` while rewriting and cutting the file under the
/// mapping. Returns whether it opened.
fn consume_directly(path: &Path, rng: &mut Rng) -> bool {
    let Ok(mut ring) = ConsumerRing::open(path) else {
        return false;
    };
    let capacity = ring.info().capacity;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("reopen");
    let mut out: Vec<Record> = Vec::new();
    let mut read = 0usize;
    for _ in 0..rng.range(1, 6) {
        match rng.below(7) {
            0 => {
                let at = rng.below(perf_ring::file_size(capacity) + 64);
                let len = rng.range(1, 40) as usize;
                let _ = file.write_at(&rng.bytes(len), at);
            }
            1 => {
                let len = rng.below(perf_ring::file_size(capacity) + 1);
                let _ = file.set_len(len);
            }
            2 => {
                let _ = ring.skip_unpublished();
            }
            3 => {
                let pos = edge_u64(rng, ring.read_pos());
                let _ = ring.seek(pos);
            }
            4 => {
                let pos = edge_u64(rng, ring.read_pos());
                ring.release(pos);
            }
            _ => {
                out.clear();
                let max = rng.range(1, 2 * capacity + 2) as usize;
                if let Ok(n) = ring.read_batch(&mut out, max) {
                    assert_eq!(n, out.len());
                    assert!(n <= max);
                    read += n;
                }
            }
        }
        let _ = ring.counters();
        let _ = ring.producer_alive();
    }
    // Without seeking back, positions only move forward; a slot matches one position.
    let _ = read;
    true
}

#[test]
fn stress_fuzz_ring_validation_and_consumption() {
    let mut rng = Rng::from_env("stress_fuzz");
    let mut summary = Summary::new("stress_fuzz", rng.seed());
    let secs: u64 = std::env::var("PERF_STRESS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
        * scale();
    let dirs = Dirs::with_storage();
    let mut drainer = Drainer::new(Config {
        storage_dir: dirs.storage.clone(),
        shm_dir: dirs.shm.clone(),
        allowed: AllowedUids::with_defaults(&[]),
        context: true,
        rotation: None,
    })
    .expect("drainer");
    let mut templates = Vec::new();
    let (mut opened, mut drained_rows) = (0u64, 0u64);
    let mut csv_len = 0usize;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut i = 0u64;
    while Instant::now() < end {
        i += 1;
        let case_seed = rng.next_u64();
        let _guard = CaseGuard(case_seed);
        let mut case = Rng::with_seed(case_seed);
        let (bytes, capacity) = case_bytes(&mut case, &mut templates);
        summary.bad_files += 1;

        let head = &bytes[..bytes.len().min(4096)];
        let _ = perf_ring::validate(head, bytes.len() as u64);

        let direct = dirs.shm.join(format!(".direct-{i}"));
        std::fs::write(&direct, &bytes).expect("write case");
        if consume_directly(&direct, &mut case) {
            opened += 1;
        }
        let _ = std::fs::remove_file(&direct);

        // The drainer, on a fresh copy; sometimes with a live producer holding the ring
        // first (it must not step over unpublished slots then), dead afterwards.
        let path = dirs.shm.join(format!("case-{i}.ring"));
        std::fs::write(&path, &bytes).expect("write case");
        let live = case
            .chance(1, 4)
            .then(|| ProducerRing::attach(&path).ok())
            .flatten();
        drainer.drain_all().expect("drain");
        drop(live);
        drainer.drain_all().expect("drain");
        let csv = dirs.csv();
        let new = &csv[csv_len.min(csv.len())..];
        let text = std::str::from_utf8(new).expect("CSV is UTF-8");
        assert!(text.is_empty() || text.ends_with("\r\n"), "partial row");
        let rows = text.split_terminator("\r\n").count() as u64;
        for line in text.split_terminator("\r\n") {
            assert!(well_formed_row(line), "case {case_seed}: bad row {line:?}");
        }
        assert!(
            rows <= 2 * capacity,
            "case {case_seed}: {rows} rows from a ring of {capacity} slots"
        );
        drained_rows += rows;
        csv_len = csv.len();
        let _ = std::fs::remove_file(&path);
    }
    summary.trials = i;
    summary.written = drained_rows;
    summary.note = format!("{secs} s, {opened} cases opened by ConsumerRing");
    summary.report();
    assert!(i > 10, "too few cases in {secs} s");
    assert!(
        opened > 0 && drained_rows > 0,
        "the generator never got past validation"
    );
}

/// The regression the hostile corpus found: a released position of u64::MAX made a zeroed
/// slot read as a published record and the cursor overflow.
#[test]
fn stress_fuzz_regression_head_at_u64_max_reads_nothing() {
    let dirs = Dirs::with_storage();
    let mut b = template(&["CALIBRATING"], 4);
    counters(&mut b, u64::MAX, u64::MAX, 0);
    let path = dirs.shm.join("max.ring");
    std::fs::write(&path, &b).unwrap();
    let mut ring = ConsumerRing::open(&path).unwrap();
    let mut out = Vec::new();
    assert_eq!(ring.read_batch(&mut out, 10).unwrap(), 0);
    assert_eq!(ring.skip_unpublished().unwrap(), 0);
    assert_eq!(ring.read_pos(), u64::MAX);
}
