//! Waiting for a work, or one of its manifests, to meet a condition.
//!
//! A condition counts only when the agent reported it for the current
//! spec version (the bundle's observed version has caught up), so a
//! condition left from before an update does not end the wait early.

use clap::ValueEnum;

use crate::maestro::work_client::WorkClient;
use crate::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_DELETED,
    CONDITION_PROGRESSING,
};
use crate::names::{ConsumerName, WorkName};

use crate::cli::errors::CliError;
use crate::cli::output::Progress;
use crate::cli::remote::{ManifestSelector, Remote, find, work_not_found};
use crate::cli::runtime::{Deadline, Follower, format_duration, poll_until};

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
mod tests;
