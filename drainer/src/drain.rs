//! The drain loop: rings → one buffer of rows → one append → sync → checkpoint → release.
//!
//! A *round* reads at most [`ROUND_RECORDS`] records across all rings (each ring gets a
//! fair share), formats them into one reusable buffer and commits them:
//!
//! 1. `append` the buffer to the CSV (all or nothing) and `fdatasync` it;
//! 2. write the checkpoint (CSV length, each ring's position) atomically;
//! 3. `release` each ring up to its read position, letting producers reuse the slots;
//! 4. remove rings whose producer is dead and that are now empty.
//!
//! If step 1 or 2 fails (disk full, read-only storage) nothing is released: each ring's
//! read cursor goes back to its checkpointed position, the CSV is cut back to the
//! checkpointed length, and the next attempt starts from there. A crash at any point leaves
//! a checkpoint that matches the CSV prefix it names, and [`Drainer::new`] returns to it, so
//! no record is written twice or lost.
//!
//! A *cycle* is one directory scan followed by rounds until every ring is caught up.
//!
//! When the storage is full, a round that does not fit is retried at once with half as
//! many records, down to a single one, so whatever space is left is used (and records
//! leave the rings before those fill up); after a round succeeds the size grows back.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use perf_ring::{ConsumerRing, Record, RingError};
use perf_table::{TableError, TableFile, ROBOT_ACTIVITY};

use crate::checkpoint::{Checkpoint, CheckpointError, CsvState, RingEntry};
use crate::failpoint::Failpoint;
use crate::lock::{LockError, StorageLock};
use crate::rows::RowFormat;
use crate::scan::{self, AllowedUids, SkipLog};

/// Records read per round, across all rings. Bounds the row buffer (about 60 bytes a row,
/// so ~2 MiB) to keep the daemon small, while amortising the `fdatasync` and checkpoint
/// over many rows.
pub const ROUND_RECORDS: usize = 1 << 15;
/// Records copied out of a ring per `read_batch` call.
const BATCH: usize = 4096;
/// Storage errors are logged at most this often.
pub const STORAGE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where the drainer reads and writes, and whom it trusts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding the CSV, its headers sidecar, the checkpoint and the lock.
    pub storage_dir: PathBuf,
    /// Directory the producers create their ring files in.
    pub shm_dir: PathBuf,
    /// Owners whose ring files are drained.
    pub allowed: AllowedUids,
}

/// Setting up the drainer failed (fatal: the daemon exits 1).
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The storage lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The checkpoint exists but cannot be read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

impl DrainError {
    /// Whether the storage itself is the problem (read-only, full, not yet mounted), which
    /// the daemon waits out, rather than another drainer or a broken checkpoint.
    pub fn is_storage(&self) -> bool {
        matches!(self, DrainError::Lock(LockError::Io { .. }))
    }
}

/// Writing to the storage directory failed; the drainer stops consuming and retries.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The CSV could not be opened, appended to, synced or cut back.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The checkpoint could not be written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The CSV could not be looked at.
    #[error("cannot stat {path}: {source}")]
    Stat { path: PathBuf, source: io::Error },
}

impl StorageError {
    /// The underlying I/O error.
    pub fn io(&self) -> &io::Error {
        match self {
            StorageError::Table(e) => e.io(),
            StorageError::Checkpoint(e) => e.io(),
            StorageError::Stat { source, .. } => source,
        }
    }

    /// The cause in a few words.
    pub fn cause(&self) -> &'static str {
        match self.io().raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => "storage is full",
            Some(libc::EROFS) => "storage is read-only",
            Some(libc::EACCES) | Some(libc::EPERM) => "storage is not writable",
            _ => "storage error",
        }
    }
}

