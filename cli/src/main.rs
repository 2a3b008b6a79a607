//! `perf-metrics`: see the library documentation and README.md.

use std::process::ExitCode;

use perf_metrics::cli::{execute, Cli};

fn main() -> ExitCode {
    let cli: Cli = match perf_daemon::cli::parse("perf-metrics") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("perf-metrics: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
