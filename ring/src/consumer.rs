//! The consumer's side: open a ring someone else wrote, read it, release it.
//!
//! Everything in the file is untrusted. The header is copied out with `pread` and
//! validated before anything is mapped; afterwards only the validated copy is used, and
//! the mapping is read only through atomics (`RingView`), with every index masked. A file
//! truncated under the mapping is survived through [`crate::sigbus`].

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::core::Counters;
use crate::mapping::{open_existing, Mapped};
use crate::sigbus::{self, Guard};
use crate::{Record, RingError, RingInfo};

/// A ring opened by its (single) consumer.
///
/// ```
/// use perf_ring::{ConsumerRing, ProducerRing, Record};
/// let dir = tempfile::tempdir().unwrap();
/// let producer = ProducerRing::create(dir.path(), "doc", &["CALIBRATING"], 8).unwrap();
/// producer.push(&Record { start_ns: 5, duration_ns: 6, state: 0, tid: 1 }).unwrap();
///
/// let mut consumer = ConsumerRing::open(producer.path()).unwrap();
/// assert!(consumer.producer_alive());
/// let mut batch = Vec::new();
/// assert_eq!(consumer.read_batch(&mut batch, 100).unwrap(), 1);
/// consumer.release(consumer.read_pos()); // after the records are stored durably
/// assert_eq!(consumer.counters().unwrap().released, 1);
/// ```
#[derive(Debug)]
pub struct ConsumerRing {
    // Field order matters: the guard deregisters before the mapping is unmapped.
    guard: Guard,
    mapped: Mapped,
    /// Kept for the liveness probe only; `None` once the producer was seen dead.
    file: Option<File>,
    path: PathBuf,
    info: RingInfo,
    owner_uid: u32,
    inode: (u64, u64),
    read_pos: u64,
}

impl ConsumerRing {
    /// Opens and validates the ring at `path`.
    ///
    /// Refuses symlinks, FIFOs (opened non-blocking, so one cannot hang us), devices and
    /// directories with [`RingError::NotRegularFile`], and any content that is not a valid
    /// ring with the matching [`RingError`].
    pub fn open(path: &Path) -> Result<ConsumerRing, RingError> {
        let (file, meta, info) = open_existing(path)?;
        let mapped = Mapped::map(&file, path, info.capacity)?;
        let guard = sigbus::register(mapped.addr(), mapped.len())?;
        let mut ring = ConsumerRing {
            guard,
            mapped,
            file: Some(file),
            path: path.to_path_buf(),
            info,
            owner_uid: meta.uid(),
            inode: (meta.dev(), meta.ino()),
            read_pos: 0,
        };
        ring.read_pos = ring.mapped.view().released();
        ring.check()?;
        Ok(ring)
    }

    fn check(&self) -> Result<(), RingError> {
        if self.guard.hit() {
            Err(RingError::Vanished)
        } else {
            Ok(())
        }
    }

    /// The validated header.
    pub fn info(&self) -> &RingInfo {
        &self.info
    }

    /// Path the ring was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Uid owning the file (the drainer checks it against the users it accepts).
    pub fn owner_uid(&self) -> u32 {
        self.owner_uid
    }

    /// Whether a producer still holds the ring's lock. Locks die with their process, so a
    /// reused pid cannot fool this.
    ///
    /// The check takes the lock exclusively and lets go at once, so several observers (the
    /// drainer, `perf-drainer status`) can ask without disturbing each other's answer;
    /// only two asking at the very same instant can see "alive" for a dead ring, never the
    /// reverse.
    ///
    /// After [`close_descriptor`](Self::close_descriptor) the answer is always `false`.
    pub fn producer_alive(&self) -> bool {
        let Some(file) = &self.file else {
            return false;
        };
        let fd = file.as_raw_fd();
        // SAFETY: the descriptor is owned by `self.file` and open for the whole call.
        let taken = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if taken {
            // SAFETY: as above; we hold the lock we are releasing.
            unsafe { libc::flock(fd, libc::LOCK_UN) };
        }
        !taken
    }

