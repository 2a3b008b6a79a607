//! The command line: `perf-metrics demo | report | export | status`.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::window::{parse_time, Window};

/// Default directory of the CSV files on a robot.
pub const ROBOT_STORAGE_DIR: &str = perf_table::DEFAULT_STORAGE_DIR;

/// Performance metrics of the Opentrons Flex: see a demo of the whole pipeline, summarise
/// the CSV files, export a timeline, look at the rings.
#[derive(Debug, Parser)]
#[command(name = "perf-metrics", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole pipeline for a few seconds: simulated robot services (child processes,
    /// one crashing), the drainer and the system resource tracker; then print the report.
    Demo(DemoArgs),
    /// Summarise robot_activity_data and system_resource_data: per state count, total,
    /// mean, p50/p95/p99 (nearest rank) and max, and the same per service and state when
    /// robot_activity_context_data is there; per command CPU and memory.
    Report(ReportArgs),
    /// Export a storage directory as a timeline for Perfetto or chrome://tracing: a
    /// process per service with a track per thread (from robot_activity_context_data;
    /// records without context go on per-state tracks), and CPU and memory counters per
    /// command from system_resource_data.
    Export(ExportArgs),
    /// Show the rings in the ring directory (the same view as `perf-drainer status`).
    Status(StatusArgs),
    /// A simulated robot service (started by `demo`).
    #[command(hide = true)]
    DemoService(ServiceArgs),
}

/// `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Length of the simulated robot day in seconds (2 to 600).
    #[arg(long, default_value = "12", value_parser = parse_seconds)]
    pub seconds: f64,
    /// Directory to write the CSV files into (created if missing; appended to if they exist).
    #[arg(long, value_name = "DIR", default_value = "performance_metrics_data")]
    pub out: PathBuf,
    /// Directory in which the demo makes (and at the end removes) its own ring directory.
    #[arg(long, value_name = "DIR", default_value = "/dev/shm")]
    pub shm_parent: PathBuf,
}

/// `--since` / `--until`.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Only records starting (samples taken) at or after this time: RFC 3339
    /// (2024-07-31T18:20:00Z, 2024-07-31T20:20:00+02:00) or seconds since the epoch.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Only records starting (samples taken) before this time; same formats as --since.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<u64>,
}

impl WindowArgs {
    fn window(&self) -> Window {
        Window {
            since: self.since,
            until: self.until,
        }
    }
}

/// `report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directories holding robot_activity_data and/or system_resource_data, one per robot
    /// (several are compared side by side).
    #[arg(value_name = "DIR", default_value = ROBOT_STORAGE_DIR, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// A robot's name, once per DIR in the same order (default: each folder's name).
    #[arg(long, value_name = "NAME")]
    pub name: Vec<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained page of plots and tables to this file.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write Trace Event Format JSON to this file (`-` for stdout).
    #[arg(long, value_name = "OUT.json", required = true)]
    pub chrome_trace: PathBuf,
    /// Directory holding robot_activity_data (and, when there, robot_activity_context_data
    /// and system_resource_data).
    #[arg(value_name = "DIR", default_value = ROBOT_STORAGE_DIR)]
    pub dir: PathBuf,
    #[command(flatten)]
    pub window: WindowArgs,
}

/// `status`: the options of `perf-drainer status` (the drainer's own definition), with the
/// same environment fallbacks.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub locations: perf_drainer::cli::Locations,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The hidden `demo-service`.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The demo run this service belongs to (lets the demo's sampler find it).
    #[arg(long)]
    pub run: String,
    /// Ring directory (the producer library's own variable, as on a robot).
    #[arg(long, env = perf_ring::DIR_ENV)]
    pub shm_dir: PathBuf,
    #[arg(long)]
    pub service: String,
    #[arg(long, default_value = "2")]
    pub threads: u32,
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: f64,
    #[arg(long)]
    pub crash_after: Option<f64>,
    /// Random seed (default: from the pid and the clock).
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(s) if (2.0..=600.0).contains(&s) => Ok(s),
        _ => Err("expected seconds from 2 to 600".into()),
    }
}

/// A failure after the command line was accepted (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Status(#[from] perf_drainer::commands::AppError),
    #[error("{0}")]
    Service(String),
    #[error("--since must be before --until")]
    EmptyWindow,
    /// The command line parsed but does not make sense (exit status 2).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The exit status: 2 for a bad command line, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Runs the command.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Demo(args) => {
            // The drainer and the sampler log through `log`: warnings and errors only.
            let _ = perf_daemon::logging::init(log::LevelFilter::Warn);
            let summary = crate::demo::run(&crate::demo::DemoConfig {
                seconds: args.seconds,
                out: args.out,
                shm_parent: args.shm_parent,
            })?;
            print!("{}", summary.text);
            Ok(())
        }
        Command::Report(args) => report(&args),
        Command::Export(args) => export(&args),
        Command::Status(args) => Ok(perf_drainer::commands::status(
            &args.locations.config(),
            args.json,
        )?),
        Command::DemoService(args) => crate::service::run(&crate::service::ServiceConfig {
            shm_dir: args.shm_dir,
            service: args.service,
            threads: args.threads,
            seconds: args.seconds,
            crash_after: args.crash_after,
            seed: args.seed.unwrap_or_else(|| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                u64::from(std::process::id()) << 32 | u64::from(nanos)
            }),
        })
        .map_err(CliError::Service),
    }
}

