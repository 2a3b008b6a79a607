//! How long a sample of /proc takes, against the Python tracker in the same run.
//!
//! - `read_one_process/{kept,by_path}`: one matched process (command line, match, `stat`,
//!   `statm`, the row) through descriptors kept open and re-read with `pread`, against opening,
//!   reading and closing the paths each time;
//! - `sample_6/{rust,psutil}` and `sample_40/{rust,psutil}`: a whole sample of /proc with 6
//!   and with 40 matching children, rows appended to a file (no sync, as the Python tracker
//!   did), by the sampler and by `psutil_tracker.py` (the Python tracker's sampling path,
//!   run as a server so that its start-up is not timed; needs `pip install psutil`);
//! - `durability/{append,append_fdatasync}`: appending one sample of 40 rows, without and
//!   with the `fdatasync` that made each sample durable before.
//!
//! At the end the means of every timed iteration (warm-up included) are printed per
//! sample and per row, with the ratios, and the CPU time of the `fdatasync`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use nix::time::{clock_gettime, ClockId};
use perf_sampler::cmdline::format_command;
use perf_sampler::fnmatch::Pattern;
use perf_sampler::kept::ProcFiles;
use perf_sampler::proc::{boot_time, read_cmdline_at, SystemInfo, Usage};
use perf_sampler::row::{write_row, Record};
use perf_sampler::sample::Sampler;
use perf_table::{TableFile, SYSTEM_RESOURCE};

/// Children spawned; the first [`FEW`] match the small filter, all match the large one.
const MANY: usize = 40;
const FEW: usize = 6;

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
    format!("srt-bench-{}", std::process::id())
}

/// `sleep` children with robot-like command lines: `PREFIX-few-K python3 -m ...` for the
/// first [`FEW`], `PREFIX-more-K ...` for the rest.
fn spawn_children() -> Children {
    let prefix = prefix();
    let children: Vec<Child> = (0..MANY)
        .map(|k| {
            let group = if k < FEW { "few" } else { "more" };
            let argv0 = format!(
                "{prefix}-{group}-{k} python3 -m robot_server.service --port {}",
                31950 + k
            );
            Command::new("sleep")
                .arg0(OsStr::new(&argv0))
                .arg("3600")
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep")
        })
        .collect();
    // Let every child finish exec so its command line is in place.
    std::thread::sleep(Duration::from_millis(300));
    Children(children)
}

fn filter(rows: usize) -> String {
    if rows == FEW {
        format!("{}-few-*", prefix())
    } else {
        format!("{}-*", prefix())
    }
}

fn sampler(filter: &str) -> Sampler {
    Sampler::new(vec![Pattern::new(filter)], SystemInfo::read().unwrap())
}

/// Total time and iterations of every timed run, by benchmark name.
static TIMES: Mutex<BTreeMap<String, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn record(name: &str, took: Duration, iters: u64) {
    let mut times = TIMES.lock().unwrap();
    let entry = times.entry(name.to_owned()).or_default();
    entry.0 += took;
    entry.1 += iters;
}

fn mean_us(name: &str) -> Option<f64> {
    let times = TIMES.lock().unwrap();
    let &(took, iters) = times.get(name)?;
    (iters > 0).then(|| took.as_secs_f64() * 1e6 / iters as f64)
}

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

/// `psutil_tracker.py serve`: one Python process for all the iterations of a benchmark.
struct Psutil {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Psutil {
    fn start(filter: &str) -> Result<Psutil, String> {
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/psutil_tracker.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("serve")
            .arg(filter)
            .arg(dir.path().join("system_resource_data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut p = Psutil {
            child,
            stdin,
            stdout,
            _dir: dir,
        };
        // Fails here if psutil is missing.
        p.run(1).map(|_| p)
    }

    /// Takes `n` samples; returns their time and the rows of the last one.
    fn run(&mut self, n: u64) -> Result<(Duration, usize), String> {
        writeln!(self.stdin, "{n}").map_err(|e| format!("psutil tracker: {e}"))?;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| format!("psutil tracker: {e}"))?;
        let mut fields = line.split_whitespace().map(str::parse::<u64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(ns)), Some(Ok(rows))) => Ok((Duration::from_nanos(ns), rows as usize)),
            _ => Err("psutil tracker failed (is psutil installed? pip install psutil)".into()),
        }
    }
}

