//! Reading processes from /proc: the machine's constants, boot time, and the parts of
//! `/proc/PID/cmdline`, `stat` and `statm` a row needs.
//!
//! `stat` carries a resident size too, but it is not the one psutil (and so the Python
//! tracker) reported: since Linux 6.16 `statm` sums the per-CPU parts of the counter and
//! `stat` does not, and on this machine the two differ by tens of pages for an idle
//! `sleep` (421 against 450 pages, for good: idle processes never fold their per-CPU
//! parts). Rows keep the Python tracker's figure, so `statm` is read, through a kept
//! descriptor like the others.
//!
//! Any failure to read one process — it exited, turned zombie, or we may not read it — is
//! a [`Skip`], never an error for the sample.

use std::io::{self, Read};

use procfs::process::Process;
use procfs::ProcError;

/// Facts about the machine that do not change while the daemon runs, read at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemInfo {
    /// `sysconf(_SC_CLK_TCK)`: units of the tick counts in `/proc/PID/stat`.
    pub ticks_per_second: u64,
    /// `sysconf(_SC_PAGESIZE)`: units of `/proc/PID/statm`.
    pub page_size: u64,
    /// `MemTotal` in bytes (what psutil's `virtual_memory().total` reports).
    pub mem_total: u64,
}

/// Reading the machine's constants or the process list failed: /proc is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ProcFsError {
    /// `/proc/meminfo` could not be read.
    #[error("cannot read total memory from /proc/meminfo: {0}")]
    MemInfo(#[source] ProcError),
    /// A constant was zero, which would make every figure meaningless.
    #[error("implausible system constant: {0}")]
    Constant(&'static str),
    /// `/proc/stat` could not be read or has no `btime` line.
    #[error("cannot read boot time from /proc/stat: {0}")]
    BootTime(#[source] io::Error),
    /// `/proc` could not be listed.
    #[error("cannot list /proc: {0}")]
    List(#[source] ProcError),
}

impl SystemInfo {
    /// Reads the constants from the running system.
    pub fn read() -> Result<SystemInfo, ProcFsError> {
        use procfs::Current;
        let mem_total = procfs::Meminfo::current()
            .map_err(ProcFsError::MemInfo)?
            .mem_total;
        let info = SystemInfo {
            ticks_per_second: procfs::ticks_per_second(),
            page_size: procfs::page_size(),
            mem_total,
        };
        if info.ticks_per_second == 0 {
            return Err(ProcFsError::Constant("clock ticks per second is 0"));
        }
        if info.mem_total == 0 {
            return Err(ProcFsError::Constant("MemTotal is 0"));
        }
        Ok(info)
    }
}

/// Boot time in seconds since the epoch (`btime` in `/proc/stat`), opening the file.
pub fn boot_time(buf: &mut Vec<u8>) -> Result<u64, ProcFsError> {
    BootTime::default().read(buf)
}

/// Boot time in seconds since the epoch (`btime` in `/proc/stat`).
///
/// Found for every sample rather than cached: the kernel moves it when the wall clock is
/// stepped (NTP at boot on a robot without an RTC), and start times must follow. The
/// kernel's `btime` is the whole seconds of `CLOCK_REALTIME - CLOCK_BOOTTIME`
/// (`getboottime64`), so it is computed from the clocks (vDSO, no system call) instead of
/// having the kernel generate all of `/proc/stat`; when that cannot be told for sure (the
/// difference is within a clock read of a whole second) `/proc/stat` is read, through a
/// descriptor kept open. It is parsed by hand because `procfs`'s `boot_time_secs()`
/// caches the value for the life of the process.
#[derive(Debug, Default)]
pub struct BootTime {
    file: Option<std::fs::File>,
}

impl BootTime {
    /// The current `btime`; `buf` is scratch space.
    pub fn read(&mut self, buf: &mut Vec<u8>) -> Result<u64, ProcFsError> {
        match btime_from_clocks() {
            Some(btime) => Ok(btime),
            None => self.read_proc_stat(buf),
        }
    }

    /// `btime` from `/proc/stat`.
    pub fn read_proc_stat(&mut self, buf: &mut Vec<u8>) -> Result<u64, ProcFsError> {
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(std::fs::File::open("/proc/stat").map_err(ProcFsError::BootTime)?),
        };
        read_whole(file, buf).map_err(|e| {
            self.file = None;
            ProcFsError::BootTime(io::Error::other(e.to_string()))
        })?;
        parse_btime(buf).ok_or_else(|| {
            ProcFsError::BootTime(io::Error::new(io::ErrorKind::InvalidData, "no btime line"))
        })
    }
}

/// `btime` from the clocks, if certain. `CLOCK_REALTIME - CLOCK_BOOTTIME` at one instant is
/// exactly the kernel's offset; read between two reads of `CLOCK_BOOTTIME` it is bracketed
/// by `[r - b2, r - b1]`, and if both ends have the same whole seconds, so has the offset.
fn btime_from_clocks() -> Option<u64> {
    use nix::time::{clock_gettime, ClockId};
    let ns = |clock| {
        let t = clock_gettime(clock).ok()?;
        Some(i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
    };
    let b1 = ns(ClockId::CLOCK_BOOTTIME)?;
    let r = ns(ClockId::CLOCK_REALTIME)?;
    let b2 = ns(ClockId::CLOCK_BOOTTIME)?;
    let (low, high) = (
        (r - b2).div_euclid(1_000_000_000),
        (r - b1).div_euclid(1_000_000_000),
    );
    if low != high {
        return None;
    }
    u64::try_from(low).ok()
}

fn parse_btime(stat: &[u8]) -> Option<u64> {
    stat.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"btime "))
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Why a process was left out of a sample.
#[derive(Debug, thiserror::Error)]
pub enum Skip {
    /// It exited (or its pid was reused) between listing and reading.
    #[error("process is gone")]
    Gone,
    /// It is a zombie: exited, not yet reaped, nothing left to measure.
    #[error("process is a zombie")]
    Zombie,
    /// We may not read it.
    #[error("permission denied")]
    Denied,
    /// The process (or the system) has no file descriptor left to open its files.
    #[error("out of file descriptors")]
    NoDescriptors,
    /// Anything else (a malformed /proc file, an I/O error).
    #[error("{0}")]
    Other(String),
}

impl From<ProcError> for Skip {
    fn from(e: ProcError) -> Skip {
        match e {
            ProcError::NotFound(_) => Skip::Gone,
            ProcError::PermissionDenied(_) => Skip::Denied,
            // A process that exits while we read yields short or empty files.
            ProcError::Incomplete(_) => Skip::Gone,
            ProcError::Io(e, _) => Skip::from(e),
            other => Skip::Other(other.to_string()),
        }
    }
}

impl From<io::Error> for Skip {
    fn from(e: io::Error) -> Skip {
        match (e.kind(), e.raw_os_error()) {
            (io::ErrorKind::NotFound, _) => Skip::Gone,
            (_, Some(libc::ESRCH)) => Skip::Gone,
            (_, Some(libc::EMFILE | libc::ENFILE)) => Skip::NoDescriptors,
            (io::ErrorKind::PermissionDenied, _) => Skip::Denied,
            _ => Skip::Other(e.to_string()),
        }
    }
}

/// Reads `/proc/PID/cmdline` as raw bytes into `buf` (cleared first).
pub fn read_cmdline(process: &Process, buf: &mut Vec<u8>) -> Result<(), Skip> {
    buf.clear();
    let mut file = process.open_relative("cmdline")?;
    file.read_to_end(buf)?;
    Ok(())
}

/// Reads a small /proc file (`cmdline`, `stat`) by path into `buf` (cleared first): open,
/// [`read_whole`], close.
pub fn read_cmdline_at(path: &str, buf: &mut Vec<u8>) -> Result<(), Skip> {
    let file = std::fs::File::open(path)?;
    read_whole(&file, buf)
}

/// Reads a whole /proc file from offset 0 into `buf` (cleared first), with `pread`, so a
/// descriptor kept open reads the current contents every time.
///
/// As few system calls as possible: /proc fills a read as far as the buffer allows, so a
/// short read is the end and the usual confirming read of zero bytes is skipped. The read
/// goes straight into `buf`'s spare capacity, which is not zeroed first (zeroing 4 KiB
/// before each of a sample's hundreds of reads showed in its profile). On a descriptor of
/// a process that has exited the read fails with `ESRCH` ([`Skip::Gone`]), even if its
/// pid now belongs to another process.
pub fn read_whole(file: &std::fs::File, buf: &mut Vec<u8>) -> Result<(), Skip> {
    use std::os::fd::AsRawFd;
    buf.clear();
    loop {
        buf.reserve(4096);
        let Ok(offset) = libc::off_t::try_from(buf.len()) else {
            return Err(Skip::Other("file too large".into()));
        };
        let spare = buf.spare_capacity_mut();
        // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf`; pread
        // writes at most that many bytes into it and nothing else.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                offset,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            buf.clear();
            return Err(e.into());
        };
        let filled = n == spare.len();
        // SAFETY: pread initialised the first `n` bytes of the spare capacity, so the
        // first `len + n` bytes of `buf` are initialised.
        unsafe { buf.set_len(buf.len() + n) };
        if n == 0 || !filled {
            return Ok(());
        }
    }
}

/// The fields of `/proc/PID/stat` the sampler needs, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFields {
    /// Process state (`R`, `S`, `Z`, ...), field 3.
    pub state: u8,
    /// Parent pid, field 4.
    pub ppid: i32,
    /// User CPU time, clock ticks, field 14.
    pub utime: u64,
    /// System CPU time, clock ticks, field 15.
    pub stime: u64,
    /// Start time after boot, clock ticks, field 22.
    pub starttime: u64,
}

