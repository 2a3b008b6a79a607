//! Fork detection: a `pthread_atfork` child handler bumps a generation counter, and the
//! hot path compares it (one relaxed load) against the generation its ring and thread
//! cache were made in.
//!
//! The ring's mapping is excluded from fork (`MADV_DONTFORK`) and it holds no descriptor,
//! so a child inherits nothing that keeps its parent's ring lock: once the parent exits,
//! the drainer sees its ring as dead even while children live on, tracking or not. On its
//! next record the child forgets the inherited ring and makes its own.

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
