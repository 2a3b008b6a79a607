//! The daemon under external rotation (logrotate's `copytruncate`, `mv` + create, `mv`)
//! and under its own size cap: every sample lands exactly once, whole, with no NUL bytes,
//! in the live file, the rotated copies or the numbered `.gz` files.

mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use util::{marker, rows, sh, wait_until, Reaped, BIN};

fn wait_for(secs: u64, cond: impl FnMut() -> bool) -> bool {
    wait_until(std::time::Duration::from_secs(secs), cond)
}

fn spawn(dir: &Path, filter: &str, extra: &[&str]) -> Reaped {
    Reaped(
        Command::new(BIN)
            .args(["--storage-dir", dir.to_str().unwrap()])
            .args(["--enabled", "true", "--refresh-interval", "1"])
            .args(extra)
            .env_clear()
            // In the environment, not on the command line, which would match itself.
            .env("OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn live(dir: &Path) -> PathBuf {
    dir.join("system_resource_data")
}

fn live_rows(dir: &Path) -> usize {
    rows(&std::fs::read(live(dir)).unwrap_or_default()).len()
}

/// Waits for the next sample, so that a rotation happens well between two of them.
fn after_next_sample(dir: &Path) {
    let before = live_rows(dir);
    assert!(
        wait_for(10, || live_rows(dir) > before),
        "no sample within 10 s"
    );
}

/// Every query time in `files`, in order; checks each file is whole rows with no NULs.
fn query_times(files: &[Vec<u8>]) -> Vec<u64> {
    let mut times = Vec::new();
    for bytes in files {
        assert!(!bytes.contains(&0), "NUL bytes in a file");
        assert!(bytes.is_empty() || bytes.ends_with(b"\r\n"));
        times.extend(rows(bytes).iter().map(|r| r[0].parse::<u64>().unwrap()));
    }
    times
}

/// One row per second for our one matched process: consecutive samples, none missing
/// (a gap of two intervals) and none twice.
fn assert_every_sample_once(times: &[u64], at_least: usize) {
    assert!(
        times.len() >= at_least,
        "{} samples: {times:?}",
        times.len()
    );
    for pair in times.windows(2) {
        let gap = pair[1] as f64 / 1e9 - pair[0] as f64 / 1e9;
        assert!((0.5..1.9).contains(&gap), "gap {gap:.2} s in {times:?}");
    }
}

fn stop(mut daemon: Reaped) -> String {
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.pid().to_string()])
        .status();
    let _ = daemon.0.wait();
    let mut stderr = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

#[test]
fn external_rotation_of_every_kind_loses_nothing_and_leaves_no_hole() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("rotation");
    let _child = sh("read x", &m, &[]);
    let daemon = spawn(dir.path(), &format!("*{m}*"), &[]);
    let mut copies = Vec::new();
    after_next_sample(dir.path());
    after_next_sample(dir.path());

    // copytruncate
    let copy = dir.path().join("copytruncated");
    std::fs::copy(live(dir.path()), &copy).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(live(dir.path()))
        .unwrap()
        .set_len(0)
        .unwrap();
    copies.push(copy);
    after_next_sample(dir.path());
    after_next_sample(dir.path());

    // mv, then a new empty file (logrotate's `create`)
    let moved = dir.path().join("moved-created");
    std::fs::rename(live(dir.path()), &moved).unwrap();
    std::fs::write(live(dir.path()), b"").unwrap();
    copies.push(moved);
    after_next_sample(dir.path());
    after_next_sample(dir.path());

    // mv alone
    let moved = dir.path().join("moved");
    std::fs::rename(live(dir.path()), &moved).unwrap();
    copies.push(moved);
    assert!(wait_for(10, || live(dir.path()).exists()));
    after_next_sample(dir.path());

    let stderr = stop(daemon);
    copies.push(live(dir.path()));
    let files: Vec<Vec<u8>> = copies.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(files.iter().all(|f| !f.is_empty()), "a file got no rows");
    assert_every_sample_once(&query_times(&files), 7);
    assert!(stderr.contains("shrank"), "{stderr}");
    assert_eq!(
        stderr.matches("moved away or removed").count(),
        2,
        "{stderr}"
    );
}

#[test]
fn the_size_cap_rotates_into_numbered_gzip_files_and_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let m = marker("cap");
    let _child = sh("read x", &m, &[]);
    // About 150 bytes a row: a rotation every two samples, three rotated files kept.
    let daemon = spawn(
        dir.path(),
        &format!("*{m}*"),
        &["--max-file-size", "320", "--rotated-files", "3"],
    );
    let segments =
        |dir: &Path| perf_table::archive::segments(dir, &perf_table::SYSTEM_RESOURCE).unwrap();
    assert!(
        wait_for(30, || segments(dir.path()).iter().any(|s| s.seq >= 4)),
        "no fourth rotation"
    );
    let stderr = stop(daemon);
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 3, "{segs:?}");
    assert!(segs.iter().all(|s| s.compressed));
    let mut files = Vec::new();
    for seg in &segs {
        let mut bytes = Vec::new();
        seg.open().unwrap().read_to_end(&mut bytes).unwrap();
        files.push(bytes);
    }
    let live_bytes = std::fs::read(live(dir.path())).unwrap();
    assert!(live_bytes.len() <= 320);
    files.push(live_bytes);
    assert_every_sample_once(&query_times(&files), 4);
    assert!(stderr.contains("rotated"), "{stderr}");
    assert!(
        stderr.contains("max_file_size=320 rotated_files=3"),
        "{stderr}"
    );
}
