//! Configuration: the Python tracker's environment variables, defaults and validation, with
//! command-line flags that override them.
//!
//! Values are taken as raw strings by clap and validated here (each value's rules in
//! `values`), so a bad value gives one line naming where it came from (the variable, or the
//! flag if given on the command line) and the value, and the binary exits with status 1 as
//! the Python tracker did, instead of clap's multi-line usage error and status 2.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use log::LevelFilter;

use perf_table::Rotation;

use crate::fnmatch::Pattern;

mod values;
pub use values::{
    parse_enabled, parse_max_file_size, parse_process_filters, parse_refresh_interval,
    parse_rotated_files, parse_storage_dir,
};

/// `true`/`false`, any case; default false.
pub const ENABLED_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_ENABLED";
/// Comma-separated fnmatch globs; default `/opt/opentrons*,python3*`.
pub const PROCESS_FILTERS_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_PROCESS_FILTERS";
/// Seconds between samples, ≥ 1.0; default 10.
pub const REFRESH_INTERVAL_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_REFRESH_INTERVAL";
/// Absolute directory for the CSV files; default `/data/performance_metrics_data/`.
pub const STORAGE_DIR_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_STORAGE_DIR";
/// Python level name; default INFO.
pub const LOGGING_LEVEL_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_LOGGING_LEVEL";
/// Size cap of the live `system_resource_data` (e.g. `16M`); unset or `0`: unbounded.
/// Not a Python tracker variable: the Python tracker never rotated.
pub const MAX_FILE_SIZE_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_MAX_FILE_SIZE";
/// Rotated files kept when the size is capped; default [`DEFAULT_ROTATED_FILES`].
pub const ROTATED_FILES_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_ROTATED_FILES";

/// Serve `GET /metrics` on this address; unset: off. Not a Python tracker variable.
pub const METRICS_LISTEN_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_METRICS_LISTEN";
/// Write the metrics to this file after every sample; unset: off.
pub const METRICS_TEXTFILE_VAR: &str = "OT_SYSTEM_RESOURCE_TRACKER_METRICS_TEXTFILE";

/// The Python tracker's default filters.
pub const DEFAULT_PROCESS_FILTERS: &[&str] = &["/opt/opentrons*", "python3*"];
/// The Python tracker's default interval, in seconds.
pub const DEFAULT_REFRESH_INTERVAL: f64 = 10.0;
/// The Python tracker's default storage directory.
pub const DEFAULT_STORAGE_DIR: &str = "/data/performance_metrics_data/";
/// The Python tracker's default logging level.
pub const DEFAULT_LOGGING_LEVEL: &str = "INFO";
/// Rotated files kept unless configured.
pub const DEFAULT_ROTATED_FILES: usize = 8;

/// Command line of `system-resource-tracker`. Every setting falls back to its environment
/// variable, then to the Python tracker's default.
#[derive(Debug, Parser)]
#[command(
    name = "system-resource-tracker",
    version,
    about = "Samples CPU and memory of selected processes from /proc into system_resource_data.",
    long_about = "Samples CPU and memory of selected processes from /proc into \
                  system_resource_data (CSV) at a fixed rate. A drop-in replacement for the \
                  Python system resource tracker: same variables, defaults and files. Flags \
                  override the environment."
)]
pub struct Cli {
    /// Track at all: `true` or `false` (any case) [default: false]
    #[arg(long, env = ENABLED_VAR, value_name = "true|false")]
    pub enabled: Option<OsString>,

    /// Comma-separated fnmatch globs matched against each command line (arguments joined
    /// by spaces); blanks are dropped, at least one is needed [default: /opt/opentrons*,python3*]
    #[arg(long, env = PROCESS_FILTERS_VAR, value_name = "GLOBS")]
    pub process_filters: Option<OsString>,

    /// Seconds between samples, a number >= 1.0 [default: 10]
    #[arg(long, env = REFRESH_INTERVAL_VAR, value_name = "SECONDS")]
    pub refresh_interval: Option<OsString>,