impl StatFields {
    /// Whether this is a kernel thread made by `kthreadd` (pid 2): such a thread never
    /// execs a program, so it never gains a command line. (Usermode helpers, which do
    /// exec, are children of a workqueue worker instead.)
    pub fn is_kthreadd_thread(&self, pid: i32) -> bool {
        pid == 2 || self.ppid == 2
    }
}

/// Parses the fields the sampler needs from the text of `/proc/PID/stat`.
///
/// By hand rather than with `procfs::process::Stat` because this runs for every matched
/// process every sample and `Stat` parses (and allocates for) all 52 fields; `procfs` stays
/// the oracle in the tests. The command name (field 2) may hold spaces and parentheses, so
/// the fields are counted from its last `)`.
pub fn parse_stat(text: &[u8]) -> Option<StatFields> {
    fn number<T: std::str::FromStr>(field: Option<&[u8]>) -> Option<T> {
        std::str::from_utf8(field?).ok()?.trim_end().parse().ok()
    }
    let close = text.iter().rposition(|&b| b == b')')?;
    // Yields field 3, then 4, ...; `nth(k)` skips k fields.
    let mut fields = text.get(close + 2..)?.split(|&b| b == b' ');
    let state = *fields.next()?.first()?;
    let ppid = number(fields.next())?;
    let utime = number(fields.nth(14 - 5))?;
    let stime = number(fields.next())?;
    let starttime = number(fields.nth(22 - 16))?;
    Some(StatFields {
        state,
        ppid,
        utime,
        stime,
        starttime,
    })
}

