//! The command line: `perf-drainer [run] | once | status [--json]`, each option with an
//! environment fallback. Definitions only; [`crate::commands`] carries them out.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use log::LevelFilter;

use perf_table::Rotation;

use crate::drain::Config;
use crate::scan::AllowedUids;

/// Longest accepted drain interval: a day. Beyond that a typo is likelier than intent.
const MAX_INTERVAL_SECS: f64 = 86_400.0;

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
    /// The drainer configuration these options describe (with the context table kept).
    pub fn config(&self) -> Config {
        Config {
            storage_dir: self.storage_dir.clone(),
            shm_dir: self.shm_dir.clone(),
            allowed: AllowedUids::with_defaults(&self.allow_uids),
            context: true,
            rotation: None,
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
    #[command(flatten)]
    pub metrics: MetricsOptions,
    /// Keep robot_activity_context_data (every row plus service, pid and tid) beside
    /// robot_activity_data: on or off (also true/false, 1/0).
    #[arg(
        long,
        global = true,
        value_name = "on|off",
        env = "OT_PERFORMANCE_METRICS_CONTEXT_TABLE",
        default_value = "on",
        value_parser = parse_switch,
        action = clap::ArgAction::Set
    )]
    pub context_table: bool,
    /// Rotate each table before a drain round would take it past this size: a whole number
    /// of bytes, or with K, M or G (powers of 1024), e.g. 16M; 0 is unbounded. Older rows
    /// move to numbered gzip files beside it (robot_activity_data.<n>.gz) [default: unbounded]
    #[arg(
        long,
        global = true,
        value_name = "SIZE",
        env = "OT_PERFORMANCE_METRICS_MAX_FILE_SIZE",
        value_parser = parse_max_file_size
    )]
    pub max_file_size: Option<u64>,
    /// Rotated files kept per table with --max-file-size; older ones are removed (0 keeps
    /// none: rotation then discards old rows).
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "OT_PERFORMANCE_METRICS_ROTATED_FILES",
        default_value_t = DEFAULT_ROTATED_FILES,
        value_parser = parse_rotated_files
    )]
    pub rotated_files: usize,
}

/// Rotated files kept per table unless `--rotated-files` says otherwise (the tracker's
/// default too).
pub const DEFAULT_ROTATED_FILES: usize = 8;

impl Options {
    /// The drainer configuration these options describe.
    pub fn config(&self) -> Config {
        Config {
            context: self.context_table,
            rotation: self
                .max_file_size
                .filter(|&max| max > 0)
                .map(|max_bytes| Rotation {
                    max_bytes,
                    keep: self.rotated_files,
                }),
            ..self.locations.config()
        }
    }
}

/// Where `run` exposes its metrics for Prometheus; off unless given.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct MetricsOptions {
    /// Serve GET /metrics (OpenMetrics) on this address: PORT (loopback), ADDRESS:PORT or
    /// [IPV6]:PORT; `run` only.
    #[arg(
        long,
        global = true,
        value_name = "ADDR:PORT",
        env = "OT_PERFORMANCE_METRICS_METRICS_LISTEN",
        value_parser = perf_daemon::metrics::parse_listen
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// Write the metrics (Prometheus text format, for node_exporter's textfile collector)
    /// to this file after every cycle, atomically; `run` only.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "OT_PERFORMANCE_METRICS_METRICS_TEXTFILE"
    )]
    pub metrics_textfile: Option<PathBuf>,
}

impl MetricsOptions {
    /// The exporter's settings.
    pub fn settings(&self) -> perf_daemon::metrics::Settings {
        perf_daemon::metrics::Settings {
            listen: self.metrics_listen,
            textfile: self.metrics_textfile.clone(),
        }
    }
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

/// Parses an on/off switch: `on`, `true`, `1` or `off`, `false`, `0`, any case (the
/// spellings of the robot's feature flags); anything else is refused rather than guessed.
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err("expected on or off (or true/false, 1/0)".into()),
    }
}

/// Parses `--max-file-size` as [`perf_table::archive::parse_size`] reads sizes.
pub fn parse_max_file_size(value: &str) -> Result<u64, String> {
    perf_table::archive::parse_size(value).ok_or_else(|| {
        "expected a size in bytes, optionally with K, M or G, e.g. 16M (0: unbounded)".into()
    })
}

/// Parses `--rotated-files`: a whole number of files.
pub fn parse_rotated_files(value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number of files, e.g. 8 (0 keeps none)".into())
}

fn parse_level(value: &str) -> Result<LevelFilter, String> {
    perf_daemon::logging::parse_level(value).map_err(|e| e.to_string())
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
        assert!(cli.options.context_table);
        let cli = Cli::try_parse_from(["perf-drainer", "once", "--context-table", "OFF"]).unwrap();
        assert!(!cli.options.config().context);
        assert!(Cli::try_parse_from(["perf-drainer", "--context-table", "maybe"]).is_err());
    }

    #[test]
    fn rotation_is_off_unless_a_size_is_given() {
        let cli = Cli::try_parse_from(["perf-drainer"]).unwrap();
        assert_eq!(cli.options.config().rotation, None);
        let cli = Cli::try_parse_from(["perf-drainer", "--max-file-size", "0"]).unwrap();
        assert_eq!(cli.options.config().rotation, None);
        let cli = Cli::try_parse_from(["perf-drainer", "once", "--max-file-size", "16M"]).unwrap();
        assert_eq!(
            cli.options.config().rotation,
            Some(Rotation {
                max_bytes: 16 << 20,
                keep: DEFAULT_ROTATED_FILES
            })
        );
        let cli = Cli::try_parse_from([
            "perf-drainer",
            "--max-file-size",
            "4096",
            "--rotated-files",
            "0",
        ])
        .unwrap();
        assert_eq!(
            cli.options.config().rotation,
            Some(Rotation {
                max_bytes: 4096,
                keep: 0
            })
        );
        for bad in ["16X", "-1", "", "1.5M"] {
            assert!(
                Cli::try_parse_from(["perf-drainer", "--max-file-size", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Cli::try_parse_from(["perf-drainer", "--rotated-files", "many"]).is_err());
    }
}
