//! `consumers`: list, show, register and remove consumers (clusters).
//! Consumers are named in commands; Maestro's ids are accepted too.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};

use crate::maestro::rest::Consumer;
use crate::names::ConsumerName;

use crate::cli::args::{ConsumerSelector, ReadTimeout};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::output::{self, OutputFormat, Table, age_or_unknown};
use crate::cli::results::Report;
use crate::cli::runtime::{Deadline, retry};

#[derive(Subcommand, Debug)]
pub enum ConsumersCommand {
    /// List consumers
    List(ListArgs),
    /// Show one consumer (by name, or by Maestro id)
    Get(GetArgs),
    /// Register a consumer
    Create(CreateArgs),
    /// Remove a consumer (it must have no works left)
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct Common {
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only consumers whose labels match (kubectl syntax, e.g. env=prod,region in (west))
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR", value_parser = ConsumerSelector::parse)]
    pub selector: Option<ConsumerSelector>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The consumer's name (or id)
    pub name: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub name: ConsumerName,
    /// A label as KEY=VALUE; repeat for more
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Succeed without change when the consumer exists
    #[arg(long)]
    pub if_not_exists: bool,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The consumer's name (or id)
    pub name: String,
    /// Do not ask for confirmation on a terminal
    #[arg(short, long)]
    pub yes: bool,
    /// Succeed when the consumer does not exist
    #[arg(long)]
    pub ignore_not_found: bool,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

pub async fn run(conn: &Connection, command: ConsumersCommand) -> Result<Report, CliError> {
    match command {
        ConsumersCommand::List(args) => list(conn, args).await?,
        ConsumersCommand::Get(args) => get(conn, args).await?,
        ConsumersCommand::Create(args) => create(conn, args).await?,
        ConsumersCommand::Delete(args) => delete(conn, args).await?,
    }
    Ok(Report::success())
}

async fn list(conn: &Connection, args: ListArgs) -> Result<(), CliError> {
    let rest = conn.client()?;
    let deadline = args.common.timeout.deadline();
    let mut consumers = retry(&deadline, "list consumers", async || {
        rest.list_consumers().await
    })
    .await?;
    if let Some(selector) = &args.selector {
        consumers.retain(|c| selector.matches(&c.labels));
    }
    consumers.sort_by(|a, b| a.name.cmp(&b.name));
    print_consumers(&consumers, args.common.output, true)
}

async fn get(conn: &Connection, args: GetArgs) -> Result<(), CliError> {
    let deadline = args.common.timeout.deadline();
    let consumer = resolve(conn, &args.name, &deadline)
        .await?
        .ok_or_else(|| not_found(&args.name))?;
    print_consumers(&[consumer], args.common.output, false)
}

async fn create(conn: &Connection, args: CreateArgs) -> Result<(), CliError> {
    let rest = conn.client()?;
    let deadline = args.common.timeout.deadline();
    let labels: BTreeMap<String, String> = args.labels.into_iter().collect();
    // Look first: a create retried after a lost answer must not fail on
    // the consumer it made itself.
    if let Some(existing) = retry(&deadline, "find the consumer", async || {
        rest.find_consumer(&args.name).await
    })
    .await?
    {
        if args.if_not_exists {
            return print_consumers(&[existing], args.common.output, false);
        }
        return Err(CliError::Failed(format!(
            "consumer {:?} already exists (id {})",
            args.name.as_str(),
            existing.id
        )));
    }
    let created = retry(
        &deadline,
        &format!("create consumer {}", args.name),
        async || rest.create_consumer(&args.name, &labels).await,
    )
    .await?;
    if args.common.output.is_table() {
        output::emit(&format!(
            "consumer/{} created (id {})\n",
            created.name, created.id
        ))
    } else {
        print_consumers(&[created], args.common.output, false)
    }
}

async fn delete(conn: &Connection, args: DeleteArgs) -> Result<(), CliError> {
    let rest = conn.client()?;
    let deadline = args.timeout.deadline();
    let Some(consumer) = resolve(conn, &args.name, &deadline).await? else {
        if args.ignore_not_found {
            return output::emit(&format!("consumer/{} not found (ignored)\n", args.name));
        }
        return Err(not_found(&args.name));
    };
    let question = format!("Delete consumer {} (id {})?", consumer.name, consumer.id);
    if !output::confirmed(args.yes, &question)? {
        return Err(CliError::Failed("deletion cancelled".into()));
    }
    retry(
        &deadline,
        &format!("delete consumer {}", consumer.name),
        async || rest.delete_consumer(&consumer.id).await,
    )
    .await?;
    output::emit(&format!("consumer/{} deleted\n", consumer.name))
}

fn not_found(name: &str) -> CliError {
    CliError::NotFound(format!("consumer {name:?} is not registered in Maestro"))
}

/// Finds a consumer by name, else by id.
async fn resolve(
    conn: &Connection,
    name_or_id: &str,
    deadline: &Deadline,
) -> Result<Option<Consumer>, CliError> {
    let rest = conn.client()?;
    if let Ok(name) = ConsumerName::new(name_or_id)
        && let Some(c) = retry(deadline, "find the consumer", async || {
            rest.find_consumer(&name).await
        })
        .await?
    {
        return Ok(Some(c));
    }
    match retry(deadline, "get the consumer", async || {
        rest.get_consumer(name_or_id).await
    })
    .await
    {
        Ok(c) => Ok(Some(c)),
        Err(CliError::Maestro {
            source: crate::maestro::error::Error::NotFound(_),
            ..
        }) => Ok(None),
        // A name that is no id makes the server answer oddly; the name
        // search above has already said it does not exist.
        Err(CliError::Maestro {
            source: crate::maestro::error::Error::Protocol(_),
            ..
        }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn print_consumers(
    consumers: &[Consumer],
    format: OutputFormat,
    as_list: bool,
) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = if as_list {
                serde_json::json!({"kind": "ConsumerList", "items": consumers})
            } else {
                serde_json::to_value(&consumers[0])
                    .map_err(|e| CliError::Failed(format!("cannot encode: {e}")))?
            };
            output::emit(&output::structured(format, &value)?)
        }
        format => {
            if consumers.is_empty() {
                eprintln!("No consumers found.");
                return Ok(());
            }
            let wide = format == OutputFormat::Wide;
            let mut header = vec!["NAME", "LABELS", "AGE"];
            if wide {
                header.push("ID");
            }
            let mut table = Table::new(&header);
            for c in consumers {
                let labels = if c.labels.is_empty() {
                    "<none>".to_string()
                } else {
                    c.labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let mut row = vec![c.name.clone(), labels, age_or_unknown(c.created_at)];
                if wide {
                    row.push(c.id.clone());
                }
                table.row(row);
            }
            output::emit(&table.render())
        }
    }
}

#[cfg(test)]
mod tests;
