//! The tracker's loop, as a library function: the `system-resource-tracker` binary calls
//! [`run`], and a caller that samples in a thread of its own (the `perf-metrics demo`)
//! calls [`serve`] with its own shutdown flag and watchdog, so both run the very same loop.
//!
//! Samples are taken at a fixed rate ([`Schedule`]); between them the loop sleeps, waking
//! for watchdog pings and at once on shutdown. Rows storage refuses stay pending in
//! [`Storage`] and go out with a later sample, or with the last try at shutdown.

use std::time::{Duration, Instant};

use perf_daemon::notify::{self, Watchdog};
use perf_daemon::shutdown::{Shutdown, ShutdownError};
use perf_table::TableError;

use crate::config::{Config, ENABLED_VAR};
use crate::proc::{ProcFsError, SystemInfo};
use crate::sample::{SampleStats, Sampler};
use crate::schedule::Schedule;
use crate::storage::Storage;

/// How the loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Time between the starts of two samples.
    pub interval: Duration,
    /// Tell systemd `READY=1` and `STOPPING=1` (the daemon); a loop in a thread of a
    /// bigger program leaves that to the program.
    pub notify: bool,
}

/// The tracker could not run (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// /proc could not be read.
    #[error(transparent)]
    Proc(#[from] ProcFsError),
    /// `--once`: the sample could not be written.
    #[error("sample not written: {0}")]
    Write(#[source] TableError),
    /// Signal handlers could not be installed.
    #[error(transparent)]
    Shutdown(#[from] ShutdownError),
    /// The metrics could not be exposed (port in use, bad textfile path).
    #[error(transparent)]
    Metrics(#[from] perf_daemon::metrics::MetricsError),
}

/// `system-resource-tracker`: nothing when disabled, one sample with `--once`, otherwise
/// samples every interval until SIGTERM/SIGINT.
pub fn run(config: &Config) -> Result<(), RunError> {
    if !config.enabled {
        // Exit 0 after READY=1: systemd then records a clean stop ("inactive (dead)"), not a
        // failure, and Restart=on-failure leaves it alone. Idling until SIGTERM would keep
        // a process resident for nothing.
        log::info!("system resource tracking is disabled ({ENABLED_VAR} is not true); exiting");
        if !config.once {
            notify::ready();
            notify::status("disabled");
        }
        return Ok(());
    }
    let info = SystemInfo::read()?;
    log::debug!("system: {info:?}");
    let mut sampler = Sampler::new(config.process_filters.clone(), info);
    let mut storage = Storage::new(&config.storage_dir).with_rotation(config.rotation);

    if config.once {
        let mut rows = Vec::with_capacity(8192);
        let stats = sampler.sample(&mut rows)?;
        storage.write(&rows, stats.rows).map_err(RunError::Write)?;
        log::info!("wrote {} rows ({stats:?})", stats.rows);
        return Ok(());
    }

    // Bound before READY: a port in use is a start-up error. Dropped at exit, which writes
    // the textfile a last time.
    let exported = crate::metrics::expose(&config.metrics)?;
    if let Some((_, m)) = &exported {
        sampler = sampler.with_metrics(m.clone());
    }
    let shutdown = Shutdown::install()?;
    let mut watchdog = Watchdog::from_env();
    let opts = RunOptions {
        interval: config.refresh_interval,
        notify: true,
    };
    log::info!(
        "sampling every {}s into {}",
        config.refresh_interval.as_secs_f64(),
        config.storage_dir.display()
    );
    serve(
        &mut sampler,
        &mut storage,
        &opts,
        &shutdown,
        &mut watchdog,
        &mut |_| {},
    );
    log::info!("stopped");
    Ok(())
}

/// The loop: `READY=1`, a sample every interval until `shutdown`, `STOPPING=1`, a last try
/// at writing what storage refused. `on_written` sees every sample whose rows were written.
pub fn serve(
    sampler: &mut Sampler,
    storage: &mut Storage,
    opts: &RunOptions,
    shutdown: &Shutdown,
    watchdog: &mut Watchdog,
    on_written: &mut dyn FnMut(&SampleStats),
) {
    if opts.notify {
        notify::ready();
    }
    let mut rows = Vec::with_capacity(8192);
    let mut schedule = Schedule::new(Instant::now(), opts.interval);
    loop {
        rows.clear();
        match sampler.sample(&mut rows) {
            Ok(stats) => {
                log::debug!("sample: {stats:?}");
                // Errors are logged inside and the rows kept for the next interval.
                if storage.write(&rows, stats.rows).is_ok() {
                    on_written(&stats);
                }
            }
            Err(e) => log::error!("sample failed: {e}"),
        }
        let tick = schedule.advance(Instant::now());
        if tick.missed > 0 {
            log::warn!(
                "a sample took longer than the refresh interval; skipped {} ticks",
                tick.missed
            );
        }
        let stop = match tick.deadline {
            Some(deadline) => watchdog.sleep_until(shutdown, deadline),
            None => loop {
                let far = Instant::now() + Duration::from_secs(3600);
                if watchdog.sleep_until(shutdown, far) {
                    break true;
                }
            },
        };
        if stop {
            break;
        }
    }
    if opts.notify {
        notify::stopping();
    }
    // What may be left are rows storage refused, and rows not yet synced (see
    // `storage::SYNC_EVERY`).
    if storage.pending_rows() > 0 {
        let _ = storage.write(&[], 0);
        if storage.pending_rows() > 0 {
            log::warn!("exiting with {} rows unwritten", storage.pending_rows());
        }
    }
    if let Err(e) = storage.sync() {
        log::warn!("{e}; the last rows may be lost in a power cut");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fnmatch::Pattern;

    #[test]
    fn serve_samples_at_a_fixed_rate_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        // This test binary (perf_sampler-<hash>) is always there to be sampled.
        let mut sampler = Sampler::new(
            vec![Pattern::new("*perf_sampler-*")],
            SystemInfo::read().unwrap(),
        );
        let mut storage = Storage::new(dir.path());
        let shutdown = Shutdown::new().unwrap();
        let opts = RunOptions {
            interval: Duration::from_millis(100),
            notify: false,
        };
        let mut written = Vec::new();
        let started = Instant::now();
        serve(
            &mut sampler,
            &mut storage,
            &opts,
            &shutdown,
            &mut Watchdog::with_period(None),
            &mut |s| {
                written.push(*s);
                if written.len() == 3 {
                    shutdown.request();
                }
            },
        );
        let took = started.elapsed();
        // Samples at 0, 100 and 200 ms, not back to back; the request ends the loop
        // without waiting for the next tick.
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert_eq!(written.len(), 3);
        assert!(written.iter().all(|s| s.rows >= 1), "{written:?}");
        let rows: usize = written.iter().map(|s| s.rows).sum();
        let csv = std::fs::read(dir.path().join(perf_table::SYSTEM_RESOURCE.name)).unwrap();
        assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), rows);
    }
}
