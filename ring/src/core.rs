//! The claim / publish / consume / release protocol, on typed views of the ring.
//!
//! Production builds these views over the shared mapping (`mapping.rs`); the loom models
//! (`loom_tests/`) and this module's own tests build them on the heap. Nothing here knows
//! about files. `Control`, `Slot` and `RingView` are crate-private: outside the crate the
//! protocol is reached only through `ProducerRing` and `ConsumerRing`.
//!
//! Protocol (positions are u64 and never wrap in practice: 2^64 records at 1 GHz is 584
//! years):
//! - `tail` counts claimed positions, `head` counts released ones. A producer may claim
//!   position `p` only while `p - head < capacity`; it claims by CAS on `tail`, so any
//!   number of threads (and processes mapping the same file) can produce. A full ring
//!   makes the producer bump `dropped` and return: it never waits for the consumer.
//! - The producer writes the record into slot `p % capacity` with relaxed atomic stores,
//!   then publishes it by storing `seq = p + 1` with Release.
//! - The single consumer keeps its own read cursor `r` (not in shared memory). Slot `r` is
//!   ready when its `seq` loads (Acquire) as `r + 1`; the stale value of the previous lap is
//!   `r + 1 - capacity`, so laps cannot be confused.
//! - The consumer releases everything below `r'` with one Release store `head = r'`. Until
//!   then released slots cannot be overwritten, so a consumer that crashes after reading
//!   but before releasing finds the records again. A single store makes release atomic
//!   with respect to a crash.

// Under loom only the protocol is built (the file-backed ends are left out), so parts of it
// that only they call are unused there.
#![cfg_attr(perf_ring_loom, allow(dead_code))]

use crate::sync::{AtomicU64, Ordering};
use crate::Record;

/// The mutable counters, each on its own cache line (128 bytes, as crossbeam's
/// `CachePadded` uses on x86_64 and aarch64) so producers claiming do not slow the
/// consumer releasing and vice versa.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    /// Next position to claim (written by producers).
    pub(crate) tail: Padded,
    /// Every position below this one was released by the consumer.
    pub(crate) head: Padded,
    /// Records dropped because the ring was full.
    pub(crate) dropped: Padded,
}

/// One counter alone on a cache line.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Padded(pub(crate) AtomicU64);

/// One slot: the publication sequence, then the record as three 64-bit words. Every word is
/// an atomic so a consumer racing a (possibly hostile) writer is never a data race.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) seq: AtomicU64,
    pub(crate) start_ns: AtomicU64,
    pub(crate) duration_ns: AtomicU64,
    /// `state | (tid << 32)`.
    pub(crate) state_tid: AtomicU64,
}

// Built only on the heap (tests and loom models); production views the mapping, which a
// new ring's creator zeroes (posix_fallocate) before anyone maps it.
#[cfg(test)]
impl Control {
    /// A fresh control block (all zero), as a newly created ring has.
    pub(crate) fn new() -> Self {
        Control {
            tail: Padded(AtomicU64::new(0)),
            head: Padded(AtomicU64::new(0)),
            dropped: Padded(AtomicU64::new(0)),
        }
    }
}

#[cfg(test)]
impl Slot {
    /// An empty slot, as in a newly created ring: `seq = 0` is never `pos + 1` for a
    /// position of the first lap.
    pub(crate) fn new() -> Self {
        Slot {
            seq: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            duration_ns: AtomicU64::new(0),
            state_tid: AtomicU64::new(0),
        }
    }
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The ring was full; the record was dropped and counted in the header.
    Full,
    /// This process is a forked child of the ring's producer: the ring is not its to write
    /// (and, excluded from fork, not even mapped here). Nothing was counted.
    Forked,
}

/// A view of one ring: its control block and its slots. `slots.len()` is a power of two.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingView<'a> {
    ctrl: &'a Control,
    slots: &'a [Slot],
    mask: u64,
}

/// Counters read from the control block. They come from shared memory, so a consumer must
/// treat them as claims, not facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Positions claimed by producers (= records committed, once all are published).
    pub claimed: u64,
    /// Positions released by the consumer.
    pub released: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
}

impl<'a> RingView<'a> {
    /// A view over `slots`. Their number should be a power of two; otherwise only the
    /// largest power of two that fits is used (and an empty slice gives a ring that is
    /// always full), so no input makes the view index out of bounds.
    #[inline]
    pub(crate) fn new(ctrl: &'a Control, slots: &'a [Slot]) -> Self {
        let len = slots.len() as u64;
        let usable = if len == 0 { 1 } else { 1 << len.ilog2() };
        RingView {
            ctrl,
            slots,
            mask: usable - 1,
        }
    }

