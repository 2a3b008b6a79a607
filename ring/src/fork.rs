//! Fork detection: a `pthread_atfork` child handler bumps a generation counter, and
//! whoever holds something of a particular process (a ring's mapping, a thread cache)
//! compares the generation it was made in with [`generation`] (one relaxed load).
//!
//! A [`crate::ProducerRing`] excluded from fork is not mapped in a forked child at all; its
//! `push` checks the generation first, which is what makes the exclusion safe to offer as a
//! safe function. The child handler runs in the child before `fork()` returns there, so no
//! code of the child can see the old generation. What bypasses libc's `fork` runs no
//! handler: `vfork` and `posix_spawn` children (they only `exec` or `_exit`, as
//! `std::process::Command` does) and a raw `clone`/`fork` system call, which a Rust program
//! cannot use and keep running Rust code anyway (libc's own state would be wrong).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// How many forks separate this process from the first one that installed the handler
/// (0 while it is not installed).
#[inline]
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Runs in the child, which has one thread: only an atomic add (async-signal-safe).
extern "C" fn on_fork_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Installs the fork handler, once per process; later calls return the first call's
/// outcome. `Err` holds the `pthread_atfork` error number: forks then go unnoticed.
pub fn install() -> Result<(), i32> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: the handler is a plain `extern "C" fn` that only does an atomic add, as
        // the child of a multi-threaded process requires.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        if rc == 0 {
            Ok(())
        } else {
            Err(rc)
        }
    })
}