fn checked_window(args: &WindowArgs) -> Result<Window, CliError> {
    let window = args.window();
    if let (Some(s), Some(u)) = (window.since, window.until) {
        if s >= u {
            return Err(CliError::EmptyWindow);
        }
    }
    Ok(window)
}

/// The robots' names: `--name`s in order, else each folder's name; unique.
fn robot_names(args: &ReportArgs) -> Result<Vec<String>, CliError> {
    let names: Vec<String> = if args.name.is_empty() {
        args.dirs
            .iter()
            .map(|d| crate::report::default_name(d))
            .collect()
    } else if args.name.len() == args.dirs.len() {
        args.name.clone()
    } else {
        return Err(CliError::Usage(format!(
            "{} --name for {} folders: give one per folder, or none",
            args.name.len(),
            args.dirs.len()
        )));
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(CliError::Usage(format!(
                "two robots named {n:?}: tell them apart with --name"
            )));
        }
    }
    Ok(names)
}

fn report(args: &ReportArgs) -> Result<(), CliError> {
    let window = checked_window(&args.window)?;
    let names = robot_names(args)?;
    let mut robots = Vec::new();
    for (name, dir) in names.into_iter().zip(&args.dirs) {
        let report = crate::report::build(dir, window, &mut |p| eprintln!("{p}"))?;
        robots.push((name, report));
    }
    let fleet = crate::report::Fleet { robots };
    if let Some(path) = &args.html {
        crate::report::html::write(path, &fleet).map_err(|source| CliError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let text = if args.json {
        // Strings and numbers always serialise.
        let mut s = serde_json::to_string_pretty(&fleet).unwrap_or_default();
        s.push('\n');
        s
    } else {
        let mut s = crate::report::text::render_fleet(&fleet);
        if let Some(path) = &args.html {
            s.push_str(&format!("\npage of plots: {}\n", path.display()));
        }
        s
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| CliError::Write {
            path: "stdout".into(),
            source,
        })
}

fn export(args: &ExportArgs) -> Result<(), CliError> {
    let window = checked_window(&args.window)?;
    let mut malformed = 0u64;
    let mut problem = |p: crate::data::Problem| {
        malformed += 1;
        eprintln!("{p}");
    };
    let write_error = |source| CliError::Write {
        path: args.chrome_trace.clone(),
        source,
    };
    let export_error = |e| match e {
        crate::export::ExportError::Write(source) => write_error(source),
        crate::export::ExportError::Read(e) => CliError::Report(crate::report::ReportError::Read {
            path: e.path,
            source: e.source,
        }),
    };
    let summary = if args.chrome_trace.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        crate::export::write_chrome_trace(&args.dir, window, &mut out, &mut problem)
            .map_err(export_error)?
    } else {
        let file = std::fs::File::create(&args.chrome_trace).map_err(write_error)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        let s = crate::export::write_chrome_trace(&args.dir, window, &mut out, &mut problem)
            .map_err(export_error)?;
        out.into_inner()
            .map_err(|e| write_error(e.into_error()))?
            .sync_all()
            .map_err(write_error)?;
        s
    };
    if let Some(w) = summary.join.warning(&args.dir) {
        eprintln!("{w}");
    }
    if args.chrome_trace.as_os_str() != "-" {
        println!(
            "{}",
            export_summary(&summary, &args.chrome_trace, malformed)
        );
    }
    Ok(())
}

/// The line `export` prints when it wrote a file.
fn export_summary(s: &crate::export::Summary, path: &std::path::Path, malformed: u64) -> String {
    let mut line = format!("wrote {} events on {} tracks", s.events, s.tracks);
    if s.join.context_table {
        line.push_str(&format!(
            " ({} services; {} records without context on per-state tracks)",
            s.processes, s.without_context
        ));
    }
    if s.resources {
        line.push_str(&format!(
            " and {} counter events for {} commands",
            s.counter_events, s.commands
        ));
    }
    line.push_str(&format!(
        " to {} (open it in ui.perfetto.dev or chrome://tracing)",
        path.display()
    ));
    if malformed > 0 {
        line.push_str(&format!("; {malformed} malformed lines skipped"));
    }
    line
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
    fn windows_parse() {
        let cli = Cli::try_parse_from([
            "perf-metrics",
            "report",
            "/x",
            "--since",
            "2024-07-31T18:20:00Z",
            "--until",
            "1722450001",
        ])
        .unwrap();
        let Command::Report(args) = cli.command else {
            panic!("not report");
        };
        assert_eq!(args.dirs, [PathBuf::from("/x")]);
        assert_eq!(args.window.since, Some(1_722_450_000_000_000_000));
        assert_eq!(args.window.until, Some(1_722_450_001_000_000_000));
        assert!(Cli::try_parse_from(["perf-metrics", "report", "--since", "soon"]).is_err());
        assert!(Cli::try_parse_from(["perf-metrics", "demo", "--seconds", "1"]).is_err());
        assert!(Cli::try_parse_from(["perf-metrics", "export", "/x"]).is_err());
    }
}
