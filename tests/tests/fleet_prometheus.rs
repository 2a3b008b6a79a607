//! The fleet proof: Debian's real Prometheus scrapes `perf-drainer` and
//! `system-resource-tracker` on loopback while `perf-load` writes records and the tracker
//! watches a few idle processes; then Prometheus' own query API must agree with the CSV,
//! the rings' counters and /proc, and report both targets healthy.
//!
//! Skips (printing why) without a `prometheus` binary, unless `PERF_REQUIRE_PROMETHEUS=1`
//! (CI), where that is a failure.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use perf_testkit::{wait_until, Daemon, Dirs, Reaped};
use perf_tests::bins;
use perf_tests::prometheus::{Prometheus, Target};
use perf_tests::stress::{load_report_within, LoadReport};

const ROBOT: &str = "flex-under-test";

/// The address a daemon logged it serves `/metrics` on.
fn served_addr(d: &Daemon) -> SocketAddr {
    let found = wait_until(Duration::from_secs(20), || {
        d.logged("serving /metrics on http://")
    });
    assert!(found, "no serving line:\n{}", d.log().join("\n"));
    let log = d.log();
    let line = log
        .iter()
        .find(|l| l.contains("serving /metrics on http://"))
        .unwrap();
    let rest = line.split("serving /metrics on http://").nth(1).unwrap();
    rest.trim_end_matches("/metrics").parse().unwrap()
}

/// `sh -c 'read x' TAG`: idle (its stdin is a pipe nobody writes), so its size holds still.
fn idle_process(tag: &str) -> Reaped {
    let child = Command::new("sh")
        .args(["-c", "read x", tag])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let r = Reaped(child);
    let cmdline = format!("/proc/{}/cmdline", r.pid());
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read(&cmdline)
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(tag))),
        "sh never showed its tag"
    );
    r
}

/// VmRSS of `pid` in bytes (statm's resident pages times the page size).
fn vm_rss(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024.0
}

