//! The `MaestroApply` custom resource (`maestro.hyperfleet.io/v1alpha1`):
//! one ManifestWork that the operator keeps published to one Maestro
//! consumer, with the agent's report mirrored into its status.
//!
//! The schema is the first line of defence: the API server rejects bad
//! objects itself (OpenAPI plus CEL rules), with messages naming the field,
//! so `kubectl apply` fails at once instead of the object sitting in a
//! failed state.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema, ResourceExt};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::manifestwork::{ManifestResourceMeta, ManifestWorkSpec, StatusFeedbackResult};

pub const GROUP: &str = "maestro.hyperfleet.io";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "MaestroApply";
pub const API_VERSION: &str = "maestro.hyperfleet.io/v1alpha1";

/// Set to any new value (a timestamp, by convention) to force an immediate
/// reconcile and status refresh; acknowledged in
/// `status.lastHandledReconcileAt`.
pub const RECONCILE_REQUESTED_AT_ANNOTATION: &str = "maestro.hyperfleet.io/reconcile-requested-at";

/// `"true"` lets this object take over a ManifestWork that Maestro holds
/// for another owner (admission requires verb `adopt` on the consumer).
pub const ADOPT_ANNOTATION: &str = "maestro.hyperfleet.io/adopt";

/// Go `time.ParseDuration` syntax, limited to the units that make sense
/// here. Kept in step with [`parse_duration`].
/// `[.]` rather than `\.`: the pattern sits in a CEL string literal,
/// where `\.` is not a valid escape.
pub(crate) const DURATION_PATTERN: &str = "^([0-9]+([.][0-9]+)?(ms|s|m|h))+$";

/// A DNS-1123 label, what the Go work client accepts as a work name and
/// Maestro as a consumer name.
pub(crate) const LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Declares one ManifestWork for one Maestro consumer. The operator
/// publishes it through Maestro, keeps it in line with this spec and
/// reports what the agent on the consumer's cluster says about it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "maestro.hyperfleet.io",
    version = "v1alpha1",
    kind = "MaestroApply",
    plural = "maestroapplies",
    shortname = "mapply",
    category = "maestro",
    namespaced,
    status = "MaestroApplyStatus",
    derive = "PartialEq",
    doc = "MaestroApply delivers one ManifestWork to one Maestro consumer (a remote cluster) and mirrors the agent's report in its status.",
    printcolumn(name = "Consumer", type_ = "string", json_path = ".spec.consumer"),
    printcolumn(name = "Work", type_ = "string", json_path = ".status.workName"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Version",
        type_ = "integer",
        json_path = ".status.bundleVersion",
        priority = "1"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = "1"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "has(self.spec.workName) || (size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))"
    ).message(
        "metadata.name is used as the work name, which must be a DNS-1123 label (at most 63 lower-case alphanumerics or '-'); set spec.workName"
    ),
)]
#[x_kube(
    validation = Rule::new("has(self.workName) == has(oldSelf.workName)")
        .message("spec.workName is immutable: it cannot be added or removed after creation")
)]
#[serde(rename_all = "camelCase")]
pub struct MaestroApplySpec {
    /// The Maestro consumer (target cluster) to deliver to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.consumer is immutable"))]
    #[schemars(length(min = 1, max = 63), regex(pattern = LABEL_PATTERN))]
    pub consumer: String,

    /// The ManifestWork name on the consumer; defaults to metadata.name.
    /// Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.workName is immutable"))]
    #[schemars(length(min = 1, max = 63), regex(pattern = LABEL_PATTERN))]
    pub work_name: Option<String>,

    /// Labels and annotations for the ManifestWork.
    #[serde(default, skip_serializing_if = "MetadataTemplate::is_empty")]
    pub work_metadata: MetadataTemplate,

    /// The ManifestWork spec: workload.manifests, deleteOption,
    /// manifestConfigs and executor.
    #[schemars(schema_with = "manifest_work_schema")]
    pub manifest_work: ManifestWorkSpec,

