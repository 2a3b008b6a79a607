//! The tables and the checkpoint as one transaction: the rows of a round are appended to
//! `robot_activity_data` and (unless turned off) to `robot_activity_context_data`, both are
//! synced, then the checkpoint naming both new lengths and every ring's position replaces
//! the old one atomically. Until that rename the previous checkpoint stands, and the rows
//! after its lengths are cut away ([`Store::roll_back`], or [`Store::open_tables`] on the
//! next start), so neither table ever keeps rows the checkpoint does not cover: a record is
//! in both exactly once, or in neither.
//!
//! The tables are opened lazily and closed after every cycle ([`Store::close`]): between
//! cycles nothing in the storage directory is open for writing.
//!
//! With a size cap, tables are rotated between two commits (module `rotation`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use perf_table::{Rotation, TableFile, TableSpec, ROBOT_ACTIVITY, ROBOT_ACTIVITY_CONTEXT};

use crate::checkpoint::{Checkpoint, CheckpointError, CsvState, RingEntry};
use crate::error::StorageError;
use crate::failpoint::Failpoint;
use crate::rows::RoundRows;

mod rotation;
mod settler;

/// Which of the drainer's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// `robot_activity_data`, the Python package's three columns.
    Compat,
    /// `robot_activity_context_data`, the same rows plus service, pid and tid.
    Context,
}

impl Which {
    fn spec(self) -> &'static TableSpec {
        match self {
            Which::Compat => &ROBOT_ACTIVITY,
            Which::Context => &ROBOT_ACTIVITY_CONTEXT,
        }
    }

    /// The table's state in a checkpoint.
    fn state(self, ckpt: &mut Checkpoint) -> &mut Option<CsvState> {
        match self {
            Which::Compat => &mut ckpt.csv,
            Which::Context => &mut ckpt.context,
        }
    }

    /// Failpoint after this table's append.
    fn appended(self) -> &'static str {
        match self {
            Which::Compat => "after-append",
            Which::Context => "after-context-append",
        }
    }
}

/// An open table and the identity of the file behind it.
#[derive(Debug)]
struct OpenTable {
    file: TableFile,
    dev: u64,
    ino: u64,
}