/// Whether `e` says the storage has no room (rather than being unwritable).
fn is_full(e: &StorageError) -> bool {
    matches!(
        e.io().raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

/// How far a ring was drained (committed or pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Progress {
    pos: u64,
    written: u64,
    invalid: u64,
    abandoned: u64,
}

/// A ring being drained.
#[derive(Debug)]
struct Tracked {
    ring: ConsumerRing,
    id: u64,
    /// Pre-quoted row prefixes, one per state name.
    format: RowFormat,
    base: u64,
    /// Durable: in the CSV and the checkpoint.
    committed: Progress,
    /// Read in the current round, not yet durable.
    pending: Progress,
    /// The producer is gone (sticky: the ring keeps its lock once it found it free).
    dead: bool,
    /// Dead and read to the end: remove once committed.
    exhausted: bool,
    warned_invalid: bool,
}

impl Tracked {
    fn entry(&self) -> RingEntry {
        RingEntry {
            pos: self.pending.pos,
            base: self.base,
            written: self.pending.written,
            invalid: self.pending.invalid,
            abandoned: self.pending.abandoned,
            service: self.ring.info().service.clone(),
            path: self.ring.path().to_string_lossy().into_owned(),
        }
    }
}

/// The open CSV and the identity of the file behind it.
#[derive(Debug)]
struct OpenTable {
    file: TableFile,
    dev: u64,
    ino: u64,
}

/// What a round or cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Rows appended to the CSV.
    pub written: u64,
    /// Records skipped for a state index outside their ring's table.
    pub invalid: u64,
    /// Positions of dead producers claimed but never published.
    pub abandoned: u64,
    /// Finished rings removed.
    pub removed: u64,
    /// Some ring had more records than this round could take.
    pub more: bool,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.written += other.written;
        self.invalid += other.invalid;
        self.abandoned += other.abandoned;
        self.removed += other.removed;
        self.more = other.more;
    }
}

/// Logs storage failures at most once a minute, and the recovery once.
#[derive(Debug, Default)]
struct StorageLog {
    last_logged: Option<Instant>,
    blocked_since: Option<Instant>,
    quiet: bool,
}

impl StorageLog {
    fn failed(&mut self, err: &StorageError) {
        let now = Instant::now();
        self.blocked_since.get_or_insert(now);
        if self
            .last_logged
            .is_none_or(|t| now.duration_since(t) >= STORAGE_LOG_EVERY)
        {
            log::error!(
                "{}: {err}; not consuming (records wait in the rings), retrying every cycle",
                err.cause()
            );
            self.last_logged = Some(now);
        }
    }

    fn succeeded(&mut self) {
        if let Some(since) = self.blocked_since.take() {
            log::info!(
                "storage is writable again after {:.1} s; draining resumes",
                since.elapsed().as_secs_f64()
            );
            self.last_logged = None;
        }
    }
}

/// The drainer of one storage directory.
#[derive(Debug)]
pub struct Drainer {
    cfg: Config,
    _lock: StorageLock,
    table: Option<OpenTable>,
    /// The checkpoint as last made durable (plus the CSV state found on opening it).
    ckpt: Checkpoint,
    /// The checkpoint must be written even without new rows (a ring was forgotten).
    ckpt_dirty: bool,
    rings: Vec<Tracked>,
    /// Finished rings whose file could not be removed, with the reason.
    unremovable: HashMap<PathBuf, String>,
    skips: SkipLog,
    dir_problem: Option<String>,
    storage_log: StorageLog,
    buf: Vec<u8>,
    batch: Vec<Record>,
    failpoint: Failpoint,
    /// Records per round now: [`ROUND_RECORDS`], or less while the storage is full.
    round_records: usize,
}

