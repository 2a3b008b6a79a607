//! Finding ring files and deciding which ones may be drained.
//!
//! Everything in the ring directory is untrusted. A candidate is any entry whose name does
//! not start with `.` (the ring crate builds rings under a hidden temporary name and renames
//! them when complete, and the drainer's own lock lives there too, so hidden names are
//! skipped silently). A candidate is drained only if it is a regular file owned by an
//! allowed user and validates as a ring; anything else is reported once through
//! [`SkipLog`], with a [`SkipReason`] that reads as a log line and serialises for scripts.

use std::collections::HashMap;
use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use perf_ring::{ConsumerRing, RingError};
use serde::Serialize;

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
}

/// What one listing of the ring directory found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Candidate rings: every entry whose name does not start with `.`, sorted.
    pub rings: Vec<PathBuf>,
    /// Hidden entries named like the temporary a ring is built under (see
    /// [`perf_ring::stale`]), to be removed when their creator is gone.
    pub temporaries: Vec<PathBuf>,
}

/// Lists the ring directory `dir`. A missing directory has nothing in it.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
        Err(e) => return Err(e),
    };
    let mut listing = Listing::default();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().first() != Some(&b'.') {
            listing.rings.push(entry.path());
        } else if perf_ring::stale::temporary_creator(&name).is_some() {
            listing.temporaries.push(entry.path());
        }
    }
    listing.rings.sort();
    Ok(listing)
}

/// Lists the candidate ring paths in `dir`, sorted. A missing directory has none.
pub fn candidates(dir: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(list(dir)?.rings)
}

/// What kind of entry a candidate that is not a regular file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Symlink,
    Directory,
    Fifo,
    Socket,
    Device,
    /// Anything else that is not a regular file.
    Other,
}

impl EntryKind {
    fn of(meta: &Metadata) -> EntryKind {
        let t = meta.file_type();
        if t.is_symlink() {
            EntryKind::Symlink
        } else if t.is_dir() {
            EntryKind::Directory
        } else if t.is_fifo() {
            EntryKind::Fifo
        } else if t.is_socket() {
            EntryKind::Socket
        } else if t.is_block_device() || t.is_char_device() {
            EntryKind::Device
        } else {
            EntryKind::Other
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Symlink => "a symlink",
            EntryKind::Directory => "a directory",
            EntryKind::Fifo => "a FIFO",
            EntryKind::Socket => "a socket",
            EntryKind::Device => "a device",
            EntryKind::Other => "not a regular file",
        })
    }
}

/// Why a candidate is not drained. `Display` is the text of the log line and of
/// `status`; serialised (for `status --json`) it is `{"kind": "...", ...details}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// `lstat` failed.
    Stat { error: String },
    /// Not a regular file.
    NotAFile { entry: EntryKind },
    /// The file (or the ring opened from it) is owned by a user not allowed.
    Owner { uid: u32, allowed: Vec<u32> },
    /// The file does not validate as a ring.
    Invalid { error: String },
    /// Another file already drained claims the same ring id.
    DuplicateId {
        #[serde(serialize_with = "hex")]
        ring_id: u64,
        drained_from: PathBuf,
    },
    /// A finished ring whose file could not be removed.
    Unremovable { error: String },
}

/// Ring ids in hex, as in the file names (and exact, unlike a JSON number above 2^53).
fn hex<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{id:016x}"))
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Stat { error } => write!(f, "cannot stat: {error}"),
            SkipReason::NotAFile { entry } => write!(f, "{entry}, not a ring file"),
            SkipReason::Owner { uid, allowed } => {
                let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "owned by uid {uid}, not an allowed user (allowed uids: {})",
                    list.join(", ")
                )
            }
            SkipReason::Invalid { error } => write!(f, "not a valid ring: {error}"),
            SkipReason::DuplicateId {
                ring_id,
                drained_from,
            } => write!(
                f,
                "ring id {ring_id:016x} is already being drained from {}",
                drained_from.display()
            ),
            SkipReason::Unremovable { error } => {
                write!(f, "drained, but cannot be removed: {error}")
            }
        }
    }
}

/// Why a candidate was not opened.
#[derive(Debug)]
pub enum Unopened {
    /// It is not a ring to drain.
    Skip(SkipReason),
    /// It may well be one, but this process is out of descriptors, memory or mapping
    /// slots (`EMFILE`, `ENFILE`, `ENOMEM`, [`RingError::TooManyMapped`]): try again later.
    Exhausted(RingError),
}

