//! The checkpoint: how far the CSV and each ring were durably drained.
//!
//! It is the only thing that ties the CSV to the rings across a crash. The drainer appends
//! rows and syncs them, then replaces the checkpoint atomically (temporary file, `fsync`,
//! `rename`, `fsync` of the directory), then releases the ring slots. Whatever instant the
//! process dies at, the checkpoint on disk names a CSV length whose rows match exactly the
//! ring positions it names: on start the CSV is cut back to that length and each ring is
//! read again from its position.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the checkpoint inside the storage directory.
pub const FILE_NAME: &str = ".perf-drainer.checkpoint";
/// The temporary the checkpoint is written to before being renamed over [`FILE_NAME`].
const TMP_NAME: &str = ".perf-drainer.checkpoint.tmp";
/// Where an unreadable checkpoint is moved so that it can be looked at later.
const CORRUPT_NAME: &str = ".perf-drainer.checkpoint.corrupt";
/// Format version written in the file.
pub const VERSION: u32 = 1;

/// The CSV file a checkpoint describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CsvState {
    /// Bytes of complete, durable rows.
    pub len: u64,
    /// Device and inode of the file, so a file replaced while the drainer was down is never
    /// cut back to another file's length.
    pub dev: u64,
    /// See `dev`.
    pub ino: u64,
}

/// One ring's durable progress.
///
/// Positions count from the ring's creation, so `pos = base + written + invalid +
/// abandoned` holds for every ring this drainer saw from its first record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RingEntry {
    /// Every record below this position is in the CSV (or was counted as skipped).
    pub pos: u64,
    /// Released position when this drainer first saw the ring (records consumed by someone
    /// else before; zero for a ring seen from its start).
    pub base: u64,
    /// Rows written to the CSV.
    pub written: u64,
    /// Records skipped because their state index was outside the ring's state table.
    pub invalid: u64,
    /// Positions a dead producer claimed but never published.
    pub abandoned: u64,
    /// Service name (for humans).
    pub service: String,
    /// Ring file path (for humans; the ring id is the key).
    pub path: String,
}

/// What the checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`VERSION`].
    pub version: u32,
    /// The CSV (absent before the first commit).
    pub csv: Option<CsvState>,
    /// The context table, `robot_activity_context_data` (absent before its first commit,
    /// and in checkpoints of drainers that did not keep it: it then starts where it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CsvState>,
    /// Progress per ring id.
    pub rings: BTreeMap<u64, RingEntry>,
}

/// Reading or writing the checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but could not be read.
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// The new checkpoint could not be made durable.
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl CheckpointError {
    /// The underlying I/O error.
    pub fn io(&self) -> &io::Error {
        match self {
            CheckpointError::Read { source, .. } | CheckpointError::Write { source, .. } => source,
        }
    }
}

impl Checkpoint {
    /// An empty checkpoint of the current version.
    pub fn new() -> Checkpoint {
        Checkpoint {
            version: VERSION,
            csv: None,
            context: None,
            rings: BTreeMap::new(),
        }
    }

    /// Loads the checkpoint of `storage_dir`; a missing file gives an empty checkpoint.
    ///
    /// A file that does not parse (it is only ever replaced atomically, so this means
    /// someone edited it or the disk lost it) is moved aside to `.perf-drainer.checkpoint.corrupt`
    /// with an error logged, and draining starts afresh: at worst the rows of one cycle
    /// come twice, which beats never draining again.
    pub fn load(storage_dir: &Path) -> Result<Checkpoint, CheckpointError> {
        let path = storage_dir.join(FILE_NAME);
        // Never through a link, never blocking on a FIFO planted at the name.
        let parsed = match perf_table::safe_file::read(&path) {
            Ok(bytes) => Self::parse(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checkpoint::new()),
            // A link or a FIFO in its place was planted: set it aside like garbage.
            Err(e)
                if e.raw_os_error() == Some(libc::ELOOP)
                    || e.kind() == io::ErrorKind::InvalidInput =>
            {
                Err(format!("{e}: only a regular file is read"))
            }
            Err(source) => return Err(CheckpointError::Read { path, source }),
        };
        match parsed {
            Ok(ckpt) => Ok(ckpt),
            Err(why) => {
                let aside = storage_dir.join(CORRUPT_NAME);
                let moved = fs::rename(&path, &aside);
                log::error!(
                    "checkpoint {} is unusable ({why}); {}; starting without it (rows of the last cycle may appear twice)",
                    path.display(),
                    match moved {
                        Ok(()) => format!("moved to {}", aside.display()),
                        Err(e) => format!("could not move it aside: {e}"),
                    }
                );
                Ok(Checkpoint::new())
            }
        }
    }

