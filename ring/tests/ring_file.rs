//! Ring files on disk: creation, validation of hostile files, liveness, truncation under
//! the mapping, and real processes sharing one ring.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use perf_ring::{ConsumerRing, ProducerRing, Record, RingError};

const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING"];

fn record(i: u64) -> Record {
    Record {
        start_ns: i,
        duration_ns: i * 10,
        state: (i % 2) as u32,
        tid: 7,
    }
}

/// The bytes of a freshly created, valid ring of capacity 8.
fn valid_ring_bytes(dir: &Path) -> Vec<u8> {
    let ring = ProducerRing::create(dir, "template", STATES, 8).unwrap();
    let bytes = std::fs::read(ring.path()).unwrap();
    std::fs::remove_file(ring.path()).unwrap();
    bytes
}

fn open_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<ConsumerRing, RingError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    ConsumerRing::open(&path)
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn create_gives_a_private_file_named_after_service_and_pid() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "robot-server", STATES, 16).unwrap();
    let name = ring
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        name.starts_with(&format!("robot-server-{}-", std::process::id())),
        "{name}"
    );
    assert!(name.ends_with(".ring"));
    let meta = std::fs::metadata(ring.path()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), perf_ring::file_size(16));
    // Only the published file is left: no temporary.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let consumer = ConsumerRing::open(ring.path()).unwrap();
    assert_eq!(consumer.info().service, "robot-server");
    assert_eq!(consumer.info().states, STATES);
    assert_eq!(consumer.info().capacity, 16);
    assert_eq!(consumer.info().creator_pid, std::process::id());
    assert_eq!(consumer.info().ring_id, ring.info().ring_id);
}

