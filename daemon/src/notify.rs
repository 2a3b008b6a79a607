//! systemd notifications through the `sd-notify` crate.
//!
//! Every function is a no-op when the process was not started by systemd with a notify
//! socket (`NOTIFY_SOCKET` unset), so daemons call them unconditionally. Failures to notify
//! are logged, never fatal: a lost `READY=1` shows up as a start timeout in systemd, which
//! is the right place to see it.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::shutdown::Shutdown;

fn send(state: &[NotifyState<'_>]) {
    // Keep NOTIFY_SOCKET set: later notifications (STOPPING, WATCHDOG) need it.
    if let Err(err) = sd_notify::notify(false, state) {
        log::warn!("cannot notify systemd: {err}");
    }
}

/// `READY=1`: start-up is done.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// `STOPPING=1`: shutdown has begun.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// `STATUS=...`: a one-line status shown by `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// Watchdog pings at half the interval systemd asked for (`WATCHDOG_USEC`).
#[derive(Debug)]
pub struct Watchdog {
    /// `None` when the unit has no `WatchdogSec=`.
    period: Option<Duration>,
    next_ping: Instant,
    /// The daemon cannot make progress: pings are withheld.
    stalled: bool,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID`; without them the watchdog is disabled.
    pub fn from_env() -> Watchdog {
        let mut usec = 0;
        let period = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec) / 2)
            .filter(|p| !p.is_zero());
        Watchdog::with_period(period)
    }

    /// A watchdog pinging every `period` (`None`: never). The first ping is due at once.
    pub fn with_period(period: Option<Duration>) -> Watchdog {
        Watchdog {
            period,
            next_ping: Instant::now(),
            stalled: false,
        }
    }

    /// The ping period, `None` when disabled.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Withholds every ping while `stalled`: a daemon that can no longer make progress
    /// (out of descriptors, say) must not tell systemd it is fine, so that systemd restarts
    /// it after `WatchdogSec`. Pings resume, the first at once, when it is `false` again.
    pub fn set_stalled(&mut self, stalled: bool) {
        if self.stalled && !stalled {
            self.next_ping = Instant::now();
        }
        self.stalled = stalled;
    }

    /// Whether pings are withheld ([`Watchdog::set_stalled`]).
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// Sends `WATCHDOG=1` if a ping is due at `now` (and the daemon is not stalled);
    /// returns whether it did.
    pub fn ping_if_due(&mut self, now: Instant) -> bool {
        let Some(period) = self.period else {
            return false;
        };
        if self.stalled {
            return false;
        }
        if now < self.next_ping {
            return false;
        }
        send(&[NotifyState::Watchdog]);
        self.next_ping = now + period;
        true
    }

    /// Sleeps until `deadline` or shutdown, waking to ping the watchdog on time.
    ///
    /// Returns `true` if shutdown was requested (at once, without waiting for `deadline`).
    pub fn sleep_until(&mut self, shutdown: &Shutdown, deadline: Instant) -> bool {
        loop {
            self.ping_if_due(Instant::now());
            let wake = match self.period {
                Some(_) => deadline.min(self.next_ping),
                None => deadline,
            };
            if shutdown.sleep_until(wake) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_watchdog_never_pings() {
        let mut w = Watchdog::with_period(None);
        assert!(!w.ping_if_due(Instant::now() + Duration::from_secs(3600)));
    }

    #[test]
    fn a_stalled_daemon_is_not_pinged_for_and_pings_resume_after() {
        let mut w = Watchdog::with_period(Some(Duration::from_secs(5)));
        let t0 = Instant::now();
        assert!(w.ping_if_due(t0));
        w.set_stalled(true);
        assert!(w.is_stalled());
        assert!(!w.ping_if_due(t0 + Duration::from_secs(60)));
        w.set_stalled(false);
        assert!(w.ping_if_due(Instant::now()));
    }

    #[test]
    fn pings_once_per_period() {
        let mut w = Watchdog::with_period(Some(Duration::from_secs(5)));
        let t0 = Instant::now();
        assert!(w.ping_if_due(t0));
        assert!(!w.ping_if_due(t0 + Duration::from_secs(4)));
        assert!(w.ping_if_due(t0 + Duration::from_secs(5)));
        assert!(!w.ping_if_due(t0 + Duration::from_secs(6)));
    }
}
