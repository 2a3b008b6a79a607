//! The command line: `perf-drainer [run] | once | status [--json]`, each option with an
//! environment fallback.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use log::LevelFilter;

use crate::drain::{Config, DrainError, Drainer, StorageError};
use crate::scan::AllowedUids;

/// Longest accepted drain interval: a day. Beyond that a typo is likelier than intent.
const MAX_INTERVAL_SECS: f64 = 86_400.0;
/// A cycle returns to the main loop at least this often (watchdog, shutdown).
const CYCLE_LIMIT: Duration = Duration::from_secs(1);
/// The final drain on shutdown gives up after this long (records stay in the rings).
const FINAL_DRAIN_LIMIT: Duration = Duration::from_secs(20);

/// Drains performance-metrics rings from shared memory into the CSV files robot scripts read.
#[derive(Debug, Parser)]
#[command(name = "perf-drainer", version)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

/// Where the rings and the CSV files are, and whose rings to accept: what every
/// subcommand needs, and what `perf-metrics status` reuses.
#[derive(Debug, Args)]
pub struct Locations {
    /// Directory for robot_activity_data, its _headers file, the checkpoint and the lock.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "OT_PERFORMANCE_METRICS_STORAGE_DIR",
        default_value = perf_table::DEFAULT_STORAGE_DIR
    )]
    pub storage_dir: PathBuf,
    /// Directory the instrumented services create their ring files in.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = perf_ring::DIR_ENV,
        default_value = perf_ring::DEFAULT_DIR
    )]
    pub shm_dir: PathBuf,
    /// Also drain rings owned by this uid (repeat or comma-separate; own euid and root
    /// are always allowed).
    #[arg(
        long = "allow-uid",
        global = true,
        value_name = "UID",
        env = "OT_PERFORMANCE_METRICS_ALLOWED_UIDS",
        value_delimiter = ','
    )]
    pub allow_uids: Vec<u32>,
}

impl Locations {
    /// The drainer configuration these options describe.
    pub fn config(&self) -> Config {
        Config {
            storage_dir: self.storage_dir.clone(),
            shm_dir: self.shm_dir.clone(),
            allowed: AllowedUids::with_defaults(&self.allow_uids),
        }
    }
}

/// Options of the daemon: the locations plus how often to drain and how much to log.
#[derive(Debug, Args)]
pub struct Options {
    #[command(flatten)]
    pub locations: Locations,
    /// Seconds between drain cycles (fractions allowed, > 0).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "OT_PERFORMANCE_METRICS_DRAIN_INTERVAL",
        default_value = "1",
        value_parser = parse_interval
    )]
    pub interval: Duration,
    /// Log level, a Python logging level name (DEBUG, INFO, WARNING, ERROR, CRITICAL).
    #[arg(
        long,
        global = true,
        value_name = "LEVEL",
        env = "OT_PERFORMANCE_METRICS_LOGGING_LEVEL",
        default_value = "INFO",
        value_parser = parse_level
    )]
    pub log_level: LevelFilter,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the daemon: drain every interval until SIGTERM/SIGINT, then drain once more.
    Run,
    /// Drain everything there is now, print a one-line summary and exit.
    Once,
    /// Show the rings in the ring directory.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `--interval`: seconds as a positive, finite number.
