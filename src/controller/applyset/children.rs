//! The children: names, labels, revisions, and each child's health as the
//! rollout reads it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::crd::{ApplyTemplate, MaestroApplySet};
use super::rollout::Health;
use crate::controller::crd::{
    CONDITION_READY, CONDITION_STALLED, MaestroApply, MaestroApplySpec, Phase,
};
use crate::manifestwork::CONDITION_APPLIED;
use crate::names::check_dns1123_label;

/// On each child: the set it belongs to (see [`set_label`]).
pub const SET_LABEL: &str = "maestro.hyperfleet.io/applyset";
/// On each child: its consumer.
pub const CONSUMER_LABEL: &str = "maestro.hyperfleet.io/consumer";
/// On each child and ControllerRevision: the template revision.
pub const REVISION_LABEL: &str = "maestro.hyperfleet.io/revision";
/// On each child: when the set last moved it to another revision, the
/// start of its progressDeadline.
pub const UPDATED_AT_ANNOTATION: &str = "maestro.hyperfleet.io/revision-updated-at";
/// On a child moved to a revision that changes its ManifestWork: the
/// bundle version Maestro held before. Until the agent reports on a later
/// version, the child's Ready speaks of the old ManifestWork (its status
/// may be recomputed for the new generation before Maestro has even
/// taken the update).
pub const BASE_VERSION_ANNOTATION: &str = "maestro.hyperfleet.io/revision-base-bundle-version";

/// Hex digits of a revision hash: short enough for names, and a
/// collision among one set's few revisions would need 2^20 of them.
const REVISION_LEN: usize = 10;
const HASH_SUFFIX_LEN: usize = 8;
const LABEL_MAX: usize = 63;

fn hex_digest(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Object keys sorted at every level, so the hash does not depend on how
/// a map happens to be ordered in memory.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The revision of a template: a digest of its canonical JSON.
pub fn revision_of(template: &ApplyTemplate) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let digest = hex_digest(canonical(&value).to_string().as_bytes());
    digest[..REVISION_LEN].to_string()
}

/// `<prefix>-<suffix>` if that is a DNS-1123 label, else as much of it as
/// fits (dots made dashes) and a digest of the whole, so the name stays
/// stable, unique and within the limit.
fn bounded_label(whole: &str) -> String {
    if check_dns1123_label(whole).is_ok() {
        return whole.to_string();
    }
    let suffix = &hex_digest(whole.as_bytes())[..HASH_SUFFIX_LEN];
    let head: String = whole
        .chars()
        .map(|c| if c == '.' { '-' } else { c })
        .take(LABEL_MAX - HASH_SUFFIX_LEN - 1)
        .collect();
    let head = head.trim_end_matches('-');
    format!("{head}-{suffix}")
}

/// The child's name, also its work name: the set's and the consumer's,
/// bounded to a DNS-1123 label.
pub fn child_name(set: &str, consumer: &str) -> String {
    bounded_label(&format!("{set}-{consumer}"))
}

/// The [`SET_LABEL`] value: the set's name, bounded to a label value.
pub fn set_label(set: &str) -> String {
    bounded_label(set)
}

/// The ControllerRevision holding `revision` of `set`.
pub fn revision_name(set: &str, revision: &str) -> String {
    format!("{}-{revision}", set_label(set))
}

