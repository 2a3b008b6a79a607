//! What can go wrong while draining, and which failures the daemon waits out.
//!
//! Two kinds: [`DrainError`] when the drainer cannot be set up at all (another drainer
//! holds the lock, the checkpoint cannot be read), and [`StorageError`] when a commit
//! fails (full, read-only or unwritable storage), after which nothing is released and the
//! next cycle retries. The errno policy (which errors are "full", what to call each) is
//! the one both daemons share, [`perf_daemon::storage_log`].

use std::io;
use std::path::PathBuf;

use perf_table::TableError;

use crate::checkpoint::CheckpointError;
use crate::lock::LockError;

/// Setting up the drainer failed (fatal: the daemon exits 1).
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The storage lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The checkpoint exists but cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl DrainError {
    /// Whether the storage itself is the problem (read-only, full, not yet mounted), which
    /// the daemon waits out, rather than another drainer or a broken checkpoint.
    pub fn is_storage(&self) -> bool {
        self.storage_cause().is_some()
    }

    /// The cause in a few words ("storage is read-only") when [`DrainError::is_storage`].
    pub fn storage_cause(&self) -> Option<&'static str> {
        match self {
            DrainError::Lock(LockError::Io { source, .. }) => {
                Some(perf_daemon::storage_log::cause(source))
            }
            _ => None,
        }
    }
}

/// Writing to the storage directory failed; the drainer stops consuming and retries.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The CSV could not be opened, appended to, synced or cut back.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The CSV could not be looked at.
    #[error("cannot stat {path}: {source}")]
    Stat { path: PathBuf, source: io::Error },
}

impl StorageError {
    /// The underlying I/O error.
    pub fn io(&self) -> &io::Error {
        match self {
            StorageError::Table(e) => e.io(),
            StorageError::Checkpoint(e) => e.io(),
            StorageError::Stat { source, .. } => source,
        }
    }

    /// The cause in a few words ("storage is full").
    pub fn cause(&self) -> &'static str {
        perf_daemon::storage_log::cause(self.io())
    }

    /// Whether the storage has no room (rather than being unwritable): a smaller round may
    /// still fit.
    pub fn is_full(&self) -> bool {
        perf_daemon::storage_log::is_full(self.io())
    }
}
