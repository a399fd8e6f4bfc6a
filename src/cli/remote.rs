//! What Maestro holds for one ManifestWork, and what the CLI derives from
//! it: a one-word health, per-manifest summaries, condition checks; and
//! finding a work by name.
//!
//! Everything here reads the REST bundle rather than the gRPC status
//! events: the bundle carries the spec version and the version the agent
//! last observed, so a condition left over from an older spec is not taken
//! for the current one.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::controller::target::{Owner, bundle_owner};
use crate::maestro::HeldWork;
use crate::maestro::error::{Error, Result};
use crate::maestro::work_client::{Detail, WorkClient};
use crate::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_PROGRESSING, Manifest,
    ManifestCondition, ManifestWork,
};
use crate::names::{ConsumerName, WorkName};

use super::errors::CliError;
use super::records::{ConditionResult, ResourceResult, Snapshot};
use super::runtime::{Deadline, retry};

/// A work as Maestro stores it, with the published work.
#[derive(Debug, Clone)]
pub struct Remote {
    pub held: HeldWork,
    pub work: ManifestWork,
}

impl Remote {
    /// `held` must have been read with [`Detail::Work`].
    pub fn from_held(mut held: HeldWork) -> Result<Remote> {
        let Some(mut work) = held.work.take() else {
            return Err(Error::Protocol(format!(
                "work {} was read without its manifests",
                held.id
            )));
        };
        // A bundle another client stored without a name is known by its id.
        work.metadata
            .name
            .get_or_insert_with(|| held.id.to_string());
        Ok(Remote { held, work: *work })
    }

    pub fn name(&self) -> &str {
        self.work.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn version(&self) -> i64 {
        self.held.version
    }

    /// The bundle version the agent last reported on; 0 before any report.
    pub fn observed_version(&self) -> i64 {
        self.held.observed_version()
    }

    /// Whether the agent's status is about the current spec (see
    /// [`AgentReport::covers`](crate::maestro::AgentReport::covers)).
    pub fn status_is_current(&self) -> bool {
        self.held
            .report
            .as_ref()
            .is_some_and(|r| r.covers(self.version()))
    }

    pub fn conditions(&self) -> &[Condition] {
        self.work
            .status
            .as_ref()
            .map_or(&[][..], |s| s.conditions.as_slice())
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions().iter().find(|c| c.type_ == type_)
    }

    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }

    pub fn health(&self) -> WorkHealth {
        if self.held.is_deleting() {
            return WorkHealth::Deleting;
        }
        health_of_conditions(self.conditions())
    }

    /// Whether this bundle was created by another client (such as Maestro's
    /// own CLI) under an id that is not the one we derive from source,
    /// consumer and name: we can read and delete it, not update it.
    pub fn is_foreign(&self, client: &WorkClient, consumer: &ConsumerName) -> bool {
        let Ok(name) = WorkName::new(self.name()) else {
            return true;
        };
        self.held.id != client.resource_id(consumer, &name)
    }

    /// The MaestroApply whose operator publishes this work, from the owner
    /// labels and annotation the operator sets; `None` without them.
    pub fn managed_by(&self) -> Option<Owner> {
        bundle_owner(&self.held)
    }

    /// The status of the manifest at `ordinal`.
    pub fn manifest_status(&self, ordinal: usize) -> Option<&ManifestCondition> {
        let ordinal = i32::try_from(ordinal).ok()?;
        self.work.status.as_ref()?.manifest(ordinal)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            health: self.health().to_string(),
            bundle_id: self.held.id.to_string(),
            version: self.version(),
            observed_version: self.observed_version(),
            resources: resources(&self.work),
        }
    }
}

/// Finds a work by name: first under the id this client derives, then, for
/// bundles created by other clients (whose ids are random), by the name in
/// their metadata among the consumer's bundles of this source.
pub async fn find(
    client: &WorkClient,
    consumer: &ConsumerName,
    name: &WorkName,
) -> Result<Option<Remote>> {
    if let Some(held) = client.get_held(consumer, name, Detail::Work).await? {
        return Remote::from_held(held).map(Some);
    }
    // A row that cannot be read may be the one asked for: its error
    // answers when no readable row does.
    let mut unreadable = None;
    for row in client.list_held(Some(consumer), None).await? {
        match row {
            Ok(held) if held.name.as_deref() == Some(name.as_str()) => {
                return Remote::from_held(held).map(Some);
            }
            Ok(_) => {}
            Err(e) => unreadable = unreadable.or(Some(e)),
        }
    }
    unreadable.map_or(Ok(None), Err)
}

/// [`find`], with transient failures retried until the deadline.
pub async fn find_retrying(
    client: &WorkClient,
    deadline: &Deadline,
    consumer: &ConsumerName,
    name: &WorkName,
) -> std::result::Result<Option<Remote>, CliError> {
    retry(
        deadline,
        &format!("read manifestwork {name} on consumer {consumer}"),
        async || find(client, consumer, name).await,
    )
    .await
}

/// A one-word summary of a work, as `list` shows it, read from what the
/// agent reported. Not called a phase: the MaestroApply's `Phase` is the
/// operator's progress, where `Failed` is an error it retries; here
/// `Failed` is the agent's verdict that it could not apply the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkHealth {
    /// No status from the agent yet.
    Pending,
    Progressing,
    Applied,
    Available,
    Degraded,
    /// The agent reported `Applied=False`: it could not apply the work.
    Failed,
    Deleting,
}

