//! The library robot services link to time blocks of code into their ring.
//!
//! Each tracked block becomes one record (state, CLOCK_REALTIME start, monotonic
//! duration, kernel tid) in this process's ring in `/dev/shm`, which `perf-drainer` turns
//! into CSV rows. Recording costs two clock reads and a lock-free push; off, it costs a
//! load and a branch. Set-up problems turn tracking off with one warning; nothing here
//! panics into the caller, blocks, or does file I/O after set-up.
//!
//! ```
//! use perf_producer::{track, track_fn, RobotActivityState as State, TrackedExt};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let mut config = perf_producer::Config::new("robot-server");
//! # config.enabled = Some(true);
//! # config.shm_dir = Some(dir.path().into());
//! perf_producer::init(config).unwrap(); // optional: otherwise set up from the environment
//!
//! {
//!     let _span = track(State::Calibrating); // guard
//! }
//! let n = track_fn(State::RunningProtocol, || 2 + 2); // closure
//! let fut = async { n }.tracked(State::AnalyzingProtocol); // future
//!
//! #[perf_producer::track(ANALYZING_PROTOCOL)] // attribute, fn or async fn
//! fn analyze() {}
//! analyze();
//! # drop(fut);
//! ```

extern crate self as perf_producer;

pub mod clock;
pub mod flag;
mod fork;
mod future;
mod state;
mod tracker;

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

pub use future::{Tracked, TrackedExt};
pub use perf_producer_macros::track;
pub use state::RobotActivityState;
pub use tracker::{
    service_name_from, Config, Recorded, SetupError, Span, Tracker, DEFAULT_CAPACITY,
};

/// The process-wide tracker (`Box::leak`ed), null until set up.
static GLOBAL: AtomicPtr<Tracker> = AtomicPtr::new(std::ptr::null_mut());
/// `fork generation + 1` of the thread setting [`GLOBAL`] up, 0 when nobody is. A
/// `OnceLock` would do, except that a child forked while another thread initialises it
/// would wait forever; with this a stale value from a parent's thread is taken over.
static SETTING_UP: AtomicU64 = AtomicU64::new(0);

/// Why [`init`] did not take its configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InitError {
    /// The tracker was already set up (by `init`, or lazily by a first tracked block).
    #[error("the performance-metrics tracker is already set up")]
    AlreadyInitialized,
    /// Another thread is setting the tracker up right now.
    #[error("another thread is setting up the performance-metrics tracker")]
    Busy,
}

/// Sets up the process-wide tracker from `config` (call it once, early). Without it, the
/// first tracked block sets up from the environment with the executable's name as the
/// service ([`Config::from_executable`]).
///
/// Returns the tracker; whether it records is [`Tracker::is_enabled`]. Set-up problems
/// never fail here: they turn tracking off with one `log::warn!`.
///
/// ```
/// let mut config = perf_producer::Config::new("robot-server");
/// config.enabled = Some(false);
/// let tracker = perf_producer::init(config).unwrap();
/// assert!(!tracker.is_enabled());
/// assert_eq!(perf_producer::init(perf_producer::Config::new("again")).unwrap_err(),
///            perf_producer::InitError::AlreadyInitialized);
/// ```
pub fn init(config: Config) -> Result<&'static Tracker, InitError> {
    set_up(|| Tracker::new(config))
}

fn set_up(make: impl FnOnce() -> Tracker) -> Result<&'static Tracker, InitError> {
    if !GLOBAL.load(Ordering::Acquire).is_null() {
        return Err(InitError::AlreadyInitialized);
    }
    let mine = fork::generation().wrapping_add(1);
    let current = SETTING_UP.load(Ordering::Acquire);
    if current == mine
        || SETTING_UP
            .compare_exchange(current, mine, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return Err(InitError::Busy);
    }
    if !GLOBAL.load(Ordering::Acquire).is_null() {
        SETTING_UP.store(0, Ordering::Release);
        return Err(InitError::AlreadyInitialized);
    }
    let tracker: &'static Tracker = Box::leak(Box::new(make()));
    // SYNC POINT: pairs with the Acquire loads in `try_global` and `set_up`: whoever sees
    // the pointer sees the finished tracker.
    GLOBAL.store(std::ptr::from_ref(tracker).cast_mut(), Ordering::Release);
    SETTING_UP.store(0, Ordering::Release);
    Ok(tracker)
}

/// The process-wide tracker if it is set up.
#[inline]
fn try_global() -> Option<&'static Tracker> {
    let tracker = GLOBAL.load(Ordering::Acquire);
    // SAFETY: non-null only after `set_up` stored a leaked, never-freed tracker.
    unsafe { tracker.as_ref() }
}

/// The process-wide tracker, set up from the environment on first use.
///
/// While another thread is setting it up this returns a disabled tracker rather than wait
/// (a few blocks tracked during those microseconds are not recorded).
///
/// ```
/// # let mut config = perf_producer::Config::new("doc");
/// # config.enabled = Some(false);
/// # perf_producer::init(config).unwrap();
/// let _ = perf_producer::global().is_enabled();
/// ```
#[inline]
pub fn global() -> &'static Tracker {
    match try_global() {
        Some(tracker) => tracker,
        None => global_slow(),
    }
}

#[cold]
#[inline(never)]
fn global_slow() -> &'static Tracker {
    static OFF: std::sync::OnceLock<Tracker> = std::sync::OnceLock::new();
    match set_up(|| Tracker::new(Config::from_executable())) {
        Ok(tracker) => tracker,
        Err(InitError::AlreadyInitialized) => try_global().unwrap_or_else(|| off(&OFF)),
        Err(InitError::Busy) => off(&OFF),
    }
}

/// A tracker that records nothing (made without touching the environment or files).
fn off(cell: &'static std::sync::OnceLock<Tracker>) -> &'static Tracker {
    // A OnceLock is fine here: making an "off" tracker cannot block or fail.
    cell.get_or_init(|| {
        let mut config = Config::new("off");
        config.enabled = Some(false);
        Tracker::with_environment(
            config,
            &flag::Environment {
                flag: None,
                config_dir: std::path::PathBuf::new(),
                shm_dir: std::path::PathBuf::new(),
            },
        )
    })
}

/// Starts a span of `state` on the process-wide tracker; it is recorded when the guard
/// drops (also on panic).
///
/// ```
/// # let mut config = perf_producer::Config::new("doc");
/// # config.enabled = Some(false);
/// # perf_producer::init(config).unwrap();
/// let _span = perf_producer::track(perf_producer::RobotActivityState::Calibrating);
/// ```
#[inline]
pub fn track(state: RobotActivityState) -> Span<'static> {
    global().span(state)
}

/// Runs `f` in a span of `state` on the process-wide tracker (recorded also when `f`
/// panics or returns an error).
///
/// ```
/// # let mut config = perf_producer::Config::new("doc");
/// # config.enabled = Some(false);
/// # perf_producer::init(config).unwrap();
/// let n = perf_producer::track_fn(perf_producer::RobotActivityState::Calibrating, || 42);
/// assert_eq!(n, 42);
/// ```
#[inline]
pub fn track_fn<T>(state: RobotActivityState, f: impl FnOnce() -> T) -> T {
    let _span = track(state);
    f()
}
