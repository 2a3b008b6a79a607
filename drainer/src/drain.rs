//! The drain loop: rings → one buffer of rows → one append → sync → checkpoint → release.
//!
//! A *round* reads at most [`ROUND_RECORDS`] records across all rings (each ring gets a
//! fair share), formats them into one reusable buffer and commits them:
//!
//! 1. `append` the buffer to the CSV (all or nothing), and the same records with their
//!    service, pid and tid to the context table (unless it is off), and `fdatasync` both;
//! 2. write the checkpoint (both tables' lengths, each ring's position) atomically;
//! 3. `release` each ring up to its read position, letting producers reuse the slots;
//! 4. remove rings whose producer is dead and that are now empty.
//!
//! If step 1 or 2 fails (disk full, read-only storage) nothing is released: each ring's
//! read cursor goes back to its checkpointed position, the CSV is cut back to the
//! checkpointed length, and the next attempt starts from there (module `commit`). A crash
//! at any point leaves a checkpoint that matches the CSV prefix it names, and
//! [`Drainer::new`] returns to it, so no record is written twice or lost.
//!
//! A *cycle* is one directory scan followed by rounds until every ring is caught up.
//!
//! When the storage is full, a round that does not fit is retried at once with half as
//! many records, down to a single one, so whatever space is left is used (and records
//! leave the rings before those fill up); after a round succeeds the size grows back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use perf_daemon::storage_log::StorageLog;
use perf_ring::{ConsumerRing, Record};

use crate::commit::Store;
use crate::drained::{DrainedRing, BATCH};
use crate::error::{DrainError, StorageError};
use crate::failpoint::Failpoint;
use crate::lock::{DirLock, LockError, StorageLock};
use crate::metrics::DrainMetrics;
use crate::rows::RoundRows;
use crate::scan::{AllowedUids, SkipLog};

mod discover;

/// Records read per round, across all rings. Bounds the row buffers (about 60 bytes a row,
/// so ~2 MiB, and about as much again for the context rows) to keep the daemon small,
/// while amortising the `fdatasync` and checkpoint over many rows.
pub const ROUND_RECORDS: usize = 1 << 15;

/// Where the drainer reads and writes, and whom it trusts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding the CSV, its headers sidecar, the checkpoint and the lock.
    pub storage_dir: PathBuf,
    /// Directory the producers create their ring files in.
    pub shm_dir: PathBuf,
    /// Owners whose ring files are drained.
    pub allowed: AllowedUids,
    /// Whether `robot_activity_context_data` (every row plus service, pid and tid) is kept
    /// beside `robot_activity_data`. Off, the compatible table is written exactly as
    /// without it.
    pub context: bool,
    /// Size cap and rotated files kept per table; `None` appends for ever.
    pub rotation: Option<perf_table::Rotation>,
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

/// The drainer of one storage directory.
#[derive(Debug)]
pub struct Drainer {
    cfg: Config,
    _lock: StorageLock,
    /// The ring directory's lock: only its holder consumes the rings there. `None` while
    /// the directory does not exist, or the lock could not be taken.
    ring_lock: Option<DirLock>,
    /// Why the ring directory's lock is not held, as last logged.
    ring_lock_problem: Option<String>,
    /// Another drainer holds the ring directory's lock: consume nothing until it stops.
    ring_dir_taken: bool,
    /// Stale ring temporaries that could not be removed (logged once each).
    stale_failed: Vec<PathBuf>,
    /// The soft `RLIMIT_NOFILE` (raised to the hard limit at start).
    fd_limit: u64,
    /// Rings whose producer lives (each holds a descriptor for its liveness probe) that
    /// may be open at once: the limit minus a reserve, so that the storage files, the
    /// directory listing and the metrics server always find a descriptor.
    fd_budget: usize,
    /// Rings the last scan left unopened for want of descriptors or mapping slots.
    waiting: usize,
    /// Why the last listing of the ring directory failed, if it did.
    listing_failed: Option<String>,
    /// Why the daemon cannot make progress now, if it cannot (see [`Drainer::stalled`]).
    stall: Option<String>,
    /// The CSV and the checkpoint.
    store: Store,
    rings: Vec<DrainedRing>,
    /// Finished rings whose file could not be removed: the file's (device, inode) and the
    /// reason. Another file at the path later is a ring of its own.
    unremovable: HashMap<PathBuf, ((u64, u64), String)>,
    skips: SkipLog,
    dir_problem: Option<String>,
    storage_log: StorageLog,
    /// Storage failures are logged here (the daemon) or only returned (`once`).
    log_storage: bool,
    buf: RoundRows,
    batch: Vec<Record>,
    failpoint: Failpoint,
    /// Records per round now: [`ROUND_RECORDS`], or less while the storage is full.
    round_records: usize,
    /// Updated after every commit and cycle, when the metrics are on.
    metrics: Option<DrainMetrics>,
}

