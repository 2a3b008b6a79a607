//! `perf-drainer`: see the library documentation and README.md.

use std::process::ExitCode;

use perf_drainer::cli::Cli;
use perf_drainer::commands::execute;

fn main() -> ExitCode {
    let cli: Cli = match perf_daemon::cli::parse("perf-drainer") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if let Err(err) = perf_daemon::logging::init(cli.options.log_level) {
        eprintln!("perf-drainer: cannot set up logging: {err}");
        return ExitCode::from(1);
    }
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::from(1)
        }
    }
}
