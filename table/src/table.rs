//! A table on disk: the data file plus its `_headers` sidecar.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::archive;
use crate::safe_file;

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

/// The same rows as [`ROBOT_ACTIVITY`] plus who wrote them: the ring's service name, the
/// producer's pid and the writing thread's kernel id. Written by `perf-drainer` beside the
/// compatible table, in the same commit; not part of the Python package's format.
pub const ROBOT_ACTIVITY_CONTEXT: TableSpec = TableSpec {
    name: "robot_activity_context_data",
    columns: &["state", "func_start", "duration", "service", "pid", "tid"],
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
    /// Moving the live file to a numbered rotated file failed.
    #[error("cannot rotate {path}: {source}")]
    Rotate { path: PathBuf, source: io::Error },
    /// Compressing, listing or removing rotated files failed.
    #[error("cannot archive {path}: {source}")]
    Archive { path: PathBuf, source: io::Error },
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
            | TableError::Truncate { source, .. }
            | TableError::Rotate { source, .. }
            | TableError::Archive { source, .. } => source,
        }
    }
}

/// What someone else did to the data file since this writer last looked. Each change is
/// logged once, when it is found, and never leaves a hole or overwrites a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalChange {
    /// The path no longer names the open file: it was renamed away (`mv` rotation, as
    /// logrotate does without `copytruncate`) or removed. The writer now appends to the
    /// file at the path, created empty if there is none.
    Replaced,
    /// The same file is shorter than what was written to it (`copytruncate`, `truncate -s`).
    /// Appends continue at its real end.
    Shrunk { from: u64, to: u64 },
    /// The same file is longer than what was written to it: someone else appended.
    /// Appends continue after their bytes.
    Grew { from: u64, to: u64 },
}

/// An open table: appends whole rows, never leaves half a row behind after an error, and
/// never leaves a hole when someone else cuts or replaces the file.
///
/// The file is opened with `O_APPEND`, so every write lands at the file's real end. The
/// writer also remembers the length it expects (the end of its last complete append, which
/// the drainer records in its checkpoint) and compares it with the file before every
/// append: a file cut by `copytruncate` is noticed, logged once, and appended to at its
/// new end. [`TableFile::follow`] also notices a file renamed away or removed and reopens
/// the path. A failed write is cut back to the last complete append; if even that fails
/// (read-only storage), the cut is retried before the next append.
#[derive(Debug)]
pub struct TableFile {
    file: File,
    dir: PathBuf,
    spec: TableSpec,
    path: PathBuf,
    len: u64,
    dev: u64,
    ino: u64,
    /// Bytes past `len` may be on disk from a failed write and must be cut first.
    dirty_tail: bool,
    /// `len` was compared with the file by [`TableFile::follow`] (or found by opening it),
    /// and nothing was done to the file through this writer since: see
    /// [`TableFile::append_followed`].
    checked: bool,
}

