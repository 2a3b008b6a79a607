//! `perf-drainer`: see the library documentation and README.md.

use std::process::ExitCode;

use perf_drainer::cli::Cli;
use perf_drainer::commands::execute;

fn main() -> ExitCode {
    let cli: Cli = match perf_daemon::cli::parse("perf-drainer") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    perf_daemon::cli::run_logged("perf-drainer", cli.options.log_level, || execute(&cli))
}
