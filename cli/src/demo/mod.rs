//! `perf-metrics demo`: the whole pipeline, for real, in a few seconds.
//!
//! - a ring directory of its own under `/dev/shm` (removed at the end, also on errors and
//!   Ctrl-C);
//! - several simulated robot services, each a real child process writing into its own
//!   ring, one of which kills itself with SIGKILL half-way (`services.rs`);
//! - the drainer ([`perf_drainer::Drainer`]) and the system resource tracker
//!   ([`perf_sampler::sample::Sampler`]) as threads of this process, each running its
//!   daemon's own loop, writing into the output directory (`daemons.rs`);
//! - at the end: a final drain, a check that every record the services committed is in the
//!   CSV exactly once and that no ring is left, the report (printed, and as a page of plots
//!   `report.html` beside the CSVs), and the paths written (`checks.rs`).

mod checks;
mod daemons;
mod services;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use perf_daemon::shutdown::Shutdown;
use perf_drainer::scan::AllowedUids;
use perf_drainer::Drainer;
use perf_sampler::proc::SystemInfo;
use perf_sampler::sample::Sampler;

use self::daemons::{Counters, Daemons};
use self::services::{RingDir, Services};

/// Services get this long past `--seconds` to finish before they are killed.
const GRACE: Duration = Duration::from_secs(10);

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Length of the simulated day, seconds.
    pub seconds: f64,
    /// Output directory for the CSV files.
    pub out: PathBuf,
    /// Where the demo makes its own ring directory.
    pub shm_parent: PathBuf,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Something could not be set up.
    #[error("{what} {path}: {source}")]
    Setup {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The drainer could not start.
    #[error("cannot start the drainer: {0}")]
    Drainer(#[from] perf_drainer::DrainError),
    /// The Ctrl-C handler could not be installed.
    #[error(transparent)]
    Signals(#[from] perf_daemon::shutdown::ShutdownError),
    /// /proc could not be read for the sampler.
    #[error("cannot start the system resource tracker: {0}")]
    Sampler(String),
    /// Ctrl-C.
    #[error("interrupted; what was drained so far is in {0}")]
    Interrupted(PathBuf),
    /// The run finished but a check failed.
    #[error("{0}")]
    Check(String),
}

/// What the demo did, for the summary.
#[derive(Debug)]
pub struct DemoSummary {
    /// Text to print (services, accounting, report, files).
    pub text: String,
}

/// What the run is made of, set up before anything starts.
struct Setup {
    /// The output directory, canonical.
    out: PathBuf,
    rings: RingDir,
    allowed: AllowedUids,
    /// This executable, started again as each service.
    exe: PathBuf,
    /// Tells this run's services apart from any other demo's, for the sampler.
    run_id: String,
}

/// Runs the demo: set up, start the services and the daemons, watch until the services
/// are done, then check.
pub fn run(cfg: &DemoConfig) -> Result<DemoSummary, DemoError> {
    let run_start_ns = now_ns();
    let interrupt = Shutdown::install()?;
    let setup = set_up(cfg)?;
    let drainer = Drainer::new(perf_drainer::Config {
        storage_dir: setup.out.clone(),
        shm_dir: setup.rings.0.clone(),
        allowed: setup.allowed.clone(),
        context: true,
        rotation: None,
    })?;
    let info = SystemInfo::read().map_err(|e| DemoError::Sampler(e.to_string()))?;
    let sampler = Sampler::new(daemons::sampler_filters(&setup.run_id), info);
    let interval = Duration::from_secs_f64((cfg.seconds / 20.0).clamp(0.2, 1.0));
    let counters = Arc::new(Counters::default());
    let mut daemons = Daemons::start(drainer, sampler, &setup.out, interval, &counters)?;
    let mut services = Services::start(&setup.exe, &setup.run_id, cfg.seconds, &setup.rings.0)?;

    let mut problems = Vec::new();
    let interrupted = watch(
        &mut services,
        &counters,
        cfg.seconds,
        &interrupt,
        &mut problems,
    );
    // Anything still running now is killed and reaped, so its ring is dead and drainable.
    services.kill_the_rest();
    daemons.stop_sampler();
    let mut drainer = daemons
        .stop_drainer()
        .ok_or_else(|| DemoError::Check("the drainer thread panicked".into()))?;
    let left = checks::drain_to_the_end(
        &mut drainer,
        &counters,
        &setup.rings.0,
        &setup.out,
        &setup.allowed,
        &mut problems,
    );
    drop(drainer);
    if interrupted {
        return Err(DemoError::Interrupted(setup.out));
    }
    let ring_dir = setup.rings.0.clone();
    drop(setup.rings);
    let mut text = checks::summarise(
        &services,
        &counters,
        left,
        &ring_dir,
        &setup.out,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(DemoError::Check(problems.join("; ")));
    }
    text.push('\n');
    text.push_str(&checks::report(&setup.out, run_start_ns)?);
    Ok(DemoSummary { text })
}

/// Creates the output and ring directories and finds what the services need.
fn set_up(cfg: &DemoConfig) -> Result<Setup, DemoError> {
    std::fs::create_dir_all(&cfg.out).map_err(|source| DemoError::Setup {
        what: "cannot create the output directory",
        path: cfg.out.clone(),
        source,
    })?;
    let out = cfg.out.canonicalize().unwrap_or_else(|_| cfg.out.clone());
    let rings = RingDir::create(&cfg.shm_parent)?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Setup {
        what: "cannot find this executable",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    Ok(Setup {
        out,
        rings,
        allowed: AllowedUids::with_defaults(&[]),
        exe,
        run_id: format!("{:08x}", fastrand::u32(..)),
    })
}

/// Shows progress until every service ended, Ctrl-C, or the services overran their day
/// (noted in `problems`). Returns whether it was interrupted.
fn watch(
    services: &mut Services,
    counters: &Counters,
    seconds: f64,
    interrupt: &Shutdown,
    problems: &mut Vec<String>,
) -> bool {
    let started = Instant::now();
    let bar = progress_bar(seconds);
    let mut interrupted = false;
    loop {
        for event in services.poll() {
            bar.suspend(|| println!("{event}"));
        }
        let running = services.running();
        if running == 0 {
            break;
        }
        if interrupt.requested() {
            interrupted = true;
            break;
        }
        if started.elapsed() > Duration::from_secs_f64(seconds) + GRACE {
            problems.push(format!(
                "{running} services did not finish in time and were killed"
            ));
            break;
        }
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!(
            "{} services running, {} rows drained, {} samples",
            running,
            counters.rows.load(Ordering::Relaxed),
            counters.samples.load(Ordering::Relaxed)
        ));
        interrupt.sleep_until(Instant::now() + Duration::from_millis(100));
    }
    bar.finish_and_clear();
    // Ctrl-C reaches the services too (one process group): they may be gone first.
    interrupted || interrupt.requested()
}

fn progress_bar(seconds: f64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some((seconds * 1000.0) as u64),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} robot day {elapsed:>3} {bar:24} {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