    /// Absolute path of the directory for the CSV files [default: /data/performance_metrics_data/]
    #[arg(long, env = STORAGE_DIR_VAR, value_name = "DIR")]
    pub storage_dir: Option<OsString>,

    /// Python logging level name: DEBUG, INFO, WARNING, ERROR, CRITICAL (any case) [default: INFO]
    #[arg(long, env = LOGGING_LEVEL_VAR, value_name = "LEVEL")]
    pub logging_level: Option<OsString>,

    /// Rotate system_resource_data before it grows past this size: a whole number of
    /// bytes, or with K, M or G (powers of 1024), e.g. 16M; 0 means unbounded. Older rows
    /// move to numbered gzip files beside it [default: unbounded]
    #[arg(long, env = MAX_FILE_SIZE_VAR, value_name = "SIZE")]
    pub max_file_size: Option<OsString>,

    /// Rotated files to keep when --max-file-size is set; older ones are removed [default: 8]
    #[arg(long, env = ROTATED_FILES_VAR, value_name = "N")]
    pub rotated_files: Option<OsString>,

    /// Take one sample, write it and exit (for scripts and tests); no systemd notifications
    #[arg(long)]
    pub once: bool,

    /// Serve GET /metrics (OpenMetrics) on PORT (loopback), ADDRESS:PORT or [IPV6]:PORT
    /// [default: off]
    #[arg(long, env = METRICS_LISTEN_VAR, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<OsString>,

    /// Write the metrics (Prometheus text format, for node_exporter's textfile collector)
    /// to this file after every sample, atomically [default: off]
    #[arg(long, env = METRICS_TEXTFILE_VAR, value_name = "PATH")]
    pub metrics_textfile: Option<OsString>,
}

/// An invalid setting: which variable (or flag) and what value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not `true`/`false`.
    #[error("{name} must be 'true' or 'false' (any case), got {value:?}")]
    Enabled { name: String, value: String },
    /// No glob left after dropping blanks.
    #[error("{name} must be a comma-separated list of at least one process glob, got {value:?}")]
    ProcessFilters { name: String, value: String },
    /// Not a number.
    #[error("{name} must be a number of seconds, got {value:?}")]
    RefreshIntervalNotANumber { name: String, value: String },
    /// Below 1.0 (or NaN, which Python let through and then failed on).
    #[error("{name} must be greater than or equal to 1.0, got {value:?}")]
    RefreshIntervalTooShort { name: String, value: String },
    /// Infinite or too large to sleep for.
    #[error("{name} must be a finite number of seconds, got {value:?}")]
    RefreshIntervalTooLong { name: String, value: String },
    /// Relative path.
    #[error("{name} must be an absolute path to a directory, got {value:?}")]
    StorageDir { name: String, value: String },
    /// Not a listen address.
    #[error("{name} must be PORT, ADDRESS:PORT or [IPV6]:PORT (e.g. 9102 or 0.0.0.0:9102), got {value:?}")]
    MetricsListen { name: String, value: String },
    /// Not a file path.
    #[error("{name} must be the path of a file, got {value:?}")]
    MetricsTextfile { name: String, value: String },
    /// Not a size.
    #[error("{name} must be a size in bytes, optionally with K, M or G (e.g. 16M), or 0 for unbounded, got {value:?}")]
    MaxFileSize { name: String, value: String },
    /// Not a count.
    #[error("{name} must be a whole number of files, got {value:?}")]
    RotatedFiles { name: String, value: String },
    /// Unknown level name.
    #[error(
        "{name} must be one of CRITICAL, FATAL, ERROR, WARNING, WARN, INFO, DEBUG, NOTSET (any case), got {value:?}"
    )]
    LoggingLevel { name: String, value: String },
}

