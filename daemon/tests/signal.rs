//! A real SIGTERM wakes the interruptible sleep. This file is its own test process, so the
//! handlers it installs cannot disturb other tests; it raises exactly one signal, because a
//! second one would end the process by design.

use std::time::{Duration, Instant};

#[test]
fn sigterm_sets_the_flag_and_wakes_the_sleeper() {
    let shutdown = perf_daemon::shutdown::Shutdown::install().unwrap();
    assert!(!shutdown.requested());
    let start = Instant::now();
    let t = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
    });
    assert!(shutdown.sleep_until(start + Duration::from_secs(30)));
    assert!(shutdown.requested());
    assert!(start.elapsed() < Duration::from_secs(5));
    t.join().unwrap();
}
