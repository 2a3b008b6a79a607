//! What the demo's storage directory looks like through `export` and `report`: called
//! from the demo's end-to-end test, on the directory it wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::{csv_rows, ok, run, text, trace_rules};

/// SERVICE PID THREADS COMMITTED ... lines of the demo's table, as their fields.
fn service_table(stdout: &str) -> Vec<Vec<&str>> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("SERVICE"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// `report` on the demo's directory: per service and state, counts that add up to what
/// each service committed; beside a robot without a context table, side by side.
pub fn the_report_breaks_each_state_down_by_service(
    tmp: &Path,
    out_dir: &Path,
    stdout: &str,
    committed: u64,
) {
    assert!(
        stdout.contains(&format!("per service: {committed} records with context")),
        "{stdout}"
    );
    let d = out_dir.to_str().unwrap();
    let report: Value = serde_json::from_str(&ok(&run(&["report", "--json", d]))).unwrap();
    let services = &report["services"];
    assert_eq!(services["records_with_context"], committed);
    assert_eq!(services["records_without_context"], 0);
    let mut per_service: BTreeMap<String, u64> = BTreeMap::new();
    for s in services["states"].as_array().unwrap() {
        *per_service
            .entry(s["service"].as_str().unwrap().into())
            .or_default() += s["count"].as_u64().unwrap();
        assert!(s["p50_ns"].as_u64().unwrap() <= s["p95_ns"].as_u64().unwrap());
    }
    let said: BTreeMap<String, u64> = service_table(stdout)
        .iter()
        .map(|f| (f[0].to_owned(), f[3].parse().unwrap()))
        .collect();
    assert_eq!(per_service, said);

    // An older robot: the same data without the context table.
    let old = tmp.join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::copy(
        out_dir.join("robot_activity_data"),
        old.join("robot_activity_data"),
    )
    .unwrap();
    let o = old.to_str().unwrap();
    let both = ok(&run(&["report", d, o, "--name", "new", "--name", "old"]));
    assert!(
        both.contains("robot activity per service and state"),
        "{both}"
    );
    assert!(
        both.contains("COUNT new") && both.contains("COUNT old"),
        "{both}"
    );
    let json: Value = serde_json::from_str(&ok(&run(&[
        "report", "--json", d, o, "--name", "new", "--name", "old",
    ])))
    .unwrap();
    assert!(json["robots"]["old"]["services"].is_null());
    assert_eq!(json["robots"]["new"]["services"], *services);
}

/// The demo's storage directory exported: a process per service with the pid the demo
/// printed, a track per thread of the context table, counters for every sampled service,
/// and every record exactly once, on its own thread's track.
pub fn the_demo_exports_as_a_timeline_of_services_and_threads(
    out_dir: &Path,
    stdout: &str,
    rows: &[Vec<String>],
) {
    let trace = out_dir.join("trace.json");
    let out = run(&[
        "export",
        "--chrome-trace",
        trace.to_str().unwrap(),
        out_dir.to_str().unwrap(),
    ]);
    let said = ok(&out);
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let trace = trace_rules::check(&std::fs::read(&trace).unwrap());

    let services: BTreeMap<String, (u64, usize)> = service_table(stdout)
        .iter()
        .map(|f| {
            (
                f[0].to_owned(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            )
        })
        .collect();
    assert_eq!(services.len(), 4, "{stdout}");
    for (name, (pid, workers)) in &services {
        assert_eq!(
            trace.processes.get(pid),
            Some(name),
            "{:?}",
            trace.processes
        );
        // The main thread (start-up, shut-down) and each worker.
        let threads = trace.threads.keys().filter(|(p, _)| p == pid).count();
        assert_eq!(threads, workers + 1, "{name}: {:?}", trace.threads);
    }
    assert!(
        said.contains(&format!(
            "({} services; 0 records without context",
            services.len()
        )),
        "{said}"
    );

    // Every record exactly once, on the track of the thread the context table names.
    let context = csv_rows(&out_dir.join("robot_activity_context_data"));
    assert_eq!(context.len(), rows.len());
    let mut expected: Vec<trace_rules::Complete> = context
        .iter()
        .map(|r| trace_rules::Complete {
            name: r[0].clone(),
            start_ns: r[1].parse().unwrap(),
            duration_ns: r[2].parse().unwrap(),
            pid: r[4].parse().unwrap(),
            tid: r[5].parse().unwrap(),
        })
        .collect();
    let plain: BTreeSet<(String, u64, u64)> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].parse().unwrap()))
        .collect();
    assert!(expected
        .iter()
        .all(|e| plain.contains(&(e.name.clone(), e.start_ns, e.duration_ns))));
    expected.sort();
    let mut got = trace.complete.clone();
    got.sort();
    assert_eq!(got, expected);
    let tracks: BTreeSet<(u64, u64)> = got.iter().map(|x| (x.pid, x.tid)).collect();
    assert_eq!(tracks, trace.threads.keys().copied().collect());

    // Counters: CPU and resident memory for each sampled service, in a process named
    // after its command line.
    // (Under an emulator the command line starts with the interpreter: `contains`.)
    for name in services.keys() {
        let wanted = format!("perf-metrics demo-service --service {name} ");
        let (&pid, _) = trace
            .processes
            .iter()
            .find(|(_, n)| n.contains(&wanted))
            .unwrap_or_else(|| panic!("no counters for {name}: {:?}", trace.processes));
        let tracks = trace_rules::counter_tracks(&trace, pid);
        assert!(tracks.contains("CPU % of one core"), "{tracks:?}");
        assert!(tracks.contains("resident memory % of RAM"), "{tracks:?}");
    }
    assert!(trace.counters.iter().all(|c| c.value >= 0.0));
}
