//! `get`: one work, or one manifest of it.

use clap::Args;
use serde_json::json;

use crate::names::ConsumerName;

use crate::cli::args::{ConsumerSelector, Consumers, ReadTimeout, WorkOnConsumers, reword};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::ops::fleet::{find_on_each, select_consumers};
use crate::cli::output::{self, OutputFormat, Table};
use crate::cli::records::{ConsumerState, ResourceResult, STATUS_NOT_FOUND};
use crate::cli::remote::{ManifestSelector, Remote, find_retrying, work_not_found};
use crate::cli::results::Report;
use crate::cli::results::{ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::retry;

#[derive(Args, Debug)]
#[command(mut_args(reword("selector", |a| a.help(
    "Show the work on every consumer whose labels match (kubectl syntax, e.g. env=prod,region in (west))"
))))]
pub struct GetArgs {
    #[command(flatten)]
    pub work: WorkOnConsumers,
    /// Show only this manifest and its status (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST", conflicts_with = "selector")]
    pub manifest_name: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub timeout: ReadTimeout,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(
    conn: &Connection,
    args: GetArgs,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    subject.name = args.work.name.to_string();
    match args.work.consumers("get")? {
        Consumers::One(consumer) => {
            subject.consumer = consumer.to_string();
            get_one(conn, &args, consumer, subject).await
        }
        Consumers::Selected(selector) => {
            subject.selector = Some(selector.to_string());
            get_across(conn, &args, selector, subject).await
        }
    }
}

async fn get_one(
    conn: &Connection,
    args: &GetArgs,
    consumer: &ConsumerName,
    subject: &Subject,
) -> Result<Report, CliError> {
    let selector = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let remote = find_retrying(client, &deadline, consumer, &args.work.name)
        .await?
        .ok_or_else(|| work_not_found(consumer, &args.work.name))?;

    let snapshot = remote.snapshot();
    let Some(selector) = selector else {
        output::print_work(&remote, args.output)?;
        let message = format!(
            "ManifestWork is {} (version {}, agent observed {})",
            snapshot.health, snapshot.version, snapshot.observed_version
        );
        let result =
            StatusResult::new(subject, snapshot.health.clone(), message).with_snapshot(&snapshot);
        return Ok(Report::with_result(result));
    };

    let index = selector
        .find_in(&remote.work.spec.workload.manifests)?
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "manifestwork {} on consumer {consumer} has no manifest matching {selector}",
                args.work.name
            ))
        })?;
    let resource = snapshot.resources[index].clone();
    print_manifest(&remote, index, &resource, args.output)?;
    let mut result = StatusResult::new(
        subject,
        resource.status.clone(),
        format!(
            "manifest {} {} is {}",
            resource.kind, resource.name, resource.status
        ),
    )
    .with_snapshot(&snapshot);
    result.resources = vec![resource];
    Ok(Report::with_result(result))
}

/// One manifest of a work: as it is and what the agent reported (json,
/// yaml), or a table row.
fn print_manifest(
    remote: &Remote,
    index: usize,
    resource: &ResourceResult,
    format: OutputFormat,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = json!({
                "manifest": remote.work.spec.workload.manifests[index],
                "status": remote.manifest_status(index),
            });
            output::emit(&output::structured(format, &value)?)?;
        }
        format => {
            let mut header = vec!["KIND", "NAMESPACE", "NAME", "STATUS"];
            if format == OutputFormat::Wide {
                header.extend(["CONDITIONS", "FEEDBACK"]);
            }
            let mut table = Table::new(&header);
            let mut row = vec![
                resource.kind.clone(),
                or_dash(&resource.namespace),
                resource.name.clone(),
                resource.status.clone(),
            ];
            if format == OutputFormat::Wide {
                let conditions = resource
                    .conditions
                    .iter()
                    .map(|c| format!("{}={}", c.type_, c.status))
                    .collect::<Vec<_>>()
                    .join(",");
                let feedback = resource
                    .feedback
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                row.extend([or_dash(&conditions), or_dash(&feedback)]);
            }
            table.row(row);
            output::emit(&table.render())?;
        }
    }
    Ok(())
}

/// The work on each selected consumer: a table row (or list item) per
/// consumer holding it. Consumers without it are named on standard error
/// and make the command fail with not found (exit 4) once all is printed.
async fn get_across(
    conn: &Connection,
    args: &GetArgs,
    selector: &ConsumerSelector,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let consumers = select_consumers(client, &deadline, selector).await?;
    let found = retry(
        &deadline,
        &format!(
            "read manifestwork {} on the consumers selected by {:?}",
            args.work.name,
            selector.as_str()
        ),
        async || find_on_each(client, &consumers, &args.work.name).await,
    )
    .await?;
    subject.consumers = found
        .iter()
        .map(|(c, r)| ConsumerState::of(c, r.as_ref()))
        .collect();
    let works: Vec<&Remote> = found.values().flatten().collect();
    print_across(&found, &works, args.output)?;
    let missing: Vec<&str> = subject
        .consumers
        .iter()
        .filter(|s| s.status == STATUS_NOT_FOUND)
        .map(|s| s.consumer.as_str())
        .collect();
    for consumer in &missing {
        eprintln!(
            "manifestwork {} not found on consumer {consumer}",
            args.work.name
        );
    }
    let summary = format!(
        "manifestwork {} found on {} of {} consumers selected by {:?}",
        args.work.name,
        works.len(),
        found.len(),
        selector.as_str()
    );
    if !missing.is_empty() {
        return Err(CliError::NotFound(format!(
            "{summary}; missing on: {}",
            missing.join(", ")
        )));
    }
    let mut phases: Vec<&str> = subject
        .consumers
        .iter()
        .map(|s| s.status.as_str())
        .collect();
    phases.sort_unstable();
    phases.dedup();
    let status = match phases.as_slice() {
        [one] => (*one).to_string(),
        _ => STATUS_MIXED.to_string(),
    };
    Ok(Report::with_result(StatusResult::new(
        subject, status, summary,
    )))
}

/// The results status of `get --selector` when consumers differ in phase.
pub const STATUS_MIXED: &str = "Mixed";

fn print_across(
    found: &std::collections::BTreeMap<ConsumerName, Option<Remote>>,
    works: &[&Remote],
    format: OutputFormat,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let items = works
                .iter()
                .map(|r| output::work_value(r))
                .collect::<Result<Vec<_>, _>>()?;
            output::emit(&output::structured(format, &output::work_list(items))?)
        }
        _ if works.is_empty() => Ok(()),
        format => {
            let wide = format == OutputFormat::Wide;
            let mut table = Table::new(&output::work_header_across(wide));
            for (consumer, remote) in found {
                if let Some(remote) = remote {
                    table.row(output::work_row_across(consumer.as_str(), remote, wide));
                }
            }
            output::emit(&table.render())
        }
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}