pub fn owner_reference(set: &MaestroApplySet) -> Option<OwnerReference> {
    let mut owner = set.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

/// Whether `child` is controlled by `set`.
pub fn owned_by(meta: &ObjectMeta, set: &MaestroApplySet) -> bool {
    let Some(uid) = set.meta().uid.as_deref() else {
        return false;
    };
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The child for `consumer` on `revision` of `template`. Fails when the
/// template does not make a valid MaestroApply spec (named by field).
pub fn build_child(
    set: &MaestroApplySet,
    consumer: &str,
    revision: &str,
    template: &ApplyTemplate,
    now: Timestamp,
    previous: Option<&MaestroApply>,
) -> Result<MaestroApply, String> {
    let set_name = set.name_any();
    let mut spec = template.spec.clone();
    spec.insert("consumer".into(), Value::String(consumer.into()));
    let spec: MaestroApplySpec = serde_json::from_value(Value::Object(spec))
        .map_err(|e| format!("spec.template.spec (revision {revision}): {e}"))?;
    let mut labels = template.metadata.labels.clone();
    labels.insert(SET_LABEL.into(), set_label(&set_name));
    labels.insert(CONSUMER_LABEL.into(), consumer.into());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let mut annotations = template.metadata.annotations.clone();
    annotations.insert(UPDATED_AT_ANNOTATION.into(), now.to_string());
    if let Some(base) = previous.and_then(|p| base_version(p, &spec)) {
        annotations.insert(BASE_VERSION_ANNOTATION.into(), base.to_string());
    }
    let mut child = MaestroApply::new(&child_name(&set_name, consumer), spec);
    child.metadata.namespace = set.namespace();
    child.metadata.labels = Some(labels);
    child.metadata.annotations = Some(annotations);
    child.metadata.owner_references = owner_reference(set).map(|o| vec![o]);
    Ok(child)
}

/// The bundle version a move away from `previous` must see exceeded:
/// `None` when the ManifestWork does not change (nothing is published).
fn base_version(previous: &MaestroApply, next: &MaestroApplySpec) -> Option<i64> {
    let changes_work = previous.spec.manifest_work != next.manifest_work
        || previous.spec.work_metadata != next.work_metadata;
    if !changes_work {
        return None;
    }
    previous
        .status
        .as_ref()
        .and_then(|s| s.bundle_version)
        .or(Some(0))
}

/// The revision a child is on, from its label.
pub fn revision_of_child(child: &MaestroApply) -> Option<&str> {
    child.labels().get(REVISION_LABEL).map(String::as_str)
}

pub fn consumer_of_child(child: &MaestroApply) -> Option<&str> {
    child.labels().get(CONSUMER_LABEL).map(String::as_str)
}

/// When the child was last moved to its revision (its creation, failing
/// the annotation).
fn updated_at(child: &MaestroApply) -> Timestamp {
    child
        .annotations()
        .get(UPDATED_AT_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .or_else(|| child.meta().creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The child's health for the rollout. A status written for an older
/// generation says nothing about the current spec: it is progressing.
pub fn health(child: &MaestroApply) -> Health {
    let since = updated_at(child);
    let Some(status) = child.status.as_ref() else {
        return Health::Progressing { since };
    };
    if status.observed_generation != child.meta().generation {
        return Health::Progressing { since };
    }
    if let Some(stalled) = status
        .condition(CONDITION_STALLED)
        .filter(|c| c.status == "True")
    {
        return Health::Failed {
            reason: format!("{}: {}", stalled.reason, stalled.message),
        };
    }
    // A report on a bundle version from before the move is about the old
    // ManifestWork.
    let base: i64 = child
        .annotations()
        .get(BASE_VERSION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let applied = status.applied_version.unwrap_or(0);
    if applied <= base || status.bundle_version != Some(applied) {
        return Health::Progressing { since };
    }
    let ready = status.condition(CONDITION_READY);
    if status.phase == Some(Phase::Degraded) {
        return Health::Failed {
            reason: ready.map_or_else(|| "Degraded".into(), |c| c.message.clone()),
        };
    }
    // The pinned agent can report a work Available for a moment while a
    // manifest failed to apply: a rollout does not count that as Ready.
    let applied_not_true = status
        .condition(CONDITION_APPLIED)
        .is_some_and(|c| c.status != "True");
    match ready.filter(|c| c.status == "True" && !applied_not_true) {
        Some(c) => Health::Ready {
            since: c.last_transition_time.0.max(since),
        },
        None => Health::Progressing { since },
    }
}

/// Whether a consumer's labels satisfy a Kubernetes label selector.
/// Unknown operators match nothing (the API server refuses them).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().flatten().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// A selector as `kubectl get -l` writes it, for the status.
pub fn selector_string(selector: Option<&LabelSelector>, explicit: &[String], all: bool) -> String {
    let mut terms = Vec::new();
    if let Some(s) = selector {
        for (k, v) in s.match_labels.iter().flatten() {
            terms.push(format!("{k}={v}"));
        }
        for e in s.match_expressions.iter().flatten() {
            let values = e.values.as_deref().unwrap_or_default().join(",");
            terms.push(match e.operator.as_str() {
                "In" => format!("{} in ({values})", e.key),
                "NotIn" => format!("{} notin ({values})", e.key),
                "Exists" => e.key.clone(),
                "DoesNotExist" => format!("!{}", e.key),
                op => format!("{} {op} ({values})", e.key),
            });
        }
    }
    let mut text = terms.join(",");
    if all && text.is_empty() {
        text = "(all consumers)".into();
    }
    if !explicit.is_empty() {
        if !text.is_empty() {
            text.push_str(" + ");
        }
        text.push_str(&explicit.join(","));
    }
    text
}

#[cfg(test)]
mod tests;
