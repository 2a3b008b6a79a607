//! Child processes in tests: a command run with a time limit, a daemon whose stderr lines
//! are collected, a child killed and reaped on drop, signals.
//!
//! Nothing a test starts outlives it: every type here kills and reaps its child when
//! dropped, also while a failed assertion unwinds.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Makes `cmd`'s child start with both its soft and hard `RLIMIT_NOFILE` at `limit`, so
/// that it cannot raise its soft limit either (a daemon under a low limit).
pub fn limit_open_files(cmd: &mut Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    let lower = move || {
        let lim = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        // SAFETY: `lim` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // setrlimit, which is async-signal-safe, on a value on its own stack.
    unsafe { cmd.pre_exec(lower) };
}

/// Runs `cmd` to completion with stdout and stderr captured, killing it (and failing the
/// test with its stderr) if it takes longer than `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    // Both pipes are read while the child runs, so a chatty child never blocks on a full
    // pipe and looks hung.
    let read = |mut r: Box<dyn Read + Send>| {
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

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
    }
}

/// Stops `pid` with SIGSTOP and returns once the kernel says it is stopped (state `T` in
/// `/proc/PID/stat`), so that what the test does next cannot race with it: the signal is
/// only a request, and a process inside a system call runs on until it returns. False if
/// it was not stopped within `limit` (or is gone).
pub fn stop(pid: u32, limit: std::time::Duration) -> bool {
    signal(pid, Signal::SIGSTOP);
    crate::wait::wait_until(limit, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // The command name in parentheses may hold anything; the state follows
                // the last `)`.
                let rest = &stat[stat.rfind(')')? + 1..];
                rest.split_whitespace().next().map(|s| s == "T")
            })
            .unwrap_or(false)
    })
}

/// Lets a process [`stop`] stopped go on (SIGCONT).
pub fn resume(pid: u32) {
    signal(pid, Signal::SIGCONT);
}

/// A command's stdout, lossily decoded.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's stderr, lossily decoded.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How many of `log`'s lines contain `needle`.
pub fn count(log: &[String], needle: &str) -> usize {
    log.iter().filter(|l| l.contains(needle)).count()
}

/// A string no other process on the machine has in its command line (`what`, this
/// process's pid and a counter).
pub fn marker(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "perf-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A child process that is killed and reaped on drop.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Reaped {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).expect("pids fit in i32")
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running daemon whose stderr lines are collected (stdout is discarded).
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Spawns `cmd` with stderr collected line by line (lossily: a daemon must not be able
    /// to stop the collection with a byte that is not UTF-8).
    pub fn spawn(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn daemon {cmd:?}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
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

    /// The log so far, one string.
    pub fn log_text(&self) -> String {
        self.log().join("\n")
    }

    /// Whether a log line so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log().iter().any(|l| l.contains(needle))
    }

    /// Waits for a log line containing `needle`, failing the test after `limit`.
    pub fn wait_log(&self, needle: &str, limit: Duration) {
        crate::wait_for(&format!("log line {needle:?}"), limit, || {
            self.logged(needle)
        });
    }

    /// Sends `sig` to it (it must still be there).
    pub fn signal(&self, sig: Signal) {
        let pid = i32::try_from(self.pid()).expect("pids fit in i32");
        nix::sys::signal::kill(Pid::from_raw(pid), sig)
            .unwrap_or_else(|e| panic!("cannot send {sig} to {pid}: {e}"));
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

    /// SIGTERM, then waits up to 20 s for the exit (SIGKILL and a failed test after that).
    pub fn terminate(self) -> (ExitStatus, Vec<String>) {
        self.terminate_within(Duration::from_secs(20))
    }

    /// SIGTERM, then waits up to `limit` for the exit (SIGKILL and a failed test after
    /// that).
    pub fn terminate_within(mut self, limit: Duration) -> (ExitStatus, Vec<String>) {
        signal(self.pid(), Signal::SIGTERM);
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

    /// Waits up to `limit` for the process to exit by itself; kills it and fails the test
    /// with its log if it does not.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        match self.wait_exit_within(limit) {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "daemon did not exit within {limit:?}; log:\n{}",
                    self.log_text()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_within_returns_both_streams() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output_within(cmd, Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(
            (stdout(&out), stderr(&out)),
            ("out\n".into(), "err\n".into())
        );
    }

    #[test]
    #[should_panic(expected = "hung for")]
    fn output_within_kills_a_command_that_hangs() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        output_within(cmd, Duration::from_millis(100));
    }

    #[test]
    fn a_daemon_collects_its_log_and_stops_on_sigterm() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "printf 'ready\\n\\377 raw\\n' >&2; exec sleep 30"]);
        let daemon = Daemon::spawn(cmd);
        daemon.wait_log("ready", Duration::from_secs(10));
        let (status, log) = daemon.terminate();
        assert_eq!(status.code(), None, "killed by the signal");
        assert_eq!(count(&log, "raw"), 1, "a non-UTF-8 line is kept: {log:?}");
    }

    #[test]
    fn markers_are_unique() {
        assert_ne!(marker("x"), marker("x"));
    }
}

#[cfg(test)]
mod stop_tests {
    use super::*;

    #[test]
    fn stop_waits_for_the_stopped_state() {
        let child = Reaped(
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("sleep"),
        );
        let pid = child.0.id();
        assert!(stop(pid, std::time::Duration::from_secs(10)));
        resume(pid);
    }
}
