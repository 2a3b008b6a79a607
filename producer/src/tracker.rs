//! [`Tracker`]: one process's ring plus the set-up around it. The process-wide tracker
//! (crate root) wraps one; tests and tools may make their own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use perf_ring::{Counters, ProducerRing, PushError, Record, RingError};

use crate::clock::{monotonic_ns, thread_view, wall_from_monotonic};
use crate::flag::Environment;
use crate::{fork, RobotActivityState};

/// Ring capacity when none is given: 2^16 records (2 MiB of `/dev/shm`), about a minute of
/// a service tracking 1000 blocks a second with the drainer away.
pub const DEFAULT_CAPACITY: u64 = 1 << 16;

/// How a tracker is set up.
///
/// ```
/// let mut config = perf_producer::Config::new("robot-server");
/// config.enabled = Some(true);
/// config.shm_dir = Some("/tmp/rings".into());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Service name in the ring's file name and header: 1-63 bytes of `[A-Za-z0-9._-]`.
    pub service: String,
    /// On or off regardless of the feature flag; `None` follows the flag.
    pub enabled: Option<bool>,
    /// Ring directory; `None` means `OT_PERFORMANCE_METRICS_SHM_DIR`, else
    /// `/dev/shm/performance_metrics`.
    pub shm_dir: Option<PathBuf>,
    /// Ring capacity in records, a power of two up to [`perf_ring::MAX_CAPACITY`]; `None`
    /// means [`DEFAULT_CAPACITY`].
    pub capacity: Option<u64>,
}

impl Config {
    /// Defaults for everything but the service name.
    pub fn new(service: impl Into<String>) -> Config {
        Config {
            service: service.into(),
            enabled: None,
            shm_dir: None,
            capacity: None,
        }
    }

