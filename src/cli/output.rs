//! The terminal: kubectl-style tables, JSON and YAML on standard output;
//! progress lines and yes/no questions on standard error.

use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Local, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use super::errors::CliError;
use super::remote::Remote;

/// `-o` / `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    #[default]
    Table,
    /// Aligned columns with more of them.
    Wide,
    Json,
    Yaml,
}

impl OutputFormat {
    pub fn is_table(self) -> bool {
        matches!(self, OutputFormat::Table | OutputFormat::Wide)
    }
}

/// Writes to standard output; a closed pipe (`| head`) ends quietly.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Failed(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

pub fn to_json_pretty<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))
}

pub fn to_json_line<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string(value)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| CliError::Failed(format!("cannot encode JSON: {e}")))
}

pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_norway::to_string(value).map_err(|e| CliError::Failed(format!("cannot encode YAML: {e}")))
}

/// A value in the chosen structured format.
pub fn structured<T: Serialize>(format: OutputFormat, value: &T) -> Result<String, CliError> {
    match format {
        OutputFormat::Yaml => to_yaml(value),
        _ => to_json_pretty(value),
    }
}

/// Columns separated by three spaces, as kubectl prints them.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: AsRef<str>>(header: &[S]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.as_ref().to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                line.push_str(cell);
                if c + 1 < row.len() {
                    let pad = widths[c].saturating_sub(cell.chars().count()) + 3;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// kubectl's short ages: `45s`, `3m12s`, `25m`, `5h3m`, `17h`, `3d`.
pub fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - since).num_seconds().max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let rm = m % 60;
        if rm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else {
        format!("{d}d")
    }
}

pub fn age_or_unknown(since: Option<DateTime<Utc>>) -> String {
    since.map_or_else(|| "<unknown>".to_string(), |t| age(t, Utc::now()))
}

/// The header of a work table.
pub fn work_header(wide: bool) -> Vec<&'static str> {
    let mut h = vec!["NAME", "STATUS", "MANIFESTS", "VERSION", "AGE"];
    if wide {
        h.extend([
            "OBSERVED",
            "APPLIED",
            "AVAILABLE",
            "CONSUMER",
            "BUNDLE-ID",
            "LABELS",
        ]);
    }
    h
}

/// The header of a work table spanning consumers: the consumer first
/// (the wide table, which shows it anyway, keeps its own layout).
pub fn work_header_across(wide: bool) -> Vec<&'static str> {
    if wide {
        return work_header(true);
    }
    let mut h = vec!["CONSUMER"];
    h.extend(work_header(false));
    h
}

/// One row of a work table spanning consumers.
pub fn work_row_across(consumer: &str, remote: &Remote, wide: bool) -> Vec<String> {
    if wide {
        return work_row(remote, true);
    }
    let mut row = vec![consumer.to_string()];
    row.extend(work_row(remote, false));
    row
}

/// One row of a work table.
pub fn work_row(remote: &Remote, wide: bool) -> Vec<String> {
    let mut row = vec![
        remote.name().to_string(),
        remote.health().to_string(),
        remote.work.spec.workload.manifests.len().to_string(),
        remote.version().to_string(),
        age_or_unknown(remote.held.created_at),
    ];
    if wide {
        let status_of = |t: &str| {
            remote
                .condition(t)
                .map_or_else(|| "-".to_string(), |c| c.status.clone())
        };
        let labels = remote
            .work
            .metadata
            .labels
            .as_ref()
            .filter(|l| !l.is_empty())
            .map_or_else(
                || "<none>".to_string(),
                |l| {
                    l.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                },
            );
        row.extend([
            remote.observed_version().to_string(),
            status_of("Applied"),
            status_of("Available"),
            remote.held.consumer.clone(),
            remote.held.id.to_string(),
            labels,
        ]);
    }
    row
}

/// A list of works in kubectl's list shape.
pub fn work_list(items: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": crate::manifestwork::MANIFESTWORK_API_VERSION,
        "kind": "ManifestWorkList",
        "metadata": {},
        "items": items,
    })
}

/// A work as JSON with its apiVersion and kind set, as `get -o json` prints it.
pub fn work_value(remote: &Remote) -> Result<Value, CliError> {
    let mut value = serde_json::to_value(&remote.work)
        .map_err(|e| CliError::Failed(format!("cannot encode the work: {e}")))?;
    if let Some(map) = value.as_object_mut() {
        map.insert(
            "apiVersion".into(),
            crate::manifestwork::MANIFESTWORK_API_VERSION.into(),
        );
        map.insert("kind".into(), crate::manifestwork::MANIFESTWORK_KIND.into());
    }
    Ok(value)
}

/// Prints one work in the chosen format.
pub fn print_work(remote: &Remote, format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => emit(&structured(format, &work_value(remote)?)?),
        format => {
            let wide = format == OutputFormat::Wide;
            let mut table = Table::new(&work_header(wide));
            table.row(work_row(remote, wide));
            emit(&table.render())
        }
    }
}

/// Whether to go ahead with something that cannot be undone: yes with
/// `--yes`, or when no one is at a terminal to ask (a Job, a pipe);
/// otherwise `question` is asked on standard error and only "y" or "yes"
/// confirms.
pub fn confirmed(assume_yes: bool, question: &str) -> Result<bool, CliError> {
    if assume_yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Failed(format!("cannot read the answer: {e}")))?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Progress lines for `--watch` and `wait`: shown on a terminal (standard
/// error), silent otherwise so that logs and pipes stay machine-readable.
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Option<String>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::with_terminal(std::io::stderr().is_terminal())
    }

    pub fn with_terminal(enabled: bool) -> Progress {
        Progress {
            enabled,
            started: Instant::now(),
            last: None,
        }
    }

    /// Prints `line` if it differs from the last one, stamped with the
    /// wall-clock time and the time since the start.
    pub fn report(&mut self, line: String) {
        if self.last.as_deref() == Some(line.as_str()) {
            return;
        }
        tracing::debug!(progress = %line);
        if self.enabled {
            eprintln!(
                "{} (+{:.1}s) {line}",
                Local::now().format("%H:%M:%S"),
                self.started.elapsed().as_secs_f64()
            );
        }
        self.last = Some(line);
    }

    /// A work's state as one line: health, conditions and versions.
    pub fn describe(remote: Option<&Remote>) -> String {
        let Some(r) = remote else {
            return "not found".into();
        };
        let conditions = r
            .conditions()
            .iter()
            .map(|c| {
                if c.reason.is_empty() {
                    format!("{}={}", c.type_, c.status)
                } else {
                    format!("{}={} ({})", c.type_, c.status, c.reason)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let conditions = if conditions.is_empty() {
            "no conditions yet".to_string()
        } else {
            conditions
        };
        format!(
            "{}: {} [{}; version {}, agent observed {}]",
            r.name(),
            r.health(),
            conditions,
            r.version(),
            r.observed_version()
        )
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

#[cfg(test)]
mod tests;
