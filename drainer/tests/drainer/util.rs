//! Helpers: per-test directories, running the binary, reading the CSV back.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_perf-drainer");

/// A ring directory and a storage directory of the test's own.
pub struct Dirs {
    _root: tempfile::TempDir,
    pub shm: PathBuf,
    pub storage: PathBuf,
}

impl Dirs {
    pub fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let shm = root.path().join("shm");
        std::fs::create_dir(&shm).unwrap();
        let storage = root.path().join("storage");
        Dirs {
            shm,
            storage,
            _root: root,
        }
    }

    pub fn csv_path(&self) -> PathBuf {
        self.storage.join("robot_activity_data")
    }

    pub fn csv(&self) -> Vec<u8> {
        std::fs::read(self.csv_path()).unwrap_or_default()
    }

    /// Every row of the CSV, checking that each is complete and well-formed.
    pub fn rows(&self) -> Vec<(String, u64, u64)> {
        parse_rows(&self.csv())
    }

    /// A command for the drainer on these directories, with no stray settings inherited.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
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

    /// Runs `perf-drainer once` (bounded in time) and returns its output.
    pub fn once(&self) -> Output {
        self.once_with(|_| {})
    }

    pub fn once_with(&self, f: impl FnOnce(&mut Command)) -> Output {
        let mut cmd = self.cmd(&["once", "--log-level", "debug"]);
        f(&mut cmd);
        output_within(cmd, Duration::from_secs(30))
    }

    /// Starts `perf-drainer run` with the given interval.
    pub fn daemon(&self, interval: &str) -> Daemon {
        self.daemon_with(interval, |_| {})
    }

    pub fn daemon_with(&self, interval: &str, f: impl FnOnce(&mut Command)) -> Daemon {
        let mut cmd = self.cmd(&["run", "--interval", interval, "--log-level", "debug"]);
        f(&mut cmd);
        Daemon::spawn(cmd)
    }
}

/// Checks and parses CSV bytes as the drainer writes them.
pub fn parse_rows(bytes: &[u8]) -> Vec<(String, u64, u64)> {
    let text = std::str::from_utf8(bytes).expect("CSV is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "partial last line: {:?}",
        &text[text.len().saturating_sub(80)..]
    );
    text.split_terminator("\r\n")
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "bad line {line:?}");
            let unq = |f: &str| {
                assert!(
                    f.len() >= 2 && f.starts_with('"') && f.ends_with('"'),
                    "bad field in {line:?}"
                );
                f[1..f.len() - 1].to_string()
            };
            (
                unq(fields[0]),
                unq(fields[1]).parse().expect("start"),
                unq(fields[2]).parse().expect("duration"),
            )
        })
        .collect()
}

/// Runs `cmd` to completion, killing it if it takes longer than `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let done = Arc::new(Mutex::new(false));
    let done2 = Arc::clone(&done);
    let watchdog = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if *done2.lock().unwrap() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        true
    });
    let out = child.wait_with_output().unwrap();
    *done.lock().unwrap() = true;
    assert!(!watchdog.join().unwrap(), "command hung for {limit:?}");
    out
}

/// A running `perf-drainer run` whose stderr is collected.
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log2.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            log,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        wait_for(&format!("log line {needle:?}"), limit, || {
            self.log().iter().any(|l| l.contains(needle))
        });
        let _ = self;
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(20));
        (status, self.finish())
    }

    /// SIGKILL, then wait.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    /// Waits for the process to exit on its own (bounded).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("daemon did not exit within {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

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

/// Polls `cond` until it holds, failing the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Count of log lines containing `needle`.
pub fn count(log: &[String], needle: &str) -> usize {
    log.iter().filter(|l| l.contains(needle)).count()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn record(state: u32, start: u64, duration: u64) -> perf_ring::Record {
    perf_ring::Record {
        start_ns: start,
        duration_ns: duration,
        state,
        tid: 1,
    }
}

/// A tiny xorshift generator: random delays without a dependency; the seed is printed so a
/// failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("DRAINER_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("random seed (DRAINER_TEST_SEED): {seed}");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