impl Drop for Psutil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_one_process(c: &mut Criterion, pid: i32) {
    let info = SystemInfo::read().unwrap();
    let pattern = Pattern::new(&filter(FEW));
    let (mut raw, mut command, mut path) = (Vec::new(), String::new(), String::new());
    let btime = boot_time(&mut raw).unwrap();
    let mut out = Vec::with_capacity(4096);
    let row = |raw: &[u8], command: &mut String, stat: &[u8], statm: &[u8], out: &mut Vec<u8>| {
        format_command(raw, command);
        assert!(pattern.matches(command));
        let usage = Usage::parse(stat, statm, &info, btime).unwrap();
        out.clear();
        write_row(
            out,
            &Record {
                query_time: 0,
                command,
                usage,
            },
        );
    };
    let mut group = c.benchmark_group("read_one_process");
    let mut files = ProcFiles::open(pid, &mut path).unwrap();
    let (mut stat, mut statm) = (Vec::new(), Vec::new());
    group.bench_function("kept", |b| {
        b.iter(|| {
            files.read_cmdline(&mut raw).unwrap();
            files
                .read_usage(pid, true, &mut path, &mut stat, &mut statm)
                .unwrap();
            row(&raw, &mut command, &stat, &statm, &mut out);
        })
    });
    let paths = ["cmdline", "stat", "statm"].map(|f| format!("/proc/{pid}/{f}"));
    group.bench_function("by_path", |b| {
        b.iter(|| {
            read_cmdline_at(&paths[0], &mut raw).unwrap();
            read_cmdline_at(&paths[1], &mut stat).unwrap();
            read_cmdline_at(&paths[2], &mut statm).unwrap();
            row(&raw, &mut command, &stat, &statm, &mut out);
        })
    });
    group.finish();
}

fn whole_sample(c: &mut Criterion, rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut out = Vec::with_capacity(1 << 16);
    let filter = filter(rows);
    let mut group = c.benchmark_group(format!("sample_{rows}"));
    let mut rust = sampler(&filter);
    let name = format!("sample_{rows}/rust");
    group.bench_function("rust", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                out.clear();
                let stats = rust.sample(&mut out).unwrap();
                assert_eq!(stats.rows, rows);
                table.append(&out).unwrap();
            }
            let took = start.elapsed();
            record(&name, took, iters);
            took
        })
    });
    match Psutil::start(&filter) {
        Ok(mut python) => {
            let name = format!("sample_{rows}/psutil");
            group.sample_size(10);
            group.bench_function("psutil", |b| {
                b.iter_custom(|iters| {
                    let (took, got) = python.run(iters).unwrap();
                    assert_eq!(got, rows);
                    record(&name, took, iters);
                    took
                })
            });
        }
        Err(e) => println!("psutil baseline skipped: {e}"),
    }
    group.finish();
}

fn durability(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut table = TableFile::open(dir.path(), &SYSTEM_RESOURCE).unwrap();
    let mut rows = Vec::new();
    let mut s = sampler(&filter(MANY));
    assert_eq!(s.sample(&mut rows).unwrap().rows, MANY);
    let mut group = c.benchmark_group("durability");
    for (name, sync) in [("append", false), ("append_fdatasync", true)] {
        let cpu_name = format!("durability/{name}/cpu");
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (start, cpu) = (Instant::now(), thread_cpu());
                for _ in 0..iters {
                    table.append(&rows).unwrap();
                    if sync {
                        table.sync().unwrap();
                    }
                }
                record(&cpu_name, thread_cpu() - cpu, iters);
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let children = spawn_children();
    read_one_process(c, i32::try_from(children.0[0].id()).unwrap());
    whole_sample(c, FEW);
    whole_sample(c, MANY);
    durability(c);
    drop(children);
}

criterion_group!(sample_benches, benches);

fn main() {
    sample_benches();
    Criterion::default().configure_from_args().final_summary();

    println!(
        "\nsame-run means over {} processes in /proc (every timed iteration):",
        procfs::process::all_processes().map_or(0, |p| p.count())
    );
    for rows in [FEW, MANY] {
        let rust = mean_us(&format!("sample_{rows}/rust"));
        let python = mean_us(&format!("sample_{rows}/psutil"));
        if let Some(rust) = rust {
            print!(
                "  {rows:2} matched: rust {rust:8.1} µs per sample, {:6.2} µs per row",
                rust / rows as f64
            );
            match python {
                Some(py) => println!(
                    "; psutil {py:8.1} µs per sample, {:6.1} µs per row; ratio {:5.1}x",
                    py / rows as f64,
                    py / rust
                ),
                None => println!("; psutil not measured"),
            }
        }
    }
    if let (Some(plain), Some(synced)) = (
        mean_us("durability/append/cpu"),
        mean_us("durability/append_fdatasync/cpu"),
    ) {
        println!(
            "  fdatasync of one {MANY}-row sample: {:.1} µs of CPU ({:.2} µs per row) on top of \
             {plain:.1} µs for the append",
            synced - plain,
            (synced - plain) / MANY as f64
        );
    }
}
