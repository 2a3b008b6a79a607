//! `system-resource-tracker`: see the crate documentation of `perf_sampler` and README.md.

use std::process::ExitCode;

use perf_sampler::config::{CliError, Config};

const NAME: &str = "system-resource-tracker";

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(CliError::Clap(e)) => e.exit(),
        Err(CliError::Config(e)) => {
            eprintln!("{NAME}: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = perf_daemon::logging::init(config.logging_level) {
        eprintln!("{NAME}: cannot set up logging: {e}");
        return ExitCode::from(1);
    }
    log::info!("configuration: {config}");
    match perf_sampler::run::run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(1)
        }
    }
}
