//! Reading one process of a sample's listing into its row.
//!
//! A process already kept ([`Known`]) is read through its open descriptors: first its CPU
//! clock, which says whether it has run since its last complete read (if not, only a
//! matched process's `statm` is read, see [`crate::cpu_clock`]), else its command line and,
//! if that matches, `stat` and `statm`. A process not seen before has its files opened and
//! is kept within the descriptor budget; a kernel thread is recognised from `stat` once
//! and then remembered by pid and inode. Whatever one process does (exit, turn zombie,
//! refuse reading) is a [`Skip`] for that process alone.

use rustc_hash::FxHashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cpu_clock::CpuClock;
use crate::fnmatch::Pattern;
use crate::kept::{KeptTable, Known, ProcFiles};
use crate::metrics::Tally;
use crate::proc::{parse_stat, parse_statm_resident, Skip, SystemInfo, Usage};
use crate::row::{FormattedRow, Record};
use crate::sample::SampleStats;

/// Now, in ns since the epoch (CLOCK_REALTIME): a row's `query_time`.
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What a sample needs besides the process table, borrowed apart from it.
pub(crate) struct Scratch<'a> {
    pub(crate) info: &'a SystemInfo,
    pub(crate) btime: u64,
    /// Whether processes' CPU clocks may be trusted (see [`crate::cpu_clock`]).
    pub(crate) clocks: bool,
    pub(crate) buf: &'a mut Vec<u8>,
    pub(crate) statm: &'a mut Vec<u8>,
    pub(crate) path: &'a mut String,
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) stats: &'a mut SampleStats,
    /// Usage by command line for the metrics, when they are on.
    pub(crate) tally: Option<&'a mut Tally>,
}

impl Scratch<'_> {
    /// The CPU clock's figure, if clocks are trusted here.
    fn cpu_time(&self, clock: CpuClock) -> Option<u64> {
        self.clocks.then(|| clock.read()).flatten()
    }

    /// Appends the row of matched `known`; `keep` says whether `stat` and `statm` opened
    /// now may stay open. `cpu` is the process's CPU clock read before, kept as the time of
    /// this read if it completes.
    fn row(
        &mut self,
        pid: i32,
        known: &mut Known,
        keep: bool,
        cpu: Option<u64>,
    ) -> Result<(), Skip> {
        let query_time = now_ns();
        known
            .files
            .read_usage(pid, keep, self.path, self.buf, self.statm)?;
        let malformed = |what: &str| Skip::Other(format!("malformed {what}"));
        let stat = parse_stat(self.buf).ok_or_else(|| malformed("stat"))?;
        if stat.state == b'Z' {
            // A zombie's statm is all zeros; say why it is skipped.
            return Err(Skip::Zombie);
        }
        let resident = parse_statm_resident(self.statm).ok_or_else(|| malformed("statm"))?;
        let usage = Usage::from_fields(&stat, resident, self.info, self.btime)?;
        self.write(query_time, &known.command, &usage, &mut known.last_row);
        known.stat = Some(stat);
        known.read_at = cpu;
        Ok(())
    }

    /// Appends the row of matched `known`, which has not run since its last complete read,
    /// from the `stat` read then and a fresh `statm` (module docs of [`crate::cpu_clock`]).
    /// `None` if that cannot be done and the process needs reading in full: its `statm` is
    /// not kept, or reads as no resident memory at all (what a process exiting right now
    /// shows).
    fn unchanged_row(&mut self, known: &mut Known) -> Option<Result<(), Skip>> {
        let stat = known.stat?;
        let query_time = now_ns();
        if let Err(skip) = known.files.read_statm(self.statm)? {
            return Some(Err(skip));
        }
        let resident = parse_statm_resident(self.statm).filter(|&pages| pages > 0)?;
        let usage = Usage::from_fields(&stat, resident, self.info, self.btime).ok()?;
        self.write(query_time, &known.command, &usage, &mut known.last_row);
        Some(Ok(()))
    }

    fn write(&mut self, query_time: u64, command: &str, usage: &Usage, last: &mut FormattedRow) {
        last.write(
            self.out,
            &Record {
                query_time,
                command,
                usage: *usage,
            },
        );
        if let Some(tally) = &mut self.tally {
            tally.add(command, usage);
        }
        self.stats.rows += 1;
    }

    /// Leaves `pid` out of this sample.
    fn skip(&mut self, pid: i32, skip: Skip) {
        log::debug!("skipping pid {pid}: {skip}");
        self.stats.skipped += 1;
    }
}

