//! The rollout decision, pure: given the selected consumers, their
//! children's revision and health, the strategy and the clock, which
//! children move to which revision now, and whether the rollout is done,
//! under way, or failed and rolling back.
//!
//! The rules (OCM's rolloutStrategy meanings where the names match):
//! - a consumer on the update revision *succeeds* once its child has been
//!   Ready for `minSuccessTime`, and *fails* when its child is Degraded or
//!   Stalled, or not Ready `progressDeadline` after its update;
//! - more failures than `maxFailures` (rounded down from a percentage of
//!   the selected consumers), or any failure in a mandatory group, stops
//!   the rollout: consumers not reached never get the revision, and with
//!   automatic rollback those reached go back to the current revision;
//! - `maxConcurrency` (rounded up, at least 1) bounds the consumers on the
//!   update revision that have neither succeeded nor failed;
//! - mandatory groups go first, one after the other, each until every
//!   member succeeded; then Progressive takes the rest by name and
//!   ProgressivePerGroup one group at a time (by value, consumers without
//!   the label last), a group finished when each member succeeded or
//!   failed;
//! - a consumer with no child yet gets the current revision while a
//!   rollout is under way (it is not reached yet), and takes its turn.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::crd::{RolloutType, StrategyTimes};

/// The default bound on consumers in flight for the progressive types.
const DEFAULT_MAX_CONCURRENCY_PERCENT: u32 = 25;

/// The group name shown for consumers without the groupBy label.
pub const UNGROUPED: &str = "(none)";

/// What the child's status says, read against its own generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Updated at `since`, not Ready yet (or not observed yet).
    Progressing { since: Timestamp },
    /// Ready since `since` (never before its last update).
    Ready { since: Timestamp },
    /// Degraded, Stalled or refused; `reason` for people.
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub revision: String,
    pub health: Health,
}

/// One selected consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub consumer: String,
    /// The groupBy label's value, when the strategy has groupBy.
    pub group: Option<String>,
    pub child: Option<Child>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub type_: RolloutType,
    pub max_concurrency: Option<IntOrString>,
    pub max_failures: Option<IntOrString>,
    pub times: StrategyTimes,
    pub mandatory_groups: Vec<String>,
    pub automatic_rollback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input<'a> {
    pub members: &'a [Member],
    pub strategy: &'a Strategy,
    /// The revision of the current template.
    pub update: &'a str,
    /// The last revision every consumer succeeded on.
    pub current: Option<&'a str>,
    /// The update revision already failed and was rolled back: stay put.
    pub halted: bool,
    pub suspended: bool,
    pub now: Timestamp,
}

/// Where a consumer stands against the update revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    /// No child, or a child on another revision.
    NotReached,
    /// On the update revision, neither succeeded nor failed yet.
    InFlight,
    /// On the update revision, Ready but not for minSuccessTime yet.
    Soaking,
    Succeeded,
    Failed,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::NotReached => "Pending",
            Standing::InFlight => "Progressing",
            Standing::Soaking => "Ready",
            Standing::Succeeded => "Succeeded",
            Standing::Failed => "Failed",
        }
    }

    fn in_flight(self) -> bool {
        matches!(self, Standing::InFlight | Standing::Soaking)
    }

    fn finished(self) -> bool {
        matches!(self, Standing::Succeeded | Standing::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every consumer is on the update revision and succeeded (or failed
    /// within maxFailures): it becomes the current revision.
    Complete,
    /// Moving on; `group` is the group being rolled out, if any.
    Progressing { group: Option<String> },
    /// Failures went past maxFailures (or hit a mandatory group) just now
    /// or earlier: the rollout stopped.
    RolledBack { failed: Vec<String> },
    /// Suspended: nothing moves.
    Suspended,
}

/// One write: put `consumer`'s child on `revision` (creating it if need
/// be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub consumer: String,
    pub revision: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u32,
    pub updated: u32,
    pub ready: u32,
    pub available: u32,
    pub failed: u32,
    pub progressing: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub moves: Vec<Move>,
    pub outcome: Outcome,
    pub counts: Counts,
    /// Each member's standing, in the members' order.
    pub standings: Vec<Standing>,
    /// The allowed failures, resolved.
    pub max_failures: u32,
    /// When to look again for a soak or deadline to pass (the soonest).
    pub recheck_in: Option<Duration>,
}

/// `value` against `total`: a number as is, a percentage rounded up or
/// down. A malformed value (the schema refuses them) counts as `fallback`.
pub fn resolve(value: Option<&IntOrString>, total: u32, round_up: bool, fallback: u32) -> u32 {
    match value {
        None => fallback,
        Some(IntOrString::Int(n)) => u32::try_from(*n).unwrap_or(fallback),
        Some(IntOrString::String(s)) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<u64>().ok()) else {
                return fallback;
            };
            let scaled = u64::from(total) * percent.min(100);
            let n = if round_up {
                scaled.div_ceil(100)
            } else {
                scaled / 100
            };
            u32::try_from(n).unwrap_or(total)
        }
    }
}

fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

/// The standing of `member` against `update`, and when it could change by
/// the clock alone.
fn standing(
    member: &Member,
    update: &str,
    times: StrategyTimes,
    now: Timestamp,
) -> (Standing, Option<Duration>) {
    let Some(child) = member.child.as_ref().filter(|c| c.revision == update) else {
        return (Standing::NotReached, None);
    };
    match &child.health {
        Health::Failed { .. } => (Standing::Failed, None),
        Health::Ready { since } => {
            let ready_for = elapsed(now, *since);
            if ready_for >= times.min_success {
                (Standing::Succeeded, None)
            } else {
                (Standing::Soaking, Some(times.min_success - ready_for))
            }
        }
        Health::Progressing { since } => match times.progress_deadline {
            Some(deadline) => {
                let waited = elapsed(now, *since);
                if waited > deadline {
                    (Standing::Failed, None)
                } else {
                    (
                        Standing::InFlight,
                        Some(deadline - waited + Duration::from_secs(1)),
                    )
                }
            }
            None => (Standing::InFlight, None),
        },
    }
}

pub fn decide(input: &Input<'_>) -> Decision {
    let total = u32::try_from(input.members.len()).unwrap_or(u32::MAX);
    let strategy = input.strategy;
    let mut standings = Vec::with_capacity(input.members.len());
    let mut recheck_in: Option<Duration> = None;
    for m in input.members {
        let (s, wait) = standing(m, input.update, strategy.times, input.now);
        standings.push(s);
        if let Some(wait) = wait {
            recheck_in = Some(recheck_in.map_or(wait, |r| r.min(wait)));
        }
    }
    let counts = count(input.members, &standings);
    let max_failures = resolve(strategy.max_failures.as_ref(), total, false, 0);
    let mandatory: BTreeSet<&str> = strategy
        .mandatory_groups
        .iter()
        .map(String::as_str)
        .collect();
    let failed: Vec<String> = failed_members(input.members, &standings);
    let mandatory_failed = input
        .members
        .iter()
        .zip(&standings)
        .any(|(m, s)| *s == Standing::Failed && in_groups(m, &mandatory));
    let mut decision = Decision {
        moves: Vec::new(),
        outcome: Outcome::Suspended,
        counts,
        standings,
        max_failures,
        recheck_in,
    };
    if input.halted || failed.len() > max_failures as usize || mandatory_failed {
        decision.outcome = Outcome::RolledBack { failed };
        if !input.suspended {
            decision.moves = rollback_moves(input);
        }
        return decision;
    }
    if input.suspended {
        return decision;
    }
    if decision.standings.iter().all(|s| s.finished()) {
        decision.outcome = Outcome::Complete;
        return decision;
    }
    let (group, moves) = forward_moves(input, &decision.standings);
    decision.moves = moves;
    decision.moves.extend(placeholders(input, &decision.moves));
    decision.outcome = Outcome::Progressing { group };
    decision
}

fn count(members: &[Member], standings: &[Standing]) -> Counts {
    let mut counts = Counts {
        total: u32::try_from(members.len()).unwrap_or(u32::MAX),
        ..Counts::default()
    };
    for (m, s) in members.iter().zip(standings) {
        if matches!(
            m.child.as_ref().map(|c| &c.health),
            Some(Health::Ready { .. })
        ) {
            counts.ready += 1;
        }
        match s {
            Standing::NotReached => continue,
            Standing::InFlight | Standing::Soaking => counts.progressing += 1,
            Standing::Succeeded => counts.available += 1,
            Standing::Failed => counts.failed += 1,
        }
        counts.updated += 1;
    }
    counts
}

fn failed_members(members: &[Member], standings: &[Standing]) -> Vec<String> {
    members
        .iter()
        .zip(standings)
        .filter(|(_, s)| **s == Standing::Failed)
        .map(|(m, _)| m.consumer.clone())
        .collect()
}

fn in_groups(member: &Member, groups: &BTreeSet<&str>) -> bool {
    member.group.as_deref().is_some_and(|g| groups.contains(g))
}

/// After a failed rollout: with automatic rollback and a revision to go
/// back to, every child on the failed revision goes back, and consumers
/// without a child get that revision; otherwise nothing moves.
fn rollback_moves(input: &Input<'_>) -> Vec<Move> {
    let Some(current) = input.current.filter(|c| *c != input.update) else {
        return Vec::new();
    };
    input
        .members
        .iter()
        .filter(|m| match &m.child {
            None => true,
            Some(c) => c.revision == input.update && input.strategy.automatic_rollback,
        })
        .map(|m| Move {
            consumer: m.consumer.clone(),
            revision: current.to_string(),
        })
        .collect()
}

