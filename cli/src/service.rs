//! A simulated robot service for the demo: a real process that links `perf-producer`, sets
//! its tracker up on the demo's ring directory and moves several threads through the robot
//! states, with durations drawn to look like a robot's day scaled into a few seconds.
//!
//! It prints one JSON line on stdout when it is done ([`Outcome`]). A service told to crash
//! prints the line and then kills itself with SIGKILL while its other threads are still in
//! the middle of spans: what it committed before must still reach the CSV.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perf_producer::{Recorded, RobotActivityState as State};
use serde::{Deserialize, Serialize};

/// The length of a day the durations below are written for; they scale with `--seconds`.
const NOMINAL_SECONDS: f64 = 15.0;

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Ring directory.
    pub shm_dir: PathBuf,
    /// Service name (ring file name and header).
    pub service: String,
    /// Worker threads.
    pub threads: u32,
    /// How long the whole service runs, start-up and shut-down included.
    pub seconds: f64,
    /// Kill this process with SIGKILL after this many seconds.
    pub crash_after: Option<f64>,
    /// Random seed.
    pub seed: u64,
}

/// What a service reports on stdout (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Service name.
    pub service: String,
    /// Process id.
    pub pid: u32,
    /// Records committed into the ring.
    pub committed: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    /// Whether the service is about to kill itself.
    pub crashing: bool,
}

#[derive(Debug, Default)]
struct Counts {
    committed: u64,
    dropped: u64,
}

/// Ends spans and counts their records. Ending and counting happen under one lock so that
/// the count printed before a crash is exact: no thread can be between the two.
#[derive(Debug, Clone)]
struct Counter(Arc<Mutex<Counts>>);

impl Counter {
    /// One span of `state`, about `nominal_ms` long (scaled), spending `busy` of it (a
    /// fraction) computing rather than waiting.
    fn run(&self, state: State, nominal_ms: f64, busy: f64, day: &Day) {
        let span = perf_producer::track(state);
        day.spin(nominal_ms * busy);
        day.sleep(nominal_ms * (1.0 - busy));
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match span.end() {
            Recorded::Committed(_) => counts.committed += 1,
            Recorded::Dropped => counts.dropped += 1,
            Recorded::Disabled => {}
        }
    }
}

/// Time keeping for one service: durations scaled to the run, never past its end.
#[derive(Debug)]
struct Day {
    scale: f64,
    end: Instant,
}

impl Day {
    /// Sleeps `nominal_ms` scaled to the run, cut short at the end of the working day.
    fn sleep(&self, nominal_ms: f64) {
        let want = Duration::from_secs_f64((nominal_ms * self.scale / 1000.0).max(0.0));
        let left = self.end.saturating_duration_since(Instant::now());
        std::thread::sleep(want.min(left));
    }

    /// Computes for `nominal_ms` scaled (an analysis is CPU-bound), so that the sampled CPU
    /// times show something; cut short at the end of the working day.
    fn spin(&self, nominal_ms: f64) {
        let want = Duration::from_secs_f64((nominal_ms * self.scale / 1000.0).max(0.0));
        let until = (Instant::now() + want).min(self.end);
        let mut x = 1u64;
        while Instant::now() < until {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }
    }

    fn over(&self) -> bool {
        Instant::now() >= self.end
    }
}

/// A log-normal draw around `median` (ms): most values near it, a few several times longer.
fn around(rng: &mut fastrand::Rng, median: f64, sigma: f64) -> f64 {
    // Box-Muller: one standard normal from two uniforms.
    let u1 = rng.f64().max(f64::MIN_POSITIVE);
    let u2 = rng.f64();
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    median * (sigma * z).exp()
}

/// What a worker thread does all day.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Runs protocols (long), calibrating now and then.
    Protocols,
    /// Analyses protocols (long-ish), then serves the analysis from the cache a few times.
    Analysis,
    /// Answers requests for cached analyses: many short spans.
    Cache,
}

