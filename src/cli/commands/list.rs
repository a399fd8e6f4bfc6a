//! `list`: the works of a consumer, filtered by status and labels.

use clap::{ArgGroup, Args, ValueEnum};

use crate::maestro::work_client::WorkClient;
use crate::names::ConsumerName;

use crate::cli::args::{ConsumerSelector, ReadTimeout};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::ops::fleet::{bundles_on, select_consumers};
use crate::cli::output::{self, OutputFormat, Table};
use crate::cli::remote::Remote;
use crate::cli::results::Report;
use crate::cli::runtime::{Deadline, retry};

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
            StatusFilter::Deleting => remote.held.is_deleting(),
            StatusFilter::Applied => remote.is_true("Applied"),
            StatusFilter::Available => remote.is_true("Available"),
            StatusFilter::Progressing => remote.is_true("Progressing"),
            StatusFilter::Degraded => remote.is_true("Degraded"),
        }
    }
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("where").required(true).args(["consumer", "consumer_selector"])))]
pub struct ListArgs {
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<ConsumerName>,
    /// List the works of every consumer whose labels match (kubectl syntax, e.g. env=prod,region in (west))
    #[arg(long, value_name = "SELECTOR", value_parser = ConsumerSelector::parse)]
    pub consumer_selector: Option<ConsumerSelector>,
    /// Only works whose condition of this type is True (Deleting: being deleted)
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<StatusFilter>,
    /// Only works whose labels match, e.g. app=web,tier!=db,env in (prod,stage)
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

pub async fn run(conn: &Connection, args: ListArgs) -> Result<Report, CliError> {
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let (works, scope) = read_works(client, &args, &deadline).await?;
    if let Some(consumer) = &args.consumer
        && works.is_empty()
        && args.status.is_none()
        && args.selector.is_none()
    {
        // An empty list may mean a typo in the consumer: say so.
        let exists = retry(&deadline, "find the consumer", async || {
            client.find_consumer(consumer).await
        })
        .await?;
        if exists.is_none() {
            return Err(CliError::NotFound(format!(
                "consumer {:?} is not registered in Maestro",
                consumer.as_str()
            )));
        }
    }

    print_works(&args, &works, &scope)?;
    Ok(Report::success())
}

/// The works the flags ask for, sorted by consumer and name, and the scope
/// they were read from, for messages.
async fn read_works(
    client: &WorkClient,
    args: &ListArgs,
    deadline: &Deadline,
) -> Result<(Vec<Remote>, String), CliError> {
    let (bundles, scope) = match (&args.consumer, &args.consumer_selector) {
        (Some(consumer), _) => {
            let bundles = retry(
                deadline,
                &format!("list manifestworks of consumer {consumer}"),
                async || {
                    client
                        .list_held(Some(consumer), args.selector.as_deref())
                        .await
                },
            )
            .await?;
            (bundles, format!("consumer {consumer}"))
        }
        (None, Some(selector)) => {
            let consumers = select_consumers(client, deadline, selector).await?;
            let scope = format!("the consumers selected by {:?}", selector.as_str());
            let bundles = retry(
                deadline,
                &format!("list manifestworks of {scope}"),
                async || bundles_on(client, &consumers, args.selector.as_deref()).await,
            )
            .await?;
            (bundles, scope)
        }
        (None, None) => {
            return Err(CliError::Usage(
                "list needs --consumer or --consumer-selector".into(),
            ));
        }
    };
    let mut works = bundles
        .into_iter()
        .map(|row| row.and_then(Remote::from_held))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::maestro("read the listed works", e))?;
    works.retain(|r| args.status.is_none_or(|s| s.matches(r)));
    works.sort_by(|a, b| {
        (a.held.consumer.as_str(), a.name()).cmp(&(b.held.consumer.as_str(), b.name()))
    });

    Ok((works, scope))
}

fn print_works(args: &ListArgs, works: &[Remote], scope: &str) -> Result<(), CliError> {
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
                eprintln!("No manifestworks found for {scope}.");
                return Ok(());
            }
            let wide = format == OutputFormat::Wide;
            let across = args.consumer_selector.is_some();
            let header = if across {
                output::work_header_across(wide)
            } else {
                output::work_header(wide)
            };
            let mut table = Table::new(&header);
            for work in works {
                table.row(if across {
                    output::work_row_across(&work.held.consumer, work, wide)
                } else {
                    output::work_row(work, wide)
                });
            }
            output::emit(&table.render())?;
        }
    }
    Ok(())
}
