//! The daemon's loop, as a library function: `perf-drainer run` calls [`run`], and a caller
//! that drains in a thread of its own (the `perf-metrics demo`) calls [`serve`] with its own
//! shutdown flag and watchdog, so both run the very same loop.
//!
//! Each turn of the loop is one [`Drainer::cycle`], cut short after
//! [`RunOptions::cycle_limit`] so that shutdown and the watchdog are seen in time. A cycle
//! cut short (more records are waiting) is followed by the next one at once; otherwise the
//! loop sleeps until the next interval, waking for watchdog pings and at once on shutdown.
//! Shutdown ends with one final drain of at most [`RunOptions::final_drain_limit`].

use std::time::{Duration, Instant};

use perf_daemon::notify::{self, Watchdog};
use perf_daemon::shutdown::Shutdown;
use perf_daemon::storage_log::StorageLog;

use crate::drain::{Config, Drainer, Report};
use crate::error::DrainError;
use crate::metrics::DrainMetrics;

/// How the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Time from the start of one cycle to the start of the next.
    pub interval: Duration,
    /// A cycle returns to the loop at least this often (watchdog, shutdown).
    pub cycle_limit: Duration,
    /// The final drain on shutdown gives up after this long (records stay in the rings).
    pub final_drain_limit: Duration,
    /// Tell systemd `READY=1` and `STOPPING=1` (the daemon); a loop in a thread of a
    /// bigger program leaves that to the program.
    pub notify: bool,
}

impl RunOptions {
    /// The daemon's options: cycles every `interval`, cut short after 1 s, a final drain of
    /// at most 20 s, systemd notified.
    pub fn every(interval: Duration) -> RunOptions {
        RunOptions {
            interval,
            cycle_limit: Duration::from_secs(1),
            final_drain_limit: Duration::from_secs(20),
            notify: true,
        }
    }
}

/// `perf-drainer run`: sets the drainer up (waiting while the storage cannot hold its lock
/// file; keeping `metrics` up to date if given), drains every interval until `shutdown`,
/// then drains once more.
pub fn run(
    cfg: Config,
    opts: &RunOptions,
    shutdown: &Shutdown,
    watchdog: &mut Watchdog,
    metrics: Option<DrainMetrics>,
) -> Result<(), DrainError> {
    let Some(mut drainer) = start(cfg, opts, shutdown, watchdog)? else {
        return Ok(());
    };
    if let Some(m) = metrics {
        drainer.set_metrics(m);
    }
    // A storage problem is logged and retried each cycle; rings keep the records meanwhile.
    let _ = drainer.prepare();
    log::info!(
        "draining rings in {} into {} every {} s",
        drainer.config().shm_dir.display(),
        drainer.config().storage_dir.display(),
        opts.interval.as_secs_f64()
    );
    serve(&mut drainer, opts, shutdown, watchdog, &mut |_| {});
    Ok(())
}

/// The loop: `READY=1`, cycles until `shutdown`, `STOPPING=1`, then the final drain.
/// `on_cycle` sees the report of every cycle that committed (the final drain's included);
/// storage failures are logged by the drainer and retried at the next interval.
pub fn serve(
    drainer: &mut Drainer,
    opts: &RunOptions,
    shutdown: &Shutdown,
    watchdog: &mut Watchdog,
    on_cycle: &mut dyn FnMut(&Report),
) {
    if opts.notify {
        notify::ready();
    }
    loop {
        let start = Instant::now();
        let more = match drainer.cycle(start + opts.cycle_limit) {
            Ok(report) => {
                on_cycle(&report);
                report.more
            }
            Err(_) => false,
        };
        note_stall(drainer, watchdog);
        if shutdown.requested() {
            break;
        }
        if more {
            // Behind: go straight on, but keep the watchdog fed.
            watchdog.ping_if_due(Instant::now());
            continue;
        }
        if watchdog.sleep_until(shutdown, start + opts.interval) {
            break;
        }
    }
    if opts.notify {
        notify::stopping();
    }
    log::info!("shutdown requested: final drain");
    match drainer.cycle(Instant::now() + opts.final_drain_limit) {
        Ok(r) => {
            on_cycle(&r);
            log::info!(
                "final drain done: {} rows written{}; exiting",
                r.written,
                if r.more {
                    " (time limit reached, the rest stays in the rings)"
                } else {
                    ""
                }
            );
        }
        Err(e) => log::warn!(
            "final drain failed ({}); records stay in the rings for the next start",
            e.cause()
        ),
    }
}

/// Feeds the watchdog only while the drainer can make progress (see
/// [`Drainer::stalled`]): stuck for good (out of descriptors, say), it is restarted by
/// systemd after `WatchdogSec`; full or read-only storage is a state it reports and waits
/// out, where a restart would change nothing, so the watchdog stays fed.
fn note_stall(drainer: &Drainer, watchdog: &mut Watchdog) {
    let stalled = drainer.stalled();
    match (stalled, watchdog.is_stalled()) {
        (Some(why), false) => log::error!(
            "cannot make progress: {why}; watchdog pings withheld (systemd restarts the daemon after WatchdogSec if this lasts)"
        ),
        (None, true) => log::info!("making progress again; watchdog pings resume"),
        _ => {}
    }
    watchdog.set_stalled(stalled.is_some());
}

