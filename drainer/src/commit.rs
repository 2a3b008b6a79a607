//! The CSV and the checkpoint as one transaction: rows are appended and synced, then the
//! checkpoint naming the new CSV length and every ring's position replaces the old one
//! atomically. Until that rename the previous checkpoint stands, and the rows after its
//! length are cut away ([`Store::roll_back`], or [`Store::open_table`] on the next start),
//! so the CSV never keeps rows the checkpoint does not cover.
//!
//! The CSV is opened lazily and closed after every cycle ([`Store::close`]): between
//! cycles nothing in the storage directory is open for writing.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use perf_table::{TableFile, ROBOT_ACTIVITY};

use crate::checkpoint::{Checkpoint, CheckpointError, CsvState, RingEntry};
use crate::error::StorageError;
use crate::failpoint::Failpoint;

/// The open CSV and the identity of the file behind it.
#[derive(Debug)]
struct OpenTable {
    file: TableFile,
    dev: u64,
    ino: u64,
}

/// The storage directory's CSV and checkpoint.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    table: Option<OpenTable>,
    /// The checkpoint as last made durable (plus the CSV state found on opening it).
    ckpt: Checkpoint,
    /// The checkpoint must be written even without new rows (a ring was forgotten).
    dirty: bool,
}

impl Store {
    /// Loads the checkpoint of `dir`; the CSV is opened by the first commit.
    pub(crate) fn load(dir: &Path) -> Result<Store, CheckpointError> {
        Ok(Store {
            dir: dir.to_path_buf(),
            table: None,
            ckpt: Checkpoint::load(dir)?,
            dirty: false,
        })
    }

    /// The durable progress of ring `id`, if the checkpoint has it.
    pub(crate) fn saved(&self, id: u64) -> Option<&RingEntry> {
        self.ckpt.rings.get(&id)
    }

    /// Whether the checkpoint must be written even without new rows.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Forgets ring `id` (finished or lost) at the next commit.
    pub(crate) fn forget(&mut self, id: u64) {
        self.ckpt.rings.remove(&id);
        self.dirty = true;
    }

    /// Forgets the entries of rings that are gone (removed by someone else, or by us just
    /// before a crash); a ring in `drained` or whose file still exists (it failed to open)
    /// keeps its entry.
    pub(crate) fn forget_gone(&mut self, drained: &[u64]) {
        let before = self.ckpt.rings.len();
        self.ckpt
            .rings
            .retain(|id, e| drained.contains(id) || Path::new(&e.path).exists());
        if self.ckpt.rings.len() != before {
            self.dirty = true;
        }
    }

    /// Closes the CSV.
    pub(crate) fn close(&mut self) {
        self.table = None;
    }

    /// Opens the CSV if needed (see [`Store::reconcile`]), follows it through someone
    /// else's rotation (see [`Store::follow`]) and makes sure it ends where the checkpoint
    /// says.
    pub(crate) fn open_table(&mut self) -> Result<&mut TableFile, StorageError> {
        let open = match self.table.take() {
            Some(open) => self.follow(open)?,
            None => self.reconcile()?,
        };
        let open = self.table.insert(open);
        if let Some(csv) = self.ckpt.csv {
            if open.file.len() != csv.len {
                open.file.truncate(csv.len)?;
            }
        }
        Ok(&mut open.file)
    }

    /// Opens the CSV and reconciles it with the checkpoint: cuts back rows of an
    /// interrupted commit, notices a file replaced or cut by someone else, and makes the
    /// file's identity and length durable before anything is appended to it.
    fn reconcile(&mut self) -> Result<OpenTable, StorageError> {
        let mut file = TableFile::open(&self.dir, &ROBOT_ACTIVITY)?;
        let meta = std::fs::metadata(file.path()).map_err(|source| StorageError::Stat {
            path: file.path().to_path_buf(),
            source,
        })?;
        let (dev, ino) = (meta.dev(), meta.ino());
        match self.ckpt.csv {
            Some(c) if (c.dev, c.ino) == (dev, ino) => {
                if file.len() > c.len {
                    log::info!(
                        "cutting {} back from {} to {} bytes: rows of a cycle interrupted before its checkpoint",
                        file.path().display(),
                        file.len(),
                        c.len
                    );
                    file.truncate(c.len)?;
                } else if file.len() < c.len {
                    log::warn!(
                        "{} is {} bytes, shorter than the checkpointed {}: it was cut by someone else; appending at its end",
                        file.path().display(),
                        file.len(),
                        c.len
                    );
                }
            }
            Some(_) => log::info!(
                "{} is not the file the checkpoint describes (it was replaced); appending to it as it is",
                file.path().display()
            ),
            None => {}
        }
        let csv = Some(CsvState {
            len: file.len(),
            dev,
            ino,
        });
        if csv != self.ckpt.csv {
            // Which file and how long must be durable before the first append to it:
            // otherwise rows appended by a run killed before its first checkpoint
            // would not be cut back, and would come again.
            let mut next = self.ckpt.clone();
            next.csv = csv;
            next.store(&self.dir)?;
            self.ckpt = next;
        }
        Ok(OpenTable { file, dev, ino })
    }

