//! Finding the rings to drain, once per scan: holding the ring directory's lock, removing
//! temporaries a killed creator left, following renamed rings, opening new ones within the
//! descriptor budget and the mapping table (the rest wait), and what is logged about it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use super::Drainer;
use crate::drained::DrainedRing;
use crate::lock::{DirLock, LockError};
use crate::scan::{self, SkipReason, Unopened};

impl Drainer {
    /// Looks for new rings in the ring directory and opens them.
    pub fn scan(&mut self) {
        let (paths, temporaries) = match scan::list(&self.cfg.shm_dir) {
            Ok(listing) => {
                let problem = (!self.cfg.shm_dir.is_dir()).then(|| "does not exist (yet)".into());
                self.note_dir_problem(problem);
                (listing.rings, listing.temporaries)
            }
            Err(e) => {
                self.note_dir_problem(Some(format!("cannot be listed: {e}")));
                self.listing_failed = Some(e.to_string());
                return;
            }
        };
        self.listing_failed = None;
        if self.dir_problem.is_some() || !self.hold_ring_dir() {
            return;
        }
        self.remove_stale(&temporaries);
        self.skips.begin();
        // Tracked rings by path and by file, so that a scan costs one lstat per entry.
        let mut by_path: HashMap<PathBuf, usize> = HashMap::with_capacity(self.rings.len());
        let mut by_file: HashMap<(u64, u64), usize> = HashMap::with_capacity(self.rings.len());
        let mut by_id: HashMap<u64, usize> = HashMap::with_capacity(self.rings.len());
        for (i, t) in self.rings.iter().enumerate() {
            if !t.is_detached() {
                by_path.insert(t.path().to_path_buf(), i);
            }
            by_file.insert(t.identity(), i);
            by_id.insert(t.id(), i);
        }
        // Rings past what may be open at once wait, unopened, for earlier ones to finish.
        // A ring whose producer lives keeps a descriptor; one found dead gives it back at
        // once, so dead rings are opened even when live ones used up the budget (with one
        // descriptor of the reserve, for the instant of the probe).
        let mut descriptors = self.rings.iter().filter(|t| t.holds_descriptor()).count();
        let (mut waiting, mut exhausted) = (0, None);
        for path in paths {
            // The file at the path now; a failed lstat is reported by `open_candidate`.
            let file = std::fs::symlink_metadata(&path)
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if let Some(&i) = by_path.get(&path) {
                // Gone since the listing (removed): nothing there to drain or to follow.
                if file.is_none() || file == Some(self.rings[i].identity()) {
                    continue;
                }
                // Renamed over (or replaced): the tracked ring lives on in our mapping.
                self.rings[i].detach();
                log::warn!(
                    "{}: the path now names another file than the ring drained from it; draining that ring to its end from memory (its file is then left alone), and the file now there as a ring of its own",
                    path.display()
                );
            }
            if let Some(&i) = file.as_ref().and_then(|f| by_file.get(f)) {
                // A tracked ring renamed to this path: follow it (it is removed by its new
                // name when finished).
                let t = &mut self.rings[i];
                if t.path() != path {
                    log::info!(
                        "{} was renamed to {}; draining it there",
                        t.path().display(),
                        path.display()
                    );
                    t.relocate(&path);
                }
                continue;
            }
            match self.unremovable.get(&path) {
                Some((gone, why)) if file == Some(*gone) => {
                    let reason = SkipReason::Unremovable { error: why.clone() };
                    self.skips.skip(&path, reason);
                    continue;
                }
                Some(_) => {
                    self.unremovable.remove(&path);
                }
                None => {}
            }
            if self.rings.len() >= perf_ring::MAX_MAPPED {
                waiting += 1;
                continue;
            }
            match scan::open_candidate(&path, &self.cfg.allowed) {
                Err(Unopened::Skip(reason)) => self.skips.skip(&path, reason),
                Err(Unopened::Exhausted(e)) => {
                    waiting += 1;
                    exhausted = Some(e);
                }
                Ok(ring) if descriptors >= self.fd_budget && ring.producer_alive() => {
                    // It would keep its descriptor: closed again, it waits.
                    drop(ring);
                    waiting += 1;
                }
                Ok(ring) => {
                    let id = ring.info().ring_id;
                    if let Some(&other) = by_id.get(&id) {
                        let reason = SkipReason::DuplicateId {
                            ring_id: id,
                            drained_from: self.rings[other].path().to_path_buf(),
                        };
                        self.skips.skip(&path, reason);
                    } else {
                        by_id.insert(id, self.rings.len());
                        self.track(ring);
                        descriptors +=
                            usize::from(self.rings[self.rings.len() - 1].holds_descriptor());
                    }
                }
            }
        }
        self.skips.end();
        self.note_waiting(waiting, exhausted);
        if waiting == 0 {
            // Only with every ring opened is an entry of no open ring one of a ring gone:
            // a waiting ring keeps its checkpointed position for when it is opened.
            let drained: Vec<u64> = self.rings.iter().map(DrainedRing::id).collect();
            self.store.forget_gone(&drained);
        }
    }