    /// What the process-wide tracker uses when nobody called [`crate::init`]: the service
    /// name is the executable's name made valid ([`service_name_from`]).
    pub fn from_executable() -> Config {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .or_else(|| {
                std::env::args_os()
                    .next()
                    .map(|a| a.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        Config::new(service_name_from(&exe))
    }
}

/// Makes any string a valid service name: characters outside `[A-Za-z0-9._-]` become `_`,
/// leading dots are dropped, the result is cut to 63 bytes, and an empty result becomes
/// `service`.
///
/// ```
/// assert_eq!(perf_producer::service_name_from("python3 robot server"), "python3_robot_server");
/// assert_eq!(perf_producer::service_name_from(".hidden"), "hidden");
/// assert_eq!(perf_producer::service_name_from(""), "service");
/// ```
pub fn service_name_from(raw: &str) -> String {
    let mut name: String = raw
        .trim_start_matches('.')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.truncate(63);
    if name.is_empty() {
        name.push_str("service");
    }
    name
}

/// Why a tracker is not recording. Set-up never fails in the caller's face: the reason is
/// logged once and kept here.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The flag (or an explicit choice) says off.
    #[error("performance metrics are turned off")]
    TurnedOff,
    /// The ring directory could not be created.
    #[error("cannot create ring directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The ring could not be created (bad name or capacity, permission, no space...).
    #[error(transparent)]
    Ring(#[from] RingError),
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written into the ring at this position.
    Committed(u64),
    /// The ring was full: dropped and counted in the ring's header.
    Dropped,
    /// Tracking is off (or its ring could not be set up); nothing was written.
    Disabled,
}

/// What a child process needs to make its own ring.
#[derive(Debug)]
struct Setup {
    dir: PathBuf,
    service: String,
    capacity: u64,
}

/// One process's tracking: its ring (or none, when off) and how to remake it after a fork.
///
/// Never panics into the caller, never blocks, no file I/O after set-up (a forked child
/// creates its own ring on its first record: that is its set-up).
///
/// ```
/// use perf_producer::{Config, RobotActivityState, Tracker};
/// let dir = tempfile::tempdir().unwrap();
/// let mut config = Config::new("doc");
/// config.enabled = Some(true);
/// config.shm_dir = Some(dir.path().into());
/// let tracker = Tracker::new(config);
/// {
///     let _span = tracker.span(RobotActivityState::Calibrating);
/// }
/// assert_eq!(tracker.counters().unwrap().claimed, 1);
/// ```
#[derive(Debug)]
pub struct Tracker {
    /// Whether set-up produced a ring; checked at span start, so "off" costs one load.
    enabled: bool,
    /// Fork generation `ring` belongs to.
    ring_gen: AtomicU64,
    /// This process's ring (`Box::into_raw`), or null.
    ring: AtomicPtr<ProducerRing>,
    /// `generation + 1` of the thread remaking the ring after a fork, 0 when nobody is.
    rebuilding: AtomicU64,
    setup: Option<Setup>,
    error: Option<SetupError>,
}

impl Tracker {
    /// Sets up from `config` and the process environment. See [`Tracker::with_environment`].
    pub fn new(config: Config) -> Tracker {
        Tracker::with_environment(config, &Environment::from_process())
    }

    /// Sets up from `config`, taking what it leaves open from `env`: decides the flag,
    /// creates the ring directory (mode 0700) if missing and the ring in it, registering
    /// every [`RobotActivityState`] name. Any failure turns tracking off with one
    /// `log::warn!`; the reason stays in [`Tracker::setup_error`].
    pub fn with_environment(config: Config, env: &Environment) -> Tracker {
        fork::install();
        let generation = fork::generation();
        let dir = config
            .shm_dir
            .clone()
            .unwrap_or_else(|| env.shm_dir.clone());
        let setup = Setup {
            dir,
            service: config.service.clone(),
            capacity: config.capacity.unwrap_or(DEFAULT_CAPACITY),
        };
        let result = if env.flag_enabled(config.enabled) {
            create_ring(&setup)
        } else {
            Err(SetupError::TurnedOff)
        };
        let mut tracker = Tracker {
            enabled: false,
            ring_gen: AtomicU64::new(generation),
            ring: AtomicPtr::new(std::ptr::null_mut()),
            rebuilding: AtomicU64::new(0),
            setup: None,
            error: None,
        };
        match result {
            Ok(ring) => {
                tracker.ring = AtomicPtr::new(Box::into_raw(Box::new(ring)));
                tracker.enabled = true;
                tracker.setup = Some(setup);
            }
            Err(SetupError::TurnedOff) => tracker.error = Some(SetupError::TurnedOff),
            Err(e) => {
                log::warn!("performance metrics disabled: {e}");
                tracker.error = Some(e);
            }
        }
        tracker
    }

    /// Whether set-up produced a ring (a forked child may still fail to make its own).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Why tracking is off, if it is.
    pub fn setup_error(&self) -> Option<&SetupError> {
        self.error.as_ref()
    }

    /// Starts a span of `state`; it is recorded when the guard is dropped (also during a
    /// panic's unwinding) or [`Span::end`]ed.
    #[inline]
    pub fn span(&self, state: RobotActivityState) -> Span<'_> {
        if !self.enabled {
            return Span {
                tracker: None,
                state,
                start: 0,
            };
        }
        Span {
            tracker: Some(self),
            state,
            start: monotonic_ns(),
        }
    }

    /// Runs `f` inside a span of `state` (recorded also if `f` panics).
    #[inline]
    pub fn track_fn<T>(&self, state: RobotActivityState, f: impl FnOnce() -> T) -> T {
        let _span = self.span(state);
        f()
    }

    /// Writes one record with a start (CLOCK_REALTIME ns) and duration of your choosing,
    /// e.g. for load generators and tests; says whether it was committed.
    pub fn record_raw(
        &self,
        state: RobotActivityState,
        start_ns: u64,
        duration_ns: u64,
    ) -> Recorded {
        if !self.enabled {
            return Recorded::Disabled;
        }
        // Only the tid is needed: "now = 0" never asks for a new wall-clock offset.
        let (tid, _) = thread_view(0);
        self.push(&Record {
            start_ns,
            duration_ns,
            state: state.index(),
            tid,
        })
    }

    /// Records a span of `state` that started at monotonic `start_monotonic_ns` (from
    /// [`crate::clock::monotonic_ns`], or Python's `time.monotonic_ns()`: the same clock)
    /// and ends now, for callers that keep the start themselves instead of a [`Span`],
    /// such as language bindings. The wall-clock start is derived as a span's is.
    ///
    /// ```
    /// use perf_producer::{clock, Config, Recorded, RobotActivityState, Tracker};
    /// let dir = tempfile::tempdir().unwrap();
    /// let mut config = Config::new("doc");
    /// config.enabled = Some(true);
    /// config.shm_dir = Some(dir.path().into());
    /// let tracker = Tracker::new(config);
    /// let start = clock::monotonic_ns();
    /// let recorded = tracker.record_since(RobotActivityState::Calibrating, start);
    /// assert!(matches!(recorded, Recorded::Committed(_)));
    /// ```
    #[inline]
    pub fn record_since(&self, state: RobotActivityState, start_monotonic_ns: u64) -> Recorded {
        if !self.enabled {
            return Recorded::Disabled;
        }
        self.finish(state, start_monotonic_ns)
    }

    /// The end of a span that started at monotonic `start`.
    #[inline]
    fn finish(&self, state: RobotActivityState, start: u64) -> Recorded {
        let end = monotonic_ns();
        let (tid, offset) = thread_view(end);
        self.push(&Record {
            start_ns: wall_from_monotonic(start, offset),
            duration_ns: end.saturating_sub(start),
            state: state.index(),
            tid,
        })
    }

    #[inline]
    fn push(&self, record: &Record) -> Recorded {
        let Some(ring) = self.ring() else {
            return Recorded::Disabled;
        };
        match ring.push(record) {
            Ok(pos) => Recorded::Committed(pos),
            Err(PushError::Full) => Recorded::Dropped,
            // Not reached: `ring()` has replaced a parent's ring before a child gets here.
            Err(PushError::Forked) => Recorded::Disabled,
        }
    }

    /// This process's ring, remade first if the process forked since it was made.
    #[inline]
    fn ring(&self) -> Option<&ProducerRing> {
        // SYNC POINT: pairs with the Release store of `ring_gen` in `after_fork`: seeing
        // this process's generation means the `ring` store before it is visible, so the
        // pointer loaded next is this process's ring, never the inherited one it replaced.
        if self.ring_gen.load(Ordering::Acquire) != fork::generation() {
            return self.after_fork();
        }
        let ring = self.ring.load(Ordering::Acquire);
        // SAFETY: non-null pointers come from `Box::into_raw` and are freed only by
        // `after_fork` (after the generation check above can no longer lead to them, see
        // there) or by `Drop` (which has `&mut self`, so no borrow of `self` is alive).
        unsafe { ring.as_ref() }
    }

    /// First record in a forked child: drop the inherited ring, make our own.
    #[cold]
    #[inline(never)]
    fn after_fork(&self) -> Option<&ProducerRing> {
        let generation = fork::generation();
        let mine = generation.wrapping_add(1);
        let current = self.rebuilding.load(Ordering::Acquire);
        // A thread of this process is already at it: drop this record rather than wait.
        // Any other non-zero value was left by a parent's thread that does not exist here.
        if current == mine
            || self
                .rebuilding
                .compare_exchange(current, mine, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        if self.ring_gen.load(Ordering::Acquire) != generation {
            let new = match &self.setup {
                Some(setup) => match create_ring(setup) {
                    Ok(ring) => Box::into_raw(Box::new(ring)),
                    Err(e) => {
                        log::warn!("performance metrics disabled in forked child: {e}");
                        std::ptr::null_mut()
                    }
                },
                None => std::ptr::null_mut(),
            };
            let old = self.ring.swap(new, Ordering::AcqRel);
            // SYNC POINT: pairs with the Acquire load in `ring`.
            self.ring_gen.store(generation, Ordering::Release);
            if !old.is_null() {
                // SAFETY: `old` came from `Box::into_raw`. No thread of this process can
                // hold it: the only thread that existed at the fork was in `fork()`, not
                // in `ring()`, and every thread since then failed the generation check
                // until the store above, after which it loads `new`. The parent's mapping
                // was not inherited (MADV_DONTFORK); Drop sees the fork and leaves the
                // address range alone.
                drop(unsafe { Box::from_raw(old) });
            }
        }
        self.rebuilding.store(0, Ordering::Release);
        let ring = self.ring.load(Ordering::Acquire);
        // SAFETY: as in `ring`: a live box of this generation, or null.
        unsafe { ring.as_ref() }
    }

    /// Path of this process's ring file, if it has one.
    pub fn ring_path(&self) -> Option<PathBuf> {
        self.ring().map(|r| r.path().to_path_buf())
    }

    /// The ring's counters, if there is a ring.
    pub fn counters(&self) -> Option<Counters> {
        self.ring().map(ProducerRing::counters)
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let ring = *self.ring.get_mut();
        if !ring.is_null() {
            // SAFETY: `ring` came from `Box::into_raw` and `&mut self` proves nobody
            // borrows it; the field is not read again.
            drop(unsafe { Box::from_raw(ring) });
        }
    }
}

fn create_ring(setup: &Setup) -> Result<ProducerRing, SetupError> {
    create_dir(&setup.dir)?;
    let ring = ProducerRing::create(
        &setup.dir,
        &setup.service,
        RobotActivityState::NAMES,
        setup.capacity,
    )?;
    // A forked child then inherits nothing of the ring; `ring()` replaces it there before
    // any record (and the ring itself refuses to be written in a child).
    if let Err(e) = ring.exclude_from_fork() {
        // Not fatal: a forked child then keeps the ring's lock until it tracks or exits.
        log::warn!("performance metrics: {e}");
    }
    Ok(ring)
}

/// Creates the ring directory (and missing parents) with mode 0700 if it is missing.
fn create_dir(dir: &Path) -> Result<(), SetupError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| SetupError::Directory {
            path: dir.to_path_buf(),
            source,
        })
}

/// A tracked block in progress; recorded when dropped (also while unwinding from a panic)
/// or [`Span::end`]ed. Binding it to `_` drops it at once: use a named binding.
///
/// ```
/// use perf_producer::{track, RobotActivityState};
/// # let mut config = perf_producer::Config::new("doc");
/// # config.enabled = Some(false);
/// # perf_producer::init(config).unwrap();
/// let _span = track(RobotActivityState::Calibrating);
/// // ... the work ...
/// ```
#[must_use = "a span ends when this guard drops: bind it with `let _span = ...`"]
#[derive(Debug)]
pub struct Span<'a> {
    tracker: Option<&'a Tracker>,
    state: RobotActivityState,
    start: u64,
}

impl Span<'_> {
    /// Ends the span now and says what became of its record.
    pub fn end(mut self) -> Recorded {
        match self.tracker.take() {
            Some(tracker) => tracker.finish(self.state, self.start),
            None => Recorded::Disabled,
        }
    }
}

impl Drop for Span<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(tracker) = self.tracker {
            tracker.finish(self.state, self.start);
        }
    }
}
