//! Sampler under process churn: short-lived processes (with command lines holding commas,
//! quotes, CR/LF, tabs, non-ASCII and non-UTF-8 bytes), processes that exit at once, and
//! zombies left unreaped for a while, appear and vanish at a high rate while
//! `system-resource-tracker` samples every second and the sampler library samples in a
//! tight loop in-process. No crash; every row is well-formed; the weird command lines come
//! back exactly.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perf_sampler::fnmatch::Pattern;
use perf_sampler::proc::SystemInfo;
use perf_sampler::sample::Sampler;
use perf_testkit::{Daemon, Rng};
use perf_tests::stress::{scaled, Summary};

/// argv[0] of churned processes; the pattern the samplers look for is `stressmark*`.
const MARKS: &[&[u8]] = &[
    b"stressmark-plain",
    b"stressmark-a,b",
    b"stressmark-\"quoted\"",
    b"stressmark-line\nbreak",
    b"stressmark-crlf\r\nx",
    b"stressmark-tab\tx",
    "stressmark-été".as_bytes(),
    b"stressmark-bad-\xff\xfe",
    b"stressmark-=cmd()",
];

/// The command line the samplers must report for `sleep 0.300` run as `stressmark-"quoted"`.
const WEIRD: &str = "stressmark-\"quoted\" 0.300";

