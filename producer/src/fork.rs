//! Fork detection: a `pthread_atfork` child handler bumps a generation counter, and the
//! hot path compares it (one relaxed load) against the generation its ring and thread
//! cache were made in.
//!
//! The handler also points each registered ring's liveness-lock descriptor at
//! `/dev/null` (`open` + `dup3` + `close`, all async-signal-safe), so a child that never
//! tracks does not keep a dead parent's ring "alive" for the drainer. The descriptor
//! number stays valid, owned by the inherited `ProducerRing`, which the child drops on its
//! next track call before creating its own ring.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Once;

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Liveness-lock descriptors of live trackers' rings (-1 = free slot). A tracker that finds
/// no free slot still works; its child just closes the descriptor on first use instead.
static LOCK_FDS: [AtomicI32; 16] = [const { AtomicI32::new(-1) }; 16];

static REGISTER: Once = Once::new();

/// How many forks separate this process from the first one that loaded the crate.
#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

extern "C" fn on_fork_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for slot in &LOCK_FDS {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            detach_fd(fd);
        }
    }
}

/// Makes `fd` refer to `/dev/null` instead of the parent's ring file.
fn detach_fd(fd: i32) {
    // SAFETY: the path is a NUL-terminated literal; open is async-signal-safe.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 {
        return;
    }
    // SAFETY: both descriptors are open; dup3 atomically closes `fd` (dropping this
    // process's reference to the ring's open file description and so its lock) and reuses
    // the number for /dev/null, so the owner's later close stays correct.
    unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
    // SAFETY: `null` was opened above and is not used afterwards.
    unsafe { libc::close(null) };
}

/// Installs the fork handler (once per process).
pub(crate) fn install() {
    REGISTER.call_once(|| {
        // SAFETY: the handler is a plain `extern "C" fn` that only touches atomics and
        // async-signal-safe calls, as a child of a multi-threaded process requires.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(on_fork_child)) };
        if rc != 0 {
            log::warn!("performance metrics: pthread_atfork failed ({rc}); a forked child may write into its parent's ring");
        }
    });
}

/// Registers a ring's lock descriptor; returns the slot to release later.
pub(crate) fn register_lock_fd(fd: i32) -> Option<usize> {
    LOCK_FDS.iter().position(|slot| {
        slot.compare_exchange(-1, fd, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    })
}

/// Releases a slot before its descriptor is closed (so a fork in between cannot point an
/// unrelated descriptor that reused the number at /dev/null).
pub(crate) fn unregister_lock_fd(slot: usize) {
    if let Some(s) = LOCK_FDS.get(slot) {
        s.store(-1, Ordering::Relaxed);
    }
}
