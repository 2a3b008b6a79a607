//! `system-resource-tracker`: see the crate documentation of `perf_sampler` and README.md.

use std::process::ExitCode;
use std::time::Instant;

use perf_daemon::notify::{self, Watchdog};
use perf_daemon::shutdown::Shutdown;
use perf_sampler::config::{CliError, Config, ENABLED_VAR};
use perf_sampler::proc::SystemInfo;
use perf_sampler::sample::Sampler;
use perf_sampler::schedule::Schedule;
use perf_sampler::storage::Storage;

const NAME: &str = "system-resource-tracker";

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(CliError::Clap(e)) => e.exit(),
        Err(CliError::Config(e)) => {
            eprintln!("{NAME}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = perf_daemon::logging::init(config.logging_level) {
        eprintln!("{NAME}: cannot set up logging: {e}");
        return ExitCode::from(1);
    }
    log::info!("configuration: {config}");
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::from(1)
        }
    }
}

fn run(config: &Config) -> Result<(), String> {
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
    let info = SystemInfo::read().map_err(|e| e.to_string())?;
    log::debug!("system: {info:?}");
    let mut sampler = Sampler::new(config.process_filters.clone(), info);
    let mut storage = Storage::new(&config.storage_dir);
    let mut rows = Vec::with_capacity(8192);

    if config.once {
        let stats = sampler.sample(&mut rows).map_err(|e| e.to_string())?;
        storage
            .write(&rows, stats.rows)
            .map_err(|e| format!("sample not written: {e}"))?;
        log::info!("wrote {} rows ({stats:?})", stats.rows);
        return Ok(());
    }

    let shutdown = Shutdown::install().map_err(|e| e.to_string())?;
    let mut watchdog = Watchdog::from_env();
    notify::ready();
    log::info!(
        "sampling every {}s into {}",
        config.refresh_interval.as_secs_f64(),
        config.storage_dir.display()
    );
    let mut schedule = Schedule::new(Instant::now(), config.refresh_interval);
    loop {
        rows.clear();
        match sampler.sample(&mut rows) {
            Ok(stats) => {
                log::debug!("sample: {stats:?}");
                // Errors are logged inside and the rows kept for the next interval.
                let _ = storage.write(&rows, stats.rows);
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
            Some(deadline) => watchdog.sleep_until(&shutdown, deadline),
            None => loop {
                let far = Instant::now() + std::time::Duration::from_secs(3600);
                if watchdog.sleep_until(&shutdown, far) {
                    break true;
                }
            },
        };
        if stop {
            break;
        }
    }
    notify::stopping();
    // Every sample is synced as it is written; what may be left are rows storage refused.
    if storage.pending_rows() > 0 {
        let _ = storage.write(&[], 0);
        if storage.pending_rows() > 0 {
            log::warn!("exiting with {} rows unwritten", storage.pending_rows());
        }
    }
    log::info!("stopped");
    Ok(())
}