    #[inline]
    fn slot(&self, pos: u64) -> Option<&'a Slot> {
        // The mask keeps the index in range whatever `pos` a hostile writer left; `get`
        // covers the empty ring.
        self.slots.get((pos & self.mask) as usize)
    }

    /// Capacity in records.
    #[inline]
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Claims a position, writes `record` and publishes it. Lock-free; never waits for the
    /// consumer. Returns the position written. `#[inline]` (like the callers up to
    /// `Tracker`'s), so the producer's hot path inlines across crates without LTO.
    #[inline]
    pub(crate) fn push(&self, record: &Record) -> Result<u64, PushError> {
        let ctrl = self.ctrl;
        let mut pos = ctrl.tail.0.load(Ordering::Relaxed);
        loop {
            // SYNC POINT: pairs with the Release store of `head` in `release`; once we see
            // the consumer released slot `pos - capacity`, its reads of that slot are done.
            let head = ctrl.head.0.load(Ordering::Acquire);
            if pos.wrapping_sub(head) >= self.capacity() {
                ctrl.dropped.0.fetch_add(1, Ordering::Relaxed);
                return Err(PushError::Full);
            }
            match ctrl.tail.0.compare_exchange_weak(
                pos,
                pos + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => pos = now,
            }
        }
        let Some(slot) = self.slot(pos) else {
            return Err(PushError::Full);
        };
        slot.start_ns.store(record.start_ns, Ordering::Relaxed);
        slot.duration_ns
            .store(record.duration_ns, Ordering::Relaxed);
        slot.state_tid.store(
            u64::from(record.state) | (u64::from(record.tid) << 32),
            Ordering::Relaxed,
        );
        // SYNC POINT: pairs with the Acquire load of `seq` in `read`: the record's words
        // are visible to a consumer that sees `pos + 1`.
        slot.seq.store(pos + 1, Ordering::Release);
        Ok(pos)
    }

    /// Copies the record at `pos` out of the ring if it is published, `None` if not (yet).
    pub(crate) fn read(&self, pos: u64) -> Option<Record> {
        // Nothing is ever published at position u64::MAX: its `seq` would wrap to 0, the
        // value of a slot never written. A hostile file whose released position is
        // u64::MAX must not have a zeroed slot read as a record (nor the cursor stepped
        // past u64::MAX).
        let want = pos.checked_add(1)?;
        let slot = self.slot(pos)?;
        // SYNC POINT: pairs with the Release store of `seq` in `push`.
        if slot.seq.load(Ordering::Acquire) != want {
            return None;
        }
        let state_tid = slot.state_tid.load(Ordering::Relaxed);
        Some(Record {
            start_ns: slot.start_ns.load(Ordering::Relaxed),
            duration_ns: slot.duration_ns.load(Ordering::Relaxed),
            state: state_tid as u32,
            tid: (state_tid >> 32) as u32,
        })
    }

    /// Lets producers reuse every slot below `pos`. Only the consumer calls this, after
    /// it has read (and, in the drainer, durably stored) those records.
    pub(crate) fn release(&self, pos: u64) {
        // SYNC POINT: pairs with the Acquire load of `head` in `push`: our reads of the
        // released slots happen before any producer overwrites them.
        self.ctrl.head.0.store(pos, Ordering::Release);
    }

    /// The released position as stored in the ring.
    pub(crate) fn released(&self) -> u64 {
        self.ctrl.head.0.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub(crate) fn counters(&self) -> Counters {
        Counters {
            claimed: self.ctrl.tail.0.load(Ordering::Relaxed),
            released: self.ctrl.head.0.load(Ordering::Relaxed),
            dropped: self.ctrl.dropped.0.load(Ordering::Relaxed),
        }
    }
}

/// The protocol on heap-backed views with std threads: what Miri can check for data races
/// and weak-memory outcomes (`cargo miri test -p perf-ring --lib core::`; loops shrink under
/// Miri), and a plain test run exercises on the hardware at hand.
#[cfg(all(test, not(perf_ring_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    struct Heap {
        ctrl: Control,
        slots: Vec<Slot>,
    }

    impl Heap {
        fn new(capacity: usize) -> Arc<Heap> {
            Arc::new(Heap {
                ctrl: Control::new(),
                slots: (0..capacity).map(|_| Slot::new()).collect(),
            })
        }

        fn view(&self) -> RingView<'_> {
            RingView::new(&self.ctrl, &self.slots)
        }
    }

    fn rec(producer: u32, n: u64) -> Record {
        Record {
            start_ns: n,
            duration_ns: n * 3 + u64::from(producer),
            state: producer,
            tid: producer + 100,
        }
    }

    #[test]
    fn producers_and_a_consumer_on_the_heap_move_every_record_once_in_order() {
        let per_producer: u64 = if cfg!(miri) { 20 } else { 20_000 };
        let heap = Heap::new(4);
        let producers: Vec<_> = (0..2u32)
            .map(|p| {
                let heap = Arc::clone(&heap);
                std::thread::spawn(move || {
                    for n in 0..per_producer {
                        while heap.view().push(&rec(p, n)).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u64; 2];
        let mut pos = 0;
        while pos < 2 * per_producer {
            match heap.view().read(pos) {
                Some(r) => {
                    assert_eq!(
                        r,
                        rec(r.state, next[r.state as usize]),
                        "torn or out of order"
                    );
                    next[r.state as usize] += 1;
                    pos += 1;
                    heap.view().release(pos);
                }
                None => std::thread::yield_now(),
            }
        }
        for h in producers {
            h.join().unwrap();
        }
        let c = heap.view().counters();
        assert_eq!((c.claimed, c.released), (pos, pos));
    }

    #[test]
    fn a_full_ring_drops_and_counts() {
        let heap = Heap::new(2);
        let view = heap.view();
        assert_eq!(view.push(&rec(0, 0)), Ok(0));
        assert_eq!(view.push(&rec(0, 1)), Ok(1));
        assert_eq!(view.push(&rec(0, 2)), Err(PushError::Full));
        assert_eq!(view.counters().dropped, 1);
        assert_eq!(view.read(2), None, "a dropped record is never readable");
        view.release(1);
        assert_eq!(view.push(&rec(0, 3)), Ok(2));
        assert_eq!(view.read(2), Some(rec(0, 3)));
    }
}
