//! The harness of the reliability suite (`tests/tests/stress_*.rs`): seeded randomness,
//! bounded and long modes, the summary table, per-test directories, the drainer and
//! `perf-load` as child processes, a tmpfs guard, and the CSV tally that counts lost and
//! duplicated records.
//!
//! Environment:
//! - `PERF_STRESS=long` multiplies trials and durations by 10 (`PERF_STRESS_SCALE=N` sets
//!   the factor directly);
//! - `PERF_STRESS_SEED=N` replays a run (every randomized test prints its seed);
//! - `PERF_STRESS_SUMMARY=path` appends each test's summary line to `path`.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::load::{decode, duration_of_row, Id};

/// How much work each test does: 1 in the bounded (CI) mode, 10 with `PERF_STRESS=long`,
/// or `PERF_STRESS_SCALE`.
pub fn scale() -> u64 {
    if let Some(n) = std::env::var("PERF_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        return n.max(1);
    }
    match std::env::var("PERF_STRESS").as_deref() {
        Ok("long") => 10,
        _ => 1,
    }
}

/// `n` scaled by [`scale`].
pub fn scaled(n: u64) -> u64 {
    n.saturating_mul(scale())
}

/// A small seeded generator (splitmix64): reproducible, no dependency.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    /// A generator seeded from `PERF_STRESS_SEED`, or from the clock; prints the seed with
    /// the line that replays it.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("PERF_STRESS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                t ^ u64::from(std::process::id()).rotate_left(32)
            });
        eprintln!("{test}: seed {seed} (replay with PERF_STRESS_SEED={seed})");
        Rng::with_seed(seed)
    }

    /// A generator with this seed.
    pub fn with_seed(seed: u64) -> Rng {
        Rng { state: seed, seed }
    }

    /// The seed it started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random duration between `lo_ms` and `hi_ms` milliseconds.
    pub fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(self.range(lo_ms, hi_ms))
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A generator for another thread, derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::with_seed(self.next_u64())
    }
}

/// The figures a test reports at its end.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Test name.
    pub test: String,
    /// Seed of the run.
    pub seed: u64,
    /// Trials (rounds, waves, iterations: whatever the test repeats).
    pub trials: u64,
    /// Processes killed (SIGKILL or a failpoint).
    pub kills: u64,
    /// Records producers reported committed (or, for killed producers, that the drainer
    /// accounted for).
    pub written: u64,
    /// Committed records missing from the CSV.
    pub lost: u64,
    /// Records in the CSV more than once.
    pub duplicated: u64,
    /// Records dropped because a ring was full (counted by the producer).
    pub dropped: u64,
    /// Hostile files or inputs tried.
    pub bad_files: u64,
    /// Free-form note (faults injected, skips).
    pub note: String,
    started: Option<Instant>,
}

/// Header of the summary table.
pub const SUMMARY_HEADER: &str = "| test | seed | trials | kills | written | lost | duplicated | dropped | bad files | seconds | note |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

impl Summary {
    /// A summary for `test`, its clock started now.
    pub fn new(test: &str, seed: u64) -> Summary {
        Summary {
            test: test.to_owned(),
            seed,
            started: Some(Instant::now()),
            ..Summary::default()
        }
    }

    /// The table row.
    pub fn line(&self) -> String {
        let secs = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            self.test,
            self.seed,
            self.trials,
            self.kills,
            self.written,
            self.lost,
            self.duplicated,
            self.dropped,
            self.bad_files,
            secs,
            self.note
        )
    }

    /// Prints the table row (with its header) and appends it to `$PERF_STRESS_SUMMARY`.
    pub fn report(&self) {
        let line = self.line();
        eprintln!("\n{SUMMARY_HEADER}\n{line}\n");
        if let Some(path) = std::env::var_os("PERF_STRESS_SUMMARY") {
            let path = PathBuf::from(path);
            let fresh = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| {
                    if fresh {
                        writeln!(f, "{SUMMARY_HEADER}")?;
                    }
                    writeln!(f, "{line}")
                });
            if let Err(e) = written {
                eprintln!("cannot append the summary to {}: {e}", path.display());
            }
        }
    }
}

/// A ring directory and a storage directory of the test's own, removed on drop.
#[derive(Debug)]
pub struct Dirs {
    root: tempfile::TempDir,
    /// Where producers create rings.
    pub shm: PathBuf,
    /// Where the drainer writes the CSV.
    pub storage: PathBuf,
}

impl Dirs {
    /// Fresh directories under the system temp dir (never `/dev/shm`).
    pub fn new() -> Dirs {
        let root = tempfile::Builder::new()
            .prefix("perf-stress-")
            .tempdir()
            .expect("temp dir");
        let shm = root.path().join("shm");
        std::fs::create_dir(&shm).expect("shm dir");
        let storage = root.path().join("storage");
        std::fs::create_dir(&storage).expect("storage dir");
        Dirs { root, shm, storage }
    }

