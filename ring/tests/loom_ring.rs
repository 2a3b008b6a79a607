//! loom models of the claim / publish / consume / release protocol (`src/core.rs`).
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p perf-ring --profile loom --test loom_ring`
//!
//! loom explores every interleaving (up to the preemption bound) and every value a
//! Relaxed/Acquire load may legally return under the C11 model, so a missing
//! Acquire/Release pair shows up as a torn or stale record below.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use perf_ring::{Control, Record, RingView, Slot};

struct Ring {
    ctrl: Control,
    slots: Vec<Slot>,
}

impl Ring {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Ring {
            ctrl: Control::new(),
            slots: (0..capacity).map(|_| Slot::new()).collect(),
        })
    }

    fn view(&self) -> RingView<'_> {
        RingView::new(&self.ctrl, &self.slots)
    }
}

/// A record whose every word is derived from (producer, n), so a torn or stale copy is
/// detectable: all three words must agree.
fn rec(producer: u32, n: u64) -> Record {
    Record {
        start_ns: n,
        duration_ns: n * 1000 + u64::from(producer),
        state: producer,
        tid: producer + 100,
    }
}

fn assert_intact(r: &Record) {
    assert_eq!(r.tid, r.state + 100, "torn record {r:?}");
    assert_eq!(
        r.duration_ns,
        r.start_ns * 1000 + u64::from(r.state),
        "torn record {r:?}"
    );
}

/// Reads everything published from `pos` on; returns the new position.
fn drain(view: RingView<'_>, mut pos: u64, out: &mut Vec<Record>) -> u64 {
    while let Some(r) = view.read(pos) {
        assert_intact(&r);
        out.push(r);
        pos += 1;
    }
    pos
}

/// Proves: with two producers and one consumer reading and releasing concurrently across
/// a wrap-around of a 2-slot ring, every published record is consumed exactly once, intact,
/// in each producer's order, and attempted = published + dropped.
#[test]
fn loom_two_producers_one_consumer_wrap_around() {
    loom::model(|| {
        let ring = Ring::new(2);
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || {
                    let mut published = Vec::new();
                    for n in 0..2 {
                        if ring.view().push(&rec(p, n)).is_ok() {
                            published.push(n);
                        }
                    }
                    published
                })
            })
            .collect();

        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut pos = 0;
                for _ in 0..2 {
                    pos = drain(ring.view(), pos, &mut got);
                    ring.view().release(pos);
                    thread::yield_now();
                }
                (got, pos)
            })
        };

        let published: Vec<Vec<u64>> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        let (mut got, pos) = consumer.join().unwrap();
        let end = drain(ring.view(), pos, &mut got);
        ring.view().release(end);

        for p in 0..2u32 {
            let mine: Vec<u64> = got
                .iter()
                .filter(|r| r.state == p)
                .map(|r| r.start_ns)
                .collect();
            assert_eq!(
                mine, published[p as usize],
                "producer {p}: exactly once, in order"
            );
        }
        let total: usize = published.iter().map(Vec::len).sum();
        let c = ring.view().counters();
        assert_eq!(c.claimed as usize, total);
        assert_eq!(c.claimed + c.dropped, 4, "attempted = published + dropped");
        assert_eq!(got.len(), total);
    });
}

/// Proves: when producers race on a full ring with no consumer, exactly `capacity`
/// records are published, every other attempt is counted as dropped, and no published
/// record is overwritten by a dropped one.
#[test]
fn loom_full_ring_drops_are_counted_exactly() {
    loom::model(|| {
        let ring = Ring::new(2);
        let handles: Vec<_> = (0..3u32)
            .map(|p| {
                let ring = ring.clone();
                thread::spawn(move || ring.view().push(&rec(p, 1)).is_ok())
            })
            .collect();
        let ok: Vec<bool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let published: Vec<u32> = (0..3u32).filter(|p| ok[*p as usize]).collect();
        assert_eq!(published.len(), 2, "a 2-slot ring takes exactly two");
        let c = ring.view().counters();
        assert_eq!((c.claimed, c.dropped), (2, 1));
        let mut got = Vec::new();
        drain(ring.view(), 0, &mut got);
        let mut producers: Vec<u32> = got.iter().map(|r| r.state).collect();
        producers.sort_unstable();
        assert_eq!(
            producers, published,
            "slots hold exactly the published records"
        );
    });
}

/// Proves: a release racing with a new claim is safe. The consumer's read of the old record
/// happens before the producer's overwrite (head Release / Acquire), the new record is
/// either dropped (producer saw the old head) or published intact, never lost silently.
#[test]
fn loom_release_races_with_claim() {
    loom::model(|| {
        let ring = Ring::new(1);
        ring.view().push(&rec(0, 7)).unwrap();

        let consumer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let first = ring
                    .view()
                    .read(0)
                    .expect("published before the threads start");
                assert_intact(&first);
                assert_eq!(first, rec(0, 7), "not overwritten before release");
                ring.view().release(1);
                // Then try once for the next record.
                ring.view().read(1)
            })
        };
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || ring.view().push(&rec(1, 9)).is_ok())
        };

        let second_seen = consumer.join().unwrap();
        let pushed = producer.join().unwrap();
        if let Some(r) = second_seen {
            assert!(pushed, "a record read must have been published");
            assert_eq!(r, rec(1, 9));
        }
        let c = ring.view().counters();
        if pushed {
            assert_eq!((c.claimed, c.dropped), (2, 0));
            assert_eq!(
                ring.view().read(1),
                Some(rec(1, 9)),
                "published, so readable"
            );
        } else {
            assert_eq!((c.claimed, c.dropped), (1, 1));
            assert_eq!(ring.view().read(1), None);
        }
    });
}
