//! The set's status from a rollout decision, pure: kstatus conditions
//! (Ready, Reconciling, Stalled) plus Progressing and RolledBack, the
//! counts and the bounded per-consumer rows.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::children::child_name;
use super::crd::{ConsumerRow, MaestroApplySetStatus, RolledBack};
use super::rollout::{Decision, Member, Outcome};
use crate::controller::metrics::SetSample;

/// Per-consumer rows kept in status; past it only the counts (an object
/// must stay well under etcd's 1.5 MiB with thousands of consumers).
pub const MAX_ROWS: usize = 200;

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_RECONCILING: &str = "Reconciling";
pub const CONDITION_STALLED: &str = "Stalled";
pub const CONDITION_PROGRESSING: &str = "Progressing";
pub const CONDITION_ROLLED_BACK: &str = "RolledBack";

/// What [`compute`] needs beside the decision.
pub struct Input<'a> {
    pub set_name: &'a str,
    pub generation: Option<i64>,
    pub selector: String,
    pub members: &'a [Member],
    pub decision: &'a Decision,
    pub update: &'a str,
    /// The current revision after this decision.
    pub current: Option<&'a str>,
    /// The rollback record after this decision.
    pub rolled_back: Option<RolledBack>,
    pub now: Time,
}

pub fn compute(prev: Option<&MaestroApplySetStatus>, input: &Input<'_>) -> MaestroApplySetStatus {
    let d = input.decision;
    let c = &d.counts;
    let (phase, group) = match &d.outcome {
        Outcome::Complete => ("Ready", None),
        Outcome::Progressing { group } => ("Progressing", group.clone()),
        Outcome::RolledBack { .. }
            if input
                .rolled_back
                .as_ref()
                .is_some_and(|r| r.to_revision.is_some()) =>
        {
            ("RolledBack", None)
        }
        Outcome::RolledBack { .. } => ("Halted", None),
        Outcome::Suspended => ("Suspended", None),
    };
    let mut status = MaestroApplySetStatus {
        observed_generation: input.generation,
        conditions: Vec::new(),
        phase: Some(phase.into()),
        selector: Some(input.selector.clone()),
        current_revision: input.current.map(str::to_string),
        update_revision: Some(input.update.to_string()),
        total: as_i32(c.total),
        updated: as_i32(c.updated),
        ready: as_i32(c.ready),
        available: as_i32(c.available),
        failed: as_i32(c.failed),
        progressing: as_i32(c.progressing),
        ready_summary: Some(format!("{}/{}", c.ready, c.total)),
        current_group: group,
        rolled_back: input.rolled_back.clone(),
        consumers: Vec::new(),
        consumers_omitted: 0,
    };
    for (m, s) in input.members.iter().zip(&d.standings).take(MAX_ROWS) {
        status.consumers.push(ConsumerRow {
            name: m.consumer.clone(),
            child: child_name(input.set_name, &m.consumer),
            revision: m.child.as_ref().map(|c| c.revision.clone()),
            phase: s.as_str().into(),
            group: m.group.clone(),
            message: match m.child.as_ref().map(|c| &c.health) {
                Some(super::rollout::Health::Failed { reason }) => Some(truncate(reason)),
                _ => None,
            },
        });
    }
    status.consumers_omitted =
        as_i32(u32::try_from(input.members.len().saturating_sub(MAX_ROWS)).unwrap_or(u32::MAX));
    status.conditions = conditions(input, phase);
    for condition in &mut status.conditions {
        keep_transition_time(prev, condition);
    }
    status
}