/// `perf-load` writing `threads × records` records of `state` for `service`.
fn load(dirs: &Dirs, service: &str, state: &str, records: u32, capacity: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_perf-load"))
        .arg("--shm-dir")
        .arg(&dirs.shm)
        .args(["--service", service, "--state", state, "--threads", "2"])
        .args(["--records", &records.to_string()])
        .args(["--capacity", &capacity.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn perf-load")
}

/// Rows of the CSV by state.
fn csv_states(dirs: &Dirs) -> BTreeMap<String, f64> {
    let mut by_state = BTreeMap::new();
    let csv = String::from_utf8(dirs.csv()).unwrap();
    for line in csv.split_terminator("\r\n") {
        let state = line
            .split(',')
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string();
        *by_state.entry(state).or_insert(0.0) += 1.0;
    }
    by_state
}

#[test]
fn prometheus_agrees_with_the_csv_the_rings_and_proc() {
    let bin = match Prometheus::binary() {
        Ok(bin) => bin,
        Err(why) => {
            println!("SKIPPED: {why}");
            return;
        }
    };
    let dirs = Dirs::new().drainer(bins::perf_drainer());
    let drainer = dirs.daemon_with("0.2", |c| {
        c.args(["--metrics-listen", "127.0.0.1:0"]);
    });
    let drainer_addr = served_addr(&drainer);

    let tag = format!("perf-fleet-test-{}", std::process::id());
    let idle: Vec<Reaped> = (0..3)
        .map(|i| idle_process(&format!("{tag}-{i}")))
        .collect();
    let mut tracker_cmd = Command::new(bins::system_resource_tracker());
    tracker_cmd
        .env_clear()
        .env("OT_SYSTEM_RESOURCE_TRACKER_ENABLED", "true")
        .env(
            "OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS",
            format!("*{tag}*"),
        )
        .env("OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL", "1")
        .env("OT_SYSTEM_RESOURCE_TRACKER_METRICS_LISTEN", "127.0.0.1:0")
        .env("OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR", &dirs.storage)
        .stdin(Stdio::null());
    let tracker = Daemon::spawn(tracker_cmd);
    let tracker_addr = served_addr(&tracker);

    let prometheus = Prometheus::start(
        &bin,
        &[
            Target {
                job: "perf-drainer".into(),
                addr: drainer_addr,
                robot: ROBOT.into(),
            },
            Target {
                job: "system-resource-tracker".into(),
                addr: tracker_addr,
                robot: ROBOT.into(),
            },
        ],
        Duration::from_millis(500),
    );

    // Two services in two states; the second one's ring is too small, so it drops.
    let loads = [
        load(
            &dirs,
            "fleet-analysis",
            "ANALYZING_PROTOCOL",
            20_000,
            1 << 16,
        ),
        load(&dirs, "fleet-runs", "RUNNING_PROTOCOL", 5_000, 64),
    ];
    let reports: Vec<LoadReport> = loads
        .into_iter()
        .map(|c| load_report_within(c, Duration::from_secs(60)))
        .collect();
    let committed: u64 = reports.iter().map(|r| r.committed).sum();
    assert!(
        reports[1].dropped > 0,
        "the small ring dropped: {reports:?}"
    );
    assert!(
        wait_until(Duration::from_secs(60), || dirs.complete_rows() as u64
            == committed),
        "the CSV never held the {committed} committed records"
    );
    let rows = dirs.complete_rows() as f64;

    // Prometheus catches up with the commit within a few scrapes.
    let total = "sum(perf_drainer_activity_duration_seconds_count)";
    assert!(
        wait_until(Duration::from_secs(30), || prometheus.value(total)
            == Some(rows)),
        "{total} = {:?}, the CSV has {rows} rows\n{}",
        prometheus.value(total),
        prometheus.log()
    );
    let by_state: BTreeMap<String, f64> = prometheus
        .values_by(
            &format!("perf_drainer_activity_duration_seconds_count{{robot=\"{ROBOT}\"}}"),
            "state",
        )
        .into_iter()
        .collect();
    assert_eq!(
        by_state,
        csv_states(&dirs),
        "per-state counts against the CSV"
    );
    // Every bucket set ends in +Inf, equal to its count.
    let inf = prometheus.value("sum(perf_drainer_activity_duration_seconds_bucket{le=\"+Inf\"})");
    assert_eq!(inf, Some(rows));

    let services = [("fleet-analysis", &reports[0]), ("fleet-runs", &reports[1])];
    for (service, report) in services {
        let q = |m: &str| format!("{m}{{service=\"{service}\",robot=\"{ROBOT}\"}}");
        assert!(
            wait_until(Duration::from_secs(20), || prometheus
                .value(&q("perf_drainer_records_dropped_total"))
                == Some(report.dropped as f64)),
            "{service}: dropped {:?}, the ring counted {}",
            prometheus.value(&q("perf_drainer_records_dropped_total")),
            report.dropped
        );
        assert_eq!(
            prometheus.value(&q("perf_drainer_records_written_total")),
            Some(report.committed as f64),
            "{service}"
        );
    }

    // The tracker: each idle process's resident bytes as /proc has them.
    for (i, p) in idle.iter().enumerate() {
        let q = format!(
            "perf_tracker_resident_memory_bytes{{command=\"sh -c read x {tag}-{i}\",robot=\"{ROBOT}\"}}"
        );
        let rss = vm_rss(p.pid());
        assert!(
            wait_until(Duration::from_secs(20), || prometheus.value(&q)
                == Some(rss)),
            "{q} = {:?}, /proc says {rss}",
            prometheus.value(&q)
        );
    }
    assert_eq!(
        prometheus.value("perf_tracker_processes_matched"),
        Some(idle.len() as f64)
    );

    // Both targets up, no scrape error.
    let targets = prometheus.targets();
    assert_eq!(targets.len(), 2, "{targets:?}");
    for t in &targets {
        assert_eq!(t["health"], "up", "{t}");
        assert_eq!(t["lastError"], "", "{t}");
        assert_eq!(t["labels"]["robot"], ROBOT, "{t}");
    }
    for job in ["perf-drainer", "system-resource-tracker"] {
        assert_eq!(
            prometheus.value(&format!("up{{job=\"{job}\"}}")),
            Some(1.0),
            "{job}"
        );
    }
    println!(
        "prometheus agreed: {rows} rows in {} states, dropped {}, {} tracked processes",
        by_state.len(),
        reports[1].dropped,
        idle.len()
    );
    drop(prometheus);
    drop(tracker);
    drop(drainer);
}

/// `promtool check metrics` (from the same Debian package) on both daemons' textfiles:
/// the Prometheus text format node_exporter's textfile collector reads, names and help
/// passing Prometheus' own lint.
#[test]
fn the_textfiles_pass_promtool() {
    let Ok(prometheus) = Prometheus::binary() else {
        println!("SKIPPED: no prometheus binary, so no promtool beside it");
        return;
    };
    let promtool = prometheus.with_file_name("promtool");
    if !promtool.is_file() {
        println!("SKIPPED: no {}", promtool.display());
        return;
    }
    let dirs = Dirs::new().drainer(bins::perf_drainer());
    let drainer_file = dirs.root().join("perf-drainer.prom");
    let drainer = dirs.daemon_with("0.2", |c| {
        c.arg(format!("--metrics-textfile={}", drainer_file.display()));
    });
    let tag = format!("perf-promtool-test-{}", std::process::id());
    let _idle = idle_process(&tag);
    let tracker_file = dirs.root().join("tracker.prom");
    let mut tracker_cmd = Command::new(bins::system_resource_tracker());
    tracker_cmd
        .env_clear()
        .env("OT_SYSTEM_RESOURCE_TRACKER_ENABLED", "true")
        .env(
            "OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS",
            format!("*{tag}*"),
        )
        .env("OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL", "1")
        .env("OT_SYSTEM_RESOURCE_TRACKER_METRICS_TEXTFILE", &tracker_file)
        .env("OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR", &dirs.storage)
        .stdin(Stdio::null());
    let tracker = Daemon::spawn(tracker_cmd);
    let report = load_report_within(
        load(&dirs, "promtool", "CALIBRATING", 1000, 1 << 12),
        Duration::from_secs(60),
    );
    let written = format!(
        "perf_drainer_records_written_total{{service=\"promtool\"}} {}",
        report.committed
    );
    let command = format!("perf_tracker_processes{{command=\"sh -c read x {tag}\"}} 1");
    for (file, needle) in [(&drainer_file, &written), (&tracker_file, &command)] {
        assert!(
            wait_until(Duration::from_secs(20), || std::fs::read_to_string(file)
                .is_ok_and(|t| t.contains(needle.as_str()))),
            "{} never showed {needle}",
            file.display()
        );
        let out = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(file).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool on {}: {out:?}",
            file.display()
        );
    }
    drop(tracker);
    drop(drainer);
}