    /// The agent condition that makes this object Ready.
    #[serde(default)]
    pub wait_for: WaitFor,

    /// How often to read the status from Maestro until Ready.
    #[serde(default = "default_poll_interval")]
    #[schemars(schema_with = "duration_schema")]
    pub poll_interval: String,

    /// How often to resync once Ready: drift check and status refresh.
    #[serde(default = "default_interval")]
    #[schemars(schema_with = "duration_schema")]
    pub interval: String,

    /// How long to wait for `waitFor` after a publish before reporting
    /// Stalled (polling goes on: it may still succeed).
    #[serde(default = "default_timeout")]
    #[schemars(schema_with = "duration_schema")]
    pub timeout: String,

    /// Publish nothing while true; status is still reported.
    #[serde(default)]
    pub suspend: bool,

    /// What deleting this object does to the ManifestWork.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// With `deletionPolicy: Delete`, how long to wait for the agent to
    /// confirm the deletion before reporting it (Stalled,
    /// DeletionNotConfirmed); unset waits without end (and says so after
    /// five minutes). A cluster that is gone never confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub deletion_timeout: Option<String>,

    /// What to do once `deletionTimeout` has passed: `Wait` (keep the
    /// object, report it) or `Orphan` (remove the finalizer, leave the
    /// ManifestWork marked for deletion in Maestro).
    #[serde(default)]
    pub deletion_timeout_action: DeletionTimeoutAction,

    /// What the operator does when the ManifestWork it published was
    /// changed behind its back (its spec or labels rewritten by another
    /// client of the operator's source ID).
    #[serde(default)]
    pub drift_policy: DriftPolicy,
}

fn default_poll_interval() -> String {
    "10s".into()
}

fn default_interval() -> String {
    "30m".into()
}

fn default_timeout() -> String {
    "10m".into()
}

// The labels and annotations the operator puts on an object it creates:
// the ManifestWork of a MaestroApply, the child MaestroApply of a set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct MetadataTemplate {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl MetadataTemplate {
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WaitFor {
    // The agent applied every manifest.
    Applied,
    // The agent applied every manifest and each one exists.
    #[default]
    Available,
}

impl WaitFor {
    pub fn condition_type(self) -> &'static str {
        match self {
            WaitFor::Applied => crate::manifestwork::CONDITION_APPLIED,
            WaitFor::Available => crate::manifestwork::CONDITION_AVAILABLE,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionTimeoutAction {
    // Keep the object and report the unconfirmed deletion.
    #[default]
    Wait,
    // Remove the finalizer and leave the ManifestWork to Maestro.
    Orphan,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    // Delete the ManifestWork (and so its resources on the cluster) and
    // keep this object until the agent confirmed.
    #[default]
    Delete,
    // Leave the ManifestWork and its resources in place.
    Orphan,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DriftPolicy {
    // Publish the declared spec and labels again, with a DriftCorrected
    // event.
    #[default]
    Correct,
    // Publish nothing: report the drift (condition Drifted, Ready=False)
    // and leave the ManifestWork as it is.
    Report,
}

/// What the operator and the agent last reported.
///
/// The API server serves an object no operator has reconciled yet with
/// the schema's default, `{observedGeneration: 0}`, instead of no status:
/// kstatus (Flux's health logic) calls an object without status Current,
/// but one whose observedGeneration is behind its generation InProgress.
/// The operator treats that placeholder as no report (nothing it reads
/// is set).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct MaestroApplyStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling and Stalled (kstatus), and the ManifestWork's
    /// own Applied, Available, Progressing, Degraded and Deleting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// A one-word summary for humans; tools should read the conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The ManifestWork name in Maestro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_name: Option<String>,

    /// The Maestro resource bundle ID (also the ManifestWork name on the
    /// consumer's cluster).
    #[serde(
        default,
        rename = "resourceBundleID",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_bundle_id: Option<String>,

    /// The bundle version Maestro holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_version: Option<i64>,

    /// The bundle version the agent last applied and reported on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_version: Option<i64>,

    /// When the operator last published a create or update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_publish_time: Option<Time>,

    /// When the agent's report last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change_time: Option<Time>,

    /// Per-resource status as the agent reported it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<ManifestStatus>,

    /// The last `maestro.hyperfleet.io/reconcile-requested-at` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The digest of the ManifestWork this object last published (or found
    /// in place) under `resourceBundleID`: how the operator recognises its
    /// own bundle when another client stripped the owner labels, and tells
    /// drift from a spec change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_spec_hash: Option<String>,
}

impl MaestroApplyStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    pub fn is_ready(&self) -> bool {
        self.condition(CONDITION_READY)
            .is_some_and(|c| c.status == "True")
    }
}

pub const CONDITION_READY: &str = "Ready";
pub const CONDITION_RECONCILING: &str = "Reconciling";
pub const CONDITION_STALLED: &str = "Stalled";

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    // Not published yet, or waiting for the agent's first report.
    Pending,
    // Published; the agent has not reached `waitFor` yet.
    Progressing,
    // Ready with `waitFor: Applied`.
    Applied,
    // Ready with `waitFor: Available`.
    Available,
    // The agent reports the work degraded.
    Degraded,
    // `spec.suspend` is set.
    Suspended,
    // `timeout` passed, or an error that needs a change to fix.
    Stalled,
    // An error the operator retries (Maestro unreachable and the like).
    Failed,
    // Being deleted.
    Deleting,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Pending,
        Phase::Progressing,
        Phase::Applied,
        Phase::Available,
        Phase::Degraded,
        Phase::Suspended,
        Phase::Stalled,
        Phase::Failed,
        Phase::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Applied => "Applied",
            Phase::Available => "Available",
            Phase::Degraded => "Degraded",
            Phase::Suspended => "Suspended",
            Phase::Stalled => "Stalled",
            Phase::Failed => "Failed",
            Phase::Deleting => "Deleting",
        }
    }
}