impl std::fmt::Display for WorkHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkHealth::Pending => "Pending",
            WorkHealth::Progressing => "Progressing",
            WorkHealth::Applied => "Applied",
            WorkHealth::Available => "Available",
            WorkHealth::Degraded => "Degraded",
            WorkHealth::Failed => "Failed",
            WorkHealth::Deleting => "Deleting",
        })
    }
}

/// The health from work (or manifest) conditions, worst news first.
pub fn health_of_conditions(conditions: &[Condition]) -> WorkHealth {
    let status = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.as_str())
    };
    if status(CONDITION_DEGRADED) == Some("True") {
        WorkHealth::Degraded
    } else if status(CONDITION_APPLIED) == Some("False") {
        WorkHealth::Failed
    } else if status(CONDITION_AVAILABLE) == Some("True") {
        WorkHealth::Available
    } else if status(CONDITION_APPLIED) == Some("True") {
        WorkHealth::Applied
    } else if status(CONDITION_PROGRESSING) == Some("True") {
        WorkHealth::Progressing
    } else {
        WorkHealth::Pending
    }
}

/// One entry per manifest of the spec, joined with its status by ordinal.
pub fn resources(work: &ManifestWork) -> Vec<ResourceResult> {
    let status = work.status.as_ref();
    work.spec
        .workload
        .manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let reported = i32::try_from(i)
                .ok()
                .and_then(|o| status.and_then(|s| s.manifest(o)));
            resource_result(i, m, reported)
        })
        .collect()
}

fn resource_result(
    ordinal: usize,
    manifest: &Manifest,
    reported: Option<&ManifestCondition>,
) -> ResourceResult {
    let key = manifest.key();
    let (status, conditions, feedback) = match reported {
        None => (WorkHealth::Pending, vec![], BTreeMap::new()),
        Some(r) => (
            health_of_conditions(&r.conditions),
            r.conditions.iter().map(ConditionResult::from).collect(),
            r.status_feedback
                .values
                .iter()
                .filter_map(|v| v.field_value.to_json().map(|j| (v.name.clone(), j)))
                .collect(),
        ),
    };
    ResourceResult {
        ordinal,
        api_version: key.api_version,
        kind: key.kind,
        namespace: key.namespace,
        name: key.name,
        status: status.to_string(),
        conditions,
        feedback,
    }
}

/// Which manifest of a work `--manifest-name` means: `NAME`, `KIND/NAME`
/// or `KIND/NAMESPACE/NAME` (kind compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSelector {
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

impl ManifestSelector {
    pub fn parse(text: &str) -> std::result::Result<ManifestSelector, CliError> {
        let parts: Vec<&str> = text.split('/').collect();
        let bad = || {
            CliError::Usage(format!(
                "--manifest-name {text:?}: use NAME, KIND/NAME or KIND/NAMESPACE/NAME"
            ))
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let owned = |s: &str| Some(s.to_string());
        match parts.as_slice() {
            [name] => Ok(ManifestSelector {
                kind: None,
                namespace: None,
                name: name.to_string(),
            }),
            [kind, name] => Ok(ManifestSelector {
                kind: owned(kind),
                namespace: None,
                name: name.to_string(),
            }),
            [kind, namespace, name] => Ok(ManifestSelector {
                kind: owned(kind),
                namespace: owned(namespace),
                name: name.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    pub fn matches(&self, manifest: &Manifest) -> bool {
        manifest.name() == Some(self.name.as_str())
            && self
                .kind
                .as_deref()
                .is_none_or(|k| manifest.kind().is_some_and(|mk| mk.eq_ignore_ascii_case(k)))
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| manifest.namespace().unwrap_or_default() == ns)
    }

    /// The index of the one matching manifest: `Ok(None)` when none
    /// matches, an error when several do.
    pub fn find_in(&self, manifests: &[Manifest]) -> std::result::Result<Option<usize>, CliError> {
        let hits: Vec<usize> = manifests
            .iter()
            .enumerate()
            .filter(|(_, m)| self.matches(m))
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(CliError::Usage(format!(
                "--manifest-name {self} matches {} manifests ({}); qualify it as KIND/NAME or KIND/NAMESPACE/NAME",
                many.len(),
                many.iter()
                    .map(|i| describe_manifest(&manifests[*i]))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl std::fmt::Display for ManifestSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(kind) = &self.kind {
            write!(f, "{kind}/")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        f.write_str(&self.name)
    }
}

/// `Kind namespace/name`, for messages.
pub fn describe_manifest(m: &Manifest) -> String {
    let key = m.key();
    let kind = if key.kind.is_empty() {
        "(no kind)"
    } else {
        &key.kind
    };
    if key.namespace.is_empty() {
        format!("{kind} {}", key.name)
    } else {
        format!("{kind} {}/{}", key.namespace, key.name)
    }
}

/// A NotFound error for a missing work.
pub fn work_not_found(consumer: &ConsumerName, name: &WorkName) -> CliError {
    CliError::NotFound(format!(
        "manifestwork \"{name}\" not found on consumer \"{consumer}\""
    ))
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
