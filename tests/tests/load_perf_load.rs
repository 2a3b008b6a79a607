//! `perf-load` end to end: run it, open its ring, check every id.

use std::path::Path;
use std::process::{Command, Output};

use perf_ring::{ConsumerRing, Record};
use perf_tests::load::{decode, verify_rows, Id};

fn perf_load(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perf-load"))
        .arg("--shm-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

struct Report {
    ring: std::path::PathBuf,
    committed: u64,
    dropped: u64,
    run_id: u32,
}

fn report(out: &Output) -> Report {
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    Report {
        ring: v["ring"].as_str().unwrap().into(),
        committed: v["committed"].as_u64().unwrap(),
        dropped: v["dropped"].as_u64().unwrap(),
        run_id: u32::try_from(v["run_id"].as_u64().unwrap()).unwrap(),
    }
}

fn read_all(path: &Path) -> (Vec<Record>, Vec<String>) {
    let mut consumer = ConsumerRing::open(path).unwrap();
    let mut out = Vec::new();
    while consumer.read_batch(&mut out, 1 << 16).unwrap() > 0 {}
    (out, consumer.info().states.clone())
}

/// Rows as the drainer would write them.
fn rows(records: &[Record], states: &[String]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "\"{}\",\"{}\",\"{}\"\r\n",
                states[r.state as usize], r.start_ns, r.duration_ns
            )
        })
        .collect()
}

#[test]
fn every_committed_id_is_in_the_ring_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = perf_load(
        dir.path(),
        &[
            "--service",
            "load",
            "--threads",
            "4",
            "--records",
            "1000",
            "--state",
            "RUNNING_PROTOCOL",
        ],
    );
    let r = report(&out);
    assert_eq!((r.committed, r.dropped), (4000, 0));
    assert!(r.ring.starts_with(dir.path()));
    let (records, states) = read_all(&r.ring);
    assert_eq!(records.len(), 4000);
    assert!(records
        .iter()
        .all(|rec| states[rec.state as usize] == "RUNNING_PROTOCOL"));
    // Ids: the reported run, every (thread, seq) once, each thread its own tid.
    let mut per_thread = std::collections::HashMap::<u32, (u32, Vec<u32>)>::new();
    for rec in &records {
        let Id { tag, thread, seq } = decode(rec.duration_ns).unwrap();
        assert_eq!(tag, r.run_id);
        let entry = per_thread.entry(thread).or_insert((rec.tid, Vec::new()));
        assert_eq!(entry.0, rec.tid);
        entry.1.push(seq);
    }
    assert_eq!(per_thread.len(), 4);
    for (_, (_, mut seqs)) in per_thread {
        seqs.sort_unstable();
        assert_eq!(seqs, (0..1000).collect::<Vec<_>>());
    }
    let rows = rows(&records, &states);
    verify_rows(rows.iter().map(String::as_str), &[(r.run_id, r.committed)]).unwrap();
}

#[test]
fn full_ring_reports_drops_and_commits_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = perf_load(
        dir.path(),
        &[
            "--service",
            "load",
            "--threads",
            "2",
            "--records",
            "100",
            "--capacity",
            "64",
        ],
    );
    let r = report(&out);
    assert_eq!(r.committed, 64);
    assert_eq!(r.dropped, 136);
    let (records, states) = read_all(&r.ring);
    assert_eq!(records.len(), 64);
    let consumer = ConsumerRing::open(&r.ring).unwrap();
    let c = consumer.counters().unwrap();
    assert_eq!((c.claimed, c.dropped), (64, 136));
    // The process exited: its ring is dead.
    assert!(!consumer.producer_alive());
    let rows = rows(&records, &states);
    verify_rows(rows.iter().map(String::as_str), &[(r.run_id, r.committed)]).unwrap();
    // Claiming one more than was committed is caught.
    assert!(verify_rows(rows.iter().map(String::as_str), &[(r.run_id, 65)]).is_err());
}

#[test]
fn concurrent_runs_have_distinct_ids_and_hold_keeps_the_ring_alive() {
    let dir = tempfile::tempdir().unwrap();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_perf-load"))
                .arg("--shm-dir")
                .arg(dir.path())
                .args(["--service", "many", "--threads", "2", "--records", "500"])
                .args(["--hold-ms", "1500"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // The JSON line comes before the hold: read all of them while the processes live.
    let lines: Vec<serde_json::Value> = children
        .iter_mut()
        .map(|child| {
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            serde_json::from_str(line.trim()).unwrap()
        })
        .collect();
    let rings: Vec<std::path::PathBuf> = lines
        .iter()
        .map(|v| v["ring"].as_str().unwrap().into())
        .collect();
    for ring in &rings {
        assert!(
            ConsumerRing::open(ring).unwrap().producer_alive(),
            "alive during --hold-ms"
        );
    }
    let mut reports = Vec::new();
    let mut all_rows = Vec::new();
    for ((mut child, v), ring) in children.into_iter().zip(&lines).zip(&rings) {
        assert!(child.wait().unwrap().success());
        assert!(!ConsumerRing::open(ring).unwrap().producer_alive());
        let (records, states) = read_all(ring);
        all_rows.extend(rows(&records, &states));
        reports.push((
            u32::try_from(v["run_id"].as_u64().unwrap()).unwrap(),
            v["committed"].as_u64().unwrap(),
        ));
    }
    assert_eq!(reports.iter().map(|r| r.1).sum::<u64>(), 3000);
    verify_rows(all_rows.iter().map(String::as_str), &reports).unwrap();
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = perf_load(
        dir.path(),
        &["--service", "x", "--records", "1", "--state", "NOPE"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown state"));
    let out = perf_load(dir.path(), &["--service", "bad name", "--records", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not be set up"));
}