pub fn parse_interval(value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .trim()
        .parse()
        .map_err(|_| "expected seconds as a number > 0, e.g. 1 or 0.5".to_string())?;
    if !(secs > 0.0 && secs <= MAX_INTERVAL_SECS) {
        return Err(format!(
            "expected seconds > 0 and at most {MAX_INTERVAL_SECS}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_level(value: &str) -> Result<LevelFilter, String> {
    perf_daemon::logging::parse_level(value).map_err(|e| e.to_string())
}

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
    Shutdown(#[from] perf_daemon::shutdown::ShutdownError),
    /// The ring directory could not be read.
    #[error("cannot list ring directory {path}: {source}")]
    ShmDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the command (logging must already be set up).
pub fn execute(cli: &Cli) -> Result<(), AppError> {
    let cfg = cli.options.locations.config();
    match cli.command.clone().unwrap_or(Command::Run) {
        Command::Run => run(cfg, cli.options.interval),
        Command::Once => once(cfg),
        Command::Status { json } => status(&cfg, json),
    }
}

/// `perf-drainer run`.
pub fn run(cfg: Config, interval: Duration) -> Result<(), AppError> {
    use perf_daemon::notify;
    let shutdown = perf_daemon::shutdown::Shutdown::install()?;
    let mut watchdog = notify::Watchdog::from_env();
    let Some(mut drainer) = start(cfg, interval, &shutdown, &mut watchdog)? else {
        return Ok(());
    };
    // A storage problem is logged and retried each cycle; rings keep the records meanwhile.
    let _ = drainer.prepare();
    log::info!(
        "draining rings in {} into {} every {} s",
        drainer.config().shm_dir.display(),
        drainer.config().storage_dir.display(),
        interval.as_secs_f64()
    );
    notify::ready();
    loop {
        let start = Instant::now();
        let more = drainer
            .cycle(start + CYCLE_LIMIT)
            .is_ok_and(|report| report.more);
        if shutdown.requested() {
            break;
        }
        if more {
            // Behind: go straight on, but keep the watchdog fed.
            watchdog.ping_if_due(Instant::now());
            continue;
        }
        if watchdog.sleep_until(&shutdown, start + interval) {
            break;
        }
    }
    notify::stopping();
    log::info!("shutdown requested: final drain");
    match drainer.cycle(Instant::now() + FINAL_DRAIN_LIMIT) {
        Ok(r) => log::info!(
            "final drain done: {} rows written{}; exiting",
            r.written,
            if r.more {
                " (time limit reached, the rest stays in the rings)"
            } else {
                ""
            }
        ),
        Err(e) => log::warn!(
            "final drain failed ({}); records stay in the rings for the next start",
            e.cause()
        ),
    }
    Ok(())
}

/// Sets the drainer up, waiting (and saying so, at most once a minute) while the storage
/// cannot even hold its lock file, e.g. read-only or full on the very first start: the
/// rings keep the records meanwhile. `None` if shutdown was asked for while waiting.
fn start(
    cfg: Config,
    interval: Duration,
    shutdown: &perf_daemon::shutdown::Shutdown,
    watchdog: &mut perf_daemon::notify::Watchdog,
) -> Result<Option<Drainer>, AppError> {
    let mut waiting_since: Option<Instant> = None;
    let mut logged: Option<Instant> = None;
    loop {
        match Drainer::new(cfg.clone()) {
            Ok(drainer) => {
                if let Some(since) = waiting_since {
                    log::info!(
                        "storage usable after {:.1} s; starting",
                        since.elapsed().as_secs_f64()
                    );
                }
                return Ok(Some(drainer));
            }
            Err(e) if e.is_storage() => {
                let now = Instant::now();
                if waiting_since.is_none() {
                    // Up and retrying: systemd should not count this as a failed start.
                    perf_daemon::notify::ready();
                    waiting_since = Some(now);
                }
                if logged.is_none_or(|t| now.duration_since(t) >= crate::drain::STORAGE_LOG_EVERY) {
                    log::warn!(
                        "{e}; records stay in the rings, retrying every {} s",
                        interval.as_secs_f64()
                    );
                    logged = Some(now);
                }
                if watchdog.sleep_until(shutdown, now + interval) {
                    return Ok(None);
                }
            }
            Err(e) => return Err(e.into()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "nan", "inf", "", "1s", "1e9"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_is_the_default_and_options_go_anywhere() {
        let cli = Cli::try_parse_from(["perf-drainer", "--interval", "0.5"]).unwrap();
        assert_eq!(cli.command, None);
        assert_eq!(cli.options.interval, Duration::from_millis(500));
        let cli = Cli::try_parse_from([
            "perf-drainer",
            "once",
            "--storage-dir",
            "/x",
            "--allow-uid",
            "5,6",
        ])
        .unwrap();
        assert_eq!(cli.command, Some(Command::Once));
        assert_eq!(cli.options.locations.storage_dir, PathBuf::from("/x"));
        assert_eq!(cli.options.locations.allow_uids, vec![5, 6]);
        let cli = Cli::try_parse_from(["perf-drainer", "status", "--json"]).unwrap();
        assert_eq!(cli.command, Some(Command::Status { json: true }));
        assert_eq!(cli.options.log_level, LevelFilter::Info);
    }
}