    /// Loads without side effects (for `status`): `None` when missing or unusable.
    pub fn peek(storage_dir: &Path) -> Option<Checkpoint> {
        let bytes = perf_table::safe_file::read(&storage_dir.join(FILE_NAME)).ok()?;
        Self::parse(&bytes).ok()
    }

    fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
        let ckpt: Checkpoint = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if ckpt.version != VERSION {
            return Err(format!(
                "version {} (this build reads {VERSION})",
                ckpt.version
            ));
        }
        Ok(ckpt)
    }

    /// Replaces the checkpoint of `storage_dir` atomically and durably.
    pub fn store(&self, storage_dir: &Path) -> Result<(), CheckpointError> {
        let path = storage_dir.join(FILE_NAME);
        let tmp = storage_dir.join(TMP_NAME);
        // Serialising a plain struct of numbers and strings cannot fail.
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        // The temporary is unlinked and created exclusively: a link planted at its name
        // (symbolic or hard) is removed, never written through. The rename and the
        // directory are synced.
        perf_table::safe_file::replace(storage_dir, &tmp, &path, &bytes)
            .map_err(|source| CheckpointError::Write { path, source })
    }
}

/// Per-ring checkpointed progress of `storage_dir`, without side effects (for `status`):
/// empty when the checkpoint is missing or unusable.
pub fn checkpointed(storage_dir: &Path) -> BTreeMap<u64, RingEntry> {
    Checkpoint::peek(storage_dir)
        .map(|c| c.rings)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::new());
        let mut ckpt = Checkpoint::new();
        ckpt.csv = Some(CsvState {
            len: 42,
            dev: 1,
            ino: 2,
        });
        ckpt.rings.insert(
            u64::MAX,
            RingEntry {
                pos: 7,
                written: 6,
                invalid: 1,
                path: "/dev/shm/x\n.ring".into(),
                ..RingEntry::default()
            },
        );
        ckpt.store(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), ckpt);
        ckpt.rings.clear();
        ckpt.store(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), ckpt);
        // Only the checkpoint is left: no temporary.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn checkpoints_without_the_context_table_still_load() {
        // What drainers before the context table wrote.
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE_NAME),
            b"{\"version\":1,\"csv\":{\"len\":3,\"dev\":1,\"ino\":2},\"rings\":{}}",
        )
        .unwrap();
        let ckpt = Checkpoint::load(dir.path()).unwrap();
        assert_eq!(ckpt.csv.map(|c| c.len), Some(3));
        assert_eq!(ckpt.context, None);
        let mut with = ckpt.clone();
        with.context = Some(CsvState {
            len: 9,
            dev: 1,
            ino: 3,
        });
        with.store(dir.path()).unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), with);
    }

    #[test]
    fn garbage_is_moved_aside_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{\"version\":1,").unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::new());
        assert!(dir.path().join(CORRUPT_NAME).exists());
        assert!(!dir.path().join(FILE_NAME).exists());

        fs::write(
            dir.path().join(FILE_NAME),
            b"{\"version\":99,\"csv\":null,\"rings\":{}}",
        )
        .unwrap();
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::new());
    }

    #[test]
    fn a_link_planted_at_the_temporary_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let tmp = dir.path().join(TMP_NAME);
        // A hard link: O_TRUNC without O_EXCL truncated and overwrote the victim.
        fs::hard_link(&victim, &tmp).unwrap();
        Checkpoint::new().store(dir.path()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        // A symbolic link: O_NOFOLLOW alone refused it, so checkpoints failed for good.
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        Checkpoint::new().store(dir.path()).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::new());
    }

    #[test]
    fn a_fifo_or_link_at_the_checkpoint_does_not_hang_or_leak_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let d = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Checkpoint::load(&d).unwrap());
        });
        let loaded = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("loading a FIFO checkpoint blocked");
        assert_eq!(loaded, Checkpoint::new());
        assert!(!path.exists(), "the FIFO is moved aside");
        assert_eq!(Checkpoint::peek(dir.path()), None);

        let secret = dir.path().join("secret");
        let mut other = Checkpoint::new();
        other.csv = Some(CsvState::default());
        fs::write(&secret, serde_json::to_vec(&other).unwrap()).unwrap();
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        assert_eq!(Checkpoint::peek(dir.path()), None);
        assert_eq!(Checkpoint::load(dir.path()).unwrap(), Checkpoint::new());
        assert!(!path.exists(), "the link is moved aside");
        assert!(secret.exists());
    }
}
