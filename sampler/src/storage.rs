//! The output table, kept working through storage trouble and other people's tools.
//!
//! Every sample is appended as soon as it is taken, however large it is: rows are only
//! ever kept back when storage refused them. A full or read-only disk must not stop the
//! daemon: refused rows stay pending (up to [`MAX_PENDING_BYTES`], the oldest whole rows
//! dropped first, each drop logged with how many rows, bytes and which sample times) and
//! are written with the next sample. Failures and the recovery are logged as both daemons
//! log them ([`StorageLog`]: at the start, on a new cause, then once a minute; the
//! recovery once, with what was dropped meanwhile), so the journal is not flooded every
//! interval and a lasting problem is not silent either.
//!
//! The file is followed through external rotation (`perf_table::TableFile::follow`): cut
//! by `copytruncate`, rows continue at its end without a hole; renamed away (`mv`, with or
//! without a new file), rows go to the file at the path. With a [`Rotation`] the daemon
//! rotates it itself (numbered `.gz` files beside it, see `perf_table::archive`).
//!
//! Durability: rows are appended every sample but made durable (`fdatasync`) at most every
//! [`SYNC_EVERY`], and when the storage is dropped (shutdown, `--once`). Each sync is a
//! journal commit on the robot's eMMC; once a sample, at a 1 s interval, that is 86,400
//! commits a day for months. A process crash loses nothing (the rows are in the page
//! cache); a power cut or kernel crash loses at most the rows of the last [`SYNC_EVERY`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perf_daemon::storage_log::{self, StorageLog};
use perf_table::{archive, next_row_end, Rotation, TableError, TableFile, SYSTEM_RESOURCE};

/// Rows kept while storage fails; beyond this the oldest pending rows are dropped. At
/// about 150 bytes a row that is hours of samples of a handful of processes, and it keeps
/// the daemon well under its memory budget. Only applied once a write has failed.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// Longest time appended rows may stay without an `fdatasync`.
pub const SYNC_EVERY: Duration = Duration::from_secs(60);

/// Rows dropped while storage failed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Whole rows dropped.
    pub rows: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Earliest and latest `query_time` among them (ns since the epoch).
    pub span: Option<(u64, u64)>,
}

impl Dropped {
    fn add(&mut self, row: &[u8]) {
        self.rows += 1;
        self.bytes += row.len();
        if let Some(t) = query_time(row) {
            self.span = Some(match self.span {
                Some((a, b)) => (a.min(t), b.max(t)),
                None => (t, t),
            });
        }
    }

    fn merge(&mut self, other: Dropped) {
        self.rows += other.rows;
        self.bytes += other.bytes;
        self.span = match (self.span, other.span) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, None) | (None, x) => x,
        };
    }
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows ({} bytes", self.rows, self.bytes)?;
        if let Some((a, b)) = self.span {
            write!(f, ", query_time {a} to {b}")?;
        }
        write!(f, ")")
    }
}

/// The first field of a row, `"<ns>"`.
fn query_time(row: &[u8]) -> Option<u64> {
    let rest = row.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The `system_resource_data` table in a storage directory, opened on demand.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    table: Option<TableFile>,
    rotation: Option<Rotation>,
    pending: Vec<u8>,
    /// Row count of `pending`.
    pending_rows: usize,
    /// When to log a failure, and the recovery.
    log: StorageLog,
    /// Last rotation error reported (rotation failing never keeps rows from the table).
    rotation_failing: Option<String>,
    /// Rows lost to the pending limit since the last successful write.
    dropped: Dropped,
    /// When the table was last made durable; `None` before the first sync.
    synced_at: Option<Instant>,
    /// Whether rows were appended since.
    unsynced: bool,
}

impl Storage {
    /// Storage in `dir`; nothing is opened yet. Unbounded unless [`Storage::with_rotation`].
    pub fn new(dir: &Path) -> Storage {
        Storage {
            dir: dir.to_path_buf(),
            table: None,
            rotation: None,
            pending: Vec::new(),
            pending_rows: 0,
            log: StorageLog::new(),
            rotation_failing: None,
            dropped: Dropped::default(),
            synced_at: None,
            unsynced: false,
        }
    }

    /// Caps the live file: rotated to numbered compressed files, `keep` of them kept.
    pub fn with_rotation(mut self, rotation: Option<Rotation>) -> Storage {
        self.rotation = rotation;
        self
    }