/// The resident set size in pages from the text of `/proc/PID/statm` (its second field;
/// what psutil's `memory_info().rss` reports, in bytes).
pub fn parse_statm_resident(text: &[u8]) -> Option<u64> {
    let field = text.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(field).ok()?.trim_end().parse().ok()
}

/// CPU and memory of one process, in the units of the output table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Start time, seconds since the epoch.
    pub running_since: f64,
    /// User CPU time, seconds.
    pub user_cpu_time: f64,
    /// System CPU time, seconds.
    pub system_cpu_time: f64,
    /// Resident memory as a percentage of `MemTotal`.
    pub memory_percent: f64,
    /// Resident memory in bytes (for the metrics; the CSV has only the percentage).
    pub resident_bytes: u64,
}

impl Usage {
    /// A row's figures from `stat` and `statm`'s resident pages, or [`Skip::Zombie`].
    ///
    /// The arithmetic is psutil's, in the same order, so the same inputs give the same
    /// floats: `ticks / CLK_TCK + btime` for the start time, `ticks / CLK_TCK` for CPU
    /// times and `rss / total * 100` for memory.
    pub fn from_fields(
        stat: &StatFields,
        resident_pages: u64,
        info: &SystemInfo,
        btime: u64,
    ) -> Result<Usage, Skip> {
        if stat.state == b'Z' {
            return Err(Skip::Zombie);
        }
        let hz = info.ticks_per_second as f64;
        let resident_bytes = resident_pages.saturating_mul(info.page_size);
        let rss = resident_bytes as f64;
        Ok(Usage {
            running_since: stat.starttime as f64 / hz + btime as f64,
            user_cpu_time: stat.utime as f64 / hz,
            system_cpu_time: stat.stime as f64 / hz,
            memory_percent: rss / info.mem_total as f64 * 100.0,
            resident_bytes,
        })
    }

    /// [`Usage::from_fields`] on the texts of `/proc/PID/stat` and `/proc/PID/statm`.
    pub fn parse(stat: &[u8], statm: &[u8], info: &SystemInfo, btime: u64) -> Result<Usage, Skip> {
        let malformed = |what: &str| Skip::Other(format!("malformed {what}"));
        let fields = parse_stat(stat).ok_or_else(|| malformed("stat"))?;
        if fields.state == b'Z' {
            // A zombie's statm is all zeros; say why it is skipped.
            return Err(Skip::Zombie);
        }
        let resident = parse_statm_resident(statm).ok_or_else(|| malformed("statm"))?;
        Usage::from_fields(&fields, resident, info, btime)
    }
}

