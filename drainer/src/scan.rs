//! Finding ring files and deciding which ones may be drained.
//!
//! Everything in the ring directory is untrusted. A candidate is any entry whose name does
//! not start with `.` (the ring crate builds rings under a hidden temporary name and renames
//! them when complete, and the drainer's own lock lives there too, so hidden names are
//! skipped silently). A candidate is drained only if it is a regular file owned by an
//! allowed user and validates as a ring; anything else is reported once through
//! [`SkipLog`].

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use perf_ring::ConsumerRing;

/// The users whose ring files are drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedUids(Vec<u32>);

impl AllowedUids {
    /// The drainer's own effective uid, root, and `extra`.
    pub fn with_defaults(extra: &[u32]) -> AllowedUids {
        let mut uids = vec![nix::unistd::geteuid().as_raw(), 0];
        uids.extend_from_slice(extra);
        uids.sort_unstable();
        uids.dedup();
        AllowedUids(uids)
    }

    /// Whether `uid` may own a ring.
    pub fn allows(&self, uid: u32) -> bool {
        self.0.contains(&uid)
    }

    /// The uids, sorted.
    pub fn uids(&self) -> &[u32] {
        &self.0
    }

    fn describe(&self) -> String {
        let list: Vec<String> = self.0.iter().map(u32::to_string).collect();
        list.join(", ")
    }
}

/// Lists the candidate ring paths in `dir`, sorted. A missing directory has none.
pub fn candidates(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        paths.push(entry.path());
    }
    paths.sort();
    Ok(paths)
}

/// Why a candidate is not drained.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Opens `path` as a ring if it is a valid ring owned by an allowed user; otherwise says
/// why not, in words fit for a log line.
///
/// The type and owner are checked on `lstat` first, so a symlink or a foreign file is never
/// opened, and the owner again on the opened file (the path may have been swapped between).
pub fn open_candidate(path: &Path, allowed: &AllowedUids) -> Result<ConsumerRing, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{}, not a ring file", kind_of(&meta)));
    }
    let owner_reason = |uid: u32| {
        format!(
            "owned by uid {uid}, not an allowed user (allowed uids: {})",
            allowed.describe()
        )
    };
    if !allowed.allows(meta.uid()) {
        return Err(owner_reason(meta.uid()));
    }
    let ring = ConsumerRing::open(path).map_err(|e| format!("not a valid ring: {e}"))?;
    if !allowed.allows(ring.owner_uid()) {
        return Err(owner_reason(ring.owner_uid()));
    }
    Ok(ring)
}

/// Remembers which paths were reported as skipped and why, so that each problem is logged
/// once (and again only when its reason changes or the file comes back after going away),
/// not at every scan.
#[derive(Debug, Default)]
pub struct SkipLog {
    reported: HashMap<PathBuf, String>,
    seen: HashMap<PathBuf, String>,
}

impl SkipLog {
    /// Starts a scan.
    pub fn begin(&mut self) {
        self.seen.clear();
    }

    /// Records that `path` is skipped for `reason`; logs it if that is news.
    pub fn skip(&mut self, path: &Path, reason: String) {
        if self.reported.get(path) != Some(&reason) {
            log::warn!("skipping {}: {reason}", path.display());
        }
        self.seen.insert(path.to_path_buf(), reason);
    }

    /// Ends a scan: paths not skipped in it are forgotten.
    pub fn end(&mut self) {
        std::mem::swap(&mut self.reported, &mut self.seen);
    }

    /// Number of paths skipped in the last complete scan.
    pub fn len(&self) -> usize {
        self.reported.len()
    }

    /// Whether the last complete scan skipped nothing.
    pub fn is_empty(&self) -> bool {
        self.reported.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_names_are_not_candidates_and_a_missing_dir_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".x.ring.tmp"), b"").unwrap();
        std::fs::write(dir.path().join("b.ring"), b"").unwrap();
        std::fs::write(dir.path().join("a"), b"").unwrap();
        assert_eq!(
            candidates(dir.path()).unwrap(),
            vec![dir.path().join("a"), dir.path().join("b.ring")]
        );
        assert!(candidates(&dir.path().join("nope")).unwrap().is_empty());
    }

    #[test]
    fn allowed_uids_hold_self_root_and_extras() {
        let a = AllowedUids::with_defaults(&[4242, 0]);
        assert!(a.allows(0));
        assert!(a.allows(4242));
        assert!(a.allows(nix::unistd::geteuid().as_raw()));
        assert!(!a.allows(4243));
    }
}
