//! The protocol on a real mapping, with real threads and a real fork: what the loom models
//! (`src/loom_tests/`) cannot show.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perf_ring::{ConsumerRing, ProducerRing, PushError, Record};

/// A record whose words all derive from (producer, n): a torn or stale copy shows.
fn rec(producer: u32, n: u64) -> Record {
    Record {
        start_ns: n,
        duration_ns: n.wrapping_mul(0x9e37_79b9) ^ u64::from(producer),
        state: producer,
        tid: producer.wrapping_mul(7) + (n as u32 & 0xff),
    }
}

/// Four producer threads push through a 16-slot ring, wrapping it thousands of times,
/// while a consumer thread reads and releases as it goes: every record arrives exactly
/// once, intact, in each producer's order. This is the execution the `head`
/// Acquire/Release pair protects (a slot overwritten while the consumer still reads it
/// would show as a torn or repeated record); it exercises that pair on the hardware that
/// runs it (weak orderings show only on weakly ordered CPUs such as the Flex's), it does
/// not prove it.
#[test]
fn threads_on_a_real_mapping_lose_and_tear_nothing() {
    const PRODUCERS: u32 = 4;
    let per_producer: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let dir = tempfile::tempdir().unwrap();
    let ring = Arc::new(ProducerRing::create(dir.path(), "threads", &["CALIBRATING"], 16).unwrap());
    let mut consumer = ConsumerRing::open(ring.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let timed_out = Arc::new(AtomicBool::new(false));

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let ring = Arc::clone(&ring);
            let timed_out = Arc::clone(&timed_out);
            std::thread::spawn(move || {
                let mut drops = 0u64;
                for n in 0..per_producer {
                    // A full ring drops; retry until the consumer makes room, so every n
                    // is published exactly once.
                    while ring.push(&rec(p, n)) == Err(PushError::Full) {
                        drops += 1;
                        if timed_out.load(Ordering::Relaxed) {
                            return drops;
                        }
                        std::thread::yield_now();
                    }
                }
                drops
            })
        })
        .collect();

    let total = u64::from(PRODUCERS) * per_producer;
    let mut next = vec![0u64; PRODUCERS as usize];
    let mut seen = 0u64;
    let mut batch = Vec::new();
    while seen < total {
        if Instant::now() > deadline {
            timed_out.store(true, Ordering::Relaxed);
            panic!("only {seen} of {total} records arrived in time");
        }
        batch.clear();
        if consumer.read_batch(&mut batch, 64).unwrap() == 0 {
            std::thread::yield_now();
            continue;
        }
        for r in &batch {
            let p = r.state;
            assert!(p < PRODUCERS, "record of no producer: {r:?}");
            let want = next[p as usize];
            assert_eq!(*r, rec(p, want), "producer {p}: expected its record {want}");
            next[p as usize] += 1;
        }
        seen += batch.len() as u64;
        consumer.release(consumer.read_pos());
    }
    let drops: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
    let c = ring.counters();
    assert_eq!((c.claimed, c.released), (total, total));
    assert_eq!(c.dropped, drops, "every full ring counted");
}

/// `exclude_from_fork` is safe: in a forked child the ring's mapping is gone, and `push`
/// and `counters` notice the fork instead of touching it.
#[test]
fn a_forked_child_cannot_touch_an_excluded_ring() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "forked", &["CALIBRATING"], 8).unwrap();
    ring.exclude_from_fork().unwrap();
    ring.push(&rec(0, 1)).unwrap();

    // SAFETY: the child calls only `push`, `counters` (atomics and a comparison, no lock,
    // no allocation) and `_exit`, as a child of a multi-threaded process must.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let refused = ring.push(&rec(0, 2)) == Err(PushError::Forked);
        let zeros = ring.counters() == perf_ring::Counters::default();
        // SAFETY: ends the child at once, running nothing of the parent's state.
        unsafe { libc::_exit(if refused && zeros { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a live int.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x} (a signal means it touched the unmapped ring)"
    );
    assert_eq!(ring.counters().claimed, 1, "the child wrote nothing");
    ring.push(&rec(0, 3)).unwrap();
}