/// Reads `stat` and `statm` of one process through its `/proc/PID` handle.
pub fn read_usage(process: &Process, info: &SystemInfo, btime: u64) -> Result<Usage, Skip> {
    let (mut stat, mut statm) = (Vec::new(), Vec::new());
    read_whole(&process.open_relative("stat")?, &mut stat)?;
    read_whole(&process.open_relative("statm")?, &mut statm)?;
    Usage::parse(&stat, &statm, info, btime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use procfs::FromRead;

    #[test]
    fn btime_line_is_found() {
        let stat = b"cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1722449000\nprocesses 7\n";
        assert_eq!(parse_btime(stat), Some(1722449000));
        assert_eq!(parse_btime(b"cpu 1\n"), None);
        assert_eq!(parse_btime(b"btime x\n"), None);
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (a b) (c)) S 17 4242 4242 0 -1 4194560 1 2 3 4 \
            250 31 0 0 20 0 1 0 98765 12345678 777 18446744073709551615 1 1 0 0 0 0 0 0 0 0 \
            0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(line),
            Some(StatFields {
                state: b'S',
                ppid: 17,
                utime: 250,
                stime: 31,
                starttime: 98765,
            })
        );
        assert_eq!(parse_stat(b"1 (x) S 0 1"), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn stat_fields_agree_with_procfs() {
        let me = Process::myself().unwrap();
        let mut buf = Vec::new();
        read_whole(&me.open_relative("stat").unwrap(), &mut buf).unwrap();
        let ours = parse_stat(&buf).unwrap();
        let theirs = procfs::process::Stat::from_read(&buf[..]).unwrap();
        assert_eq!(ours.state, theirs.state as u8);
        assert_eq!(ours.ppid, theirs.ppid);
        assert_eq!(ours.utime, theirs.utime);
        assert_eq!(ours.stime, theirs.stime);
        assert_eq!(ours.starttime, theirs.starttime);
        read_whole(&me.open_relative("statm").unwrap(), &mut buf).unwrap();
        let statm = procfs::process::StatM::from_read(&buf[..]).unwrap();
        assert_eq!(parse_statm_resident(&buf), Some(statm.resident));
    }

    #[test]
    fn boot_time_from_the_clocks_is_the_kernels() {
        let mut boot = BootTime::default();
        let mut buf = Vec::new();
        let mut from_clocks = 0;
        for _ in 0..2000 {
            let Some(ours) = btime_from_clocks() else {
                continue;
            };
            from_clocks += 1;
            assert_eq!(ours, boot.read_proc_stat(&mut buf).unwrap());
        }
        assert!(from_clocks > 1000, "{from_clocks} of 2000 from the clocks");
    }

    #[test]
    fn system_info_is_plausible() {
        let info = SystemInfo::read().unwrap();
        assert!(info.ticks_per_second >= 100);
        assert!(info.page_size >= 4096);
        assert!(info.mem_total > 16 << 20);
        let mut buf = Vec::new();
        let btime = boot_time(&mut buf).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(btime > 1_000_000_000 && btime <= now);
    }

    #[test]
    fn cmdline_by_path_reads_long_command_lines_whole() {
        let long = "x".repeat(10_000);
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x", &long])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let path = format!("/proc/{}/cmdline", child.id());
        let mut buf = Vec::new();
        let mut whole = false;
        // The arguments appear once exec has finished. Until then the child shows its
        // parent's command line, not nothing, where spawn returns before the exec (qemu-user
        // runs posix_spawn's vfork as a plain fork): wait for the full line itself.
        let expected = format!("sh\0-c\0read x\0{long}\0").into_bytes();
        for _ in 0..500 {
            read_cmdline_at(&path, &mut buf).unwrap();
            whole = buf == expected;
            if whole {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(whole, "{} bytes read", buf.len());
        assert!(matches!(
            read_cmdline_at("/proc/0/cmdline", &mut buf),
            Err(Skip::Gone)
        ));
    }

    #[test]
    fn our_own_process_reads() {
        let me = Process::myself().unwrap();
        let mut buf = Vec::new();
        read_cmdline(&me, &mut buf).unwrap();
        assert!(!buf.is_empty());
        let info = SystemInfo::read().unwrap();
        let usage = read_usage(&me, &info, boot_time(&mut buf).unwrap()).unwrap();
        assert!(usage.memory_percent > 0.0 && usage.memory_percent < 100.0);
        assert!(usage.user_cpu_time >= 0.0);
    }
}
