//! Temporaries left behind by producers that died while creating their ring.
//!
//! [`crate::ProducerRing::create`] builds a ring under the hidden name
//! `.<service>-<pid>-<ring id>.ring.tmp` and renames it when it is complete. From just after
//! the file is made until that rename the creator holds the ring's shared liveness lock on
//! it. A creator killed in between leaves the temporary behind, fully allocated (up to
//! 128 MiB of shared memory), and nothing else would ever remove it: the consumer does,
//! with [`remove_if_stale`].
//!
//! The name is untrusted (anyone who may write the ring directory can plant one): it is
//! only parsed, never used as anything but a name in the directory; the file must be a
//! regular file owned by an allowed user, nobody may hold its lock, and its creator must
//! be gone: the pid in its name no longer runs and the file is at least
//! [`DEAD_CREATOR_GRACE`] old, or, whatever that pid is now (reused, or in another pid
//! namespace), the file is at least [`UNFINISHED_AGE`] old. A creator holds the lock
//! within microseconds of making the file, so neither rule can take a ring being built.

use std::ffi::OsStr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::RingError;

/// Suffix of a ring's temporary name (after the final name `….ring`).
const SUFFIX: &str = ".ring.tmp";

/// A temporary whose creator no longer runs is removed once it is this old.
pub const DEAD_CREATOR_GRACE: Duration = Duration::from_secs(1);

/// A temporary nobody holds the lock of is removed once it is this old, even if a process
/// with its creator's pid runs (pid reuse, another pid namespace).
pub const UNFINISHED_AGE: Duration = Duration::from_secs(60);

/// The temporary name a ring named `final_name` is built under.
pub(crate) fn temp_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

