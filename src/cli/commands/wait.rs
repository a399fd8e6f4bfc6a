//! `wait`: until a work, or one of its manifests, meets a condition, on one
//! consumer or on a quorum of the consumers a selector picks.

use std::collections::BTreeMap;

use clap::Args;

use crate::names::{ConsumerName, WorkName};

use crate::cli::args::{
    ConsumerSelector, Consumers, Quorum, WorkOnConsumers, WriteTimeout, reword,
};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::ops::fleet::{find_on_each, select_consumers};
use crate::cli::ops::wait::{WorkCondition, is_met, wait_for};
use crate::cli::output::{self, OutputFormat, Progress};
use crate::cli::records::{ConsumerState, QuorumSummary};
use crate::cli::remote::{ManifestSelector, Remote};
use crate::cli::results::{Report, ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::{Follower, format_duration, poll_until};

#[derive(Args, Debug)]
#[command(
    mut_args(reword("selector", |a| a.help(
        "Wait on every consumer whose labels match (kubectl syntax, e.g. env=prod,region in (west))"
    ))),
    mut_args(reword("timeout", |a| a.help("Give up after this long (exit 3)")))
)]
pub struct WaitArgs {
    #[command(flatten)]
    pub work: WorkOnConsumers,
    /// With --selector: done once this many selected consumers meet the condition, a count (8) or a percentage, rounded up (95%) [default: 100%]
    #[arg(long, value_name = "N|P%", requires = "selector", conflicts_with = "consumer", value_parser = Quorum::parse)]
    pub quorum: Option<Quorum>,
    /// The condition to wait for
    #[arg(long, value_enum, ignore_case = true)]
    pub condition: WorkCondition,
    /// Wait for this manifest's condition instead of the work's (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST")]
    pub manifest_name: Option<String>,
    #[command(flatten)]
    pub timeout: WriteTimeout,
    /// table prints one line; json or yaml print the StatusResult
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(
    conn: &Connection,
    args: WaitArgs,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    subject.name = args.work.name.to_string();
    let manifest = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let (result, line) = match args.work.consumers("wait")? {
        Consumers::One(consumer) => {
            subject.consumer = consumer.to_string();
            wait_one(conn, &args, consumer, manifest.as_ref(), subject).await?
        }
        Consumers::Selected(selector) => {
            subject.selector = Some(selector.to_string());
            wait_quorum(conn, &args, selector, manifest.as_ref(), subject).await?
        }
    };
    if args.output.is_table() {
        output::emit(&format!("{line}\n"))?;
    } else {
        output::emit(&output::structured(args.output, &result)?)?;
    }
    Ok(Report::with_result(result))
}

fn awaited(name: &WorkName, manifest: Option<&ManifestSelector>) -> String {
    match manifest {
        Some(s) => format!("manifest {s} of manifestwork/{name}"),
        None => format!("manifestwork/{name}"),
    }
}

async fn wait_one(
    conn: &Connection,
    args: &WaitArgs,
    consumer: &ConsumerName,
    manifest: Option<&ManifestSelector>,
    subject: &Subject,
) -> Result<(StatusResult, String), CliError> {
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let mut progress = Progress::new();
    let remote = wait_for(
        client,
        consumer,
        &args.work.name,
        args.condition,
        manifest,
        &deadline,
        &mut progress,
    )
    .await?;
    let awaited = awaited(&args.work.name, manifest);
    let mut result = StatusResult::new(
        subject,
        args.condition.as_str(),
        format!("{awaited}: condition {} met", args.condition),
    );
    if let Some(remote) = &remote {
        result = result.with_snapshot(&remote.snapshot());
    }
    Ok((
        result,
        format!("{awaited} condition met: {}", args.condition),
    ))
}

/// Waits until a quorum of the selected consumers meets the condition.
/// Each consumer's state goes into `subject` on every look, so the results
/// file lists them however the wait ends.
async fn wait_quorum(
    conn: &Connection,
    args: &WaitArgs,
    selector: &ConsumerSelector,
    manifest: Option<&ManifestSelector>,
    subject: &mut Subject,
) -> Result<(StatusResult, String), CliError> {
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let consumers = select_consumers(client, &deadline, selector).await?;
    let quorum = args.quorum.unwrap_or(Quorum::Percent(100));
    let required = quorum.required(consumers.len(), selector)?;
    let goal = Goal {
        name: &args.work.name,
        condition: args.condition,
        manifest,
        selector,
        quorum,
        required,
        selected: consumers.len(),
    };
    let mut follower = Follower::start_all(client);
    let mut progress = Progress::new();
    let tally = poll_until(
        &mut follower,
        &deadline,
        async || {
            find_on_each(client, &consumers, &args.work.name)
                .await
                .map(|found| goal.tally(found))
        },
        |tally: &Tally| {
            progress.report(goal.describe(tally));
            subject.consumers = tally.states.clone();
            subject.quorum = Some(goal.summary(tally));
            Ok(tally.met >= required)
        },
        |last: Option<Tally>| CliError::Timeout {
            message: format!(
                "timed out after {} waiting for a quorum: {}",
                format_duration(deadline.total()),
                goal.describe(&last.unwrap_or_default())
            ),
            last: None,
        },
    )
    .await?;
    let message = format!("quorum met: {}", goal.describe(&tally));
    let result = StatusResult::new(subject, args.condition.as_str(), message.clone());
    Ok((result, message))
}

/// What a quorum wait is waiting for.
struct Goal<'a> {
    name: &'a WorkName,
    condition: WorkCondition,
    manifest: Option<&'a ManifestSelector>,
    selector: &'a ConsumerSelector,
    quorum: Quorum,
    required: usize,
    selected: usize,
}