    /// The CSV stays open for a whole cycle, which can be long under load (or `once` on a
    /// full ring directory). If logrotate cut it (`copytruncate`) or moved it away (`mv`,
    /// `create`) meanwhile, appends go to the file at the path, at its real end
    /// ([`TableFile::follow`]), and the new identity and length are made durable first,
    /// exactly as when the file is opened: a kill after the next append then cuts back to
    /// the new length instead of keeping rows the rings will give again.
    fn follow(&mut self, mut open: OpenTable) -> Result<OpenTable, StorageError> {
        if open.file.follow()?.is_some() {
            (open.dev, open.ino) = open.file.identity();
            let mut next = self.ckpt.clone();
            next.csv = Some(CsvState {
                len: open.file.len(),
                dev: open.dev,
                ino: open.ino,
            });
            next.store(&self.dir)?;
            self.ckpt = next;
        }
        Ok(open)
    }

    /// Makes a round durable: `rows` appended and synced, then the checkpoint with
    /// `entries` (every ring drained, keyed by id).
    pub(crate) fn commit(
        &mut self,
        rows: &[u8],
        entries: impl Iterator<Item = (u64, RingEntry)>,
        failpoint: &mut Failpoint,
    ) -> Result<(), StorageError> {
        let file = self.open_table()?;
        if !rows.is_empty() {
            file.append(rows)?;
            failpoint.hit("after-append");
            file.sync()?;
            failpoint.hit("after-sync");
        }
        let len = file.len();
        let mut next = self.ckpt.clone();
        next.csv = self.table.as_ref().map(|open| CsvState {
            len,
            dev: open.dev,
            ino: open.ino,
        });
        next.rings.extend(entries);
        next.store(&self.dir)?;
        failpoint.hit("after-checkpoint");
        self.ckpt = next;
        self.dirty = false;
        Ok(())
    }

    /// After a failed commit: the CSV back to the checkpointed length (if that fails too,
    /// [`Store::open_table`] cuts it at the start of the next commit).
    pub(crate) fn roll_back(&mut self) {
        if let (Some(open), Some(csv)) = (&mut self.table, self.ckpt.csv) {
            if open.file.len() != csv.len {
                let _ = open.file.truncate(csv.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(ROBOT_ACTIVITY.name)).unwrap()
    }

    fn copytruncate(dir: &Path, to: &str) {
        let live = dir.join(ROBOT_ACTIVITY.name);
        std::fs::copy(&live, dir.join(to)).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&live)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    fn commit(store: &mut Store, rows: &[u8]) {
        store
            .commit(rows, std::iter::empty(), &mut Failpoint::default())
            .unwrap();
    }

    const A: &[u8] = b"\"A\",\"1\",\"1\"\r\n";
    const B: &[u8] = b"\"B\",\"2\",\"2\"\r\n";

    #[test]
    fn copytruncate_during_a_cycle_leaves_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::load(dir.path()).unwrap();
        commit(&mut store, A);
        copytruncate(dir.path(), "copy");
        commit(&mut store, B);
        assert_eq!(csv(dir.path()), B);
        assert_eq!(std::fs::read(dir.path().join("copy")).unwrap(), A);
        let ckpt = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(ckpt.csv.unwrap().len, B.len() as u64);
    }

    #[test]
    fn a_kill_after_appending_to_a_copytruncated_file_cuts_back_to_its_new_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::load(dir.path()).unwrap();
        commit(&mut store, A);
        copytruncate(dir.path(), "copy");
        // The next round gets as far as the append, then the process dies.
        store.open_table().unwrap().append(B).unwrap();
        drop(store);
        // On restart B is cut away (its records are read from the rings again); had the
        // checkpoint still said A's length, the shorter file would be kept as it is and B
        // would land twice.
        let mut store = Store::load(dir.path()).unwrap();
        store.open_table().unwrap();
        assert_eq!(csv(dir.path()), b"");
        commit(&mut store, B);
        assert_eq!(csv(dir.path()), B);
    }

    #[test]
    fn rename_rotation_during_a_cycle_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(ROBOT_ACTIVITY.name);
        let mut store = Store::load(dir.path()).unwrap();
        commit(&mut store, A);
        std::fs::rename(&live, dir.path().join("moved")).unwrap();
        std::fs::write(&live, b"").unwrap();
        commit(&mut store, B);
        assert_eq!(std::fs::read(dir.path().join("moved")).unwrap(), A);
        assert_eq!(csv(dir.path()), B);
        let ckpt = Checkpoint::load(dir.path()).unwrap().csv.unwrap();
        let meta = std::fs::metadata(&live).unwrap();
        assert_eq!((ckpt.dev, ckpt.ino), (meta.dev(), meta.ino()));
        assert_eq!(ckpt.len, B.len() as u64);
    }

    #[test]
    fn a_roll_back_after_copytruncate_writes_no_nul_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::load(dir.path()).unwrap();
        commit(&mut store, A);
        store.open_table().unwrap().append(B).unwrap();
        copytruncate(dir.path(), "copy");
        // The checkpoint failed: back to A's length, which the file no longer has.
        store.roll_back();
        assert!(!csv(dir.path()).contains(&0));
        commit(&mut store, A);
        assert_eq!(csv(dir.path()), A);
    }
}
