//! One ring being drained: its read cursor, how far it was drained (durably and in the
//! round under way), where it resumes after a restart, and its books when it is finished.
//!
//! Two positions matter per ring. `committed` is what the CSV and the checkpoint hold;
//! `pending` is what the current round read on top of that. A round moves `pending` on
//! ([`DrainedRing::take`]); a successful commit makes it `committed` and releases the slots
//! ([`DrainedRing::committed`]); a failed one puts the cursor back
//! ([`DrainedRing::roll_back`]).

use std::path::Path;

use perf_ring::{ConsumerRing, Record, RingError};

use crate::checkpoint::RingEntry;
use crate::metrics::{RingRound, StateHistogram};
use crate::rows::{RoundRows, RowFormat};

/// Records copied out of a ring per `read_batch` call.
pub(crate) const BATCH: usize = 4096;

/// How far a ring was drained (committed or pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Progress {
    pos: u64,
    written: u64,
    invalid: u64,
    abandoned: u64,
}

/// What committing one ring's round added to its books.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Committed {
    pub written: u64,
    pub invalid: u64,
    pub abandoned: u64,
}

/// A ring being drained.
#[derive(Debug)]
pub(crate) struct DrainedRing {
    ring: ConsumerRing,
    id: u64,
    /// Pre-quoted row prefixes, one per state name.
    format: RowFormat,
    /// Released position when this drainer first saw the ring (see [`RingEntry::base`]).
    base: u64,
    /// Durable: in the CSV and the checkpoint.
    committed: Progress,
    /// Read in the current round, not yet durable.
    pending: Progress,
    /// The producer is gone (sticky: once the liveness probe found the lock free, the
    /// producer cannot come back; the probe itself lets go of the lock at once).
    dead: bool,
    /// Dead and read to the end: remove once committed.
    exhausted: bool,
    /// The path now names another file (renamed over): drained to its end from the
    /// mapping, then left alone rather than removed.
    detached: bool,
    warned_invalid: bool,
    /// The current round's durations per state index, for the metrics (empty when they
    /// are off: then nothing is counted).
    durations: Vec<StateHistogram>,
    /// What the last commit added (for the metrics).
    added: Committed,
    /// The ring's dropped counter as last reported to the metrics.
    dropped_reported: u64,
}

impl DrainedRing {
    /// Starts draining `ring`, from its checkpointed position `saved` if it has one.
    ///
    /// The checkpoint and the ring's released position normally agree. A checkpoint ahead
    /// of the release means the previous run died between checkpoint and release: the rows
    /// are durable, so the slots are released now. A release ahead of the checkpoint means
    /// someone else consumed the ring meanwhile: draining goes on from the release, and
    /// the records in between count as drained earlier.
    pub(crate) fn resume(mut ring: ConsumerRing, saved: Option<&RingEntry>) -> DrainedRing {
        let info = ring.info().clone();
        let released = ring.read_pos();
        let path = ring.path().to_path_buf();
        let fresh = Progress {
            pos: released,
            ..Progress::default()
        };
        let (progress, base) = match saved {
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
        DrainedRing {
            ring,
            id: info.ring_id,
            format: RowFormat::new(&info.states, &info.service, info.creator_pid),
            base,
            committed: progress,
            pending: progress,
            dead: false,
            exhausted: false,
            detached: false,
            warned_invalid: false,
            durations: Vec::new(),
            added: Committed::default(),
            dropped_reported: 0,
        }
    }

    /// Counts durations per state from now on, for the metrics.
    pub(crate) fn count_durations(&mut self) {
        let states = self.ring.info().states.len();
        self.durations = vec![StateHistogram::default(); states];
    }

    /// What the last commit added, for the metrics; the round's durations are handed over
    /// by [`DrainedRing::clear_round`] afterwards.
    pub(crate) fn metrics_round(&mut self) -> RingRound<'_> {
        // The header is untrusted: a counter that went back is taken as the new baseline.
        let dropped = self
            .ring
            .counters()
            .map_or(self.dropped_reported, |c| c.dropped);
        let grown = dropped.saturating_sub(self.dropped_reported);
        self.dropped_reported = dropped;
        let info = self.ring.info();
        RingRound {
            service: &info.service,
            states: &info.states,
            durations: &self.durations,
            written: self.added.written,
            invalid: self.added.invalid,
            abandoned: self.added.abandoned,
            dropped: grown,
        }
    }

