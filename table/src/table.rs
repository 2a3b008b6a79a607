//! A table on disk: the data file plus its `_headers` sidecar.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The name and columns of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// File name of the data file inside the storage directory.
    pub name: &'static str,
    /// Column names, written joined by `,` to `<name>_headers`.
    pub columns: &'static [&'static str],
}

/// Robot activity records, written by `perf-drainer`.
pub const ROBOT_ACTIVITY: TableSpec = TableSpec {
    name: "robot_activity_data",
    columns: &["state", "func_start", "duration"],
};

/// Process samples, written by the system resource tracker.
pub const SYSTEM_RESOURCE: TableSpec = TableSpec {
    name: "system_resource_data",
    columns: &[
        "query_time",
        "command",
        "running_since",
        "user_cpu_time",
        "system_cpu_time",
        "memory_percent",
    ],
};

/// What went wrong with a table, and on which path.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The storage directory could not be created.
    #[error("cannot create storage directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    /// The `_headers` sidecar could not be written.
    #[error("cannot write header file {path}: {source}")]
    Headers { path: PathBuf, source: io::Error },
    /// The data file could not be opened or inspected.
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    /// Appending rows failed; the file was cut back (or will be, before the next append).
    #[error("cannot append to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// Flushing rows to stable storage failed.
    #[error("cannot sync {path}: {source}")]
    Sync { path: PathBuf, source: io::Error },
    /// Cutting the file back to a known length failed.
    #[error("cannot truncate {path} to {len} bytes: {source}")]
    Truncate {
        path: PathBuf,
        len: u64,
        source: io::Error,
    },
}

impl TableError {
    /// The underlying I/O error, e.g. to tell a full disk (`StorageFull`) from a read-only one.
    pub fn io(&self) -> &io::Error {
        match self {
            TableError::CreateDir { source, .. }
            | TableError::Headers { source, .. }
            | TableError::Open { source, .. }
            | TableError::Write { source, .. }
            | TableError::Sync { source, .. }
            | TableError::Truncate { source, .. } => source,
        }
    }
}

/// An open table: appends whole rows, never leaves half a row behind after an error.
///
/// The writer is the only one appending to the file (the daemons hold their own locks), so
/// it tracks the length itself and writes at that offset. A failed write is cut back to the
/// last complete append; if even that fails (read-only storage), the cut is retried before
/// the next append.
#[derive(Debug)]
pub struct TableFile {
    file: File,
    path: PathBuf,
    len: u64,
    /// Bytes past `len` may be on disk from a failed write and must be cut first.
    dirty_tail: bool,
}

impl TableFile {
    /// Opens (creating as needed) the storage directory, the header sidecar and the data file.
    pub fn open(dir: &Path, spec: &TableSpec) -> Result<TableFile, TableError> {
        fs::create_dir_all(dir).map_err(|source| TableError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        write_headers(dir, spec)?;
        let path = dir.join(spec.name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| TableError::Open {
                path: path.clone(),
                source,
            })?;
        let len = file
            .metadata()
            .map_err(|source| TableError::Open {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(TableFile {
            file,
            path,
            len,
            dirty_tail: false,
        })
    }

    /// Path of the data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the data file in bytes: everything appended successfully.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the data file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends complete rows (as built by [`crate::Row`]). On error nothing of `rows` stays.
    pub fn append(&mut self, rows: &[u8]) -> Result<(), TableError> {
        if self.dirty_tail {
            self.truncate(self.len)?;
        }
        if let Err(source) = self.file.write_all_at(rows, self.len) {
            self.dirty_tail = true;
            // Best effort now; if it fails the next append retries it first.
            let _ = self.truncate(self.len);
            return Err(TableError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.len += rows.len() as u64;
        Ok(())
    }

    /// Makes every appended row durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<(), TableError> {
        self.file.sync_data().map_err(|source| TableError::Sync {
            path: self.path.clone(),
            source,
        })
    }

    /// Cuts the data file back to `len` bytes (used to return to a checkpoint).
    pub fn truncate(&mut self, len: u64) -> Result<(), TableError> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| TableError::Truncate {
                path: self.path.clone(),
                len,
                source,
            })?;
        self.len = len;
        self.dirty_tail = false;
        Ok(())
    }
}

/// The sidecar holds the column names joined by `,`, without a newline. It is replaced
/// atomically, and only when its content differs, so readers never see a half-written one.
fn write_headers(dir: &Path, spec: &TableSpec) -> Result<(), TableError> {
    let path = dir.join(format!("{}_headers", spec.name));
    let content = spec.columns.join(",");
    if fs::read(&path).is_ok_and(|existing| existing == content.as_bytes()) {
        return Ok(());
    }
    let err = |source| TableError::Headers {
        path: path.clone(),
        source,
    };
    let tmp = dir.join(format!(".{}_headers.tmp", spec.name));
    let mut file = File::create(&tmp).map_err(err)?;
    file.write_all(content.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, &path).map_err(err)?;
    Ok(())
}