    /// The temp root holding both.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `robot_activity_data`.
    pub fn csv_path(&self) -> PathBuf {
        self.storage.join("robot_activity_data")
    }

    /// The CSV's bytes (empty if it does not exist yet).
    pub fn csv(&self) -> Vec<u8> {
        std::fs::read(self.csv_path()).unwrap_or_default()
    }

    /// Complete `\r\n`-terminated lines in the CSV right now (a partial last line, as a
    /// killed drainer may leave, is not counted).
    pub fn complete_rows(&self) -> usize {
        self.csv().windows(2).filter(|w| w == b"\r\n").count()
    }

    /// Ring files (not hidden) still in the ring directory.
    pub fn rings(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(&self.shm)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().as_encoded_bytes().first() != Some(&b'.'))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// A drainer command on these directories, with no stray settings inherited.
    pub fn drainer_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(crate::bins::perf_drainer());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().into_owned();
            if k.starts_with("OT_") || k.starts_with("PERF_DRAINER") || k == "NOTIFY_SOCKET" {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .arg("--shm-dir")
            .arg(&self.shm)
            .arg("--storage-dir")
            .arg(&self.storage)
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `perf-drainer run --interval <interval> --log-level debug`.
    pub fn drainer(&self, interval: &str, f: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = self.drainer_cmd(&["run", "--interval", interval, "--log-level", "debug"]);
        f(&mut cmd);
        Daemon::spawn(cmd)
    }

    /// Runs `perf-drainer once` (killed if it takes over 60 s).
    pub fn once(&self, f: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.drainer_cmd(&["once", "--log-level", "debug"]);
        f(&mut cmd);
        output_within(cmd, Duration::from_secs(60))
    }
}

impl Default for Dirs {
    fn default() -> Self {
        Dirs::new()
    }
}

/// Runs `cmd` to completion, killing it (and failing) if it takes longer than `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let (out_t, err_t) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} hung for {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&err_t.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Sends `sig` (a name such as `TERM`) to `pid` through `kill(1)`.
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A running daemon whose stderr lines are collected.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Spawns `cmd` with stderr collected and stdout discarded.
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn daemon");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).split(b'\n') {
                let Ok(line) = line else { break };
                let line = String::from_utf8_lossy(&line).into_owned();
                log2.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether a log line so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log().iter().any(|l| l.contains(needle))
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGKILL, wait, and return the whole log.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    /// SIGTERM, then waits up to `limit` for the exit (SIGKILL and a panic after that).
    pub fn terminate(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        signal(self.pid(), "TERM");
        let status = self.wait_exit(limit);
        (status, self.finish())
    }

    /// Waits up to `limit` for the process to exit by itself; `None` if it did not.
    pub fn wait_exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_exit_within(limit) {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "daemon did not exit within {limit:?}; log:\n{}",
                    self.log().join("\n")
                );
            }
        }
    }

    /// The whole log, once the process has exited.
    pub fn finish(mut self) -> Vec<String> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

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

/// What the CSV holds, counted against what was expected.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Complete rows.
    pub rows: u64,
    /// Whether the file ends in the middle of a row.
    pub partial_tail: bool,
    /// Rows that are not `"STATE","start","duration"` or whose duration is not an id.
    pub garbage: Vec<String>,
    /// Ids seen more than once (each extra copy counts).
    pub duplicated: u64,
    /// Rows whose id's tag is not expected.
    pub strangers: u64,
    /// Rows per tag (unique ids).
    pub per_tag: HashMap<u32, u64>,
    /// Every unique id seen.
    pub ids: HashSet<Id>,
    /// Committed records missing, summed over tags (`committed - found`, where positive).
    pub lost: u64,
    /// Rows beyond what was committed, summed over tags.
    pub extra: u64,
}

impl Tally {
    /// Counts the rows of `csv` against `expected` (tag → committed records; a tag mapped to
    /// `None` is accepted with any count).
    pub fn of(csv: &[u8], expected: &HashMap<u32, Option<u64>>) -> Tally {
        let mut t = Tally {
            partial_tail: !csv.is_empty() && !csv.ends_with(b"\r\n"),
            ..Tally::default()
        };
        let text = String::from_utf8_lossy(csv);
        let mut lines: Vec<&str> = text.split("\r\n").collect();
        // The piece after the last terminator is empty or a partial row.
        lines.pop();
        for line in lines {
            t.rows += 1;
            let Some(id) = duration_of_row(line)
                .filter(|_| well_formed_row(line))
                .and_then(decode)
            else {
                t.garbage.push(line.to_owned());
                continue;
            };
            if !expected.contains_key(&id.tag) {
                t.strangers += 1;
                continue;
            }
            if !t.ids.insert(id) {
                t.duplicated += 1;
                continue;
            }
            *t.per_tag.entry(id.tag).or_default() += 1;
        }
        for (tag, want) in expected {
            let Some(want) = want else { continue };
            let found = t.per_tag.get(tag).copied().unwrap_or(0);
            t.lost += want.saturating_sub(found);
            t.extra += found.saturating_sub(*want);
        }
        t
    }

