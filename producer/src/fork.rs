//! Fork detection: a `pthread_atfork` child handler bumps a generation counter, and the
//! hot path compares it (one relaxed load) against the generation its ring and thread
//! cache were made in.
//!
//! On its next record the child drops the inherited ring (unmapping it and closing its
//! copy of the lock descriptor) and makes its own. Until then the child still maps the
//! parent's ring, and a mapping keeps the file's lock alive just as a descriptor does, so
//! a child that never tracks holds a dead parent's ring "alive" until it exits or execs.
//! Releasing it at fork time would need the mapping's address (to `MADV_DONTFORK` it),
//! which `perf_ring::ProducerRing` does not expose.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);

static REGISTER: Once = Once::new();

/// How many forks separate this process from the first one that loaded the crate.
#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Runs in the child, which has one thread: only an atomic add (async-signal-safe).
extern "C" fn on_fork_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the fork handler (once per process).
pub(crate) fn install() {
    REGISTER.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn` that only does an atomic add, as
        // the child of a multi-threaded process requires.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        if rc != 0 {
            log::warn!("performance metrics: pthread_atfork failed ({rc}); a forked child may write into its parent's ring");
        }
    });
}
