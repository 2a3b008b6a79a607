//! How both daemons tell the journal that their storage is failing: one policy, written once.
//!
//! A full or read-only disk is retried every interval (each second or so for the drainer,
//! every sample for the tracker), so logging every failure would flood the journal, and
//! logging only the first would leave a problem that lasts for hours silent. The policy:
//!
//! - a failure is logged when it starts, when its cause changes (full → read-only), and
//!   then at most once every [`StorageLog::EVERY`] while it lasts, as a reminder;
//! - failures in between are not logged at all (not even at debug level: a daemon run with
//!   debug logs would otherwise still print one line per interval);
//! - the recovery is logged once, with how long the storage had been failing.
//!
//! The cause is a few words chosen from the errno ([`cause`]), not the whole message: the
//! same full disk can fail the CSV append in one round and the checkpoint write in the
//! next, and that is still the one problem the operator has to fix.
//!
//! [`StorageLog`] only decides; the daemon writes the line itself, so the message says
//! what that daemon does meanwhile (records wait in the rings, rows are kept pending).

use std::io;
use std::time::{Duration, Instant};

/// The cause of a storage error in a few words, from its errno.
pub fn cause(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "storage is full",
        Some(libc::EROFS) => "storage is read-only",
        Some(libc::EACCES) | Some(libc::EPERM) => "storage is not writable",
        _ => "storage error",
    }
}

/// Whether `err` is a state of the storage itself (full, read-only, not writable), which a
/// daemon reports and waits out and which restarting it would not change; anything else
/// (`EMFILE`, `EIO`, …) may be the daemon's own trouble.
pub fn waits_out(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSPC)
            | Some(libc::EDQUOT)
            | Some(libc::EFBIG)
            | Some(libc::EROFS)
            | Some(libc::EACCES)
            | Some(libc::EPERM)
    )
}

/// Whether `err` says the storage has no room (rather than being unwritable): a smaller
/// write may still fit.
pub fn is_full(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    )
}

/// A failure going on.
#[derive(Debug, Clone, Copy)]
struct Failing {
    since: Instant,
    cause: &'static str,
    logged: Instant,
}

/// The rate limiter of storage-failure log lines; see the module documentation.
#[derive(Debug, Clone)]
pub struct StorageLog {
    every: Duration,
    failing: Option<Failing>,
}

impl Default for StorageLog {
    fn default() -> Self {
        StorageLog::new()
    }
}

impl StorageLog {
    /// How often a lasting failure is logged again.
    pub const EVERY: Duration = Duration::from_secs(60);

    /// A log that repeats a lasting failure every [`StorageLog::EVERY`].
    pub fn new() -> StorageLog {
        StorageLog::with_period(StorageLog::EVERY)
    }

    /// A log that repeats a lasting failure every `every`.
    pub fn with_period(every: Duration) -> StorageLog {
        StorageLog {
            every,
            failing: None,
        }
    }

    /// Whether the storage is failing now (a failure was noted and no success since).
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Notes a failure with `cause` (see [`cause`]); returns whether to log it now.
    pub fn failed(&mut self, cause: &'static str) -> bool {
        self.failed_at(Instant::now(), cause)
    }

    /// [`StorageLog::failed`] at `now`.
    pub fn failed_at(&mut self, now: Instant, cause: &'static str) -> bool {
        match &mut self.failing {
            None => {
                self.failing = Some(Failing {
                    since: now,
                    cause,
                    logged: now,
                });
                true
            }
            Some(f) => {
                let due = f.cause != cause || now.saturating_duration_since(f.logged) >= self.every;
                if due {
                    f.cause = cause;
                    f.logged = now;
                }
                due
            }
        }
    }

    /// Notes a success; returns how long the storage had been failing if it had, i.e.
    /// whether to log the recovery (once).
    pub fn succeeded(&mut self) -> Option<Duration> {
        self.succeeded_at(Instant::now())
    }

    /// [`StorageLog::succeeded`] at `now`.
    pub fn succeeded_at(&mut self, now: Instant) -> Option<Duration> {
        self.failing
            .take()
            .map(|f| now.saturating_duration_since(f.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_states_of_the_storage_are_waited_out() {
        for errno in [libc::ENOSPC, libc::EDQUOT, libc::EROFS, libc::EACCES] {
            assert!(waits_out(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::EMFILE, libc::ENFILE, libc::EIO, libc::ENOMEM] {
            assert!(!waits_out(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
    }

    const FULL: &str = "storage is full";
    const RO: &str = "storage is read-only";

    #[test]
    fn a_lasting_failure_is_logged_at_start_then_once_a_period() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut log = StorageLog::new();
        assert!(log.failed_at(t0, FULL));
        assert!(!log.failed_at(t0 + s, FULL));
        assert!(!log.failed_at(t0 + 59 * s, FULL));
        assert!(log.failed_at(t0 + 60 * s, FULL));
        assert!(!log.failed_at(t0 + 61 * s, FULL));
        assert!(log.failed_at(t0 + 120 * s, FULL));
        assert!(log.is_failing());
    }

    #[test]
    fn a_new_cause_is_logged_at_once() {
        let t0 = Instant::now();
        let mut log = StorageLog::new();
        assert!(log.failed_at(t0, FULL));
        assert!(log.failed_at(t0 + Duration::from_secs(1), RO));
        assert!(!log.failed_at(t0 + Duration::from_secs(2), RO));
    }

    #[test]
    fn the_recovery_is_reported_once_with_the_outage_length() {
        let t0 = Instant::now();
        let mut log = StorageLog::new();
        assert_eq!(log.succeeded_at(t0), None);
        assert!(log.failed_at(t0, FULL));
        assert!(!log.failed_at(t0 + Duration::from_secs(5), FULL));
        assert_eq!(
            log.succeeded_at(t0 + Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(log.succeeded_at(t0 + Duration::from_secs(8)), None);
        assert!(!log.is_failing());
        // A failure after the recovery is news again.
        assert!(log.failed_at(t0 + Duration::from_secs(9), FULL));
    }

    #[test]
    fn causes_come_from_the_errno() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(cause(&e(libc::ENOSPC)), FULL);
        assert_eq!(cause(&e(libc::EDQUOT)), FULL);
        assert_eq!(cause(&e(libc::EROFS)), RO);
        assert_eq!(cause(&e(libc::EACCES)), "storage is not writable");
        assert_eq!(cause(&e(libc::EIO)), "storage error");
        assert!(is_full(&e(libc::EFBIG)) && is_full(&e(libc::ENOSPC)));
        assert!(!is_full(&e(libc::EROFS)));
    }
}
