//! A forked child never writes into its parent's ring: it makes its own on first use, and
//! does not keep a dead parent's ring alive. One test in this binary, so the fork happens
//! with no other test threads running.

mod common;

use common::{gettid, tracker_in};
use perf_producer::RobotActivityState as State;
use perf_ring::ConsumerRing;
use perf_testkit::{ring_files as rings, ring_records as records};

fn fork() -> libc::pid_t {
    // SAFETY: the child only tracks (malloc, file creation: glibc keeps these usable in
    // the child of a multi-threaded process) and then leaves with `_exit`.
    unsafe { libc::fork() }
}

fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
    // the test harness.
    unsafe { libc::_exit(code) }
}

fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child and `status` a valid out-parameter.
    let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(rc, pid);
    assert!(libc::WIFEXITED(status), "{status:#x}");
    libc::WEXITSTATUS(status)
}

/// Whether a forked child really goes without a `MADV_DONTFORK` mapping. Linux honours it;
/// qemu-user (CI runs the aarch64 build under it) accepts the call and ignores it, so there
/// the child inherits the mapping and with it the liveness lock. Probed on a scratch page:
/// in the child `mincore` fails with `ENOMEM` exactly when the page is not mapped.
fn dontfork_is_honoured() -> bool {
    let len = 4096;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    // SAFETY: `page` is our own mapping of `len` bytes; the advice changes only what a
    // fork copies.
    assert_eq!(unsafe { libc::madvise(page, len, libc::MADV_DONTFORK) }, 0);
    let child = fork();
    assert!(child >= 0);
    if child == 0 {
        let mut residency = [0u8; 1];
        // SAFETY: `residency` has one byte for the one page asked about; mincore only
        // reports, it never touches the page.
        let rc = unsafe { libc::mincore(page, len, residency.as_mut_ptr()) };
        let unmapped =
            rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOMEM);
        exit_child(if unmapped { 0 } else { 1 });
    }
    let honoured = wait(child) == 0;
    // SAFETY: unmaps exactly the mapping made above, which nothing uses any more.
    unsafe { libc::munmap(page, len) };
    honoured
}

#[test]
fn child_records_land_in_its_own_ring() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    let parent_ring = tracker.ring_path().unwrap();
    {
        let _span = tracker.span(State::Calibrating);
    }
    // A span started before the fork and ended in the child goes to the child's ring.
    let open_span = tracker.span(State::RunningProtocol);

    let child = fork();
    assert!(child >= 0);
    if child == 0 {
        drop(open_span);
        for _ in 0..3 {
            let _span = tracker.span(State::AnalyzingProtocol);
        }
        let ok = tracker.ring_path().is_some_and(|p| p != parent_ring);
        exit_child(if ok { 0 } else { 1 });
    }
    std::mem::forget(open_span); // the parent's copy never ends
    assert_eq!(wait(child), 0);

    let all = rings(dir.path());
    assert_eq!(all.len(), 2, "{all:?}");
    let child_ring = all.iter().find(|p| **p != parent_ring).unwrap();
    let name = child_ring.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with(&format!("test-svc-{child}-")), "{name}");

    let (parent_recs, _) = records(&parent_ring);
    assert_eq!(parent_recs.len(), 1);
    assert_eq!(parent_recs[0].tid, gettid());
    assert_eq!(parent_recs[0].state, State::Calibrating.index());

    let consumer = ConsumerRing::open(child_ring).unwrap();
    assert_eq!(consumer.info().creator_pid, child as u32);
    assert!(!consumer.producer_alive(), "the child exited");
    drop(consumer);
    let (child_recs, _) = records(child_ring);
    let states: Vec<u32> = child_recs.iter().map(|r| r.state).collect();
    let a = State::AnalyzingProtocol.index();
    assert_eq!(states, [State::RunningProtocol.index(), a, a, a]);
    // The forked thread's records carry the child's tid (its pid), not ours.
    assert!(child_recs.iter().all(|r| r.tid == child as u32));

    // The parent's ring is still the parent's, alive.
    assert!(ConsumerRing::open(&parent_ring).unwrap().producer_alive());
    {
        let _span = tracker.span(State::Calibrating);
    }
    assert_eq!(records(&parent_ring).0.len(), 2);

    // A process whose child lives on: once it exits, its ring is dead, although the child
    // never tracked (it inherited neither the mapping nor a descriptor holding the lock).
    let middle = fork();
    assert!(middle >= 0);
    if middle == 0 {
        let own = tracker.span(State::RobotStartingUp).end();
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid out-array of two descriptors.
        let piped = unsafe { libc::pipe(fds.as_mut_ptr()) } == 0;
        let grandchild = fork();
        if grandchild == 0 {
            // Never tracks (so never even looks at the inherited ring), says it is
            // running, then outlives its parent for a while.
            // SAFETY: writes one byte from a live local to the pipe's write end.
            unsafe { libc::write(fds[1], [1u8].as_ptr().cast(), 1) };
            std::thread::sleep(std::time::Duration::from_secs(3));
            exit_child(0);
        }
        let mut byte = [0u8];
        // SAFETY: reads one byte into a live local from the pipe's read end.
        let got = unsafe { libc::read(fds[0], byte.as_mut_ptr().cast(), 1) };
        let ok = matches!(own, perf_producer::Recorded::Committed(_))
            && piped
            && grandchild > 0
            && got == 1;
        exit_child(if ok { 0 } else { 1 });
    }
    assert_eq!(wait(middle), 0);
    let middle_ring = rings(dir.path())
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!("test-svc-{middle}-"))
        })
        .unwrap();
    let consumer = ConsumerRing::open(&middle_ring).unwrap();
    if dontfork_is_honoured() {
        assert!(
            !consumer.producer_alive(),
            "the grandchild must not hold its dead parent's ring lock"
        );
    } else {
        // Unproven here, not wrong: under this emulator the grandchild keeps the lock
        // until it exits, so the ring is drained a few seconds late (ring/AARCH64.md).
        eprintln!("skipped the grandchild check: MADV_DONTFORK is ignored here (qemu-user)");
    }
}
