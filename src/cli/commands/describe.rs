//! `describe`: a readable page about one work, ending with a diagnosis.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_STATUS_FEEDBACK_SYNCED,
    MAX_MANIFESTS_BYTES, Manifest,
};

use crate::cli::args::{ReadTimeout, WorkOnConsumer};
use crate::cli::errors::CliError;

use crate::cli::connection::Connection;
use crate::cli::output::{self, OutputFormat, Table, age};
use crate::cli::records::chrono_time;
use crate::cli::remote::{Remote, describe_manifest, find_retrying, work_not_found};
use crate::cli::results::Report;

/// A deletion still pending after this long deserves a hint.
const SLOW_DELETE: Duration = Duration::from_secs(120);
/// As does a work with no status this long after creation.
const SLOW_FIRST_STATUS: Duration = Duration::from_secs(60);

#[derive(Args, Debug)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub work: WorkOnConsumer,
    /// table (default) prints the page; json or yaml print the work as get does
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

pub async fn run(conn: &Connection, args: DescribeArgs) -> Result<Report, CliError> {
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let remote = find_retrying(client, &deadline, &args.work.consumer, &args.work.name)
        .await?
        .ok_or_else(|| work_not_found(&args.work.consumer, &args.work.name))?;
    if !args.output.is_table() {
        output::print_work(&remote, args.output)?;
        return Ok(Report::success());
    }
    output::emit(&page(&remote, conn.source_id(), Utc::now()))?;
    Ok(Report::success())
}

fn when(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => format!("{} ({} ago)", t.to_rfc3339(), age(t, now)),
        None => "<unknown>".into(),
    }
}