impl OpenTable {
    fn state(&self) -> CsvState {
        CsvState {
            len: self.file.len(),
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// One of the drainer's tables, open or not.
#[derive(Debug)]
struct Table {
    which: Which,
    open: Option<OpenTable>,
}

/// The storage directory's tables and checkpoint.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// The compatible table, then the context table when it is kept.
    tables: Vec<Table>,
    /// The checkpoint as last made durable (plus the table states found on opening them).
    ckpt: Checkpoint,
    /// The checkpoint must be written even without new rows (a ring was forgotten).
    dirty: bool,
    /// The size cap, if any.
    rotation: Option<Rotation>,
    /// Numbered files present may be left to compress or prune, to be handed to the
    /// settler at the next open: at start (a run killed during a rotation), or after a
    /// rotation that failed half way.
    unsettled: bool,
    /// The thread that compresses and prunes rotated files, once there were any.
    settler: Option<settler::Settler>,
    /// The crash point, for the settler's steps (the drain loop passes its own to
    /// [`Store::commit`]).
    failpoint: Failpoint,
}

impl Store {
    /// Loads the checkpoint of `dir`; the tables are opened by the first commit. With
    /// `context` off only `robot_activity_data` is written, and the context table's
    /// checkpointed state (if an earlier run kept it) is carried along untouched, so it
    /// is still right when the table is turned on again.
    ///
    /// With `rotation` each table is rotated before a round would take it past the cap.
    pub(crate) fn load(
        dir: &Path,
        context: bool,
        rotation: Option<Rotation>,
    ) -> Result<Store, CheckpointError> {
        let mut tables = vec![Table {
            which: Which::Compat,
            open: None,
        }];
        if context {
            tables.push(Table {
                which: Which::Context,
                open: None,
            });
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            tables,
            ckpt: Checkpoint::load(dir)?,
            dirty: false,
            rotation,
            unsettled: rotation.is_some(),
            settler: None,
            failpoint: Failpoint::default(),
        })
    }

    /// Arms the settler's steps with (a copy of) the drain loop's crash point.
    pub(crate) fn set_failpoint(&mut self, failpoint: Failpoint) {
        self.failpoint = failpoint;
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

    /// Closes the tables.
    pub(crate) fn close(&mut self) {
        for t in &mut self.tables {
            t.open = None;
        }
    }

    /// Opens the tables if needed (see [`Store::reconcile`]), follows each through someone
    /// else's rotation (see [`Store::follow`]) and makes sure each ends where the
    /// checkpoint says.
    pub(crate) fn open_tables(&mut self) -> Result<(), StorageError> {
        for i in 0..self.tables.len() {
            let which = self.tables[i].which;
            let open = match self.tables[i].open.take() {
                Some(open) => self.follow(which, open)?,
                None => self.reconcile(which)?,
            };
            let open = self.tables[i].open.insert(open);
            if let Some(csv) = *which.state(&mut self.ckpt) {
                if open.file.len() != csv.len {
                    open.file.truncate(csv.len)?;
                }
            }
        }
        // Only now: every table's current file is in the stored checkpoint.
        self.settle_present();
        Ok(())
    }

    /// Opens one table and reconciles it with the checkpoint: cuts back rows of an
    /// interrupted commit, notices a file replaced or cut by someone else, and makes the
    /// file's identity and length durable before anything is appended to it. A table the
    /// checkpoint does not know yet (a first start, or a context table added to an older
    /// storage directory) starts where it is.
    fn reconcile(&mut self, which: Which) -> Result<OpenTable, StorageError> {
        let mut file = TableFile::open(&self.dir, which.spec())?;
        let meta = std::fs::metadata(file.path()).map_err(|source| StorageError::Stat {
            path: file.path().to_path_buf(),
            source,
        })?;
        let (dev, ino) = (meta.dev(), meta.ino());
        match *which.state(&mut self.ckpt) {
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
            Some(c) => match rotation::rotated_to(&self.dir, which.spec(), (c.dev, c.ino)) {
                Some(seg) => log::info!(
                    "finishing a rotation interrupted before its checkpoint: {} holds the {} committed bytes, {} ({} bytes) comes after it",
                    seg.display(),
                    c.len,
                    file.path().display(),
                    file.len()
                ),
                None => log::info!(
                    "{} is not the file the checkpoint describes (it was replaced); appending to it as it is",
                    file.path().display()
                ),
            },
            None => {}
        }
        let open = OpenTable { file, dev, ino };
        let csv = Some(open.state());
        if csv != *which.state(&mut self.ckpt) {
            // Which file and how long must be durable before the first append to it:
            // otherwise rows appended by a run killed before its first checkpoint
            // would not be cut back, and would come again.
            let mut next = self.ckpt.clone();
            *which.state(&mut next) = csv;
            next.store(&self.dir)?;
            self.ckpt = next;
        }
        Ok(open)
    }

    /// A table stays open for a whole cycle, which can be long under load (or `once` on a
    /// full ring directory). If logrotate cut it (`copytruncate`) or moved it away (`mv`,
    /// `create`) meanwhile, appends go to the file at the path, at its real end
    /// ([`TableFile::follow`]), and the new identity and length are made durable first,
    /// exactly as when the file is opened: a kill after the next append then cuts back to
    /// the new length instead of keeping rows the rings will give again.
    fn follow(&mut self, which: Which, mut open: OpenTable) -> Result<OpenTable, StorageError> {
        if open.file.follow()?.is_some() {
            (open.dev, open.ino) = open.file.identity();
            let mut next = self.ckpt.clone();
            *which.state(&mut next) = Some(open.state());
            next.store(&self.dir)?;
            self.ckpt = next;
        }
        Ok(open)
    }

    /// Makes a round durable: `rows` appended to their tables and synced, then the
    /// checkpoint with both lengths and `entries` (every ring drained, keyed by id).
    pub(crate) fn commit(
        &mut self,
        rows: &RoundRows,
        entries: impl Iterator<Item = (u64, RingEntry)>,
        failpoint: &mut Failpoint,
    ) -> Result<(), StorageError> {
        self.open_tables()?;
        self.rotate_due(rows, failpoint)?;
        let appended = !rows.compat.is_empty();
        for t in &mut self.tables {
            let bytes = match t.which {
                Which::Compat => &rows.compat[..],
                Which::Context => rows.context.as_deref().unwrap_or_default(),
            };
            if let (Some(open), false) = (&mut t.open, bytes.is_empty()) {
                open.file.append(bytes)?;
                failpoint.hit(t.which.appended());
            }
        }
        let mut next = self.ckpt.clone();
        for t in &mut self.tables {
            if let Some(open) = &mut t.open {
                if appended {
                    open.file.sync()?;
                }
                *t.which.state(&mut next) = Some(open.state());
            }
        }
        if appended {
            failpoint.hit("after-sync");
        }
        next.rings.extend(entries);
        next.store(&self.dir)?;
        failpoint.hit("after-checkpoint");
        self.ckpt = next;
        self.dirty = false;
        Ok(())
    }

    /// After a failed commit: each table back to its checkpointed length (if that fails
    /// too, [`Store::open_tables`] cuts it at the start of the next commit).
    pub(crate) fn roll_back(&mut self) {
        for t in &mut self.tables {
            if let (Some(open), Some(csv)) = (&mut t.open, *t.which.state(&mut self.ckpt)) {
                if open.file.len() != csv.len {
                    let _ = open.file.truncate(csv.len);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perf_table::archive;

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
        let rows = RoundRows {
            compat: rows.to_vec(),
            context: Some(rows.to_vec()),
        };
        store
            .commit(&rows, std::iter::empty(), &mut Failpoint::default())
            .unwrap();
    }

    impl Store {
        /// The open compatible table, after [`Store::open_tables`].
        fn compat(&mut self) -> &mut TableFile {
            self.open_tables().unwrap();
            &mut self.tables[0].open.as_mut().unwrap().file
        }
    }

    const A: &[u8] = b"\"A\",\"1\",\"1\"\r\n";
    const B: &[u8] = b"\"B\",\"2\",\"2\"\r\n";

    #[test]
    fn copytruncate_during_a_cycle_leaves_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::load(dir.path(), true, None).unwrap();
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
        let mut store = Store::load(dir.path(), true, None).unwrap();
        commit(&mut store, A);
        copytruncate(dir.path(), "copy");
        // The next round gets as far as the append, then the process dies.
        store.compat().append(B).unwrap();
        drop(store);
        // On restart B is cut away (its records are read from the rings again); had the
        // checkpoint still said A's length, the shorter file would be kept as it is and B
        // would land twice.
        let mut store = Store::load(dir.path(), true, None).unwrap();
        store.open_tables().unwrap();
        assert_eq!(csv(dir.path()), b"");
        commit(&mut store, B);
        assert_eq!(csv(dir.path()), B);
    }

    #[test]
    fn rename_rotation_during_a_cycle_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join(ROBOT_ACTIVITY.name);
        let mut store = Store::load(dir.path(), true, None).unwrap();
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
        let mut store = Store::load(dir.path(), true, None).unwrap();
        commit(&mut store, A);
        store.compat().append(B).unwrap();
        copytruncate(dir.path(), "copy");
        // The checkpoint failed: back to A's length, which the file no longer has.
        store.roll_back();
        assert!(!csv(dir.path()).contains(&0));
        commit(&mut store, A);
        assert_eq!(csv(dir.path()), A);
    }

    #[test]
    fn rotated_files_are_compressed_off_the_loop_and_finished_before_the_store_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Rotation {
            max_bytes: 16,
            keep: 10,
        };
        let mut store = Store::load(dir.path(), true, Some(cap)).unwrap();
        commit(&mut store, A);
        // Rotates both tables; the settling thread compresses them meanwhile.
        commit(&mut store, B);
        drop(store);
        for spec in [&ROBOT_ACTIVITY, &ROBOT_ACTIVITY_CONTEXT] {
            let segs = archive::segments(dir.path(), spec).unwrap();
            let found: Vec<(u64, bool)> = segs.iter().map(|s| (s.seq, s.compressed)).collect();
            assert_eq!(found, [(1, true)], "{}", spec.name);
            assert_eq!(archive::history(dir.path(), spec).unwrap(), [A, B].concat());
        }
    }

    #[test]
    fn a_rotation_that_fails_half_way_still_checkpoints_the_new_live_file() {
        let dir = tempfile::tempdir().unwrap();
        let cap = Rotation {
            max_bytes: 16,
            keep: 10,
        };
        let mut store = Store::load(dir.path(), true, Some(cap)).unwrap();
        commit(&mut store, A);
        // The context table's new live file cannot be set up (its header sidecar differs
        // and a directory sits where the replacement is written): its rotation fails after
        // the compatible table's succeeded.
        std::fs::write(dir.path().join("robot_activity_context_data_headers"), b"x").unwrap();
        std::fs::create_dir(dir.path().join(".robot_activity_context_data_headers.tmp")).unwrap();
        let rows = RoundRows {
            compat: B.to_vec(),
            context: Some(B.to_vec()),
        };
        let failed = store.commit(&rows, std::iter::empty(), &mut Failpoint::default());
        assert!(failed.is_err());
        store.roll_back();
        let ckpt = Checkpoint::load(dir.path()).unwrap().csv.unwrap();
        let live = std::fs::metadata(dir.path().join(ROBOT_ACTIVITY.name)).unwrap();
        assert_eq!((ckpt.dev, ckpt.ino, ckpt.len), (live.dev(), live.ino(), 0));
        // Once the obstacle is gone, the next round gets as far as the append, then the
        // process dies: on restart the append is cut back (its records come again from
        // the rings), not kept.
        std::fs::remove_dir(dir.path().join(".robot_activity_context_data_headers.tmp")).unwrap();
        store.compat().append(B).unwrap();
        drop(store);
        let mut store = Store::load(dir.path(), true, Some(cap)).unwrap();
        store.open_tables().unwrap();
        assert_eq!(csv(dir.path()), b"");
        assert_eq!(
            archive::history(dir.path(), &ROBOT_ACTIVITY).unwrap(),
            A,
            "the rotated file holds the first round"
        );
    }
}