    /// Forgets the round's durations (committed and reported, or rolled back).
    pub(crate) fn clear_round(&mut self) {
        self.durations.fill(StateHistogram::default());
    }

    /// The ring id (the checkpoint's key).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The ring file.
    pub(crate) fn path(&self) -> &Path {
        self.ring.path()
    }

    /// Notes whether the producer is gone (sticky); a dead ring closes its descriptor,
    /// which only the probe needed.
    pub(crate) fn probe_liveness(&mut self) {
        if !self.dead && !self.ring.producer_alive() {
            self.dead = true;
            self.ring.close_descriptor();
            log::debug!(
                "{}: producer gone; draining to the end",
                self.ring.path().display()
            );
        }
    }

    /// Whether the ring holds a descriptor (its producer was not seen dead yet).
    pub(crate) fn holds_descriptor(&self) -> bool {
        self.ring.holds_descriptor()
    }

    /// (device, inode) of the ring file.
    pub(crate) fn identity(&self) -> (u64, u64) {
        self.ring.identity()
    }

    /// The path no longer names this ring's file: another file was renamed over it. The
    /// ring is still drained to its end (from the mapping), then left alone.
    pub(crate) fn detach(&mut self) {
        self.detached = true;
    }

    /// Whether [`DrainedRing::detach`] was called.
    pub(crate) fn is_detached(&self) -> bool {
        self.detached
    }

    /// The ring file was renamed to `path` (its identity checked by the caller).
    pub(crate) fn relocate(&mut self, path: &Path) {
        self.ring.relocate(path);
    }