fn work(role: Role, day: &Day, counter: &Counter, rng: &mut fastrand::Rng) {
    let mut first = true;
    while !day.over() {
        match role {
            Role::Protocols => {
                // A robot calibrates before its first run, and now and then after.
                if first || rng.f64() < 0.3 {
                    counter.run(State::Calibrating, around(rng, 220.0, 0.5), 0.0, day);
                }
                counter.run(State::RunningProtocol, around(rng, 1800.0, 0.4), 0.02, day);
                day.sleep(around(rng, 120.0, 0.6));
            }
            Role::Analysis => {
                counter.run(State::AnalyzingProtocol, around(rng, 700.0, 0.5), 0.15, day);
                for _ in 0..rng.u32(2..8) {
                    counter.run(
                        State::GettingCachedAnalysis,
                        around(rng, 12.0, 0.7),
                        0.0,
                        day,
                    );
                    day.sleep(around(rng, 30.0, 0.8));
                }
            }
            Role::Cache => {
                counter.run(
                    State::GettingCachedAnalysis,
                    around(rng, 6.0, 0.8),
                    0.0,
                    day,
                );
                day.sleep(around(rng, 25.0, 0.9));
            }
        }
        first = false;
    }
}

/// Runs the service (the hidden `demo-service` subcommand) and prints its [`Outcome`].
pub fn run(config: &ServiceConfig) -> Result<(), String> {
    let started = Instant::now();
    let mut tracker_config = perf_producer::Config::new(config.service.clone());
    tracker_config.enabled = Some(true);
    tracker_config.shm_dir = Some(config.shm_dir.clone());
    let tracker = perf_producer::init(tracker_config).map_err(|e| e.to_string())?;
    if let Some(e) = tracker.setup_error() {
        return Err(format!("{}: cannot track: {e}", config.service));
    }
    let scale = config.seconds / NOMINAL_SECONDS;
    let counter = Counter(Arc::new(Mutex::new(Counts::default())));
    let mut rng = fastrand::Rng::with_seed(config.seed);

    // Start-up and shut-down take about 5 % of the day each; the workers get the rest.
    let startup = Day {
        scale,
        end: started + Duration::from_secs_f64(config.seconds * 0.08),
    };
    counter.run(
        State::RobotStartingUp,
        around(&mut rng, 600.0, 0.2),
        0.3,
        &startup,
    );

    let day = Arc::new(Day {
        scale,
        end: started + Duration::from_secs_f64(config.seconds * 0.9),
    });
    let roles = [Role::Protocols, Role::Analysis, Role::Cache];
    let workers: Vec<_> = (0..config.threads)
        .map(|i| {
            let role = roles[i as usize % roles.len()];
            let day = Arc::clone(&day);
            let counter = counter.clone();
            let mut rng = fastrand::Rng::with_seed(config.seed.wrapping_add(u64::from(i) + 1));
            std::thread::Builder::new()
                .name(format!("{role:?}").to_lowercase())
                .spawn(move || work(role, &day, &counter, &mut rng))
                .map_err(|e| format!("cannot start a worker thread: {e}"))
        })
        .collect::<Result<_, _>>()?;

    if let Some(after) = config.crash_after {
        std::thread::sleep(
            (started + Duration::from_secs_f64(after)).saturating_duration_since(Instant::now()),
        );
        // Hold the lock: every record committed so far is counted, none is being counted.
        let counts = counter.0.lock().unwrap_or_else(|e| e.into_inner());
        print_outcome(config, &counts, true)?;
        // Workers are mid-span now; their open spans die with the process, as in a crash.
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        return Err("SIGKILL did not end the process".into());
    }

    for w in workers {
        w.join()
            .map_err(|_| "a worker thread panicked".to_string())?;
    }
    let shutdown = Day {
        scale,
        end: started + Duration::from_secs_f64(config.seconds),
    };
    counter.run(
        State::RobotShuttingDown,
        around(&mut rng, 500.0, 0.2),
        0.0,
        &shutdown,
    );
    let counts = counter.0.lock().unwrap_or_else(|e| e.into_inner());
    print_outcome(config, &counts, false)
}

fn print_outcome(config: &ServiceConfig, counts: &Counts, crashing: bool) -> Result<(), String> {
    let outcome = Outcome {
        service: config.service.clone(),
        pid: std::process::id(),
        committed: counts.committed,
        dropped: counts.dropped,
        crashing,
    };
    let line = serde_json::to_string(&outcome).map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot report to the demo: {e}"))
}
