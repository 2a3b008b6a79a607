//! Hostile ring files: byte-level builders and a corpus of every kind of bad entry a ring
//! directory can hold, each with what the drainer must do about it.
//!
//! Offsets are those of `ring/FORMAT.md` (version 1).

use std::path::Path;

use perf_ring::{ProducerRing, Record, HEADER_SIZE, SLOT_SIZE};

use crate::load::{encode, Id};
use perf_testkit::Rng;

/// Run tag of the records crafted into hostile rings (never used by `perf-load` in tests).
pub const HOSTILE_TAG: u32 = (1 << 24) + 7;

/// Header offsets.
pub mod off {
    /// `version` (u32).
    pub const VERSION: usize = 8;
    /// `header_size` (u32).
    pub const HEADER_SIZE: usize = 12;
    /// `slot_size` (u32).
    pub const SLOT_SIZE: usize = 16;
    /// `state_count` (u32).
    pub const STATE_COUNT: usize = 20;
    /// `capacity` (u64).
    pub const CAPACITY: usize = 24;
    /// `service` (64 bytes).
    pub const SERVICE: usize = 56;
    /// `states` (64 × 32 bytes).
    pub const STATES: usize = 128;
    /// `tail` (u64).
    pub const TAIL: usize = 2176;
    /// `head` (u64).
    pub const HEAD: usize = 2304;
    /// `dropped` (u64).
    pub const DROPPED: usize = 2432;
}

/// Writes a little-endian u32 at `at`.
pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes a little-endian u64 at `at`.
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Replaces a NUL-padded name field of `len` bytes at `at` with `name` (cut to `len`).
pub fn put_name(b: &mut [u8], at: usize, len: usize, name: &[u8]) {
    let field = &mut b[at..at + len];
    field.fill(0);
    let n = name.len().min(len);
    field[..n].copy_from_slice(&name[..n]);
}

/// The bytes of a fresh valid ring (nothing published), with a new random ring id.
pub fn template(states: &[&str], capacity: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let ring = ProducerRing::create(dir.path(), "hostile", states, capacity).expect("template");
    std::fs::read(ring.path()).expect("read template")
}

/// Publishes `record` at position `pos` in ring bytes of `capacity` slots (seq = pos + 1).
pub fn publish(b: &mut [u8], capacity: u64, pos: u64, record: &Record) {
    let at = HEADER_SIZE as usize + (pos % capacity) as usize * SLOT_SIZE as usize;
    put_u64(b, at, pos.wrapping_add(1));
    put_u64(b, at + 8, record.start_ns);
    put_u64(b, at + 16, record.duration_ns);
    put_u32(b, at + 24, record.state);
    put_u32(b, at + 28, record.tid);
}

/// Sets the three counters.
pub fn counters(b: &mut [u8], tail: u64, head: u64, dropped: u64) {
    put_u64(b, off::TAIL, tail);
    put_u64(b, off::HEAD, head);
    put_u64(b, off::DROPPED, dropped);
}

/// A crafted record carrying id (HOSTILE_TAG, `case`, `seq`).
pub fn crafted(case: u32, seq: u32, state: u32) -> Record {
    Record {
        start_ns: 1_722_450_000_000_000_000 + u64::from(seq),
        duration_ns: encode(Id {
            tag: HOSTILE_TAG,
            thread: case,
            seq,
        })
        .expect("crafted id fits"),
        state,
        tid: 4242,
    }
}

/// What the drainer must do with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Skip it with one `skipping PATH: …` line containing one of these.
    Skipped(Vec<&'static str>),
    /// Drain it (its producer is "dead": nobody holds its lock) and remove it; exactly
    /// these sequence numbers of case `case` reach the CSV.
    Drained {
        /// Thread field of the crafted ids.
        case: u32,
        /// Sequence numbers that must be in the CSV, exactly.
        seqs: Vec<u32>,
    },
    /// Drain and remove it; any subset of case `case`'s crafted records may reach the CSV
    /// (the counters lie in ways whose outcome the format leaves open), none twice.
    DrainedSubset {
        /// Thread field of the crafted ids.
        case: u32,
    },
}

/// One planted entry.
#[derive(Debug, Clone)]
pub struct Planted {
    /// File name in the ring directory.
    pub name: String,
    /// What should happen.
    pub expect: Expect,
}

const STATES: &[&str] = &["ANALYZING_PROTOCOL", "CALIBRATING", "RUNNING_PROTOCOL"];