    /// Logs when rings start waiting to be opened (once, until all are open again).
    fn note_waiting(&mut self, waiting: usize, exhausted: Option<perf_ring::RingError>) {
        if waiting > 0 && self.waiting == 0 {
            let why = match exhausted {
                Some(e) => format!("opening one more failed: {e}"),
                None => format!(
                    "at most {} rings are open at once, and at most {} of them with a live producer under the open-file limit {}",
                    perf_ring::MAX_MAPPED,
                    self.fd_budget,
                    self.fd_limit
                ),
            };
            log::warn!(
                "{waiting} rings in {} wait to be drained ({why}); each is opened as earlier ones finish: delayed, not lost",
                self.cfg.shm_dir.display()
            );
        } else if waiting == 0 && self.waiting > 0 {
            log::info!(
                "every ring in {} is being drained again",
                self.cfg.shm_dir.display()
            );
        }
        self.waiting = waiting;
    }

    /// Removes ring temporaries whose creator died before finishing them (see
    /// [`perf_ring::stale`]); each failure to is logged once per path.
    fn remove_stale(&mut self, temporaries: &[PathBuf]) {
        self.stale_failed.retain(|p| temporaries.contains(p));
        let allowed = |uid: u32| self.cfg.allowed.allows(uid);
        for path in temporaries {
            match perf_ring::stale::remove_if_stale(path, &allowed) {
                Ok(Some(bytes)) => log::warn!(
                    "removed {}: the temporary of a ring its creator (pid {}) never finished, {bytes} bytes",
                    path.display(),
                    path.file_name()
                        .and_then(perf_ring::stale::temporary_creator)
                        .unwrap_or_default()
                ),
                Ok(None) => {}
                Err(e) => {
                    if !self.stale_failed.contains(path) {
                        log::warn!("cannot remove the stale ring temporary {}: {e}", path.display());
                        self.stale_failed.push(path.clone());
                    }
                }
            }
        }
    }