impl From<SkipReason> for Unopened {
    fn from(why: SkipReason) -> Unopened {
        Unopened::Skip(why)
    }
}

impl Unopened {
    /// As a [`SkipReason`], for a report that shows every entry.
    pub fn into_reason(self) -> SkipReason {
        match self {
            Unopened::Skip(why) => why,
            Unopened::Exhausted(e) => SkipReason::Invalid {
                error: e.to_string(),
            },
        }
    }
}

/// Whether opening a ring failed for want of this process's resources, not for anything
/// about the file.
fn exhausted(e: &RingError) -> bool {
    match e {
        RingError::TooManyMapped { .. } => true,
        RingError::Io { source, .. } => matches!(
            source.raw_os_error(),
            Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOMEM)
        ),
        _ => false,
    }
}

/// Opens `path` as a ring if it is a valid ring owned by an allowed user; otherwise says
/// why not.
///
/// The type and owner are checked on `lstat` first, so a symlink or a foreign file is never
/// opened, and the owner again on the opened file (the path may have been swapped between).
pub fn open_candidate(path: &Path, allowed: &AllowedUids) -> Result<ConsumerRing, Unopened> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        Unopened::Skip(SkipReason::Stat {
            error: e.to_string(),
        })
    })?;
    if !meta.file_type().is_file() {
        return Err(SkipReason::NotAFile {
            entry: EntryKind::of(&meta),
        }
        .into());
    }
    let owner = |uid: u32| SkipReason::Owner {
        uid,
        allowed: allowed.uids().to_vec(),
    };
    if !allowed.allows(meta.uid()) {
        return Err(owner(meta.uid()).into());
    }
    let ring = ConsumerRing::open(path).map_err(|e| {
        if exhausted(&e) {
            Unopened::Exhausted(e)
        } else {
            Unopened::Skip(SkipReason::Invalid {
                error: e.to_string(),
            })
        }
    })?;
    if !allowed.allows(ring.owner_uid()) {
        return Err(owner(ring.owner_uid()).into());
    }
    Ok(ring)
}

/// Remembers which paths were reported as skipped and why, so that each problem is logged
/// once (and again only when its reason changes or the file comes back after going away),
/// not at every scan.
#[derive(Debug, Default)]
pub struct SkipLog {
    reported: HashMap<PathBuf, SkipReason>,
    seen: HashMap<PathBuf, SkipReason>,
}

impl SkipLog {
    /// Starts a scan.
    pub fn begin(&mut self) {
        self.seen.clear();
    }

    /// Records that `path` is skipped for `reason`; logs it if that is news.
    pub fn skip(&mut self, path: &Path, reason: SkipReason) {
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

    #[test]
    fn reasons_read_as_before_and_serialise_with_a_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/nowhere", dir.path().join("l")).unwrap();
        std::fs::write(dir.path().join("junk"), b"not a ring").unwrap();
        let allowed = AllowedUids::with_defaults(&[]);
        let why = open_candidate(&dir.path().join("l"), &allowed)
            .unwrap_err()
            .into_reason();
        assert_eq!(why.to_string(), "a symlink, not a ring file");
        assert_eq!(
            serde_json::to_value(&why).unwrap(),
            serde_json::json!({"kind": "not_a_file", "entry": "symlink"})
        );
        let why = open_candidate(&dir.path().join("junk"), &allowed)
            .unwrap_err()
            .into_reason();
        assert!(why.to_string().starts_with("not a valid ring: "), "{why}");
        assert_eq!(serde_json::to_value(&why).unwrap()["kind"], "invalid");
        let why = open_candidate(&dir.path().join("gone"), &allowed)
            .unwrap_err()
            .into_reason();
        assert!(matches!(why, SkipReason::Stat { .. }), "{why:?}");

        let owner = SkipReason::Owner {
            uid: 54321,
            allowed: vec![0, 1000],
        };
        assert_eq!(
            owner.to_string(),
            "owned by uid 54321, not an allowed user (allowed uids: 0, 1000)"
        );
        let dup = SkipReason::DuplicateId {
            ring_id: u64::MAX,
            drained_from: "/r/a.ring".into(),
        };
        assert_eq!(
            dup.to_string(),
            "ring id ffffffffffffffff is already being drained from /r/a.ring"
        );
        assert_eq!(
            serde_json::to_value(&dup).unwrap(),
            serde_json::json!({"kind": "duplicate_id", "ring_id": "ffffffffffffffff", "drained_from": "/r/a.ring"})
        );
    }
}
