//! Command-line errors the way every binary here reports them: one line on stderr naming
//! the flag (or the environment variable the bad value came from) and the value, exit
//! status 2; `--help` and `--version` print and exit 0. And the rest of a daemon's exit
//! status policy ([`run_logged`]): a failure at run time is one logged line, exit status 1.

use std::fmt::Display;
use std::process::ExitCode;

use log::LevelFilter;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

/// Parses the process's arguments (and environment fallbacks) into `C`, or says why not.
///
/// On `Err`, the caller returns the exit code: the help, version or one-line error has
/// already been printed as `<name>: <line>`.
///
/// ```no_run
/// #[derive(clap::Parser)]
/// struct Cli {
///     #[arg(long, env = "MY_LEVEL")]
///     level: u8,
/// }
/// fn main() -> std::process::ExitCode {
///     let cli: Cli = match perf_daemon::cli::parse("my-daemon") {
///         Ok(cli) => cli,
///         Err(code) => return code,
///     };
///     std::process::ExitCode::SUCCESS
/// }
/// ```
pub fn parse<C: CommandFactory + FromArgMatches>(name: &str) -> Result<C, ExitCode> {
    let result = C::command()
        .try_get_matches()
        .and_then(|m| C::from_arg_matches(&m));
    result.map_err(|err| match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(2)
        }
        _ => {
            eprintln!("{name}: {}", one_line_error(&err, &C::command()));
            ExitCode::from(2)
        }
    })
}

/// Sets up logging at `level` ([`crate::logging::init`]) and runs `work`: exit status 0 if
/// it succeeds; if it fails, its error as one logged line and exit status 1. A logger that
/// cannot be set up is said on stderr as `<name>: ...`, exit status 1.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     perf_daemon::cli::run_logged("my-daemon", log::LevelFilter::Info, || {
///         log::info!("started");
///         Ok::<(), std::io::Error>(())
///     })
/// }
/// ```
pub fn run_logged<E: Display>(
    name: &str,
    level: LevelFilter,
    work: impl FnOnce() -> Result<(), E>,
) -> ExitCode {
    if let Err(err) = crate::logging::init(level) {
        eprintln!("{name}: cannot set up logging: {err}");
        return ExitCode::from(1);
    }
    match work() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::from(1)
        }
    }
}

/// Turns a clap error into one line, naming the environment variable when the bad value
/// came from one rather than from the command line.
pub fn one_line_error(err: &clap::Error, cmd: &clap::Command) -> String {
    let rendered = err.render().to_string();
    let mut line = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_string();
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return line;
    };
    let flag = arg.split_whitespace().next().unwrap_or(arg);
    let given_as_flag = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    let env = all_arguments(cmd)
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
        .and_then(|a| a.get_env().map(|e| e.to_os_string()));
    if let Some(env) = env {
        if !given_as_flag && std::env::var_os(&env).is_some() {
            line.push_str(&format!(
                " (from environment variable {})",
                env.to_string_lossy()
            ));
        }
    }
    line
}

/// The arguments of `cmd` and of all its subcommands.
fn all_arguments(cmd: &clap::Command) -> Box<dyn Iterator<Item = &clap::Arg> + '_> {
    Box::new(
        cmd.get_arguments()
            .chain(cmd.get_subcommands().flat_map(all_arguments)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        /// A number.
        #[arg(long, env = "PERF_DAEMON_TEST_COUNT_NEVER_SET")]
        count: u8,
    }

    #[test]
    fn one_line_names_the_flag_and_value() {
        let err = Cli::try_parse_from(["x", "--count", "300"]).unwrap_err();
        let line = one_line_error(&err, &Cli::command());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--count"), "{line}");
        assert!(line.contains("300"), "{line}");
        assert!(!line.starts_with("error:"), "{line}");
    }
}
