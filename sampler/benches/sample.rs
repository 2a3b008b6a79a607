//! How long a sample of /proc takes, and how that compares with the Python tracker.
//!
//! - `read_one_process`: one matched process (command line, match, `stat`, `statm`, format
//!   the row): microseconds per process per sample;
//! - `whole_sample/6_matched`: a whole scan of /proc with six matching children, rows
//!   appended to a file as the Python tracker did (no fsync);
//! - `whole_sample/all_matched`: every process with a command line matched (`*`).
//!
//! After criterion, the same six-process sample is timed in a plain loop and, if `python3`
//! with psutil is available, `psutil_tracker.py` (the Python tracker's sampling path) is
//! timed on the same processes; the ratio is printed.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use perf_sampler::cmdline::format_command;
use perf_sampler::fnmatch::Pattern;
use perf_sampler::proc::{boot_time, read_cmdline_at, read_usage_at, SystemInfo};
use perf_sampler::sample::{write_row, Record, Sampler};
use perf_table::{TableFile, SYSTEM_RESOURCE};

const MATCHED: usize = 6;

struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn prefix() -> String {
    format!("srt-bench-{}-", std::process::id())
}

fn spawn_children() -> Children {
    let prefix = prefix();
    let children: Vec<Child> = (0..MATCHED)
        .map(|k| {
            Command::new("sleep")
                .arg0(OsStr::new(&format!("{prefix}{k}")))
                .arg("3600")
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep")
        })
        .collect();
    // Let every child finish exec so its command line is in place.
    std::thread::sleep(Duration::from_millis(200));
    Children(children)
}

fn filter() -> String {
    format!("{}*", prefix())
}

fn sampler(filter: &str) -> Sampler {
    Sampler::new(vec![Pattern::new(filter)], SystemInfo::read().unwrap())
}

fn benches(c: &mut Criterion) {
    let children = spawn_children();
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut out = Vec::with_capacity(1 << 16);

    let pid = i32::try_from(children.0[0].id()).unwrap();
    let info = SystemInfo::read().unwrap();
    let pattern = Pattern::new(&filter());
    let (mut raw, mut command, mut path) = (Vec::new(), String::new(), String::new());
    let btime = boot_time(&mut raw).unwrap();
    let cmdline_path = format!("/proc/{pid}/cmdline");
    // The scan's per-process work for a match: command line, filter, stat, statm, row.
    c.bench_function("read_one_process", |b| {
        b.iter(|| {
            out.clear();
            read_cmdline_at(&cmdline_path, &mut raw).unwrap();
            format_command(&raw, &mut command);
            assert!(pattern.matches(&command));
            let usage = read_usage_at(pid, &info, btime, &mut path, &mut raw).unwrap();
            write_row(
                &mut out,
                &Record {
                    query_time: 0,
                    command: &command,
                    usage,
                },
            );
        })
    });

    let mut group = c.benchmark_group("whole_sample");
    let mut six = sampler(&filter());
    group.bench_function("6_matched", |b| {
        b.iter(|| {
            out.clear();
            let stats = six.sample(&mut out).unwrap();
            assert_eq!(stats.rows, MATCHED);
            table.append(&out).unwrap();
        })
    });
    let mut all = sampler("*");
    group.bench_function("all_matched", |b| {
        b.iter(|| {
            out.clear();
            all.sample(&mut out).unwrap();
            table.append(&out).unwrap();
        })
    });
    group.finish();
    drop(children);
}

criterion_group!(sample_benches, benches);

/// Mean time per sample with `filter` (expecting `rows` matches), timed in a plain loop.
fn rust_per_sample(filter: &str, rows: usize, iterations: u32) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut s = sampler(filter);
    let mut out = Vec::new();
    for _ in 0..5 {
        out.clear();
        s.sample(&mut out).unwrap();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        out.clear();
        let stats = s.sample(&mut out).unwrap();
        assert_eq!(stats.rows, rows);
        table.append(&out).unwrap();
    }
    start.elapsed() / iterations
}

fn python_per_sample(filter: &str, iterations: u32) -> Result<(f64, usize), String> {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/psutil_tracker.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(filter)
        .arg(iterations.to_string())
        .arg(dir.path().join("system_resource_data"))
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<f64> {
        let rest = text.split(&format!("\"{name}\": ")).nth(1)?;
        rest.split([',', '}']).next()?.trim().parse().ok()
    };
    match (field("per_sample_us"), field("matched")) {
        (Some(us), Some(n)) => Ok((us, n as usize)),
        _ => Err(format!("unexpected output: {text}")),
    }
}

fn main() {
    sample_benches();
    Criterion::default().configure_from_args().final_summary();

    let _children = spawn_children();
    let iterations = 300;
    let none = format!("{}none", prefix());
    let rust_us = |f: &str, rows| rust_per_sample(f, rows, iterations).as_secs_f64() * 1e6;
    let (rust6, rust0) = (rust_us(&filter(), MATCHED), rust_us(&none, 0));
    println!(
        "\nsame-run comparison over {} processes in /proc, {iterations} samples each:",
        procfs::process::all_processes().map_or(0, |p| p.count())
    );
    println!(
        "  rust   {rust6:8.1} µs per sample with {MATCHED} matched, {rust0:8.1} µs with none: \
         {:6.1} µs per matched process",
        (rust6 - rust0) / MATCHED as f64
    );
    match (
        python_per_sample(&filter(), iterations),
        python_per_sample(&none, iterations),
    ) {
        (Ok((py6, matched)), Ok((py0, _))) => {
            println!(
                "  python {py6:8.1} µs per sample with {matched} matched, {py0:8.1} µs with none: \
                 {:6.1} µs per matched process",
                (py6 - py0) / matched.max(1) as f64
            );
            println!(
                "  ratio  {:8.1}x per sample, {:8.1}x per scan, {:6.1}x per matched process",
                py6 / rust6,
                py0 / rust0,
                (py6 - py0) / (rust6 - rust0)
            );
        }
        (Err(e), _) | (_, Err(e)) => println!("  python baseline skipped: {e}"),
    }
}
