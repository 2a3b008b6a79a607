//! Everything that can be wrong with a ring, each saying what and with which value.

use std::io;
use std::path::PathBuf;

/// Why a ring could not be created, opened or read.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// The file is shorter than a header, or than its capacity says.
    #[error("truncated: {len} bytes, a ring needs at least {need}")]
    Truncated { len: u64, need: u64 },
    /// Not a ring file (or one whose creator has not finished initialising it).
    #[error("wrong magic {found:#018x} (not a ring file)")]
    BadMagic { found: u64 },
    /// A ring of a format version this build does not know.
    #[error(
        "unsupported format version {found} (this build reads version {})",
        crate::VERSION
    )]
    UnsupportedVersion { found: u32 },
    /// Header or slot size differ from this version's.
    #[error(
        "header size {header_size} / slot size {slot_size} do not match format version {}",
        crate::VERSION
    )]
    BadSizes { header_size: u32, slot_size: u32 },
    /// Capacity zero, not a power of two, or larger than [`crate::MAX_CAPACITY`].
    #[error(
        "capacity {found} is not a power of two between 1 and {}",
        crate::MAX_CAPACITY
    )]
    BadCapacity { found: u64 },
    /// The file size is not header + capacity × slot size.
    #[error("file is {found} bytes, its header says {expected}")]
    SizeMismatch { expected: u64, found: u64 },
    /// More states than the table holds.
    #[error("state count {found} exceeds the table size {}", crate::MAX_STATES)]
    BadStateCount { found: u32 },
    /// A state name outside `[A-Z][A-Z0-9_]*` or longer than 32 bytes.
    #[error("state name #{index} {found:?} is not [A-Z][A-Z0-9_]* of at most 32 bytes")]
    BadStateName { index: usize, found: String },
    /// A service name outside `[A-Za-z0-9._-]`, empty, or longer than 63 bytes.
    #[error("service name {found:?} is not 1-63 bytes of [A-Za-z0-9._-]")]
    BadServiceName { found: String },
    /// The path is a symlink, directory, FIFO, device or anything but a regular file.
    #[error("not a regular file")]
    NotRegularFile,
    /// The file was truncated or replaced under the mapping; its contents are gone.
    #[error("file was truncated while mapped")]
    Vanished,
    /// The path now names another file than the ring that was opened from it (renamed over
    /// or recreated since), so it was left alone.
    #[error("the path now names another file than the ring opened from it; left alone")]
    Replaced,
    /// A read position outside what the ring can hold.
    #[error("position {pos} is outside the ring (released {released}, capacity {capacity})")]
    BadPosition {
        pos: u64,
        released: u64,
        capacity: u64,
    },
    /// Too many rings are mapped at once by this consumer.
    #[error("too many rings mapped at once (limit {limit})")]
    TooManyMapped { limit: usize },
    /// A system call failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl RingError {
    #[cfg_attr(perf_ring_loom, allow(dead_code))]
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        RingError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
