//! The producer's side: create a ring file and write records into it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::core::{Counters, PushError};
use crate::format::{build_header, file_size, HeaderFixed, MAGIC};
use crate::mapping::Mapped;
use crate::{Record, RingError, RingInfo};

/// A ring this process created and writes into.
///
/// Creating it takes a shared `flock` on the file that lives as long as this value (and
/// dies with the process), which is how the drainer tells a live producer from a dead one.
/// The descriptor is closed right after mapping: the mapping itself keeps the open file,
/// and with it the lock, alive, so the ring holds no descriptor a child could inherit.
/// Dropping it unmaps and unlocks but leaves the file: the drainer drains it and then
/// removes it.
///
/// After `fork()` the child inherits the mapping, and with it the lock, unless
/// [`ProducerRing::exclude_from_fork`] was called. Either way the ring is its creator's:
/// in a forked child [`push`](Self::push) returns [`PushError::Forked`] and
/// [`counters`](Self::counters) zeros (see [`crate::fork`]).
///
/// ```
/// use perf_ring::{ProducerRing, Record};
/// let dir = tempfile::tempdir().unwrap();
/// let ring = ProducerRing::create(dir.path(), "doc-service", &["CALIBRATING"], 64).unwrap();
/// ring.push(&Record { start_ns: 1, duration_ns: 2, state: 0, tid: 3 }).unwrap();
/// assert_eq!(ring.counters().claimed, 1);
/// ```
#[derive(Debug)]
pub struct ProducerRing {
    /// Holds the liveness lock (through the open file it references). `None` only while
    /// being dropped in a forked child, where it must not be unmapped.
    mapped: Option<Mapped>,
    info: RingInfo,
    path: PathBuf,
    /// The process that mapped the ring; in any other (a forked child) there may be no
    /// mapping at that address any more.
    owner_pid: u32,
    /// The fork generation ([`crate::fork::generation`]) the ring was mapped in: a
    /// different one means this is a forked child, where the mapping may be gone.
    generation: u64,
}

impl ProducerRing {
    /// Creates a ring in `dir` for `service` with the given state-name table and capacity
    /// (a power of two, at most [`crate::MAX_CAPACITY`]).
    ///
    /// The file is built under a hidden temporary name (mode 0600, `O_EXCL`, not following
    /// symlinks), fully initialised with the magic stored last, and then renamed to
    /// `<service>-<pid>-<ring id>.ring`, so the drainer never sees a half-made ring. The
    /// temporary name carries the pid too, and the liveness lock is held on it, so a
    /// temporary left by a creator killed meanwhile can be told apart and removed
    /// ([`crate::stale`]). Its
    /// pages are allocated up front, so a full `/dev/shm` is an error here rather than a
    /// SIGBUS on a later write.
    pub fn create(
        dir: &Path,
        service: &str,
        states: &[&str],
        capacity: u64,
    ) -> Result<ProducerRing, RingError> {
        let pid = std::process::id();
        let ring_id = random_id().map_err(|e| RingError::io("cannot get random id for", dir, e))?;
        let created_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let header = build_header(service, states, capacity, pid, ring_id, created_ns)?;
        let name = format!("{service}-{pid}-{ring_id:016x}.ring");
        let path = dir.join(&name);
        let tmp = dir.join(crate::stale::temp_name(&name));

        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| RingError::io("cannot create", &tmp, e))?;
        let built = Self::init(file, &tmp, &header).and_then(|(file, mapped)| {
            std::fs::rename(&tmp, &path).map_err(|e| RingError::io("cannot publish", &path, e))?;
            Ok((file, mapped))
        });
        let (_file, mapped) = match built {
            Ok(parts) => parts,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let info = RingInfo {
            service: service.to_owned(),
            creator_pid: pid,
            ring_id,
            capacity,
            created_ns,
            states: states.iter().map(|s| (*s).to_owned()).collect(),
        };
        Ok(ProducerRing {
            mapped: Some(mapped),
            info,
            path,
            owner_pid: pid,
            generation: crate::fork::generation(),
        })
    }

    /// Joins an existing ring as one more producer process (the file must be a valid
    /// ring). Takes the shared liveness lock like the creator, so the drainer sees the ring
    /// as alive while any of its producers lives.
    ///
    /// Attach only while another producer of the ring is alive. A ring whose producers have
    /// all exited is about to be removed: once the drainer has seen it dead it drains it to
    /// the end and unlinks it without probing the lock again, so attaching then succeeds,
    /// records pushed before the drainer's last read are drained, and later ones land in
    /// the unlinked file, where nobody reads them (pushing still works and never faults:
    /// unlinking does not shrink the file). They are lost, not duplicated. Attaching can
    /// also fail with `EWOULDBLOCK` in the instant a liveness probe holds the lock (see
    /// `lock_shared`); trying again is fine.
    pub fn attach(path: &Path) -> Result<ProducerRing, RingError> {
        let (file, _meta, info) = crate::mapping::open_existing(path)?;
        lock_shared(&file, path)?;
        let mapped = Mapped::map(&file, path, info.capacity)?;
        Ok(ProducerRing {
            mapped: Some(mapped),
            info,
            path: path.to_path_buf(),
            owner_pid: std::process::id(),
            generation: crate::fork::generation(),
        })
    }

