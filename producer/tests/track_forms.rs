//! Every way to track a block through a `Tracker` of its own: guard, closure, future,
//! explicit end; panics, errors, cancellation, a full ring, concurrent threads.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{gettid, tracker_in};
use perf_producer::{Recorded, RobotActivityState as State, TrackedExt};
use perf_testkit::{now_ns, ring_records as records};

#[test]
fn guard_records_state_start_duration_and_tid() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    let before = now_ns();
    {
        let _span = tracker.span(State::Calibrating);
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = now_ns();
    let (recs, states) = records(&tracker.ring_path().unwrap());
    assert_eq!(recs.len(), 1);
    let r = recs[0];
    assert_eq!(states[r.state as usize], "CALIBRATING");
    assert_eq!(r.tid, gettid());
    assert!(r.duration_ns >= 5_000_000, "{}", r.duration_ns);
    // The derived wall-clock start lies between the two CLOCK_REALTIME readings (1 ms
    // slack for the derivation).
    assert!(
        r.start_ns + 1_000_000 >= before && r.start_ns <= after,
        "{r:?}"
    );
    assert!(r.start_ns + r.duration_ns <= after + 1_000_000);
    // The ring registered every state, in index order.
    assert_eq!(states, State::NAMES);
}

#[test]
fn closure_returns_its_value_and_records_errors_too() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    assert_eq!(tracker.track_fn(State::RunningProtocol, || 41 + 1), 42);
    let failed: Result<(), String> =
        tracker.track_fn(State::AnalyzingProtocol, || Err("bad protocol".to_owned()));
    assert!(failed.is_err());
    let (recs, states) = records(&tracker.ring_path().unwrap());
    let names: Vec<_> = recs
        .iter()
        .map(|r| states[r.state as usize].as_str())
        .collect();
    assert_eq!(names, ["RUNNING_PROTOCOL", "ANALYZING_PROTOCOL"]);
}

#[test]
fn panics_are_recorded_and_propagate_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracker.track_fn(State::Calibrating, || -> u32 { panic!("motor stalled") })
    }));
    let payload = caught.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"motor stalled"));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _span = tracker.span(State::RobotShuttingDown);
        panic!("in a guard");
    }));
    assert!(caught.is_err());
    let (recs, states) = records(&tracker.ring_path().unwrap());
    let names: Vec<_> = recs
        .iter()
        .map(|r| states[r.state as usize].as_str())
        .collect();
    assert_eq!(names, ["CALIBRATING", "ROBOT_SHUTTING_DOWN"]);
}

#[test]
fn end_reports_committed_then_dropped_when_full() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 2);
    assert_eq!(
        tracker.span(State::Calibrating).end(),
        Recorded::Committed(0)
    );
    assert_eq!(
        tracker.record_raw(State::Calibrating, 5, 6),
        Recorded::Committed(1)
    );
    assert_eq!(tracker.span(State::Calibrating).end(), Recorded::Dropped);
    let counters = tracker.counters().unwrap();
    assert_eq!((counters.claimed, counters.dropped), (2, 1));
    let (recs, _) = records(&tracker.ring_path().unwrap());
    assert_eq!((recs[1].start_ns, recs[1].duration_ns), (5, 6));
}

/// Polls `fut` to completion on this thread (the futures here wake themselves).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Pending `n` times, then ready.
struct YieldN(u32);

impl Future for YieldN {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            Poll::Ready(())
        } else {
            self.0 -= 1;
            std::thread::sleep(Duration::from_millis(1));
            Poll::Pending
        }
    }
}

#[test]
fn future_span_runs_from_first_poll_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    let fut = async {
        YieldN(3).await;
        Err::<(), _>("analysis failed")
    }
    .tracked_with(&tracker, State::AnalyzingProtocol);
    // Created but not polled: the span has not started.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(tracker.counters().unwrap().claimed, 0);
    assert!(block_on(fut).is_err());
    let (recs, states) = records(&tracker.ring_path().unwrap());
    assert_eq!(recs.len(), 1);
    assert_eq!(states[recs[0].state as usize], "ANALYZING_PROTOCOL");
    // Three pending polls slept 1 ms each; the 20 ms before the first poll are not in it.
    assert!(
        (3_000_000..20_000_000).contains(&recs[0].duration_ns),
        "{:?}",
        recs[0]
    );
}

#[test]
fn future_dropped_after_starting_records_and_never_polled_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    drop(YieldN(1).tracked_with(&tracker, State::RunningProtocol));
    assert_eq!(tracker.counters().unwrap().claimed, 0);
    {
        let mut fut = pin!(YieldN(5).tracked_with(&tracker, State::RunningProtocol));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(tracker.counters().unwrap().claimed, 0);
    } // cancelled here
    let (recs, _) = records(&tracker.ring_path().unwrap());
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].state, State::RunningProtocol.index());
}

#[test]
fn future_that_panics_records() {
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 64);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(
            async {
                YieldN(1).await;
                panic!("boom")
            }
            .tracked_with(&tracker, State::Calibrating),
        )
    }));
    assert!(caught.is_err());
    assert_eq!(tracker.counters().unwrap().claimed, 1);
}

#[test]
fn concurrent_threads_each_record_under_their_own_tid() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let tracker = tracker_in(dir.path(), 1 << 14);
    let tids: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let tracker = &tracker;
                s.spawn(move || {
                    let state = State::ALL[i % State::ALL.len()];
                    for _ in 0..PER_THREAD {
                        let _span = tracker.span(state);
                    }
                    gettid()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (recs, _) = records(&tracker.ring_path().unwrap());
    assert_eq!(recs.len(), THREADS * PER_THREAD);
    for (i, tid) in tids.iter().enumerate() {
        let mine: Vec<_> = recs.iter().filter(|r| r.tid == *tid).collect();
        assert_eq!(mine.len(), PER_THREAD, "thread {i}");
        let state = State::ALL[i % State::ALL.len()].index();
        assert!(mine.iter().all(|r| r.state == state));
    }
}
