//! `get`: one work, or one manifest of it.

use std::time::Duration;

use clap::{ArgGroup, Args};
use serde_json::json;

use crate::names::{ConsumerName, WorkName};

use super::context::{Deadline, parse_timeout, retry};
use super::errors::CliError;
use super::fleet::{ConsumerSelector, ConsumerState, find_on_each, select_consumers};
use super::output::{self, OutputFormat, Table};
use super::remote::{ManifestSelector, Remote, find_retrying, work_not_found};
use super::results::{ResultsArgs, StatusResult, Target};
use super::{Ctx, Outcome};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("where").required(true).args(["consumer", "selector"])))]
pub struct GetArgs {
    #[arg(long, value_name = "NAME")]
    pub name: WorkName,
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<ConsumerName>,
    /// Show the work on every consumer whose labels match (kubectl syntax, e.g. env=prod,region in (west))
    #[arg(short = 'l', long, value_name = "SELECTOR", visible_alias = "consumer-selector", value_parser = ConsumerSelector::parse)]
    pub selector: Option<ConsumerSelector>,
    /// Show only this manifest and its status (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST", conflicts_with = "selector")]
    pub manifest_name: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Give up after this long (transient failures are retried until then)
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(ctx: &Ctx, args: GetArgs, target: &mut Target) -> Result<Outcome, CliError> {
    target.name = args.name.to_string();
    match (&args.consumer, &args.selector) {
        (Some(consumer), _) => {
            target.consumer = consumer.to_string();
            get_one(ctx, &args, consumer, target).await
        }
        (None, Some(selector)) => {
            target.selector = Some(selector.to_string());
            get_across(ctx, &args, selector, target).await
        }
        (None, None) => Err(CliError::Usage("get needs --consumer or --selector".into())),
    }
}

async fn get_one(
    ctx: &Ctx,
    args: &GetArgs,
    consumer: &ConsumerName,
    target: &Target,
) -> Result<Outcome, CliError> {
    let selector = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let remote = find_retrying(client, &deadline, consumer, &args.name)
        .await?
        .ok_or_else(|| work_not_found(consumer, &args.name))?;

    let snapshot = remote.snapshot();
    let Some(selector) = selector else {
        print_work(&remote, args.output)?;
        let message = format!(
            "ManifestWork is {} (version {}, agent observed {})",
            snapshot.phase, snapshot.version, snapshot.observed_version
        );
        let result =
            StatusResult::new(target, snapshot.phase.clone(), message).with_snapshot(&snapshot);
        return Ok(Outcome::with_result(result));
    };

    let index = selector
        .find_in(&remote.work.spec.workload.manifests)?
        .ok_or_else(|| {
            CliError::NotFound(format!(
                "manifestwork {} on consumer {consumer} has no manifest matching {selector}",
                args.name
            ))
        })?;
    let resource = snapshot.resources[index].clone();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = json!({
                "manifest": remote.work.spec.workload.manifests[index],
                "status": remote.manifest_status(index),
            });
            output::emit(&output::structured(args.output, &value)?)?;
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
    let mut result = StatusResult::new(
        target,
        resource.status.clone(),
        format!(
            "manifest {} {} is {}",
            resource.kind, resource.name, resource.status
        ),
    )
    .with_snapshot(&snapshot);
    result.resources = vec![resource];
    Ok(Outcome::with_result(result))
}

/// The work on each selected consumer: a table row (or list item) per
/// consumer holding it. Consumers without it are named on standard error
/// and make the command fail with not found (exit 4) once all is printed.
async fn get_across(
    ctx: &Ctx,
    args: &GetArgs,
    selector: &ConsumerSelector,
    target: &mut Target,
) -> Result<Outcome, CliError> {
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let consumers = select_consumers(client, &deadline, selector).await?;
    let found = retry(
        &deadline,
        &format!(
            "read manifestwork {} on the consumers selected by {:?}",
            args.name,
            selector.as_str()
        ),
        async || find_on_each(client, &consumers, &args.name).await,
    )
    .await?;
    target.consumers = found
        .iter()
        .map(|(c, r)| ConsumerState::of(c, r.as_ref()))
        .collect();
    let works: Vec<&Remote> = found.values().flatten().collect();
    print_across(&found, &works, args.output)?;
    let missing: Vec<&str> = target
        .consumers
        .iter()
        .filter(|s| s.status == super::fleet::STATUS_NOT_FOUND)
        .map(|s| s.consumer.as_str())
        .collect();
    for consumer in &missing {
        eprintln!(
            "manifestwork {} not found on consumer {consumer}",
            args.name
        );
    }
    let summary = format!(
        "manifestwork {} found on {} of {} consumers selected by {:?}",
        args.name,
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
    let mut phases: Vec<&str> = target.consumers.iter().map(|s| s.status.as_str()).collect();
    phases.sort_unstable();
    phases.dedup();
    let status = match phases.as_slice() {
        [one] => (*one).to_string(),
        _ => STATUS_MIXED.to_string(),
    };
    Ok(Outcome::with_result(StatusResult::new(
        target, status, summary,
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

/// Prints one work in the chosen format.
pub fn print_work(remote: &Remote, format: OutputFormat) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            output::emit(&output::structured(format, &output::work_value(remote)?)?)
        }
        format => {
            let wide = format == OutputFormat::Wide;
            let mut table = Table::new(&output::work_header(wide));
            table.row(output::work_row(remote, wide));
            output::emit(&table.render())
        }
    }
}
