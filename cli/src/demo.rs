//! `perf-metrics demo`: the whole pipeline, for real, in a few seconds.
//!
//! - a ring directory of its own under `/dev/shm` (removed at the end, also on errors and
//!   Ctrl-C);
//! - several simulated robot services, each a real child process (this executable again,
//!   hidden subcommand `demo-service`, see [`crate::service`]) writing into its own ring;
//!   one of them kills itself with SIGKILL half-way;
//! - the drainer ([`perf_drainer::Drainer`]) and the system resource tracker
//!   ([`perf_sampler::sample::Sampler`]) as threads of this process, through their
//!   libraries, writing into the output directory;
//! - at the end: a final drain, a check that every record the services committed is in the
//!   CSV exactly once and that no ring is left, the report, and the paths written.

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::process::{CommandExt as _, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use perf_daemon::shutdown::Shutdown;
use perf_drainer::scan::AllowedUids;
use perf_drainer::Drainer;
use perf_sampler::fnmatch::Pattern;
use perf_sampler::proc::SystemInfo;
use perf_sampler::sample::Sampler;
use perf_sampler::schedule::Schedule;
use perf_sampler::storage::Storage;

use crate::service::Outcome;

/// Drain cycles run this often during the demo.
const DRAIN_EVERY: Duration = Duration::from_millis(200);
/// argv[0] of the simulated services (the executable is this one).
const SERVICE_ARGV0: &str = "perf-metrics";
/// Services get this long past `--seconds` to finish before they are killed.
const GRACE: Duration = Duration::from_secs(10);
/// The final drain gives up after this long.
const FINAL_DRAIN_LIMIT: Duration = Duration::from_secs(10);

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

/// The simulated services: name, worker threads, crashes.
const SERVICES: &[(&str, u32, bool)] = &[
    ("robot-server", 3, false),
    ("protocol-analyzer", 2, false),
    ("hardware-controller", 2, false),
    ("flaky-analyzer", 2, true),
];

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

/// The demo's ring directory; removed (with anything left in it) when dropped.
#[derive(Debug)]
struct RingDir(PathBuf);

impl RingDir {
    fn create(parent: &Path) -> Result<RingDir, DemoError> {
        use std::os::unix::fs::DirBuilderExt;
        let name = format!(
            "perf-metrics-demo-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        );
        let path = parent.join(name);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| DemoError::Setup {
                what: "cannot create the demo's ring directory",
                path: path.clone(),
                source,
            })?;
        Ok(RingDir(path))
    }
}

impl Drop for RingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One simulated service.
#[derive(Debug)]
struct Service {
    name: &'static str,
    threads: u32,
    crashes: bool,
    child: Child,
    /// Set once it exited: its report line and exit status.
    ended: Option<(Option<Outcome>, std::process::ExitStatus)>,
}

/// The running services; any still running when dropped are killed and reaped.
#[derive(Debug, Default)]
struct Services(Vec<Service>);

impl Drop for Services {
    fn drop(&mut self) {
        for s in self.0.iter_mut().filter(|s| s.ended.is_none()) {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }
}

impl Services {
    /// Reaps services that exited; returns a line about each.
    fn poll(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        for s in self.0.iter_mut().filter(|s| s.ended.is_none()) {
            let Ok(Some(status)) = s.child.try_wait() else {
                continue;
            };
            let mut text = String::new();
            if let Some(mut out) = s.child.stdout.take() {
                let _ = out.read_to_string(&mut text);
            }
            let outcome: Option<Outcome> = text
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok());
            let pid = s.child.id();
            let committed = match &outcome {
                Some(o) => format!("{} records", o.committed),
                None => "records not reported".into(),
            };
            events.push(match status.signal() {
                Some(sig) => format!(
                    "{} (pid {pid}) killed by signal {sig} ({committed}); its ring is drained, then removed",
                    s.name
                ),
                None => format!("{} (pid {pid}) finished its day ({committed})", s.name),
            });
            s.ended = Some((outcome, status));
        }
        events
    }

    fn running(&self) -> usize {
        self.0.iter().filter(|s| s.ended.is_none()).count()
    }
}

/// Counters the threads share with the progress display.
#[derive(Debug, Default)]
struct Counters {
    rows: AtomicU64,
    samples: AtomicU64,
    sample_rows: AtomicU64,
}

/// The drainer and sampler threads; asked to stop and joined when dropped.
#[derive(Debug)]
struct Daemons {
    drain_stop: Arc<Shutdown>,
    sample_stop: Arc<Shutdown>,
    drainer: Option<JoinHandle<Drainer>>,
    sampler: Option<JoinHandle<()>>,
}

impl Daemons {
    fn stop_sampler(&mut self) {
        self.sample_stop.request();
        if let Some(t) = self.sampler.take() {
            let _ = t.join();
        }
    }

    fn stop_drainer(&mut self) -> Option<Drainer> {
        self.drain_stop.request();
        self.drainer.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop_sampler();
        drop(self.stop_drainer());
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Makes `text` an fnmatch pattern that matches only itself.
fn fnmatch_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

/// This process's command line as the sampler formats it.
fn own_command() -> String {
    let mut raw = Vec::new();
    let _ = perf_sampler::proc::read_cmdline_at("/proc/self/cmdline", &mut raw);
    let mut command = String::new();
    perf_sampler::cmdline::format_command(&raw, &mut command);
    command
}

/// What the demo did, for the summary.
#[derive(Debug)]
pub struct DemoSummary {
    /// Text to print (services, accounting, report, files).
    pub text: String,
}

/// Runs the demo.
pub fn run(cfg: &DemoConfig) -> Result<DemoSummary, DemoError> {
    let run_start_ns = now_ns();
    let started = Instant::now();
    let interrupt = Shutdown::install()?;
    std::fs::create_dir_all(&cfg.out).map_err(|source| DemoError::Setup {
        what: "cannot create the output directory",
        path: cfg.out.clone(),
        source,
    })?;
    let out = cfg.out.canonicalize().unwrap_or_else(|_| cfg.out.clone());
    let rings = RingDir::create(&cfg.shm_parent)?;
    let allowed = AllowedUids::with_defaults(&[]);
    let drainer = Drainer::new(perf_drainer::Config {
        storage_dir: out.clone(),
        shm_dir: rings.0.clone(),
        allowed: allowed.clone(),
    })?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Setup {
        what: "cannot find this executable",
        path: PathBuf::from("/proc/self/exe"),
        source,
    })?;
    let run_id = format!("{:08x}", fastrand::u32(..));

    // The sampler watches this process (drainer and sampler threads) and this run's services.
    let filters = vec![
        Pattern::new(&fnmatch_literal(&own_command())),
        Pattern::new(&format!(
            "{SERVICE_ARGV0} demo-service --service * --run {run_id} *"
        )),
    ];
    let info = SystemInfo::read().map_err(|e| DemoError::Sampler(e.to_string()))?;
    let interval = Duration::from_secs_f64((cfg.seconds / 20.0).clamp(0.2, 1.0));
    let counters = Arc::new(Counters::default());
    let mut daemons = start_daemons(
        drainer,
        Sampler::new(filters, info),
        &out,
        interval,
        &counters,
    )?;

    let mut services = Services::default();
    for &(name, threads, crashes) in SERVICES {
        let mut cmd = Command::new(&exe);
        // A short argv[0] keeps the command lines in the report readable.
        cmd.arg0(SERVICE_ARGV0)
            .args(["demo-service", "--service", name, "--run", &run_id])
            .args(["--threads", &threads.to_string()])
            .args(["--seconds", &cfg.seconds.to_string()])
            // Where the producer library makes its ring, as on a robot.
            .env("OT_PERFORMANCE_METRICS_SHM_DIR", &rings.0);
        if crashes {
            cmd.args(["--crash-after", &(cfg.seconds * 0.45).to_string()]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|source| DemoError::Setup {
                what: "cannot start a simulated service from",
                path: exe.clone(),
                source,
            })?;
        services.0.push(Service {
            name,
            threads,
            crashes,
            child,
            ended: None,
        });
    }

    let bar = progress_bar(cfg.seconds);
    let mut interrupted = false;
    let mut problems = Vec::new();
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
        if started.elapsed() > Duration::from_secs_f64(cfg.seconds) + GRACE {
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
    interrupted |= interrupt.requested();
    // Anything still running now is killed and reaped, so its ring is dead and drainable.
    for s in services.0.iter_mut().filter(|s| s.ended.is_none()) {
        let _ = s.child.kill();
        if let Ok(status) = s.child.wait() {
            s.ended = Some((None, status));
        }
    }

    daemons.stop_sampler();
    let mut drainer = daemons
        .stop_drainer()
        .ok_or_else(|| DemoError::Check("the drainer thread panicked".into()))?;
    // Final drain: until every ring (all producers are gone now) is drained and removed.
    let deadline = Instant::now() + FINAL_DRAIN_LIMIT;
    let mut left = usize::MAX;
    while Instant::now() < deadline {
        match drainer.cycle(deadline) {
            Ok(r) => {
                counters.rows.fetch_add(r.written, Ordering::Relaxed);
            }
            Err(e) => problems.push(format!("final drain failed: {e}")),
        }
        left = perf_drainer::status::collect(&rings.0, &out, &allowed)
            .map_or(usize::MAX, |s| s.rings.len());
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(drainer);
    if interrupted {
        return Err(DemoError::Interrupted(out));
    }
    let ring_dir = rings.0.clone();
    drop(rings);
    let summary = summarise(&services, &counters, left, &ring_dir, &out, &mut problems);
    if !problems.is_empty() {
        return Err(DemoError::Check(problems.join("; ")));
    }
    let mut text = summary;
    text.push('\n');
    let window = crate::window::Window {
        since: Some(run_start_ns),
        until: None,
    };
    let mut report_problems = Vec::new();
    match crate::report::build(&out, window, &mut |p| report_problems.push(p.to_string())) {
        Ok(report) => text.push_str(&crate::report::render_text(&report)),
        Err(e) => return Err(DemoError::Check(format!("report: {e}"))),
    }
    if !report_problems.is_empty() {
        return Err(DemoError::Check(format!(
            "the files the demo wrote have malformed lines: {}",
            report_problems.join("; ")
        )));
    }
    let _ = writeln!(text, "\nfiles written:");
    for table in [perf_table::ROBOT_ACTIVITY, perf_table::SYSTEM_RESOURCE] {
        let _ = writeln!(text, "  {}", out.join(table.name).display());
        let _ = writeln!(
            text,
            "  {}",
            out.join(format!("{}_headers", table.name)).display()
        );
    }
    let _ = writeln!(
        text,
        "\nnext: perf-metrics report {0}\n      perf-metrics export --chrome-trace trace.json {0}   (open in ui.perfetto.dev)",
        out.display()
    );
    Ok(DemoSummary { text })
}

fn start_daemons(
    mut drainer: Drainer,
    mut sampler: Sampler,
    out: &Path,
    interval: Duration,
    counters: &Arc<Counters>,
) -> Result<Daemons, DemoError> {
    let spawn_error = |source| DemoError::Setup {
        what: "cannot start a thread for",
        path: out.to_path_buf(),
        source,
    };
    let drain_stop = Arc::new(Shutdown::new()?);
    let sample_stop = Arc::new(Shutdown::new()?);
    let mut daemons = Daemons {
        drain_stop: Arc::clone(&drain_stop),
        sample_stop: Arc::clone(&sample_stop),
        drainer: None,
        sampler: None,
    };
    let c = Arc::clone(counters);
    daemons.drainer = Some(
        std::thread::Builder::new()
            .name("drainer".into())
            .spawn(move || {
                loop {
                    let start = Instant::now();
                    // Storage errors are logged by the drainer and retried next cycle.
                    if let Ok(r) = drainer.cycle(start + Duration::from_secs(1)) {
                        c.rows.fetch_add(r.written, Ordering::Relaxed);
                    }
                    if drain_stop.sleep_until(start + DRAIN_EVERY) {
                        break;
                    }
                }
                drainer
            })
            .map_err(spawn_error)?,
    );
    let c = Arc::clone(counters);
    let mut storage = Storage::new(out);
    daemons.sampler = Some(
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || {
                let mut schedule = Schedule::new(Instant::now(), interval);
                let mut rows = Vec::new();
                loop {
                    rows.clear();
                    match sampler.sample(&mut rows) {
                        Ok(stats) => {
                            // Errors are logged by the storage and the rows kept for later.
                            if storage.write(&rows, stats.rows).is_ok() {
                                c.samples.fetch_add(1, Ordering::Relaxed);
                                c.sample_rows
                                    .fetch_add(stats.rows as u64, Ordering::Relaxed);
                            }
                        }
                        Err(e) => log::warn!("sample failed: {e}"),
                    }
                    let next = schedule
                        .advance(Instant::now())
                        .deadline
                        .unwrap_or_else(|| Instant::now() + interval);
                    if sample_stop.sleep_until(next) {
                        break;
                    }
                }
            })
            .map_err(spawn_error)?,
    );
    Ok(daemons)
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

/// The services table and the exactly-once check.
fn summarise(
    services: &Services,
    counters: &Counters,
    rings_left: usize,
    ring_dir: &Path,
    out: &Path,
    problems: &mut Vec<String>,
) -> String {
    let mut text = String::new();
    let mut committed = 0u64;
    let mut crashed = Vec::new();
    let _ = writeln!(
        text,
        "{:<20} {:>8} {:>7} {:>9} {:>7}  END",
        "SERVICE", "PID", "THREADS", "COMMITTED", "DROPPED"
    );
    for s in &services.0 {
        let (outcome, status) = match &s.ended {
            Some((o, st)) => (o.as_ref(), Some(*st)),
            None => (None, None),
        };
        let end = match status {
            Some(st) if st.signal() == Some(libc::SIGKILL) && s.crashes => {
                "crashed (SIGKILL) mid-run".to_string()
            }
            Some(st) if st.success() && !s.crashes => "exited normally".to_string(),
            Some(st) => {
                problems.push(format!("{} ended unexpectedly: {st}", s.name));
                format!("unexpected: {st}")
            }
            None => "unknown".into(),
        };
        let Some(o) = outcome else {
            problems.push(format!("{} did not report what it committed", s.name));
            continue;
        };
        committed += o.committed;
        if s.crashes {
            crashed.push(format!("{} by the crashed {}", o.committed, s.name));
        }
        let _ = writeln!(
            text,
            "{:<20} {:>8} {:>7} {:>9} {:>7}  {end}",
            s.name, o.pid, s.threads, o.committed, o.dropped
        );
    }
    let written = counters.rows.load(Ordering::Relaxed);
    let table = out.join(perf_table::ROBOT_ACTIVITY.name);
    let _ = writeln!(
        text,
        "\ncommitted: {committed} records by {} services ({})",
        services.0.len(),
        crashed.join(", ")
    );
    let _ = writeln!(
        text,
        "written: {written} rows to {}{}",
        table.display(),
        if written == committed {
            ", each committed record exactly once"
        } else {
            ""
        }
    );
    if written != committed {
        problems.push(format!(
            "the services committed {committed} records but the drainer wrote {written} rows"
        ));
    }
    let _ = writeln!(
        text,
        "sampled: {} rows in {} samples to {}",
        counters.sample_rows.load(Ordering::Relaxed),
        counters.samples.load(Ordering::Relaxed),
        out.join(perf_table::SYSTEM_RESOURCE.name).display()
    );
    let _ = writeln!(
        text,
        "rings left behind: {} (ring directory {} removed)",
        if rings_left == usize::MAX {
            "unknown".to_string()
        } else {
            rings_left.to_string()
        },
        ring_dir.display()
    );
    if rings_left != 0 {
        problems.push(format!(
            "{rings_left} rings were left in {}",
            ring_dir.display()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_patterns_match_only_themselves() {
        let text = "/tmp/we*rd [dir]/perf-metrics? demo";
        let p = Pattern::new(&fnmatch_literal(text));
        assert!(p.matches(text));
        assert!(!p.matches("/tmp/weXrd [dir]/perf-metrics? demo"));
        assert!(!p.matches("/tmp/we*rd d/perf-metrics? demo"));
        let p = Pattern::new(&format!(
            "{} demo-service --run 1 *",
            fnmatch_literal("/a[1]")
        ));
        assert!(p.matches("/a[1] demo-service --run 1 --service x"));
        assert!(!p.matches("/a[1] demo-service --run 2 --service x"));
    }
}
