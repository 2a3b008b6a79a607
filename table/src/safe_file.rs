//! Creating, replacing and reading files in a storage directory without trusting what is
//! already there.
//!
//! Both daemons run as root in a directory that other tools (and people) also write to. A
//! name there may already be a symbolic link, a hard link to another file, or a FIFO that
//! someone planted (or that a crashed run left behind). Everything the daemons create or
//! replace goes through here:
//!
//! - a new file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`: it is a fresh inode or the
//!   call fails, so no link is ever followed or truncated ([`create_new`]);
//! - a fixed temporary name is first unlinked (which removes a link itself, never its
//!   target) and then created that way ([`create_temporary`], used by [`replace`]);
//! - an existing file is opened with `O_NOFOLLOW | O_NONBLOCK` and must be a regular file,
//!   so a link is refused and a FIFO cannot block the daemon ([`open_existing`], [`read`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Mode of every file the daemons create: readable by analysis scripts, written by us.
pub const FILE_MODE: u32 = 0o644;

/// Creates `path` as a new, empty regular file open for writing; fails with
/// `AlreadyExists` if anything (a file, a link, a FIFO) has that name.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Creates the temporary `tmp` afresh: whatever has that name is unlinked first (a stale
/// temporary of a crashed run, or a planted link), then the name is created exclusively.
/// If someone recreates the name in between, this fails rather than follow it.
pub fn create_temporary(tmp: &Path) -> io::Result<File> {
    match std::fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    create_new(tmp)
}

/// Replaces `path` atomically and durably with `content`: written to the temporary `tmp`
/// (created with [`create_temporary`]), synced, renamed over `path` (a rename replaces a
/// link at `path`, never its target), and the directory synced. On error the temporary
/// is removed.
pub fn replace(dir: &Path, tmp: &Path, path: &Path, content: &[u8]) -> io::Result<()> {
    let result = (|| {
        let mut file = create_temporary(tmp)?;
        file.write_all(content)?;
        file.sync_data()?;
        std::fs::rename(tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// Makes renames, creations and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens an existing regular file without following a link at `path` and without blocking
/// on a FIFO. `write` opens it read-write (never truncating).
pub fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    ensure_regular(&file)?;
    Ok(file)
}

/// Reads a whole regular file (see [`open_existing`]).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open_existing(path, false)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Fails with `InvalidInput` unless `file` is a regular file.
pub fn ensure_regular(file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn create_new_never_follows_or_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        assert!(create_new(&link).is_err());
        let hard = dir.path().join("hard");
        std::fs::hard_link(&victim, &hard).unwrap();
        assert!(create_new(&hard).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn replace_removes_a_planted_temporary_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let tmp = dir.path().join(".x.tmp");
        let path = dir.path().join("x");
        symlink(&victim, &tmp).unwrap();
        replace(dir.path(), &tmp, &path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!tmp.exists());

        // A hard link at the temporary's name: unlinked, the other name keeps its content.
        std::fs::hard_link(&victim, &tmp).unwrap();
        replace(dir.path(), &tmp, &path, b"newer").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"newer");
    }

    #[test]
    fn reading_refuses_links_and_does_not_block_on_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"secret").unwrap();
        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        assert!(read(&link).is_err());
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        assert!(read(&fifo).is_err());
        assert!(open_existing(&fifo, true).is_err());
        assert_eq!(read(&victim).unwrap(), b"secret");
    }
}