fn as_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// (type, status, reason, message) per condition, in a fixed order.
fn conditions(input: &Input<'_>, phase: &str) -> Vec<Condition> {
    let d = input.decision;
    let c = &d.counts;
    let update = input.update;
    let progress = format!(
        "revision {update}: {} of {} consumer(s) updated, {} succeeded, {} failed (maxFailures {})",
        c.updated, c.total, c.available, c.failed, d.max_failures
    );
    // Each outcome gives one reason and message, and the statuses of
    // Ready, Reconciling, Stalled and Progressing in that order.
    let (reason, message, [ready, reconciling, stalled, progressing]) = match &d.outcome {
        Outcome::Complete => (
            "RolloutComplete",
            format!(
                "revision {update} rolled out: {} of {} consumer(s) succeeded, {} failed",
                c.available, c.total, c.failed
            ),
            ["True", "False", "False", "False"],
        ),
        Outcome::Progressing { group } => (
            "Progressing",
            match group {
                Some(g) => format!("{progress}; group {g}"),
                None => progress.clone(),
            },
            ["False", "True", "False", "True"],
        ),
        Outcome::RolledBack { failed } => (
            "RolledBack",
            rolled_back_message(input, failed, phase),
            ["False", "False", "True", "False"],
        ),
        Outcome::Suspended => (
            "Suspended",
            format!("spec.suspend is true: nothing moves; {progress}"),
            ["False", "False", "False", "False"],
        ),
    };
    let rolled_back = if matches!(d.outcome, Outcome::RolledBack { .. }) {
        ("True", reason, message.clone())
    } else {
        (
            "False",
            "NoFailedRollout",
            format!("revision {update} has not failed"),
        )
    };
    let rows = [
        (CONDITION_READY, ready, reason, message.clone()),
        (CONDITION_RECONCILING, reconciling, reason, message.clone()),
        (CONDITION_STALLED, stalled, reason, message.clone()),
        (CONDITION_PROGRESSING, progressing, reason, message),
        (
            CONDITION_ROLLED_BACK,
            rolled_back.0,
            rolled_back.1,
            rolled_back.2,
        ),
    ];
    rows.into_iter()
        .map(|(type_, status, reason, message)| Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: truncate(&message),
            observed_generation: input.generation,
            last_transition_time: input.now.clone(),
        })
        .collect()
}

/// What a failed rollout did: which consumers failed (from the decision,
/// else the stored record) and whether it rolled back or only stopped.
fn rolled_back_message(input: &Input<'_>, failed: &[String], phase: &str) -> String {
    let record = input.rolled_back.as_ref();
    let named = if failed.is_empty() {
        record
            .map(|r| r.failed_consumers.join(", "))
            .unwrap_or_default()
    } else {
        failed.join(", ")
    };
    let what = match record.and_then(|r| r.to_revision.as_deref()) {
        Some(to) => format!("rolled back to revision {to}"),
        None if phase == "Halted" => {
            "stopped; no rollback (none automatic, or no revision that fully succeeded)".to_string()
        }
        None => "stopped".into(),
    };
    format!(
        "revision {} failed on {named} (more than maxFailures {}, or a mandatory group): {what}; change the template to start a new rollout",
        input.update, input.decision.max_failures
    )
}

/// Conditions for an error before any decision (Maestro unreachable, a
/// template that makes no MaestroApply): Stalled when only a spec change
/// helps.
pub fn error_conditions(
    prev: Option<&MaestroApplySetStatus>,
    generation: Option<i64>,
    reason: &str,
    message: &str,
    stalled: bool,
    now: &Time,
) -> Vec<Condition> {
    let (reconciling, stalled) = if stalled {
        ("False", "True")
    } else {
        ("True", "False")
    };
    let mut out: Vec<Condition> = [
        (CONDITION_READY, "False"),
        (CONDITION_RECONCILING, reconciling),
        (CONDITION_STALLED, stalled),
    ]
    .into_iter()
    .map(|(type_, status)| Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: truncate(message),
        observed_generation: generation,
        last_transition_time: now.clone(),
    })
    .collect();
    for c in &mut out {
        keep_transition_time(prev, c);
    }
    // Progressing and RolledBack keep what they said.
    if let Some(prev) = prev {
        for type_ in [CONDITION_PROGRESSING, CONDITION_ROLLED_BACK] {
            if let Some(c) = prev.condition(type_) {
                out.push(c.clone());
            }
        }
    }
    out
}

/// A set's share of the set gauges: its phase (Pending before its first
/// status) and its consumers as Pending (not on the update revision),
/// Progressing (on it, not succeeded nor failed yet), Succeeded and
/// Failed, which add up to the selected consumers.
pub fn metrics_sample(status: Option<&MaestroApplySetStatus>) -> SetSample {
    let Some(s) = status else {
        return SetSample {
            phase: "Pending".into(),
            consumers: [0; 4],
        };
    };
    SetSample {
        phase: s.phase.clone().unwrap_or_else(|| "Pending".into()),
        consumers: [
            (s.total - s.updated).max(0),
            s.progressing.max(0),
            s.available.max(0),
            s.failed.max(0),
        ]
        .map(i64::from),
    }
}

fn keep_transition_time(prev: Option<&MaestroApplySetStatus>, c: &mut Condition) {
    if let Some(old) = prev.and_then(|p| p.condition(&c.type_))
        && old.status == c.status
    {
        c.last_transition_time = old.last_transition_time.clone();
    }
}

/// Condition messages are limited to 32 KiB; rows and conditions stay far
/// below so status stays small.
fn truncate(text: &str) -> String {
    const MAX: usize = 2000;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests;
