//! `wait`: until a work, or one of its manifests, meets a condition.
//!
//! A condition counts only when the agent reported it for the current
//! spec version (the bundle's observed version has caught up), so a
//! condition left from before an update does not end the wait early.

use std::time::Duration;

use std::collections::BTreeMap;

use clap::{ArgGroup, Args, ValueEnum};

use crate::maestro::work_client::WorkClient;
use crate::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_DELETED,
    CONDITION_PROGRESSING,
};
use crate::names::{ConsumerName, WorkName};

use super::context::{Deadline, Follower, Progress, format_duration, parse_timeout, poll_until};
use super::errors::CliError;
use super::fleet::{
    ConsumerSelector, ConsumerState, Quorum, QuorumSummary, find_on_each, select_consumers,
};
use super::output::{self, OutputFormat};
use super::remote::{ManifestSelector, Remote, find, work_not_found};
use super::results::{ResultsArgs, StatusResult, Target};
use super::{Ctx, Outcome};

/// The conditions `wait` and `--watch` understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkCondition {
    #[value(name = "Applied")]
    Applied,
    #[value(name = "Available")]
    Available,
    #[value(name = "Progressing")]
    Progressing,
    #[value(name = "Degraded")]
    Degraded,
    /// The work (or manifest) is gone.
    #[value(name = "Deleted")]
    Deleted,
}

impl WorkCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkCondition::Applied => CONDITION_APPLIED,
            WorkCondition::Available => CONDITION_AVAILABLE,
            WorkCondition::Progressing => CONDITION_PROGRESSING,
            WorkCondition::Degraded => CONDITION_DEGRADED,
            WorkCondition::Deleted => CONDITION_DELETED,
        }
    }
}