/// One manifest's status, as the agent reported it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestStatus {
    #[serde(flatten)]
    pub resource: ManifestResourceMeta,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "StatusFeedbackResult::is_empty")]
    pub status_feedback: StatusFeedbackResult,
}

impl MaestroApply {
    /// The ManifestWork name: `spec.workName`, else `metadata.name`.
    pub fn work_name(&self) -> &str {
        self.spec
            .work_name
            .as_deref()
            .or(self.metadata.name.as_deref())
            .unwrap_or_default()
    }

    /// Whether the object asks to take over a work another owner holds.
    pub fn adopt_requested(&self) -> bool {
        self.annotations()
            .get(ADOPT_ANNOTATION)
            .is_some_and(|v| v == "true")
    }

    /// The digest this object last published under `resource_id`, as its
    /// status records it; `None` when it published nothing there (or
    /// lost the bundle to another owner since).
    pub fn published_hash_at(&self, resource_id: &crate::names::ResourceId) -> Option<&str> {
        let status = self.status.as_ref()?;
        if status.resource_bundle_id.as_deref() != Some(resource_id.to_string().as_str()) {
            return None;
        }
        status.published_spec_hash.as_deref()
    }

    /// The `reconcile-requested-at` annotation, when set.
    pub fn requested_at(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(RECONCILE_REQUESTED_AT_ANNOTATION)
            .map(String::as_str)
    }
}

/// The CRD as YAML, as `crdgen` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    generated_crd_yaml::<MaestroApply>("cargo run --bin crdgen > crds/maestroapply.yaml")
}

/// `K`'s CRD as YAML under a header naming the command that writes it.
pub(crate) fn generated_crd_yaml<K: kube::CustomResourceExt>(
    command: &str,
) -> Result<String, serde_norway::Error> {
    let body = serde_norway::to_string(&K::crd())?;
    Ok(format!("# Generated by `{command}`; do not edit.\n{body}"))
}

/// How deep a manifest may nest objects and lists (the manifest itself is
/// level 1). The operator decodes each object's spec on its own with
/// serde_json, whose recursion limit of 128 counts the four levels above a
/// manifest too; 100 leaves room and is far deeper than any real
/// Kubernetes object (a CRD's schema nests some 40 levels).
pub const MAX_MANIFEST_DEPTH: usize = 100;