    /// Whether the producer is dead and everything was read: remove once committed.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// Whether the current round read anything (or finished the ring) to commit.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending != self.committed || self.exhausted
    }

    /// The checkpoint entry for the round under way.
    pub(crate) fn entry(&self) -> RingEntry {
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

    /// Reads up to `max` records into rows in `buf` (both tables' rows, when the context
    /// table is kept). Returns how many positions were consumed and whether `max` was
    /// reached (the ring may hold more).
    ///
    /// On a ring error nothing of this ring's round stays in `buf` or in its progress.
    pub(crate) fn take(
        &mut self,
        buf: &mut RoundRows,
        batch: &mut Vec<Record>,
        max: usize,
    ) -> Result<(usize, bool), RingError> {
        if self.exhausted {
            return Ok((0, false));
        }
        // Liveness first: a producer seen dead now published everything it ever will, so
        // reading after this check and finding the ring empty means it is finished.
        self.probe_liveness();
        let mark = buf.mark();
        let saved = self.pending;
        let result = self.fill(buf, batch, max);
        if result.is_err() {
            // The ring is dropped by the caller; its uncounted round goes with it.
            buf.truncate(mark);
            self.pending = saved;
            self.clear_round();
        }
        result
    }

    fn fill(
        &mut self,
        buf: &mut RoundRows,
        batch: &mut Vec<Record>,
        max: usize,
    ) -> Result<(usize, bool), RingError> {
        let start = self.ring.read_pos();
        let mut left = max;
        while left > 0 {
            batch.clear();
            let want = left.min(BATCH);
            let got = self.ring.read_batch(batch, want)?;
            left -= got;
            self.format_rows(buf, batch);
            self.count(batch);
            if got == want {
                continue;
            }
            if !self.dead {
                break;
            }
            // A dead producer may have claimed slots it never published: step over them to
            // the next published record. Claims are bounded by the capacity, so more
            // abandoned positions than that mean the counters lie; stop there.
            let skipped = self.ring.skip_unpublished()?;
            self.pending.abandoned += skipped;
            if skipped == 0 || self.pending.abandoned >= self.ring.info().capacity {
                self.exhausted = true;
                break;
            }
        }
        self.pending.pos = self.ring.read_pos();
        let consumed = usize::try_from(self.pending.pos - start).unwrap_or(usize::MAX);
        Ok((consumed, left == 0))
    }

    /// Appends one CSV row per record (to each table); records with a state index outside
    /// the ring's table are counted and skipped (logged once per ring).
    fn format_rows(&mut self, buf: &mut RoundRows, batch: &[Record]) {
        for r in batch {
            if self.format.push_record(buf, r) {
                self.pending.written += 1;
            } else {
                self.pending.invalid += 1;
                if !self.warned_invalid {
                    self.warned_invalid = true;
                    log::warn!(
                        "{}: record with state index {} but only {} states; skipping it (and counting any others)",
                        self.ring.path().display(),
                        r.state,
                        self.format.len()
                    );
                }
            }
        }
    }

    /// Counts the batch's durations per state (metrics on only). A record with a state
    /// index outside the table has no row, so it is not counted either.
    fn count(&mut self, batch: &[Record]) {
        if self.durations.is_empty() {
            return;
        }
        for r in batch {
            if let Some(h) = self.durations.get_mut(r.state as usize) {
                h.observe(r.duration_ns);
            }
        }
    }

    /// The round was made durable: release the slots up to what was read (only now may
    /// producers reuse them) and return what it added.
    pub(crate) fn committed(&mut self) -> Committed {
        let added = Committed {
            written: self.pending.written - self.committed.written,
            invalid: self.pending.invalid - self.committed.invalid,
            abandoned: self.pending.abandoned - self.committed.abandoned,
        };
        self.ring.release(self.pending.pos);
        self.committed = self.pending;
        self.added = added;
        added
    }

    /// The round failed to commit: back to the committed position, to be read again.
    pub(crate) fn roll_back(&mut self) -> Result<(), RingError> {
        self.pending = self.committed;
        self.exhausted = false;
        self.clear_round();
        self.ring.seek(self.committed.pos)
    }

    /// Removes the file of a finished ring (unless its path now names another file, or
    /// nothing) and logs its books with what became of the file. An error is a file that
    /// is still there and could not be removed.
    pub(crate) fn finish(self) -> Result<(), RingError> {
        let (line, mismatch) = self.accounting();
        let name = self.ring_name();
        let removal = if self.detached {
            Err(RingError::Replaced)
        } else {
            self.ring.remove()
        };
        let (what, result) = match removal {
            Ok(()) => ("finished and removed".to_string(), Ok(())),
            Err(RingError::Replaced) => (
                "finished (its path now names another file, which is left alone)".to_string(),
                Ok(()),
            ),
            Err(RingError::Io { ref source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ("finished (its file was already gone)".to_string(), Ok(()))
            }
            Err(e) => (
                format!("finished, but its file cannot be removed ({e})"),
                Err(e),
            ),
        };
        let line = format!("{name} {what}: {line}");
        match mismatch {
            Some(m) => log::warn!("{line} does NOT add up: {m}"),
            None if result.is_err() => log::warn!("{line}"),
            None => log::info!("{line}"),
        }
        result
    }

    /// `ring PATH (SERVICE pid PID)`, for the log.
    fn ring_name(&self) -> String {
        let info = self.ring.info();
        format!(
            "ring {} ({} pid {})",
            self.ring.path().display(),
            info.service,
            info.creator_pid
        )
    }

    /// A finished ring's books, `committed = written + dropped (+ invalid + abandoned)`,
    /// and, if they do not add up, by how much.
    fn accounting(&self) -> (String, Option<String>) {
        let p = self.committed;
        let Ok(c) = self.ring.counters() else {
            return (
                format!(
                    "written {}, invalid {}, abandoned {}",
                    p.written, p.invalid, p.abandoned
                ),
                None,
            );
        };
        let committed = c.claimed.saturating_add(c.dropped);
        let accounted = self.base + p.written + p.invalid + p.abandoned;
        let earlier = if self.base > 0 {
            format!(" + earlier {}", self.base)
        } else {
            String::new()
        };
        let line = format!(
            "committed {committed} = written {} + dropped {} + invalid {} + abandoned {}{earlier}",
            p.written, c.dropped, p.invalid, p.abandoned
        );
        let mismatch = (accounted != c.claimed).then(|| {
            format!(
                "the ring claims {} positions, {accounted} were accounted for",
                c.claimed
            )
        });
        (line, mismatch)
    }
}
