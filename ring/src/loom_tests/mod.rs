//! loom models of the ring protocol (`core.rs`), on heap-backed views: loom's atomics
//! cannot live in an mmap.
//!
//! Run with:
//! `RUSTFLAGS="--cfg perf_ring_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom
//! cargo test -p perf-ring --profile loom --lib loom_`
//!
//! What loom checks here: every interleaving of the threads' atomic operations up to the
//! preemption bound, and for each load every value the C11 model lets it return *from
//! stores that already happened* in that interleaving (a Relaxed or Acquire load may see an
//! older value than the latest). So the models catch a publication that is not ordered
//! (the record's words visible later than its `seq`: the `seq` Release/Acquire pair), a
//! consumer that reads past what is published, a lost or doubled record, wrong counters.
//!
//! What loom cannot check: a load returning a value from a store that comes *later* in the
//! interleaving ("load buffering"; loom's docs: relaxed loads cannot observe stores that
//! happen later). That is the outcome the `head` pair (the producer's Acquire load of
//! `head`, the consumer's Release store of it) exists to forbid: the consumer's read of a
//! slot seeing the overwrite by a producer that claimed the slot after the release. So the
//! models do not prove that pair. Weakening it to Relaxed does fail
//! `loom_two_producers_one_consumer_wrap_around` (a published record is never read: tried
//! when these models moved here), through executions loom can model, while
//! `loom_release_races_with_claim`, written for it, still passes. The load-buffering
//! outcome is covered by the argument at the SYNC POINT comments, and exercised (not
//! proved) by `ring/tests/ring_file.rs`'s threads on a real mapping
//! (`threads_on_a_real_mapping_lose_and_tear_nothing`) on whatever hardware runs them:
//! x86-64 never reorders a load with a later store, so only a weakly ordered machine (the
//! Flex's Cortex-A53; not qemu-user on an x86 host, which inherits the host's order) could
//! show it there. Miri, which does model weak memory on the heap-backed view, is not
//! installable here (rustup cannot fetch components), so the heap-backed tests in
//! `core.rs` are ready for `cargo miri test -p perf-ring --lib core::` but not run by CI.

mod loom_ring;

use crate::core::{Control, RingView, Slot};
use crate::Record;

/// A ring on the heap: what production builds over the mapping.
pub(super) struct Ring {
    ctrl: Control,
    slots: Vec<Slot>,
}

impl Ring {
    pub(super) fn new(capacity: usize) -> loom::sync::Arc<Self> {
        loom::sync::Arc::new(Ring {
            ctrl: Control::new(),
            slots: (0..capacity).map(|_| Slot::new()).collect(),
        })
    }

    pub(super) fn view(&self) -> RingView<'_> {
        RingView::new(&self.ctrl, &self.slots)
    }
}

/// A record whose every word is derived from (producer, n), so a torn or stale copy is
/// detectable: all three words must agree.
pub(super) fn rec(producer: u32, n: u64) -> Record {
    Record {
        start_ns: n,
        duration_ns: n * 1000 + u64::from(producer),
        state: producer,
        tid: producer + 100,
    }
}

pub(super) fn assert_intact(r: &Record) {
    assert_eq!(r.tid, r.state + 100, "torn record {r:?}");
    assert_eq!(
        r.duration_ns,
        r.start_ns * 1000 + u64::from(r.state),
        "torn record {r:?}"
    );
}

/// Reads everything published from `pos` on; returns the new position.
pub(super) fn drain(view: RingView<'_>, mut pos: u64, out: &mut Vec<Record>) -> u64 {
    while let Some(r) = view.read(pos) {
        assert_intact(&r);
        out.push(r);
        pos += 1;
    }
    pos
}
