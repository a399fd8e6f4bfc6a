//! `get`: one work, or one manifest of it.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::names::{ConsumerName, WorkName};

use super::context::{Deadline, parse_timeout};
use super::errors::CliError;
use super::output::{self, OutputFormat, Table};
use super::remote::{ManifestSelector, Remote, find_retrying, work_not_found};
use super::results::{ResultsArgs, StatusResult, Target};
use super::{Ctx, Outcome};

#[derive(Args, Debug)]
pub struct GetArgs {
    #[arg(long, value_name = "NAME")]
    pub name: WorkName,
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// Show only this manifest and its status (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST")]
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
    target.consumer = args.consumer.to_string();
    let selector = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let remote = find_retrying(client, &deadline, &args.consumer, &args.name)
        .await?
        .ok_or_else(|| work_not_found(&args.consumer, &args.name))?;

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
                "manifestwork {} on consumer {} has no manifest matching {selector}",
                args.name, args.consumer
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
