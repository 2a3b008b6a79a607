//! `perf-drainer status`: what is in the ring directory, as a table or JSON.
//!
//! Read-only: it opens rings as a consumer only to look (it never reads records, moves a
//! cursor or releases), and reads the drainer's checkpoint without changing it, so it is
//! safe to run beside the daemon. Kept in the library so other tools can show the same.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::scan::{self, AllowedUids, SkipReason};

/// One entry of the ring directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RingStatus {
    /// File name inside the ring directory.
    pub file: String,
    /// Whether it is a valid ring owned by an allowed user (what the drainer drains).
    pub valid: bool,
    /// Why not, when it is not, in words (the log line's text).
    pub reason: Option<String>,
    /// The same reason for scripts: `{"kind": "...", ...details}` (see [`SkipReason`]).
    pub skip: Option<SkipReason>,
    /// Service that created the ring.
    pub service: Option<String>,
    /// Pid of the creating process.
    pub pid: Option<u32>,
    /// The ring id, in hex as in the file name.
    pub ring_id: Option<String>,
    /// Whether a producer still holds the ring's liveness lock. Observers (this view, the
    /// drainer) take it only for the instant of the probe, so another probe at the very
    /// same instant can make a dead ring look alive for that one look.
    pub alive: Option<bool>,
    /// Capacity in records.
    pub capacity: Option<u64>,
    /// Records published or claimed but not yet drained durably: what the header claims,
    /// bounded by the capacity (a ring never holds more).
    pub in_ring: Option<u64>,
    /// Why the header's counters cannot be true (more claimed past the released position
    /// than the ring holds, or released past claimed), when they cannot: a hostile or
    /// broken producer. The drainer reads such a ring without trusting the counters.
    pub implausible: Option<String>,
    /// Records producers committed: claimed + dropped.
    pub committed: Option<u64>,
    /// Records dropped because the ring was full.
    pub dropped: Option<u64>,
    /// Rows written to the CSV from this ring, per the drainer's checkpoint.
    pub written: Option<u64>,
}

