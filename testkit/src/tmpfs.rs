//! A tmpfs mounted on a directory for one test: full and read-only storage on demand.
//!
//! Mounting needs root (CI runs as root); where it is refused, [`Tmpfs::mount`] says why and
//! the test prints `SKIPPED: …` rather than pretending.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted on a directory; lazily unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on `at`; `Err` with the
    /// reason when mounting is not permitted here.
    pub fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Tmpfs {
                at: at.to_path_buf(),
            })
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.at
    }

    /// Remounts with `opts` (`ro` or `rw`), retrying for up to 10 s: `ro` is refused while
    /// a file is open for writing, which the drainer does only during a commit.
    pub fn remount(&self, opts: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("mount")
                .args(["-o", &format!("remount,{opts}")])
                .arg(&self.at)
                .output()
                .expect("run mount");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < end,
                "remount,{opts}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Fills the file system with one file named `name`, leaving about `leave` bytes free
    /// (tmpfs counts whole pages). Returns the filler's path.
    pub fn fill(&self, name: &str, leave: u64) -> PathBuf {
        let path = self.at.join(name);
        let mut f = std::fs::File::create(&path).expect("create filler");
        let chunk = vec![b'x'; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..4096]).is_ok() {}
        while f.write_all(b"x").is_ok() {}
        let len = f.metadata().map_or(0, |m| m.len());
        f.set_len(len.saturating_sub(leave)).expect("shrink filler");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // A read-only leftover would keep the temp dir from being removed: make it
        // writable, then detach it.
        let _ = Command::new("mount")
            .args(["-o", "remount,rw"])
            .arg(&self.at)
            .output();
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}
