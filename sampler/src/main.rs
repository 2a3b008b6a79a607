//! `system-resource-tracker`: see the crate documentation of `perf_sampler` and README.md.

use std::process::ExitCode;

use perf_sampler::config::{CliError, Config};

const NAME: &str = "system-resource-tracker";

fn main() -> ExitCode {
    let config = match Config::from_args(std::env::args_os()) {
        Ok(c) => c,
        Err(CliError::Clap(e)) => e.exit(),
        // Exit 1, not clap's 2: the Python tracker's status for an invalid setting.
        Err(CliError::Config(e)) => {
            eprintln!("{NAME}: {e}");
            return ExitCode::from(1);
        }
    };
    perf_daemon::cli::run_logged(NAME, config.logging_level, || {
        log::info!("configuration: {config}");
        perf_sampler::run::run(&config)
    })
}
