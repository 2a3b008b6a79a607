//! Rotated files: bounded storage for a table that is appended to for months.
//!
//! The live file keeps its name and format, so scripts that read `robot_activity_data`
//! keep working. When it reaches its cap ([`Rotation`]) it is renamed to the next number,
//! `<name>.<seq>`, and a new empty live file takes its place ([`TableFile::rotate`]); the
//! numbered file is then compressed to `<name>.<seq>.gz` and the oldest numbered files
//! beyond the number to keep are removed ([`settle`]). Numbers only grow: `<name>.1.gz` is
//! the oldest data, the highest number the newest, and the live file comes after all of
//! them ([`segments`] lists them in that order). A number names one piece of data for
//! good: nothing is ever renamed from one number to another, so there is no shuffle that a
//! crash could leave half done.
//!
//! # Crash safety
//!
//! Each step is atomic, durable (the directory is synced) and can be redone:
//!
//! | killed | on disk | what the next [`settle`] (or reader) does |
//! | --- | --- | --- |
//! | before the rename | only the live file | nothing to do |
//! | after the rename, before the new live file | `<name>.<seq>`, no live file | opening the table creates it |
//! | while compressing | `<name>.<seq>` and a temporary `.<name>.<seq>.gz.tmp` | removes the temporary, compresses again |
//! | after the `.gz` rename, before the unlink | `<name>.<seq>` and `<name>.<seq>.gz`, identical | readers use `<name>.<seq>`; `settle` removes it |
//! | while pruning | some old numbers gone | removes the rest |
//!
//! # Rotating inside a transaction (the drainer)
//!
//! A caller that records the live file's identity and length in its own checkpoint (the
//! drainer, exactly once) rotates in steps it controls, only right after a commit (so the
//! live file holds exactly the checkpointed bytes):
//!
//! 1. [`TableFile::rotate`]: the live file becomes `<name>.<seq>` (complete, every byte
//!    committed), an empty live file takes its path;
//! 2. store the checkpoint naming the new live file (its [`TableFile::identity`], length
//!    0). A kill between 1 and 2 leaves a checkpoint naming the old inode, now the
//!    numbered file: on start the live file is "not the file the checkpoint describes",
//!    which the drainer already treats as "append to it as it is" — correct, because the
//!    numbered file holds exactly the committed rows and the new one nothing;
//! 3. [`settle`] (compress, prune): nothing in the checkpoint refers to numbered files, so
//!    a kill here only leaves work for the next `settle`, which the drainer runs at start
//!    after reconciling the live file with its checkpoint.
//!
//! Decide with [`Rotation::due`] before appending a round, or right after a commit.

use std::fs;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::safe_file;
use crate::table::{TableError, TableFile, TableSpec};

/// When to rotate a table and how many rotated files to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// The live file is rotated before an append would take it past this many bytes
    /// (a single append larger than this still goes into a fresh live file whole).
    pub max_bytes: u64,
    /// Rotated (compressed) files kept; older ones are removed. Zero keeps none.
    pub keep: usize,
}

impl Rotation {
    /// Whether a live file of `live_len` bytes should be rotated before `incoming` more
    /// bytes are appended. An empty live file never is.
    pub fn due(&self, live_len: u64, incoming: u64) -> bool {
        live_len > 0 && live_len.saturating_add(incoming) > self.max_bytes
    }
}

/// A point inside a rotation, reached with every step before it durable. A caller with a
/// transaction of its own watches them ([`TableFile::rotate_watched`],
/// [`settle_watched`]): the drainer's crash tests kill it at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The live file has its number; no live file at the path yet.
    Renamed,
    /// A compressed copy is complete in its temporary, not yet under its `.gz` name.
    Compressing,
    /// The `.gz` file is in place; the plain numbered file is still there.
    Compressed,
    /// One numbered file beyond the number to keep was removed.
    Removed,
}

/// One rotated file of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Its number: higher is newer.
    pub seq: u64,
    /// Where it is.
    pub path: PathBuf,
    /// Whether it is gzip-compressed (`.gz`) or still plain (a rotation not yet settled).
    pub compressed: bool,
}

