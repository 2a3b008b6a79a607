//! Issue 17's measurement: the two trackers side by side, as daemons.
//!
//! 40 robot-like processes (matching the default filters `/opt/opentrons*,python3*`), then
//! `system-resource-tracker` and `psutil_tracker.py every` (the Python tracker's sampling
//! path at a fixed rate) both sampling every second with the default filters, each into
//! its own file. After a warm-up, each tracker's on-CPU time (from
//! `/proc/PID/task/*/schedstat`) and the rows it wrote are taken over the same window; the
//! result is the CPU per row written and the ratio.
//!
//! `PERF_SIDE_BY_SIDE_SECS` sets the window (default 30 s). Needs `pip install psutil`.
//! `PERF_SIDE_BY_SIDE_BUSY=1` makes the 40 processes wake ten times a second (a perl
//! loop, as the robot's services run every interval) instead of sleeping throughout.
//! `PERF_SIDE_BY_SIDE_BASELINE=PATH` runs a third tracker, another build of
//! `system-resource-tracker` (an older version), beside the two, and gives its ratio too.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const PROCESSES: usize = 40;
const DEFAULT_FILTERS: &str = "/opt/opentrons*,python3*";

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn robot_like(k: usize, busy: bool) -> Reaped {
    let argv0 = if k % 2 == 0 {
        format!(
            "python3 -m robot_server.service --worker {k} --port {}",
            31950 + k
        )
    } else {
        format!("/opt/opentrons-robot-server/bin/python3-{k} -m opentrons.hardware_control")
    };
    let mut command = if busy {
        let mut c = Command::new("perl");
        c.args(["-e", "select(undef, undef, undef, 0.1) while 1"]);
        c
    } else {
        let mut c = Command::new("sleep");
        c.arg("3600");
        c
    };
    Reaped(
        command
            .arg0(OsStr::new(&argv0))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn a robot-like process"),
    )
}

/// Nanoseconds on a CPU so far, all threads of `pid`.
fn on_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn rows(path: &Path) -> usize {
    std::fs::read(path).map_or(0, |d| d.windows(2).filter(|w| w == b"\r\n").count())
}

struct Tracker {
    name: &'static str,
    child: Reaped,
    file: std::path::PathBuf,
}

impl Tracker {
    fn now(&self) -> (u64, usize) {
        (on_cpu_ns(self.child.0.id()), rows(&self.file))
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("PERF_SIDE_BY_SIDE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let busy = std::env::var_os("PERF_SIDE_BY_SIDE_BUSY").is_some_and(|v| v == "1");
    let baseline = std::env::var_os("PERF_SIDE_BY_SIDE_BASELINE");
    let dir = tempfile::tempdir().unwrap();
    let _robot: Vec<Reaped> = (0..PROCESSES).map(|k| robot_like(k, busy)).collect();
    std::thread::sleep(Duration::from_millis(300));

    let tracker = |exe: &OsStr, name: &'static str| {
        let mut c = Command::new(exe);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy()
                .starts_with("OT_SYSTEM_RESOURCE_TRACKER")
            {
                c.env_remove(k);
            }
        }
        c.args(["--enabled", "true", "--refresh-interval", "1"])
            .arg("--storage-dir")
            .arg(dir.path().join(name))
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        Tracker {
            name,
            child: Reaped(c.spawn().expect("start system-resource-tracker")),
            file: dir.path().join(name).join("system_resource_data"),
        }
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/psutil_tracker.py");
    let python_file = dir.path().join("python_system_resource_data");
    let mut python = Command::new("python3");
    python
        .args([script, "every", "1", DEFAULT_FILTERS])
        .arg(&python_file)
        .stdin(Stdio::null());
    let mut trackers = vec![
        tracker(
            OsStr::new(env!("CARGO_BIN_EXE_system-resource-tracker")),
            "rust",
        ),
        Tracker {
            name: "psutil",
            child: Reaped(python.spawn().expect("start python3")),
            file: python_file,
        },
    ];
    if let Some(exe) = &baseline {
        trackers.push(tracker(exe, "before"));
    }
    // Start-up and first samples are not part of the measurement.
    std::thread::sleep(Duration::from_secs(3));
    let before: Vec<(u64, usize)> = trackers.iter().map(Tracker::now).collect();
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<(u64, usize)> = trackers.iter().map(Tracker::now).collect();

    let kind = if busy { "busy" } else { "idle" };
    println!(
        "side by side, {PROCESSES} {kind} robot-like processes, default filters, 1 s interval, {secs} s:"
    );
    let mut per_row = Vec::new();
    for ((t, b), a) in trackers.iter().zip(&before).zip(&after) {
        if a.1 <= b.1 {
            println!(
                "  {}: no rows written (is psutil installed? pip install psutil)",
                t.name
            );
            return;
        }
        let cpu_us = (a.0 - b.0) as f64 / 1e3;
        let written = a.1 - b.1;
        println!(
            "  {:6} {written:5} rows, {cpu_us:9.0} µs on CPU: {:7.1} µs per row, {:8.0} µs per second",
            t.name,
            cpu_us / written as f64,
            cpu_us / secs as f64
        );
        per_row.push(cpu_us / written as f64);
    }
    println!("  ratio  {:.1}x less CPU per row", per_row[1] / per_row[0]);
    if let Some(before) = per_row.get(2) {
        println!(
            "  before {:.1}x less than psutil; rust {:.2}x less than before",
            per_row[1] / before,
            before / per_row[0]
        );
    }
}