/// Consumers without a child that the rollout does not reach yet get the
/// current revision now, as the others not reached keep it.
fn placeholders(input: &Input<'_>, moves: &[Move]) -> Vec<Move> {
    let Some(current) = input.current.filter(|c| *c != input.update) else {
        return Vec::new();
    };
    input
        .members
        .iter()
        .filter(|m| m.child.is_none() && !moves.iter().any(|mv| mv.consumer == m.consumer))
        .map(|m| Move {
            consumer: m.consumer.clone(),
            revision: current.to_string(),
        })
        .collect()
}

/// The next consumers to put on the update revision, and the group being
/// rolled out.
fn forward_moves(input: &Input<'_>, standings: &[Standing]) -> (Option<String>, Vec<Move>) {
    let strategy = input.strategy;
    let total = u32::try_from(input.members.len()).unwrap_or(u32::MAX);
    let indices: Vec<usize> = (0..input.members.len()).collect();
    if strategy.type_ == RolloutType::All {
        return (None, to_update(input, standings, &indices, usize::MAX));
    }
    let in_flight = standings.iter().filter(|s| s.in_flight()).count();
    // Mandatory groups first, each until all its members succeeded.
    for group in &strategy.mandatory_groups {
        let members = members_of(input, |g| g == Some(group.as_str()));
        if members.is_empty() || members.iter().all(|&i| standings[i] == Standing::Succeeded) {
            continue;
        }
        let limit = limit(strategy, members.len(), total);
        let slots = limit.saturating_sub(in_flight);
        return (
            Some(group.clone()),
            to_update(input, standings, &members, slots),
        );
    }
    let mandatory: BTreeSet<&str> = strategy
        .mandatory_groups
        .iter()
        .map(String::as_str)
        .collect();
    let rest = members_of(input, |g| g.is_none_or(|g| !mandatory.contains(g)));
    if strategy.type_ == RolloutType::Progressive {
        let slots = limit(strategy, total as usize, total).saturating_sub(in_flight);
        return (None, to_update(input, standings, &rest, slots));
    }
    for (name, members) in groups(input, &rest) {
        if members.iter().all(|&i| standings[i].finished()) {
            continue;
        }
        let limit = match strategy.max_concurrency {
            None => members.len(),
            Some(_) => limit(strategy, members.len(), total),
        };
        let slots = limit.saturating_sub(in_flight);
        return (Some(name), to_update(input, standings, &members, slots));
    }
    (None, Vec::new())
}

/// The bound on consumers in flight; percentages are of the group for
/// ProgressivePerGroup and mandatory groups, else of all consumers.
fn limit(strategy: &Strategy, group_size: usize, total: u32) -> usize {
    let base = match strategy.type_ {
        RolloutType::Progressive => total,
        _ => u32::try_from(group_size).unwrap_or(u32::MAX),
    };
    let fallback = (u64::from(base) * u64::from(DEFAULT_MAX_CONCURRENCY_PERCENT)).div_ceil(100);
    let fallback = u32::try_from(fallback).unwrap_or(base);
    let n = resolve(strategy.max_concurrency.as_ref(), base, true, fallback);
    n.max(1) as usize
}

fn members_of(input: &Input<'_>, keep: impl Fn(Option<&str>) -> bool) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..input.members.len())
        .filter(|&i| keep(input.members[i].group.as_deref()))
        .collect();
    indices.sort_by(|&a, &b| input.members[a].consumer.cmp(&input.members[b].consumer));
    indices
}

/// The groups among `indices`, by value, the consumers without the label
/// last.
fn groups(input: &Input<'_>, indices: &[usize]) -> Vec<(String, Vec<usize>)> {
    let mut named: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    let mut ungrouped = Vec::new();
    for &i in indices {
        match input.members[i].group.as_deref() {
            Some(g) => named.entry(g).or_default().push(i),
            None => ungrouped.push(i),
        }
    }
    let mut out: Vec<(String, Vec<usize>)> =
        named.into_iter().map(|(g, m)| (g.to_string(), m)).collect();
    if !ungrouped.is_empty() {
        out.push((UNGROUPED.to_string(), ungrouped));
    }
    out
}

fn to_update(
    input: &Input<'_>,
    standings: &[Standing],
    indices: &[usize],
    slots: usize,
) -> Vec<Move> {
    indices
        .iter()
        .filter(|&&i| standings[i] == Standing::NotReached)
        .take(slots)
        .map(|&i| Move {
            consumer: input.members[i].consumer.clone(),
            revision: input.update.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
