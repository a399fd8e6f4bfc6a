//! Rust types for `work.open-cluster-management.io/v1` ManifestWork.
//!
//! JSON keys follow the Go types in open-cluster-management.io/api
//! (`work/v1/types.go`). Where Go's field is a plain string that the CRD
//! restricts to an enum, the Rust enum keeps any other value it meets as
//! `Unknown(text)`: a newer agent or server must not make a whole work
//! undecodable, and the value survives a round trip. [`validate_work`]
//! rejects such values in works we send.
//!
//! Optional fields are left out when absent, never written as `""` or
//! `null`: the API server fills in defaults only for absent fields, and the
//! CRD refuses `""` for a defaulted enum.
//!
//! [`validate_work`]: super::validate_work

use std::borrow::Cow;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub const MANIFESTWORK_GROUP: &str = "work.open-cluster-management.io";
pub const MANIFESTWORK_VERSION: &str = "v1";
pub const MANIFESTWORK_API_VERSION: &str = "work.open-cluster-management.io/v1";
pub const MANIFESTWORK_KIND: &str = "ManifestWork";

/// Condition types the agent and Maestro report on a work and on its
/// manifests. Condition rules may add any other type.
pub const CONDITION_APPLIED: &str = "Applied";
pub const CONDITION_AVAILABLE: &str = "Available";
pub const CONDITION_PROGRESSING: &str = "Progressing";
pub const CONDITION_DEGRADED: &str = "Degraded";
pub const CONDITION_COMPLETE: &str = "Complete";
/// Set by the agent while a work is being removed from the cluster.
pub const CONDITION_DELETING: &str = "Deleting";
/// Sent by the Maestro agent once a deleted work is gone. Maestro then drops
/// the resource, so only status-stream subscribers ever see it.
pub const CONDITION_DELETED: &str = "Deleted";
/// Per manifest: whether the status feedback rules could be evaluated.
pub const CONDITION_STATUS_FEEDBACK_SYNCED: &str = "StatusFeedbackSynced";

/// The field manager the agent uses for server-side apply when none is set;
/// any custom one must start with it.
pub const DEFAULT_FIELD_MANAGER: &str = "work-agent";
/// The finalizer the agent puts on a work until its resources are cleaned up.
pub const MANIFEST_WORK_FINALIZER: &str =
    "cluster.open-cluster-management.io/manifest-work-cleanup";

/// A string-valued enum of the ManifestWork API.
pub trait StringEnum {
    /// Every value the CRD accepts.
    const VALUES: &'static [&'static str];
    fn as_str(&self) -> &str;
    /// False for a value this crate does not know (kept as `Unknown`).
    fn is_known(&self) -> bool;
}

macro_rules! string_enum {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value this crate does not know, kept verbatim.
            Unknown(String),
        }

        impl StringEnum for $name {
            const VALUES: &'static [&'static str] = &[$($value),+];

            fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }

            fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match $name::from(value.as_str()) {
                    $name::Unknown(_) => $name::Unknown(value),
                    known => known,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }

        // A plain string enum, inlined: Kubernetes structural schemas
        // refuse the `$ref`/`oneOf` forms schemars would otherwise emit.
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "enum": [$($value),+] })
            }
        }
    };
}

string_enum!(
    /// What happens to applied resources when the work is deleted.
    #[derive(Default)]
    DeletePropagationPolicy {
        /// Delete every resource (the default).
        #[default]
        Foreground = "Foreground",
        /// Leave every resource in place.
        Orphan = "Orphan",
        /// Leave only the resources matched by an orphaning rule.
        SelectivelyOrphan = "SelectivelyOrphan",
    }
);

string_enum!(
    FeedbackType {
        /// The agent's built-in values for Deployments, DaemonSets, Jobs and Pods.
        WellKnownStatus = "WellKnownStatus",
        /// The values named by `jsonPaths`.
        JsonPaths = "JSONPaths",
    }
);

string_enum!(
    #[derive(Default)]
    UpdateStrategyType {
        #[default]
        Update = "Update",
        CreateOnly = "CreateOnly",
        ServerSideApply = "ServerSideApply",
        ReadOnly = "ReadOnly",
    }
);

string_enum!(
    #[derive(Default)]
    IgnoreFieldsCondition {
        #[default]
        OnSpokePresent = "OnSpokePresent",
        OnSpokeChange = "OnSpokeChange",
    }
);

string_enum!(
    ConditionRuleType {
        WellKnownConditions = "WellKnownConditions",
        Cel = "CEL",
    }
);

string_enum!(
    FeedbackScrapeType {
        Poll = "Poll",
        Watch = "Watch",
    }
);