/// The ValidatingAdmissionPolicy (and its binding) that refuses a
/// MaestroApply whose manifests nest deeper than [`MAX_MANIFEST_DEPTH`],
/// as YAML for `config/admission/limits.yaml`.
///
/// CEL has no recursion, so the rule walks the manifests level by level:
/// each variable holds the objects and lists ten levels below the previous
/// one, and the object is refused when anything is left below the bound.
/// The walk costs CEL time in proportion to the manifests' size; past the
/// API server's per-expression cost limit (objects of some 40,000 JSON
/// values) the policy fails open, and the operator still reads each object
/// on its own and reports only the one that is too deep.
pub fn limits_policy_yaml() -> Result<String, serde_norway::Error> {
    const NAME: &str = "maestroapply-limits.maestro.hyperfleet.io";
    const PER_VARIABLE: usize = 10;
    // The objects and lists one level below those in the list it follows.
    const STEP: &str =
        ".map(n, type(n) == map ? n.map(k, n[k]) : (type(n) == list ? n : [])).flatten()";
    let mut variables = vec![json!({
        "name": "level1",
        "expression": "object.spec.manifestWork.workload.manifests",
    })];
    let mut level = 1;
    while level <= MAX_MANIFEST_DEPTH {
        let steps = PER_VARIABLE.min(MAX_MANIFEST_DEPTH + 1 - level);
        variables.push(json!({
            "name": format!("level{}", level + steps),
            "expression": format!("variables.level{level}{}", STEP.repeat(steps)),
        }));
        level += steps;
    }
    let below = format!("variables.level{level}");
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": NAME},
        "spec": {
            "failurePolicy": "Ignore",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [GROUP],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["maestroapplies"],
            }]},
            "variables": variables,
            "validations": [{
                "expression": format!("size({below}.filter(n, type(n) == map || type(n) == list)) == 0"),
                "reason": "Invalid",
                "message": format!(
                    "spec.manifestWork.workload.manifests: a manifest nests objects or lists more than \
                     {MAX_MANIFEST_DEPTH} levels deep, which the operator cannot read; flatten it"
                ),
            }],
        },
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": NAME},
        "spec": {"policyName": NAME, "validationActions": ["Deny"]},
    });
    Ok(format!(
        "# Generated by `cargo run --bin crdgen -- limits > config/admission/limits.yaml`; do not edit.\n\
         # Refuses a MaestroApply whose manifests nest deeper than {MAX_MANIFEST_DEPTH} levels\n\
         # (src/controller/crd.rs, limits_policy_yaml).\n{}---\n{}",
        serde_norway::to_string(&policy)?,
        serde_norway::to_string(&binding)?
    ))
}

/// The spec's durations, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub poll: Duration,
    pub resync: Duration,
    pub timeout: Duration,
}

/// The operator's lower bounds on an object's intervals
/// (`--min-poll-interval`, `--min-interval`): on a shared operator one
/// tenant's spec must not set the pace of Maestro reads for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    pub poll: Duration,
    pub resync: Duration,
}

impl Default for Floors {
    fn default() -> Self {
        Floors {
            poll: Duration::from_secs(5),
            resync: Duration::from_secs(60),
        }
    }
}

impl Intervals {
    /// Raises the intervals below `floors` to them; says what was raised,
    /// one sentence per field.
    pub fn raise_to(&mut self, floors: Floors) -> Vec<String> {
        let mut raised = Vec::new();
        for (field, flag, value, floor) in [
            (
                "pollInterval",
                "--min-poll-interval",
                &mut self.poll,
                floors.poll,
            ),
            (
                "interval",
                "--min-interval",
                &mut self.resync,
                floors.resync,
            ),
        ] {
            if *value < floor {
                raised.push(format!(
                    "spec.{field} {} is below the operator's minimum ({flag}); using {}",
                    crate::durations::format(*value),
                    crate::durations::format(floor),
                ));
                *value = floor;
            }
        }
        raised
    }
}

