//! `--metrics-listen` / `--metrics-textfile` of the binary: a tracked process's resident
//! bytes as /proc has them; start-up errors as one line, exit 1 (the tracker's convention).

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{marker, sh, wait_until, Reaped, BIN};

/// `GET /metrics` (one request per connection).
fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// VmRSS of `pid` in bytes (what statm's resident pages times the page size give).
fn vm_rss(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn resident_bytes_of_a_tracked_process_match_proc() {
    let m = marker("metrics");
    // A shell waiting on its (piped, never written) stdin: idle, so its size holds still.
    let idle = sh("read x", &m, &[]);
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("tracker.prom");
    let mut daemon = Reaped(
        Command::new(BIN)
            .env_clear()
            .env("OT_SYSTEM_RESOURCE_TRACKER_ENABLED", "true")
            .env("OT_SYSTEM_RESOURCE_TRACKER_METRICS_LISTEN", "127.0.0.1:0")
            // In the environment: in argv the tracker would match itself.
            .env(
                "OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS",
                format!("*{m}*"),
            )
            .args(["--refresh-interval", "1", "--logging-level", "info"])
            .arg("--storage-dir")
            .arg(dir.path().join("out"))
            .arg("--metrics-textfile")
            .arg(&textfile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(daemon.0.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("the daemon logs its address").unwrap();
        if let Some(rest) = line.split("serving /metrics on http://").nth(1) {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    assert!(addr.ip().is_loopback());
    let command = format!("sh -c read x {m}");
    let series = format!("perf_tracker_resident_memory_bytes{{command=\"{command}\"}} ");
    let mut text = String::new();
    let found = wait_until(Duration::from_secs(10), || {
        text = scrape(addr);
        text.contains(&series)
    });
    assert!(found, "no {series:?} in\n{text}");
    let shown: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(shown, vm_rss(idle.pid()), "an idle process keeps its size");
    assert!(text.contains(&format!(
        "perf_tracker_processes{{command=\"{command}\"}} 1"
    )));
    assert!(text.contains("perf_tracker_processes_matched 1"), "{text}");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&textfile).is_ok_and(|t| t.contains(&series))
    }));
}

#[test]
fn a_port_in_use_or_a_bad_address_is_one_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (listen, needle) in [
        (port.as_str(), port.as_str()),
        (
            "robot.local:9102",
            "OT_SYSTEM_RESOURCE_TRACKER_METRICS_LISTEN",
        ),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env("OT_SYSTEM_RESOURCE_TRACKER_ENABLED", "true")
            .env("OT_SYSTEM_RESOURCE_TRACKER_METRICS_LISTEN", listen)
            .arg("--storage-dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{listen}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.contains(needle), "{listen}: {err}");
        assert!(
            err.lines()
                .filter(|l| l.contains("ERROR") || l.contains("must be"))
                .count()
                == 1,
            "{listen}: {err}"
        );
    }
}
