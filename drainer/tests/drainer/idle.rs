//! Idle means idle: CPU time of `perf-drainer run` over 10 s without traffic, and its
//! resident size. Ignored by default (it takes 10 s); run with
//! `cargo test -p perf-drainer --test drainer idle -- --ignored --nocapture`.

use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::record;

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap_or(100) as f64;
    ticks as f64 / hz
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
#[ignore = "takes 10 s; run for the idle-CPU figure"]
fn idle_cpu_over_10s() {
    let dirs = crate::dirs();
    let ring = ProducerRing::create(&dirs.shm, "svc", &["CALIBRATING"], 1 << 16).unwrap();
    for i in 0..1000 {
        ring.push(&record(0, i, i)).unwrap();
    }
    std::fs::write(dirs.shm.join("junk"), b"not a ring").unwrap();
    // The default interval (1 s), as in production.
    let daemon = dirs.daemon("1");
    perf_testkit::wait_for("first drain", Duration::from_secs(10), || {
        dirs.rows().len() == 1000
    });
    let before = cpu_seconds(daemon.pid());
    std::thread::sleep(Duration::from_secs(10));
    let used = cpu_seconds(daemon.pid()) - before;
    let rss = rss_kib(daemon.pid());
    let (status, _) = daemon.terminate();
    assert_eq!(status.code(), Some(0));
    println!(
        "idle perf-drainer: {:.3} s CPU over 10 s = {:.2}% of one core; VmRSS {rss} KiB",
        used,
        used * 10.0
    );
    assert!(used < 0.1, "idle drainer used {used} s of CPU in 10 s");
}