string_enum!(
    ExecutorSubjectType {
        ServiceAccount = "ServiceAccount",
    }
);

string_enum!(
    /// Which member of a [`FieldValue`] carries the value.
    ValueType {
        Integer = "Integer",
        String = "String",
        Boolean = "Boolean",
        JsonRaw = "JsonRaw",
    }
);

/// Go writes `null` for a nil slice whose tag lacks `omitempty`.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// The desired state of a ManifestWork: the manifests to apply on the
/// consumer's cluster and how to apply, observe and delete them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "work.open-cluster-management.io",
    version = "v1",
    kind = "ManifestWork",
    namespaced,
    status = "ManifestWorkStatus",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct ManifestWorkSpec {
    #[serde(default, skip_serializing_if = "ManifestsTemplate::is_empty")]
    pub workload: ManifestsTemplate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<DeleteOption>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manifest_configs: Vec<ManifestConfigOption>,
    /// The identity the agent applies the manifests as. Without it the
    /// agent uses its own service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ManifestWorkExecutor>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ManifestsTemplate {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manifests: Vec<Manifest>,
}

impl ManifestsTemplate {
    pub fn is_empty(&self) -> bool {
        self.manifests.is_empty()
    }
}

/// One complete Kubernetes object, kept as raw JSON.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct Manifest(pub Map<String, Value>);

/// Why a JSON value cannot be a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("a manifest must be a JSON object, got {0}")]
    NotAnObject(&'static str),
}

/// What identifies a manifest within a work: two manifests with the same
/// key are refused. Absent parts are empty strings, as the Go webhook
/// compares them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ManifestKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ManifestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.api_version, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)
    }
}

impl Manifest {
    pub fn from_value(value: Value) -> Result<Manifest, ManifestError> {
        match value {
            Value::Object(map) => Ok(Manifest(map)),
            Value::Null => Err(ManifestError::NotAnObject("null")),
            Value::Bool(_) => Err(ManifestError::NotAnObject("a boolean")),
            Value::Number(_) => Err(ManifestError::NotAnObject("a number")),
            Value::String(_) => Err(ManifestError::NotAnObject("a string")),
            Value::Array(_) => Err(ManifestError::NotAnObject("an array")),
        }
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.0)
    }

    pub fn api_version(&self) -> Option<&str> {
        self.0.get("apiVersion").and_then(Value::as_str)
    }

    pub fn kind(&self) -> Option<&str> {
        self.0.get("kind").and_then(Value::as_str)
    }

    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        self.0.get("metadata").and_then(Value::as_object)
    }

    pub fn name(&self) -> Option<&str> {
        self.metadata_str("name")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata_str("namespace")
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
    }

    pub fn key(&self) -> ManifestKey {
        let owned = |s: Option<&str>| s.unwrap_or_default().to_string();
        ManifestKey {
            api_version: owned(self.api_version()),
            kind: owned(self.kind()),
            namespace: owned(self.namespace()),
            name: owned(self.name()),
        }
    }

    /// Size of the compact JSON encoding, which is what the 500 KiB limit of
    /// the webhook and agent counts.
    pub fn encoded_len(&self) -> usize {
        let mut counter = ByteCounter(0);
        // Serialising a map of JSON values cannot fail, and the counter
        // never refuses bytes.
        let _ = serde_json::to_writer(&mut counter, &self.0);
        counter.0
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TryFrom<Value> for Manifest {
    type Error = ManifestError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Manifest::from_value(value)
    }
}

impl From<Manifest> for Value {
    fn from(manifest: Manifest) -> Value {
        manifest.into_value()
    }
}

// Matches the CRD: any object, kept whole, validated by the API server as
// an embedded Kubernetes object.
impl JsonSchema for Manifest {
    fn schema_name() -> Cow<'static, str> {
        "Manifest".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOption {
    #[serde(default)]
    pub propagation_policy: DeletePropagationPolicy,
    /// Used only with the `SelectivelyOrphan` policy.
    #[serde(
        default,
        rename = "selectivelyOrphans",
        skip_serializing_if = "Option::is_none"
    )]
    pub selectively_orphan: Option<SelectivelyOrphan>,
    /// Once the work is `Complete`, delete it this many seconds later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectivelyOrphan {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub orphaning_rules: Vec<OrphaningRule>,
}

/// A resource in the managed cluster. An empty group is the core group and
/// an empty namespace a cluster-scoped resource. In manifest configs, name
/// and namespace may use `*` wildcards.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub struct ResourceIdentifier {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The plural resource, e.g. `deployments`, not the kind.
    pub resource: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A resource to leave in place when the work is deleted; all four parts
