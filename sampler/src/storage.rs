//! The output table, kept working through storage trouble.
//!
//! A full or read-only disk must not stop the daemon: rows that could not be written stay
//! pending (up to [`MAX_PENDING_BYTES`]) and are written with the next sample. Failures
//! and the recovery are logged as both daemons log them ([`StorageLog`]: at the start, on
//! a new cause, then once a minute; the recovery once), so the journal is not flooded
//! every interval and a lasting problem is not silent either.
//!
//! Durability: rows are appended every sample but made durable (`fdatasync`) at most every
//! [`SYNC_EVERY`], and when the storage is dropped (shutdown, `--once`). Each sync is a
//! journal commit on the robot's eMMC; once a sample, at a 1 s interval, that is 86,400
//! commits a day for months. A process crash loses nothing (the rows are in the page
//! cache); a power cut or kernel crash loses at most the rows of the last [`SYNC_EVERY`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perf_daemon::storage_log::{self, StorageLog};
use perf_table::{TableError, TableFile, SYSTEM_RESOURCE};

/// Rows kept while storage fails; beyond this the oldest pending rows are dropped. At
/// about 150 bytes a row that is hours of samples of a handful of processes, and it keeps
/// the daemon well under its memory budget.
pub const MAX_PENDING_BYTES: usize = 1 << 20;

/// Longest time appended rows may stay without an `fdatasync`.
pub const SYNC_EVERY: Duration = Duration::from_secs(60);

/// The `system_resource_data` table in a storage directory, opened on demand.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    table: Option<TableFile>,
    pending: Vec<u8>,
    /// Row count of `pending`.
    pending_rows: usize,
    /// When to log a failure, and the recovery.
    log: StorageLog,
    /// Rows lost to the pending limit since the last successful write.
    dropped_rows: usize,
    /// When the table was last made durable; `None` before the first sync.
    synced_at: Option<Instant>,
    /// Whether rows were appended since.
    unsynced: bool,
}

impl Storage {
    /// Storage in `dir`; nothing is opened yet.
    pub fn new(dir: &Path) -> Storage {
        Storage {
            dir: dir.to_path_buf(),
            table: None,
            pending: Vec::new(),
            pending_rows: 0,
            log: StorageLog::new(),
            dropped_rows: 0,
            synced_at: None,
            unsynced: false,
        }
    }

    /// Rows waiting for storage to work again.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Appends `rows` (`count` complete rows); makes them durable if the last sync was
    /// [`SYNC_EVERY`] ago or more (or never happened).
    ///
    /// On failure the rows stay pending for the next call and the error is returned (and
    /// logged as [`StorageLog`] decides).
    pub fn write(&mut self, rows: &[u8], count: usize) -> Result<(), TableError> {
        self.pending.extend_from_slice(rows);
        self.pending_rows += count;
        self.trim_pending();
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
                        if self.dropped_rows > 0 {
                            format!(", {} rows were dropped meanwhile", self.dropped_rows)
                        } else {
                            String::new()
                        }
                    );
                }
                self.pending.clear();
                self.pending_rows = 0;
                self.dropped_rows = 0;
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
                Err(e)
            }
        }
    }

    fn try_write(&mut self) -> Result<(), TableError> {
        // Reopen if the data file was removed (cleanup scripts, a remounted /data), so rows
        // do not vanish into an unlinked inode.
        if let Some(table) = &self.table {
            if std::fs::symlink_metadata(table.path()).is_err() {
                log::warn!("{} disappeared; recreating it", table.path().display());
                self.table = None;
            }
        }
        let table = match &mut self.table {
            Some(t) => t,
            None => self
                .table
                .insert(TableFile::open(&self.dir, &SYSTEM_RESOURCE)?),
        };
        if !self.pending.is_empty() {
            table.append(&self.pending)?;
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

    /// Drops the oldest whole rows beyond the limit.
    fn trim_pending(&mut self) {
        while self.pending.len() > MAX_PENDING_BYTES && self.pending_rows > 0 {
            match self.pending.windows(2).position(|w| w == b"\r\n") {
                Some(end) => {
                    self.pending.drain(..end + 2);
                    self.pending_rows -= 1;
                    self.dropped_rows += 1;
                }
                None => {
                    self.dropped_rows += self.pending_rows;
                    self.pending.clear();
                    self.pending_rows = 0;
                }
            }
        }
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
        assert_eq!(storage.dropped_rows, 1100 - 1024);
    }
}
