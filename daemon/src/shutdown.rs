//! SIGTERM/SIGINT as a shutdown request, and a sleep that a signal cuts short.
//!
//! The first signal sets a flag and writes a byte to a socket pair (signal-hook's self-pipe);
//! [`Shutdown::sleep_until`] blocks in `ppoll` on the other end with a timeout, so it wakes at
//! once on a signal and otherwise not before the deadline. A second signal, arriving while
//! the flag is already set, ends the process at once with exit status
//! [`FORCED_EXIT_STATUS`]: a stuck shutdown can still be interrupted from a terminal.

use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Exit status when a second SIGTERM/SIGINT forces the exit.
pub const FORCED_EXIT_STATUS: i32 = 1;

/// Setting up the signal handlers failed.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    /// The wake-up socket pair could not be created.
    #[error("cannot create the shutdown wake-up socket: {0}")]
    Socket(#[source] io::Error),
    /// A signal handler could not be registered.
    #[error("cannot register a handler for signal {signal}: {source}")]
    Register {
        /// The signal number.
        signal: i32,
        /// Why.
        source: io::Error,
    },
}

/// The shutdown request: a flag set by SIGTERM/SIGINT (or [`Shutdown::request`]).
#[derive(Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
}

impl Shutdown {
    /// A shutdown request that only [`Shutdown::request`] triggers (no signal handlers).
    pub fn new() -> Result<Shutdown, ShutdownError> {
        let (wake_rx, wake_tx) = UnixStream::pair().map_err(ShutdownError::Socket)?;
        // A full socket must not block whoever requests shutdown; the reader wakes anyway.
        wake_tx
            .set_nonblocking(true)
            .map_err(ShutdownError::Socket)?;
        Ok(Shutdown {
            flag: Arc::new(AtomicBool::new(false)),
            wake_rx,
            wake_tx,
        })
    }

    /// Registers the SIGTERM and SIGINT handlers.
    ///
    /// For each signal the forced exit is registered before the flag: signal-hook runs the
    /// actions in order, so the first signal finds the flag still clear and only sets it,
    /// while a second one finds it set and exits.
    pub fn install() -> Result<Shutdown, ShutdownError> {
        let shutdown = Shutdown::new()?;
        for signal in [SIGTERM, SIGINT] {
            let register = |r: io::Result<signal_hook::SigId>| {
                r.map(drop)
                    .map_err(|source| ShutdownError::Register { signal, source })
            };
            register(signal_hook::flag::register_conditional_shutdown(
                signal,
                FORCED_EXIT_STATUS,
                Arc::clone(&shutdown.flag),
            ))?;
            register(signal_hook::flag::register(
                signal,
                Arc::clone(&shutdown.flag),
            ))?;
            // The flag is set before the byte is written, so a woken sleeper sees it.
            let tx = shutdown
                .wake_tx
                .try_clone()
                .map_err(ShutdownError::Socket)?;
            register(signal_hook::low_level::pipe::register(signal, tx))?;
        }
        Ok(shutdown)
    }

    /// Whether shutdown was requested.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Requests shutdown, waking a thread blocked in [`Shutdown::sleep_until`].
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Sleeps until `deadline`, or less if shutdown is requested.
    ///
    /// Returns `true` if shutdown was requested (before or during the sleep), `false` when
    /// the deadline passed.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.requested() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wait = deadline - now;
            // One `ppoll` per sleep (a read with a timeout needed a `setsockopt` first): the
            // tracker sleeps once a second for months, and every system call of its loop
            // counts. Its timeout has nanosecond resolution, so the sleep does not end early.
            let timeout = TimeSpec::from_duration(wait);
            let mut fds = [PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN)];
            match ppoll(&mut fds, Some(timeout), None) {
                // A wake-up byte: the flag is set (it is set before the byte is written). The
                // byte is left in the socket, so that every sleeper, now and later, wakes:
                // draining it would send another thread in `ppoll` back to sleep, as `ppoll`
                // looks again before it returns.
                Ok(_) | Err(Errno::EINTR) => {}
                // Cannot happen for a descriptor we own; still, never spin.
                Err(_) => std::thread::sleep(wait.min(Duration::from_millis(100))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_until_the_deadline_without_a_request() {
        let s = Shutdown::new().unwrap();
        let start = Instant::now();
        assert!(!s.sleep_until(start + Duration::from_millis(150)));
        let slept = start.elapsed();
        assert!(slept >= Duration::from_millis(150), "{slept:?}");
        assert!(slept < Duration::from_secs(2), "{slept:?}");
    }

    #[test]
    fn a_past_deadline_returns_at_once() {
        let s = Shutdown::new().unwrap();
        let start = Instant::now();
        assert!(!s.sleep_until(start - Duration::from_millis(1)));
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn a_request_from_another_thread_wakes_the_sleeper_at_once() {
        let s = Arc::new(Shutdown::new().unwrap());
        let s2 = Arc::clone(&s);
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            s2.request();
        });
        assert!(s.sleep_until(start + Duration::from_secs(30)));
        let slept = start.elapsed();
        assert!(slept >= Duration::from_millis(100), "{slept:?}");
        assert!(slept < Duration::from_secs(5), "{slept:?}");
        t.join().unwrap();
        // Stays requested for every later sleep.
        assert!(s.sleep_until(Instant::now() + Duration::from_secs(30)));
    }

    #[test]
    fn one_request_wakes_every_sleeper() {
        // The demo runs both daemon loops in threads of one process on one Shutdown: if one
        // of them drained the wake-up byte, the other would sleep on to its deadline.
        let s = Arc::new(Shutdown::new().unwrap());
        let start = Instant::now();
        let sleepers: Vec<_> = (0..2)
            .map(|_| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || s.sleep_until(start + Duration::from_secs(30)))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        s.request();
        for t in sleepers {
            assert!(t.join().unwrap());
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }
}
