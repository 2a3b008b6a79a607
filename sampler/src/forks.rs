//! Whether any process has been created or reaped since the last listing of `/proc`.
//!
//! Listing `/proc` costs the kernel a walk over every pid in use (threads included) and a
//! dentry lookup per process: after the CPU clocks (see [`crate::cpu_clock`]) it was the
//! largest part of a sample. Its answer can only change when a task is created (a new pid)
//! or reaped (a pid gone): so the sampler reads two counters first, and uses the last
//! listing again when neither moved.
//!
//! - `/proc/loadavg`: the number of tasks (threads included, counted until reaped) and the
//!   last pid handed out. Cheap (a few numbers); if either moved, `/proc` is listed.
//! - Otherwise `/proc/stat`'s `processes`: every task ever created (64-bit, never wraps),
//!   which is proof where the last pid is not (the pid counter wraps at `pid_max`). Only
//!   read when the cheap figures have not moved, which on a quiet robot is most samples.
//!
//! Unchanged task creations mean no new process and no reused pid since the counters were
//! read before the last listing. Reaps are told by the task count only up to a race (a
//! creation and a reap between two reads of the two files); a process reaped but still in
//! the listing used again reads as gone, and is skipped as any process that exits while it
//! is read.

use std::fs::File;

use crate::proc::read_whole;

/// The counters as last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    tasks: u64,
    last_pid: u64,
    created: Option<u64>,
}

/// Reads the counters through descriptors kept open, and remembers them.
#[derive(Debug, Default)]
pub struct TaskCounters {
    loadavg: Option<File>,
    stat: Option<File>,
    last: Option<Counters>,
}

impl TaskCounters {
    /// Whether no task has been created or reaped since the last call that returned
    /// `false` or since `true` (the last listing is still right). `false` if unknown (the
    /// first call, a file that cannot be read): the caller lists `/proc`. `buf` is scratch.
    pub fn unchanged(&mut self, buf: &mut Vec<u8>) -> bool {
        let Some(cheap) = read(&mut self.loadavg, "/proc/loadavg", buf)
            .then(|| parse_loadavg(buf))
            .flatten()
        else {
            self.last = None;
            return false;
        };
        let stat = &mut self.stat;
        let (same, now) = compare(self.last, cheap, || {
            read(stat, "/proc/stat", buf)
                .then(|| parse_processes(buf))
                .flatten()
        });
        self.last = Some(now);
        same
    }
}

/// Whether the counters are `last` still, given `(tasks, last pid)` read now and a way to
/// read the tasks created (called only if the other two have not moved); and the counters
/// now.
fn compare(
    last: Option<Counters>,
    (tasks, last_pid): (u64, u64),
    created: impl FnOnce() -> Option<u64>,
) -> (bool, Counters) {
    let mut now = Counters {
        tasks,
        last_pid,
        created: None,
    };
    let Some(last) = last else {
        return (false, now);
    };
    if (last.tasks, last.last_pid) != (tasks, last_pid) {
        return (false, now);
    }
    now.created = created();
    (now.created.is_some() && now.created == last.created, now)
}

/// Reads the file at `path` into `buf`, opening it first if needed; `false` if it fails.
fn read(file: &mut Option<File>, path: &str, buf: &mut Vec<u8>) -> bool {
    if file.is_none() {
        *file = File::open(path).ok();
    }
    let Some(f) = file else { return false };
    if read_whole(f, buf).is_err() {
        *file = None;
        return false;
    }
    true
}

/// `(tasks, last pid)` from `/proc/loadavg`: `0.85 0.95 0.45 5/132 2936`.
fn parse_loadavg(text: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut fields = text.split_ascii_whitespace().skip(3);
    let (_, tasks) = fields.next()?.split_once('/')?;
    let last_pid = fields.next()?;
    Some((tasks.parse().ok()?, last_pid.parse().ok()?))
}

/// `processes` from `/proc/stat`: tasks created since boot.
fn parse_processes(text: &[u8]) -> Option<u64> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"processes "))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_parsed() {
        assert_eq!(
            parse_loadavg(b"0.85 0.95 0.45 5/132 2936\n"),
            Some((132, 2936))
        );
        assert_eq!(parse_loadavg(b"0.85 0.95 0.45 5 2936\n"), None);
        assert_eq!(parse_loadavg(b""), None);
        let stat = b"cpu  1 2 3\nintr 5 0 1\nctxt 9\nbtime 1722449000\nprocesses 71234\n";
        assert_eq!(parse_processes(stat), Some(71234));
        assert_eq!(parse_processes(b"cpu 1\n"), None);
    }

    #[test]
    fn only_counters_that_all_stayed_put_say_unchanged() {
        let at = |tasks, last_pid, created| Counters {
            tasks,
            last_pid,
            created,
        };
        let never = || -> Option<u64> { panic!("processes read though the cheap figures moved") };
        assert_eq!(compare(None, (10, 500), never), (false, at(10, 500, None)));
        let last = Some(at(10, 500, Some(7000)));
        assert_eq!(compare(last, (11, 500), never), (false, at(11, 500, None)));
        assert_eq!(compare(last, (10, 501), never), (false, at(10, 501, None)));
        // The pid counter wrapped back to the same pid: the creations tell.
        assert_eq!(
            compare(last, (10, 500), || Some(7100)),
            (false, at(10, 500, Some(7100)))
        );
        assert_eq!(
            compare(last, (10, 500), || None),
            (false, at(10, 500, None))
        );
        assert_eq!(
            compare(last, (10, 500), || Some(7000)),
            (true, at(10, 500, Some(7000)))
        );
        // After a change the creations are unknown: not unchanged until read twice.
        let moved = Some(at(10, 500, None));
        assert!(!compare(moved, (10, 500), || Some(7000)).0);
    }

    #[test]
    fn a_new_process_moves_the_counters() {
        let mut counters = TaskCounters::default();
        let mut buf = Vec::new();
        assert!(
            !counters.unchanged(&mut buf),
            "the first call knows nothing"
        );
        for _ in 0..3 {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            child.wait().unwrap();
            assert!(
                !counters.unchanged(&mut buf),
                "a process was created and reaped"
            );
        }
    }
}
