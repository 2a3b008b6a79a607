//! The process-wide tracker: `init`, `track`, `track_fn`, `.tracked()` and the
//! `#[track]` attribute on fn and async fn. One test, because the tracker is process-wide.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use perf_producer::{Config, InitError, RobotActivityState as State, TrackedExt};
use perf_testkit::ring_records as records;

#[perf_producer::track(ANALYZING_PROTOCOL)]
fn analyze(fail: bool) -> Result<u32, String> {
    if fail {
        return Err("unreadable protocol".into());
    }
    Ok(7)
}

#[perf_producer::track(State::GettingCachedAnalysis)]
async fn cached(n: &u32) -> u32 {
    *n + 1
}

struct Device;

impl Device {
    #[perf_producer::track(CALIBRATING)]
    fn calibrate(&self, times: u32) -> u32 {
        let mut total = 0;
        for i in 0..times {
            total += i;
        }
        total
    }
}

#[perf_producer::track(ROBOT_SHUTTING_DOWN)]
fn panics() {
    panic!("shutdown failed");
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn every_form_through_the_process_wide_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("global-test");
    config.enabled = Some(true);
    config.shm_dir = Some(dir.path().join("rings"));
    let tracker = perf_producer::init(config).unwrap();
    assert!(tracker.is_enabled());
    assert_eq!(
        perf_producer::init(Config::new("second")).unwrap_err(),
        InitError::AlreadyInitialized
    );
    // The missing ring directory was created, private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("rings"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    {
        let _span = perf_producer::track(State::RobotStartingUp);
    }
    assert_eq!(perf_producer::track_fn(State::RunningProtocol, || 3), 3);
    assert_eq!(block_on(async { 5 }.tracked(State::AnalyzingProtocol)), 5);
    assert_eq!(analyze(false), Ok(7));
    assert!(analyze(true).is_err());
    assert_eq!(block_on(cached(&1)), 2);
    assert_eq!(Device.calibrate(4), 6);
    assert!(std::panic::catch_unwind(panics).is_err());

    let path = perf_producer::global().ring_path().unwrap();
    assert!(path.starts_with(dir.path().join("rings")));
    let (recs, states) = records(&path);
    let names: Vec<_> = recs
        .iter()
        .map(|r| states[r.state as usize].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ROBOT_STARTING_UP",
            "RUNNING_PROTOCOL",
            "ANALYZING_PROTOCOL",
            "ANALYZING_PROTOCOL",
            "ANALYZING_PROTOCOL",
            "GETTING_CACHED_ANALYSIS",
            "CALIBRATING",
            "ROBOT_SHUTTING_DOWN",
        ]
    );
}
