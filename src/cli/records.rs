//! What results files and errors record about works and consumers: plain
//! data, filled in by the operations above.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde::Serialize;
use serde_json::Value;

/// The last known state of a work, for results files and timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub health: String,
    pub bundle_id: String,
    pub version: i64,
    pub observed_version: i64,
    pub resources: Vec<ResourceResult>,
}

/// One manifest of a work and what the agent reported about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    pub ordinal: usize,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    /// Pending, Applied, Available, Degraded or Failed.
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionResult>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub feedback: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionResult {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(rename = "lastTransitionTime")]
    pub last_transition_time: DateTime<Utc>,
}

impl From<&Condition> for ConditionResult {
    fn from(c: &Condition) -> Self {
        ConditionResult {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_transition_time: chrono_time(&c.last_transition_time),
        }
    }
}

/// A Kubernetes time as a chrono time (the epoch if out of range).
pub fn chrono_time(t: &Time) -> DateTime<Utc> {
    let nanos = u32::try_from(t.0.subsec_nanosecond()).unwrap_or(0);
    DateTime::from_timestamp(t.0.as_second(), nanos).unwrap_or(DateTime::UNIX_EPOCH)
}

/// One selected consumer in a results file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerState {
    pub consumer: String,
    /// The work's health there (the one-word health `list` shows), or NotFound.
    pub status: String,
    /// Whether the awaited condition holds there (`wait` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition_met: Option<bool>,
    /// What is wrong there, when something is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_version: Option<i64>,
}

/// Status recorded for a consumer that lacks the work.
pub const STATUS_NOT_FOUND: &str = "NotFound";

/// The quorum a `wait` was held to, for the results file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuorumSummary {
    /// As given: a count or a percentage.
    pub quorum: String,
    /// How many consumers that is.
    pub required: usize,
    pub selected: usize,
    /// How many met the condition when last looked at.
    pub met: usize,
}
