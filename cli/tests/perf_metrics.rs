//! End-to-end tests of the `perf-metrics` binary, each in its own temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod demo_views;
mod trace_rules;

const BIN: &str = env!("CARGO_BIN_EXE_perf-metrics");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("OT_PERFORMANCE_METRICS_SHM_DIR")
        .env_remove("OT_PERFORMANCE_METRICS_STORAGE_DIR")
        .output()
        .expect("run perf-metrics")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Every row of a CSV table written without a header, as strings.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The number after `prefix` on the line starting with `prefix`.
fn number_after(stdout: &str, prefix: &str) -> u64 {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in\n{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn demo_runs_the_whole_pipeline_and_loses_nothing_of_the_crashed_service() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let shm_parent = tmp.path().join("shm");
    std::fs::create_dir(&shm_parent).unwrap();
    let out = run(&[
        "demo",
        "--seconds",
        "5",
        "--out",
        out_dir.to_str().unwrap(),
        "--shm-parent",
        shm_parent.to_str().unwrap(),
    ]);
    let stdout = ok(&out);

    // What the services said they committed, the crashed one included.
    let committed = number_after(&stdout, "committed: ");
    let crashed_line = stdout
        .lines()
        .find(|l| l.starts_with("committed: "))
        .unwrap();
    let crashed: u64 = crashed_line
        .split('(')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(crashed > 0, "{crashed_line}");
    assert!(crashed_line.contains("by the crashed flaky-analyzer"));
    assert!(stdout.contains("crashed (SIGKILL) mid-run"), "{stdout}");

    // Every committed record is a well-formed row, exactly once (the crashed service's are
    // part of the total, so none of them is missing).
    let rows = csv_rows(&out_dir.join("robot_activity_data"));
    assert_eq!(rows.len() as u64, committed, "{stdout}");
    let mut states = BTreeSet::new();
    for row in &rows {
        assert_eq!(row.len(), 3);
        assert!(row[1].parse::<u64>().unwrap() > 1_600_000_000_000_000_000);
        row[2].parse::<u64>().unwrap();
        states.insert(row[0].clone());
    }
    // Every state the producer knows appears in the demo's day.
    let known = perf_producer::RobotActivityState::NAMES;
    assert_eq!(states, known.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("robot_activity_data_headers")).unwrap(),
        "state,func_start,duration"
    );

    // No ring (and no ring directory) left behind.
    assert_eq!(std::fs::read_dir(&shm_parent).unwrap().count(), 0);
    assert!(stdout.contains("rings left behind: 0"), "{stdout}");

    // The sampler sampled the demo's services, the crashed one too.
    let samples = csv_rows(&out_dir.join("system_resource_data"));
    assert!(!samples.is_empty());
    let commands: BTreeSet<&str> = samples.iter().map(|r| r[1].as_str()).collect();
    for service in [
        "robot-server",
        "protocol-analyzer",
        "hardware-controller",
        "flaky-analyzer",
    ] {
        // Natively the command starts with the services' argv0; under an emulator (CI's
        // aarch64 run) the kernel's command line starts with the interpreter and the path.
        let wanted = format!("perf-metrics demo-service --service {service} ");
        assert!(
            commands.iter().any(|c| c.contains(&wanted)),
            "{service} not sampled: {commands:?}"
        );
    }
    for row in &samples {
        assert_eq!(row.len(), 6);
        for f in &row[2..] {
            f.parse::<f64>().unwrap();
        }
    }

    // The page of plots is written beside the CSVs, and its path printed with theirs.
    let page = out_dir.join("report.html");
    let listed = format!(
        "  {}   (this run's report as a page of plots",
        page.display()
    );
    assert!(stdout.contains(&listed), "{stdout}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<svg") && html.contains("GETTING_CACHED_ANALYSIS"));

    // The report printed at the end covers the run.
    assert!(stdout.contains("GETTING_CACHED_ANALYSIS"));
    assert!(stdout.contains(&format!("robot activity: {committed} records")));

    demo_views::the_demo_exports_as_a_timeline_of_services_and_threads(&out_dir, &stdout, &rows);
    demo_views::the_report_breaks_each_state_down_by_service(
        tmp.path(),
        &out_dir,
        &stdout,
        committed,
    );
}

