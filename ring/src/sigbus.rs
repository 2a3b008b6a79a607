//! Surviving a ring file truncated under our mapping.
//!
//! A producer (or anyone with write access) can `ftruncate` a ring while the drainer has it
//! mapped; touching the vanished pages raises SIGBUS, which would kill the drainer. As
//! libwayland-server does for client shm pools, a SIGBUS handler checks whether the fault
//! lies in a registered mapping; if so it maps anonymous zero pages over the whole region
//! (the faulting load then reads 0, which no published slot holds), marks the region hit
//! and returns. The consumer checks the mark after every access batch and discards what it
//! read.
//!
//! A SIGBUS that is not ours (a fault elsewhere, or one sent with `kill`) goes to the
//! disposition that was in place before ours, which is saved before ours goes live: a
//! previous handler is called, and stays the next in line; the default (or "ignore", which
//! the kernel does not honour for a fault) ends the process by SIGBUS as it would have.
//! Our handler stays installed for the faults that are ours.
//!
//! The handler uses only atomics and `mmap`. `mmap` is not on POSIX's list of
//! async-signal-safe functions; on Linux it is a plain system call (glibc's wrapper takes no
//! lock and keeps no state), which is what makes calling it here sound on the one platform
//! this crate supports. SIGBUS stays blocked while the handler runs (no `SA_NODEFER`): it
//! touches no ring memory itself, so a SIGBUS inside it would be a bug, which the kernel then
//! ends with the default action rather than by re-entering the handler.

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
        // The disposition in place now, saved before ours goes live: a fault that is not
        // ours, arriving the instant after, must find it.
        // SAFETY: all-zero is a valid `sigaction` to receive the old disposition into.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only queries; `previous` is a live `sigaction`.
        if unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) } != 0 {
            // Without the previous disposition no fault that is not ours could be handed
            // on: leave SIGBUS alone (a truncated ring then kills, as without this module).
            return;
        }
        let _ = PREVIOUS.set(previous);
        // SAFETY: an all-zero `sigaction` is a valid value (no handler, empty mask).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        // SAFETY: `action` is a live, initialised `sigaction` whose handler is
        // async-signal-safe on Linux (atomics and `mmap` only; see the module docs).
        unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    });
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let info_ref = unsafe { &*info };
    // SAFETY: for SIGBUS the union member behind `si_addr` is the faulting address (for a
    // SIGBUS sent by `kill` it holds other fields; they are only compared below).
    let addr = unsafe { info_ref.si_addr() } as usize;
    // A signal sent by a process (si_code <= 0) is no fault of a ring, whatever `si_addr`
    // happens to hold.
    let fault = info_ref.si_code > 0;
    for r in REGIONS.iter().filter(|_| fault) {
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
    not_ours(sig, info, ctx, fault);
}

/// Hands a SIGBUS that is not ours to the disposition saved at install time.
fn not_ours(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, fault: bool) {
    let Some(previous) = PREVIOUS.get() else {
        // Not reached: the handler is installed only after PREVIOUS is set.
        die_by(sig, fault);
        return;
    };
    match previous.sa_sigaction {
        libc::SIG_DFL => die_by(sig, fault),
        // The kernel kills for an ignored fault anyway; an ignored `kill` stays ignored.
        libc::SIG_IGN if fault => die_by(sig, fault),
        libc::SIG_IGN => {}
        handler if previous.sa_flags & libc::SA_SIGINFO != 0 => {
            // SAFETY: the saved disposition holds a three-argument handler (SA_SIGINFO),
            // installed by someone else for this very signal; we call it as the kernel
            // would have, with the kernel's own arguments.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, ctx);
        }
        handler => {
            // SAFETY: as above, for a one-argument handler (no SA_SIGINFO).
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
    }
}

/// Ends the process by `sig` with the default action, as if we had never been installed.
fn die_by(sig: libc::c_int, fault: bool) {
    // SAFETY: restoring the default disposition is always valid. The process is about to
    // die of this very signal, so no later SIGBUS needs our handler.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    if !fault {
        // A sent signal does not come back by itself: raise it again. It stays pending
        // (blocked while we run) and kills the process as soon as the handler returns.
        // SAFETY: raise is async-signal-safe.
        unsafe { libc::raise(sig) };
    }
    // A fault re-runs the faulting access when the handler returns, which now kills.
}
