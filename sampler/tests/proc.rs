//! Reading real processes: a spawned child appears with sane values, a vanished or zombie
//! child is skipped, odd command lines survive.

mod util;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use perf_sampler::fnmatch::Pattern;
use perf_sampler::proc::{boot_time, read_cmdline, read_usage, Skip, SystemInfo};
use perf_sampler::sample::Sampler;
use procfs::process::Process;
use util::{exec_done, marker, rows, sh, wait_until, Reaped};

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn sampler(filter: &str) -> Sampler {
    Sampler::new(vec![Pattern::new(filter)], SystemInfo::read().unwrap())
}

fn sample(s: &mut Sampler) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    s.sample(&mut out).unwrap();
    rows(&out)
}

#[test]
fn a_busy_child_appears_with_sane_and_growing_values() {
    let m = marker("busy");
    let before = epoch_secs();
    let child = sh("while :; do :; done", &m, &[]);
    let after = epoch_secs();
    let mut s = sampler(&format!("sh -c while*{m}"));

    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let first = sample(&mut s);
    let t1 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    assert_eq!(first.len(), 1, "{first:?}");
    let row = &first[0];
    assert_eq!(row[1], format!("sh -c while :; do :; done {m}"));
    let query_time: u64 = row[0].parse().unwrap();
    assert!((t0..=t1).contains(&query_time), "{t0} {query_time} {t1}");
    // btime has whole seconds (truncated) and ticks are 10 ms: within a second of spawn.
    let since: f64 = row[2].parse().unwrap();
    assert!(
        since >= before - 1.02 && since <= after + 0.02,
        "spawned in [{before}, {after}], running_since {since}"
    );
    let mem: f64 = row[5].parse().unwrap();
    assert!(mem > 0.0 && mem < 5.0, "{mem}");

    let cpu = |r: &Vec<String>| r[3].parse::<f64>().unwrap() + r[4].parse::<f64>().unwrap();
    let c1 = cpu(row);
    // The busy child needs 0.1 s on a CPU; on a loaded machine (other test binaries, a
    // shared CI host) that can take far more than 0.1 s of wall time, so sample until it
    // has been scheduled that long instead of sleeping a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let second = loop {
        std::thread::sleep(Duration::from_millis(250));
        let next = sample(&mut s);
        assert_eq!(next.len(), 1);
        if cpu(&next[0]) >= c1 + 0.1 || std::time::Instant::now() >= deadline {
            break next;
        }
    };
    let c2 = cpu(&second[0]);
    assert!(
        c2 >= c1 + 0.1,
        "a busy loop for 20 s used only {} s of CPU",
        c2 - c1
    );
    assert_eq!(second[0][2], row[2], "start time is stable between samples");
    drop(child);
}

#[test]
fn an_exited_child_is_skipped_not_an_error() {
    let m = marker("gone");
    let mut child = sh("read x", &m, &[]);
    let process = Process::new(child.pid()).unwrap();
    child.0.kill().unwrap();
    child.0.wait().unwrap();

    let mut buf = Vec::new();
    assert!(matches!(read_cmdline(&process, &mut buf), Err(Skip::Gone)));
    let info = SystemInfo::read().unwrap();
    let btime = boot_time(&mut buf).unwrap();
    assert!(matches!(
        read_usage(&process, &info, btime),
        Err(Skip::Gone)
    ));

    // Listed, then gone before it was read: the sample goes on without it.
    let mut s = sampler(&format!("*{m}*"));
    let me = Process::myself().unwrap();
    let mut out = Vec::new();
    let stats = s.sample_processes([Ok(process), Ok(me)], btime, &mut out);
    assert_eq!(stats.listed, 2);
    assert_eq!(stats.skipped, 1);
    assert_eq!(stats.rows, 0);
    assert!(out.is_empty());
}

