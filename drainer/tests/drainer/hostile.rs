//! Anything in the ring directory that is not a valid ring owned by an allowed user is
//! skipped with one clear log line, while good rings still drain.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use perf_ring::ProducerRing;

use perf_testkit::{count, record, stderr};

const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING"];

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// A valid ring of capacity 8 as bytes, with a fresh ring id each call.
fn valid_bytes() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(tmp.path(), "template", STATES, 8).unwrap();
    std::fs::read(ring.path()).unwrap()
}

/// Writes every kind of bad entry into `dir`; returns (file name, expected reason text).
fn plant(dir: &Path, good: &Path) -> Vec<(String, &'static str)> {
    let mut planted = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>, why: &'static str| {
        std::fs::write(dir.join(name), bytes).unwrap();
        planted.push((name.to_string(), why));
    };
    put("empty.ring", Vec::new(), "truncated");
    put("short.ring", valid_bytes()[..100].to_vec(), "truncated");
    let mut b = valid_bytes();
    b[0] ^= 0xff;
    put("magic.ring", b, "wrong magic");
    let mut b = valid_bytes();
    put_u32(&mut b, 8, 7);
    put("version.ring", b, "unsupported format version 7");
    let mut b = valid_bytes();
    put_u32(&mut b, 16, 64);
    put("sizes.ring", b, "slot size 64");
    let mut b = valid_bytes();
    put_u64(&mut b, 24, 3);
    put("capacity.ring", b, "capacity 3");
    let mut b = valid_bytes();
    b.extend_from_slice(&[0; 32]);
    put("size.ring", b, "its header says");
    let mut b = valid_bytes();
    put_u32(&mut b, 20, 65);
    put("statecount.ring", b, "state count 65");
    let mut b = valid_bytes();
    b[128] = b'a';
    put("statename.ring", b, "state name #0");
    let mut b = valid_bytes();
    b[56..56 + 9].copy_from_slice(b"bad name!");
    put("service.ring", b, "service name");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let random: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    put("random.ring", random, "not a valid ring");

    std::os::unix::fs::symlink(good, dir.join("link.ring")).unwrap();
    planted.push(("link.ring".into(), "a symlink"));
    std::fs::create_dir(dir.join("dir.ring")).unwrap();
    planted.push(("dir.ring".into(), "a directory"));
    nix::unistd::mkfifo(
        &dir.join("fifo.ring"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    planted.push(("fifo.ring".into(), "a FIFO"));
    let foreign = dir.join("foreign.ring");
    std::fs::write(&foreign, valid_bytes()).unwrap();
    std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).unwrap();
    match nix::unistd::chown(&foreign, Some(nix::unistd::Uid::from_raw(54321)), None) {
        Ok(()) => planted.push(("foreign.ring".into(), "owned by uid 54321")),
        Err(e) => {
            eprintln!("SKIPPED the wrong-owner case: cannot chown ({e}); run as root to cover it");
            std::fs::remove_file(&foreign).unwrap();
        }
    }
    // Hidden temporaries are ignored silently.
    std::fs::write(dir.join(".x-1-00.ring.tmp"), b"half made").unwrap();
    planted
}

#[test]
fn bad_entries_are_skipped_once_each_and_good_rings_drain() {
    let dirs = crate::dirs();
    let good = ProducerRing::create(&dirs.shm, "good", STATES, 64).unwrap();
    for i in 0..10 {
        good.push(&record(1, i, i)).unwrap();
    }
    let planted = plant(&dirs.shm, good.path());

    let out = dirs.once();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(dirs.rows().len(), 10, "{log}");
    let lines: Vec<String> = log.lines().map(str::to_string).collect();
    for (name, why) in &planted {
        let path = dirs.shm.join(name);
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(&format!("skipping {}: ", path.display())))
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {log}");
        assert!(
            mine[0].contains(why),
            "{name}: expected {why:?} in {:?}",
            mine[0]
        );
    }
    assert_eq!(count(&lines, "skipping "), planted.len(), "{log}");
    assert_eq!(count(&lines, ".x-1-00"), 0, "{log}");
    assert!(!log.contains("panicked"), "{log}");

    // The daemon scans every cycle but reports each file once, and keeps draining.
    let daemon = dirs.daemon("0.01");
    daemon.wait_log("draining rings in", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    for i in 10..20 {
        good.push(&record(0, i, i)).unwrap();
    }
    perf_testkit::wait_for("new rows", Duration::from_secs(10), || {
        dirs.rows().len() == 20
    });
    // A file that changes its problem is reported again, once.
    let mut b = valid_bytes();
    put_u32(&mut b, 8, 9);
    // Replaced whole (hidden temporary, then rename), as a writing `fs::write` would race the
    // scan: a scan between its truncate and its write sees a third problem, an empty file.
    let tmp = dirs.shm.join(".magic.ring.new");
    std::fs::write(&tmp, b).unwrap();
    std::fs::rename(&tmp, dirs.shm.join("magic.ring")).unwrap();
    daemon.wait_log("unsupported format version 9", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(100));
    let (status, log) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{log:#?}");
    for (name, _) in &planted {
        let needle = format!("skipping {}: ", dirs.shm.join(name).display());
        let want = if name == "magic.ring" { 2 } else { 1 };
        assert_eq!(count(&log, &needle), want, "{name}: {log:#?}");
    }
}
