//! Reading processes from /proc.
//!
//! Per sample: `btime` from `/proc/stat` once, then the command line of every process, and
//! `stat` plus `statm` only for those whose command line matches a filter. Each process is
//! read through one `/proc/PID` directory handle (`procfs::process::Process`), so a pid
//! reused between two reads fails instead of mixing two processes.
//!
//! Any failure to read one process — it exited, turned zombie, or we may not read it — is
//! a [`Skip`], never an error for the sample.

use std::io::{self, Read};

use procfs::process::{Process, Stat};
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

/// Boot time in seconds since the epoch (`btime` in `/proc/stat`).
///
/// Read for every sample rather than cached: the kernel moves it when the wall clock is
/// stepped (NTP at boot on a robot without an RTC), and start times must follow. Parsed by
/// hand because `procfs`'s `boot_time_secs()` caches the value for the life of the process
/// and `KernelStats` parses every CPU line to get at it.
pub fn boot_time(buf: &mut Vec<u8>) -> Result<u64, ProcFsError> {
    buf.clear();
    std::fs::File::open("/proc/stat")
        .and_then(|mut f| f.read_to_end(buf))
        .map_err(ProcFsError::BootTime)?;
    parse_btime(buf).ok_or_else(|| {
        ProcFsError::BootTime(io::Error::new(io::ErrorKind::InvalidData, "no btime line"))
    })
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

/// Reads a small /proc file (`cmdline`, `stat`, `statm`) by path into `buf` (cleared
/// first), in as few system calls as
/// possible: procfs fills a read as far as the buffer allows, so a short read is the end
/// and the usual confirming read of zero bytes is skipped.
pub fn read_cmdline_at(path: &str, buf: &mut Vec<u8>) -> Result<(), Skip> {
    buf.clear();
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        if buf.len() < len + 4096 {
            buf.resize(len + 4096, 0);
        }
        let n = match file.read(&mut buf[len..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.clear();
                return Err(e.into());
            }
        };
        len += n;
        if n == 0 || len < buf.len() {
            break;
        }
    }
    buf.truncate(len);
    Ok(())
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

/// Reads `stat` and `statm` of one process.
///
/// The arithmetic is psutil's, in the same order, so the same inputs give the same floats:
/// `ticks / CLK_TCK + btime` for the start time (from the integer tick count, not procfs's
/// f32 `starttime()`), `ticks / CLK_TCK` for CPU times and `rss / total * 100` for memory.
pub fn read_usage(process: &Process, info: &SystemInfo, btime: u64) -> Result<Usage, Skip> {
    let stat: Stat = process.stat()?;
    if stat.state == 'Z' {
        return Err(Skip::Zombie);
    }
    usage(&stat, &process.statm()?, info, btime)
}

/// [`read_usage`] by path (`/proc/PID`), for the scan: the files are read in one system
/// call each into `buf` and parsed by `procfs`, without a directory handle. The window in
/// which the pid could be reused since its command line was read is a few microseconds;
/// reusing it needs the whole pid space to wrap in that time.
pub fn read_usage_at(
    pid: i32,
    info: &SystemInfo,
    btime: u64,
    path: &mut String,
    buf: &mut Vec<u8>,
) -> Result<Usage, Skip> {
    use procfs::FromRead;
    use std::fmt::Write as _;
    path.clear();
    let _ = write!(path, "/proc/{pid}/stat");
    read_cmdline_at(path, buf)?;
    let stat = Stat::from_read(&buf[..])?;
    if stat.state == 'Z' {
        return Err(Skip::Zombie);
    }
    path.push('m');
    read_cmdline_at(path, buf)?;
    let statm = procfs::process::StatM::from_read(&buf[..])?;
    usage(&stat, &statm, info, btime)
}

fn usage(
    stat: &Stat,
    statm: &procfs::process::StatM,
    info: &SystemInfo,
    btime: u64,
) -> Result<Usage, Skip> {
    let hz = info.ticks_per_second as f64;
    let resident_bytes = statm.resident.saturating_mul(info.page_size);
    let rss = resident_bytes as f64;
    Ok(Usage {
        running_since: stat.starttime as f64 / hz + btime as f64,
        user_cpu_time: stat.utime as f64 / hz,
        system_cpu_time: stat.stime as f64 / hz,
        memory_percent: rss / info.mem_total as f64 * 100.0,
        resident_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_line_is_found() {
        let stat = b"cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1722449000\nprocesses 7\n";
        assert_eq!(parse_btime(stat), Some(1722449000));
        assert_eq!(parse_btime(b"cpu 1\n"), None);
        assert_eq!(parse_btime(b"btime x\n"), None);
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
        // The arguments appear once exec has finished.
        for _ in 0..500 {
            read_cmdline_at(&path, &mut buf).unwrap();
            if !buf.is_empty() {
                whole = buf == format!("sh\0-c\0read x\0{long}\0").into_bytes();
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
