//! One record's claim + write + publish, against the clock reads a span needs anyway.
//!
//! Baseline: two `Instant::now()` calls (the least any duration measurement costs),
//! measured in the same run. The ring is released periodically so every push takes the
//! real write path, not the (cheaper) full-ring drop path.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use perf_ring::{ConsumerRing, ProducerRing, Record};

fn bench(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("perf-ring-bench")
        .tempdir_in(if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        })
        .unwrap();
    let capacity = 1 << 16;
    let ring = ProducerRing::create(dir.path(), "bench", &["CALIBRATING"], capacity).unwrap();
    let mut consumer = ConsumerRing::open(ring.path()).unwrap();

    let mut group = c.benchmark_group("ring");
    group.bench_function("baseline: two Instant::now()", |b| {
        b.iter(|| {
            let t0 = Instant::now();
            let t1 = Instant::now();
            black_box(t1.duration_since(t0))
        })
    });
    group.bench_function("push (claim + write + publish)", |b| {
        let mut n = 0u64;
        let mut batch = Vec::new();
        b.iter(|| {
            n += 1;
            if n % (capacity / 2) == 0 {
                // Consume + release outside the hot path's steady state: amortised, and
                // keeps the ring from filling up.
                batch.clear();
                let _ = consumer.read_batch(&mut batch, usize::MAX);
                consumer.release(consumer.read_pos());
            }
            let r = Record {
                start_ns: n,
                duration_ns: n,
                state: 0,
                tid: 1,
            };
            black_box(ring.push(black_box(&r)))
        })
    });
    group.bench_function("push into a full ring (drop + count)", |b| {
        let full = ProducerRing::create(dir.path(), "bench-full", &["A"], 1).unwrap();
        let r = Record {
            start_ns: 1,
            duration_ns: 1,
            state: 0,
            tid: 1,
        };
        let _ = full.push(&r);
        b.iter(|| black_box(full.push(black_box(&r))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