#[test]
fn create_rejects_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let err = |r: Result<ProducerRing, RingError>| r.unwrap_err();
    assert!(matches!(
        err(ProducerRing::create(dir.path(), "svc", STATES, 3)),
        RingError::BadCapacity { found: 3 }
    ));
    assert!(matches!(
        err(ProducerRing::create(dir.path(), "svc", STATES, 1 << 30)),
        RingError::BadCapacity { .. }
    ));
    assert!(matches!(
        err(ProducerRing::create(dir.path(), "bad/name", STATES, 8)),
        RingError::BadServiceName { .. }
    ));
    assert!(matches!(
        err(ProducerRing::create(dir.path(), "svc", &["lower"], 8)),
        RingError::BadStateName { index: 0, .. }
    ));
    let many: Vec<String> = (0..65).map(|i| format!("S{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert!(matches!(
        err(ProducerRing::create(dir.path(), "svc", &many, 8)),
        RingError::BadStateCount { found: 65 }
    ));
    let missing = dir.path().join("missing");
    assert!(matches!(
        err(ProducerRing::create(&missing, "svc", STATES, 8)),
        RingError::Io { .. }
    ));
    // Nothing half-made is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_kind_of_bad_file_gets_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = valid_ring_bytes(dir.path());
    let d = dir.path();

    assert!(matches!(
        open_bytes(d, "empty", b""),
        Err(RingError::Truncated { .. })
    ));
    assert!(matches!(
        open_bytes(d, "short", &good[..100]),
        Err(RingError::Truncated { .. })
    ));

    let mut b = good.clone();
    put_u64(&mut b, 0, 0x1234);
    assert!(matches!(
        open_bytes(d, "magic", &b),
        Err(RingError::BadMagic { found: 0x1234 })
    ));

    let mut b = good.clone();
    put_u32(&mut b, 8, 2);
    assert!(matches!(
        open_bytes(d, "version", &b),
        Err(RingError::UnsupportedVersion { found: 2 })
    ));

    let mut b = good.clone();
    put_u32(&mut b, 12, 8192);
    assert!(matches!(
        open_bytes(d, "hsize", &b),
        Err(RingError::BadSizes { .. })
    ));
    let mut b = good.clone();
    put_u32(&mut b, 16, 24);
    assert!(matches!(
        open_bytes(d, "ssize", &b),
        Err(RingError::BadSizes { .. })
    ));

    for cap in [0u64, 6, 1 << 40, u64::MAX] {
        let mut b = good.clone();
        put_u64(&mut b, 24, cap);
        assert!(
            matches!(open_bytes(d, "cap", &b), Err(RingError::BadCapacity { found }) if found == cap),
            "capacity {cap}"
        );
    }

    // Capacity 16 claimed, but the file holds 8 slots.
    let mut b = good.clone();
    put_u64(&mut b, 24, 16);
    assert!(matches!(
        open_bytes(d, "size", &b),
        Err(RingError::SizeMismatch { .. })
    ));
    let mut b = good.clone();
    b.extend_from_slice(&[0; 32]);
    assert!(matches!(
        open_bytes(d, "longer", &b),
        Err(RingError::SizeMismatch { .. })
    ));

    let mut b = good.clone();
    put_u32(&mut b, 20, 65);
    assert!(matches!(
        open_bytes(d, "count", &b),
        Err(RingError::BadStateCount { found: 65 })
    ));

    // State names: lower case, comma, quote, newline, non-ASCII, empty, 32 bytes no NUL.
    for bad in [
        &b"calibrating"[..],
        b"A,B",
        b"A\"B",
        b"A\nB",
        "Ä".as_bytes(),
        b"",
        b"1ABC",
    ] {
        let mut b = good.clone();
        b[128 + 32..128 + 64].fill(0);
        b[128 + 32..128 + 32 + bad.len()].copy_from_slice(bad);
        assert!(
            matches!(
                open_bytes(d, "state", &b),
                Err(RingError::BadStateName { index: 1, .. })
            ),
            "{bad:?}"
        );
    }
    let mut b = good.clone();
    b[128..160].fill(b'A');
    let ring = open_bytes(d, "full-width", &b).unwrap();
    assert_eq!(ring.info().states[0], "A".repeat(32));

    let mut b = good.clone();
    b[56..120].fill(0);
    b[56..60].copy_from_slice(b"a,\"b");
    assert!(matches!(
        open_bytes(d, "service", &b),
        Err(RingError::BadServiceName { .. })
    ));

    // Every error message says what was wrong and with which value.
    let mut b = good.clone();
    put_u64(&mut b, 24, 6);
    let msg = open_bytes(d, "msg", &b).unwrap_err().to_string();
    assert!(msg.contains("capacity 6"), "{msg}");
}

#[test]
fn symlinks_fifos_and_directories_are_not_rings() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "svc", STATES, 8).unwrap();
    let link = dir.path().join("link.ring");
    std::os::unix::fs::symlink(ring.path(), &link).unwrap();
    assert!(matches!(
        ConsumerRing::open(&link),
        Err(RingError::NotRegularFile)
    ));

    let fifo = dir.path().join("fifo.ring");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Opened non-blocking: returns at once instead of waiting for a writer.
    assert!(matches!(
        ConsumerRing::open(&fifo),
        Err(RingError::NotRegularFile)
    ));

    let sub = dir.path().join("dir.ring");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(
        ConsumerRing::open(&sub),
        Err(RingError::NotRegularFile)
    ));
}

#[test]
fn a_truncated_mapping_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "svc", STATES, 1024).unwrap();
    for i in 0..100 {
        ring.push(&record(i)).unwrap();
    }
    let mut consumer = ConsumerRing::open(ring.path()).unwrap();
    let mut out = Vec::new();
    assert_eq!(consumer.read_batch(&mut out, 10).unwrap(), 10);

    // A hostile (or broken) writer shrinks the file under our mapping.
    std::fs::OpenOptions::new()
        .write(true)
        .open(ring.path())
        .unwrap()
        .set_len(100)
        .unwrap();
    out.clear();
    assert!(matches!(
        consumer.read_batch(&mut out, 1000),
        Err(RingError::Vanished)
    ));
    assert!(out.is_empty(), "nothing of a vanished batch is handed out");
    assert!(matches!(consumer.counters(), Err(RingError::Vanished)));
    drop(consumer);

    // The guard is per mapping: a fresh ring still works afterwards.
    let other = ProducerRing::create(dir.path(), "svc2", STATES, 8).unwrap();
    other.push(&record(1)).unwrap();
    let mut c2 = ConsumerRing::open(other.path()).unwrap();
    assert_eq!(c2.read_batch(&mut out, 10).unwrap(), 1);
}

