//! `maestro-cli`: ManifestWorks on Maestro consumers from a terminal or a
//! Kubernetes Job.
//!
//! [`Cli`] is the command line; [`run`] executes it and returns the exit
//! status (with the error, if any) for the binary to print and exit with.
//!
//! Layers, each using only those below it:
//! - `commands`: one module a command; none uses another;
//! - `ops`: operations commands share (wait for a condition, refuse
//!   works that are not ours to change, read across consumers);
//! - the work as Maestro holds it (`remote`), input files (`input`,
//!   `nodepool`) and the terminal (`output`);
//! - the base: the connection (`connection`), clap argument groups
//!   (`args`), the runtime (deadline, retries, following the status
//!   stream, signals: `runtime`), errors and exit codes (`errors`),
//!   and the results file (`results`, `records`).

mod args;
mod commands;
mod connection;
mod errors;
mod input;
mod nodepool;
mod ops;
mod output;
mod records;
mod remote;
mod results;
mod runtime;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use clap_complete::Shell;

use crate::telemetry::LogFormat;

use commands::{apply, build, consumers, delete, describe, diff, get, list, validate, wait, watch};
use connection::{Connection, ConnectionArgs};
use errors::EXIT_CODES_HELP;
pub use errors::{CliError, ExitStatus};
use results::{Report, StatusResult, Subject};

const ABOUT: &str = "Create, inspect and delete ManifestWorks on Maestro consumers";

const LONG_ABOUT: &str = "\
Create, inspect and delete Open Cluster Management ManifestWorks on Maestro
consumers (clusters). Writes go over Maestro's gRPC CloudEvents API, reads
over its REST API; --watch and wait follow the status stream and fall back
to polling REST when it is down.

Connection flags may also be given as MAESTRO_GRPC_ENDPOINT,
MAESTRO_HTTP_ENDPOINT, MAESTRO_SOURCE_ID, MAESTRO_CA_FILE, MAESTRO_CERT_FILE,
MAESTRO_KEY_FILE and MAESTRO_TOKEN_FILE; flags win. A bearer token is only
ever read from a file.

Commands that take --results-path (or RESULTS_PATH) write a StatusResult JSON
file there, atomically, on success and on failure.";

#[derive(Parser, Debug)]
#[command(
    name = "maestro-cli",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// More logs on standard error: -v info, -vv debug (RUST_LOG overrides)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Log format on standard error
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,

    /// The name the binary was run under (set by [`Invocation::parse`]).
    #[arg(skip)]
    pub invoked_as: Invocation,
}

/// How the binary was run: as `maestro-cli`, or as the kubectl plugin
/// `kubectl maestro` (kubectl runs `kubectl-maestro` from PATH, a link to or
/// copy of maestro-cli). The plugin presents itself as `kubectl maestro` in
/// help, usage and errors, and completes as `kubectl-maestro`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Invocation {
    #[default]
    MaestroCli,
    KubectlPlugin,
}

/// The executable name kubectl looks for on PATH for `kubectl maestro`.
pub const KUBECTL_PLUGIN_BINARY: &str = "kubectl-maestro";

impl Invocation {
    /// From the program's path (argv[0]): `kubectl-maestro` (with any
    /// extension, e.g. `.exe`) is the plugin, anything else maestro-cli.
    pub fn from_argv0(argv0: Option<&std::ffi::OsStr>) -> Invocation {
        let stem = argv0
            .map(std::path::Path::new)
            .and_then(|p| p.file_stem())
            .and_then(|s| s.to_str());
        if stem == Some(KUBECTL_PLUGIN_BINARY) {
            Invocation::KubectlPlugin
        } else {
            Invocation::MaestroCli
        }
    }

    /// The executable's name (what completion scripts complete).
    pub fn binary_name(self) -> &'static str {
        match self {
            Invocation::MaestroCli => "maestro-cli",
            Invocation::KubectlPlugin => KUBECTL_PLUGIN_BINARY,
        }
    }

    /// How help and usage name the program.
    pub fn display_name(self) -> &'static str {
        match self {
            Invocation::MaestroCli => "maestro-cli",
            Invocation::KubectlPlugin => "kubectl maestro",
        }
    }

    /// The command-line definition, named for this invocation.
    pub fn command(self) -> clap::Command {
        let command = <Cli as clap::CommandFactory>::command();
        match self {
            Invocation::MaestroCli => command,
            Invocation::KubectlPlugin => command
                .name(KUBECTL_PLUGIN_BINARY)
                .bin_name(self.display_name())
                .display_name(self.display_name()),
        }
    }

    /// Parses a command line (argv[0] first) as this invocation.
    pub fn parse<I, T>(self, args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = self.command();
        let matches = command.try_get_matches_from_mut(args)?;
        let mut cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
            .map_err(|e| e.format(&mut command))?;
        cli.invoked_as = self;
        Ok(cli)
    }
}