/// Why the command line did not yield a configuration.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Usage error, `--help` or `--version`: clap prints it and picks the exit status.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// A setting is invalid: print the line, exit 1.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether to sample at all.
    pub enabled: bool,
    /// Processes whose command line matches any of these are sampled.
    pub process_filters: Vec<Pattern>,
    /// Time between samples.
    pub refresh_interval: Duration,
    /// Directory of the CSV files.
    pub storage_dir: PathBuf,
    /// Log records up to this level are written.
    pub logging_level: LevelFilter,
    /// The level as configured (for the start-up line).
    pub logging_level_name: String,
    /// One sample, then exit.
    pub once: bool,
    /// Where to expose the metrics for Prometheus (off unless set).
    pub metrics: perf_daemon::metrics::Settings,
    /// Size cap and rotated files kept; `None`: unbounded, as the Python tracker.
    pub rotation: Option<Rotation>,
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let filters: Vec<&str> = self.process_filters.iter().map(Pattern::as_str).collect();
        write!(
            f,
            "enabled={} process_filters={:?} refresh_interval={}s storage_dir={} logging_level={} once={} ",
            self.enabled,
            filters,
            self.refresh_interval.as_secs_f64(),
            self.storage_dir.display(),
            self.logging_level_name,
            self.once
        )?;
        match self.rotation {
            Some(r) => write!(f, "max_file_size={} rotated_files={}", r.max_bytes, r.keep),
            None => write!(f, "max_file_size=unbounded"),
        }
    }
}

/// A raw setting and the name to blame if it is wrong.
struct Raw {
    name: String,
    value: OsString,
}

impl Raw {
    fn text(&self) -> String {
        self.value.to_string_lossy().into_owned()
    }
}

fn raw(matches: &ArgMatches, id: &str, var: &str, value: Option<OsString>) -> Option<Raw> {
    let value = value?;
    let name = match matches.value_source(id) {
        Some(ValueSource::CommandLine) => format!("--{}", id.replace('_', "-")),
        _ => var.to_owned(),
    };
    Some(Raw { name, value })
}

