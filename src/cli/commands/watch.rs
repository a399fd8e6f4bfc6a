//! `watch`: the works of a consumer as they are, then every change.
//!
//! Status events from Maestro's stream say *when* to look; what is printed
//! always comes from a REST read, so every line carries the whole work and
//! its spec version. While the stream is down, REST is polled on its own.
//! A line is printed only when a work appears, disappears, or its version,
//! status or deletion state changes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{Local, Utc};
use clap::Args;
use serde_json::json;
use tracing::warn;

use crate::maestro::HeldWork;
use crate::names::{ConsumerName, ResourceId, WorkName};

use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::output::{self, OutputFormat};
use crate::cli::remote::Remote;
use crate::cli::results::Report;
use crate::cli::runtime::{Deadline, Follower, parse_timeout, retry};

/// Without `--timeout`, a watch runs until interrupted.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// Only this work
    #[arg(long, value_name = "NAME")]
    pub name: Option<WorkName>,
    /// Stop after this long (exit 0); without it, run until interrupted
    #[arg(long, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// table: one line per change; json: one JSON object per line (NDJSON); yaml: one document per change
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// The kind of a change, as Kubernetes watch events name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// What was last printed for each bundle.
#[derive(Default)]
pub struct Tracker {
    known: HashMap<ResourceId, (String, Remote)>,
}

impl Tracker {
    /// The changes between what was known and `now`, in name order.
    pub fn update(&mut self, now: Vec<Remote>) -> Vec<(EventType, Remote)> {
        let mut events = Vec::new();
        let mut fresh: HashMap<ResourceId, (String, Remote)> = HashMap::new();
        let mut sorted: BTreeMap<String, Remote> = BTreeMap::new();
        for r in now {
            sorted.insert(format!("{}/{}", r.name(), r.held.id), r);
        }
        for (_, r) in sorted {
            let print = fingerprint(&r.held);
            match self.known.remove(&r.held.id) {
                None => events.push((EventType::Added, r.clone())),
                Some((old, _)) if old != print => events.push((EventType::Modified, r.clone())),
                Some(_) => {}
            }
            fresh.insert(r.held.id, (print, r));
        }
        let mut gone: Vec<Remote> = self.known.drain().map(|(_, (_, r))| r).collect();
        gone.sort_by(|a, b| a.name().cmp(b.name()));
        events.extend(gone.into_iter().map(|r| (EventType::Deleted, r)));
        self.known = fresh;
        events
    }
}

/// What makes a change worth a line.
fn fingerprint(held: &HeldWork) -> String {
    format!(
        "{:?}",
        (
            held.version,
            held.deleting_since,
            &held.report,
            &held.name,
            &held.labels,
            &held.annotations,
        )
    )
}

pub async fn run(conn: &Connection, args: WatchArgs) -> Result<Report, CliError> {
    let deadline = Deadline::after(args.timeout.unwrap_or(FOREVER));
    let client = conn.client()?;
    let startup = Deadline::after(deadline.remaining().min(Duration::from_secs(30)));
    let consumer = retry(&startup, "find the consumer", async || {
        client.find_consumer(&args.consumer).await
    })
    .await?;
    if consumer.is_none() {
        return Err(CliError::NotFound(format!(
            "consumer {:?} is not registered in Maestro",
            args.consumer.as_str()
        )));
    }

    let mut follower = Follower::start(client, &args.consumer);
    let mut tracker = Tracker::default();
    if args.output.is_table() {
        output::emit(&format!(
            "{:<9} {:<9} {:<40} {:<12} {:<8} {:<9} {}\n",
            "TIME", "EVENT", "NAME", "STATUS", "VERSION", "OBSERVED", "MANIFESTS"
        ))?;
    }
    loop {
        match client.list_held(Some(&args.consumer), None).await {
            Ok(rows) => {
                let works: Vec<Remote> = rows
                    .into_iter()
                    .filter_map(|row| match row.and_then(Remote::from_held) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            warn!(error = %e, "skipping an unreadable bundle");
                            None
                        }
                    })
                    .filter(|r| args.name.as_ref().is_none_or(|n| r.name() == n.as_str()))
                    .collect();
                for (event, remote) in tracker.update(works) {
                    print_event(args.output, event, &remote)?;
                }
            }
            Err(e) if e.is_transient() => warn!(error = %e, "listing failed; will retry"),
            Err(e) => return Err(CliError::maestro("list manifestworks", e)),
        }
        tokio::select! {
            () = follower.changed() => {}
            () = tokio::time::sleep_until(deadline.end()) => return Ok(Report::success()),
        }
    }
}

fn print_event(format: OutputFormat, event: EventType, remote: &Remote) -> Result<(), CliError> {
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = json!({
                "type": event.as_str(),
                "timestamp": Utc::now(),
                "object": output::work_value(remote)?,
            });
            let text = if format == OutputFormat::Json {
                output::to_json_line(&value)?
            } else {
                format!("---\n{}", output::to_yaml(&value)?)
            };
            output::emit(&text)
        }
        _ => {
            let status = if event == EventType::Deleted {
                "Deleted".to_string()
            } else {
                remote.health().to_string()
            };
            output::emit(&format!(
                "{:<9} {:<9} {:<40} {:<12} {:<8} {:<9} {}\n",
                Local::now().format("%H:%M:%S"),
                event.as_str(),
                remote.name(),
                status,
                remote.version(),
                remote.observed_version(),
                remote.work.spec.workload.manifests.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests;