impl Drainer {
    /// Takes the storage lock and loads the checkpoint. The CSV is opened (and cut back to
    /// the checkpoint) lazily, so read-only or full storage at start is retried like any
    /// later storage failure.
    pub fn new(cfg: Config) -> Result<Drainer, DrainError> {
        let lock = StorageLock::acquire(&cfg.storage_dir)?;
        let ckpt = Checkpoint::load(&cfg.storage_dir)?;
        Ok(Drainer {
            cfg,
            _lock: lock,
            table: None,
            ckpt,
            ckpt_dirty: false,
            rings: Vec::new(),
            unremovable: HashMap::new(),
            skips: SkipLog::default(),
            dir_problem: None,
            storage_log: StorageLog::default(),
            buf: Vec::with_capacity(ROUND_RECORDS * 64),
            batch: Vec::with_capacity(BATCH),
            failpoint: Failpoint::from_env(),
            round_records: ROUND_RECORDS,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Number of rings being drained.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// Number of files skipped in the last scan.
    pub fn skipped(&self) -> usize {
        self.skips.len()
    }

    /// Opens the CSV now, so a storage problem shows at start-up.
    pub fn prepare(&mut self) -> Result<(), StorageError> {
        let r = self.ensure_table();
        self.table = None;
        self.note_storage(r.as_ref().err());
        r
    }

    /// Whether storage failures are logged here (rate-limited, for the daemon) or only
    /// returned (for `once`, which reports them itself and exits).
    pub fn log_storage_errors(&mut self, on: bool) {
        self.storage_log.quiet = !on;
    }

    fn note_storage(&mut self, err: Option<&StorageError>) {
        match err {
            None => self.storage_log.succeeded(),
            Some(e) if !self.storage_log.quiet => self.storage_log.failed(e),
            Some(_) => {}
        }
    }

    /// One cycle: scan for rings, then rounds until all are caught up or `deadline` passes
    /// (then `more` is set). Storage failures are logged (rate-limited) and returned.
    ///
    /// The CSV is closed when the cycle ends: between cycles the drainer holds nothing in
    /// the storage directory open for writing, so it can be remounted read-only, and a CSV
    /// moved away by someone is simply started afresh.
    pub fn cycle(&mut self, deadline: Instant) -> Result<Report, StorageError> {
        let r = self.cycle_inner(deadline);
        self.table = None;
        r
    }

    fn cycle_inner(&mut self, deadline: Instant) -> Result<Report, StorageError> {
        self.scan();
        let mut total = Report::default();
        loop {
            match self.round() {
                Ok(r) => {
                    self.note_storage(None);
                    self.round_records = (self.round_records * 2).min(ROUND_RECORDS);
                    total.add(r);
                }
                Err(e) if is_full(&e) && self.round_records > 1 => {
                    // Maybe a smaller round fits in the space that is left.
                    self.round_records /= 2;
                    continue;
                }
                Err(e) => {
                    self.note_storage(Some(&e));
                    return Err(e);
                }
            }
            if !total.more && !self.ckpt_dirty {
                return Ok(total);
            }
            if Instant::now() >= deadline {
                total.more = true;
                return Ok(total);
            }
        }
    }

    /// Looks for new rings in the ring directory and opens them.
    pub fn scan(&mut self) {
        let paths = match scan::candidates(&self.cfg.shm_dir) {
            Ok(paths) => {
                let problem = (!self.cfg.shm_dir.is_dir()).then(|| "does not exist (yet)".into());
                self.note_dir_problem(problem);
                paths
            }
            Err(e) => {
                self.note_dir_problem(Some(format!("cannot be listed: {e}")));
                return;
            }
        };
        self.skips.begin();
        for path in paths {
            if self.rings.iter().any(|t| t.ring.path() == path) {
                continue;
            }
            if let Some(why) = self.unremovable.get(&path) {
                let reason = format!("drained, but cannot be removed: {why}");
                self.skips.skip(&path, reason);
                continue;
            }
            match scan::open_candidate(&path, &self.cfg.allowed) {
                Err(reason) => self.skips.skip(&path, reason),
                Ok(ring) => {
                    let id = ring.info().ring_id;
                    if let Some(other) = self.rings.iter().find(|t| t.id == id) {
                        let reason = format!(
                            "ring id {id:016x} is already being drained from {}",
                            other.ring.path().display()
                        );
                        self.skips.skip(&path, reason);
                    } else {
                        self.track(ring);
                    }
                }
            }
        }
        self.skips.end();
        // Entries of rings that are gone (removed by someone else, or by us just before a
        // crash) are forgotten; a ring that exists but failed to open keeps its entry.
        let tracked: Vec<u64> = self.rings.iter().map(|t| t.id).collect();
        let before = self.ckpt.rings.len();
        self.ckpt
            .rings
            .retain(|id, e| tracked.contains(id) || Path::new(&e.path).exists());
        if self.ckpt.rings.len() != before {
            self.ckpt_dirty = true;
        }
    }

    fn note_dir_problem(&mut self, problem: Option<String>) {
        if problem != self.dir_problem {
            if let Some(p) = &problem {
                log::warn!("ring directory {} {p}", self.cfg.shm_dir.display());
            }
            self.dir_problem = problem;
        }
    }

    /// Starts draining `ring`, from its checkpointed position if it has one.
    fn track(&mut self, mut ring: ConsumerRing) {
        let info = ring.info().clone();
        let released = ring.read_pos();
        let path = ring.path().to_path_buf();
        let fresh = Progress {
            pos: released,
            ..Progress::default()
        };
        let (progress, base) = match self.ckpt.rings.get(&info.ring_id) {
            None => (fresh, released),
            Some(e) => {
                let saved = Progress {
                    pos: e.pos,
                    written: e.written,
                    invalid: e.invalid,
                    abandoned: e.abandoned,
                };
                if e.pos == released {
                    (saved, e.base)
                } else if e.pos > released {
                    match ring.seek(e.pos) {
                        Ok(()) => {
                            // The checkpoint is durable, so are the rows it covers: the
                            // previous run died between checkpoint and release. Release now,
                            // or the slots stay taken until the next record arrives.
                            ring.release(e.pos);
                            (saved, e.base)
                        }
                        Err(err) => {
                            log::warn!(
                                "{}: checkpointed position {} is unusable ({err}); resuming at the released position {released}",
                                path.display(),
                                e.pos
                            );
                            (fresh, released)
                        }
                    }
                } else {
                    log::warn!(
                        "{}: released position {released} is past the checkpointed {}: another consumer drained it",
                        path.display(),
                        e.pos
                    );
                    (
                        Progress {
                            pos: released,
                            ..saved
                        },
                        e.base + (released - e.pos),
                    )
                }
            }
        };
        log::info!(
            "draining {}: service {}, pid {}, capacity {}, {} states, from position {}",
            path.display(),
            info.service,
            info.creator_pid,
            info.capacity,
            info.states.len(),
            progress.pos
        );
        self.rings.push(Tracked {
            ring,
            id: info.ring_id,
            format: RowFormat::new(&info.states),
            base,
            committed: progress,
            pending: progress,
            dead: false,
            exhausted: false,
            warned_invalid: false,
        });
    }

    /// Opens the CSV if needed, reconciles it with the checkpoint (cutting back rows of an
    /// interrupted commit, noticing a file replaced or cut by someone else), and makes sure
    /// it ends where the checkpoint says.
    fn ensure_table(&mut self) -> Result<(), StorageError> {
        if self.table.is_none() {
            let mut file = TableFile::open(&self.cfg.storage_dir, &ROBOT_ACTIVITY)?;
            let meta = std::fs::metadata(file.path()).map_err(|source| StorageError::Stat {
                path: file.path().to_path_buf(),
                source,
            })?;
            let (dev, ino) = (meta.dev(), meta.ino());
            match self.ckpt.csv {
                Some(c) if (c.dev, c.ino) == (dev, ino) => {
                    if file.len() > c.len {
                        log::info!(
                            "cutting {} back from {} to {} bytes: rows of a cycle interrupted before its checkpoint",
                            file.path().display(),
                            file.len(),
                            c.len
                        );
                        file.truncate(c.len)?;
                    } else if file.len() < c.len {
                        log::warn!(
                            "{} is {} bytes, shorter than the checkpointed {}: it was cut by someone else; appending at its end",
                            file.path().display(),
                            file.len(),
                            c.len
                        );
                    }
                }
                Some(_) => log::info!(
                    "{} is not the file the checkpoint describes (it was replaced); appending to it as it is",
                    file.path().display()
                ),
                None => {}
            }
            let csv = Some(CsvState {
                len: file.len(),
                dev,
                ino,
            });
            if csv != self.ckpt.csv {
                // Which file and how long must be durable before the first append to it:
                // otherwise rows appended by a run killed before its first checkpoint
                // would not be cut back, and would come again.
                let mut next = self.ckpt.clone();
                next.csv = csv;
                next.store(&self.cfg.storage_dir)?;
                self.ckpt = next;
            }
            self.table = Some(OpenTable { file, dev, ino });
        }
        if let (Some(open), Some(csv)) = (&mut self.table, self.ckpt.csv) {
            if open.file.len() != csv.len {
                open.file.truncate(csv.len)?;
            }
        }
        Ok(())
    }

    /// Reads one round from every ring and commits it.
    pub fn round(&mut self) -> Result<Report, StorageError> {
        self.buf.clear();
        let mut report = Report::default();
        let mut budget = self.round_records;
        let mut vanished = Vec::new();
        let n = self.rings.len();
        for (i, t) in self.rings.iter_mut().enumerate() {
            let share = (budget / (n - i)).max(1);
            match take(t, &mut self.buf, &mut self.batch, share) {
                Ok((taken, full)) => {
                    budget = budget.saturating_sub(taken);
                    report.more |= full;
                }
                Err(e) => vanished.push((i, e)),
            }
        }
        for (i, e) in vanished.into_iter().rev() {
            let t = self.rings.remove(i);
            log::warn!(
                "{}: {e}; dropping it (records not yet committed from it are lost)",
                t.ring.path().display()
            );
            self.ckpt.rings.remove(&t.id);
            self.ckpt_dirty = true;
        }
        let changed = self.ckpt_dirty
            || self
                .rings
                .iter()
                .any(|t| t.pending != t.committed || t.exhausted);
        if !changed {
            return Ok(report);
        }
        match self.commit() {
            Ok(()) => {}
            Err(e) => {
                self.rollback();
                return Err(e);
            }
        }
        for t in &mut self.rings {
            report.written += t.pending.written - t.committed.written;
            report.invalid += t.pending.invalid - t.committed.invalid;
            report.abandoned += t.pending.abandoned - t.committed.abandoned;
            t.ring.release(t.pending.pos);
            t.committed = t.pending;
        }
        self.failpoint.hit("after-release");
        report.removed = self.remove_finished();
        Ok(report)
    }

    /// Makes the round durable: rows, then checkpoint.
    fn commit(&mut self) -> Result<(), StorageError> {
        self.ensure_table()?;
        let open = self.table.as_mut().expect("ensure_table just opened it");
        if !self.buf.is_empty() {
            open.file.append(&self.buf)?;
            self.failpoint.hit("after-append");
            open.file.sync()?;
            self.failpoint.hit("after-sync");
        }
        let mut next = self.ckpt.clone();
        next.csv = Some(CsvState {
            len: open.file.len(),
            dev: open.dev,
            ino: open.ino,
        });
        for t in &self.rings {
            next.rings.insert(t.id, t.entry());
        }
        next.store(&self.cfg.storage_dir)?;
        self.failpoint.hit("after-checkpoint");
        self.ckpt = next;
        self.ckpt_dirty = false;
        Ok(())
    }

    /// After a failed commit: every ring back to its committed position, the CSV back to
    /// the checkpointed length (or at the start of the next round, if that fails too).
    fn rollback(&mut self) {
        let mut lost = Vec::new();
        for (i, t) in self.rings.iter_mut().enumerate() {
            t.pending = t.committed;
            t.exhausted = false;
            if let Err(e) = t.ring.seek(t.committed.pos) {
                lost.push((i, e));
            }
        }
        for (i, e) in lost.into_iter().rev() {
            let t = self.rings.remove(i);
            log::warn!("{}: {e}; dropping it", t.ring.path().display());
        }
        if let (Some(open), Some(csv)) = (&mut self.table, self.ckpt.csv) {
            if open.file.len() != csv.len {
                let _ = open.file.truncate(csv.len);
            }
        }
    }

    /// Removes dead rings that were read to the end and committed, and forgets them.
    fn remove_finished(&mut self) -> u64 {
        let mut removed = 0;
        let mut i = 0;
        while i < self.rings.len() {
            if !self.rings[i].exhausted {
                i += 1;
                continue;
            }
            let t = self.rings.remove(i);
            let path = t.ring.path().to_path_buf();
            log_accounting(&t);
            if let Err(e) = t.ring.remove() {
                log::warn!("cannot remove finished ring {}: {e}", path.display());
                self.unremovable.insert(path, e.to_string());
            } else {
                removed += 1;
            }
            self.ckpt.rings.remove(&t.id);
            self.ckpt_dirty = true;
        }
        removed
    }

    /// Drains everything there is now: one scan, then rounds until caught up.
    pub fn drain_all(&mut self) -> Result<Report, StorageError> {
        self.cycle(Instant::now() + Duration::from_secs(3600))
    }
}

/// Reads up to `max` records from one ring into rows in `buf`. Returns how many positions
/// were consumed and whether `max` was reached (the ring may hold more).
///
/// On a ring error nothing of this ring's round stays in `buf` or in its progress.
fn take(
    t: &mut Tracked,
    buf: &mut Vec<u8>,
    batch: &mut Vec<Record>,
    max: usize,
) -> Result<(usize, bool), RingError> {
    if t.exhausted {
        return Ok((0, false));
    }
    // Liveness first: a producer seen dead now published everything it ever will, so
    // reading after this check and finding the ring empty means it is finished.
    if !t.dead && !t.ring.producer_alive() {
        t.dead = true;
        log::debug!(
            "{}: producer gone; draining to the end",
            t.ring.path().display()
        );
    }
    let mark = buf.len();
    let saved = t.pending;
    let result = fill(t, buf, batch, max);
    if result.is_err() {
        buf.truncate(mark);
        t.pending = saved;
    }
    result
}

fn fill(
    t: &mut Tracked,
    buf: &mut Vec<u8>,
    batch: &mut Vec<Record>,
    max: usize,
) -> Result<(usize, bool), RingError> {
    let start = t.ring.read_pos();
    let mut left = max;
    while left > 0 {
        batch.clear();
        let want = left.min(BATCH);
        let got = t.ring.read_batch(batch, want)?;
        left -= got;
        format_rows(t, buf, batch);
        if got == want {
            continue;
        }
        if !t.dead {
            break;
        }
        // A dead producer may have claimed slots it never published: step over them to
        // the next published record. Claims are bounded by the capacity, so more abandoned
        // positions than that mean the counters lie; stop there.
        let skipped = t.ring.skip_unpublished()?;
        t.pending.abandoned += skipped;
        if skipped == 0 || t.pending.abandoned >= t.ring.info().capacity {
            t.exhausted = true;
            break;
        }
    }
    t.pending.pos = t.ring.read_pos();
    let consumed = usize::try_from(t.pending.pos - start).unwrap_or(usize::MAX);
    Ok((consumed, left == 0))
}

/// Appends one CSV row per record; records with a state index outside the ring's table
/// are counted and skipped (logged once per ring).
fn format_rows(t: &mut Tracked, buf: &mut Vec<u8>, batch: &[Record]) {
    for r in batch {
        if t.format.push(buf, r.state, r.start_ns, r.duration_ns) {
            t.pending.written += 1;
        } else {
            t.pending.invalid += 1;
            if !t.warned_invalid {
                t.warned_invalid = true;
                log::warn!(
                    "{}: record with state index {} but only {} states; skipping it (and counting any others)",
                    t.ring.path().display(),
                    r.state,
                    t.format.len()
                );
            }
        }
    }
}

/// Logs a finished ring's books: `committed = written + dropped (+ invalid + abandoned)`.
fn log_accounting(t: &Tracked) {
    let info = t.ring.info();
    let p = t.committed;
    let Ok(c) = t.ring.counters() else {
        log::info!(
            "ring {} ({} pid {}) finished: written {}, invalid {}, abandoned {}",
            t.ring.path().display(),
            info.service,
            info.creator_pid,
            p.written,
            p.invalid,
            p.abandoned
        );
        return;
    };
    let committed = c.claimed.saturating_add(c.dropped);
    let accounted = t.base + p.written + p.invalid + p.abandoned;
    let earlier = if t.base > 0 {
        format!(" + earlier {}", t.base)
    } else {
        String::new()
    };
    let line = format!(
        "ring {} ({} pid {}) finished and removed: committed {committed} = written {} + dropped {} + invalid {} + abandoned {}{earlier}",
        t.ring.path().display(),
        info.service,
        info.creator_pid,
        p.written,
        c.dropped,
        p.invalid,
        p.abandoned
    );
    if accounted == c.claimed {
        log::info!("{line}");
    } else {
        log::warn!(
            "{line} does NOT add up: the ring claims {} positions, {accounted} were accounted for",
            c.claimed
        );
    }
}

/// Per-ring checkpointed progress, for `status`.
pub(crate) fn checkpointed(storage_dir: &Path) -> BTreeMap<u64, RingEntry> {
    Checkpoint::peek(storage_dir)
        .map(|c| c.rings)
        .unwrap_or_default()
}
