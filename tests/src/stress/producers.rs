//! `perf-load` producers as child processes: one run, its report, and waves of runs in the
//! background while a test kills or starves the drainer.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perf_testkit::Rng;

/// One `perf-load` invocation.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Service name (the ring's file name starts with it).
    pub service: String,
    /// Writer threads.
    pub threads: u32,
    /// Records per thread.
    pub records: u32,
    /// Ring capacity (power of two).
    pub capacity: u64,
    /// Milliseconds to keep the ring alive after writing.
    pub hold_ms: u64,
    /// Run id: the tag in every record's id.
    pub run_id: u32,
}

/// What a finished `perf-load` printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Its ring file.
    pub ring: PathBuf,
    /// Records pushed into the ring.
    pub committed: u64,
    /// Records dropped because the ring was full.
    pub dropped: u64,
    /// The run id (tag).
    pub run_id: u32,
}

impl LoadSpec {
    /// Starts `perf-load` (the binary at `exe`) writing into `shm`, stdout piped.
    pub fn spawn(&self, exe: &Path, shm: &Path) -> Child {
        Command::new(exe)
            .arg("--shm-dir")
            .arg(shm)
            .args(["--service", &self.service])
            .args(["--threads", &self.threads.to_string()])
            .args(["--records", &self.records.to_string()])
            .args(["--capacity", &self.capacity.to_string()])
            .args(["--hold-ms", &self.hold_ms.to_string()])
            .args(["--run-id", &self.run_id.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn perf-load")
    }

    /// Records it tries to write.
    pub fn attempted(&self) -> u64 {
        u64::from(self.threads) * u64::from(self.records)
    }
}

/// The JSON line `perf-load` prints at the end, parsed; `None` if it is not one.
fn parse_report(stdout: &[u8]) -> Option<LoadReport> {
    let text = String::from_utf8_lossy(stdout);
    let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
    Some(LoadReport {
        ring: PathBuf::from(v["ring"].as_str()?),
        committed: v["committed"].as_u64()?,
        dropped: v["dropped"].as_u64()?,
        run_id: u32::try_from(v["run_id"].as_u64()?).ok()?,
    })
}

/// Waits for a `perf-load` child and parses its report; `None` if it was killed (or
/// otherwise printed no report).
pub fn load_report(child: Child) -> Option<LoadReport> {
    let out = child.wait_with_output().expect("wait perf-load");
    if !out.status.success() {
        return None;
    }
    parse_report(&out.stdout)
}

/// Waits for a `perf-load` child that must finish on its own, within `limit`.
pub fn load_report_within(mut child: Child, limit: Duration) -> LoadReport {
    let end = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("perf-load did not finish within {limit:?}: a producer blocked");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().expect("wait perf-load");
    assert!(out.status.success(), "perf-load failed: {out:?}");
    parse_report(&out.stdout).unwrap_or_else(|| panic!("perf-load printed no report: {out:?}"))
}

/// `perf-load` processes started in waves by a background thread until [`Waves::finish`]:
/// producers that keep writing while a test kills or starves the drainer.
#[derive(Debug)]
pub struct Waves {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<LoadReport>>,
}

impl Waves {
    /// Starts the thread: each wave runs the specs `wave` returns (their run ids are set
    /// here, unique across waves) to completion, then pauses `pause_ms` (a range).
    pub fn start(
        exe: &Path,
        shm: &Path,
        mut rng: Rng,
        pause_ms: (u64, u64),
        mut wave: impl FnMut(&mut Rng) -> Vec<LoadSpec> + Send + 'static,
    ) -> Waves {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = Arc::new(AtomicBool::new(false));
        let (exe, shm, flag) = (exe.to_path_buf(), shm.to_path_buf(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut reports = Vec::new();
            let mut run_id = 1;
            while !flag.load(Ordering::Relaxed) {
                let children: Vec<Child> = wave(&mut rng)
                    .into_iter()
                    .map(|mut spec| {
                        spec.run_id = run_id;
                        run_id += 1;
                        spec.spawn(&exe, &shm)
                    })
                    .collect();
                for child in children {
                    reports.push(load_report_within(child, Duration::from_secs(120)));
                }
                std::thread::sleep(rng.millis(pause_ms.0, pause_ms.1));
            }
            reports
        });
        Waves { stop, thread }
    }

    /// Stops starting waves, waits for the running one, and returns every report.
    pub fn finish(self) -> Vec<LoadReport> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("producer thread")
    }
}
