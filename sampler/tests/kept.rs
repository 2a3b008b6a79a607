//! Descriptors kept open between samples never give stale or mixed numbers: an exec and an
//! argv rewrite show in the very next sample, a reused pid is read as the new process, a
//! descriptor shortage falls back to reading by path, and rows report the resident size
//! psutil reports.

mod util;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use perf_sampler::fnmatch::Pattern;
use perf_sampler::kept::ProcFiles;
use perf_sampler::proc::{
    boot_time, parse_statm_resident, read_cmdline_at, Skip, SystemInfo, Usage,
};
use perf_sampler::sample::Sampler;
use util::{exec_done, marker, rows, sh, wait_until, Reaped, BIN};

/// Set in the environment of a copy of this test binary that runs one test in a special
/// setting (a pid namespace, a low descriptor limit).
const INNER: &str = "PERF_SAMPLER_TEST_INNER";

fn sampler(filter: &str) -> Sampler {
    Sampler::new(vec![Pattern::new(filter)], SystemInfo::read().unwrap())
}

fn sample(s: &mut Sampler) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    s.sample(&mut out).unwrap();
    rows(&out)
}

fn commands(rows: &[Vec<String>]) -> Vec<&str> {
    rows.iter().map(|r| r[1].as_str()).collect()
}

fn sleeper(argv0: &str) -> Reaped {
    let child = Reaped(
        Command::new("sleep")
            .arg0(OsStr::new(argv0))
            .arg("30")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sleep"),
    );
    exec_done(child, argv0)
}