impl Config {
    /// Parses the command line (and, through clap, the environment) and validates it.
    pub fn from_args<I, T>(args: I) -> Result<Config, CliError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let r = |id, var, value| raw(&matches, id, var, value);
        Ok(Config::resolve(
            r("enabled", ENABLED_VAR, cli.enabled),
            r("process_filters", PROCESS_FILTERS_VAR, cli.process_filters),
            r(
                "refresh_interval",
                REFRESH_INTERVAL_VAR,
                cli.refresh_interval,
            ),
            r("storage_dir", STORAGE_DIR_VAR, cli.storage_dir),
            r("logging_level", LOGGING_LEVEL_VAR, cli.logging_level),
            cli.once,
        )?
        .with_metrics(
            r("metrics_listen", METRICS_LISTEN_VAR, cli.metrics_listen),
            r(
                "metrics_textfile",
                METRICS_TEXTFILE_VAR,
                cli.metrics_textfile,
            ),
        )?
        .with_rotation(
            r("max_file_size", MAX_FILE_SIZE_VAR, cli.max_file_size),
            r("rotated_files", ROTATED_FILES_VAR, cli.rotated_files),
        )?)
    }

    fn resolve(
        enabled: Option<Raw>,
        process_filters: Option<Raw>,
        refresh_interval: Option<Raw>,
        storage_dir: Option<Raw>,
        logging_level: Option<Raw>,
        once: bool,
    ) -> Result<Config, ConfigError> {
        let enabled = match enabled {
            Some(r) => parse_enabled(&r.name, &r.text())?,
            None => false,
        };
        let process_filters = match process_filters {
            Some(r) => parse_process_filters(&r.name, &r.text())?,
            None => DEFAULT_PROCESS_FILTERS
                .iter()
                .map(|p| Pattern::new(p))
                .collect(),
        };
        let refresh_interval = match refresh_interval {
            Some(r) => parse_refresh_interval(&r.name, &r.text())?,
            None => Duration::from_secs_f64(DEFAULT_REFRESH_INTERVAL),
        };
        let storage_dir = match storage_dir {
            Some(r) => parse_storage_dir(&r.name, &r.value)?,
            None => PathBuf::from(DEFAULT_STORAGE_DIR),
        };
        let logging_level_name = match &logging_level {
            Some(r) => r.text(),
            None => DEFAULT_LOGGING_LEVEL.to_owned(),
        };
        let logging_level =
            perf_daemon::logging::parse_level(&logging_level_name).map_err(|e| {
                ConfigError::LoggingLevel {
                    name: logging_level
                        .as_ref()
                        .map_or(LOGGING_LEVEL_VAR.to_owned(), |r| r.name.clone()),
                    value: e.value,
                }
            })?;
        Ok(Config {
            enabled,
            process_filters,
            refresh_interval,
            storage_dir,
            logging_level,
            logging_level_name,
            once,
            metrics: perf_daemon::metrics::Settings::default(),
            rotation: None,
        })
    }

    fn with_metrics(
        mut self,
        listen: Option<Raw>,
        textfile: Option<Raw>,
    ) -> Result<Config, ConfigError> {
        if let Some(r) = listen {
            let text = r.text();
            let addr = perf_daemon::metrics::parse_listen(&text).map_err(|_| {
                ConfigError::MetricsListen {
                    name: r.name.clone(),
                    value: text,
                }
            })?;
            self.metrics.listen = Some(addr);
        }
        if let Some(r) = textfile {
            let path = PathBuf::from(&r.value);
            if path.file_name().is_none() {
                return Err(ConfigError::MetricsTextfile {
                    name: r.name.clone(),
                    value: r.text(),
                });
            }
            self.metrics.textfile = Some(path);
        }
        Ok(self)
    }

    fn with_rotation(
        mut self,
        max_file_size: Option<Raw>,
        rotated_files: Option<Raw>,
    ) -> Result<Config, ConfigError> {
        let keep = match rotated_files {
            Some(r) => parse_rotated_files(&r.name, &r.text())?,
            None => DEFAULT_ROTATED_FILES,
        };
        if let Some(r) = max_file_size {
            let max_bytes = parse_max_file_size(&r.name, &r.text())?;
            self.rotation = (max_bytes > 0).then_some(Rotation { max_bytes, keep });
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_flag_overrides_the_environment_and_is_named_in_errors() {
        let c = Config::from_args(["x", "--refresh-interval", "2.5", "--enabled", "TRUE"]).unwrap();
        assert!(c.enabled);
        assert_eq!(c.refresh_interval, Duration::from_millis(2500));
        assert!(
            c.rotation.is_none(),
            "unbounded unless asked, as the Python tracker"
        );
        let e = Config::from_args(["x", "--storage-dir", "rel"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--storage-dir must be an absolute path to a directory, got \"rel\""
        );
    }

    #[test]
    fn rotation_settings() {
        let c = Config::from_args(["x", "--max-file-size", "16M"]).unwrap();
        assert_eq!(
            c.rotation,
            Some(Rotation {
                max_bytes: 16 << 20,
                keep: DEFAULT_ROTATED_FILES
            })
        );
        let c =
            Config::from_args(["x", "--max-file-size", "4096", "--rotated-files", "0"]).unwrap();
        assert_eq!(
            c.rotation,
            Some(Rotation {
                max_bytes: 4096,
                keep: 0
            })
        );
        let c = Config::from_args(["x", "--max-file-size", "0"]).unwrap();
        assert!(c.rotation.is_none());
        let e = Config::from_args(["x", "--max-file-size", "lots"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--max-file-size must be a size in bytes, optionally with K, M or G (e.g. 16M), or 0 for unbounded, got \"lots\""
        );
        let e = Config::from_args(["x", "--rotated-files", "many"]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--rotated-files must be a whole number"));
    }
}
