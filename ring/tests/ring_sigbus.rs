//! The consumer's SIGBUS handler hands signals that are not its own to the handler that was
//! there before, every time, and still catches its own faults afterwards.
//!
//! One test in its own binary: it installs a process-wide handler before any ring is
//! opened, which no other test may have done first.

use std::sync::atomic::{AtomicUsize, Ordering};

use perf_ring::{ConsumerRing, ProducerRing, Record, RingError, HEADER_SIZE};

static PREVIOUS_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn previous(_sig: libc::c_int) {
    PREVIOUS_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn raise_sigbus() {
    // SAFETY: raise is always safe to call; the handlers in place only count or check
    // regions.
    assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
}

#[test]
fn sigbus_not_ours_reaches_the_previous_handler_and_ours_stays() {
    // SAFETY: an all-zero sigaction is valid (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = previous as *const () as usize;
    // SAFETY: `action` is live; `previous` only does an atomic add.
    let rc = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0);

    let dir = tempfile::tempdir().unwrap();
    let producer = ProducerRing::create(dir.path(), "sigbus", &["CALIBRATING"], 1024).unwrap();
    let record = Record {
        start_ns: 1,
        duration_ns: 2,
        state: 0,
        tid: 3,
    };
    producer.push(&record).unwrap();
    // Opening a consumer installs its handler over `previous`.
    let mut consumer = ConsumerRing::open(producer.path()).unwrap();

    // A SIGBUS sent to the process is no fault of a ring: it goes on to `previous`, and
    // again the second time (the handler was not uninstalled after the first).
    raise_sigbus();
    raise_sigbus();
    assert_eq!(PREVIOUS_CALLS.load(Ordering::SeqCst), 2);

    // Its own fault is still caught: the file cut under the mapping reads as vanished.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(producer.path())
        .unwrap();
    file.set_len(u64::from(HEADER_SIZE)).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        consumer.read_batch(&mut out, 16),
        Err(RingError::Vanished)
    ));
    assert!(out.is_empty());
    assert_eq!(PREVIOUS_CALLS.load(Ordering::SeqCst), 2, "not handed on");
}
