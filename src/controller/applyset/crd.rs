//! The `MaestroApplySet` custom resource: one template delivered to every
//! selected Maestro consumer through one child `MaestroApply` each, rolled
//! out by a strategy and rolled back when too many consumers fail.
//!
//! As for `MaestroApply`, the schema refuses what can never work (a
//! selector that silently matches every consumer, more than 100% failures,
//! a template naming its own consumer) so `kubectl apply` fails at once.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::controller::crd::{
    DURATION_PATTERN, LABEL_PATTERN, MaestroApplySpec, MetadataTemplate, generated_crd_yaml,
    parse_duration_at_least,
};

pub const KIND: &str = "MaestroApplySet";

/// Delivers one MaestroApply template to every Maestro consumer the
/// selector (and the explicit list) picks, one child MaestroApply per
/// consumer, rolled out by `rolloutStrategy` and rolled back by itself
/// when more than `maxFailures` consumers fail.
// The printer columns repeat `type_` and `priority`, one per column:
// clippy takes them for duplicated attribute arguments.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "maestro.hyperfleet.io",
    version = "v1alpha1",
    kind = "MaestroApplySet",
    plural = "maestroapplysets",
    shortname = "mapplyset",
    category = "maestro",
    namespaced,
    status = "MaestroApplySetStatus",
    derive = "PartialEq",
    doc = "MaestroApplySet delivers one MaestroApply template to every selected Maestro consumer, progressively, and rolls back by itself.",
    printcolumn(name = "Selector", type_ = "string", json_path = ".status.selector"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.readySummary"),
    printcolumn(name = "Updated", type_ = "integer", json_path = ".status.updated"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Revision",
        type_ = "string",
        json_path = ".status.updateRevision",
        priority = "1"
    ),
    printcolumn(
        name = "Message",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(
        "(has(self.allConsumers) && self.allConsumers) || (has(self.consumerSelector) ? ((has(self.consumerSelector.matchLabels) && size(self.consumerSelector.matchLabels) > 0) || (has(self.consumerSelector.matchExpressions) && size(self.consumerSelector.matchExpressions) > 0)) : (has(self.consumers) && size(self.consumers) > 0))"
    ).message(
        "spec.consumerSelector selects by no label and would match every consumer: set matchLabels or matchExpressions, list spec.consumers, or set spec.allConsumers: true to deliver to every consumer"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MaestroApplySetSpec {
    /// Selects Maestro consumers by their labels (as Maestro's consumers
    /// API reports them). A consumer that gains or loses a matching label
    /// joins or leaves the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_selector: Option<LabelSelector>,

    /// Consumers delivered to whatever their labels, on top of the
    /// selector's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "consumer_list_schema")]
    pub consumers: Vec<String>,

    /// Deliver to every registered consumer. Required to say so when the
    /// selector has no terms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_consumers: bool,

    /// What each child MaestroApply gets.
    pub template: ApplyTemplate,

    /// How a new revision of the template reaches the consumers.
    #[serde(default)]
    pub rollout_strategy: RolloutStrategy,

    /// What happens when a rollout fails.
    #[serde(default)]
    pub rollback: Rollback,

    /// Pauses the rollout: no child is created, updated or deleted; the
    /// children keep what they have.
    #[serde(default)]
    pub suspend: bool,
}

/// The children's metadata and spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApplyTemplate {
    /// Labels and annotations for each child MaestroApply.
    #[serde(default)]
    pub metadata: MetadataTemplate,

    /// A MaestroApply spec without `consumer` (the set sets it per child).
    #[schemars(schema_with = "template_spec_schema")]
    pub spec: Map<String, Value>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RolloutType {
    // Every consumer at once.
    #[default]
    All,
    // At most maxConcurrency consumers in flight, mandatory groups first.
    Progressive,
    // One group (consumers sharing the groupBy label value) at a time,
    // mandatory groups first.
    ProgressivePerGroup,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    #[serde(default, rename = "type")]
    pub type_: RolloutType,

    /// Consumers updating at once (a number, or a percentage of the
    /// selected consumers, or of the group for ProgressivePerGroup,
    /// rounded up). Default 25%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "max_concurrency_schema")]
    pub max_concurrency: Option<IntOrString>,

    /// Failed consumers tolerated before the rollout stops and rolls back
    /// (a number, or a percentage of the selected consumers, rounded
    /// down). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "max_failures_schema")]
    pub max_failures: Option<IntOrString>,

    /// How long a consumer must stay Ready before it counts as succeeded.
    #[serde(default = "default_min_success_time")]
    #[schemars(schema_with = "duration_schema")]
    pub min_success_time: String,

    /// How long a consumer may take to become Ready after its update;
    /// past it, it counts as failed. Unset: no deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "duration_schema")]
    pub progress_deadline: Option<String>,

    /// A consumer label key whose values define the groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 317))]
    pub group_by: Option<String>,

    /// Values of the groupBy label whose consumers go first, in this
    /// order; every consumer in them must succeed (no failure tolerated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub mandatory_groups: Vec<String>,
}

impl Default for RolloutStrategy {
    fn default() -> Self {
        RolloutStrategy {
            type_: RolloutType::All,
            max_concurrency: None,
            max_failures: None,
            min_success_time: default_min_success_time(),
            progress_deadline: None,
            group_by: None,
            mandatory_groups: Vec::new(),
        }
    }
}

fn default_min_success_time() -> String {
    "0s".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Roll the consumers a failed rollout reached back to the last
    /// revision that fully succeeded. Without it the rollout only stops.
    #[serde(default = "default_true")]
    pub automatic: bool,

    /// Old revisions kept for rollback (ControllerRevisions).
    #[serde(default = "default_history")]
    #[schemars(range(min = 1, max = 100))]
    pub revision_history_limit: u32,
}

impl Default for Rollback {
    fn default() -> Self {
        Rollback {
            automatic: true,
            revision_history_limit: default_history(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_history() -> u32 {
    10
}

/// What the set last observed and decided.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// Defaulted so that kstatus (Flux) reads a set no operator has reconciled
// as InProgress (observedGeneration behind generation), not Current.
#[schemars(extend("default" = {"observedGeneration": 0}))]
pub struct MaestroApplySetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Ready, Reconciling, Stalled (kstatus), Progressing and RolledBack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// A one-word summary for humans: Progressing, Ready, RolledBack,
    /// Halted, Suspended or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,

    /// The consumer selection, as a selector string (and the explicit
    /// consumers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The last revision every selected consumer succeeded on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,

    /// The revision of the current template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,

    /// Selected consumers.
    #[serde(default)]
    pub total: i32,
    /// Children on the update revision.
    #[serde(default)]
    pub updated: i32,
    /// Children Ready (any revision).
    #[serde(default)]
    pub ready: i32,
    /// Children on the update revision Ready for minSuccessTime.
    #[serde(default)]
    pub available: i32,
    /// Children on the update revision that failed.
    #[serde(default)]
    pub failed: i32,
    /// Children on the update revision not yet succeeded nor failed.
    #[serde(default)]
    pub progressing: i32,
    /// `ready/total`, for the printer column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_summary: Option<String>,

    /// The group being rolled out (ProgressivePerGroup, or a mandatory
    /// group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_group: Option<String>,

    /// The revision a failed rollout stopped on and the consumers that
    /// failed it; a template change starts a new rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<RolledBack>,

    /// One row per consumer, up to a limit (see consumersOmitted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerRow>,

    /// Consumers left out of `consumers` (the counts above include them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consumers_omitted: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolledBack {
    /// The revision that failed.
    pub revision: String,
    /// The revision the reached consumers went back to, when automatic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_revision: Option<String>,
    /// The consumers that failed it.
    #[serde(default)]
    pub failed_consumers: Vec<String>,
    pub time: Option<Time>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerRow {
    pub name: String,
    /// The child MaestroApply.
    pub child: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Pending, Progressing, Ready, Succeeded or Failed (on its revision).
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl MaestroApplySetStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// The strategy's durations, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyTimes {
    pub min_success: Duration,
    pub progress_deadline: Option<Duration>,
}

impl RolloutStrategy {
    /// Parses the durations. The API server checked their syntax; an
    /// error here means an object stored before the schema was.
    pub fn times(&self) -> Result<StrategyTimes, String> {
        Ok(StrategyTimes {
            min_success: parse_duration("minSuccessTime", &self.min_success_time)?,
            progress_deadline: self
                .progress_deadline
                .as_deref()
                .map(|v| parse_duration("progressDeadline", v))
                .transpose()?,
        })
    }
}

fn parse_duration(field: &str, value: &str) -> Result<Duration, String> {
    parse_duration_at_least(value, Duration::ZERO)
        .map_err(|e| format!("spec.rolloutStrategy.{field} {e}"))
}

/// The CRD as YAML, as `crdgen maestroapplyset` prints it.
pub fn crd_yaml() -> Result<String, serde_norway::Error> {
    generated_crd_yaml::<MaestroApplySet>(
        "cargo run --bin crdgen maestroapplyset > crds/maestroapplyset.yaml",
    )
}

/// The pattern admits zero (`0s`): a soak time may be none.
fn duration_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 32,
        "pattern": DURATION_PATTERN,
    })
}

fn consumer_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 10000,
        "x-kubernetes-list-type": "set",
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": LABEL_PATTERN,
        },
    })
}

/// A non-negative integer or a percentage up to 100%. A regex, not a
/// number conversion, so a malformed value gets this message and no CEL
/// evaluation error.
fn max_failures_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "x-kubernetes-validations": [{
            "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
            "message": "maxFailures must be a non-negative integer or a percentage from 0% to 100%",
        }],
    })
}

fn max_concurrency_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "x-kubernetes-validations": [{
            "rule": "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
            "message": "maxConcurrency must be an integer of at least 1 or a percentage from 1% to 100%",
        }],
    })
}

/// MaestroApply's spec schema with `consumer` optional and refused by a
/// rule: kept in the schema so the API server reports it rather than
/// pruning it without a word.
fn template_spec_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = MaestroApplySpec::json_schema(generator);
    let root = schema.ensure_object();
    if let Some(required) = root.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|v| v != "consumer");
    }
    let rules = root
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let Some(rules) = rules.as_array_mut() {
        rules.push(json!({
            "rule": "!has(self.consumer)",
            "message": "spec.template.spec.consumer must not be set: the set chooses the consumer of each child",
        }));
    }
    schema
}

#[cfg(test)]
mod tests;