    /// For a ring whose producer was seen dead (it cannot come back: the lock died with
    /// it): closes the descriptor kept for the liveness probe. The mapping keeps the file,
    /// so draining it to its end and removing it work as before, and the ring then holds no
    /// descriptor: a consumer of many finished rings is not limited by `RLIMIT_NOFILE`.
    pub fn close_descriptor(&mut self) {
        self.file = None;
    }

    /// Whether the ring still holds a descriptor (see [`close_descriptor`](Self::close_descriptor)).
    pub fn holds_descriptor(&self) -> bool {
        self.file.is_some()
    }

    /// Position of the next record to read.
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    /// Moves the read cursor, e.g. to a checkpointed position after a restart. Only
    /// positions between the released one and a full ring ahead of it are accepted.
    pub fn seek(&mut self, pos: u64) -> Result<(), RingError> {
        let released = self.mapped.view().released();
        self.check()?;
        if pos < released || pos - released > self.info.capacity {
            return Err(RingError::BadPosition {
                pos,
                released,
                capacity: self.info.capacity,
            });
        }
        self.read_pos = pos;
        Ok(())
    }

    /// Copies up to `max` published records, in order, onto the end of `out` and advances
    /// the read cursor past them. Returns how many were added. Nothing is released.
    ///
    /// If the file was truncated under us, nothing of this batch is kept and
    /// [`RingError::Vanished`] is returned.
    pub fn read_batch(&mut self, out: &mut Vec<Record>, max: usize) -> Result<usize, RingError> {
        let view = self.mapped.view();
        let before = out.len();
        let mut pos = self.read_pos;
        while out.len() - before < max {
            match view.read(pos) {
                Some(record) => out.push(record),
                None => break,
            }
            pos += 1;
        }
        if let Err(e) = self.check() {
            out.truncate(before);
            return Err(e);
        }
        self.read_pos = pos;
        Ok(out.len() - before)
    }

    /// For a ring whose producer is dead: skips positions that were claimed but never
    /// published (the writer died between claim and publish), up to the next published
    /// record or the claimed end. Returns how many were skipped. Never call it while the
    /// producer lives: a slow writer's record would be lost.
    pub fn skip_unpublished(&mut self) -> Result<u64, RingError> {
        let view = self.mapped.view();
        let counters = view.counters();
        // The claimed count is untrusted: never look further than one ring ahead.
        let end = counters
            .claimed
            .min(self.read_pos.saturating_add(self.info.capacity));
        let mut skipped = 0;
        while self.read_pos < end && view.read(self.read_pos).is_none() {
            self.read_pos += 1;
            skipped += 1;
        }
        self.check()?;
        Ok(skipped)
    }

    /// Lets producers reuse every slot below `pos` (at most the read cursor). Call it only
    /// once the records read are safe elsewhere.
    pub fn release(&mut self, pos: u64) {
        self.mapped.view().release(pos.min(self.read_pos));
    }

    /// The ring's counters right now (claims, not facts: they come from shared memory).
    pub fn counters(&self) -> Result<Counters, RingError> {
        let c = self.mapped.view().counters();
        self.check()?;
        Ok(c)
    }

    /// The file's identity: (device, inode) of the file opened.
    pub fn identity(&self) -> (u64, u64) {
        self.inode
    }

    /// The ring file was renamed: `path` names it now (the caller checked its
    /// [`identity`](Self::identity)), and [`remove`](Self::remove) goes by that name.
    pub fn relocate(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// Removes the ring file, if the path still names the file we opened; otherwise
    /// [`RingError::Replaced`], and the file now at the path is left alone.
    pub fn remove(self) -> Result<(), RingError> {
        let meta = std::fs::symlink_metadata(&self.path)
            .map_err(|e| RingError::io("cannot stat", &self.path, e))?;
        if (meta.dev(), meta.ino()) != self.inode {
            return Err(RingError::Replaced);
        }
        std::fs::remove_file(&self.path).map_err(|e| RingError::io("cannot remove", &self.path, e))
    }
}
