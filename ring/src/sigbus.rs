//! Surviving a ring file truncated under our mapping.
//!
//! A producer (or anyone with write access) can `ftruncate` a ring while the drainer has it
//! mapped; touching the vanished pages raises SIGBUS, which would kill the drainer. As
//! libwayland-server does for client shm pools, a SIGBUS handler checks whether the fault
//! lies in a registered mapping; if so it maps anonymous zero pages over the whole region
//! (the faulting load then reads 0, which no published slot holds), marks the region hit
//! and returns. The consumer checks the mark after every access batch and discards what it
//! read. Faults anywhere else go to the previous handler (by default: the process dies, as
//! it would have).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::RingError;

/// Regions that may be mapped at once by one process.
pub(crate) const MAX_REGIONS: usize = 1024;

struct Region {
    start: AtomicUsize,
    len: AtomicUsize,
    hit: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // used only to initialise the array
const EMPTY: Region = Region {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    hit: AtomicBool::new(false),
};

static REGIONS: [Region; MAX_REGIONS] = [EMPTY; MAX_REGIONS];
/// The disposition that was in place before ours, for faults that are not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A registered mapping; deregisters on drop (drop it before unmapping).
#[derive(Debug)]
pub(crate) struct Guard {
    index: usize,
}

impl Guard {
    /// Whether a fault was caught in this region: its contents are gone.
    pub(crate) fn hit(&self) -> bool {
        REGIONS[self.index].hit.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let r = &REGIONS[self.index];
        r.hit.store(false, Ordering::Relaxed);
        r.len.store(0, Ordering::Relaxed);
        // Frees the entry: pairs with the CAS in `register`.
        r.start.store(0, Ordering::Release);
    }
}

/// Registers `[start, start + len)` as a ring mapping whose faults are survivable.
pub(crate) fn register(start: usize, len: usize) -> Result<Guard, RingError> {
    install();
    for (index, r) in REGIONS.iter().enumerate() {
        // A placeholder start of 1 reserves the entry while `len` is filled in; the
        // handler's range check fails for it because `len` is still 0.
        if r.start
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            r.hit.store(false, Ordering::Relaxed);
            r.len.store(len, Ordering::Relaxed);
            // SYNC POINT: pairs with the Acquire load of `start` in `on_sigbus`.
            r.start.store(start, Ordering::Release);
            return Ok(Guard { index });
        }
    }
    Err(RingError::TooManyMapped { limit: MAX_REGIONS })
}

fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: an all-zero `sigaction` is a valid value (no handler, empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        // SAFETY: all-zero is a valid `sigaction` to receive the old disposition into.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live, initialised `sigaction` values, and the
        // handler is async-signal-safe (atomics and mmap only).
        let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, &mut previous) };
        if rc == 0 {
            let _ = PREVIOUS.set(previous);
        }
    });
}

extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let info = unsafe { &*info };
    // SAFETY: for SIGBUS the union member behind `si_addr` is the faulting address.
    let addr = unsafe { info.si_addr() } as usize;
    for r in REGIONS.iter() {
        // SYNC POINT: pairs with the Release store of `start` in `register`.
        let start = r.start.load(Ordering::Acquire);
        let len = r.len.load(Ordering::Relaxed);
        if start > 1 && addr >= start && addr - start < len {
            // SAFETY: [start, start + len) is a mapping this process owns (registered by a
            // live consumer, which unmaps it only after deregistering); replacing it with
            // private anonymous pages is what makes the faulting access succeed.
            let p = unsafe {
                libc::mmap(
                    start as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                r.hit.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: put back the previous disposition; returning re-runs the faulting access,
    // which then gets the previous behaviour (by default, death by SIGBUS).
    let previous = PREVIOUS
        .get()
        .map_or(std::ptr::null(), |p| p as *const libc::sigaction);
    if previous.is_null() {
        // SAFETY: restoring the default disposition is always valid.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
    } else {
        // SAFETY: `previous` points to the disposition saved at install time.
        unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
    }
}