#[test]
fn read_batches_in_order_and_release_only_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "svc", STATES, 8).unwrap();
    for i in 0..8 {
        ring.push(&record(i)).unwrap();
    }
    assert!(ring.push(&record(8)).is_err(), "full ring drops");
    assert_eq!(ring.counters().dropped, 1);

    let mut consumer = ConsumerRing::open(ring.path()).unwrap();
    let mut out = Vec::new();
    assert_eq!(consumer.read_batch(&mut out, 5).unwrap(), 5);
    assert_eq!(consumer.read_batch(&mut out, 5).unwrap(), 3);
    assert_eq!(out, (0..8).map(record).collect::<Vec<_>>());
    // Read but not released: still full for producers.
    assert!(ring.push(&record(9)).is_err());

    // A consumer that "crashed" before releasing finds the same records again.
    drop(consumer);
    let mut consumer = ConsumerRing::open(ring.path()).unwrap();
    assert_eq!(consumer.read_pos(), 0);
    consumer.seek(5).unwrap();
    let mut again = Vec::new();
    assert_eq!(consumer.read_batch(&mut again, 100).unwrap(), 3);
    assert_eq!(again, out[5..]);
    assert!(matches!(
        consumer.seek(100),
        Err(RingError::BadPosition { .. })
    ));

    consumer.release(4);
    assert_eq!(consumer.counters().unwrap().released, 4);
    for i in 10..14 {
        ring.push(&record(i)).unwrap();
    }
    assert!(ring.push(&record(14)).is_err());
    out.clear();
    consumer.release(consumer.read_pos());
    assert_eq!(consumer.read_batch(&mut out, 100).unwrap(), 4);
    assert_eq!(out, (10..14).map(record).collect::<Vec<_>>());
    let c = consumer.counters().unwrap();
    assert_eq!((c.claimed, c.released, c.dropped), (12, 8, 3));
}

// ---- multi-process tests: the test binary re-runs itself as the child ----

const CHILD_ENV: &str = "PERF_RING_TEST_CHILD";

/// Child entry point; does nothing unless started by a test below with `CHILD_ENV` set.
/// Modes: `hold:<path>` attaches and waits for stdin to close; `push:<path>:<id>:<n>`
/// attaches, pushes `n` records (start_ns = attempt number, tid = id) and prints
/// `committed dropped`.
#[test]
#[ignore = "helper run as a child process by the multi-process tests"]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = mode.split(':').collect();
    let ring = ProducerRing::attach(Path::new(parts[1])).unwrap();
    match parts[0] {
        "hold" => {
            println!("ready");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        "push" => {
            let id: u32 = parts[2].parse().unwrap();
            let n: u64 = parts[3].parse().unwrap();
            let (mut committed, mut dropped) = (0u64, 0u64);
            for i in 0..n {
                let r = Record {
                    start_ns: i,
                    duration_ns: 1,
                    state: id % 2,
                    tid: id,
                };
                match ring.push(&r) {
                    Ok(_) => committed += 1,
                    Err(_) => dropped += 1,
                }
            }
            println!("{committed} {dropped}");
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn child(mode: String) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--ignored",
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--quiet",
    ])
    .env(CHILD_ENV, mode);
    cmd
}