impl Drainer {
    /// Takes the storage lock and the ring directory's lock (if the directory exists: else
    /// when it appears) and loads the checkpoint. The CSV is opened (and cut back to the
    /// checkpoint) lazily, so read-only or full storage at start is retried like any later
    /// storage failure. Another drainer holding either lock is an error.
    pub fn new(cfg: Config) -> Result<Drainer, DrainError> {
        // Each ring whose producer lives costs a descriptor; most systems start daemons
        // with a soft limit of 1024 and allow far more.
        let fd_limit = perf_daemon::fd_limit::raise_nofile_limit();
        let lock = StorageLock::acquire(&cfg.storage_dir)?;
        let ring_lock = match cfg.shm_dir.is_dir() {
            true => match DirLock::ring_dir(&cfg.shm_dir) {
                Ok(l) => Some(l),
                Err(e @ LockError::Held { .. }) => return Err(e.into()),
                // Logged by the first scan, which tries again.
                Err(LockError::Io { .. }) => None,
            },
            false => None,
        };
        let mut store = Store::load(&cfg.storage_dir, cfg.context, cfg.rotation)?;
        let failpoint = Failpoint::from_env();
        store.set_failpoint(failpoint.clone());
        let buf = RoundRows::with_capacity(ROUND_RECORDS, cfg.context);
        Ok(Drainer {
            cfg,
            _lock: lock,
            ring_lock,
            ring_lock_problem: None,
            ring_dir_taken: false,
            stale_failed: Vec::new(),
            fd_limit,
            fd_budget: perf_daemon::fd_limit::budget(fd_limit),
            waiting: 0,
            listing_failed: None,
            stall: None,
            store,
            rings: Vec::new(),
            unremovable: HashMap::new(),
            skips: SkipLog::default(),
            dir_problem: None,
            storage_log: StorageLog::new(),
            log_storage: true,
            buf,
            batch: Vec::with_capacity(BATCH),
            failpoint,
            round_records: ROUND_RECORDS,
            metrics: None,
        })
    }