impl Segment {
    /// The segment's rows, decompressed: exactly the bytes the live file held when it was
    /// rotated. Links are not followed.
    ///
    /// A plain file compressed and removed since it was listed (a writer's [`settle`] ran
    /// in between) is read from its `.gz` instead.
    pub fn open(&self) -> io::Result<Box<dyn Read>> {
        let gz = |file| -> Box<dyn Read> { Box::new(MultiGzDecoder::new(BufReader::new(file))) };
        match safe_file::open_existing(&self.path, false) {
            Ok(file) if self.compressed => Ok(gz(file)),
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.compressed => {
                let mut name = self.path.clone().into_os_string();
                name.push(".gz");
                Ok(gz(safe_file::open_existing(Path::new(&name), false)?))
            }
            Err(e) => Err(e),
        }
    }
}

/// Every row of `spec` in `dir` as one byte string, oldest first: each rotated file
/// decompressed, then the live file (either may be missing). The whole history in memory,
/// for tests and small tables; a tool reading months of rows streams [`segments`] and the
/// live file instead.
pub fn history(dir: &Path, spec: &TableSpec) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for seg in segments(dir, spec)? {
        seg.open()?.read_to_end(&mut out)?;
    }
    match safe_file::open_existing(&dir.join(spec.name), false) {
        Ok(mut live) => {
            live.read_to_end(&mut out)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(out)
}

/// Path of rotated file `seq` of `spec` in `dir`.
pub fn segment_path(dir: &Path, spec: &TableSpec, seq: u64, compressed: bool) -> PathBuf {
    let gz = if compressed { ".gz" } else { "" };
    dir.join(format!("{}.{seq}{gz}", spec.name))
}

fn temporary_path(dir: &Path, spec: &TableSpec, seq: u64) -> PathBuf {
    dir.join(format!(".{}.{seq}.gz.tmp", spec.name))
}

/// What a directory entry's name is to this table's rotation.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    Segment { seq: u64, compressed: bool },
    Temporary,
}

fn parse_name(spec: &TableSpec, name: &str) -> Option<Name> {
    let number = |s: &str| -> Option<u64> {
        let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
        ok.then(|| s.parse().ok()).flatten()
    };
    if let Some(rest) = name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(spec.name))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".gz.tmp"))
    {
        return number(rest).map(|_| Name::Temporary);
    }
    let rest = name.strip_prefix(spec.name)?.strip_prefix('.')?;
    match rest.strip_suffix(".gz") {
        Some(n) => number(n).map(|seq| Name::Segment {
            seq,
            compressed: true,
        }),
        None => number(rest).map(|seq| Name::Segment {
            seq,
            compressed: false,
        }),
    }
}

/// The rotated files of `spec` in `dir`, oldest first. When a number exists both plain and
/// compressed (a kill between the compressed file's rename and the plain file's removal)
/// the plain one is listed: it is complete by construction.
pub fn segments(dir: &Path, spec: &TableSpec) -> io::Result<Vec<Segment>> {
    let mut found = std::collections::BTreeMap::<u64, Segment>::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some(Name::Segment { seq, compressed }) = parse_name(spec, &name) {
            let seg = Segment {
                seq,
                path: entry.path(),
                compressed,
            };
            match found.get(&seq) {
                Some(existing) if !existing.compressed => {}
                _ => {
                    found.insert(seq, seg);
                }
            }
        }
    }
    Ok(found.into_values().collect())
}