/// Writes the corpus into `dir`; `good` is a live good ring to point links at. Entries that
/// need root (chown) are left out, with a printed reason, when not permitted.
pub fn plant_corpus(dir: &Path, good: &Path, rng: &mut Rng) -> Vec<Planted> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut put = |out: &mut Vec<Planted>, what: &str, bytes: Vec<u8>, expect: Expect| {
        n += 1;
        let name = format!("bad-{n:02}-{what}.ring");
        std::fs::write(dir.join(&name), bytes).expect("plant");
        out.push(Planted { name, expect });
    };
    let skip = |why: &[&'static str]| Expect::Skipped(why.to_vec());
    let valid = || template(STATES, 8);
    let size = perf_ring::file_size(8) as usize;

    put(&mut out, "empty", Vec::new(), skip(&["truncated"]));
    put(
        &mut out,
        "random",
        rng.bytes(8192),
        skip(&["not a valid ring"]),
    );
    put(
        &mut out,
        "random-header-size",
        rng.bytes(size),
        skip(&["not a valid ring"]),
    );
    let cut = rng.range(1, HEADER_SIZE as u64 - 1) as usize;
    put(
        &mut out,
        "cut-header",
        valid()[..cut].to_vec(),
        skip(&["truncated"]),
    );
    let cut = rng.range(HEADER_SIZE as u64, size as u64 - 1) as usize;
    put(
        &mut out,
        "cut-slots",
        valid()[..cut].to_vec(),
        skip(&["its header says"]),
    );
    let mut b = valid();
    let extra = rng.range(1, 5000) as usize;
    b.extend(rng.bytes(extra));
    put(&mut out, "extended", b, skip(&["its header says"]));
    let mut b = valid();
    b[rng.below(8) as usize] ^= 1 << rng.below(8);
    put(&mut out, "magic", b, skip(&["wrong magic"]));
    for v in [0, 2, u32::MAX] {
        let mut b = valid();
        put_u32(&mut b, off::VERSION, v);
        put(
            &mut out,
            "version",
            b,
            skip(&["unsupported format version"]),
        );
    }
    let mut b = valid();
    put_u32(&mut b, off::HEADER_SIZE, 2048);
    put(&mut out, "header-size", b, skip(&["header size"]));
    let mut b = valid();
    put_u32(&mut b, off::SLOT_SIZE, 0);
    put(&mut out, "slot-size", b, skip(&["slot size"]));
    for c in [0, 3, 1 << 23, 1 << 40, u64::MAX] {
        let mut b = valid();
        put_u64(&mut b, off::CAPACITY, c);
        put(&mut out, "capacity", b, skip(&["capacity"]));
    }
    // Huge but legal capacity: the file is far shorter than it says.
    let mut b = valid();
    put_u64(&mut b, off::CAPACITY, perf_ring::MAX_CAPACITY);
    put(&mut out, "huge-capacity", b, skip(&["its header says"]));
    for c in [65, u32::MAX] {
        let mut b = valid();
        put_u32(&mut b, off::STATE_COUNT, c);
        put(&mut out, "state-count", b, skip(&["state count"]));
    }
    let names: &[&[u8]] = &[
        b"lower",
        b"A,B",
        b"A\"B",
        b"A\nB",
        b"A\r\nB",
        "ÉTAT".as_bytes(),
        b"A B",
        b"=CMD()",
        b"\xff\xfe",
        b"",
    ];
    for name in names {
        let mut b = valid();
        let i = rng.below(STATES.len() as u64) as usize;
        put_name(&mut b, off::STATES + 32 * i, 32, name);
        put(&mut out, "state-name", b, skip(&["state name #"]));
    }
    let services: &[&[u8]] = &[
        b"",
        b".hidden",
        b"a,b",
        b"a\"b",
        b"a\nb",
        "serviçe".as_bytes(),
        b"../etc",
    ];
    for name in services {
        let mut b = valid();
        put_name(&mut b, off::SERVICE, 64, name);
        put(&mut out, "service", b, skip(&["service name"]));
    }
    // A 64-byte service name has no NUL: too long.
    let mut b = valid();
    put_name(&mut b, off::SERVICE, 64, &[b'a'; 64]);
    put(&mut out, "service-64", b, skip(&["service name"]));

    // Valid headers with lying contents: drained (nobody holds their lock), never trusted.
    let mut case = 0;
    let mut craft = |out: &mut Vec<Planted>,
                     what: &str,
                     capacity: u64,
                     make: &mut dyn FnMut(&mut Vec<u8>, u32) -> Expect| {
        let mut b = template(STATES, capacity);
        let expect = make(&mut b, case);
        case += 1;
        put(out, what, b, expect);
    };
    // Records with state indices outside the table, between good ones.
    craft(&mut out, "bad-state-index", 16, &mut |b, case| {
        let mut seqs = Vec::new();
        for pos in 0..12u32 {
            let state = match pos % 3 {
                0 => 3,
                1 => u32::MAX,
                _ => pos % 3,
            };
            publish(b, 16, u64::from(pos), &crafted(case, pos, state));
            if state < 3 {
                seqs.push(pos);
            }
        }
        counters(b, 12, 0, 0);
        Expect::Drained { case, seqs }
    });
    // A tail far beyond the ring: only what is published is read; no endless skipping.
    craft(&mut out, "tail-huge", 8, &mut |b, case| {
        for pos in 0..5u32 {
            publish(b, 8, u64::from(pos), &crafted(case, pos, 1));
        }
        counters(b, u64::MAX, 0, 0);
        Expect::Drained {
            case,
            seqs: (0..5).collect(),
        }
    });
    // Head past tail, dropped at the maximum: nothing below head is read again.
    craft(&mut out, "head-past-tail", 8, &mut |b, case| {
        for pos in 0..6u32 {
            publish(b, 8, u64::from(pos), &crafted(case, pos, 0));
        }
        counters(b, 2, 5, u64::MAX);
        Expect::DrainedSubset { case }
    });
    // Sequence words that lie (random), and a head near u64::MAX.
    craft(&mut out, "seq-garbage", 8, &mut |b, case| {
        for pos in 0..8u32 {
            publish(b, 8, u64::from(pos), &crafted(case, pos, 2));
            let at = HEADER_SIZE as usize + pos as usize * SLOT_SIZE as usize;
            let lie = 0x5eed_0000_0000 + u64::from(pos) * 7919;
            put_u64(b, at, lie);
        }
        counters(b, 8, 0, 0);
        Expect::Drained {
            case,
            seqs: Vec::new(),
        }
    });
    craft(&mut out, "head-near-max", 4, &mut |b, case| {
        counters(b, u64::MAX, u64::MAX - 2, 0);
        Expect::DrainedSubset { case }
    });
    // No states at all, but records.
    craft(&mut out, "no-states", 4, &mut |b, case| {
        put_u32(b, off::STATE_COUNT, 0);
        for pos in 0..4u32 {
            publish(b, 4, u64::from(pos), &crafted(case, pos, 0));
        }
        counters(b, 4, 0, 0);
        Expect::Drained {
            case,
            seqs: Vec::new(),
        }
    });
    // A wrapped ring (positions past the capacity), all published.
    craft(&mut out, "wrapped", 4, &mut |b, case| {
        for pos in 10..14u32 {
            publish(b, 4, u64::from(pos), &crafted(case, pos, 1));
        }
        counters(b, 14, 10, 3);
        Expect::Drained {
            case,
            seqs: (10..14).collect(),
        }
    });

    // Not regular files.
    let link = |out: &mut Vec<Planted>, name: &str, target: &Path| {
        std::os::unix::fs::symlink(target, dir.join(name)).expect("symlink");
        out.push(Planted {
            name: name.into(),
            expect: Expect::Skipped(vec!["a symlink"]),
        });
    };
    link(&mut out, "link-good.ring", good);
    link(&mut out, "link-passwd.ring", Path::new("/etc/passwd"));
    link(&mut out, "link-dangling.ring", &dir.join("nowhere"));
    link(&mut out, "link-loop.ring", &dir.join("link-loop.ring"));
    std::fs::create_dir(dir.join("dir.ring")).expect("mkdir");
    out.push(Planted {
        name: "dir.ring".into(),
        expect: Expect::Skipped(vec!["a directory"]),
    });
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo.ring"))
        .status();
    if fifo.is_ok_and(|s| s.success()) {
        out.push(Planted {
            name: "fifo.ring".into(),
            expect: Expect::Skipped(vec!["a FIFO"]),
        });
    } else {
        eprintln!("SKIPPED the FIFO case: mkfifo failed");
    }
    match std::os::unix::net::UnixListener::bind(dir.join("socket.ring")) {
        Ok(listener) => {
            // The socket file stays after the listener is closed.
            drop(listener);
            out.push(Planted {
                name: "socket.ring".into(),
                expect: Expect::Skipped(vec!["a socket"]),
            });
        }
        Err(e) => eprintln!("SKIPPED the socket case: {e}"),
    }
    // A second name for the live good ring: the same ring id must not be drained twice.
    if std::fs::hard_link(good, dir.join("zz-hardlink.ring")).is_ok() {
        out.push(Planted {
            name: "zz-hardlink.ring".into(),
            expect: Expect::Skipped(vec!["is already being drained"]),
        });
    }
    // A valid ring owned by someone else.
    let foreign = dir.join("foreign.ring");
    std::fs::write(&foreign, valid()).expect("plant foreign");
    match std::os::unix::fs::chown(&foreign, Some(54321), Some(54321)) {
        Ok(()) => out.push(Planted {
            name: "foreign.ring".into(),
            expect: Expect::Skipped(vec!["owned by uid 54321"]),
        }),
        Err(e) => {
            eprintln!("SKIPPED the wrong-owner case: cannot chown ({e}); run as root to cover it");
            let _ = std::fs::remove_file(&foreign);
        }
    }
    out
}