/// Sets the drainer up, waiting (and saying so, as [`StorageLog`] decides) while the storage
/// cannot even hold its lock file, e.g. read-only or full on the very first start: the
/// rings keep the records meanwhile. `None` if shutdown was asked for while waiting.
pub fn start(
    cfg: Config,
    opts: &RunOptions,
    shutdown: &Shutdown,
    watchdog: &mut Watchdog,
) -> Result<Option<Drainer>, DrainError> {
    let mut storage_log = StorageLog::new();
    loop {
        match Drainer::new(cfg.clone()) {
            Ok(drainer) => {
                if let Some(waited) = storage_log.succeeded() {
                    log::info!(
                        "storage usable after {:.1} s; starting",
                        waited.as_secs_f64()
                    );
                }
                return Ok(Some(drainer));
            }
            Err(e) => {
                let Some(cause) = e.storage_cause() else {
                    return Err(e);
                };
                if !storage_log.is_failing() && opts.notify {
                    // Up and retrying: systemd should not count this as a failed start.
                    notify::ready();
                }
                if storage_log.failed(cause) {
                    log::warn!(
                        "{e}; records stay in the rings, retrying every {} s",
                        opts.interval.as_secs_f64()
                    );
                }
                if watchdog.sleep_until(shutdown, Instant::now() + opts.interval) {
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use perf_ring::{ProducerRing, Record};

    use super::*;
    use crate::drain::ROUND_RECORDS;
    use crate::scan::AllowedUids;

    fn record(i: u64) -> Record {
        Record {
            start_ns: i,
            duration_ns: i,
            state: 0,
            tid: 1,
        }
    }

    struct Setup {
        shm: tempfile::TempDir,
        storage: tempfile::TempDir,
    }

    impl Setup {
        fn new() -> Setup {
            Setup {
                shm: tempfile::tempdir().unwrap(),
                storage: tempfile::tempdir().unwrap(),
            }
        }

        fn drainer(&self) -> Drainer {
            Drainer::new(Config {
                storage_dir: self.storage.path().to_path_buf(),
                shm_dir: self.shm.path().to_path_buf(),
                allowed: AllowedUids::with_defaults(&[]),
                context: true,
                rotation: None,
            })
            .unwrap()
        }

        fn rows(&self) -> usize {
            let csv = std::fs::read(self.storage.path().join(perf_table::ROBOT_ACTIVITY.name))
                .unwrap_or_default();
            csv.iter().filter(|&&b| b == b'\n').count()
        }
    }

    /// Runs [`serve`] until `react` (shown every report so far) requests shutdown; a guard
    /// requests it after 20 s, so a loop that hangs fails the test instead of hanging it.
    fn serve_until(
        drainer: &mut Drainer,
        opts: &RunOptions,
        mut react: impl FnMut(&[Report], &Shutdown),
    ) -> Vec<Report> {
        const GUARD: Duration = Duration::from_secs(20);
        let shutdown = Arc::new(Shutdown::new().unwrap());
        let guard = {
            let shutdown = Arc::clone(&shutdown);
            std::thread::spawn(move || {
                shutdown.sleep_until(Instant::now() + GUARD);
                shutdown.request();
            })
        };
        let started = Instant::now();
        let mut reports = Vec::new();
        serve(
            drainer,
            opts,
            &shutdown,
            &mut Watchdog::with_period(None),
            &mut |r| {
                reports.push(*r);
                react(&reports, &shutdown);
            },
        );
        assert!(started.elapsed() < GUARD, "{reports:?}");
        guard.join().unwrap();
        reports
    }

    #[test]
    fn a_cycle_cut_short_is_followed_by_the_next_at_once() {
        let setup = Setup::new();
        let total = 2 * ROUND_RECORDS as u64 + 5;
        let ring =
            ProducerRing::create(setup.shm.path(), "svc", &["CALIBRATING"], 1 << 17).unwrap();
        for i in 0..total {
            ring.push(&record(i)).unwrap();
        }
        let mut drainer = setup.drainer();
        // Every cycle is one round; the interval is an hour: only the fast path can drain
        // three rounds before the guard ends the loop.
        let opts = RunOptions {
            interval: Duration::from_secs(3600),
            cycle_limit: Duration::ZERO,
            final_drain_limit: Duration::ZERO,
            notify: false,
        };
        let reports = serve_until(&mut drainer, &opts, |reports, shutdown| {
            if reports.iter().map(|r| r.written).sum::<u64>() == total {
                shutdown.request();
            }
        });
        let written: Vec<u64> = reports.iter().map(|r| r.written).collect();
        let round = ROUND_RECORDS as u64;
        // Three cycles back to back, then the final drain with nothing left.
        assert_eq!(written, [round, round, 5, 0], "{reports:?}");
        assert!(reports[0].more && reports[1].more, "{reports:?}");
        assert_eq!(ring.counters().released, total);
        assert_eq!(setup.rows() as u64, total);
    }

    #[test]
    fn shutdown_ends_the_sleep_and_the_final_drain_takes_the_rest() {
        let setup = Setup::new();
        let ring =
            ProducerRing::create(setup.shm.path(), "svc", &["CALIBRATING"], 1 << 10).unwrap();
        for i in 0..100 {
            ring.push(&record(i)).unwrap();
        }
        let mut drainer = setup.drainer();
        let opts = RunOptions {
            notify: false,
            ..RunOptions::every(Duration::from_secs(3600))
        };
        let reports = serve_until(&mut drainer, &opts, |reports, shutdown| {
            if reports.len() == 1 {
                // While the loop sleeps its hour: these can only leave with the final
                // drain, which the request below starts at once.
                for i in 100..150 {
                    ring.push(&record(i)).unwrap();
                }
                shutdown.request();
            }
        });
        let written: Vec<u64> = reports.iter().map(|r| r.written).collect();
        assert_eq!(written, [100, 50], "{reports:?}");
        assert_eq!(setup.rows(), 150);
    }
}