fn pairs(map: Option<&std::collections::BTreeMap<String, String>>) -> String {
    match map {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n                   "),
        _ => "<none>".into(),
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The whole page.
pub fn page(remote: &Remote, source: &str, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    write_fields(&mut out, remote, source, now);
    write_conditions(&mut out, remote, now);
    write_resources(&mut out, remote);
    write_diagnosis(&mut out, remote, now);
    out
}

/// The work's own fields, one a line.
fn write_fields(out: &mut String, remote: &Remote, source: &str, now: DateTime<Utc>) {
    let b = &remote.held;
    let w = &remote.work;
    let manifests = &w.spec.workload.manifests;
    let bytes: usize = manifests.iter().map(Manifest::encoded_len).sum();
    let mut field = |label: &str, value: String| {
        let _ = writeln!(out, "{:<19}{value}", format!("{label}:"));
    };
    field("Name", remote.name().to_string());
    field("Consumer", b.consumer.clone());
    field("Source", source.to_string());
    field("Bundle ID", b.id.to_string());
    field(
        "Version",
        format!(
            "{} (agent observed {})",
            remote.version(),
            remote.observed_version()
        ),
    );
    field("Status", remote.health().to_string());
    field("Created", when(b.created_at, now));
    field("Updated", when(b.updated_at, now));
    if let Some(deleted) = b.deleting_since {
        field(
            "Deletion",
            format!("requested {}", when(Some(deleted), now)),
        );
    }
    field("Labels", pairs(w.metadata.labels.as_ref()));
    field("Annotations", pairs(w.metadata.annotations.as_ref()));
    field(
        "Delete Option",
        w.spec.delete_option.as_ref().map_or_else(
            || "Foreground (default)".to_string(),
            |d| d.propagation_policy.to_string(),
        ),
    );
    field(
        "Manifests",
        format!(
            "{} ({bytes} of {MAX_MANIFESTS_BYTES} bytes)",
            manifests.len()
        ),
    );
    field(
        "Manifest Configs",
        w.spec.manifest_configs.len().to_string(),
    );
}

/// The work's conditions as a table.
fn write_conditions(out: &mut String, remote: &Remote, now: DateTime<Utc>) {
    out.push_str("Conditions:\n");
    if remote.conditions().is_empty() {
        out.push_str("  <none>\n");
    } else {
        let mut t = Table::new(&["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"]);
        for c in remote.conditions() {
            t.row(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                age(chrono_time(&c.last_transition_time), now),
                c.message.clone(),
            ]);
        }
        out.push_str(&indent(&t.render()));
    }
}

/// Each manifest with what the agent reported about it, then the status
/// feedback of those that have some.
fn write_resources(out: &mut String, remote: &Remote) {
    out.push_str("Resources:\n");
    let resources = remote.snapshot().resources;
    let mut t = Table::new(&["#", "KIND", "NAMESPACE", "NAME", "STATUS", "CONDITIONS"]);
    for r in &resources {
        let conditions = r
            .conditions
            .iter()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect::<Vec<_>>()
            .join(",");
        t.row(vec![
            r.ordinal.to_string(),
            r.kind.clone(),
            if r.namespace.is_empty() {
                "-".into()
            } else {
                r.namespace.clone()
            },
            r.name.clone(),
            r.status.clone(),
            if conditions.is_empty() {
                "-".into()
            } else {
                conditions
            },
        ]);
    }
    out.push_str(&indent(&t.render()));
    let with_feedback: Vec<_> = resources
        .iter()
        .filter(|r| !r.feedback.is_empty())
        .collect();
    if !with_feedback.is_empty() {
        out.push_str("Feedback:\n");
        for r in with_feedback {
            let _ = writeln!(out, "  [{}] {} {}:", r.ordinal, r.kind, r.name);
            for (k, v) in &r.feedback {
                let _ = writeln!(out, "    {k}: {v}");
            }
        }
    }
}

/// What [`diagnose`] finds, or that it finds nothing.
fn write_diagnosis(out: &mut String, remote: &Remote, now: DateTime<Utc>) {
    out.push_str("Diagnosis:\n");
    let findings = diagnose(remote, now);
    if findings.is_empty() {
        out.push_str("  No problems found.\n");
    }
    for f in findings {
        let _ = writeln!(out, "  - {f}");
    }
}

/// What looks wrong, most fundamental first; empty when all is well.
pub fn diagnose(remote: &Remote, now: DateTime<Utc>) -> Vec<String> {
    let mut out = lifecycle_findings(remote, now);
    if remote.held.report.is_none() {
        return out;
    }
    out.extend(condition_findings(remote));
    out.extend(manifest_findings(remote));
    out
}

/// A pending deletion, and a work the agent has not reported on (then
/// nothing else can be said).
fn lifecycle_findings(remote: &Remote, now: DateTime<Utc>) -> Vec<String> {
    let b = &remote.held;
    let mut out = Vec::new();
    let consumer = &b.consumer;
    if let Some(deleted) = b.deleting_since {
        let waiting = (now - deleted).to_std().unwrap_or_default();
        let mut line = format!(
            "deletion was requested {} ago; the agent must remove the resources before Maestro drops the work",
            age(deleted, now)
        );
        if waiting > SLOW_DELETE {
            line.push_str(&format!(
                "; this is slow: is the agent for consumer {consumer} running?"
            ));
        }
        out.push(line);
    }
    if b.report.is_none() {
        let mut line = "the agent has not reported on this work yet".to_string();
        if let Some(created) = b.created_at
            && (now - created).to_std().unwrap_or_default() > SLOW_FIRST_STATUS
        {
            line.push_str(&format!(
                " ({} after creation): is an agent running for consumer {consumer} and connected to Maestro?",
                age(created, now)
            ));
        }
        out.push(line);
    }
    out
}

/// A report on an older version, and the work's conditions that are not
/// as they should be.
fn condition_findings(remote: &Remote) -> Vec<String> {
    let mut out = Vec::new();
    if remote.observed_version() < remote.version() {
        out.push(format!(
            "the agent has not reported on version {} yet (last report was for version {}): the status below may be out of date",
            remote.version(),
            remote.observed_version()
        ));
    }
    if let Some(c) = remote.condition(CONDITION_APPLIED)
        && c.status != "True"
    {
        out.push(format!(
            "the work is not applied (Applied={}): {}",
            c.status,
            explain(c)
        ));
    }
    if let Some(c) = remote.condition(CONDITION_AVAILABLE)
        && c.status != "True"
    {
        out.push(format!(
            "not all resources are available (Available={}): {}",
            c.status,
            explain(c)
        ));
    }
    if let Some(c) = remote.condition(CONDITION_DEGRADED)
        && c.status == "True"
    {
        out.push(format!("the work is degraded: {}", explain(c)));
    }
    out
}

/// Manifests the agent reports failing, or reports nothing about.
fn manifest_findings(remote: &Remote) -> Vec<String> {
    let mut out = Vec::new();
    let manifests = &remote.work.spec.workload.manifests;
    for (i, m) in manifests.iter().enumerate() {
        let what = format!("manifest {i} ({})", describe_manifest(m));
        let Some(status) = remote.manifest_status(i) else {
            if remote.status_is_current()
                && remote
                    .work
                    .status
                    .as_ref()
                    .is_some_and(|s| s.resource_status.is_some())
            {
                out.push(format!("{what} has no status from the agent"));
            }
            continue;
        };
        for (t, bad) in [
            (CONDITION_APPLIED, "not applied"),
            (CONDITION_AVAILABLE, "not available"),
            (
                CONDITION_STATUS_FEEDBACK_SYNCED,
                "status feedback not synced",
            ),
        ] {
            if let Some(c) = status.condition(t)
                && c.status == "False"
            {
                out.push(format!("{what}: {bad}: {}", explain(c)));
            }
        }
    }
    out
}

/// A condition's reason and message, for a finding.
fn explain(c: &Condition) -> String {
    let mut s = c.reason.clone();
    if !c.message.is_empty() {
        if !s.is_empty() {
            s.push_str(": ");
        }
        s.push_str(&c.message);
    }
    s
}

#[cfg(test)]
mod tests;