/// The selected consumers as last read: each one's state, and how many
/// meet the condition.
#[derive(Debug, Default)]
struct Tally {
    states: Vec<ConsumerState>,
    met: usize,
}

/// How many consumers not meeting the condition a message names; the
/// results file lists them all.
const NAMED_IN_MESSAGE: usize = 10;

impl Goal<'_> {
    fn tally(&self, found: BTreeMap<ConsumerName, Option<Remote>>) -> Tally {
        let mut tally = Tally::default();
        for (consumer, remote) in found {
            let mut state = ConsumerState::of(&consumer, remote.as_ref());
            let met = match is_met(
                remote.as_ref(),
                self.condition,
                self.manifest,
                &consumer,
                self.name,
            ) {
                Ok(met) => met,
                // Elsewhere fatal, here only this consumer's problem.
                Err(e) => {
                    state.message = Some(e.to_string());
                    false
                }
            };
            if !met && state.message.is_none() && remote.is_some() {
                state.message = Some(Progress::describe(remote.as_ref()));
            }
            state.condition_met = Some(met);
            tally.met += usize::from(met);
            tally.states.push(state);
        }
        tally
    }

    fn summary(&self, tally: &Tally) -> QuorumSummary {
        QuorumSummary {
            quorum: self.quorum.to_string(),
            required: self.required,
            selected: self.selected,
            met: tally.met,
        }
    }

    /// One line: the goal, how far it is, and who is missing.
    fn describe(&self, tally: &Tally) -> String {
        let mut line = format!(
            "{} is {} on {} of {} consumers selected by {:?} (quorum {}, needs {})",
            awaited(self.name, self.manifest),
            self.condition,
            tally.met,
            self.selected,
            self.selector.as_str(),
            self.quorum,
            self.required,
        );
        let missing: Vec<String> = tally
            .states
            .iter()
            .filter(|s| s.condition_met != Some(true))
            .map(|s| format!("{} ({})", s.consumer, s.status))
            .collect();
        if tally.states.is_empty() {
            line.push_str("; no consumer read yet");
        } else if !missing.is_empty() {
            let shown = missing.len().min(NAMED_IN_MESSAGE);
            line.push_str(&format!("; not met on: {}", missing[..shown].join(", ")));
            if missing.len() > shown {
                line.push_str(&format!(" and {} more", missing.len() - shown));
            }
        }
        line
    }
}

#[cfg(test)]
mod tests;