/// must match exactly.
pub type OrphaningRule = ResourceIdentifier;

impl ResourceIdentifier {
    pub fn new(
        group: impl Into<String>,
        resource: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ResourceIdentifier {
            group: group.into(),
            resource: resource.into(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

/// Settings for the manifests matched by `resourceIdentifier`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestConfigOption {
    pub resource_identifier: ResourceIdentifier,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub feedback_rules: Vec<FeedbackRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<UpdateStrategy>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["condition"]))]
    pub condition_rules: Vec<ConditionRule>,
    /// `Poll` (the default) re-reads the resource periodically; `Watch`
    /// reports changes as they happen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "scrape_type_schema")]
    pub feedback_scrape_type: Option<FeedbackScrapeType>,
}

// schemars would add `null` to the enum of an `Option<enum>`; Kubernetes
// wants the plain enum with the server-side default, as in the OCM CRD.
fn scrape_type_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = FeedbackScrapeType::json_schema(generator);
    schema.insert("default".into(), FeedbackScrapeType::Poll.as_str().into());
    schema
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackRule {
    #[serde(rename = "type")]
    pub type_: FeedbackType,
    /// Required for `JSONPaths`. Paths are evaluated from the object root,
    /// e.g. `.status.readyReplicas`.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub json_paths: Vec<JsonPath>,
}

impl FeedbackRule {
    pub fn well_known_status() -> Self {
        FeedbackRule {
            type_: FeedbackType::WellKnownStatus,
            json_paths: Vec::new(),
        }
    }

    pub fn json_paths(paths: Vec<JsonPath>) -> Self {
        FeedbackRule {
            type_: FeedbackType::JsonPaths,
            json_paths: paths,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct JsonPath {
    /// The name the value is reported under in status feedback.
    pub name: String,
    /// If set and different from the object's version, the path reports an
    /// error instead of a value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub path: String,
}

impl JsonPath {
    pub fn new(name: impl Into<String>, path: impl Into<String>) -> Self {
        JsonPath {
            name: name.into(),
            version: None,
            path: path.into(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStrategy {
    #[serde(default, rename = "type")]
    pub type_: UpdateStrategyType,
    /// Used only with the `ServerSideApply` type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyConfig>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSideApplyConfig {
    #[serde(default)]
    pub force: bool,
    /// Must start with `work-agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern("^work-agent"), extend("default" = "work-agent"))]
    pub field_manager: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["condition"]))]
    pub ignore_fields: Vec<IgnoreField>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreField {
    #[serde(default)]
    pub condition: IgnoreFieldsCondition,
    #[serde(
        default,
        rename = "jsonPaths",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json_paths: Vec<String>,
    #[serde(
        default,
        rename = "jsonPointers",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json_pointers: Vec<String>,
    #[serde(
        default,
        rename = "jqPathExpressions",
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub jq_path_expressions: Vec<String>,
}

/// Sets a manifest condition from the state of the applied resource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRule {
    /// The condition type to set, e.g. `Complete` or `Progressing`.
    pub condition: String,
    #[serde(rename = "type")]
    pub type_: ConditionRuleType,
    /// CEL expressions over `object`, all of which must hold.
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cel_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_expression: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ManifestWorkExecutor {
    pub subject: ManifestWorkExecutorSubject,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestWorkExecutorSubject {
    #[serde(rename = "type")]
    pub type_: ExecutorSubjectType,
    /// Required when the type is `ServiceAccount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ManifestWorkSubjectServiceAccount>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ManifestWorkSubjectServiceAccount {
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN_PATTERN))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 253), pattern(DNS1123_SUBDOMAIN_PATTERN))]
    pub name: String,
}

const DNS1123_SUBDOMAIN_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$";

impl ManifestWorkExecutor {
    pub fn service_account(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ManifestWorkExecutor {
            subject: ManifestWorkExecutorSubject {
                type_: ExecutorSubjectType::ServiceAccount,
                service_account: Some(ManifestWorkSubjectServiceAccount {
                    namespace: namespace.into(),
                    name: name.into(),
                }),
            },
        }
    }
}

/// What the agent reports about a work.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestWorkStatus {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_status: Option<ManifestResourceStatus>,
}

impl ManifestWorkStatus {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(&self.conditions, type_)
    }

    /// Whether condition `type_` is `"True"`. With `observed_generation`,
    /// the condition must also have been set for exactly that generation:
    /// a condition without one, or for another generation, says nothing
    /// about the current spec.
    pub fn is_condition_true(&self, type_: &str, observed_generation: Option<i64>) -> bool {
        is_true(self.condition(type_), observed_generation)
    }

    /// The status of the manifest at `ordinal` in `spec.workload.manifests`.
    pub fn manifest(&self, ordinal: i32) -> Option<&ManifestCondition> {
        self.resource_status
            .as_ref()?
            .manifests
            .iter()
            .find(|m| m.resource_meta.ordinal == ordinal)
    }
}

