//! One line per log record on stderr, in the form journald understands.
//!
//! When stderr is connected to the journal (systemd sets `JOURNAL_STREAM` to the device and
//! inode of that stream), each line starts with the sd-daemon priority prefix (`<3>` error …
//! `<7>` debug) so the journal files it under the right priority, and carries no timestamp
//! because the journal adds one. Otherwise lines read `LEVEL target: message`.
//!
//! A hand-written backend rather than `env_logger` or `systemd-journal-logger`: the first
//! knows nothing of priority prefixes, the second writes to the journal socket instead of
//! stderr (so a run by hand would print nothing), and this one is forty lines.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A log level name that Python's `logging` module does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown logging level {value:?}: expected one of CRITICAL, FATAL, ERROR, WARNING, WARN, INFO, DEBUG, NOTSET"
)]
pub struct LevelError {
    /// The value as given.
    pub value: String,
}

/// Parses one of Python's level names (`logging._nameToLevel`), in any case.
///
/// `CRITICAL` and `FATAL` map to `Error` (the `log` crate has nothing above it) and `NOTSET`,
/// which lets everything through in Python, maps to `Trace`.
///
/// ```
/// use log::LevelFilter;
/// assert_eq!(perf_daemon::logging::parse_level("warning"), Ok(LevelFilter::Warn));
/// assert!(perf_daemon::logging::parse_level("verbose").is_err());
/// ```
pub fn parse_level(value: &str) -> Result<LevelFilter, LevelError> {
    match value.to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => Ok(LevelFilter::Error),
        "WARNING" | "WARN" => Ok(LevelFilter::Warn),
        "INFO" => Ok(LevelFilter::Info),
        "DEBUG" => Ok(LevelFilter::Debug),
        "NOTSET" => Ok(LevelFilter::Trace),
        _ => Err(LevelError {
            value: value.to_owned(),
        }),
    }
}

/// Whether stderr is the stream named by `JOURNAL_STREAM` (`<device>:<inode>`).
///
/// Comparing device and inode, not just checking the variable, matters: a daemon started
/// from a shell inside a unit inherits the variable while its stderr is a terminal.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The stderr logger; see the module documentation for the line format.
#[derive(Debug)]
pub struct StderrLogger {
    level: LevelFilter,
    journal: bool,
}

impl StderrLogger {
    /// A logger passing records up to `level`, with priority prefixes if `journal`.
    pub fn new(level: LevelFilter, journal: bool) -> Self {
        StderrLogger { level, journal }
    }

    /// Formats one record as one line, newline included. Newlines inside the message are
    /// escaped so that a record never spans two journal entries.
    pub fn format(&self, record: &Record<'_>) -> String {
        let mut line = String::with_capacity(128);
        if self.journal {
            let _ = write!(line, "<{}>", priority(record.level()));
        } else {
            let _ = write!(line, "{} ", record.level());
        }
        let _ = write!(line, "{}: {}", record.target(), record.args());
        let mut line = if line.contains('\n') {
            line.replace('\n', "\\n")
        } else {
            line
        };
        line.push('\n');
        line
    }
}

/// sd-daemon(3) priorities: 3 error, 4 warning, 6 info, 7 debug.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            // One write per line keeps lines whole when several threads log; a closed
            // stderr is no reason to stop the daemon.
            let _ = std::io::stderr()
                .lock()
                .write_all(self.format(record).as_bytes());
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// Installs the stderr logger as the `log` backend, detecting the journal.
pub fn init(level: LevelFilter) -> Result<(), log::SetLoggerError> {
    let logger: &'static StderrLogger =
        Box::leak(Box::new(StderrLogger::new(level, stderr_is_journal())));
    log::set_logger(logger)?;
    log::set_max_level(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_python_level_name_in_any_case() {
        let cases = [
            ("CRITICAL", LevelFilter::Error),
            ("fatal", LevelFilter::Error),
            ("Error", LevelFilter::Error),
            ("WARNING", LevelFilter::Warn),
            ("warn", LevelFilter::Warn),
            ("info", LevelFilter::Info),
            ("INFO", LevelFilter::Info),
            ("dEbUg", LevelFilter::Debug),
            ("NOTSET", LevelFilter::Trace),
        ];
        for (name, want) in cases {
            assert_eq!(parse_level(name), Ok(want), "{name}");
        }
    }

    #[test]
    fn unknown_names_are_errors_that_name_the_value() {
        for bad in ["", "TRACE", "verbose", " INFO", "10"] {
            let err = parse_level(bad).unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    fn format(journal: bool, level: Level, msg: &str) -> String {
        let logger = StderrLogger::new(LevelFilter::Trace, journal);
        logger.format(
            &Record::builder()
                .level(level)
                .target("perf_sampler")
                .args(format_args!("{msg}"))
                .build(),
        )
    }

    #[test]
    fn journal_lines_carry_the_priority_prefix() {
        assert_eq!(
            format(true, Level::Info, "started"),
            "<6>perf_sampler: started\n"
        );
        assert_eq!(format(true, Level::Error, "x"), "<3>perf_sampler: x\n");
        assert_eq!(format(true, Level::Warn, "x"), "<4>perf_sampler: x\n");
        assert_eq!(format(true, Level::Debug, "x"), "<7>perf_sampler: x\n");
    }

    #[test]
    fn plain_lines_name_level_and_target_and_stay_one_line() {
        assert_eq!(
            format(false, Level::Warn, "disk full"),
            "WARN perf_sampler: disk full\n"
        );
        assert_eq!(
            format(false, Level::Info, "a\nb"),
            "INFO perf_sampler: a\\nb\n"
        );
    }

    #[test]
    fn levels_above_the_filter_are_dropped() {
        let logger = StderrLogger::new(LevelFilter::Warn, false);
        let meta = |level| Metadata::builder().level(level).build();
        assert!(logger.enabled(&meta(Level::Error)));
        assert!(logger.enabled(&meta(Level::Warn)));
        assert!(!logger.enabled(&meta(Level::Info)));
    }
}
