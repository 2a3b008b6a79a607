//! `perf-metrics`: see the library documentation and README.md.

use std::process::ExitCode;

use clap::Parser;
use perf_metrics::cli::{execute, one_line_error, Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            return match err.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    let _ = err.print();
                    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                        ExitCode::from(2)
                    } else {
                        ExitCode::SUCCESS
                    }
                }
                _ => {
                    eprintln!("perf-metrics: {}", one_line_error(&err));
                    ExitCode::from(2)
                }
            };
        }
    };
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("perf-metrics: {err}");
            ExitCode::from(1)
        }
    }
}