/// Reads kept process `known`, listed with inode `ino`, without its command line and `stat`
/// if its CPU clock proves them unchanged. Returns `cpu`, the clock read first, when the
/// process needs reading in full.
fn visit_unchanged(
    known: &mut Known,
    samples: u64,
    (pid, ino): (i32, u64),
    scratch: &mut Scratch<'_>,
) -> Result<(), Option<u64>> {
    let cpu = scratch.cpu_time(known.clock);
    let unchanged = cpu.is_some() && cpu == known.read_at && ino == known.ino;
    // Set again by a read that completes.
    known.read_at = None;
    if !unchanged {
        return Err(cpu);
    }
    if known.matched {
        match scratch.unchanged_row(known) {
            None => return Err(cpu),
            Some(Ok(())) => known.read_at = cpu,
            Some(Err(skip)) => scratch.skip(pid, skip),
        }
        scratch.stats.matched += 1;
    } else {
        known.read_at = cpu;
    }
    known.seen = samples;
    scratch.stats.unchanged += 1;
    Ok(())
}

/// Reads one listed process, `(pid, inode of /proc/PID)`, in sample `samples`.
pub(crate) fn visit(
    kept: &mut KeptTable,
    kthreads: &FxHashMap<i32, u64>,
    next_kthreads: &mut FxHashMap<i32, u64>,
    filters: &[Pattern],
    samples: u64,
    (pid, ino): (i32, u64),
    scratch: &mut Scratch<'_>,
) {
    if let Some(known) = kept.known.get_mut(&pid) {
        let Err(cpu) = visit_unchanged(known, samples, (pid, ino), scratch) else {
            return;
        };
        scratch.stats.cmdlines_read += 1;
        match known.refresh(filters, scratch.buf) {
            Ok(()) => {
                known.seen = samples;
                known.ino = ino;
                if !known.matched {
                    known.read_at = cpu;
                    return;
                }
                scratch.stats.matched += 1;
                let held = known.files.descriptors();
                let room = kept.fds + known.files.usage_descriptors() <= kept.budget;
                let mut read = scratch.row(pid, known, room, cpu);
                kept.fds = kept.fds - held + known.files.descriptors();
                if matches!(read, Err(Skip::NoDescriptors)) {
                    // Make room, then read it once more without keeping what is opened.
                    kept.out_of_descriptors(pid);
                    if let Some(known) = kept.known.get_mut(&pid) {
                        read = scratch.row(pid, known, false, cpu);
                    }
                }
                if let Err(skip) = read {
                    scratch.skip(pid, skip);
                }
                return;
            }
            // Reaped; the pid may be a new process's now: read it as new below.
            Err(Skip::Gone) => kept.remove(pid),
            Err(skip) => {
                known.seen = samples;
                scratch.skip(pid, skip);
                return;
            }
        }
    }
    if kthreads.get(&pid) == Some(&ino) {
        next_kthreads.insert(pid, ino);
        return;
    }
    scratch.stats.cmdlines_read += 1;
    // Before any file is read, as the time of this read (see `Known::read_at`).
    let cpu = scratch.cpu_time(CpuClock::of(pid));
    let mut opened = ProcFiles::open(pid, scratch.path);
    if matches!(opened, Err(Skip::NoDescriptors)) {
        // Make room and try once more; if that fails too, the next sample will.
        kept.out_of_descriptors(pid);
        opened = ProcFiles::open(pid, scratch.path);
    }
    let mut known = match opened {
        Ok(files) => Known::new(files, pid, ino, samples),
        Err(skip) => return scratch.skip(pid, skip),
    };
    if let Err(skip) = known.refresh(filters, scratch.buf) {
        return scratch.skip(pid, skip);
    }
    if known.raw.is_empty() {
        // One read of `stat` tells a kernel thread, never to be read again (module docs).
        let stat = known
            .files
            .read_usage(pid, false, scratch.path, scratch.buf, scratch.statm)
            .map(|()| parse_stat(scratch.buf));
        match stat {
            Ok(Some(stat)) if stat.is_kthreadd_thread(pid) => {
                next_kthreads.insert(pid, ino);
                return;
            }
            Ok(_) => {}
            Err(skip) => return scratch.skip(pid, skip),
        }
    }
    if known.matched {
        scratch.stats.matched += 1;
        let room = kept.fds + known.files.descriptors() + known.files.usage_descriptors();
        let mut read = scratch.row(pid, &mut known, room <= kept.budget, cpu);
        if matches!(read, Err(Skip::NoDescriptors)) {
            kept.out_of_descriptors(pid);
            read = scratch.row(pid, &mut known, false, cpu);
        }
        if let Err(skip) = read {
            scratch.skip(pid, skip);
        }
    } else {
        known.read_at = cpu;
    }
    if !kept.insert(pid, known) {
        scratch.stats.by_path += 1;
    }
}
