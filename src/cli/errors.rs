//! The CLI's error type and its exit codes.
//!
//! Every failure maps to one documented exit code, so a Job (or a script)
//! can tell "fix your input" from "Maestro failed" from "it took too long"
//! without parsing messages.

use std::fmt;

use crate::maestro::error::Error;
use crate::manifestwork::ValidationErrors;

use super::records::Snapshot;

/// How the process ends. The numbers are part of the CLI's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the command did what was asked.
    Success,
    /// 1: Maestro refused or failed, or another runtime error.
    Error,
    /// 2: bad flags, an unreadable or invalid input file or configuration;
    /// nothing was sent to Maestro.
    Usage,
    /// 3: the `--timeout` passed before the command was done.
    Timeout,
    /// 4: the ManifestWork, manifest or consumer does not exist.
    NotFound,
    /// 1 from `diff`: the desired state differs from Maestro's.
    Differences,
    /// 130: stopped by SIGINT or SIGTERM before it was done.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Error | ExitStatus::Differences => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Timeout => 3,
            ExitStatus::NotFound => 4,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// The exit codes as `--help` and the README show them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success (diff: no differences)
  1    error: Maestro refused or failed, or it stayed unreachable for the
       whole --timeout (diff: differences found)
  2    usage error: bad flags, unreadable or invalid input file, invalid
       configuration; nothing was sent to Maestro
  3    timeout: --timeout passed before the condition was met
  4    not found: the ManifestWork, manifest or consumer does not exist
  130  interrupted by SIGINT or SIGTERM
diff exits 0 (same), 1 (different) or 2 and above (error: where another
command would exit 1, diff exits 2).";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or flag combinations.
    #[error("{0}")]
    Usage(String),

    /// An input file that is missing, unreadable or malformed; the message
    /// names the file and, where known, the line and column.
    #[error("{0}")]
    InputFile(String),

    /// A work that fails client-side validation; one problem per line.
    #[error("{}", format_invalid(.origin, .errors))]
    Invalid {
        origin: String,
        errors: ValidationErrors,
    },

    #[error("{0}")]
    NotFound(String),

    /// The command's deadline passed; `last` is the last state seen.
    #[error("{message}")]
    Timeout {
        message: String,
        last: Option<Box<Snapshot>>,
    },

    #[error("interrupted by {signal}{}", .last_phase.as_ref().map(|p| format!(" (last status: {p})")).unwrap_or_default())]
    Interrupted {
        signal: &'static str,
        last_phase: Option<String>,
    },

    /// A library error, with what the CLI was doing.
    #[error("{context}: {source}")]
    Maestro {
        context: String,
        #[source]
        source: Error,
    },

    /// Anything else that went wrong at run time.
    #[error("{0}")]
    Failed(String),
}

fn format_invalid(origin: &str, errors: &ValidationErrors) -> String {
    errors
        .iter()
        .map(|e| format!("{origin}: {}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("\n")
}

impl CliError {
    /// Wraps a library error with what was being done.
    pub fn maestro(context: impl fmt::Display, source: Error) -> CliError {
        CliError::Maestro {
            context: context.to_string(),
            source,
        }
    }

    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::Usage(_) | CliError::InputFile(_) | CliError::Invalid { .. } => {
                ExitStatus::Usage
            }
            CliError::NotFound(_) => ExitStatus::NotFound,
            CliError::Timeout { .. } => ExitStatus::Timeout,
            CliError::Interrupted { .. } => ExitStatus::Interrupted,
            CliError::Failed(_) => ExitStatus::Error,
            CliError::Maestro { source, .. } => match source {
                Error::NotFound(_) | Error::UnknownConsumer { .. } => ExitStatus::NotFound,
                Error::InvalidWork(_) | Error::Rejected { .. } | Error::Config(_) => {
                    ExitStatus::Usage
                }
                Error::Timeout { .. } => ExitStatus::Timeout,
                _ => ExitStatus::Error,
            },
        }
    }

    /// The exit status of `diff`, which keeps 1 for "differences found".
    pub fn diff_exit_status(&self) -> ExitStatus {
        match self.exit_status() {
            ExitStatus::Error => ExitStatus::Usage,
            other => other,
        }
    }

    /// A short CamelCase reason for the results file.
    pub fn reason(&self) -> &'static str {
        match self {
            CliError::Usage(_) => "UsageError",
            CliError::InputFile(_) => "InvalidInput",
            CliError::Invalid { .. } => "InvalidWork",
            CliError::NotFound(_) => "NotFound",
            CliError::Timeout { .. } => "Timeout",
            CliError::Interrupted { .. } => "Interrupted",
            CliError::Failed(_) => "Failed",
            CliError::Maestro { source, .. } => source.reason(),
        }
    }

    /// The last state of the work seen before the failure, if any.
    pub fn last_snapshot(&self) -> Option<&Snapshot> {
        match self {
            CliError::Timeout { last, .. } => last.as_deref(),
            _ => None,
        }
    }
}

/// Turns "consumer not registered" into a not-found error that says how to
/// register it.
pub fn explain_unknown_consumer(e: CliError) -> CliError {
    match e {
        CliError::Maestro {
            source: Error::UnknownConsumer { consumer },
            ..
        } => CliError::NotFound(format!(
            "consumer {consumer:?} is not registered in Maestro; register it with \
             `maestro-cli consumers create {consumer}`"
        )),
        other => other,
    }
}

#[cfg(test)]
mod tests;