/// The condition of `type_` in a list of conditions.
pub(crate) fn find_condition<'a>(
    conditions: &'a [Condition],
    type_: &str,
) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn is_true(condition: Option<&Condition>, observed_generation: Option<i64>) -> bool {
    condition.is_some_and(|c| {
        c.status == "True" && observed_generation.is_none_or(|g| c.observed_generation == Some(g))
    })
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ManifestResourceStatus {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manifests: Vec<ManifestCondition>,
}

/// The status of one manifest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestCondition {
    pub resource_meta: ManifestResourceMeta,
    #[serde(
        default,
        rename = "statusFeedback",
        skip_serializing_if = "StatusFeedbackResult::is_empty"
    )]
    pub status_feedback: StatusFeedbackResult,
    // Required by the CRD and always written by Go, as `null` when empty.
    #[serde(deserialize_with = "null_as_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl ManifestCondition {
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(&self.conditions, type_)
    }

    pub fn is_condition_true(&self, type_: &str, observed_generation: Option<i64>) -> bool {
        is_true(self.condition(type_), observed_generation)
    }

    /// The status feedback value reported under `name`.
    pub fn feedback(&self, name: &str) -> Option<&FieldValue> {
        self.status_feedback
            .values
            .iter()
            .find(|v| v.name == name)
            .map(|v| &v.field_value)
    }
}

/// Which resource a manifest status is about. The agent fills in only
/// `ordinal` when it cannot parse or map the manifest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ManifestResourceMeta {
    /// The index in `spec.workload.manifests`.
    pub ordinal: i32,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct StatusFeedbackResult {
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub values: Vec<FeedbackValue>,
}

impl StatusFeedbackResult {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackValue {
    pub name: String,
    pub field_value: FieldValue,
}

/// One status feedback value. Only the member named by `type` is set; the
/// members have different keys, so this is not a serde-tagged enum.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldValue {
    #[serde(rename = "type")]
    pub type_: ValueType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integer: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean: Option<bool>,
    /// JSON text, at most 1024 bytes by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub json_raw: Option<String>,
}

impl FieldValue {
    fn empty(type_: ValueType) -> Self {
        FieldValue {
            type_,
            integer: None,
            string: None,
            boolean: None,
            json_raw: None,
        }
    }

    pub fn integer(value: i64) -> Self {
        FieldValue {
            integer: Some(value),
            ..FieldValue::empty(ValueType::Integer)
        }
    }

    pub fn string(value: impl Into<String>) -> Self {
        FieldValue {
            string: Some(value.into()),
            ..FieldValue::empty(ValueType::String)
        }
    }

    pub fn boolean(value: bool) -> Self {
        FieldValue {
            boolean: Some(value),
            ..FieldValue::empty(ValueType::Boolean)
        }
    }

    pub fn json_raw(value: impl Into<String>) -> Self {
        FieldValue {
            json_raw: Some(value.into()),
            ..FieldValue::empty(ValueType::JsonRaw)
        }
    }

    /// The value as JSON, taken from the member `type` names. `None` when
    /// that member is missing, the type is unknown, or raw JSON does not
    /// parse.
    pub fn to_json(&self) -> Option<Value> {
        match self.type_ {
            ValueType::Integer => self.integer.map(Value::from),
            ValueType::String => self.string.clone().map(Value::from),
            ValueType::Boolean => self.boolean.map(Value::from),
            ValueType::JsonRaw => self
                .json_raw
                .as_deref()
                .and_then(|raw| serde_json::from_str(raw).ok()),
            ValueType::Unknown(_) => None,
        }
    }
}

impl ManifestWork {
    /// A work named `name` that delivers `manifests` to `consumer`. The
    /// consumer is the work's namespace, as on an OCM hub.
    ///
    /// (`ManifestWork::new(name, spec)` is the constructor kube derives.)
    pub fn for_consumer(
        consumer: impl Into<String>,
        name: impl Into<String>,
        manifests: Vec<Manifest>,
    ) -> Self {
        ManifestWork {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(consumer.into()),
                ..ObjectMeta::default()
            },
            spec: ManifestWorkSpec {
                workload: ManifestsTemplate { manifests },
                ..ManifestWorkSpec::default()
            },
            status: None,
        }
    }

    /// The consumer (target cluster) the work is for: its namespace.
    pub fn consumer(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }
}

#[cfg(test)]
mod tests;