    /// Whether nothing is wrong.
    pub fn clean(&self) -> bool {
        !self.partial_tail
            && self.garbage.is_empty()
            && self.duplicated == 0
            && self.strangers == 0
            && self.lost == 0
            && self.extra == 0
    }

    /// A one-line description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "rows {}, partial tail {}, garbage {} (first {:?}), duplicated {}, strangers {}, lost {}, extra {}",
            self.rows,
            self.partial_tail,
            self.garbage.len(),
            self.garbage.first(),
            self.duplicated,
            self.strangers,
            self.lost,
            self.extra
        )
    }

    /// Sequence numbers seen for (tag, thread), sorted.
    pub fn seqs(&self, tag: u32) -> HashMap<u32, Vec<u32>> {
        let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
        for id in self.ids.iter().filter(|id| id.tag == tag) {
            out.entry(id.thread).or_default().push(id.seq);
        }
        for v in out.values_mut() {
            v.sort_unstable();
        }
        out
    }
}

/// Whether `line` is exactly `"STATE","digits","digits"` with a valid state name.
pub fn well_formed_row(line: &str) -> bool {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != 3 {
        return false;
    }
    let unquoted: Vec<&str> = fields
        .iter()
        .filter_map(|f| f.strip_prefix('"').and_then(|f| f.strip_suffix('"')))
        .collect();
    unquoted.len() == 3
        && perf_ring::format::valid_state_name(unquoted[0].as_bytes())
        && [unquoted[1], unquoted[2]].iter().all(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u64>().is_ok()
        })
}

/// A finished ring's books, from the drainer's `finished and removed` log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    /// Pid that created the ring.
    pub pid: u32,
    /// claimed + dropped.
    pub committed: u64,
    /// Rows written.
    pub written: u64,
    /// Dropped (ring full).
    pub dropped: u64,
    /// Records with a bad state index.
    pub invalid: u64,
    /// Claimed, never published (writer died).
    pub abandoned: u64,
    /// Drained before this drainer saw the ring.
    pub earlier: u64,
}

