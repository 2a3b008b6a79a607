//! The three models; what loom can and cannot check is in `mod.rs`.

use loom::thread;

use super::{assert_intact, drain, rec, Ring};

/// Proves, for two producers pushing twice each and one consumer reading and releasing
/// twice, concurrently, on a 2-slot ring (so positions wrap): every record a producer was
/// told is published is read exactly once, intact (the `seq` Release/Acquire pair: no
/// word of it is older than its `seq`), in that producer's order; `claimed` equals the
/// published count and `claimed + dropped` the four attempts.
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

/// Proves, for three producers racing once each on a 2-slot ring with no consumer: exactly
/// two are published (the CAS on `tail` hands out each position once), the third is counted
/// in `dropped`, and the slots hold exactly the two published records.
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

/// Proves, for a 1-slot ring holding one record, a consumer that reads it, releases it and
/// reads once more, racing a producer that pushes a second: the second record is either
/// dropped and counted (the producer saw the old `head`) or published and then readable
/// intact, never lost silently, and a record the consumer reads was published. It does not
/// prove that the first read cannot see the second record's words (that needs the `head`
/// pair, which loom cannot check: see `mod.rs`); the `assert_eq!` on the first read only
/// holds because loom never shows a load a later store.
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