    /// Makes sure this drainer holds the ring directory's lock (taking it when the
    /// directory appeared, or again when someone deleted the lock file); returns whether
    /// new rings may be opened. Another drainer holding it stops all consuming here (it
    /// drains the rings now) until it lets go; a lock that cannot be made at all (an
    /// unwritable ring directory) is logged and done without.
    fn hold_ring_dir(&mut self) -> bool {
        if self.ring_lock.as_ref().is_some_and(DirLock::still_held) {
            return true;
        }
        let lost = self.ring_lock.take().is_some();
        let (problem, usable) = match DirLock::ring_dir(&self.cfg.shm_dir) {
            Ok(lock) => {
                if lost {
                    log::warn!(
                        "the ring directory's lock {} was deleted; took it again",
                        lock.path().display()
                    );
                }
                self.ring_lock = Some(lock);
                (None, true)
            }
            Err(e @ LockError::Held { .. }) => (
                Some(format!(
                    "{e}: not consuming any ring until it stops (one consumer per ring directory)"
                )),
                false,
            ),
            Err(e) => (
                Some(format!(
                    "{e}; draining without it (a second drainer on this ring directory would not be refused)"
                )),
                true,
            ),
        };
        self.ring_dir_taken = !usable;
        if problem != self.ring_lock_problem {
            match (&problem, usable) {
                (Some(p), false) => log::error!("{p}"),
                (Some(p), true) => log::warn!("{p}"),
                (None, _) if self.ring_lock_problem.is_some() => {
                    log::info!("holding the ring directory's lock again; draining resumes")
                }
                (None, _) => {}
            }
            self.ring_lock_problem = problem;
        }
        usable
    }

    fn note_dir_problem(&mut self, problem: Option<String>) {
        if problem != self.dir_problem {
            if let Some(p) = &problem {
                log::warn!("ring directory {} {p}", self.cfg.shm_dir.display());
            }
            self.dir_problem = problem;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use perf_ring::{ProducerRing, Record};

    use crate::drain::{Config, Drainer};
    use crate::scan::AllowedUids;

    fn drainer(shm: &Path, storage: &Path) -> Drainer {
        Drainer::new(Config {
            storage_dir: storage.to_path_buf(),
            shm_dir: shm.to_path_buf(),
            allowed: AllowedUids::with_defaults(&[]),
            context: false,
            rotation: None,
        })
        .unwrap()
    }

    fn filled(dir: &Path, service: &str, n: u64) -> ProducerRing {
        let ring = ProducerRing::create(dir, service, &["CALIBRATING"], 64).unwrap();
        for i in 0..n {
            let r = Record {
                start_ns: i,
                duration_ns: i,
                state: 0,
                tid: 1,
            };
            ring.push(&r).unwrap();
        }
        ring
    }

    #[test]
    fn live_rings_past_the_budget_wait_but_finished_ones_still_open() {
        let (shm, storage) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // Sorted first, so that they use up the budget before the dead ones are seen.
        let live: Vec<ProducerRing> = (0..3)
            .map(|i| filled(shm.path(), &format!("a-live{i}"), 2))
            .collect();
        drop(
            (0..4)
                .map(|i| filled(shm.path(), &format!("b-dead{i}"), 3))
                .collect::<Vec<_>>(),
        );
        let mut d = drainer(shm.path(), storage.path());
        d.fd_budget = 2;
        let r = d.drain_all().unwrap();
        // Two live rings open, the third waits; all four dead ones drained and removed.
        assert_eq!((r.written, r.removed, d.waiting()), (2 * 2 + 4 * 3, 4, 1));
        assert_eq!(d.rings(), 2);
        drop(live);
        let r = d.drain_all().unwrap();
        assert_eq!((r.written, r.removed, d.waiting()), (2, 3, 0));
    }

    #[test]
    fn a_ring_dir_another_drainer_took_is_left_alone_without_spinning() {
        let root = tempfile::tempdir().unwrap();
        let shm = root.path().join("rings");
        let (mine, theirs) = (root.path().join("a"), root.path().join("b"));
        // Made before the ring directory exists: it takes the lock when the directory
        // appears, but the other one got there first.
        let mut late = drainer(&shm, &mine);
        std::fs::create_dir(&shm).unwrap();
        let mut first = drainer(&shm, &theirs);
        let _ring = filled(&shm, "svc", 10);
        let t = Instant::now();
        let r = late.cycle(Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!((r.written, r.more, late.rings()), (0, false, 0));
        assert_eq!(first.drain_all().unwrap().written, 10);
        // Once the first lets go, the other takes over.
        drop(first);
        let _more = filled(&shm, "svc2", 5);
        assert_eq!(late.drain_all().unwrap().written, 5);
    }
}
