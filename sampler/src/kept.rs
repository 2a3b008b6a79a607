//! Processes' `/proc` files, kept open from one sample to the next: one process's files
//! ([`ProcFiles`]), and the sampler's table of them within a descriptor budget.
//!
//! Re-reading a kept descriptor with `pread` at offset 0 costs a third to a half of
//! opening, reading and closing the path (issue 17 measured 2.9 µs against 6.9 µs for
//! `stat`, 1.6 µs against 4.3 µs for `cmdline`, 1.0 µs against 4.6 µs for `statm`), and a
//! sample reads the command line of every process and `stat` and `statm` of every match,
//! every interval, for months.
//!
//! Identity: a descriptor opened on `/proc/PID/...` belongs to the process that held PID
//! when it was opened. Once that process has been reaped every read fails with `ESRCH`
//! ([`Skip::Gone`]), even after a new process got the same pid, so a kept descriptor can
//! never report another process's numbers. `cmdline` is opened first; `stat` and `statm`
//! only once the command line matches a filter (most processes never do). They are opened
//! by path, so right after opening them the kept `cmdline` descriptor is read once more: if
//! that read succeeds the first process still existed after they were opened, and a pid
//! is not handed out again while its process exists (even as a zombie), so all the
//! descriptors are of the same process.

use rustc_hash::FxHashMap;
use std::fmt::Write as _;
use std::fs::File;

use crate::cmdline::format_command;
use crate::cpu_clock::CpuClock;
use crate::fnmatch::Pattern;
use crate::proc::{read_whole, Skip, StatFields};
use crate::row::FormattedRow;

/// The open `/proc/PID` files of one process.
#[derive(Debug)]
pub struct ProcFiles {
    cmdline: File,
    /// `stat` and `statm`, once needed.
    usage: Option<(File, File)>,
}

fn open(pid: i32, name: &str, path: &mut String) -> Result<File, Skip> {
    path.clear();
    let _ = write!(path, "/proc/{pid}/{name}");
    Ok(File::open(&*path)?)
}

impl ProcFiles {
    /// Opens `/proc/PID/cmdline`; `path` is scratch space.
    pub fn open(pid: i32, path: &mut String) -> Result<ProcFiles, Skip> {
        Ok(ProcFiles {
            cmdline: open(pid, "cmdline", path)?,
            usage: None,
        })
    }

    /// Descriptors held: 1, or 3 once `stat` and `statm` are kept.
    pub fn descriptors(&self) -> usize {
        1 + 2 * usize::from(self.usage.is_some())
    }

    /// Descriptors [`ProcFiles::read_usage`] would add if it kept what it opens.
    pub fn usage_descriptors(&self) -> usize {
        2 * usize::from(self.usage.is_none())
    }

    /// Reads the command line into `buf` (raw, as `/proc/PID/cmdline` holds it).
    pub fn read_cmdline(&self, buf: &mut Vec<u8>) -> Result<(), Skip> {
        read_whole(&self.cmdline, buf)
    }

    /// Reads `/proc/PID/statm` through its kept descriptor; `None` if it is not kept.
    pub fn read_statm(&self, buf: &mut Vec<u8>) -> Option<Result<(), Skip>> {
        let (_, statm) = self.usage.as_ref()?;
        Some(read_whole(statm, buf))
    }

    /// Reads `/proc/PID/stat` and `statm`, opening them first if they are not open yet
    /// (see the module docs on identity). What is opened here is kept if `keep`, else
    /// closed again.
    pub fn read_usage(
        &mut self,
        pid: i32,
        keep: bool,
        path: &mut String,
        stat: &mut Vec<u8>,
        statm: &mut Vec<u8>,
    ) -> Result<(), Skip> {
        if let Some((stat_file, statm_file)) = &self.usage {
            read_whole(stat_file, stat)?;
            return read_whole(statm_file, statm);
        }
        let files = (open(pid, "stat", path)?, open(pid, "statm", path)?);
        // Proves the pid was not reused since `cmdline` was opened (module docs).
        read_whole(&self.cmdline, stat)?;
        read_whole(&files.0, stat)?;
        read_whole(&files.1, statm)?;
        if keep {
            self.usage = Some(files);
        }
        Ok(())
    }
}

/// A process that is not a kernel thread, its files open, as of the last sample that saw it.
#[derive(Debug)]
pub(crate) struct Known {
    pub(crate) files: ProcFiles,
    /// `/proc/PID/cmdline` as last read.
    pub(crate) raw: Vec<u8>,
    /// `raw` formatted as the Python tracker did.
    pub(crate) command: String,
    /// Whether `command` matches a filter.
    pub(crate) matched: bool,
    /// The sample that last listed it.
    pub(crate) seen: u64,
    /// Inode of its `/proc/PID` entry as last listed (see [`crate::cpu_clock`]).
    pub(crate) ino: u64,
    /// Its CPU clock.
    pub(crate) clock: CpuClock,
    /// The clock's figure just before the last read that completed (`None`: the last read
    /// failed, or there is no clock): while the clock shows it, `raw` and `stat` are
    /// current.
    pub(crate) read_at: Option<u64>,
    /// `stat`'s fields as last read, if it matched.
    pub(crate) stat: Option<StatFields>,
    /// Its last row's fields, to be written again while its figures stay the same.
    pub(crate) last_row: FormattedRow,
}

