//! `list`: the works of a consumer, filtered by status and labels.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::maestro::rest::ResourceBundle;
use crate::names::ConsumerName;

use super::context::{Deadline, parse_timeout, retry};
use super::errors::CliError;
use super::output::{self, OutputFormat, Table};
use super::remote::Remote;
use super::{Ctx, Outcome};

/// `--status`: a condition that must be True, or Deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    #[value(name = "Applied")]
    Applied,
    #[value(name = "Available")]
    Available,
    #[value(name = "Progressing")]
    Progressing,
    #[value(name = "Degraded")]
    Degraded,
    /// Deletion requested, not yet confirmed by the agent.
    #[value(name = "Deleting")]
    Deleting,
}

impl StatusFilter {
    pub fn matches(self, remote: &Remote) -> bool {
        match self {
            StatusFilter::Deleting => remote.bundle.is_deleting(),
            StatusFilter::Applied => remote.is_true("Applied"),
            StatusFilter::Available => remote.is_true("Available"),
            StatusFilter::Progressing => remote.is_true("Progressing"),
            StatusFilter::Degraded => remote.is_true("Degraded"),
        }
    }
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// Only works whose condition of this type is True (Deleting: being deleted)
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<StatusFilter>,
    /// Only works whose labels match, e.g. app=web,tier!=db,env in (prod,stage)
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Give up after this long (transient failures are retried until then)
    #[arg(long, default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,
}

pub async fn run(ctx: &Ctx, args: ListArgs) -> Result<Outcome, CliError> {
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let bundles: Vec<ResourceBundle> = retry(
        &deadline,
        &format!("list manifestworks of consumer {}", args.consumer),
        async || {
            client
                .list_bundles(Some(&args.consumer), args.selector.as_deref())
                .await
        },
    )
    .await?;
    let mut works = bundles
        .into_iter()
        .map(Remote::from_bundle)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::maestro("read the listed works", e))?;
    works.retain(|r| args.status.is_none_or(|s| s.matches(r)));
    works.sort_by(|a, b| a.name().cmp(b.name()));

    if works.is_empty() && args.status.is_none() && args.selector.is_none() {
        // An empty list may mean a typo in the consumer: say so.
        let exists = retry(&deadline, "find the consumer", async || {
            client.rest().find_consumer_by_name(&args.consumer).await
        })
        .await?;
        if exists.is_none() {
            return Err(CliError::NotFound(format!(
                "consumer {:?} is not registered in Maestro",
                args.consumer.as_str()
            )));
        }
    }

    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let items = works
                .iter()
                .map(output::work_value)
                .collect::<Result<Vec<_>, _>>()?;
            output::emit(&output::structured(args.output, &output::work_list(items))?)?;
        }
        format => {
            if works.is_empty() {
                eprintln!("No manifestworks found for consumer {}.", args.consumer);
                return Ok(Outcome::success());
            }
            let wide = format == OutputFormat::Wide;
            let mut table = Table::new(&output::work_header(wide));
            for work in &works {
                table.row(output::work_row(work, wide));
            }
            output::emit(&table.render())?;
        }
    }
    Ok(Outcome::success())
}
