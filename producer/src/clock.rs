//! Clocks, and the per-thread cache the hot path reads: kernel tid and the wall-clock
//! offset.
//!
//! A span reads CLOCK_MONOTONIC twice (vDSO, no syscall) and derives its wall-clock start
//! as `start_monotonic + offset`, where `offset = CLOCK_REALTIME - CLOCK_MONOTONIC`. Linux
//! advances both clocks at the same (NTP-slewed) rate; their difference changes only when
//! the wall clock is stepped (`settimeofday`, `clock_settime`, leap seconds). So the
//! derived start equals CLOCK_REALTIME to within the error of capturing the offset (one
//! clock read, tens of ns), far inside the 1 ms we promise. Each thread re-captures its
//! offset when [`REFRESH_NS`] of monotonic time have passed since the last capture (a
//! compare on the hot path, no counter to write), so after a step the derived time
//! follows within that interval.

use std::cell::Cell;

use crate::fork;

/// How often (monotonic ns) a thread re-captures the wall-clock offset.
pub const REFRESH_NS: u64 = 100_000_000;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        // Only an invalid clock id fails; both ids used here always exist on Linux.
        return 0;
    }
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// CLOCK_MONOTONIC in ns (what `Instant::now()` reads, without the wrapper).
///
/// ```
/// let a = perf_producer::clock::monotonic_ns();
/// assert!(perf_producer::clock::monotonic_ns() >= a);
/// ```
#[inline]
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in ns since the epoch.
///
/// ```
/// assert!(perf_producer::clock::realtime_ns() > 1_600_000_000_000_000_000);
/// ```
#[inline]
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC`, read with the wall clock between two monotonic
/// reads and compared against their midpoint.
fn capture_offset() -> (i64, u64) {
    let before = monotonic_ns();
    let real = realtime_ns();
    let after = monotonic_ns();
    let mid = before + (after.wrapping_sub(before) / 2);
    (real.wrapping_sub(mid) as i64, after)
}

fn gettid() -> u32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    tid as u32
}

#[derive(Clone, Copy)]
struct ThreadCache {
    /// Fork generation the cache was filled in; a forked child's thread has a new tid.
    generation: u64,
    tid: u32,
    offset: i64,
    /// Monotonic time after which the offset is re-captured.
    refresh_at: u64,
}

thread_local! {
    // Const-initialised and without a destructor: accessible until the thread is gone,
    // including from other thread-locals' destructors.
    static CACHE: Cell<ThreadCache> = const {
        Cell::new(ThreadCache { generation: u64::MAX, tid: 0, offset: 0, refresh_at: 0 })
    };
}

#[cold]
#[inline(never)]
fn refill(generation: u64) -> ThreadCache {
    let (offset, now) = capture_offset();
    ThreadCache {
        generation,
        tid: gettid(),
        offset,
        refresh_at: now.saturating_add(REFRESH_NS),
    }
}

/// This thread's kernel tid and the current wall-clock offset, as seen at monotonic time
/// `now`. No syscall unless the cache is stale.
#[inline]
pub(crate) fn thread_view(now: u64) -> (u32, i64) {
    let generation = fork::generation();
    let fresh = |cache: &Cell<ThreadCache>| {
        let mut c = cache.get();
        if c.generation != generation || now >= c.refresh_at {
            c = refill(generation);
            cache.set(c);
        }
        (c.tid, c.offset)
    };
    CACHE.try_with(fresh).unwrap_or_else(|_| {
        let c = refill(generation);
        (c.tid, c.offset)
    })
}

/// This thread's kernel tid (cached).
///
/// ```
/// assert!(perf_producer::clock::current_tid() > 0);
/// ```
pub fn current_tid() -> u32 {
    thread_view(monotonic_ns()).0
}

/// Wall-clock ns for the monotonic reading `mono`, through this thread's cached offset.
#[inline]
pub(crate) fn wall_from_monotonic(mono: u64, offset: i64) -> u64 {
    mono.wrapping_add_signed(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_wall_clock_is_within_a_millisecond_of_realtime() {
        for _ in 0..1000 {
            let mono = monotonic_ns();
            let (_, offset) = thread_view(mono);
            let derived = wall_from_monotonic(mono, offset);
            let real = realtime_ns();
            // `real` was read after `mono`, so it may only be ahead, and not by 1 ms.
            let diff = real as i128 - derived as i128;
            assert!((-1_000_000..1_000_000).contains(&diff), "diff {diff} ns");
        }
    }

    #[test]
    fn tid_is_the_kernel_tid_of_each_thread() {
        let main = current_tid();
        // SAFETY: getpid cannot fail.
        let pid = unsafe { libc::getpid() } as u32;
        let other = std::thread::spawn(current_tid).join().unwrap();
        assert_ne!(main, other);
        assert!(other != pid);
    }
}