impl Known {
    /// A process just found under `pid`, listed with inode `ino`, its files open.
    pub(crate) fn new(files: ProcFiles, pid: i32, ino: u64, seen: u64) -> Known {
        Known {
            files,
            raw: Vec::new(),
            command: String::new(),
            matched: false,
            seen,
            ino,
            clock: CpuClock::of(pid),
            read_at: None,
            stat: None,
            last_row: FormattedRow::default(),
        }
    }

    /// Re-reads the command line (through `buf`); formats and matches it only if it changed.
    pub(crate) fn refresh(&mut self, filters: &[Pattern], buf: &mut Vec<u8>) -> Result<(), Skip> {
        self.files.read_cmdline(buf)?;
        if *buf != self.raw {
            // Copied rather than swapped: the scratch buffer keeps its capacity, and each
            // process holds only what its command line needs.
            self.raw.clear();
            self.raw.extend_from_slice(buf);
            format_command(&self.raw, &mut self.command);
            self.matched = is_match(filters, &self.command);
        }
        Ok(())
    }
}

pub(crate) fn is_match(filters: &[Pattern], command: &str) -> bool {
    !command.is_empty() && filters.iter().any(|f| f.matches(command))
}

/// The processes whose files are kept open, within a descriptor budget.
#[derive(Debug)]
pub(crate) struct KeptTable {
    /// Processes other than kernel threads, by pid.
    pub(crate) known: FxHashMap<i32, Known>,
    /// Descriptors held by `known`.
    pub(crate) fds: usize,
    /// Most descriptors `known` may hold.
    pub(crate) budget: usize,
    /// Whether running out of descriptors has been logged.
    pub(crate) out_of_fds_logged: bool,
}

impl KeptTable {
    /// Forgets `pid`, closing its files.
    pub(crate) fn remove(&mut self, pid: i32) {
        if let Some(gone) = self.known.remove(&pid) {
            self.fds -= gone.files.descriptors();
        }
    }

    /// Keeps `known` if the budget allows; returns whether it did.
    pub(crate) fn insert(&mut self, pid: i32, known: Known) -> bool {
        let fds = known.files.descriptors();
        if self.fds + fds > self.budget {
            return false;
        }
        self.fds += fds;
        if let Some(old) = self.known.insert(pid, known) {
            self.fds -= old.files.descriptors();
        }
        true
    }

    /// Closes the files of processes not listed in sample `samples`.
    pub(crate) fn drop_unlisted(&mut self, samples: u64) {
        let fds = &mut self.fds;
        self.known.retain(|_, k| {
            let listed = k.seen == samples;
            if !listed {
                *fds -= k.files.descriptors();
            }
            listed
        });
    }

    /// Opening failed with `EMFILE`/`ENFILE`: keep fewer descriptors from now on, and close
    /// the ones beyond that now, except those of `pid` (being read).
    pub(crate) fn out_of_descriptors(&mut self, pid: i32) {
        let budget = self.fds / 2;
        if !self.out_of_fds_logged {
            log::warn!(
                "out of file descriptors with {} /proc files open; keeping at most {budget}, \
                 reading other processes by path",
                self.fds
            );
            self.out_of_fds_logged = true;
        }
        self.budget = self.budget.min(budget);
        // Those of unmatched processes first.
        let mut pids: Vec<(bool, i32)> = self
            .known
            .iter()
            .filter(|&(&p, _)| p != pid)
            .map(|(&p, k)| (k.matched, p))
            .collect();
        pids.sort_unstable();
        for (_, victim) in pids {
            if self.fds <= self.budget {
                break;
            }
            self.remove(victim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_files_of_a_reaped_process_read_as_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let (mut path, mut buf, mut statm) = (String::new(), Vec::new(), Vec::new());
        let mut files = ProcFiles::open(pid, &mut path).unwrap();
        assert_eq!(files.usage_descriptors(), 2);
        files
            .read_usage(pid, true, &mut path, &mut buf, &mut statm)
            .unwrap();
        assert_eq!((files.descriptors(), files.usage_descriptors()), (3, 0));
        assert!(buf.starts_with(format!("{pid} (").as_bytes()));
        assert!(!statm.is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(files.read_cmdline(&mut buf), Err(Skip::Gone)));
        assert!(matches!(
            files.read_usage(pid, true, &mut path, &mut buf, &mut statm),
            Err(Skip::Gone)
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn usage_files_are_kept_only_when_asked() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let (mut path, mut buf, mut statm) = (String::new(), Vec::new(), Vec::new());
        let mut files = ProcFiles::open(pid, &mut path).unwrap();
        files
            .read_usage(pid, false, &mut path, &mut buf, &mut statm)
            .unwrap();
        assert_eq!(files.descriptors(), 1);
        assert!(!buf.is_empty() && !statm.is_empty());
        files.read_cmdline(&mut buf).unwrap();
        assert!(!buf.is_empty());
    }
}
