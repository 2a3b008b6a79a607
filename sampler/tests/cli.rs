//! The binary: validation messages and exit codes, `--once`, disabled mode, SIGTERM, systemd
//! notifications. Every test runs the binary with a cleared environment and its own
//! temporary directory.

mod util;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use util::{marker, rows, sh, wait_until, BIN};

fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs with one bad setting; checks exit 1 and the exact single line on stderr.
fn rejected(env: &[(&str, &str)], args: &[&str], line: &str) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("out");
    let mut args = args.to_vec();
    let storage_str = storage.to_str().unwrap();
    if !args.contains(&"--storage-dir") && !env.iter().any(|(k, _)| k.ends_with("STORAGE_DIR")) {
        args.extend(["--storage-dir", storage_str]);
    }
    args.push("--once");
    let out = run(env, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{env:?} {args:?}: {stderr}");
    assert_eq!(stderr, format!("system-resource-tracker: {line}\n"));
    assert!(
        !storage.exists(),
        "nothing may be written on a config error"
    );
}

const ENABLED: &str = "OT_SYSTEM_RESOURCE_TRACKER_ENABLED";
const FILTERS: &str = "OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS";
const INTERVAL: &str = "OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL";
const STORAGE: &str = "OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR";
const LEVEL: &str = "OT_SYSTEM_RESOURCE_TRACKER_LOGGING_LEVEL";

#[test]
fn enabled_must_be_true_or_false() {
    for bad in ["maybe", "1", "yes", ""] {
        rejected(
            &[(ENABLED, bad)],
            &[],
            &format!("{ENABLED} must be 'true' or 'false' (any case), got {bad:?}"),
        );
    }
}

#[test]
fn filters_need_at_least_one_glob() {
    for bad in ["", " , ,", ","] {
        rejected(
            &[(ENABLED, "true"), (FILTERS, bad)],
            &[],
            &format!(
                "{FILTERS} must be a comma-separated list of at least one process glob, got {bad:?}"
            ),
        );
    }
}

#[test]
fn interval_must_be_a_number() {
    for bad in ["ten", "", "1,5", "10s"] {
        rejected(
            &[(ENABLED, "true"), (INTERVAL, bad)],
            &[],
            &format!("{INTERVAL} must be a number of seconds, got {bad:?}"),
        );
    }
}

#[test]
fn interval_must_be_at_least_one_second() {
    for bad in ["0.999", "0", "-5", "nan"] {
        rejected(
            &[(ENABLED, "true"), (INTERVAL, bad)],
            &[],
            &format!("{INTERVAL} must be greater than or equal to 1.0, got {bad:?}"),
        );
    }
}

#[test]
fn interval_must_be_finite() {
    for bad in ["inf", "1e300"] {
        rejected(
            &[(ENABLED, "true"), (INTERVAL, bad)],
            &[],
            &format!("{INTERVAL} must be a finite number of seconds, got {bad:?}"),
        );
    }
}

#[test]
fn storage_dir_must_be_absolute() {
    for bad in ["relative/dir", "", "./x"] {
        rejected(
            &[(ENABLED, "true"), (STORAGE, bad)],
            &[],
            &format!("{STORAGE} must be an absolute path to a directory, got {bad:?}"),
        );
    }
}

#[test]
fn logging_level_must_be_a_python_name() {
    for bad in ["verbose", "", "TRACE"] {
        rejected(
            &[(ENABLED, "true"), (LEVEL, bad)],
            &[],
            &format!(
                "{LEVEL} must be one of CRITICAL, FATAL, ERROR, WARNING, WARN, INFO, DEBUG, NOTSET (any case), got {bad:?}"
            ),
        );
    }
}

#[test]
fn a_bad_flag_is_named_as_the_flag_and_overrides_a_good_variable() {
    rejected(
        &[(ENABLED, "true"), (INTERVAL, "5")],
        &["--refresh-interval", "0.5"],
        "--refresh-interval must be greater than or equal to 1.0, got \"0.5\"",
    );
    rejected(
        &[(ENABLED, "true")],
        &["--logging-level", "loud"],
        "--logging-level must be one of CRITICAL, FATAL, ERROR, WARNING, WARN, INFO, DEBUG, NOTSET (any case), got \"loud\"",
    );
}