/// Runs test `name` of this binary again with [`INNER`] set, wrapped by `wrapper` (a
/// command and its arguments before the test binary). `None` if the wrapper itself could
/// not set things up (printed as SKIPPED).
fn run_inner(name: &str, wrapper: &[&str]) -> Option<std::process::Output> {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the wrapper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.contains("running 1 test") {
        eprintln!(
            "SKIPPED: {wrapper:?} could not run the test: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(out)
}

fn assert_inner_passed(out: &std::process::Output) {
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "inner test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_exec_shows_its_new_command_line_in_the_very_next_sample() {
    let m = marker("exec");
    let mut child = sh("read x; exec sh -c 'read y' \"after-$0\"", &m, &[]);
    let mut s = sampler(&format!("*{m}*"));
    let before = sample(&mut s);
    assert_eq!(
        commands(&before),
        [format!(
            "sh -c read x; exec sh -c 'read y' \"after-$0\" {m}"
        )]
    );
    child.0.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let path = format!("/proc/{}/cmdline", child.pid());
    let done = wait_until(Duration::from_secs(10), || {
        std::fs::read(&path).is_ok_and(|c| c.starts_with(b"sh\0-c\0read y\0"))
    });
    assert!(done, "the child never exec'd");
    let after = sample(&mut s);
    assert_eq!(commands(&after), [format!("sh -c read y after-{m}")]);
    assert_eq!(
        after[0][2], before[0][2],
        "the same process: same start time"
    );
}

#[test]
fn an_argv_rewrite_shows_in_the_very_next_sample() {
    let m = marker("retitle");
    let mut child = Reaped(
        Command::new("perl")
            .args(["-e", "<STDIN>; $0 = \"$ARGV[0]-retitled\"; sleep 30", &m])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn perl"),
    );
    child = exec_done(child, &m);
    let mut s = sampler(&format!("*{m}*"));
    let before = sample(&mut s);
    assert_eq!(
        commands(&before),
        [format!(
            "perl -e <STDIN>; $0 = \"$ARGV[0]-retitled\"; sleep 30 {m}"
        )]
    );
    child.0.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let path = format!("/proc/{}/cmdline", child.pid());
    let done = wait_until(Duration::from_secs(10), || {
        std::fs::read(&path).is_ok_and(|c| c.ends_with(b"-retitled\0"))
    });
    assert!(done, "perl never rewrote its argv");
    assert_eq!(commands(&sample(&mut s)), [format!("{m}-retitled")]);
}

#[test]
fn a_reused_pid_is_read_as_the_new_process() {
    if std::env::var_os(INNER).is_some() {
        return reused_pid_inside_a_pid_namespace();
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root for a pid namespace and ns_last_pid");
        return;
    }
    // A pid namespace of our own, with its own /proc: no other process takes pids there,
    // so ns_last_pid decides the next pid for sure.
    let wrapper = ["unshare", "--pid", "--fork", "--mount-proc"];
    if let Some(out) = run_inner("a_reused_pid_is_read_as_the_new_process", &wrapper) {
        assert_inner_passed(&out);
    }
}

fn reused_pid_inside_a_pid_namespace() {
    let m = marker("reuse");
    let info = SystemInfo::read().unwrap();
    let mut s = sampler(&format!("{m}-*"));
    let first = sleeper(&format!("{m}-first"));
    let pid = first.pid();
    let before = sample(&mut s);
    assert_eq!(commands(&before), [format!("{m}-first 30")]);
    // A descriptor of the first process, kept past its end, as the sampler keeps its own.
    let (mut path, mut buf, mut statm) = (String::new(), Vec::new(), Vec::new());
    let mut kept = ProcFiles::open(pid, &mut path).unwrap();
    kept.read_usage(pid, true, &mut path, &mut buf, &mut statm)
        .unwrap();
    drop(first);
    // Start times have clock-tick resolution: let one pass.
    std::thread::sleep(Duration::from_millis(50));

    let mut second = None;
    for _ in 0..20 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = Reaped(
            Command::new("sleep")
                .arg0(format!("{m}-second"))
                .arg("30")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        if child.pid() == pid {
            second = Some(exec_done(child, &format!("{m}-second")));
            break;
        }
    }
    let _second = second.expect("no new process got the old pid");

    assert!(matches!(kept.read_cmdline(&mut buf), Err(Skip::Gone)));
    assert!(matches!(
        kept.read_usage(pid, true, &mut path, &mut buf, &mut statm),
        Err(Skip::Gone)
    ));
    let after = sample(&mut s);
    assert_eq!(commands(&after), [format!("{m}-second 30")]);
    read_cmdline_at(&format!("/proc/{pid}/stat"), &mut buf).unwrap();
    read_cmdline_at(&format!("/proc/{pid}/statm"), &mut statm).unwrap();
    let btime = boot_time(&mut Vec::new()).unwrap();
    let now = Usage::parse(&buf, &statm, &info, btime).unwrap();
    let since: f64 = after[0][2].parse().unwrap();
    assert_eq!(since, now.running_since, "the new process's start time");
    assert_ne!(after[0][2], before[0][2], "not the old process's");
}

#[test]
fn beyond_the_descriptor_budget_processes_are_read_by_path() {
    let m = marker("budget");
    let _children: Vec<Reaped> = (0..6).map(|k| sleeper(&format!("{m}-{k}"))).collect();
    let filters = vec![Pattern::new(&format!("{m}-*"))];
    let mut s = Sampler::with_fd_budget(filters, SystemInfo::read().unwrap(), 3);
    for _ in 0..3 {
        let mut out = Vec::new();
        let stats = s.sample(&mut out).unwrap();
        assert_eq!(rows(&out).len(), 6, "{stats:?}");
        assert!(stats.by_path > 0, "{stats:?}");
        assert!(s.kept_descriptors() <= 3);
    }
}

#[test]
fn running_out_of_descriptors_falls_back_to_reading_by_path() {
    const CHILDREN: usize = 30;
    if std::env::var_os(INNER).is_none() {
        // A copy of this test under a descriptor limit far below what keeping every
        // process open would need, with a budget that ignores it: opens fail with EMFILE.
        let wrapper = ["sh", "-c", "ulimit -n 48 && exec \"$@\"", "sh"];
        let name = "running_out_of_descriptors_falls_back_to_reading_by_path";
        if let Some(out) = run_inner(name, &wrapper) {
            assert_inner_passed(&out);
        }
        return;
    }
    let m = marker("emfile");
    let _children: Vec<Reaped> = (0..CHILDREN)
        .map(|k| sleeper(&format!("{m}-{k}")))
        .collect();
    let filters = vec![Pattern::new(&format!("{m}-*"))];
    let mut s = Sampler::with_fd_budget(filters, SystemInfo::read().unwrap(), usize::MAX);
    let mut by_path = 0;
    for _ in 0..4 {
        let mut out = Vec::new();
        let stats = s.sample(&mut out).unwrap();
        assert_eq!(rows(&out).len(), CHILDREN, "{stats:?}");
        by_path += stats.by_path;
    }
    assert!(by_path > 0, "the limit was never reached");
    assert!(s.kept_descriptors() < 48);
}

#[test]
fn the_daemon_works_under_a_tiny_descriptor_limit() {
    let m = marker("tiny");
    let _children: Vec<Reaped> = (0..5).map(|k| sleeper(&format!("{m}-{k}"))).collect();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .args(["-c", "ulimit -n 16 && exec \"$@\"", "sh", BIN, "--once"])
        .args(["--enabled", "true", "--process-filters", &format!("{m}-*")])
        .arg("--storage-dir")
        .arg(dir.path())
        .env_remove("OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(dir.path().join("system_resource_data")).unwrap();
    assert_eq!(rows(&data).len(), 5);
}

/// A Python with psutil, if there is one.
fn python_with_psutil() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import psutil"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn rows_report_the_resident_size_and_memory_percent_psutil_reports() {
    let m = marker("rss");
    let children: Vec<Reaped> = (0..4).map(|k| sleeper(&format!("{m}-{k}"))).collect();
    let info = SystemInfo::read().unwrap();
    let mut buf = Vec::new();
    for child in &children {
        // stat's own resident size (field 24) need not be statm's: see the proc module.
        read_cmdline_at(&format!("/proc/{}/stat", child.pid()), &mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf).into_owned();
        let stat_rss: u64 = text
            .rsplit(')')
            .next()
            .unwrap()
            .split(' ')
            .nth(22)
            .unwrap()
            .parse()
            .unwrap();
        read_cmdline_at(&format!("/proc/{}/statm", child.pid()), &mut buf).unwrap();
        let statm_rss = parse_statm_resident(&buf).unwrap();
        if stat_rss != statm_rss {
            eprintln!(
                "pid {}: stat says {stat_rss} resident pages, statm {statm_rss}",
                child.pid()
            );
        }
    }

    let Some(python) = python_with_psutil() else {
        let why = "no python3 with psutil (pip install psutil, or apt python3-psutil)";
        assert!(std::env::var_os("PERF_REQUIRE_PSUTIL").is_none(), "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    };
    let got = sample(&mut sampler(&format!("{m}-*")));
    assert_eq!(got.len(), children.len());
    // psutil's rss and memory_percent (as repr, the tracker's format) for each child.
    let pids: Vec<String> = children.iter().map(|c| c.pid().to_string()).collect();
    let script = "import psutil, sys\n\
        for p in sys.argv[1:]:\n\
        \x20   q = psutil.Process(int(p))\n\
        \x20   print(p, q.memory_info().rss, repr(q.memory_percent()))\n";
    let out = Command::new(python)
        .args(["-c", script])
        .args(&pids)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let pid: i32 = f[0].parse().unwrap();
        let rss: u64 = f[1].parse().unwrap();
        read_cmdline_at(&format!("/proc/{pid}/statm"), &mut buf).unwrap();
        assert_eq!(
            parse_statm_resident(&buf).unwrap() * info.page_size,
            rss,
            "pid {pid}"
        );
        let k = children.iter().position(|c| c.pid() == pid).unwrap();
        let row = got.iter().find(|r| r[1] == format!("{m}-{k} 30")).unwrap();
        assert_eq!(row[5], f[2], "memory_percent of pid {pid}");
    }
}
