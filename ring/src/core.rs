//! The claim / publish / consume / release protocol, on typed views of the ring.
//!
//! Production builds these views over the shared mapping; loom tests build them on the
//! heap. Nothing here knows about files.
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

use crate::sync::{AtomicU64, Ordering};
use crate::Record;

/// The mutable counters, each on its own cache line (128 bytes, as crossbeam's
/// `CachePadded` uses on x86_64 and aarch64) so producers claiming do not slow the
/// consumer releasing and vice versa.
#[repr(C)]
#[derive(Debug)]
pub struct Control {
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
pub struct Padded(pub(crate) AtomicU64);

/// One slot: the publication sequence, then the record as three 64-bit words. Every word is
/// an atomic so a consumer racing a (possibly hostile) writer is never a data race.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    pub(crate) seq: AtomicU64,
    pub(crate) start_ns: AtomicU64,
    pub(crate) duration_ns: AtomicU64,
    /// `state | (tid << 32)`.
    pub(crate) state_tid: AtomicU64,
}

impl Control {
    /// A fresh control block (all zero), as a newly created ring has.
    pub fn new() -> Self {
        Control {
            tail: Padded(AtomicU64::new(0)),
            head: Padded(AtomicU64::new(0)),
            dropped: Padded(AtomicU64::new(0)),
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Slot {
    /// An empty slot for position `index` of the first lap: `seq = 0` is never `index + 1`.
    pub fn new() -> Self {
        Slot {
            seq: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            duration_ns: AtomicU64::new(0),
            state_tid: AtomicU64::new(0),
        }
    }
}

impl Default for Slot {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The ring was full; the record was dropped and counted in the header.
    Full,
}

/// A view of one ring: its control block and its slots. `slots.len()` is a power of two.
#[derive(Debug, Clone, Copy)]
pub struct RingView<'a> {
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
    pub fn new(ctrl: &'a Control, slots: &'a [Slot]) -> Self {
        let len = slots.len() as u64;
        let usable = if len == 0 { 1 } else { 1 << len.ilog2() };
        RingView {
            ctrl,
            slots,
            mask: usable - 1,
        }
    }

    fn slot(&self, pos: u64) -> Option<&'a Slot> {
        // The mask keeps the index in range whatever `pos` a hostile writer left; `get`
        // covers the empty ring.
        self.slots.get((pos & self.mask) as usize)
    }

    /// Capacity in records.
    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Claims a position, writes `record` and publishes it. Lock-free; never waits for the
    /// consumer. Returns the position written.
    pub fn push(&self, record: &Record) -> Result<u64, PushError> {
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
    pub fn read(&self, pos: u64) -> Option<Record> {
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
    pub fn release(&self, pos: u64) {
        // SYNC POINT: pairs with the Acquire load of `head` in `push`: our reads of the
        // released slots happen before any producer overwrites them.
        self.ctrl.head.0.store(pos, Ordering::Release);
    }

    /// The released position as stored in the ring.
    pub fn released(&self) -> u64 {
        self.ctrl.head.0.load(Ordering::Acquire)
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        Counters {
            claimed: self.ctrl.tail.0.load(Ordering::Relaxed),
            released: self.ctrl.head.0.load(Ordering::Relaxed),
            dropped: self.ctrl.dropped.0.load(Ordering::Relaxed),
        }
    }
}
