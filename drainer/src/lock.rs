//! One drainer per storage directory: an exclusive `flock` on `.perf-drainer.lock`.
//!
//! Two drainers appending to one CSV would interleave rows and fight over the checkpoint;
//! the lock makes the second one fail at start with a clear message. `flock` locks die with
//! the process, so a crashed drainer never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// File name of the lock inside the storage directory.
pub const FILE_NAME: &str = ".perf-drainer.lock";

/// Taking the lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("another perf-drainer already drains into {dir} (it holds {path})")]
    Held { dir: PathBuf, path: PathBuf },
    /// The storage directory or the lock file could not be created or opened.
    #[error("cannot lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct StorageLock {
    _file: File,
    path: PathBuf,
}

impl StorageLock {
    /// Creates `dir` if needed and takes its lock without waiting.
    ///
    /// On read-only storage the lock file is opened read-only (`flock` does not need write
    /// access), so a drainer can start and wait for the storage to come back.
    pub fn acquire(dir: &Path) -> Result<StorageLock, LockError> {
        let path = dir.join(FILE_NAME);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            // An existing directory on a read-only file system still reports EROFS here.
            if !dir.is_dir() {
                return Err(io_err(e));
            }
        }
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
        Ok(StorageLock { _file: file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_pid(locked: &File, path: &Path, flags: i32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
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