/// The number the next rotation takes: one past the highest present (1 for the first).
pub fn next_seq(dir: &Path, spec: &TableSpec) -> Result<u64, TableError> {
    let segs = segments(dir, spec).map_err(|source| TableError::Archive {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(segs.last().map_or(1, |s| s.seq.saturating_add(1)))
}

/// Renames `from` to `to`, failing if `to` exists (rotation never overwrites data).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    match renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        // A file system without RENAME_NOREPLACE: check, then rename. Only this writer
        // creates numbered names, so nothing can appear in between.
        Err(nix::errno::Errno::EINVAL) => {
            if fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// What [`settle`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    /// Numbers compressed now.
    pub compressed: Vec<u64>,
    /// Numbers removed because more than `keep` were present.
    pub removed: Vec<u64>,
}

/// Finishes every rotation of `spec` in `dir`: removes temporaries of interrupted
/// compressions, compresses every plain numbered file, then removes the oldest numbered
/// files beyond `keep`. Safe to call at any time, any number of times (see the module
/// documentation for the states a kill can leave).
pub fn settle(dir: &Path, spec: &TableSpec, keep: usize) -> Result<Settled, TableError> {
    settle_watched(dir, spec, keep, &mut |_| {})
}

/// [`settle`], calling `watch` at each [`Step`] it reaches.
pub fn settle_watched(
    dir: &Path,
    spec: &TableSpec,
    keep: usize,
    watch: &mut dyn FnMut(Step),
) -> Result<Settled, TableError> {
    settle_through(dir, spec, keep, u64::MAX, watch)
}

/// [`settle_watched`] for the numbered files up to `through` only (compressed, and counted
/// against `keep`); higher numbers are left alone. A writer that settles in the background
/// while it rotates passes the last number its own checkpoint no longer names: a file
/// renamed since may still be named by the checkpoint in force, so its inode must not be
/// freed yet (see the module documentation).
pub fn settle_through(
    dir: &Path,
    spec: &TableSpec,
    keep: usize,
    through: u64,
    watch: &mut dyn FnMut(Step),
) -> Result<Settled, TableError> {
    let archive_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TableError::Archive { path, source }
    };
    let mut done = Settled::default();
    let entries = fs::read_dir(dir).map_err(archive_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(archive_err(dir))?;
        let name = entry.file_name();
        if parse_name(spec, &name.to_string_lossy()) == Some(Name::Temporary) {
            let _ = fs::remove_file(entry.path());
        }
    }
    let mut segs = segments(dir, spec).map_err(archive_err(dir))?;
    segs.retain(|s| s.seq <= through);
    let excess = segs.len().saturating_sub(keep);
    for (i, seg) in segs.iter().enumerate() {
        if i < excess {
            // Pruned anyway: no point compressing it first.
            for compressed in [false, true] {
                let path = segment_path(dir, spec, seg.seq, compressed);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(archive_err(&path)(e)),
                }
            }
            log::info!("removed rotated {} (keeping {keep})", seg.path.display());
            done.removed.push(seg.seq);
            watch(Step::Removed);
        } else if !seg.compressed {
            compress(dir, spec, seg.seq, watch)?;
            done.compressed.push(seg.seq);
        }
    }
    safe_file::sync_dir(dir).map_err(archive_err(dir))?;
    Ok(done)
}

/// Compresses plain numbered file `seq` to `<name>.<seq>.gz`, durably, then removes it.
fn compress(
    dir: &Path,
    spec: &TableSpec,
    seq: u64,
    watch: &mut dyn FnMut(Step),
) -> Result<(), TableError> {
    let plain = segment_path(dir, spec, seq, false);
    let gz = segment_path(dir, spec, seq, true);
    let tmp = temporary_path(dir, spec, seq);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TableError::Archive { path, source }
    };
    if gz.exists() {
        // Compressed before a kill; the plain copy was not removed yet.
        return fs::remove_file(&plain).map_err(err(&plain));
    }
    let result = (|| {
        let mut src = safe_file::open_existing(&plain, false)?;
        let out = safe_file::create_temporary(&tmp)?;
        let mut enc = GzEncoder::new(io::BufWriter::new(out), Compression::default());
        io::copy(&mut src, &mut enc)?;
        let out = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_data()?;
        Ok(())
    })();
    let result = result.and_then(|()| {
        watch(Step::Compressing);
        fs::rename(&tmp, &gz)?;
        safe_file::sync_dir(dir)
    });
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(TableError::Archive {
            path: plain,
            source,
        });
    }
    watch(Step::Compressed);
    fs::remove_file(&plain).map_err(err(&plain))
}

/// Rotates `table` if `rotation` says so before `incoming` bytes, and settles: the whole
/// rotation in one call, for a writer without its own checkpoint (the tracker). Returns
/// the number rotated to, if any.
pub fn rotate_if_due(
    table: &mut TableFile,
    rotation: &Rotation,
    incoming: u64,
) -> Result<Option<u64>, TableError> {
    if !rotation.due(table.len(), incoming) {
        return Ok(None);
    }
    let seq = table.rotate()?;
    settle(table.dir(), &table.spec(), rotation.keep)?;
    Ok(Some(seq))
}

/// Parses a size in bytes as the daemons' flags take it: a whole number, optionally
/// followed by `K`, `M` or `G` (powers of 1024, as systemd's sizes; `KiB`, `MB` and the
/// like are read the same way), e.g. `64M`.
pub fn parse_size(value: &str) -> Option<u64> {
    let s = value.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let n: u64 = digits.parse().ok()?;
    let unit = unit.trim_start().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let factor: u64 = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}