    /// Rows waiting for storage to work again.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Rows dropped to the pending limit since the last successful write.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Appends `rows` (`count` complete rows); makes them durable if the last sync was
    /// [`SYNC_EVERY`] ago or more (or never happened).
    ///
    /// On failure the rows stay pending for the next call (the oldest beyond
    /// [`MAX_PENDING_BYTES`] dropped and logged) and the error is returned (and logged,
    /// once per distinct error).
    pub fn write(&mut self, rows: &[u8], count: usize) -> Result<(), TableError> {
        self.pending.extend_from_slice(rows);
        self.pending_rows += count;
        if self.pending.is_empty() && self.table.is_some() {
            return Ok(());
        }
        // `try_write` empties `pending` once appended: count the rows it is about to write.
        let writing = self.pending_rows;
        match self.try_write() {
            Ok(()) => {
                if let Some(failed_for) = self.log.succeeded() {
                    log::info!(
                        "storage in {} works again after {:.1} s; wrote {} pending rows{}",
                        self.dir.display(),
                        failed_for.as_secs_f64(),
                        writing,
                        if self.dropped.rows > 0 {
                            format!(", {} were dropped meanwhile", self.dropped)
                        } else {
                            String::new()
                        }
                    );
                }
                self.pending.clear();
                self.pending_rows = 0;
                self.dropped = Dropped::default();
                Ok(())
            }
            Err(e) => {
                let cause = storage_log::cause(e.io());
                if self.log.failed(cause) {
                    log::error!(
                        "{cause}: {e}; keeping {} rows and retrying every interval",
                        self.pending_rows
                    );
                }
                let dropped = self.trim_pending();
                if dropped.rows > 0 {
                    let line = format!(
                        "storage failing: dropped the oldest {dropped} to keep the pending rows within {MAX_PENDING_BYTES} bytes; {} rows still pending",
                        self.pending_rows
                    );
                    if self.dropped.rows == 0 {
                        log::warn!("{line}");
                    } else {
                        log::debug!("{line}");
                    }
                    self.dropped.merge(dropped);
                }
                Err(e)
            }
        }
    }

    fn try_write(&mut self) -> Result<(), TableError> {
        let table = match &mut self.table {
            Some(t) => {
                // Someone else's rotation (copytruncate, mv, removal) since the last
                // sample: appends go to the file at the path, at its real end.
                t.follow()?;
                t
            }
            None => {
                let table = TableFile::open(&self.dir, &SYSTEM_RESOURCE)?;
                if let Some(rotation) = self.rotation {
                    // Finish a rotation a previous run was killed in.
                    if let Err(e) = archive::settle(&self.dir, &SYSTEM_RESOURCE, rotation.keep) {
                        log::warn!("{e}; retrying at the next rotation");
                    }
                }
                self.table.insert(table)
            }
        };
        if let Some(rotation) = &self.rotation {
            match archive::rotate_if_due(table, rotation, self.pending.len() as u64) {
                Ok(_) => self.rotation_failing = None,
                Err(e) => {
                    // Rows still go to the live file: a cap is not worth losing data for.
                    let text = e.to_string();
                    if self.rotation_failing.as_deref() != Some(text.as_str()) {
                        log::error!("{text}; appending to the live file beyond its cap");
                        self.rotation_failing = Some(text);
                    }
                    table.follow()?;
                }
            }
        }
        if !self.pending.is_empty() {
            // Followed (or opened, or rotated) just above, with nothing in between.
            table.append_followed(&self.pending)?;
            // Appended: from here on a retry would duplicate rows, so they leave `pending`
            // even if the sync below fails.
            self.pending.clear();
            self.pending_rows = 0;
            self.unsynced = true;
        }
        if self.synced_at.is_some_and(|at| at.elapsed() < SYNC_EVERY) {
            return Ok(());
        }
        self.sync()
    }

    /// Makes every row appended so far durable now.
    pub fn sync(&mut self) -> Result<(), TableError> {
        let Some(table) = &mut self.table else {
            return Ok(());
        };
        table.sync()?;
        self.synced_at = Some(Instant::now());
        self.unsynced = false;
        Ok(())
    }