    fn init(file: File, tmp: &Path, header: &HeaderFixed) -> Result<(File, Mapped), RingError> {
        lock_shared(&file, tmp)?;
        let fd = file.as_raw_fd();
        let size = file_size(header.capacity);
        let len = libc::off_t::try_from(size).map_err(|_| RingError::BadCapacity {
            found: header.capacity,
        })?;
        // SAFETY: `fd` is open for writing; posix_fallocate only changes the file's size and
        // allocation.
        let rc = unsafe { libc::posix_fallocate(fd, 0, len) };
        if rc != 0 {
            return Err(RingError::io(
                "cannot allocate",
                tmp,
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        let mapped = Mapped::map(&file, tmp, header.capacity)?;
        let base = mapped.addr() as *mut u8;
        let bytes = bytemuck::bytes_of(header);
        // SAFETY: the mapping is at least HEADER_SIZE bytes, larger than `HeaderFixed`;
        // nobody else can have it yet (fresh O_EXCL file under a hidden name, not yet
        // renamed), so writing it non-atomically races with no one. The magic (first 8
        // bytes) is skipped and stored last below.
        let dest = unsafe { std::slice::from_raw_parts_mut(base, bytes.len()) };
        dest[8..].copy_from_slice(&bytes[8..]);
        // The magic is not part of the modelled protocol, so it uses std's atomic directly.
        // SAFETY: the base of a mapping is page-aligned, so aligned for u64, and lives as
        // long as `mapped`; the reference does not escape this statement.
        let magic = unsafe { std::sync::atomic::AtomicU64::from_ptr(base as *mut u64) };
        // SYNC POINT: pairs with the consumer's validation, which reads the magic first.
        magic.store(MAGIC, std::sync::atomic::Ordering::Release);
        Ok((file, mapped))
    }

    /// The mapping, if this process may touch it: the one that mapped it, not a forked
    /// child (where, excluded from fork, it is not mapped at all).
    #[inline]
    fn mapped(&self) -> Option<&Mapped> {
        if self.generation != crate::fork::generation() {
            return None;
        }
        self.mapped.as_ref()
    }

    /// Claims a slot, writes `record` and publishes it. Never blocks; when the ring is full
    /// the record is dropped and counted in the ring's header. In a forked child it
    /// returns [`PushError::Forked`] and writes nothing: the ring is the parent's.
    #[inline]
    pub fn push(&self, record: &Record) -> Result<u64, PushError> {
        match self.mapped() {
            Some(mapped) => mapped.view().push(record),
            None => Err(PushError::Forked),
        }
    }

    /// What this ring says about itself.
    pub fn info(&self) -> &RingInfo {
        &self.info
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ring's counters right now (zeros in a forked child).
    pub fn counters(&self) -> Counters {
        self.mapped()
            .map_or_else(Counters::default, |m| m.view().counters())
    }

    /// Keeps a forked child from inheriting the mapping (`MADV_DONTFORK`). The mapping is
    /// the only thing holding the ring's lock, so a child that never tracks cannot keep a
    /// dead parent's ring "alive" to the drainer.
    ///
    /// Safe because the ring notices a fork itself: this installs the fork handler of
    /// [`crate::fork`] first (and fails, excluding nothing, if it cannot), and
    /// [`push`](Self::push) and [`counters`](Self::counters) compare the fork generation
    /// before they touch the mapping; `Drop` in a child leaves the address range alone.
    pub fn exclude_from_fork(&self) -> Result<(), RingError> {
        let Some(mapped) = self.mapped() else {
            return Ok(());
        };
        if let Err(rc) = crate::fork::install() {
            return Err(RingError::io(
                "cannot watch for forks (pthread_atfork) to exclude from fork",
                &self.path,
                std::io::Error::from_raw_os_error(rc),
            ));
        }
        // SAFETY: the range is exactly our live mapping; MADV_DONTFORK changes only what
        // a future fork copies, never this process's view of the memory.
        let rc = unsafe {
            libc::madvise(
                mapped.addr() as *mut libc::c_void,
                mapped.len(),
                libc::MADV_DONTFORK,
            )
        };
        if rc != 0 {
            return Err(RingError::io(
                "cannot exclude from fork",
                &self.path,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl Drop for ProducerRing {
    fn drop(&mut self) {
        // The pid as well as the generation: a child whose fork went unnoticed (no handler
        // installed; then the mapping was inherited) must not unmap it either.
        if std::process::id() != self.owner_pid || self.generation != crate::fork::generation() {
            // A forked child: the parent's mapping may not exist here (MADV_DONTFORK), and
            // something else may live at its address now. Leave the range alone.
            std::mem::forget(self.mapped.take());
        }
    }
}

/// Takes the shared liveness lock, without blocking.
///
/// Nobody keeps the lock exclusively: a consumer's liveness probe
/// ([`crate::ConsumerRing::producer_alive`]) takes it exclusively and lets go at once. For
/// the creator, whose file nobody else can have yet (a fresh `O_EXCL` file under a hidden
/// name), this cannot fail for that reason; for [`ProducerRing::attach`] it fails with
/// `EWOULDBLOCK` if it falls in that instant.
fn lock_shared(file: &File, path: &Path) -> Result<(), RingError> {
    // SAFETY: the descriptor is owned by `file` and open for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0 {
        return Err(RingError::io(
            "cannot lock",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

fn random_id() -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(u64::from_le_bytes(bytes))
}
