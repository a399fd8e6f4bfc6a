//! The results file a status reporter reads (`--results-path` or
//! `RESULTS_PATH`): one JSON `StatusResult`, replaced atomically (written to
//! a temporary file in the same directory, flushed, then renamed over the
//! target), so a reader sees the previous result or the new one, never half
//! a file. It is written on success and on failure alike.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::errors::{CliError, ExitStatus};
use super::records::{ConsumerState, QuorumSummary, ResourceResult, Snapshot};

/// The variable that names the results file when `--results-path` is not
/// given.
pub const RESULTS_PATH_ENV: &str = "RESULTS_PATH";

/// Statuses a failed command writes.
pub const STATUS_FAILED: &str = "Failed";
pub const STATUS_TIMEOUT: &str = "Timeout";

/// The guide's `StatusResult`, with optional extras a reporter may use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub manifest_work_name: String,
    pub consumer: String,
    /// Applied, Available, Progressing, Degraded, Deleted, Deleting,
    /// InProgress, Pending, Failed or Timeout.
    pub status: String,
    pub message: String,
    pub timestamp: DateTime<Utc>,
    pub resources: Vec<ResourceResult>,
    /// Why a command failed, e.g. `NotFound`, `Timeout`, `InvalidWork`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The CLI's exit code for this outcome.
    pub exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_version: Option<i64>,
    /// The consumer label selector, when the command ran across consumers
    /// (then `consumer` is empty and `consumers` lists each one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_selector: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumSummary>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerState>,
}

/// Which work a command is about, as far as it is known. Across consumers,
/// also each consumer's last known state, so that a failure (a timeout, a
/// signal) records it too.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub name: String,
    pub consumer: String,
    pub selector: Option<String>,
    pub quorum: Option<QuorumSummary>,
    pub consumers: Vec<ConsumerState>,
}

impl StatusResult {
    pub fn new(subject: &Subject, status: impl Into<String>, message: impl Into<String>) -> Self {
        StatusResult {
            manifest_work_name: subject.name.clone(),
            consumer: subject.consumer.clone(),
            status: status.into(),
            message: message.into(),
            timestamp: Utc::now(),
            resources: Vec::new(),
            reason: None,
            exit_code: 0,
            bundle_id: None,
            version: None,
            observed_version: None,
            consumer_selector: subject.selector.clone(),
            quorum: subject.quorum.clone(),
            consumers: subject.consumers.clone(),
        }
    }

    /// Adds what is known about the work's current state.
    pub fn with_snapshot(mut self, snapshot: &Snapshot) -> Self {
        self.resources = snapshot.resources.clone();
        self.bundle_id = Some(snapshot.bundle_id.clone());
        self.version = Some(snapshot.version);
        self.observed_version = Some(snapshot.observed_version);
        self
    }

    /// The record of a failed command.
    pub fn failure(subject: &Subject, error: &CliError, exit_code: u8) -> Self {
        let status = match error {
            CliError::Timeout { .. } => STATUS_TIMEOUT,
            _ => STATUS_FAILED,
        };
        let mut result = StatusResult::new(subject, status, error.to_string());
        if let Some(snapshot) = error.last_snapshot() {
            result = result.with_snapshot(snapshot);
        }
        result.reason = Some(error.reason().to_string());
        result.exit_code = exit_code;
        result
    }
}

/// What a successful command reports: its exit status, and the record for
/// the results file when it has more to say than "command succeeded".
#[derive(Debug)]
pub struct Report {
    pub status: ExitStatus,
    pub result: Option<StatusResult>,
}

impl Report {
    pub fn success() -> Report {
        Report {
            status: ExitStatus::Success,
            result: None,
        }
    }

    pub fn with_result(result: StatusResult) -> Report {
        Report {
            status: ExitStatus::Success,
            result: Some(result),
        }
    }
}

/// Where to write results: the flag's value, else `RESULTS_PATH` (clap
/// applies that order), never a default.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ResultsArgs {
    /// Write a StatusResult JSON file here, on success and on failure
    /// [env: RESULTS_PATH]
    #[arg(long, value_name = "PATH", env = RESULTS_PATH_ENV, hide_env = true)]
    pub results_path: Option<PathBuf>,
}

/// Replaces `path` with `result` atomically.
pub fn write_atomic(path: &Path, result: &StatusResult) -> Result<(), CliError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        CliError::Failed(format!(
            "cannot write the results file {}: {what}: {e}",
            path.display()
        ))
    };
    let mut bytes = serde_json::to_vec_pretty(result).map_err(|e| fail("encoding", &e))?;
    bytes.push(b'\n');
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| fail("path", &"names no file"))?
        .to_string_lossy()
        .into_owned();
    // A unique name in the same directory: rename is only atomic within
    // one file system, and two concurrent writers must not share a temp.
    let temp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        fail("writing", &e)
    })
}

/// The results path named on a command line that clap refused, so that
/// usage errors are recorded too: `--results-path P`, `--results-path=P`,
/// else `RESULTS_PATH`.
pub fn path_from_raw_args<I, S>(args: I, env: Option<String>) -> Option<PathBuf>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix("--results-path=") {
            return Some(PathBuf::from(value));
        }
        if arg == "--results-path" {
            return args.get(i + 1).map(PathBuf::from);
        }
    }
    env.filter(|e| !e.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests;
