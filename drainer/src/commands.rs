//! What each subcommand of `perf-drainer` does, once the command line ([`crate::cli`]) was
//! accepted: `run` is the daemon loop ([`crate::run`]), `once` one drain and a summary
//! line, `status` the read-only view ([`crate::status`]).

use std::path::PathBuf;

use perf_daemon::notify::Watchdog;
use perf_daemon::shutdown::{Shutdown, ShutdownError};

use crate::cli::{Cli, Command};
use crate::drain::{Config, Drainer};
use crate::error::{DrainError, StorageError};
use crate::run::RunOptions;

/// A failure after the command line was accepted (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Could not set up the drainer.
    #[error(transparent)]
    Drain(#[from] DrainError),
    /// Storage failed during `once`.
    #[error("{cause}: {0}", cause = .0.cause())]
    Storage(#[from] StorageError),
    /// Signal handlers could not be installed.
    #[error(transparent)]
    Shutdown(#[from] ShutdownError),
    /// The metrics could not be exposed (port in use, bad textfile path).
    #[error(transparent)]
    Metrics(#[from] perf_daemon::metrics::MetricsError),
    /// The ring directory could not be read.
    #[error("cannot list ring directory {path}: {source}")]
    ShmDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the command (logging must already be set up).
pub fn execute(cli: &Cli) -> Result<(), AppError> {
    let cfg = cli.options.config();
    match cli.command.clone().unwrap_or(Command::Run) {
        Command::Run => {
            let shutdown = Shutdown::install()?;
            let mut watchdog = Watchdog::from_env();
            let opts = RunOptions::every(cli.options.interval);
            // Bound before anything else: a port in use is a start-up error. Dropped after
            // the final drain, which writes the textfile a last time.
            let exported = crate::metrics::expose(&cli.options.metrics.settings())?;
            let metrics = exported.as_ref().map(|(_, m)| m.clone());
            Ok(crate::run::run(
                cfg,
                &opts,
                &shutdown,
                &mut watchdog,
                metrics,
            )?)
        }
        Command::Once => once(cfg),
        Command::Status { json } => status(&cfg, json),
    }
}

/// `perf-drainer once`.
pub fn once(cfg: Config) -> Result<(), AppError> {
    let mut drainer = Drainer::new(cfg)?;
    // A storage failure ends `once` with its one error line; no separate log line.
    drainer.log_storage_errors(false);
    drainer.prepare()?;
    let r = drainer.drain_all()?;
    println!(
        "drained {} rows from {} rings into {} ({} finished rings removed, {} records with a bad state skipped, {} abandoned slots, {} files skipped)",
        r.written,
        drainer.rings() as u64 + r.removed,
        drainer
            .config()
            .storage_dir
            .join(perf_table::ROBOT_ACTIVITY.name)
            .display(),
        r.removed,
        r.invalid,
        r.abandoned,
        drainer.skipped()
    );
    Ok(())
}

/// `perf-drainer status`.
pub fn status(cfg: &Config, json: bool) -> Result<(), AppError> {
    let report =
        crate::status::collect(&cfg.shm_dir, &cfg.storage_dir, &cfg.allowed).map_err(|source| {
            AppError::ShmDir {
                path: cfg.shm_dir.clone(),
                source,
            }
        })?;
    if json {
        // A struct of strings and numbers always serialises.
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", crate::status::render_table(&report));
    }
    Ok(())
}