#[test]
fn a_zombie_is_skipped() {
    let m = marker("zombie");
    let mut child = sh("read x", &m, &[]);
    let process = Process::new(child.pid()).unwrap();
    child.0.kill().unwrap();
    // Not reaped yet: wait for it to become a zombie.
    assert!(wait_until(Duration::from_secs(5), || process
        .stat()
        .is_ok_and(|s| s.state == 'Z')));

    let mut buf = Vec::new();
    let info = SystemInfo::read().unwrap();
    let btime = boot_time(&mut buf).unwrap();
    assert!(matches!(
        read_usage(&process, &info, btime),
        Err(Skip::Zombie)
    ));
    read_cmdline(&process, &mut buf).unwrap();
    assert!(buf.is_empty(), "a zombie has no command line");

    let mut s = sampler("*");
    let mut out = Vec::new();
    let stats = s.sample_processes([Ok(process)], btime, &mut out);
    assert_eq!((stats.rows, stats.matched), (0, 0));
    assert!(sample(&mut sampler(&format!("*{m}*"))).is_empty());
    child.0.wait().unwrap();
}

#[test]
fn a_kept_match_that_turns_zombie_is_left_out_of_the_next_samples() {
    let m = marker("kept-zombie");
    let mut child = sh("read x", &m, &[]);
    let mut s = sampler(&format!("*{m}*"));
    // The second sample finds it idle: its row comes from what the first one read.
    assert_eq!(sample(&mut s).len(), 1);
    assert_eq!(sample(&mut s).len(), 1);
    let process = Process::new(child.pid()).unwrap();
    child.0.kill().unwrap();
    assert!(wait_until(Duration::from_secs(5), || process
        .stat()
        .is_ok_and(|s| s.state == 'Z')));
    assert!(sample(&mut s).is_empty());
    // A zombie does not run: its clock stays put, and it is still left out.
    assert!(sample(&mut s).is_empty());
    child.0.wait().unwrap();
    assert!(sample(&mut s).is_empty());
}

#[test]
fn non_utf8_and_empty_arguments_are_kept() {
    let m = marker("bytes");
    let mut name = b"sl\xffeep-".to_vec();
    name.extend_from_slice(m.as_bytes());
    let _sleeper = exec_done(
        Reaped(
            Command::new("sleep")
                .arg0(OsStr::from_bytes(&name))
                .arg("30")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        ),
        &m,
    );
    let _empty = sh("read x", &m, &["", "end"]);

    let got = sample(&mut sampler(&format!("*{m}*")));
    let mut commands: Vec<&str> = got.iter().map(|r| r[1].as_str()).collect();
    commands.sort();
    let want_sleep = format!("sl\u{fffd}eep-{m} 30");
    let want_sh = format!("sh -c read x {m}  end");
    let mut want = vec![want_sh.as_str(), want_sleep.as_str()];
    want.sort();
    assert_eq!(commands, want);
}

#[test]
fn only_matching_processes_are_read() {
    let m = marker("filter");
    let _a = sh("read x", &format!("{m}-a"), &[]);
    let _b = sh("read x", &format!("{m}-b"), &[]);
    let got = sample(&mut sampler(&format!("sh -c read x {m}-[!b]")));
    assert_eq!(got.len(), 1);
    assert!(got[0][1].ends_with("-a"));
}

#[test]
fn kernel_threads_are_not_read_every_sample() {
    let mut s = sampler("no-such-process-*");
    let mut out = Vec::new();
    let first = s.sample(&mut out).unwrap();
    assert_eq!(
        first.cmdlines_read, first.listed,
        "the first sample reads them all"
    );
    let known = s.known_kernel_threads();
    let second = s.sample(&mut out).unwrap();
    if known == 0 {
        eprintln!("SKIPPED: no kernel thread is visible in /proc here");
        return;
    }
    // Kernel threads were remembered: the next sample reads fewer files.
    assert!(
        second.cmdlines_read < second.listed,
        "{known} known empty, yet {second:?}"
    );
}

#[test]
fn a_matching_process_is_still_found_every_sample() {
    let m = marker("every-sample");
    let _child = sh("sleep 30", &m, &[]);
    let mut s = sampler(&format!("sh -c sleep 30 {m}"));
    for _ in 0..12 {
        let rows = sample(&mut s);
        assert_eq!(rows.len(), 1, "{rows:?}");
    }
}
