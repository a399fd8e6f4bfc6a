//! A ManifestWork as Maestro holds it: the domain's one view of a stored
//! work, whichever way it was read.
//!
//! REST reads (a bundle row) and the status stream (an agent's report)
//! both produce these types; their wire forms stay in [`super::rest`] and
//! [`super::codec`]. Everything a writer or a status mirror decides on is
//! here, typed: the version Maestro counts updates with, whether a
//! deletion is pending, the labels and annotations the source sent, and
//! the agent's last report. The published work itself is optional, since
//! its manifests are most of a bundle's size and the operator's status
//! cache needs only their count.

use std::cmp::Ordering;
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::codec::StatusEvent;
use crate::manifestwork::{CONDITION_APPLIED, ManifestCondition, ManifestWork, find_condition};
use crate::names::{ConsumerName, ResourceId};
pub use strings::StringMap;

/// How much of a stored work a read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Everything but the published work: what ownership, version and
    /// status decisions read.
    Summary,
    /// With the published work, which must then read as a ManifestWork.
    Work,
}

/// A stored work.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldWork {
    /// For works this project writes, [`ResourceId::for_work`]; other
    /// clients may choose a random one.
    pub id: ResourceId,
    /// The consumer (cluster) the work is delivered to.
    pub consumer: String,
    /// The ManifestWork name the source gave; `None` when the stored
    /// metadata has none.
    pub name: Option<String>,
    /// Starts at 1 and grows with every accepted update; an update must
    /// name the version it replaces.
    pub version: i64,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Set while a deletion waits for the agent's confirmation.
    pub deleting_since: Option<DateTime<Utc>>,
    pub labels: StringMap,
    pub annotations: StringMap,
    pub manifest_count: usize,
    /// Absent until the agent has reported.
    pub report: Option<AgentReport>,
    /// The work as published and reported (metadata, manifests, options,
    /// status), when the reader asked for it.
    pub work: Option<Box<ManifestWork>>,
}

impl HeldWork {
    /// Whether a deletion has been requested and not yet confirmed.
    pub fn is_deleting(&self) -> bool {
        self.deleting_since.is_some()
    }

    /// The bundle version the agent last reported on; 0 before any report.
    pub fn observed_version(&self) -> i64 {
        self.report.as_ref().map_or(0, |r| r.observed_version)
    }

    /// This work without the published work, for holders that keep many.
    pub fn without_work(mut self) -> HeldWork {
        self.work = None;
        self
    }

    /// This work with the agent's newer `report`. A report of a version
    /// not seen yet (another client updated the work) raises the version
    /// to it: the stored work is at least that new.
    pub fn with_report(&self, report: AgentReport) -> HeldWork {
        let mut held = self.clone();
        held.version = held.version.max(report.observed_version);
        held.report = Some(report);
        held
    }
}

/// An agent's report as the status stream delivers it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedReport {
    pub id: ResourceId,
    /// The consumer the report came from: the event's cluster name, or the
    /// work's namespace when Maestro left that attribute out; `None` when
    /// neither is a consumer name.
    pub consumer: Option<ConsumerName>,
    /// The agent confirmed the work gone: the last report of this id.
    pub deleted: bool,
    pub report: AgentReport,
}

impl StreamedReport {
    pub fn of_event(event: &StatusEvent) -> StreamedReport {
        let consumer = event
            .cluster_name
            .as_deref()
            .or(event.work.metadata.namespace.as_deref())
            .and_then(|name| ConsumerName::new(name).ok());
        StreamedReport {
            id: event.resource_id,
            consumer,
            deleted: event.deleted,
            report: AgentReport::of_event(event),
        }
    }
}

/// What the agent last reported on a work.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentReport {
    /// The bundle version the agent had applied when it reported.
    pub observed_version: i64,
    /// The agent's ordering key, a snowflake ID (larger is newer); `None`
    /// when missing or not a number.
    pub sequence: Option<u128>,
    pub conditions: Vec<Condition>,
    /// Per-manifest conditions and feedback. An entry that does not read
    /// as a `ManifestCondition` is left out rather than failing the rest.
    pub manifests: Vec<ManifestCondition>,
}

impl AgentReport {
    /// The report a status event carries.
    fn of_event(event: &StatusEvent) -> AgentReport {
        let status = event.work.status.as_ref();
        AgentReport {
            observed_version: event.resource_version,
            sequence: event.sequence_id.as_deref().and_then(parse_sequence),
            conditions: status.map(|s| s.conditions.clone()).unwrap_or_default(),
            manifests: status
                .and_then(|s| s.resource_status.as_ref())
                .map(|r| r.manifests.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether this report speaks for bundle version `version`. The agent
    /// answers a new spec at once, before applying it, with a report that
    /// names the new version but carries the conditions it computed for
    /// the previous one; its Applied condition then still names the older
    /// generation. Conditions that name no generation (Available, on the
    /// pinned agent) would pass for the new spec's, so the whole report
    /// counts only once Applied names `version` (or names no generation at
    /// all, as older agents write it).
    pub fn covers(&self, version: i64) -> bool {
        self.observed_version == version
            && self
                .condition(CONDITION_APPLIED)
                .and_then(|c| c.observed_generation)
                .is_none_or(|generation| generation == version)
    }

    /// A hash of the work-level conditions' types, statuses and
    /// generations, in the agent's order: equal for two reports that
    /// differ only in feedback, messages or transition times.
    pub fn conditions_signature(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        for c in &self.conditions {
            (&c.type_, &c.status, c.observed_generation).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// The work-level condition of `type_`, if the agent reported one.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(&self.conditions, type_)
    }

    /// Orders two reports of one work: by the bundle version the agent had
    /// applied, then by sequence. `None` when they cannot be told apart
    /// (same version, a sequence missing).
    pub fn compare(&self, other: &AgentReport) -> Option<Ordering> {
        match self.observed_version.cmp(&other.observed_version) {
            Ordering::Equal => Some(self.sequence?.cmp(&other.sequence?)),
            order => Some(order),
        }
    }
}

/// A sequence ID as Maestro writes it: a decimal string.
pub(crate) fn parse_sequence(text: &str) -> Option<u128> {
    text.trim().parse().ok()
}

/// A work as the REST API would answer `value`, with the published work:
/// the unit tests' way to write one down.
#[cfg(test)]
pub(crate) fn from_json(value: serde_json::Value) -> Result<HeldWork, String> {
    let bundle: super::rest::ResourceBundle =
        serde_json::from_value(value).map_err(|e| e.to_string())?;
    bundle.into_held(Detail::Work).map_err(|e| e.to_string())
}

mod strings;

#[cfg(test)]
mod tests;
