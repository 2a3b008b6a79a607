//! What a span costs, against the least any duration measurement costs (two
//! `Instant::now()` calls), measured in the same run.
//!
//! The ring lives in a temporary directory under `/dev/shm` and is drained (read and
//! released) between timed batches, outside the timing, so every timed span takes the
//! write path and never the cheaper full-ring drop path.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use perf_producer::{Config, RobotActivityState, Tracker};
use perf_ring::ConsumerRing;

/// Spans per timed batch: the ring (capacity 2^16) never fills within one.
const BATCH: u64 = 8192;

fn tracker(dir: &std::path::Path, enabled: bool) -> Tracker {
    let mut config = Config::new("bench");
    config.enabled = Some(enabled);
    config.shm_dir = Some(dir.to_path_buf());
    Tracker::new(config)
}

fn drain(consumer: &mut ConsumerRing, buf: &mut Vec<perf_ring::Record>) {
    loop {
        buf.clear();
        if consumer.read_batch(buf, 1 << 16).unwrap() == 0 {
            break;
        }
    }
    consumer.release(consumer.read_pos());
}

/// Runs `iters` calls of `f` in timed batches with `between` run untimed after each.
fn batched(iters: u64, mut f: impl FnMut(), mut between: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        total += t.elapsed();
        between();
        left -= n;
    }
    total
}

/// Two threads each run `iters` calls of `f` at once, in batches; the ring is drained
/// between batches while both wait. Returns the slower thread's time.
fn two_threads(iters: u64, f: &(dyn Fn() + Sync), between: &mut dyn FnMut()) -> Duration {
    let start = Barrier::new(3);
    let done = Barrier::new(3);
    let batches = iters.div_ceil(BATCH);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut total = Duration::ZERO;
                    for _ in 0..batches {
                        start.wait();
                        let t = Instant::now();
                        for _ in 0..BATCH {
                            f();
                        }
                        total += t.elapsed();
                        done.wait();
                    }
                    total
                })
            })
            .collect();
        for _ in 0..batches {
            start.wait();
            done.wait();
            between();
        }
        let slowest = workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap_or_default();
        // Scale back to `iters` calls per thread.
        slowest.mul_f64(iters as f64 / (batches * BATCH) as f64)
    })
}

fn span(c: &mut Criterion) {
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let on = tracker(dir.path(), true);
    assert!(on.is_enabled(), "{:?}", on.setup_error());
    let off = tracker(dir.path(), false);
    let mut consumer = ConsumerRing::open(&on.ring_path().unwrap()).unwrap();
    let mut buf = Vec::with_capacity(1 << 16);
    let state = RobotActivityState::Calibrating;

    let mut group = c.benchmark_group("span");
    group.bench_function("baseline_two_instant_now", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || {
                    let a = Instant::now();
                    let b = Instant::now();
                    black_box((a, b));
                },
                || {},
            )
        })
    });
    group.bench_function("on", |b| {
        b.iter_custom(|iters| {
            batched(
                iters,
                || drop(black_box(on.span(state))),
                || drain(&mut consumer, &mut buf),
            )
        })
    });
    group.bench_function("off", |b| {
        b.iter_custom(|iters| batched(iters, || drop(black_box(off.span(state))), || {}))
    });
    group.bench_function("baseline_two_instant_now_two_threads", |b| {
        b.iter_custom(|iters| {
            let f = || {
                let a = Instant::now();
                let b = Instant::now();
                black_box((a, b));
            };
            two_threads(iters, &f, &mut || {})
        })
    });
    group.bench_function("on_two_threads", |b| {
        b.iter_custom(|iters| {
            let f = || drop(black_box(on.span(state)));
            two_threads(iters, &f, &mut || drain(&mut consumer, &mut buf))
        })
    });
    group.finish();
    drain(&mut consumer, &mut buf);
    let counters = on.counters().unwrap();
    assert_eq!(counters.dropped, 0, "a timed span took the full-ring path");
}

criterion_group!(benches, span);
criterion_main!(benches);
