//! `export` and `report` on storage directories whose two activity tables do not line up
//! as the drainer writes them: a context table longer than the data, a malformed context
//! row, a context table that started later. Warnings, never a failure or a panic.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_perf-metrics");

fn dir_with(data: &[u64], context: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = data
        .iter()
        .map(|i| {
            format!(
                "\"CALIBRATING\",\"{}\",\"1\"\r\n",
                1_722_450_000_000_000_000 + 10 * i
            )
        })
        .collect();
    std::fs::write(dir.path().join("robot_activity_data"), rows).unwrap();
    std::fs::write(
        dir.path().join("robot_activity_context_data"),
        context.concat(),
    )
    .unwrap();
    dir
}

fn ctx(i: u64) -> String {
    format!(
        "\"CALIBRATING\",\"{}\",\"1\",\"robot-server\",\"40\",\"41\"\r\n",
        1_722_450_000_000_000_000 + 10 * i
    )
}

fn run(args: &[&str]) -> (String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_longer_or_malformed_context_table_is_warned_about_and_the_rest_still_paired() {
    // Data 1..=5; context from 3 on, one malformed row (4), and two rows past the data.
    let rows = [
        ctx(3),
        "\"CALIBRATING\",\"x\"\r\n".into(),
        ctx(5),
        ctx(6),
        ctx(7),
    ];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let dir = dir_with(&[1, 2, 3, 4, 5], &rows);
    let d = dir.path().to_str().unwrap();
    let trace = dir.path().join("t.json");
    let (out, err) = run(&["export", "--chrome-trace", trace.to_str().unwrap(), d]);
    assert!(
        out.contains("(1 services; 3 records without context"),
        "{out}"
    );
    assert!(
        err.contains("robot_activity_context_data:2: expected 6 fields"),
        "{err}"
    );
    assert!(
        err.contains("2 of 4 rows of robot_activity_context_data match no row"),
        "{err}"
    );
    let json: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let on_thread = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == 40 && e["tid"] == 41)
        .count();
    assert_eq!(on_thread, 2);

    let (report, _) = run(&["report", "--json", d]);
    let report: Value = serde_json::from_str(&report).unwrap();
    let s = &report["services"];
    assert_eq!(s["records_with_context"], 2);
    assert_eq!(s["records_without_context"], 3);
    assert_eq!(s["context_rows_unmatched"], 2);
    let (text, _) = run(&["report", d]);
    assert!(
        text.contains("2 rows of robot_activity_context_data match no row"),
        "{text}"
    );
    assert!(text.contains("(no context)"), "{text}");
}