impl TableFile {
    /// Opens (creating as needed) the storage directory, the header sidecar and the data file.
    ///
    /// The data file is never followed through a symbolic link and must be a regular file
    /// (a FIFO planted at its name is refused rather than blocking the daemon).
    pub fn open(dir: &Path, spec: &TableSpec) -> Result<TableFile, TableError> {
        fs::create_dir_all(dir).map_err(|source| TableError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        write_headers(dir, spec)?;
        let path = dir.join(spec.name);
        let err = |source| TableError::Open {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(safe_file::FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(err)?;
        safe_file::ensure_regular(&file).map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        Ok(TableFile {
            file,
            dir: dir.to_path_buf(),
            spec: *spec,
            path,
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
            dirty_tail: false,
            checked: true,
        })
    }

    /// Path of the data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which table this is.
    pub fn spec(&self) -> TableSpec {
        self.spec
    }

    /// Device and inode of the open data file (the drainer's checkpoint records them).
    pub fn identity(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Length of the data file in bytes: everything appended successfully.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the data file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the writer agree with the data file at its path again, after whatever someone
    /// else did to it: a file renamed away or removed is replaced by the file at the path
    /// (created if missing); a file cut or grown is appended to at its real end.
    ///
    /// Returns what changed (already logged), so a caller that records the file's length
    /// (the drainer's checkpoint) can record the new one before appending.
    pub fn follow(&mut self) -> Result<Option<ExternalChange>, TableError> {
        // The length of the file at the path, if it is still the open one: the same inode,
        // so the length `fstat` would give.
        let same = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.is_file() && (m.dev(), m.ino()) == (self.dev, self.ino) => Some(m.len()),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(TableError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        if let Some(size) = same {
            let change = self.resync(Some(size))?;
            self.checked = true;
            return Ok(change);
        }
        let reopened = TableFile::open(&self.dir, &self.spec)?;
        // Rows already appended to the old file (now under another name) stay durable
        // there, as they would have here. Best effort: it may be gone for good.
        let _ = self.file.sync_data();
        log::warn!(
            "{} was moved away or removed under this writer (after {} bytes); writing to the file now at that path ({} bytes)",
            self.path.display(),
            self.len,
            reopened.len
        );
        *self = reopened;
        Ok(Some(ExternalChange::Replaced))
    }

    /// Compares the remembered length with the open file's (`size`, if just read) and
    /// adopts the file's.
    fn resync(&mut self, size: Option<u64>) -> Result<Option<ExternalChange>, TableError> {
        let size = match size {
            Some(size) if !self.dirty_tail => size,
            _ => {
                if self.dirty_tail {
                    self.truncate(self.len)?;
                }
                self.size()?
            }
        };
        let change = match size.cmp(&self.len) {
            std::cmp::Ordering::Equal => return Ok(None),
            std::cmp::Ordering::Less => {
                log::warn!(
                    "{} shrank from {} to {} bytes under this writer (cut by someone else, e.g. logrotate copytruncate); appending at its end",
                    self.path.display(),
                    self.len,
                    size
                );
                ExternalChange::Shrunk {
                    from: self.len,
                    to: size,
                }
            }
            std::cmp::Ordering::Greater => {
                log::warn!(
                    "{} grew from {} to {} bytes under this writer (someone else appended); appending after it",
                    self.path.display(),
                    self.len,
                    size
                );
                ExternalChange::Grew {
                    from: self.len,
                    to: size,
                }
            }
        };
        self.len = size;
        Ok(Some(change))
    }

    fn size(&self) -> Result<u64, TableError> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|source| TableError::Open {
                path: self.path.clone(),
                source,
            })
    }

    /// Appends complete rows (as built by [`crate::Row`]). On error nothing of `rows` stays.
    ///
    /// A file cut or grown by someone else since the last append is noticed first (logged
    /// once) and appended to at its real end, never at the remembered length.
    pub fn append(&mut self, rows: &[u8]) -> Result<(), TableError> {
        self.checked = false;
        self.resync(None)?;
        self.write_rows(rows)
    }

    /// [`TableFile::append`] for a caller that has just called [`TableFile::follow`] (or
    /// opened the file), with nothing in between: the length `follow` compared is used
    /// instead of comparing it again, one `fstat` less. The tracker appends once a sample,
    /// for months, right after following. A file cut between the two is appended to at its
    /// real end all the same (`O_APPEND`), and noticed at the next `follow`; a caller that
    /// records lengths durably between the two (the drainer's checkpoint) uses `append`.
    pub fn append_followed(&mut self, rows: &[u8]) -> Result<(), TableError> {
        if !std::mem::take(&mut self.checked) {
            self.resync(None)?;
        }
        self.write_rows(rows)
    }

    fn write_rows(&mut self, rows: &[u8]) -> Result<(), TableError> {
        if let Err(source) = (&self.file).write_all(rows) {
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
    ///
    /// Never lengthens it: a file already shorter (cut by someone else) is left as it is
    /// and its real length adopted, since extending it would write a hole of NUL bytes.
    pub fn truncate(&mut self, len: u64) -> Result<(), TableError> {
        self.checked = false;
        let err = |source| TableError::Truncate {
            path: self.path.clone(),
            len,
            source,
        };
        let size = self.file.metadata().map(|m| m.len()).map_err(err)?;
        if size > len {
            self.file
                .set_len(len)
                .and_then(|()| self.file.sync_data())
                .map_err(err)?;
            self.len = len;
        } else {
            if size < len {
                log::warn!(
                    "{} is {} bytes, shorter than the {} it should be cut back to (cut by someone else); keeping it as it is",
                    self.path.display(),
                    size,
                    len
                );
            }
            self.len = size;
        }
        self.dirty_tail = false;
        Ok(())
    }

    /// First step of a rotation: moves the live file to the next numbered name
    /// (`<name>.<seq>`, see [`crate::archive`]) and starts a new, empty live file at the
    /// path. Returns the number. Both renames are durable when this returns.
    ///
    /// Compressing and pruning are separate steps ([`archive::settle`]) so that a caller
    /// with its own transaction (the drainer's checkpoint) can record the new live file in
    /// between. Everything appended so far should be synced first.
    pub fn rotate(&mut self) -> Result<u64, TableError> {
        self.rotate_watched(&mut |_| {})
    }

    /// [`TableFile::rotate`], calling `watch` at [`archive::Step::Renamed`] (the live file
    /// has its number, the new one is not created yet).
    pub fn rotate_watched(
        &mut self,
        watch: &mut dyn FnMut(archive::Step),
    ) -> Result<u64, TableError> {
        self.follow()?;
        // The numbered file is complete and durable before it leaves the live name.
        self.sync()?;
        let path = self.path.clone();
        let rotate_err = |source| TableError::Rotate {
            path: path.clone(),
            source,
        };
        let seq = archive::next_seq(&self.dir, &self.spec)?;
        let target = archive::segment_path(&self.dir, &self.spec, seq, false);
        archive::rename_no_replace(&self.path, &target).map_err(rotate_err)?;
        safe_file::sync_dir(&self.dir).map_err(rotate_err)?;
        watch(archive::Step::Renamed);
        *self = TableFile::open(&self.dir, &self.spec)?;
        safe_file::sync_dir(&self.dir).map_err(rotate_err)?;
        log::info!("rotated {} to {}", self.path.display(), target.display());
        Ok(seq)
    }
}

/// The sidecar holds the column names joined by `,`, without a newline. It is replaced
/// atomically, and only when its content differs, so readers never see a half-written one.
/// A link at either name is replaced, never followed (see [`safe_file`]).
fn write_headers(dir: &Path, spec: &TableSpec) -> Result<(), TableError> {
    let path = dir.join(format!("{}_headers", spec.name));
    let content = spec.columns.join(",");
    if safe_file::read(&path).is_ok_and(|existing| existing == content.as_bytes()) {
        return Ok(());
    }
    let tmp = dir.join(format!(".{}_headers.tmp", spec.name));
    safe_file::replace(dir, &tmp, &path, content.as_bytes())
        .map_err(|source| TableError::Headers { path, source })
}