/// The creator's pid that the name of a ring temporary carries, or `None` when `name` is
/// not `.<service>-<pid>-<16 hex digits>.ring.tmp`.
pub fn temporary_creator(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    let stem = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (rest, id) = stem.rsplit_once('-')?;
    let (service, pid) = rest.rsplit_once('-')?;
    let hex = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    if service.is_empty() || !hex || !digits {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process `pid` runs, as far as this process can tell (`kill(pid, 0)`); pids
/// that cannot be a process's (0, or past `i32::MAX`) count as running: no answer.
fn runs(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 only checks that `pid` exists and may be signalled; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the ring temporary at `path` if its creator is gone (see the module docs) and
/// its owner is one `allowed` accepts. Returns its size when it was removed, `None` when it
/// is not a stale temporary (not one by name, type or owner, or its creator may still be
/// at work).
pub fn remove_if_stale(
    path: &Path,
    allowed: &dyn Fn(u32) -> bool,
) -> Result<Option<u64>, RingError> {
    let Some(pid) = path.file_name().and_then(temporary_creator) else {
        return Ok(None);
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RingError::io("cannot stat", path, e)),
    };
    if !meta.file_type().is_file() || !allowed(meta.uid()) {
        return Ok(None);
    }
    // Its age from the last change of its contents (the creator makes it, allocates it
    // and writes its header in one go); a clock step back makes it look young, never old.
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    let gone = (age >= DEAD_CREATOR_GRACE && !runs(pid)) || age >= UNFINISHED_AGE;
    if !gone {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| RingError::io("cannot open", path, e))?;
    let opened = file
        .metadata()
        .map_err(|e| RingError::io("cannot stat", path, e))?;
    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
        return Ok(None);
    }
    // SAFETY: the descriptor is owned by `file` and open for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        // Someone holds the liveness lock: a creator still at work.
        return Ok(None);
    }
    // Held until the file is gone; the name must still be the file checked.
    let now = std::fs::symlink_metadata(path).map_err(|e| RingError::io("cannot stat", path, e))?;
    if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
        return Ok(None);
    }
    std::fs::remove_file(path).map_err(|e| RingError::io("cannot remove", path, e))?;
    Ok(Some(meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_old(path: &Path, secs: u64) {
        let then = SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn names_are_parsed_strictly() {
        let ok = OsStr::new(".robot-server-1234-00112233aabbccdd.ring.tmp");
        assert_eq!(temporary_creator(ok), Some(1234));
        for bad in [
            "robot-server-1234-00112233aabbccdd.ring.tmp",
            ".robot-server-1234-00112233aabbccdd.ring",
            ".robot-server-1234-00112233aabbccd.ring.tmp",
            ".robot-server-12x4-00112233aabbccdd.ring.tmp",
            ".-1234-00112233aabbccdd.ring.tmp",
            ".x--00112233aabbccdd.ring.tmp",
            ".x-99999999999-00112233aabbccdd.ring.tmp",
            ".perf-drainer.lock",
        ] {
            assert_eq!(temporary_creator(OsStr::new(bad)), None, "{bad}");
        }
        assert_eq!(temp_name("a-1-00.ring"), ".a-1-00.ring.tmp");
    }

    #[test]
    fn only_a_temporary_whose_creator_is_gone_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let any = |_: u32| true;
        let name = |pid: u32, n: u8| dir.path().join(format!(".svc-{pid}-{n:016x}.ring.tmp"));
        // A dead creator, and the grace passed: removed.
        let dead = name(dead_pid(), 1);
        std::fs::write(&dead, vec![0; 4096]).unwrap();
        set_old(&dead, 5);
        assert_eq!(remove_if_stale(&dead, &any).unwrap(), Some(4096));
        assert!(!dead.exists());
        // A dead creator, just now: kept until the grace has passed.
        let fresh = name(dead_pid(), 2);
        std::fs::write(&fresh, b"x").unwrap();
        assert_eq!(remove_if_stale(&fresh, &any).unwrap(), None);
        assert!(fresh.exists());
        // A creator that runs (this process), unlocked but young: kept; old: removed.
        let ours = name(std::process::id(), 3);
        std::fs::write(&ours, b"x").unwrap();
        set_old(&ours, 5);
        assert_eq!(remove_if_stale(&ours, &any).unwrap(), None);
        set_old(&ours, 120);
        assert_eq!(remove_if_stale(&ours, &any).unwrap(), Some(1));
        // Old, but someone holds the lock: kept.
        let locked = name(dead_pid(), 4);
        std::fs::write(&locked, b"x").unwrap();
        set_old(&locked, 120);
        let holder = std::fs::File::open(&locked).unwrap();
        // SAFETY: the descriptor is owned by `holder` and open for the whole call.
        assert_eq!(unsafe { libc::flock(holder.as_raw_fd(), libc::LOCK_SH) }, 0);
        assert_eq!(remove_if_stale(&locked, &any).unwrap(), None);
        drop(holder);
        assert_eq!(remove_if_stale(&locked, &any).unwrap(), Some(1));
        // A foreign owner, a symlink, or a name that is not a ring temporary: kept.
        let foreign = name(dead_pid(), 5);
        std::fs::write(&foreign, b"x").unwrap();
        set_old(&foreign, 120);
        assert_eq!(remove_if_stale(&foreign, &|_| false).unwrap(), None);
        let target = dir.path().join("target");
        std::fs::write(&target, b"precious").unwrap();
        set_old(&target, 120);
        let link = name(dead_pid(), 6);
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(remove_if_stale(&link, &any).unwrap(), None);
        assert!(link.exists() && target.exists());
        let other = dir.path().join(".notes.tmp");
        std::fs::write(&other, b"x").unwrap();
        set_old(&other, 120);
        assert_eq!(remove_if_stale(&other, &any).unwrap(), None);
        assert!(other.exists());
    }

    #[test]
    fn a_ring_being_made_now_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let ring = crate::ProducerRing::create(dir.path(), "svc", &["A"], 8).unwrap();
        // Its temporary name is gone once made; and this process, its creator, runs.
        let tmp = dir.path().join(temp_name(
            &ring.path().file_name().unwrap().to_string_lossy(),
        ));
        assert!(!tmp.exists());
        assert_eq!(remove_if_stale(ring.path(), &|_| true).unwrap(), None);
        assert!(ring.path().exists());
    }
}