/// A small storage directory whose figures are worked out by hand below.
fn fixed_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t0: u64 = 1_722_450_000_000_000_000; // 2024-07-31T18:20:00Z
    let ms = 1_000_000u64;
    let row = |state: &str, start: u64, dur: u64| format!("\"{state}\",\"{start}\",\"{dur}\"\r\n");
    let activity = [
        row("CALIBRATING", t0, 10 * ms),
        row("CALIBRATING", t0 + 1_000 * ms, 40 * ms),
        row("RUNNING_PROTOCOL", t0 + 2_000 * ms, 5_000 * ms),
        "\"CALIBRATING\",\"soon\",\"5\"\r\n".into(), // line 4: malformed
        row("CALIBRATING", t0 + 3_000 * ms, 30 * ms),
        "\"CALIBRATING\",\"1\"\r\n".into(), // line 6: malformed
        row("CALIBRATING", t0 + 4_000 * ms, 1_000 * ms),
        row("CALIBRATING", t0 + 10_000 * ms, 20 * ms),
    ]
    .concat();
    std::fs::write(dir.path().join("robot_activity_data"), activity).unwrap();

    let s = 1_000_000_000u64;
    let sample = |t: u64, cmd: &str, since: &str, user: &str, sys: &str, mem: &str| {
        format!("\"{t}\",\"{cmd}\",\"{since}\",\"{user}\",\"{sys}\",\"{mem}\"\r\n")
    };
    let resources = [
        sample(t0, "python3 a", "1722449000.0", "1.0", "0.5", "2.0"),
        sample(t0, "python3 b", "1722449000.0", "7.0", "0.0", "10.0"),
        sample(t0 + s, "python3 a", "1722449000.0", "2.0", "1.0", "4.0"),
        // "python3 a" restarted: a new start time.
        sample(
            t0 + 2 * s,
            "python3 a",
            "1722450001.5",
            "0.25",
            "0.0",
            "1.0",
        ),
        sample(
            t0 + 3 * s,
            "python3 a",
            "1722450001.5",
            "0.75",
            "0.0",
            "1.0",
        ),
        sample(
            t0 + 3 * s,
            "python3 b",
            "1722449000.0",
            "7.5",
            "0.25",
            "12.0",
        ),
    ]
    .concat();
    std::fs::write(dir.path().join("system_resource_data"), resources).unwrap();
    dir
}