impl MaestroApplySpec {
    /// `deletionTimeout`, parsed (`None` when unset).
    pub fn deletion_timeout(&self) -> Result<Option<Duration>, String> {
        self.deletion_timeout
            .as_deref()
            .map(|v| parse_duration("deletionTimeout", v))
            .transpose()
    }

    /// Parses the durations. The API server has checked their syntax; a
    /// failure here means an object stored before the schema was.
    pub fn intervals(&self) -> Result<Intervals, String> {
        Ok(Intervals {
            poll: parse_duration("pollInterval", &self.poll_interval)?,
            resync: parse_duration("interval", &self.interval)?,
            timeout: parse_duration("timeout", &self.timeout)?,
        })
    }
}

/// Parses `spec.<field>`, a Go duration (`10s`, `1m30s`, `1.5h`) as the
/// API server's pattern admits it, of at least a second.
pub fn parse_duration(field: &str, value: &str) -> Result<Duration, String> {
    parse_duration_at_least(value, Duration::from_secs(1)).map_err(|e| format!("spec.{field} {e}"))
}

/// Parses a Go duration that must not be negative nor below `min`. The
/// error starts with the quoted value, so callers put the field's name
/// before it.
pub fn parse_duration_at_least(value: &str, min: Duration) -> Result<Duration, String> {
    let parsed: kube::core::Duration = value
        .parse()
        .map_err(|e| format!("{value:?} is not a duration: {e}"))?;
    if parsed.is_negative() {
        return Err(format!("{value:?} must not be negative"));
    }
    let duration = Duration::from(parsed);
    if duration < min {
        return Err(format!(
            "{value:?} must be at least {}",
            crate::durations::format(min)
        ));
    }
    Ok(duration)
}

/// One CEL rule rather than a `pattern` plus a rule: with both, a malformed
/// value gets the pattern's error and a CEL conversion error on top.
fn duration_schema(_: &mut SchemaGenerator) -> Schema {
    let rule = format!("self.matches('{DURATION_PATTERN}') && duration(self) >= duration('1s')");
    json_schema!({
        "type": "string",
        "maxLength": 32,
        "x-kubernetes-validations": [{
            "rule": rule,
            "message": "must be a duration of at least 1s, such as 30s, 5m or 1h30m",
        }],
    })
}

/// The library's ManifestWork spec schema, tightened for this API: a
/// workload with at least one manifest, each naming itself. The embedded
/// resource schema already requires apiVersion and kind.
fn manifest_work_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = ManifestWorkSpec::json_schema(generator);
    let root = schema.ensure_object();
    add_required(root, "workload");
    if let Some(workload) = root
        .get_mut("properties")
        .and_then(|p| p.get_mut("workload"))
        .and_then(Value::as_object_mut)
    {
        add_required(workload, "manifests");
        if let Some(manifests) = workload
            .get_mut("properties")
            .and_then(|p| p.get_mut("manifests"))
            .and_then(Value::as_object_mut)
        {
            manifests.insert("minItems".into(), json!(1));
            // Bounds the CEL cost estimate of the per-item rule; Maestro's
            // 500 KiB bundle limit is hit long before this many manifests.
            manifests.insert("maxItems".into(), json!(1000));
            if let Some(items) = manifests.get_mut("items").and_then(Value::as_object_mut) {
                items.insert(
                    "x-kubernetes-validations".into(),
                    json!([{
                        "rule": "has(self.metadata) && has(self.metadata.name) && self.metadata.name != ''",
                        "message": "each manifest needs apiVersion, kind and metadata.name",
                    }]),
                );
            }
        }
    }
    schema
}

fn add_required(object: &mut serde_json::Map<String, Value>, field: &str) {
    let required = object.entry("required").or_insert_with(|| json!([]));
    if let Some(list) = required.as_array_mut()
        && !list.iter().any(|v| v == field)
    {
        list.push(json!(field));
    }
}

#[cfg(test)]
mod tests;