#[test]
fn liveness_follows_the_lock_not_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = {
        let ring = ProducerRing::create(dir.path(), "svc", STATES, 8).unwrap();
        ring.path().to_path_buf()
        // The creator drops its ring (and lock) here.
    };
    let mut consumer = ConsumerRing::open(&path).unwrap();
    let mut holder = child(format!("hold:{}", path.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
    }
    assert!(consumer.producer_alive());
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(!consumer.producer_alive());
    assert!(!consumer.producer_alive(), "dead stays dead");
    // Asking does not hold the lock: a second observer gets the same answer.
    let observer = ConsumerRing::open(&path).unwrap();
    assert!(!observer.producer_alive());
    assert!(!consumer.producer_alive());
    let mut batch = Vec::new();
    assert_eq!(consumer.read_batch(&mut batch, 10).unwrap(), 0);
    consumer.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn two_processes_write_one_ring_while_it_drains_exactly_once() {
    let per_child: u64 = if cfg!(debug_assertions) {
        200_000
    } else {
        1_000_000
    };
    let dir = tempfile::tempdir().unwrap();
    let ring = ProducerRing::create(dir.path(), "svc", STATES, 1024).unwrap();
    let mut consumer = ConsumerRing::open(ring.path()).unwrap();
    let children: Vec<_> = (1..=2u32)
        .map(|id| {
            child(format!("push:{}:{id}:{per_child}", ring.path().display()))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let mut last: HashMap<u32, u64> = HashMap::new();
    let mut received: HashMap<u32, u64> = HashMap::new();
    let mut batch = Vec::new();
    let mut check = |batch: &mut Vec<Record>| {
        for r in batch.drain(..) {
            // Each child writes increasing attempt numbers from one thread: per producer,
            // order is kept and no record can come twice.
            if let Some(prev) = last.insert(r.tid, r.start_ns) {
                assert!(
                    r.start_ns > prev,
                    "child {} went {prev} -> {}",
                    r.tid,
                    r.start_ns
                );
            }
            *received.entry(r.tid).or_default() += 1;
        }
    };
    let mut children = children;
    let mut outputs = Vec::new();
    while !children.is_empty() {
        consumer.read_batch(&mut batch, 4096).unwrap();
        consumer.release(consumer.read_pos());
        check(&mut batch);
        let mut still = Vec::new();
        for mut c in children {
            if c.try_wait().unwrap().is_some() {
                outputs.push(c.wait_with_output().unwrap());
            } else {
                still.push(c);
            }
        }
        children = still;
    }
    consumer.read_batch(&mut batch, usize::MAX).unwrap();
    consumer.release(consumer.read_pos());
    check(&mut batch);

    let mut total_committed = 0;
    let mut total_dropped = 0;
    for out in outputs {
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text.lines().find(|l| l.split(' ').count() == 2).unwrap();
        let mut it = line.split(' ').map(|n| n.parse::<u64>().unwrap());
        let (committed, dropped) = (it.next().unwrap(), it.next().unwrap());
        assert_eq!(committed + dropped, per_child);
        total_committed += committed;
        total_dropped += dropped;
    }
    let received_total: u64 = received.values().sum();
    assert_eq!(
        received_total, total_committed,
        "every committed record exactly once"
    );
    let c = consumer.counters().unwrap();
    assert_eq!(c.claimed, total_committed);
    assert_eq!(c.dropped, total_dropped);
    assert_eq!(c.released, total_committed);
    // Both processes really wrote concurrently into this ring.
    assert_eq!(received.len(), 2);
    let _ = std::io::stdout().flush();
}

#[test]
fn remove_leaves_a_replaced_file_alone_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let producer = ProducerRing::create(dir.path(), "replaced", &["CALIBRATING"], 8).unwrap();
    let path = producer.path().to_path_buf();
    let consumer = ConsumerRing::open(&path).unwrap();
    // Someone renames another file over the ring's name.
    let other = dir.path().join("other");
    std::fs::write(&other, b"not the ring").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert!(matches!(consumer.remove(), Err(RingError::Replaced)));
    assert_eq!(std::fs::read(&path).unwrap(), b"not the ring");
}