fn state<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["robot_activity"]["states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["state"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

fn command<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["system_resources"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["command"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

#[test]
fn report_matches_hand_computed_figures_and_names_bad_lines() {
    let dir = fixed_dir();
    let out = run(&["report", "--json", dir.path().to_str().unwrap()]);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    let stderr = text(&out.stderr);
    let file = dir.path().join("robot_activity_data");
    assert!(
        stderr.contains(&format!("{}:4: func_start \"soon\"", file.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:6: expected 3 fields", file.display())),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert_eq!(report["malformed_lines"], 2);
    assert_eq!(
        report["robot_activity"]["records"],
        perf_testkit::compat::robot_activity().len()
    );

    // CALIBRATING: 10, 20, 30, 40, 1000 ms. Nearest rank: p50 = 3rd, p95 = p99 = 5th.
    let ms = 1_000_000u64;
    let cal = state(&report, "CALIBRATING");
    assert_eq!(cal["count"], 5);
    assert_eq!(cal["total_ns"], 1_100 * ms);
    assert_eq!(cal["mean_ns"].as_f64().unwrap(), 220e6);
    assert_eq!(cal["p50_ns"], 30 * ms);
    assert_eq!(cal["p95_ns"], 1_000 * ms);
    assert_eq!(cal["p99_ns"], 1_000 * ms);
    assert_eq!(cal["max_ns"], 1_000 * ms);
    let run_state = state(&report, "RUNNING_PROTOCOL");
    assert_eq!(run_state["count"], 1);
    assert_eq!(run_state["p50_ns"], 5_000 * ms);

    // python3 a: 1.5 -> 3.0 (1.5 s), restart, 0.25 -> 0.75 (0.5 s); memory 2, 4, 1, 1.
    let a = command(&report, "python3 a");
    assert_eq!(a["samples"], 4);
    assert_eq!(a["processes"], 2);
    assert_eq!(a["cpu_seconds"].as_f64().unwrap(), 2.0);
    assert_eq!(a["mean_memory_percent"].as_f64().unwrap(), 2.0);
    assert_eq!(a["peak_memory_percent"].as_f64().unwrap(), 4.0);
    let b = command(&report, "python3 b");
    assert_eq!(b["cpu_seconds"].as_f64().unwrap(), 0.75);
    assert_eq!(b["mean_memory_percent"].as_f64().unwrap(), 11.0);

    // The same as text, with human units.
    let out = run(&["report", dir.path().to_str().unwrap()]);
    let stdout = ok(&out);
    let cal_line = stdout
        .lines()
        .find(|l| l.starts_with("CALIBRATING"))
        .unwrap();
    let cells: Vec<&str> = cal_line
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "CALIBRATING",
            "5",
            "1.10 s",
            "220 ms",
            "30.0 ms",
            "1.00 s",
            "1.00 s",
            "1.00 s"
        ]
    );
    assert!(stdout.contains("2 malformed lines skipped"));
    assert!(stdout.contains("python3 a"));
}

#[test]
fn report_window_accepts_rfc3339_and_epoch_seconds() {
    let dir = fixed_dir();
    let d = dir.path().to_str().unwrap();
    // [t0 + 1 s, t0 + 4 s): CALIBRATING at +1 s and +3 s, RUNNING_PROTOCOL at +2 s.
    for (since, until) in [
        ("2024-07-31T18:20:01Z", "1722450004"),
        ("1722450001", "2024-07-31T20:20:04+02:00"),
    ] {
        let out = run(&["report", "--json", "--since", since, "--until", until, d]);
        let report: Value = serde_json::from_str(&ok(&out)).unwrap();
        assert_eq!(report["robot_activity"]["records"], 3);
        let cal = state(&report, "CALIBRATING");
        assert_eq!(cal["count"], 2);
        assert_eq!(cal["max_ns"], 40_000_000);
        // Samples at +1 s, +2 s, +3 s, +3 s.
        assert_eq!(report["system_resources"]["rows"], 4);
        // python3 a: only the restarted process spans two samples in the window.
        assert_eq!(
            command(&report, "python3 a")["cpu_seconds"]
                .as_f64()
                .unwrap(),
            0.5
        );
    }
    let out = run(&["report", "--since", "tomorrow", d]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    let out = run(&[
        "report",
        "--since",
        "1722450004",
        "--until",
        "1722450001",
        d,
    ]);
    assert_eq!(out.status.code(), Some(1));
}

fn compat_dir() -> PathBuf {
    perf_testkit::compat::dir()
}

#[test]
fn report_reads_files_written_by_the_python_package() {
    let out = run(&["report", "--json", compat_dir().to_str().unwrap()]);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(report["malformed_lines"], 0);
    assert_eq!(
        report["robot_activity"]["records"],
        perf_testkit::compat::robot_activity().len()
    );
    for name in perf_testkit::compat::states() {
        assert_eq!(state(&report, name)["count"], 1);
    }
    assert_eq!(
        state(&report, "ANALYZING_PROTOCOL")["total_ns"],
        2_500_000_000u64
    );
    assert_eq!(state(&report, "CALIBRATING")["max_ns"], u64::MAX);
    assert_eq!(state(&report, "ROBOT_SHUTTING_DOWN")["p99_ns"], 42);
    let quoted = command(
        &report,
        "/opt/opentrons-robot-server/bin/x --flag \"quoted, value\"",
    );
    assert_eq!(quoted["peak_memory_percent"].as_f64().unwrap(), 1e-05);
    // Python wrote 3.1415926535 (not π): the value must come back exactly.
    assert_eq!(
        command(&report, "python3 -m robot_server.app")["mean_memory_percent"]
            .as_f64()
            .unwrap()
            .to_string(),
        "3.1415926535"
    );
    assert_eq!(command(&report, "python3 a,b")["samples"], 1);
    // The text form does not choke on the 584-year duration either.
    ok(&run(&["report", compat_dir().to_str().unwrap()]));
}

#[test]
fn export_writes_a_trace_whose_events_are_the_csv_rows() {
    let dir = fixed_dir();
    let trace = dir.path().join("trace.json");
    let out = run(&[
        "export",
        "--chrome-trace",
        trace.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    let stdout = ok(&out);
    assert!(stdout.contains("wrote 6 events"), "{stdout}");
    assert_eq!(text(&out.stderr).lines().count(), 2);

    let json: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let mut track_names = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
    {
        track_names.insert(
            e["tid"].as_u64().unwrap(),
            e["args"]["name"].as_str().unwrap(),
        );
    }
    // Expected: the good rows of the CSV.
    let mut expected: Vec<(String, u64, u64)> = csv_rows(&dir.path().join("robot_activity_data"))
        .into_iter()
        .filter_map(|r| Some((r[0].clone(), r[1].parse().ok()?, r.get(2)?.parse().ok()?)))
        .collect();
    expected.sort();
    let mut got: Vec<(String, u64, u64)> = events
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            assert_eq!(e["pid"], 1);
            let name = e["name"].as_str().unwrap().to_owned();
            // One track per state, named after it.
            assert_eq!(track_names[&e["tid"].as_u64().unwrap()], name);
            let us = |v: &Value| (v.as_f64().unwrap() * 1000.0).round() as u64;
            (name, us(&e["ts"]), us(&e["dur"]))
        })
        .collect();
    got.sort();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.0, e.0);
        // ts in µs as a double: exact to well under a microsecond at this magnitude.
        assert!(g.1.abs_diff(e.1) < 1_000, "{g:?} vs {e:?}");
        assert_eq!(g.2, e.2);
    }
    assert_eq!(
        track_names.values().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["CALIBRATING", "RUNNING_PROTOCOL"])
    );

    // --until narrows it, and "-" writes to stdout.
    let out = run(&[
        "export",
        "--chrome-trace",
        "-",
        "--until",
        "1722450001",
        dir.path().to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_str(&ok(&out)).unwrap();
    let x = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .count();
    assert_eq!(x, 1);
}

#[test]
fn status_shows_the_drainer_view_of_the_rings() {
    let tmp = tempfile::tempdir().unwrap();
    let rings = tmp.path().join("rings");
    let mut config = perf_producer::Config::new("status-test");
    config.enabled = Some(true);
    config.shm_dir = Some(rings.clone());
    let tracker = perf_producer::Tracker::new(config);
    for _ in 0..3 {
        let _span = tracker.span(perf_producer::RobotActivityState::Calibrating);
    }
    let out = run(&[
        "status",
        "--json",
        "--shm-dir",
        rings.to_str().unwrap(),
        "--storage-dir",
        tmp.path().to_str().unwrap(),
    ]);
    let status: Value = serde_json::from_str(&ok(&out)).unwrap();
    let list = status["rings"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{status}");
    assert_eq!(list[0]["service"], "status-test");
    assert_eq!(list[0]["pid"], std::process::id());
    assert_eq!(list[0]["alive"], true);
    assert_eq!(list[0]["committed"], 3);
    assert_eq!(list[0]["in_ring"], 3);
    assert_eq!(list[0]["valid"], true);

    // The table, with the directory from the environment as perf-drainer reads it.
    let out = Command::new(BIN)
        .arg("status")
        .env("OT_PERFORMANCE_METRICS_SHM_DIR", &rings)
        .env("OT_PERFORMANCE_METRICS_STORAGE_DIR", tmp.path())
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.starts_with("FILE"), "{stdout}");
    let line = stdout.lines().nth(1).unwrap();
    assert!(
        line.contains("status-test") && line.contains(" yes"),
        "{stdout}"
    );
    drop(tracker);
}

#[test]
fn errors_are_one_line_with_the_right_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(&["report", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("perf-metrics: no robot_activity_data"),
        "{stderr}"
    );

    for args in [
        &["frobnicate"][..],
        &["demo", "--seconds", "0.5"],
        &["export", "/x"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr).lines().count(), 1, "{args:?}");
    }
    let out = run(&[
        "export",
        "--chrome-trace",
        "/nonexistent/dir/t.json",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn report_compares_robots_side_by_side() {
    let a = fixed_dir();
    let compat = compat_dir();
    let (da, db) = (a.path().to_str().unwrap(), compat.to_str().unwrap());
    let out = run(&[
        "report", "--json", "--name", "flex-a", "--name", "flex-b", da, db,
    ]);
    let fleet: Value = serde_json::from_str(&ok(&out)).unwrap();
    let robots = fleet["robots"].as_object().unwrap();
    assert_eq!(robots.keys().collect::<Vec<_>>(), ["flex-a", "flex-b"]);
    assert_eq!(robots["flex-a"]["robot_activity"]["records"], 6);
    assert_eq!(state(&robots["flex-a"], "CALIBRATING")["count"], 5);
    assert_eq!(state(&robots["flex-b"], "CALIBRATING")["count"], 1);

    // Text: one column per robot per figure.
    let stdout = ok(&run(&[
        "report", "--name", "flex-a", "--name", "flex-b", da, db,
    ]));
    let header = stdout
        .lines()
        .find(|l| l.starts_with("STATE"))
        .unwrap_or_else(|| panic!("{stdout}"));
    for column in ["COUNT flex-a", "COUNT flex-b", "P50 flex-a", "DRIFT flex-b"] {
        assert!(header.contains(column), "{header}");
    }
    let cal: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("CALIBRATING"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        &cal[..5],
        ["CALIBRATING", "5", "1", "30.0", "ms"],
        "{stdout}"
    );
    assert!(stdout.contains("python3 a"), "{stdout}");

    // Folder names by default; a clash or a miscount of --name is a usage error.
    let ok_names = ok(&run(&["report", da, db]));
    assert!(ok_names.contains("COUNT compat"), "{ok_names}");
    for args in [&["report", "--name", "x", da, db][..], &["report", da, da]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            text(&out.stderr).lines().count(),
            1,
            "{}",
            text(&out.stderr)
        );
    }
}

/// A robot's tracker file: `leaky` grows 0.05 %/h for 4 h; `steady` restarts half-way
/// with memory back down, flat otherwise.
fn trend_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let t0: u64 = 1_722_450_000_000_000_000;
    let mut rows = String::new();
    for i in 0..1440u64 {
        let t = t0 + i * 10_000_000_000;
        let h = (i * 10) as f64 / 3600.0;
        let wobble = [0.0, 0.02, -0.01, 0.015, -0.02][(i % 5) as usize];
        let leaky = 2.0 + 0.05 * h + wobble;
        rows.push_str(&format!(
            "\"{t}\",\"python3 leaky\",\"1722449000.0\",\"{}\",\"0.0\",\"{leaky}\"\r\n",
            i as f64 * 0.5
        ));
        let (since, mem) = if i < 720 {
            ("1722449000.0", 3.0 + wobble + (i as f64 / 720.0))
        } else {
            ("1722457200.0", 3.0 + wobble + ((i - 720) as f64 / 720.0))
        };
        rows.push_str(&format!(
            "\"{t}\",\"python3 steady\",\"{since}\",\"{}\",\"0.0\",\"{mem:.3}\"\r\n",
            (i % 720) as f64 * 0.1
        ));
    }
    std::fs::write(dir.path().join("system_resource_data"), rows).unwrap();
    dir
}

#[test]
fn report_finds_a_leak_and_not_a_restart() {
    let dir = trend_dir();
    let out = run(&["report", "--json", dir.path().to_str().unwrap()]);
    let report: Value = serde_json::from_str(&ok(&out)).unwrap();
    let instances = report["system_resources"]["instances"].as_array().unwrap();
    let of =
        |cmd: &str| -> Vec<&Value> { instances.iter().filter(|i| i["command"] == cmd).collect() };
    let leaky = of("python3 leaky");
    assert_eq!(leaky.len(), 1);
    assert_eq!(leaky[0]["memory"]["verdict"], "growing");
    let slope = leaky[0]["memory"]["slope_percent_per_hour"]
        .as_f64()
        .unwrap();
    assert!((slope - 0.05).abs() < 0.002, "{slope}");
    // 0.5 s of CPU every 10 s: 5 % of one core.
    assert!((leaky[0]["cpu_percent"].as_f64().unwrap() - 5.0).abs() < 1e-9);
    assert_eq!(command(&report, "python3 leaky")["memory_trend"], "growing");
    // Each half of "steady" grows for 2 h, then restarts: two instances; each grows 0.5 %/h
    // here, so both are growing, and neither spans the restart.
    let steady = of("python3 steady");
    assert_eq!(steady.len(), 2);
    for i in &steady {
        assert_eq!(i["samples"], 720);
        let s = i["memory"]["slope_percent_per_hour"].as_f64().unwrap();
        assert!((s - 0.5).abs() < 0.01, "{s}");
    }
    assert_eq!(command(&report, "python3 steady")["processes"], 2);

    let stdout = ok(&run(&["report", dir.path().to_str().unwrap()]));
    let line = stdout
        .lines()
        .find(|l| l.contains("python3 leaky") && l.contains("%/h"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("+0.050 %/h") && line.contains("growing"),
        "{line}"
    );
}

#[test]
fn report_is_deterministic_and_the_page_is_self_contained() {
    let dir = fixed_dir();
    let d = dir.path().to_str().unwrap();
    let trends = trend_dir();
    let t = trends.path().to_str().unwrap();
    let mut pages = Vec::new();
    let mut texts = Vec::new();
    for n in 0..2 {
        let page = dir.path().join(format!("page{n}.html"));
        let out = run(&["report", "--html", page.to_str().unwrap(), d, t]);
        let stdout = ok(&out);
        let wrote = format!("page of plots: {}\n", page.display());
        assert!(stdout.ends_with(&wrote), "{stdout}");
        texts.push(stdout.replace(&wrote, ""));
        pages.push(std::fs::read(&page).unwrap());
    }
    assert_eq!(texts[0], texts[1]);
    assert_eq!(pages[0], pages[1], "the same files give the same page");
    let page = String::from_utf8(pages.remove(0)).unwrap();
    // Everything inline: no external scripts, styles, images or fonts.
    for needle in ["src=", "href=", "@import", "url(", "<link"] {
        assert!(
            !page.contains(needle),
            "page refers to something outside: {needle}"
        );
    }
    // Two charts per state (2 states), two per command (4 commands), the tables.
    assert_eq!(
        page.matches("<figure class=\"plot\"").count(),
        2 * 2 + 2 * 4
    );
    assert!(page.contains("<table class=\"report\">"));
    assert!(page.contains("python3 leaky"));
}

/// The browser the page test uses: `PERF_CHROMIUM`, else `chromium` or `chromium-browser`
/// on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PERF_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| [d.join("chromium"), d.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs headless chromium with `args` on `page` in a fresh profile, killed after a minute.
fn headless(browser: &Path, profile: &Path, args: &[&str], page: &Path) -> Output {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(std::process::Stdio::null());
    perf_testkit::command::output_within(cmd, std::time::Duration::from_secs(60))
}

#[test]
fn report_page_renders_in_a_real_browser() {
    let required = std::env::var_os("PERF_REQUIRE_BROWSER").is_some_and(|v| v == "1");
    let Some(browser) = chromium() else {
        assert!(
            !required,
            "PERF_REQUIRE_BROWSER=1 but no chromium on the PATH"
        );
        println!("skipped: no chromium on the PATH (install Debian's chromium to run this test)");
        return;
    };
    let dir = fixed_dir();
    let trends = trend_dir();
    let page = dir.path().join("report.html");
    ok(&run(&[
        "report",
        "--html",
        page.to_str().unwrap(),
        "--name",
        "flex-a",
        "--name",
        "flex-b",
        dir.path().to_str().unwrap(),
        trends.path().to_str().unwrap(),
    ]));
    let profile = dir.path().join("profile");

    // The DOM after the page's script ran: every chart laid out, the tables there, no
    // script error.
    let out = headless(&browser, &profile, &["--dump-dom"], &page);
    let dom = text(&out.stdout);
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no body in the DOM:\n{dom}\nstderr:\n{}", text(&out.stderr)));
    let charts = std::fs::read_to_string(&page)
        .unwrap()
        .matches("<figure class=\"plot\"")
        .count();
    assert_eq!(charts, 2 * 2 + 2 * 4);
    assert!(body.contains("data-checked=\"yes\""), "{body}");
    assert!(
        body.contains(&format!("data-plots-rendered=\"{charts}\"")),
        "{body}"
    );
    assert!(body.contains("data-script-errors=\"0\""), "{body}");
    assert!(body.contains("data-tables-rendered=\"2\""), "{body}");
    assert!(dom.contains("<svg"), "no SVG in the DOM");
    assert!(dom.contains("python3 leaky") && dom.contains("CALIBRATING"));

    // A screenshot next to the test output, to look at.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    let out = headless(
        &browser,
        &profile,
        &[&arg, "--window-size=1400,2400"],
        &page,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}\nstderr:\n{}",
            shot.display(),
            text(&out.stderr)
        )
    });
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
}

#[test]
fn report_and_export_read_the_rotated_files_too() {
    use perf_table::{archive, Rotation, Row, TableFile, ROBOT_ACTIVITY, SYSTEM_RESOURCE};
    let dir = tempfile::tempdir().unwrap();
    let cap = Rotation {
        max_bytes: 256,
        keep: 100,
    };
    let mut activity = TableFile::open(dir.path(), &ROBOT_ACTIVITY).unwrap();
    let mut resources = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut buf = Vec::new();
    for i in 0..40u64 {
        buf.clear();
        Row::new(&mut buf)
            .str("CALIBRATING")
            .uint(1_722_450_000_000_000_000 + i * 1_000_000_000)
            .uint(1_000 + i)
            .end();
        archive::rotate_if_due(&mut activity, &cap, buf.len() as u64).unwrap();
        activity.append(&buf).unwrap();
        buf.clear();
        Row::new(&mut buf)
            .uint(1_722_450_000_000_000_000 + i * 1_000_000_000)
            .str("python3 -m robot_server")
            .float(1_722_449_000.0)
            .float(i as f64)
            .float(0.5)
            .float(1.25)
            .end();
        archive::rotate_if_due(&mut resources, &cap, buf.len() as u64).unwrap();
        resources.append(&buf).unwrap();
    }
    assert!(
        archive::segments(dir.path(), &ROBOT_ACTIVITY)
            .unwrap()
            .len()
            > 5
    );
    assert!(
        archive::segments(dir.path(), &SYSTEM_RESOURCE)
            .unwrap()
            .len()
            > 5
    );
    let d = dir.path().to_str().unwrap();

    let report: Value = serde_json::from_str(&ok(&run(&["report", "--json", d]))).unwrap();
    let cal = state(&report, "CALIBRATING");
    assert_eq!(cal["count"], 40, "{report}");
    assert_eq!(command(&report, "python3 -m robot_server")["samples"], 40);

    let trace = dir.path().join("trace.json");
    let out = ok(&run(&[
        "export",
        "--chrome-trace",
        trace.to_str().unwrap(),
        d,
    ]));
    assert!(out.contains("wrote 40 events"), "{out}");

    // A context table rotated too (from row 10 on): the rows it covers are on their
    // thread's track, the first ten on the state track.
    let mut context = TableFile::open(dir.path(), &perf_table::ROBOT_ACTIVITY_CONTEXT).unwrap();
    for i in 10..40u64 {
        buf.clear();
        Row::new(&mut buf)
            .str("CALIBRATING")
            .uint(1_722_450_000_000_000_000 + i * 1_000_000_000)
            .uint(1_000 + i)
            .str("robot-server")
            .uint(4242)
            .uint(4243)
            .end();
        archive::rotate_if_due(&mut context, &cap, buf.len() as u64).unwrap();
        context.append(&buf).unwrap();
    }
    assert!(
        archive::segments(dir.path(), &perf_table::ROBOT_ACTIVITY_CONTEXT)
            .unwrap()
            .len()
            > 5
    );
    let out = ok(&run(&[
        "export",
        "--chrome-trace",
        trace.to_str().unwrap(),
        d,
    ]));
    assert!(
        out.contains("(1 services; 10 records without context"),
        "{out}"
    );
    let checked = trace_rules::check(&std::fs::read(&trace).unwrap());
    let on_thread = checked
        .complete
        .iter()
        .filter(|x| (x.pid, x.tid) == (4242, 4243))
        .count();
    assert_eq!(on_thread, 30);
}