impl RingStatus {
    fn skip_because(&mut self, why: SkipReason) {
        self.reason = Some(why.to_string());
        self.skip = Some(why);
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Ring directory looked at.
    pub shm_dir: PathBuf,
    /// Storage directory whose checkpoint was read.
    pub storage_dir: PathBuf,
    /// One entry per non-hidden directory entry, sorted by name.
    pub rings: Vec<RingStatus>,
}

/// Looks at every candidate in `shm_dir`, using the checkpoint of `storage_dir` for how far
/// each ring was drained.
pub fn collect(shm_dir: &Path, storage_dir: &Path, allowed: &AllowedUids) -> io::Result<Status> {
    let checkpointed = crate::checkpoint::checkpointed(storage_dir);
    let mut rings = Vec::new();
    for path in scan::candidates(shm_dir)? {
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut s = RingStatus {
            file,
            ..RingStatus::default()
        };
        match scan::open_candidate(&path, allowed) {
            Err(why) => s.skip_because(why.into_reason()),
            Ok(ring) => {
                let info = ring.info();
                s.service = Some(info.service.clone());
                s.pid = Some(info.creator_pid);
                s.ring_id = Some(format!("{:016x}", info.ring_id));
                s.capacity = Some(info.capacity);
                s.alive = Some(ring.producer_alive());
                match ring.counters() {
                    Ok(c) => {
                        s.valid = true;
                        let entry = checkpointed.get(&info.ring_id);
                        let consumed = entry.map_or(c.released, |e| e.pos.max(c.released));
                        // Producers claim only while a slot is free, so the claimed count
                        // is at most one ring ahead of the released position.
                        s.in_ring = Some(c.claimed.saturating_sub(consumed).min(info.capacity));
                        s.implausible = implausible(c.claimed, c.released, info.capacity);
                        s.committed = Some(c.claimed.saturating_add(c.dropped));
                        s.dropped = Some(c.dropped);
                        s.written = entry.map(|e| e.written);
                    }
                    Err(e) => s.skip_because(SkipReason::Invalid {
                        error: e.to_string(),
                    }),
                }
            }
        }
        rings.push(s);
    }
    Ok(Status {
        shm_dir: shm_dir.to_path_buf(),
        storage_dir: storage_dir.to_path_buf(),
        rings,
    })
}

/// Why counters `claimed`/`released` cannot be those of a ring of `capacity` slots.
fn implausible(claimed: u64, released: u64, capacity: u64) -> Option<String> {
    if released > claimed {
        Some(format!("released {released} is past claimed {claimed}"))
    } else if claimed - released > capacity {
        Some(format!(
            "claims {} records waiting, capacity {capacity}",
            claimed - released
        ))
    } else {
        None
    }
}

/// Renders the report as an aligned text table (one line per entry, plus a header).
pub fn render_table(status: &Status) -> String {
    use perf_daemon::text_table::{Align, Table};
    let dash = || "-".to_string();
    let opt = |v: Option<u64>| v.map_or_else(dash, |v| v.to_string());
    let mut table = Table::new([
        ("FILE", Align::Left),
        ("SERVICE", Align::Left),
        ("PID", Align::Right),
        ("ALIVE", Align::Left),
        ("CAPACITY", Align::Right),
        ("IN RING", Align::Right),
        ("COMMITTED", Align::Right),
        ("DROPPED", Align::Right),
        ("VALID", Align::Left),
    ]);
    for r in &status.rings {
        table.row([
            r.file.escape_debug().to_string(),
            r.service.clone().unwrap_or_else(dash),
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.alive
                .map_or_else(dash, |a| if a { "yes" } else { "no" }.to_string()),
            opt(r.capacity),
            opt(r.in_ring),
            opt(r.committed),
            opt(r.dropped),
            match (&r.reason, &r.implausible) {
                (None, None) => "yes".to_string(),
                (None, Some(why)) => format!("yes, header implausible: {why}"),
                (Some(why), _) => format!("no: {}", why.escape_debug()),
            },
        ]);
    }
    let mut out = table.render();
    if status.rings.is_empty() {
        out.push_str(&format!("(no rings in {})\n", status.shm_dir.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_count_past_the_capacity_is_bounded_and_flagged() {
        let shm = tempfile::tempdir().unwrap();
        let storage = tempfile::tempdir().unwrap();
        let ring =
            perf_ring::ProducerRing::create(shm.path(), "liar", &["CALIBRATING"], 8).unwrap();
        // The claimed counter (`tail`, ring FORMAT.md) as a hostile producer sets it.
        std::os::unix::fs::FileExt::write_at(
            &std::fs::OpenOptions::new()
                .write(true)
                .open(ring.path())
                .unwrap(),
            &(1u64 << 40).to_le_bytes(),
            2176,
        )
        .unwrap();
        let report = collect(shm.path(), storage.path(), &AllowedUids::with_defaults(&[])).unwrap();
        let r = &report.rings[0];
        assert_eq!(r.in_ring, Some(8), "{r:?}");
        assert_eq!(
            r.implausible.as_deref(),
            Some("claims 1099511627776 records waiting, capacity 8")
        );
        let table = render_table(&report);
        assert!(
            table.contains("yes, header implausible: claims 1099511627776 records waiting"),
            "{table}"
        );
        assert_eq!(
            implausible(5, 6, 8).unwrap(),
            "released 6 is past claimed 5"
        );
        assert_eq!(implausible(9, 1, 8), None);
    }

    #[test]
    fn the_table_right_aligns_numbers_and_left_aligns_text() {
        let ring = RingStatus {
            file: "robot-server-1-ab".into(),
            valid: true,
            reason: None,
            skip: None,
            service: Some("robot-server".into()),
            pid: Some(7),
            ring_id: Some("ab".into()),
            alive: Some(true),
            capacity: Some(4096),
            in_ring: Some(3),
            implausible: None,
            committed: Some(12),
            dropped: Some(0),
            written: Some(9),
        };
        let bad = RingStatus {
            file: "junk".into(),
            reason: Some("not a ring".into()),
            ..RingStatus::default()
        };
        let status = Status {
            shm_dir: "/s".into(),
            storage_dir: "/d".into(),
            rings: vec![ring, bad],
        };
        assert_eq!(
            render_table(&status),
            "FILE               SERVICE       PID  ALIVE  CAPACITY  IN RING  COMMITTED  DROPPED  VALID\n\
             robot-server-1-ab  robot-server    7  yes        4096        3         12        0  yes\n\
             junk               -               -  -             -        -          -        -  no: not a ring\n"
        );
        let empty = Status {
            rings: vec![],
            ..status
        };
        assert!(render_table(&empty).ends_with("(no rings in /s)\n"));
    }
}
