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
        let flags = libc::O_NOFOLLOW | libc::O_CLOEXEC;
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
        // For humans: who holds it. Best effort (read-only storage, full disk).
        let _ = OpenOptions::new()
            .write(true)
            .truncate(true)
            .custom_flags(flags)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{}\n", std::process::id()).as_bytes()));
        Ok(StorageLock { _file: file, path })
    }

    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
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
}