impl Cli {
    /// The tracing filter for the chosen verbosity.
    pub fn log_filter(&self) -> &'static str {
        match self.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug,h2=info,hyper=info,tower=info",
            _ => "trace",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or update a ManifestWork from a file (the file is the whole desired work)
    Apply(apply::ApplyArgs),
    /// Show one ManifestWork (or one of its manifests)
    Get(get::GetArgs),
    /// List the ManifestWorks of a consumer
    List(list::ListArgs),
    /// Show a ManifestWork in detail, with a diagnosis when something is wrong
    Describe(describe::DescribeArgs),
    /// Delete a ManifestWork, one of its manifests, or all works of a consumer
    Delete(delete::DeleteArgs),
    /// Check a ManifestWork file without sending it
    Validate(validate::ValidateArgs),
    /// Wait until a ManifestWork (or one manifest) meets a condition
    Wait(wait::WaitArgs),
    /// Print the works of a consumer, then every change as it happens
    Watch(watch::WatchArgs),
    /// Show how a file differs from what Maestro holds (exit 0 same, 1 different, 2+ error)
    Diff(diff::DiffArgs),
    /// Merge manifests or a nodepool configuration into the remote ManifestWork
    Build(build::BuildArgs),
    /// Manage consumers (clusters)
    #[command(subcommand)]
    Consumers(consumers::ConsumersCommand),
    /// Print a shell completion script (bash, zsh or fish)
    Completion {
        #[arg(value_parser = completion_shell)]
        shell: Shell,
    },
}

fn completion_shell(text: &str) -> Result<Shell, String> {
    match text {
        "bash" => Ok(Shell::Bash),
        "zsh" => Ok(Shell::Zsh),
        "fish" => Ok(Shell::Fish),
        other => Err(format!(
            "{other:?}: supported shells are bash, zsh and fish"
        )),
    }
}

impl Command {
    /// Where this command writes its results file, if it writes one.
    fn results_path(&self) -> Option<&PathBuf> {
        match self {
            Command::Apply(a) => a.results.results_path.as_ref(),
            Command::Get(a) => a.results.results_path.as_ref(),
            Command::Delete(a) => a.results.results_path.as_ref(),
            Command::Wait(a) => a.results.results_path.as_ref(),
            Command::Build(a) => a.results.results_path.as_ref(),
            _ => None,
        }
    }
}

/// How a run ended: the exit status, and the error to print if it failed.
#[derive(Debug)]
pub struct RunResult {
    pub status: ExitStatus,
    pub error: Option<CliError>,
}

/// Runs a parsed command line. SIGINT and SIGTERM end any command early
/// (the results file still records it).
pub async fn run(cli: Cli) -> RunResult {
    let Cli {
        connection,
        command,
        invoked_as,
        ..
    } = cli;
    let conn = Connection::new(connection);
    let results_path = command.results_path().cloned();
    let is_diff = matches!(command, Command::Diff(_));
    let is_watch = matches!(command, Command::Watch(_));
    let mut subject = Subject::default();

    let outcome = tokio::select! {
        outcome = dispatch(&conn, command, invoked_as, &mut subject) => outcome,
        signal = crate::signals::signalled() => {
            if is_watch {
                // Stopping a watch is its normal end.
                Ok(Report::success())
            } else {
                Err(CliError::Interrupted { signal, last_phase: None })
            }
        }
    };

    let (status, error) = match outcome {
        Ok(outcome) => {
            if let Some(path) = &results_path {
                let mut record = outcome.result.unwrap_or_else(|| {
                    StatusResult::new(&subject, "Succeeded", "command succeeded")
                });
                record.exit_code = outcome.status.code();
                if let Err(e) = results::write_atomic(path, &record) {
                    return RunResult {
                        status: e.exit_status(),
                        error: Some(e),
                    };
                }
            }
            (outcome.status, None)
        }
        Err(e) => {
            let status = if is_diff {
                e.diff_exit_status()
            } else {
                e.exit_status()
            };
            if let Some(path) = &results_path {
                let record = StatusResult::failure(&subject, &e, status.code());
                if let Err(write_error) = results::write_atomic(path, &record) {
                    // The command's own failure is the news; the results
                    // file failing as well is logged beside it.
                    tracing::error!(error = %write_error, "could not record the failure");
                }
            }
            (status, Some(e))
        }
    };
    RunResult { status, error }
}

/// Records a command line clap refused (`e`, from `args`) in the results
/// file, when one is named (`--results-path`, else `results_env`, the value
/// of `RESULTS_PATH`), so that a Job's reporter sees usage errors too.
pub fn record_usage_error<I, S>(
    e: &clap::Error,
    args: I,
    results_env: Option<String>,
) -> Result<(), CliError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let Some(path) = results::path_from_raw_args(args, results_env) else {
        return Ok(());
    };
    let error = CliError::Usage(e.kind().to_string());
    let mut record = StatusResult::failure(&Subject::default(), &error, ExitStatus::Usage.code());
    record.message = e
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    results::write_atomic(&path, &record)
}

/// The variable that names the results file when `--results-path` is not
/// given.
pub use results::RESULTS_PATH_ENV;

async fn dispatch(
    conn: &Connection,
    command: Command,
    invoked_as: Invocation,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    match command {
        Command::Apply(args) => apply::run(conn, args, subject).await,
        Command::Get(args) => get::run(conn, args, subject).await,
        Command::List(args) => list::run(conn, args).await,
        Command::Describe(args) => describe::run(conn, args).await,
        Command::Delete(args) => delete::run(conn, args, subject).await,
        Command::Validate(args) => validate::run(conn, args).await,
        Command::Wait(args) => wait::run(conn, args, subject).await,
        Command::Watch(args) => watch::run(conn, args).await,
        Command::Diff(args) => diff::run(conn, args).await,
        Command::Build(args) => build::run(conn, args, subject).await,
        Command::Consumers(command) => consumers::run(conn, command).await,
        Command::Completion { shell } => {
            let mut command = invoked_as.command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, invoked_as.binary_name(), &mut out);
            output::emit(&String::from_utf8_lossy(&out))?;
            Ok(Report::success())
        }
    }
}

#[cfg(test)]
mod tests;
