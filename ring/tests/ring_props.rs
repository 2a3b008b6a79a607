//! Property tests: hostile bytes never panic the validator or the consumer, and any
//! sequence of produce / consume / release on a real mapping keeps the books balanced.

use std::path::Path;

use perf_ring::{validate, ConsumerRing, ProducerRing, Record, RingError};
use proptest::prelude::*;

fn template(dir: &Path) -> Vec<u8> {
    let ring = ProducerRing::create(dir, "prop", &["A", "B_2"], 4).unwrap();
    let bytes = std::fs::read(ring.path()).unwrap();
    std::fs::remove_file(ring.path()).unwrap();
    bytes
}

fn check_open(dir: &Path, bytes: &[u8]) {
    let path = dir.join("case.ring");
    std::fs::write(&path, bytes).unwrap();
    match ConsumerRing::open(&path) {
        Ok(mut ring) => {
            // A valid ring must be fully usable, whatever its slots and counters hold.
            let info = ring.info().clone();
            assert!(info.capacity.is_power_of_two());
            assert_eq!(info.file_size(), bytes.len() as u64);
            let mut out = Vec::new();
            ring.read_batch(&mut out, 1 << 20).unwrap();
            assert!(out.len() as u64 <= info.capacity);
            let _ = ring.counters().unwrap();
            ring.skip_unpublished().unwrap();
        }
        Err(RingError::Io { .. }) => panic!("a readable file must not give an I/O error"),
        Err(_) => {}
    }
    std::fs::remove_file(&path).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    /// Any byte string is a ring or a typed error.
    #[test]
    fn random_bytes_validate_or_fail_typed(bytes in proptest::collection::vec(any::<u8>(), 0..9000)) {
        let _ = validate(&bytes, bytes.len() as u64);
        let dir = tempfile::tempdir().unwrap();
        check_open(dir.path(), &bytes);
    }

    /// Mutations of a valid ring (the interesting neighbourhood: right magic, some field
    /// off) are a ring or a typed error, and a ring that opens is safe to drain.
    #[test]
    fn mutated_rings_validate_or_fail_typed(
        edits in proptest::collection::vec((0usize..4096 + 4 * 32, any::<u8>()), 1..8),
        cut in proptest::option::of(0usize..4096 + 4 * 32),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = template(dir.path());
        for (at, value) in edits {
            bytes[at] = value;
        }
        if let Some(len) = cut {
            bytes.truncate(len);
        }
        check_open(dir.path(), &bytes);
    }

    /// Any interleaving of pushes, reads and releases keeps
    /// `published = consumed + in ring` and `attempted = published + dropped`, and hands
    /// out records in the order they were published.
    #[test]
    fn books_balance_for_any_operation_sequence(
        ops in proptest::collection::vec(0u8..3, 1..400),
        capacity_log2 in 0u32..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let capacity = 1u64 << capacity_log2;
        let producer = ProducerRing::create(dir.path(), "prop", &["A"], capacity).unwrap();
        let mut consumer = ConsumerRing::open(producer.path()).unwrap();
        let (mut attempted, mut published, mut consumed) = (0u64, 0u64, 0u64);
        let mut batch = Vec::new();
        let mut next_expected = 0u64;
        for op in ops {
            match op {
                0 => {
                    let r = Record { start_ns: attempted, duration_ns: 1, state: 0, tid: 1 };
                    if producer.push(&r).is_ok() {
                        published += 1;
                    }
                    attempted += 1;
                }
                1 => {
                    batch.clear();
                    consumed += consumer.read_batch(&mut batch, 3).unwrap() as u64;
                    for r in &batch {
                        prop_assert!(r.start_ns >= next_expected, "order kept");
                        next_expected = r.start_ns + 1;
                    }
                }
                _ => consumer.release(consumer.read_pos()),
            }
            let c = consumer.counters().unwrap();
            prop_assert_eq!(c.claimed, published);
            prop_assert_eq!(attempted, published + c.dropped);
            prop_assert_eq!(published, consumed + (c.claimed - consumer.read_pos()));
            prop_assert!(c.claimed - c.released <= capacity);
        }
    }
}