    /// Keeps `metrics` up to date from now on: durations per state and per-service counts
    /// after every commit, rings open and storage errors after every cycle.
    pub fn set_metrics(&mut self, metrics: DrainMetrics) {
        for t in &mut self.rings {
            t.count_durations();
        }
        self.metrics = Some(metrics);
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Number of rings being drained.
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    /// Number of rings the last scan left waiting (more rings than may be open at once:
    /// see [`Drainer::scan`]).
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Why the drainer cannot make progress now, if it cannot: the ring directory cannot be
    /// listed, or the storage fails for a reason other than a state of the storage itself
    /// (full, read-only, not writable: those are reported and waited out, and a restart
    /// would change nothing). `EMFILE` is one such reason; a restart may well cure it, so
    /// the daemon stops feeding the watchdog while this is `Some`.
    pub fn stalled(&self) -> Option<&str> {
        self.stall.as_deref()
    }

    /// Number of files skipped in the last scan.
    pub fn skipped(&self) -> usize {
        self.skips.len()
    }

    /// Opens the tables now, so a storage problem shows at start-up.
    pub fn prepare(&mut self) -> Result<(), StorageError> {
        let r = self.store.open_tables();
        self.store.close();
        self.note_storage(r.as_ref().err());
        r
    }

    /// Whether storage failures are logged here (rate-limited, for the daemon) or only
    /// returned (for `once`, which reports them itself and exits).
    pub fn log_storage_errors(&mut self, on: bool) {
        self.log_storage = on;
    }

    /// Logs a storage failure or the recovery, as [`StorageLog`] decides.
    fn note_storage(&mut self, err: Option<&StorageError>) {
        match err {
            None => {
                if let Some(blocked) = self.storage_log.succeeded() {
                    log::info!(
                        "storage is writable again after {:.1} s; draining resumes",
                        blocked.as_secs_f64()
                    );
                }
            }
            Some(e) if self.log_storage => {
                if self.storage_log.failed(e.cause()) {
                    log::error!(
                        "{}: {e}; not consuming (records wait in the rings), retrying every cycle",
                        e.cause()
                    );
                }
            }
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
        self.store.close();
        self.stall = match &r {
            Err(e) if !perf_daemon::storage_log::waits_out(e.io()) => Some(format!("{e}")),
            _ => self.listing_failed.as_ref().map(|e| {
                format!(
                    "ring directory {} cannot be listed: {e}",
                    self.cfg.shm_dir.display()
                )
            }),
        };
        if let Some(m) = &self.metrics {
            match &r {
                Ok(_) => m.cycle_ok(self.rings.len()),
                Err(e) => m.storage_failed(e.io(), self.rings.len()),
            }
        }
        r
    }

    fn cycle_inner(&mut self, deadline: Instant) -> Result<Report, StorageError> {
        self.scan();
        let mut total = Report::default();
        if self.ring_dir_taken {
            // Another drainer consumes these rings: nothing to do until it lets go.
            return Ok(total);
        }
        let mut removed_at_scan = 0;
        loop {
            match self.round() {
                Ok(r) => {
                    self.note_storage(None);
                    self.round_records = (self.round_records * 2).min(ROUND_RECORDS);
                    total.add(r);
                }
                Err(e) if e.is_full() && self.round_records > 1 => {
                    // Maybe a smaller round fits in the space that is left.
                    self.round_records /= 2;
                    continue;
                }
                Err(e) => {
                    self.note_storage(Some(&e));
                    return Err(e);
                }
            }
            if !total.more && !self.store.is_dirty() {
                if self.waiting == 0 || total.removed == removed_at_scan {
                    return Ok(total);
                }
                // Finished rings made room for some that waited: open them now.
                removed_at_scan = total.removed;
                self.scan();
            }
            if Instant::now() >= deadline {
                total.more = true;
                return Ok(total);
            }
        }
    }

    /// Starts draining `ring`, from its checkpointed position if it has one.
    fn track(&mut self, ring: ConsumerRing) {
        let saved = self.store.saved(ring.info().ring_id);
        let mut t = DrainedRing::resume(ring, saved);
        // A ring found dead gives its descriptor back at once.
        t.probe_liveness();
        if self.metrics.is_some() {
            t.count_durations();
        }
        self.rings.push(t);
    }

    /// Reads one round from every ring and commits it.
    pub fn round(&mut self) -> Result<Report, StorageError> {
        self.buf.clear();
        let mut report = Report::default();
        if self.ring_dir_taken {
            return Ok(report);
        }
        let mut budget = self.round_records;
        let mut vanished = Vec::new();
        let n = self.rings.len();
        for (i, t) in self.rings.iter_mut().enumerate() {
            let share = (budget / (n - i)).max(1);
            match t.take(&mut self.buf, &mut self.batch, share) {
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
                t.path().display()
            );
            self.store.forget(t.id());
        }
        let changed = self.store.is_dirty() || self.rings.iter().any(DrainedRing::has_pending);
        if !changed {
            return Ok(report);
        }
        let entries = self.rings.iter().map(|t| (t.id(), t.entry()));
        if let Err(e) = self.store.commit(&self.buf, entries, &mut self.failpoint) {
            self.roll_back();
            return Err(e);
        }
        for t in &mut self.rings {
            let added = t.committed();
            report.written += added.written;
            report.invalid += added.invalid;
            report.abandoned += added.abandoned;
        }
        // Durable: only now do the histograms count these rows.
        if let Some(m) = &self.metrics {
            m.committed(self.rings.iter_mut().map(DrainedRing::metrics_round));
            self.rings.iter_mut().for_each(DrainedRing::clear_round);
        }
        self.failpoint.hit("after-release");
        report.removed = self.remove_finished();
        Ok(report)
    }

    /// After a failed commit: every ring back to its committed position, the CSV back to
    /// the checkpointed length.
    fn roll_back(&mut self) {
        let mut i = 0;
        while i < self.rings.len() {
            match self.rings[i].roll_back() {
                Ok(()) => i += 1,
                Err(e) => {
                    let t = self.rings.remove(i);
                    log::warn!("{}: {e}; dropping it", t.path().display());
                }
            }
        }
        self.store.roll_back();
    }

    /// Removes dead rings that were read to the end and committed, and forgets them.
    fn remove_finished(&mut self) -> u64 {
        let mut removed = 0;
        let mut i = 0;
        while i < self.rings.len() {
            if !self.rings[i].is_exhausted() {
                i += 1;
                continue;
            }
            let t = self.rings.remove(i);
            let (id, path, file) = (t.id(), t.path().to_path_buf(), t.identity());
            // `finish` logs the books and what became of the file.
            if let Err(e) = t.finish() {
                self.unremovable.insert(path, (file, e.to_string()));
            } else {
                removed += 1;
            }
            self.store.forget(id);
        }
        removed
    }

    /// Drains everything there is now: one scan, then rounds until caught up.
    pub fn drain_all(&mut self) -> Result<Report, StorageError> {
        self.cycle(Instant::now() + Duration::from_secs(3600))
    }
}