    /// Drops the oldest whole rows beyond the limit (a row is never split, even at a line
    /// break inside a quoted command line) and returns what was dropped.
    fn trim_pending(&mut self) -> Dropped {
        let mut dropped = Dropped::default();
        let mut cut = 0;
        while self.pending.len() - cut > MAX_PENDING_BYTES && self.pending_rows > 0 {
            match next_row_end(&self.pending[cut..]) {
                Some(end) => {
                    dropped.add(&self.pending[cut..cut + end]);
                    cut += end;
                    self.pending_rows -= 1;
                }
                None => {
                    // Not a complete row (cannot come from the sampler): drop the rest.
                    dropped.rows += self.pending_rows;
                    dropped.bytes += self.pending.len() - cut;
                    cut = self.pending.len();
                    self.pending_rows = 0;
                }
            }
        }
        self.pending.drain(..cut);
        dropped
    }
}

impl Drop for Storage {
    /// The last rows become durable when the daemon stops.
    fn drop(&mut self) {
        if self.unsynced {
            if let Err(e) = self.sync() {
                log::warn!("{e}; the last rows may be lost in a power cut");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_written_while_storage_fails_arrive_later() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the storage directory should be: creating the directory fails.
        let blocked = dir.path().join("data");
        std::fs::write(&blocked, b"").unwrap();
        let mut storage = Storage::new(&blocked);
        assert!(storage.write(b"\"1\"\r\n", 1).is_err());
        assert!(storage.write(b"\"2\"\r\n", 1).is_err());
        assert_eq!(storage.pending_rows(), 2);

        std::fs::remove_file(&blocked).unwrap();
        storage.write(b"\"3\"\r\n", 1).unwrap();
        assert_eq!(storage.pending_rows(), 0);
        assert_eq!(
            std::fs::read(blocked.join("system_resource_data")).unwrap(),
            b"\"1\"\r\n\"2\"\r\n\"3\"\r\n"
        );
        assert!(blocked.join("system_resource_data_headers").exists());
    }

    #[test]
    fn rows_are_synced_at_first_then_at_most_every_sync_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = Storage::new(dir.path());
        storage.write(b"\"1\"\r\n", 1).unwrap();
        let first = storage.synced_at.expect("the first write syncs");
        assert!(!storage.unsynced);
        storage.write(b"\"2\"\r\n", 1).unwrap();
        assert_eq!(
            storage.synced_at,
            Some(first),
            "not again within SYNC_EVERY"
        );
        assert!(storage.unsynced);
        // As if the interval had passed.
        storage.synced_at = Some(first - SYNC_EVERY);
        storage.write(b"\"3\"\r\n", 1).unwrap();
        assert!(storage.synced_at.unwrap() > first);
        assert!(!storage.unsynced);
        storage.write(b"\"4\"\r\n", 1).unwrap();
        assert!(storage.unsynced);
        storage.sync().unwrap();
        assert!(!storage.unsynced);
        assert_eq!(
            std::fs::read(dir.path().join("system_resource_data")).unwrap(),
            b"\"1\"\r\n\"2\"\r\n\"3\"\r\n\"4\"\r\n"
        );
    }

    #[test]
    fn a_removed_data_file_is_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = Storage::new(dir.path());
        storage.write(b"\"1\"\r\n", 1).unwrap();
        std::fs::remove_file(dir.path().join("system_resource_data")).unwrap();
        storage.write(b"\"2\"\r\n", 1).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("system_resource_data")).unwrap(),
            b"\"2\"\r\n"
        );
    }

    #[test]
    fn pending_rows_are_capped_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("data");
        std::fs::write(&blocked, b"").unwrap();
        let mut storage = Storage::new(&blocked);
        let row = [b'x'; 1022]
            .iter()
            .chain(b"\r\n")
            .copied()
            .collect::<Vec<u8>>();
        for _ in 0..1100 {
            let _ = storage.write(&row, 1);
        }
        assert!(storage.pending.len() <= MAX_PENDING_BYTES);
        assert_eq!(storage.pending_rows(), 1024);
        assert_eq!(storage.dropped().rows, 1100 - 1024);
        assert_eq!(storage.dropped().bytes, (1100 - 1024) * 1024);
    }

    fn sample_row(buf: &mut Vec<u8>, t: u64, command: &str) {
        perf_table::Row::new(buf)
            .uint(t)
            .str(command)
            .float(1.5)
            .float(0.25)
            .float(0.5)
            .float(1.0)
            .end();
    }

    /// Parses a whole file as the Python package's readers do, row by row.
    fn parsed(bytes: &[u8]) -> Vec<csv::StringRecord> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes)
            .records()
            .map(|r| r.expect("every row parses"))
            .collect()
    }

    #[test]
    fn a_sample_larger_than_the_pending_cap_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = Storage::new(dir.path());
        // 4,000 processes, and one command line of 1.44 MB: nothing to hold back, since
        // storage works.
        let mut rows = Vec::new();
        for i in 0..4000 {
            sample_row(
                &mut rows,
                i,
                &format!("python3 -m opentrons.worker {i:0>300}"),
            );
        }
        sample_row(&mut rows, 4000, &"x".repeat(1_440_000));
        assert!(rows.len() > 2 * MAX_PENDING_BYTES);
        storage.write(&rows, 4001).unwrap();
        let file = std::fs::read(dir.path().join("system_resource_data")).unwrap();
        assert_eq!(file, rows);
        assert_eq!(parsed(&file).len(), 4001);
    }

    #[test]
    fn the_trim_never_splits_a_row_at_a_line_break_inside_a_field() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("data");
        std::fs::write(&blocked, b"").unwrap();
        let mut storage = Storage::new(&blocked);
        let mut sent = 0;
        for t in 0..3000 {
            let mut rows = Vec::new();
            sample_row(&mut rows, t, &format!("sh -c \"echo a\r\nb\" {:0>400}", t));
            let _ = storage.write(&rows, 1);
            sent += 1;
        }
        let kept = storage.pending_rows();
        let dropped = storage.dropped();
        assert_eq!(kept + dropped.rows, sent);
        assert_eq!(dropped.span, Some((0, dropped.rows as u64 - 1)));
        std::fs::remove_file(&blocked).unwrap();
        storage.write(&[], 0).unwrap();
        let file = std::fs::read(blocked.join("system_resource_data")).unwrap();
        let rows = parsed(&file);
        assert_eq!(rows.len(), kept);
        assert_eq!(&rows[0][0], dropped.rows.to_string());
        assert!(rows.iter().all(|r| r.len() == 6 && r[1].contains("a\r\nb")));
    }

    #[test]
    fn copytruncate_between_samples_leaves_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system_resource_data");
        let mut storage = Storage::new(dir.path());
        let mut first = Vec::new();
        sample_row(&mut first, 1, "python3 a");
        storage.write(&first, 1).unwrap();
        std::fs::copy(&path, dir.path().join("system_resource_data.1")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let mut second = Vec::new();
        sample_row(&mut second, 2, "python3 b");
        storage.write(&second, 1).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), second);
    }

    #[test]
    fn rename_rotation_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("system_resource_data");
        let moved = dir.path().join("system_resource_data.1");
        let mut storage = Storage::new(dir.path());
        let mut first = Vec::new();
        sample_row(&mut first, 1, "python3 a");
        storage.write(&first, 1).unwrap();
        std::fs::rename(&path, &moved).unwrap();
        std::fs::write(&path, b"").unwrap();
        let mut second = Vec::new();
        sample_row(&mut second, 2, "python3 b");
        storage.write(&second, 1).unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), first);
        assert_eq!(std::fs::read(&path).unwrap(), second);
    }

    #[test]
    fn the_daemon_rotates_at_its_cap_and_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let rotation = Rotation {
            max_bytes: 8 << 10,
            keep: 1000,
        };
        let mut storage = Storage::new(dir.path()).with_rotation(Some(rotation));
        let mut all = Vec::new();
        for t in 0..500 {
            let mut rows = Vec::new();
            sample_row(&mut rows, t, "python3 -m opentrons.main");
            storage.write(&rows, 1).unwrap();
            all.extend(rows);
            let live = std::fs::metadata(dir.path().join("system_resource_data")).unwrap();
            assert!(live.len() <= rotation.max_bytes);
        }
        let segs = archive::segments(dir.path(), &SYSTEM_RESOURCE).unwrap();
        assert!(segs.len() >= 3 && segs.iter().all(|s| s.compressed));
        let mut back = Vec::new();
        for seg in segs {
            std::io::Read::read_to_end(&mut seg.open().unwrap(), &mut back).unwrap();
        }
        back.extend(std::fs::read(dir.path().join("system_resource_data")).unwrap());
        assert_eq!(back, all);
    }
}