/// Parses `ring PATH (SERVICE pid P) finished and removed: committed C = written W +
/// dropped D + invalid I + abandoned A[ + earlier B]` lines, keyed by ring path.
///
/// A ring drained across drainer restarts can finish only once (it is removed), so each
/// path appears at most once; a later line for the same path wins.
pub fn books(log: &[String]) -> HashMap<PathBuf, Books> {
    let mut out = HashMap::new();
    for line in log {
        let Some(at) = line.find("ring ") else {
            continue;
        };
        let rest = &line[at + 5..];
        let Some(open) = rest.find(" (") else {
            continue;
        };
        let path = PathBuf::from(&rest[..open]);
        let Some(tail) = rest.split(" finished and removed: ").nth(1) else {
            continue;
        };
        let num = |key: &str| -> Option<u64> {
            let i = tail.find(key)? + key.len();
            let digits: String = tail[i..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        };
        let pid = rest[open..]
            .split(" pid ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (Some(committed), Some(written), Some(dropped), Some(invalid), Some(abandoned)) = (
            num("committed "),
            num("written "),
            num("dropped "),
            num("invalid "),
            num("abandoned "),
        ) else {
            continue;
        };
        out.insert(
            path,
            Books {
                pid,
                committed,
                written,
                dropped,
                invalid,
                abandoned,
                earlier: num("earlier ").unwrap_or(0),
            },
        );
    }
    out
}

/// Log lines that must never appear: panics, and books that do not add up (except for
/// rings whose path contains one of `liars`: hostile files whose counters lie).
pub fn alarming_except(log: &[String], liars: &[&str]) -> Vec<String> {
    log.iter()
        .filter(|l| {
            l.contains("panicked")
                || l.contains("RUST_BACKTRACE")
                || (l.contains("does NOT add up") && !liars.iter().any(|x| l.contains(x)))
        })
        .cloned()
        .collect()
}

/// Log lines that must never appear: panics and books that do not add up.
pub fn alarming(log: &[String]) -> Vec<String> {
    alarming_except(log, &[])
}

/// The verdict every drain test ends with: the drainer caught up (`drained`, within the
/// test's deadline) and exited cleanly, logged nothing alarming, and the CSV holds every
/// committed record of `reports` exactly once.
pub fn assert_drained_exactly_once(
    dirs: &Dirs,
    drained: bool,
    status: ExitStatus,
    log: &[String],
    tally: &Tally,
    reports: &[LoadReport],
) {
    assert!(
        drained,
        "not drained in time: {} rows, rings left {:?}",
        dirs.complete_rows(),
        dirs.rings()
    );
    assert!(status.success(), "drainer exit {status:?}");
    assert!(alarming(log).is_empty(), "{:#?}", alarming(log));
    assert!(tally.clean(), "{}", tally.describe());
    let committed: Vec<(u32, u64)> = reports.iter().map(|r| (r.run_id, r.committed)).collect();
    if let Err(e) = crate::load::verify_csv(&String::from_utf8_lossy(&dirs.csv()), &committed) {
        panic!("CSV does not hold every committed record exactly once: {e}");
    }
}

/// A tmpfs mounted on a directory for one test; lazily unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `at`; `Err` with the
    /// reason when mounting is not permitted here.
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs {
                at: at.to_path_buf(),
            })
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Remounts with `opts` (`ro` or `rw`), retrying for up to 10 s: `ro` is refused while
    /// a file is open for writing, which the drainer does only during a commit.
    pub fn remount(&self, opts: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("mount")
                .args(["-o", &format!("remount,{opts}")])
                .arg(&self.at)
                .output()
                .expect("run mount");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < end,
                "remount,{opts}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Fills the file system with one file named `name`, leaving about `leave` bytes free
    /// (tmpfs counts whole pages). Returns the filler's path.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.at.join(name);
        let mut f = std::fs::File::create(&path).expect("create filler");
        let chunk = vec![b'x'; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..4096]).is_ok() {}
        while f.write_all(b"x").is_ok() {}
        let len = f.metadata().map_or(0, |m| m.len());
        f.set_len(len.saturating_sub(leave)).expect("shrink filler");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // A read-only leftover would keep the temp dir from being removed: make it
        // writable, then detach it.
        let _ = Command::new("mount")
            .args(["-o", "remount,rw"])
            .arg(&self.at)
            .output();
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::encode;

    fn row(tag: u32, thread: u32, seq: u32) -> String {
        let d = encode(Id { tag, thread, seq }).unwrap();
        format!("\"CALIBRATING\",\"17\",\"{d}\"\r\n")
    }

    #[test]
    fn tally_counts_loss_duplicates_garbage_and_partial_rows() {
        let csv = [row(1, 0, 0), row(1, 0, 1), row(1, 0, 1), row(2, 1, 0)].concat();
        let expected: HashMap<u32, Option<u64>> = [(1, Some(3)), (2, Some(1))].into();
        let t = Tally::of(csv.as_bytes(), &expected);
        assert_eq!((t.rows, t.duplicated, t.lost, t.extra), (4, 1, 1, 0));
        assert!(!t.clean());
        let t = Tally::of(
            format!("{}\"CALIB", row(2, 0, 0)).as_bytes(),
            &[(2, Some(1))].into(),
        );
        assert!(t.partial_tail && !t.clean());
        let t = Tally::of(b"\"bad state\",\"1\",\"2\"\r\n", &[(0, None)].into());
        assert_eq!(t.garbage.len(), 1);
        let t = Tally::of(row(9, 0, 0).as_bytes(), &[(1, None)].into());
        assert_eq!(t.strangers, 1);
        let t = Tally::of(row(1, 0, 0).as_bytes(), &[(1, None)].into());
        assert!(t.clean());
    }

    #[test]
    fn books_parse_the_drainer_line() {
        let log = vec![
            "INFO perf_drainer::drain: ring /x/a-1-00.ring (a pid 41) finished and removed: committed 10 = written 7 + dropped 2 + invalid 0 + abandoned 1 + earlier 0".to_owned(),
            "unrelated".to_owned(),
        ];
        let b = books(&log);
        assert_eq!(
            b[Path::new("/x/a-1-00.ring")],
            Books {
                pid: 41,
                committed: 10,
                written: 7,
                dropped: 2,
                invalid: 0,
                abandoned: 1,
                earlier: 0
            }
        );
    }

    #[test]
    fn rng_replays_from_its_seed() {
        let mut a = Rng::with_seed(5);
        let mut b = Rng::with_seed(5);
        let xs: Vec<u64> = (0..10).map(|_| a.below(1000)).collect();
        let ys: Vec<u64> = (0..10).map(|_| b.below(1000)).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().any(|&x| x != xs[0]));
    }
}
