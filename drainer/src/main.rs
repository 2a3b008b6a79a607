//! `perf-drainer`: see the library documentation and README.md.

use std::process::ExitCode;

use clap::Parser;
use perf_drainer::cli::{execute, one_line_error, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            return match err.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = err.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("perf-drainer: {}", one_line_error(&err));
                    ExitCode::from(2)
                }
            };
        }
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
