//! A process's CPU clock, which tells whether it has run since it was last read.
//!
//! Reading `/proc/PID/cmdline` walks the process's page tables and `stat` sums and formats
//! fifty fields; together they were most of a sample's kernel time. What a row takes from
//! them can only change when the process runs: its command line changes by an exec or by
//! writing its own argv (setproctitle, perl's `$0`), which a thread of the process does;
//! CPU times, state and start time likewise. The kernel keeps the CPU time of all its
//! threads, living and exited, in nanoseconds, and `clock_gettime` on the process's CPU
//! clock returns it for about a quarter of a `statm` read (no file, nothing formatted). So
//! the sampler reads that clock first: if it shows the same figure as just before the last
//! complete read of the process, nothing of the process ran in between, and the command
//! line and `stat` read then are still what the files hold.
//!
//! The kernel adds a running thread's time to the figure at every scheduler tick and when
//! the thread stops running, not as it runs. So a process that ran since its last read
//! shows a new figure, with one exception: a thread that woke less than a tick (1 to 10
//! ms, `CONFIG_HZ`) before the clock is read and has been on a CPU without a break since.
//! An argv rewrite it did in that moment shows one sample later. Its CPU times are not
//! affected: `stat` is computed from the same figure.
//!
//! What can change without the process running is read every sample all the same: the
//! resident size (`statm`: reclaim and khugepaged change it behind an idle process).
//! Memory of the process written by another one (a debugger's `ptrace` pokes,
//! `process_vm_writev`) is not seen until the process itself runs.
//!
//! The clock is named by pid, which the kernel may hand to a new process once the old one
//! is reaped, so it is trusted only with proof of identity: the `/proc/PID` entry listed
//! has the inode the kept descriptors hang from (a reaped process's entry is dropped, and a
//! new process gets a new one), and a matched process's `statm` is read through its kept
//! descriptor after the clock, which fails once the process is gone. Pids name processes
//! in the reader's pid namespace; `/proc` may have been mounted for another one, so the
//! clocks are used only when `/proc` shows this process with one pid, in one namespace.

/// `CPUCLOCK_SCHED`: the scheduler's precise runtime, in nanoseconds.
const CPUCLOCK_SCHED: libc::clockid_t = 2;

/// The CPU clock of one process: all its threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuClock(libc::clockid_t);

impl CpuClock {
    /// The clock of process `pid`.
    ///
    /// Built as the kernel's `MAKE_PROCESS_CPUCLOCK` (a stable ABI glibc also builds)
    /// rather than through `clock_getcpuclockid`, which costs a system call to check that
    /// the process exists, for every new process.
    pub fn of(pid: i32) -> CpuClock {
        CpuClock((!pid).wrapping_shl(3) | CPUCLOCK_SCHED)
    }

    /// Nanoseconds of CPU the process has used, or `None` if it is gone (or the kernel
    /// has no such clocks).
    pub fn read(self) -> Option<u64> {
        let t = nix::time::clock_gettime(nix::time::ClockId::from_raw(self.0)).ok()?;
        let secs = u64::try_from(t.tv_sec()).ok()?;
        let nanos = u64::try_from(t.tv_nsec()).ok()?;
        Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }
}

/// Whether pids in `/proc` are pids in this process's pid namespace, so that a clock named
/// by a pid listed there is that process's: `/proc/self/status` lists one pid on its
/// `NSpid` line exactly when `/proc` was mounted for our own namespace. `false` if that
/// cannot be told (kernels before 4.1 have no `NSpid`).
pub fn proc_is_our_pid_namespace() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .is_some_and(|pids| pids.split_whitespace().count() == 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    #[test]
    fn the_clock_is_the_one_libc_names() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let libc = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid)).unwrap();
        assert_eq!(CpuClock::of(pid).0, libc.as_raw());
    }

    #[test]
    fn the_clock_moves_only_while_the_process_runs() {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; read y",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let clock = CpuClock::of(i32::try_from(child.id()).unwrap());
        // Once it waits in `read`, the figure stays put.
        let mut idle = clock.read().unwrap();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(20));
            let now = clock.read().unwrap();
            if now == idle {
                break;
            }
            idle = now;
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(clock.read(), Some(idle), "an idle process's clock moved");
        use std::io::Write;
        child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let busy = clock.read().unwrap();
        assert!(busy > idle, "{busy} after {idle}");
        drop(child.stdin.take());
        child.wait().unwrap();
        assert_eq!(clock.read(), None, "a reaped process has no clock");
    }

    #[test]
    fn tests_run_with_proc_of_their_own_namespace() {
        assert!(proc_is_our_pid_namespace());
    }
}