/// Splits CSV bytes as the tracker writes them (every field quoted, `""` inside, rows
/// ending `\r\n`) into rows of fields; `Err` names the first malformed place.
fn parse_csv(bytes: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, String> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let mut row = Vec::new();
        loop {
            if bytes.get(i) != Some(&b'"') {
                return Err(format!("byte {i}: field does not start with a quote"));
            }
            i += 1;
            let mut field = Vec::new();
            loop {
                match bytes.get(i) {
                    None => return Err(format!("byte {i}: unterminated field")),
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                        field.push(b'"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            row.push(field);
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {
                    i += 2;
                    break;
                }
                other => return Err(format!("byte {i}: {other:?} after a field")),
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Checks one `system_resource_data` row; returns its command.
fn check_row(row: &[Vec<u8>]) -> Result<String, String> {
    if row.len() != 6 {
        return Err(format!("{} fields", row.len()));
    }
    let text = |i: usize| String::from_utf8_lossy(&row[i]).into_owned();
    text(0)
        .parse::<u64>()
        .map_err(|e| format!("query_time {:?}: {e}", text(0)))?;
    if row[1].is_empty() {
        return Err("empty command".into());
    }
    for i in 2..6 {
        let v: f64 = text(i)
            .parse()
            .map_err(|e| format!("field {i} {:?}: {e}", text(i)))?;
        if !v.is_finite() || v < 0.0 {
            return Err(format!("field {i} = {v}"));
        }
    }
    let mem: f64 = text(5).parse().unwrap_or(0.0);
    if mem > 100.0 {
        return Err(format!("memory_percent {mem}"));
    }
    Ok(text(1))
}

#[test]
fn stress_sampler_survives_process_churn() {
    let mut rng = Rng::from_env("stress_sampler");
    let mut summary = Summary::new("stress_sampler", rng.seed());
    let root = tempfile::tempdir().unwrap();
    let storage = root.path().join("storage");
    let mut cmd = Command::new(perf_tests::bins::system_resource_tracker());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy()
            .starts_with("OT_SYSTEM_RESOURCE_TRACKER")
        {
            cmd.env_remove(k);
        }
    }
    cmd.args(["--enabled", "true", "--process-filters", "stressmark*"])
        .args(["--refresh-interval", "1", "--logging-level", "debug"])
        .arg("--storage-dir")
        .arg(&storage)
        .stdin(Stdio::null());
    let mut daemon = Daemon::spawn(cmd);

    let secs = scaled(6);
    let stop = Arc::new(AtomicBool::new(false));
    let spawned = Arc::new(AtomicU64::new(0));
    let churners: Vec<_> = (0..2)
        .map(|_| {
            let (stop, spawned) = (Arc::clone(&stop), Arc::clone(&spawned));
            let mut rng = rng.fork();
            std::thread::spawn(move || {
                let mut zombies: Vec<Child> = Vec::new();
                let mut sleepers: Vec<Child> = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mark = OsStr::from_bytes(MARKS[rng.below(MARKS.len() as u64) as usize]);
                    let (prog, arg) = if rng.chance(1, 3) {
                        ("true", String::new())
                    } else {
                        ("sleep", format!("0.{:03}", rng.range(1, 300)))
                    };
                    let mut c = Command::new(prog);
                    c.arg0(mark).stdout(Stdio::null()).stderr(Stdio::null());
                    if !arg.is_empty() {
                        c.arg(&arg);
                    }
                    // The one whose command line is checked exactly lives long enough.
                    if rng.chance(1, 20) {
                        c = Command::new("sleep");
                        c.arg0("stressmark-\"quoted\"").arg("0.300");
                    }
                    let Ok(child) = c.spawn() else { continue };
                    spawned.fetch_add(1, Ordering::Relaxed);
                    // Some are left unreaped for a while: zombies in /proc.
                    if rng.chance(1, 4) {
                        zombies.push(child);
                    } else {
                        sleepers.push(child);
                    }
                    sleepers.retain_mut(|c| c.try_wait().ok().flatten().is_none());
                    if zombies.len() > 30 {
                        for mut z in zombies.drain(..) {
                            let _ = z.wait();
                        }
                    }
                    if sleepers.len() > 60 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                for mut c in zombies.into_iter().chain(sleepers) {
                    let _ = c.wait();
                }
            })
        })
        .collect();

    // The library, in a tight loop: many more samples, so many more races with exits.
    let filters = vec![Pattern::new("stressmark*")];
    let mut sampler = Sampler::new(filters, SystemInfo::read().unwrap());
    let mut inproc = Vec::new();
    let (mut samples, mut skipped) = (0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        let stats = sampler.sample(&mut inproc).expect("sample /proc");
        samples += 1;
        skipped += stats.skipped as u64;
        std::thread::sleep(Duration::from_millis(rng.range(0, 5)));
    }
    stop.store(true, Ordering::Relaxed);
    for c in churners {
        c.join().expect("churner");
    }
    let alive = daemon.exited().is_none();
    let (status, log) = daemon.terminate_within(Duration::from_secs(30));
    let file = std::fs::read(storage.join("system_resource_data")).unwrap_or_default();

    let daemon_rows = parse_csv(&file).map_err(|e| format!("daemon CSV: {e}"));
    let inproc_rows = parse_csv(&inproc).map_err(|e| format!("in-process CSV: {e}"));
    summary.trials = samples;
    summary.written = daemon_rows.as_ref().map_or(0, |r| r.len() as u64)
        + inproc_rows.as_ref().map_or(0, |r| r.len() as u64);
    summary.note = format!(
        "{} processes spawned in {secs} s, {samples} in-process samples, {skipped} vanished/zombie skips",
        spawned.load(Ordering::Relaxed)
    );
    summary.report();

    assert!(
        alive,
        "the tracker died during the churn:\n{}",
        log.join("\n")
    );
    assert!(
        status.success(),
        "tracker exit {status:?}:\n{}",
        log.join("\n")
    );
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "{}",
        log.join("\n")
    );
    let daemon_rows = daemon_rows.unwrap();
    let inproc_rows = inproc_rows.unwrap();
    let mut commands = Vec::new();
    for (who, rows) in [("daemon", &daemon_rows), ("in-process", &inproc_rows)] {
        for row in rows.iter() {
            match check_row(row) {
                Ok(c) => commands.push(c),
                Err(e) => panic!("{who}: bad row {row:?}: {e}"),
            }
        }
    }
    assert!(
        !daemon_rows.is_empty(),
        "the tracker sampled no churned process"
    );
    assert!(
        commands.iter().all(|c| c.starts_with("stressmark")),
        "a row for a process the filter does not match"
    );
    assert!(
        commands.iter().any(|c| c == WEIRD),
        "{WEIRD:?} never came back exactly"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.contains(",b ") || c.ends_with(",b")),
        "the comma command never came back"
    );
}