impl std::fmt::Display for WorkCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("where").required(true).args(["consumer", "selector"])))]
pub struct WaitArgs {
    #[arg(long, value_name = "NAME")]
    pub name: WorkName,
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<ConsumerName>,
    /// Wait on every consumer whose labels match (kubectl syntax, e.g. env=prod,region in (west))
    #[arg(short = 'l', long, value_name = "SELECTOR", visible_alias = "consumer-selector", value_parser = ConsumerSelector::parse)]
    pub selector: Option<ConsumerSelector>,
    /// With --selector: done once this many selected consumers meet the condition, a count (8) or a percentage, rounded up (95%) [default: 100%]
    #[arg(long, value_name = "N|P%", requires = "selector", conflicts_with = "consumer", value_parser = Quorum::parse)]
    pub quorum: Option<Quorum>,
    /// The condition to wait for
    #[arg(long, value_enum, ignore_case = true)]
    pub condition: WorkCondition,
    /// Wait for this manifest's condition instead of the work's (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST")]
    pub manifest_name: Option<String>,
    /// Give up after this long (exit 3)
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// table prints one line; json or yaml print the StatusResult
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(ctx: &Ctx, args: WaitArgs, target: &mut Target) -> Result<Outcome, CliError> {
    target.name = args.name.to_string();
    let manifest = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let (result, line) = match (&args.consumer, &args.selector) {
        (Some(consumer), _) => {
            target.consumer = consumer.to_string();
            wait_one(ctx, &args, consumer, manifest.as_ref(), target).await?
        }
        (None, Some(selector)) => {
            target.selector = Some(selector.to_string());
            wait_quorum(ctx, &args, selector, manifest.as_ref(), target).await?
        }
        (None, None) => {
            return Err(CliError::Usage(
                "wait needs --consumer or --selector".into(),
            ));
        }
    };
    if args.output.is_table() {
        output::emit(&format!("{line}\n"))?;
    } else {
        output::emit(&output::structured(args.output, &result)?)?;
    }
    Ok(Outcome::with_result(result))
}

fn subject(name: &WorkName, manifest: Option<&ManifestSelector>) -> String {
    match manifest {
        Some(s) => format!("manifest {s} of manifestwork/{name}"),
        None => format!("manifestwork/{name}"),
    }
}

async fn wait_one(
    ctx: &Ctx,
    args: &WaitArgs,
    consumer: &ConsumerName,
    manifest: Option<&ManifestSelector>,
    target: &Target,
) -> Result<(StatusResult, String), CliError> {
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let mut progress = Progress::new();
    let remote = wait_for(
        client,
        consumer,
        &args.name,
        args.condition,
        manifest,
        &deadline,
        &mut progress,
    )
    .await?;
    let subject = subject(&args.name, manifest);
    let mut result = StatusResult::new(
        target,
        args.condition.as_str(),
        format!("{subject}: condition {} met", args.condition),
    );
    if let Some(remote) = &remote {
        result = result.with_snapshot(&remote.snapshot());
    }
    Ok((
        result,
        format!("{subject} condition met: {}", args.condition),
    ))
}

/// Waits until a quorum of the selected consumers meets the condition.
/// Each consumer's state goes into `target` on every look, so the results
/// file lists them however the wait ends.
async fn wait_quorum(
    ctx: &Ctx,
    args: &WaitArgs,
    selector: &ConsumerSelector,
    manifest: Option<&ManifestSelector>,
    target: &mut Target,
) -> Result<(StatusResult, String), CliError> {
    let deadline = Deadline::after(args.timeout);
    let client = ctx.client()?;
    let consumers = select_consumers(client, &deadline, selector).await?;
    let quorum = args.quorum.unwrap_or(Quorum::Percent(100));
    let required = quorum.required(consumers.len(), selector)?;
    let goal = Goal {
        name: &args.name,
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
            find_on_each(client, &consumers, &args.name)
                .await
                .map(|found| goal.tally(found))
        },
        |tally: &Tally| {
            progress.report(goal.describe(tally));
            target.consumers = tally.states.clone();
            target.quorum = Some(goal.summary(tally));
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
    let result = StatusResult::new(target, args.condition.as_str(), message.clone());
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
            subject(self.name, self.manifest),
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

/// Waits until `condition` holds; returns the work as last read (`None`
/// once deleted). A missing work is an error unless waiting for Deleted.
pub async fn wait_for(
    client: &WorkClient,
    consumer: &ConsumerName,
    name: &WorkName,
    condition: WorkCondition,
    selector: Option<&ManifestSelector>,
    deadline: &Deadline,
    progress: &mut Progress,
) -> Result<Option<Remote>, CliError> {
    let mut follower = Follower::start(client, consumer);
    let subject = match selector {
        Some(s) => format!("manifest {s} of manifestwork {name} on consumer {consumer}"),
        None => format!("manifestwork {name} on consumer {consumer}"),
    };
    poll_until(
        &mut follower,
        deadline,
        async || find(client, consumer, name).await,
        |remote: &Option<Remote>| {
            progress.report(Progress::describe(remote.as_ref()));
            is_met(remote.as_ref(), condition, selector, consumer, name)
        },
        |last: Option<Option<Remote>>| {
            let last = last.flatten();
            let state = Progress::describe(last.as_ref());
            CliError::Timeout {
                message: format!(
                    "timed out after {} waiting for {subject} to be {condition}; last status: {state}",
                    format_duration(deadline.total())
                ),
                last: last.map(|r| Box::new(r.snapshot())),
            }
        },
    )
    .await
}

/// Whether `condition` holds for the work as read.
pub fn is_met(
    remote: Option<&Remote>,
    condition: WorkCondition,
    selector: Option<&ManifestSelector>,
    consumer: &ConsumerName,
    name: &WorkName,
) -> Result<bool, CliError> {
    let Some(remote) = remote else {
        return if condition == WorkCondition::Deleted {
            Ok(true)
        } else {
            Err(work_not_found(consumer, name))
        };
    };
    let Some(selector) = selector else {
        return Ok(condition != WorkCondition::Deleted
            && remote.status_is_current()
            && remote.is_true(condition.as_str()));
    };
    let index = selector.find_in(&remote.work.spec.workload.manifests)?;
    match (index, condition) {
        // The manifest left the spec and the agent has seen that spec.
        (None, WorkCondition::Deleted) => Ok(remote.status_is_current()),
        (None, _) => Err(CliError::NotFound(format!(
            "manifestwork {name} on consumer {consumer} has no manifest matching {selector}"
        ))),
        (Some(_), WorkCondition::Deleted) => Ok(false),
        (Some(i), _) => Ok(remote.status_is_current()
            && remote
                .manifest_status(i)
                .is_some_and(|m| m.is_condition_true(condition.as_str(), None))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maestro::rest::ResourceBundle;
    use serde_json::{Value, json};

    fn remote(
        observed: i64,
        version: i64,
        work_conditions: Value,
        manifest_conditions: Value,
    ) -> Remote {
        let bundle: ResourceBundle = serde_json::from_value(json!({
            "id": "x", "consumer_name": "c", "version": version,
            "metadata": {"name": "w"},
            "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}],
            "status": {"ObservedVersion": observed, "SequenceID": "1", "conditions": work_conditions,
                       "resourceStatus": [{"resourceMeta": {"ordinal": 0, "kind": "ConfigMap", "name": "cm"},
                                           "conditions": manifest_conditions}]}
        }))
        .unwrap();
        Remote::from_bundle(bundle).unwrap()
    }

    fn cond(t: &str, s: &str) -> Value {
        json!({"type": t, "status": s, "reason": "", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"})
    }

    fn names() -> (ConsumerName, WorkName) {
        (ConsumerName::new("c").unwrap(), WorkName::new("w").unwrap())
    }

    #[test]
    fn a_condition_counts_only_for_the_current_version() {
        let (c, n) = names();
        let applied = json!([cond("Applied", "True")]);
        let fresh = remote(2, 2, applied.clone(), json!([]));
        let stale = remote(1, 2, applied, json!([]));
        assert!(is_met(Some(&fresh), WorkCondition::Applied, None, &c, &n).unwrap());
        assert!(!is_met(Some(&stale), WorkCondition::Applied, None, &c, &n).unwrap());
        assert!(!is_met(Some(&fresh), WorkCondition::Available, None, &c, &n).unwrap());
    }

    #[test]
    fn deleted_is_met_by_absence_and_missing_works_fail_otherwise() {
        let (c, n) = names();
        assert!(is_met(None, WorkCondition::Deleted, None, &c, &n).unwrap());
        let e = is_met(None, WorkCondition::Applied, None, &c, &n).unwrap_err();
        assert_eq!(e.exit_status().code(), 4);
    }

    #[test]
    fn manifest_conditions_are_read_from_the_manifest_status() {
        let (c, n) = names();
        let r = remote(1, 1, json!([]), json!([cond("Available", "True")]));
        let sel = ManifestSelector::parse("ConfigMap/cm").unwrap();
        assert!(is_met(Some(&r), WorkCondition::Available, Some(&sel), &c, &n).unwrap());
        assert!(!is_met(Some(&r), WorkCondition::Available, None, &c, &n).unwrap());
        let missing = ManifestSelector::parse("other").unwrap();
        let e = is_met(Some(&r), WorkCondition::Available, Some(&missing), &c, &n).unwrap_err();
        assert_eq!(e.exit_status().code(), 4);
        assert!(is_met(Some(&r), WorkCondition::Deleted, Some(&missing), &c, &n).unwrap());
    }

    #[test]
    fn a_quorum_tally_counts_consumers_meeting_the_condition_and_names_the_rest() {
        let name = WorkName::new("w").unwrap();
        let selector = ConsumerSelector::parse("env=prod").unwrap();
        let goal = Goal {
            name: &name,
            condition: WorkCondition::Available,
            manifest: None,
            selector: &selector,
            quorum: Quorum::Percent(60),
            required: 2,
            selected: 3,
        };
        let consumer = |n: &str| ConsumerName::new(n).unwrap();
        let found = BTreeMap::from([
            (
                consumer("a"),
                Some(remote(1, 1, json!([cond("Available", "True")]), json!([]))),
            ),
            (
                consumer("b"),
                Some(remote(1, 1, json!([cond("Applied", "False")]), json!([]))),
            ),
            (consumer("c"), None),
        ]);
        let tally = goal.tally(found);
        assert_eq!(tally.met, 1);
        let states: Vec<_> = tally
            .states
            .iter()
            .map(|s| (s.consumer.as_str(), s.status.as_str(), s.condition_met))
            .collect();
        assert_eq!(
            states,
            [
                ("a", "Available", Some(true)),
                ("b", "Failed", Some(false)),
                ("c", "NotFound", Some(false))
            ]
        );
        assert!(
            tally.states[1]
                .message
                .as_deref()
                .unwrap()
                .contains("Applied=False")
        );
        let line = goal.describe(&tally);
        assert!(
            line.contains("1 of 3")
                && line.contains("needs 2")
                && line.contains("b (Failed), c (NotFound)"),
            "{line}"
        );
    }

    #[test]
    fn a_quorum_message_names_at_most_ten_missing_consumers() {
        let name = WorkName::new("w").unwrap();
        let selector = ConsumerSelector::parse("env=prod").unwrap();
        let goal = Goal {
            name: &name,
            condition: WorkCondition::Applied,
            manifest: None,
            selector: &selector,
            quorum: Quorum::Count(1),
            required: 1,
            selected: 12,
        };
        let found = (0..12)
            .map(|i| (ConsumerName::new(format!("c{i:02}")).unwrap(), None))
            .collect();
        let line = goal.describe(&goal.tally(found));
        assert!(line.contains("c09 (NotFound) and 2 more"), "{line}");
        assert!(!line.contains("c10"), "{line}");
    }
}