#[test]
fn help_lists_flags_and_variables() {
    let out = run(&[], &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--enabled",
        "--process-filters",
        "--refresh-interval",
        "--storage-dir",
        "--logging-level",
        "--once",
        ENABLED,
        FILTERS,
        INTERVAL,
        STORAGE,
        LEVEL,
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

fn data(dir: &Path) -> Vec<Vec<String>> {
    rows(&std::fs::read(dir.join("system_resource_data")).unwrap_or_default())
}

#[test]
fn once_writes_the_matching_process_and_the_header_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("once");
    let _child = sh("read x", &m, &[]);
    let filter = format!("*{m}*");
    let out = run(
        &[(ENABLED, "TRUE"), (FILTERS, &filter), (INTERVAL, "1")],
        &["--storage-dir", dir.path().to_str().unwrap(), "--once"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("configuration: enabled=true"), "{stderr}");
    let rows = data(dir.path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][1], format!("sh -c read x {m}"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("system_resource_data_headers")).unwrap(),
        "query_time,command,running_since,user_cpu_time,system_cpu_time,memory_percent"
    );
}

#[test]
fn once_fails_with_status_1_when_storage_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"").unwrap();
    let out = run(
        &[(ENABLED, "true")],
        &["--storage-dir", blocked.to_str().unwrap(), "--once"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sample not written"), "{stderr}");
}

#[test]
fn disabled_logs_one_line_writes_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("out");
    for env in [vec![], vec![(ENABLED, "False")]] {
        let out = run(&env, &["--storage-dir", storage.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let disabled: Vec<&str> = stderr.lines().filter(|l| l.contains("disabled")).collect();
        assert_eq!(disabled.len(), 1, "{stderr}");
        assert!(!storage.exists());
    }
}

/// Spawns the daemon under `sh` so that `WATCHDOG_PID=$$` names the daemon itself.
fn spawn_daemon(
    dir: &Path,
    filter: &str,
    interval: &str,
    extra_env: &[(&str, &str)],
) -> util::Reaped {
    util::Reaped(
        Command::new("sh")
            .arg("-c")
            .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
            .arg(BIN)
            .args(["--storage-dir", dir.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs([(ENABLED, "true"), (FILTERS, filter), (INTERVAL, interval)])
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn sigterm(pid: i32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(child: &mut util::Reaped, secs: u64) -> Option<std::process::ExitStatus> {
    let mut status = None;
    wait_until(Duration::from_secs(secs), || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    status
}

#[test]
fn sigterm_stops_the_daemon_at_once_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("term");
    let _child = sh("read x", &m, &[]);
    // A long interval: the daemon must wake from its sleep on the signal, not at the tick.
    let mut daemon = spawn_daemon(dir.path(), &format!("*{m}*"), "60", &[]);
    assert!(
        wait_until(Duration::from_secs(10), || data(dir.path()).len() == 1),
        "the first sample is taken at start-up"
    );
    let t = Instant::now();
    sigterm(daemon.pid());
    let status = wait_exit(&mut daemon, 10).expect("daemon did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let mut stderr = String::new();
    std::io::Read::read_to_string(daemon.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn samples_repeat_at_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("repeat");
    let _child = sh("read x", &m, &[]);
    let mut daemon = spawn_daemon(dir.path(), &format!("*{m}*"), "1", &[]);
    let t = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || data(dir.path())
        .len()
        >= 3));
    // Rows at 0 s, 1 s, 2 s: three rows take about two seconds.
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let times: Vec<u64> = data(dir.path())
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect();
    for pair in times.windows(2) {
        let gap = (pair[1] - pair[0]) as f64 / 1e9;
        // Loose bounds: the machine may be busy; drift would show as a steady offset.
        assert!((0.5..1.8).contains(&gap), "{times:?}");
    }
    sigterm(daemon.pid());
    assert_eq!(wait_exit(&mut daemon, 10).and_then(|s| s.code()), Some(0));
}

#[test]
fn systemd_gets_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let m = marker("notify");
    let mut daemon = spawn_daemon(
        &dir.path().join("out"),
        &format!("*{m}*"),
        "60",
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            // 200 ms: pings every 100 ms while the daemon sleeps through a 60 s interval.
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let recv = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("no notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut messages = Vec::new();
    while messages
        .iter()
        .filter(|m: &&String| m.contains("WATCHDOG=1"))
        .count()
        < 3
    {
        messages.push(recv());
    }
    assert!(
        messages.iter().any(|m| m.contains("READY=1")),
        "{messages:?}"
    );
    sigterm(daemon.pid());
    loop {
        let msg = recv();
        if msg.contains("STOPPING=1") {
            break;
        }
    }
    assert_eq!(wait_exit(&mut daemon, 10).and_then(|s| s.code()), Some(0));
}
