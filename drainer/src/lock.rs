//! One drainer per storage directory and one per ring directory: an exclusive `flock` on
//! `.perf-drainer.lock` in each.
//!
//! Two drainers appending to one CSV would interleave rows and fight over the checkpoint;
//! two consuming one ring directory would each take records the other then misses or
//! writes again (and one would remove rings the other had not finished). The locks make
//! the second drainer fail with a clear message. `flock` locks die with the process, so a
//! crashed drainer never leaves a stale lock behind. `status` takes neither: it only looks.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// File name of the lock inside the storage directory and inside the ring directory
/// (hidden, so the ring scan never takes it for a ring).
pub const FILE_NAME: &str = ".perf-drainer.lock";

/// Which directory a lock is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The storage directory: the CSV files and the checkpoint.
    Storage,
    /// The ring directory: the rings producers write.
    Rings,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Storage => "drains into",
            Role::Rings => "drains the rings in",
        })
    }
}

/// Taking the lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another perf-drainer already {role} {dir} (it holds {path})")]
    Held {
        role: Role,
        dir: PathBuf,
        path: PathBuf,
    },
    /// The directory or the lock file could not be created or opened.
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

/// The storage directory's lock (the name the drainer used before it also locked the ring
/// directory).
pub type StorageLock = DirLock;

impl DirLock {
    /// Creates the storage directory `dir` if needed and takes its lock without waiting.
    ///
    /// On read-only storage the lock file is opened read-only (`flock` does not need write
    /// access), so a drainer can start and wait for the storage to come back.
    pub fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            // An existing directory on a read-only file system still reports EROFS here.
            if !dir.is_dir() {
                return Err(LockError::Io {
                    path: dir.join(FILE_NAME),
                    source: e,
                });
            }
        }
        DirLock::take(dir, Role::Storage)
    }

    /// Takes the lock of the ring directory `dir`, which must exist (the drainer never
    /// creates it: producers do).
    pub fn ring_dir(dir: &Path) -> Result<DirLock, LockError> {
        DirLock::take(dir, Role::Rings)
    }

    fn take(dir: &Path, role: Role) -> Result<DirLock, LockError> {
        let path = dir.join(FILE_NAME);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Never through a link; never blocking on a FIFO planted at the name (opening one
        // for writing would wait for a reader for ever).
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        // Create it if needed, but hold it open read-only: `flock` needs no write access,
        // and a descriptor open for writing would keep the storage from being remounted
        // read-only (EBUSY) for as long as the daemon runs.
        match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(flags)
            .open(&path)
        {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EROFS) && path.exists() => {}
            Err(e) => return Err(io_err(e)),
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(&path)
            .map_err(io_err)?;
        perf_table::safe_file::ensure_regular(&file).map_err(io_err)?;
        // SAFETY: the descriptor is owned by `file` and open for the whole call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                LockError::Held {
                    role,
                    dir: dir.to_path_buf(),
                    path,
                }
            } else {
                io_err(e)
            });
        }
        // For humans: who holds it. Best effort (read-only storage, full disk), and only
        // into the very file locked, when no other name links to it: a hard link planted
        // at the lock's name must not get another file truncated and overwritten.
        let _ = write_pid(&file, &path, flags);
        Ok(DirLock { file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the lock's path still names the file locked. Someone deleting the lock file
    /// (or the whole directory, recreated since) leaves this lock guarding nothing: a
    /// second drainer could then take a new one.
    pub fn still_held(&self) -> bool {
        match (self.file.metadata(), std::fs::symlink_metadata(&self.path)) {
            (Ok(ours), Ok(now)) => (ours.dev(), ours.ino()) == (now.dev(), now.ino()),
            _ => false,
        }
    }
}

fn write_pid(locked: &File, path: &Path, flags: i32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(path)?;
    let (ours, now) = (locked.metadata()?, f.metadata()?);
    if (ours.dev(), ours.ino()) != (now.dev(), now.ino()) || now.nlink() != 1 || !now.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the lock file has other names; not writing to it",
        ));
    }
    f.set_len(0)?;
    f.write_all(format!("{}\n", std::process::id()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("a/b");
        let first = StorageLock::acquire(&storage).unwrap();
        let err = StorageLock::acquire(&storage).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(err.to_string().contains("another perf-drainer"), "{err}");
        drop(first);
        StorageLock::acquire(&storage).unwrap();
    }

    #[test]
    fn a_second_ring_dir_lock_is_refused_and_a_deleted_one_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DirLock::ring_dir(&dir.path().join("missing")).is_err());
        let first = DirLock::ring_dir(dir.path()).unwrap();
        assert!(first.still_held());
        let err = DirLock::ring_dir(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "another perf-drainer already drains the rings in {} (it holds {})",
                dir.path().display(),
                dir.path().join(FILE_NAME).display()
            )
        );
        std::fs::remove_file(first.path()).unwrap();
        assert!(!first.still_held());
    }

    #[test]
    fn a_hard_link_planted_at_the_lock_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::hard_link(&victim, dir.path().join(FILE_NAME)).unwrap();
        let _lock = StorageLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_fifo_at_the_lock_is_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let d = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                StorageLock::acquire(&d)
                    .map(drop)
                    .map_err(|e| e.to_string()),
            );
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("taking a FIFO as the lock blocked");
        assert!(result.is_err(), "{result:?}");
    }

    #[test]
    fn the_pid_is_written_for_humans() {
        let dir = tempfile::tempdir().unwrap();
        let _lock = StorageLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap(),
            format!("{}\n", std::process::id())
        );
    }
}
