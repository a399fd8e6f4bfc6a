//! The CloudEvents codec between ManifestWorks and Maestro's
//! `manifestbundles` events, in the binary mode Maestro speaks over gRPC.
//!
//! Maestro's binding differs from the upstream CloudEvents protobuf format:
//! optional and extension attributes are keyed `ce-<name>` and the data
//! content type is the bare key `contenttype`. Keys it does not expect are
//! silently dropped by the server, so every key here is deliberate.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::proto::cloud_event::Data;
use super::proto::cloud_event_attribute_value::Attr;
use super::proto::{CloudEvent, CloudEventAttributeValue};
use crate::maestro::error::{Error, Result};
use crate::manifestwork::{
    DeleteOption, Manifest, ManifestCondition, ManifestConfigOption, ManifestResourceStatus,
    ManifestWork, ManifestWorkExecutor, ManifestWorkSpec, ManifestWorkStatus, ManifestsTemplate,
};
use crate::names::{ResourceId, SourceId};

pub const SPEC_VERSION: &str = "1.0";
pub const DATA_TYPE: &str = "io.open-cluster-management.works.v1alpha1.manifestbundles";
pub const HEARTBEAT_TYPE: &str = "io.open-cluster-management.cloudevents.heartbeat";
const JSON: &str = "application/json";

/// The condition the agent reports once a deleted work is gone.
const DELETED_CONDITION: &str = "Deleted";

/// Annotation the Go source client stores the agent's sequence ID under.
pub const SEQUENCE_ID_ANNOTATION: &str = "cloudevents.open-cluster-management.io/sequenceid";

mod key {
    pub const CONTENT_TYPE: &str = "contenttype";
    pub const TIME: &str = "ce-time";
    pub const CLUSTER_NAME: &str = "ce-clustername";
    pub const RESOURCE_ID: &str = "ce-resourceid";
    pub const RESOURCE_VERSION: &str = "ce-resourceversion";
    pub const ORIGINAL_SOURCE: &str = "ce-originalsource";
    pub const METADATA: &str = "ce-metadata";
    pub const DELETION_TIMESTAMP: &str = "ce-deletiontimestamp";
    pub const SEQUENCE_ID: &str = "ce-sequenceid";
    pub const STATUS_HASH: &str = "ce-statushash";
    pub const LOG_TRACING: &str = "ce-logtracing";
    pub const TRACEPARENT: &str = "ce-traceparent";
}

/// The prefix of the `logtracing` entries Maestro (OCM sdk-go) adds to the
/// log lines about an event, without the prefix.
const LOG_TRACING_PREFIX: &str = "logging.open-cluster-management.io/";

/// What a spec event asks Maestro to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecAction {
    Create,
    Update,
    Delete,
}

impl SpecAction {
    fn event_type(self) -> String {
        let action = match self {
            SpecAction::Create => "create_request",
            SpecAction::Update => "update_request",
            SpecAction::Delete => "delete_request",
        };
        format!("{DATA_TYPE}.spec.{action}")
    }
}

/// The `data` of spec events: the ManifestWork spec, with Maestro's
/// misspelt `executer` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ManifestBundle {
    #[serde(default)]
    pub manifests: Vec<Manifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<DeleteOption>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifest_configs: Vec<ManifestConfigOption>,
    #[serde(default, rename = "executer", skip_serializing_if = "Option::is_none")]
    pub executor: Option<ManifestWorkExecutor>,
}

impl ManifestBundle {
    pub fn from_spec(spec: &ManifestWorkSpec) -> ManifestBundle {
        ManifestBundle {
            manifests: spec.workload.manifests.clone(),
            delete_option: spec.delete_option.clone(),
            manifest_configs: spec.manifest_configs.clone(),
            executor: spec.executor.clone(),
        }
    }

    pub fn into_spec(self) -> ManifestWorkSpec {
        ManifestWorkSpec {
            workload: ManifestsTemplate {
                manifests: self.manifests,
            },
            delete_option: self.delete_option,
            manifest_configs: self.manifest_configs,
            executor: self.executor,
        }
    }
}

/// The `data` of status events.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ManifestBundleStatus {
    #[serde(default)]
    manifest_bundle: Option<ManifestBundle>,
    // Go sends `null` for a nil slice.
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
    #[serde(default)]
    resource_status: Option<Vec<ManifestCondition>>,
}

/// Carries the W3C trace context of the publish on `event`: the CloudEvents
/// distributed-tracing extension `traceparent`, and the same value in the
/// `logtracing` extension, whose entries Maestro's gRPC server adds to its
/// log lines about the event (it does not continue the trace itself).
pub fn set_trace_context(event: &mut CloudEvent, traceparent: &str) {
    event
        .attributes
        .insert(key::TRACEPARENT.into(), string(traceparent));
    let log_tracing =
        serde_json::json!({ format!("{LOG_TRACING_PREFIX}traceparent"): traceparent });
    event
        .attributes
        .insert(key::LOG_TRACING.into(), string(&log_tracing.to_string()));
}

/// Builds the spec event for `work`, which must carry its namespace (the
/// consumer) and name.
///
/// `resource_version` is the bundle version the update is based on (0 on
/// create; 0 on update opts out of the server's conflict check).
pub fn encode_spec(
    source: &SourceId,
    action: SpecAction,
    work: &ManifestWork,
    resource_version: i64,
    now: DateTime<Utc>,
) -> Result<CloudEvent> {
    let consumer = work.metadata.namespace.clone().unwrap_or_default();
    let name = work.metadata.name.clone().unwrap_or_default();
    let id = ResourceId::for_work(source, &consumer, &name);

    let mut meta = work.metadata.clone();
    meta.uid = Some(id.to_string());
    meta.resource_version = Some(resource_version.to_string());
    meta.generation = (resource_version != 0).then_some(resource_version);
    // Server-owned fields; Maestro injects its own on read.
    meta.creation_timestamp = None;
    meta.managed_fields = None;
    if action == SpecAction::Delete {
        meta.deletion_timestamp = Some(k8s_time(now));
    }
    let metadata_json = serde_json::to_string(&meta)
        .map_err(|e| Error::Protocol(format!("cannot encode work metadata: {e}")))?;

    let mut attributes = HashMap::new();
    attributes.insert(key::TIME.into(), timestamp(now));
    attributes.insert(key::CLUSTER_NAME.into(), string(&consumer));
    attributes.insert(key::RESOURCE_ID.into(), string(&id.to_string()));
    attributes.insert(key::RESOURCE_VERSION.into(), integer(resource_version)?);
    attributes.insert(key::ORIGINAL_SOURCE.into(), string(""));
    attributes.insert(key::METADATA.into(), string(&metadata_json));
    attributes.insert(key::LOG_TRACING.into(), string("{}"));

    let data = match action {
        SpecAction::Delete => {
            attributes.insert(key::DELETION_TIMESTAMP.into(), timestamp(now));
            None
        }
        SpecAction::Create | SpecAction::Update => {
            attributes.insert(key::CONTENT_TYPE.into(), string(JSON));
            let bundle = ManifestBundle::from_spec(&work.spec);
            let bytes = serde_json::to_vec(&bundle)
                .map_err(|e| Error::Protocol(format!("cannot encode manifest bundle: {e}")))?;
            Some(Data::BinaryData(bytes))
        }
    };

    Ok(CloudEvent {
        id: Uuid::new_v4().to_string(),
        source: source.to_string(),
        spec_version: SPEC_VERSION.into(),
        r#type: action.event_type(),
        attributes,
        data,
    })
}

/// A status hash the client last saw for a resource, for a resync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusHash {
    #[serde(rename = "resourceID")]
    pub resource_id: String,
    pub status_hash: String,
}

/// Builds a `status.resync_request`: Maestro re-sends the status of every
/// resource of this source whose hash differs from the one given (all of
/// them when `hashes` is empty).
pub fn encode_status_resync(
    source: &SourceId,
    hashes: &[StatusHash],
    now: DateTime<Utc>,
) -> Result<CloudEvent> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Payload<'a> {
        status_hashes: &'a [StatusHash],
    }
    let bytes = serde_json::to_vec(&Payload {
        status_hashes: hashes,
    })
    .map_err(|e| Error::Protocol(format!("cannot encode resync request: {e}")))?;
    let attributes = HashMap::from([
        (key::TIME.to_string(), timestamp(now)),
        (key::CONTENT_TYPE.to_string(), string(JSON)),
        (key::CLUSTER_NAME.to_string(), string("")),
        (key::ORIGINAL_SOURCE.to_string(), string("")),
    ]);
    Ok(CloudEvent {
        id: Uuid::new_v4().to_string(),
        source: source.to_string(),
        spec_version: SPEC_VERSION.into(),
        r#type: format!("{DATA_TYPE}.status.resync_request"),
        attributes,
        data: Some(Data::BinaryData(bytes)),
    })
}

/// One event from the Subscribe stream, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Heartbeat,
    Status(Box<StatusEvent>),
    /// An event of a type this client does not handle; Maestro may add
    /// types, so this is not an error.
    Ignored {
        event_type: String,
    },
}

/// A status report for one resource, as Maestro relays it from the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub resource_id: ResourceId,
    /// The bundle version the agent observed.
    pub resource_version: i64,
    /// The agent's ordering key (a snowflake ID; larger is newer).
    pub sequence_id: Option<String>,
    /// Echo this in resync requests rather than recomputing it: Go's JSON
    /// escaping differs from serde's.
    pub status_hash: Option<String>,
    pub cluster_name: Option<String>,
    /// The agent confirmed the work is gone (`Deleted=True`): the last event
    /// Maestro sends for this resource.
    pub deleted: bool,
    /// The work rebuilt from the event: the source's metadata, the current
    /// spec when Maestro included it, and the reported status.
    pub work: ManifestWork,
    pub time: Option<DateTime<Utc>>,
}

/// Decodes one event from the Subscribe stream.
pub fn decode(event: &CloudEvent) -> Result<Received> {
    if event.r#type == HEARTBEAT_TYPE {
        return Ok(Received::Heartbeat);
    }
    let status_prefix = format!("{DATA_TYPE}.status.");
    if !event.r#type.starts_with(&status_prefix) {
        return Ok(Received::Ignored {
            event_type: event.r#type.clone(),
        });
    }
    if event.spec_version != SPEC_VERSION {
        return Err(Error::Protocol(format!(
            "status event {} has spec version {:?}, expected {SPEC_VERSION}",
            event.id, event.spec_version
        )));
    }

    let attrs = Attributes {
        event_id: &event.id,
        map: &event.attributes,
    };
    let resource_id_text = attrs.required_string(key::RESOURCE_ID)?;
    let resource_id: ResourceId = resource_id_text.parse().map_err(|e| {
        Error::Protocol(format!(
            "status event {}: resourceid {resource_id_text:?} is not a UUID: {e}",
            event.id
        ))
    })?;
    let resource_version = attrs.required_integer(key::RESOURCE_VERSION)?;
    let sequence_id = attrs.optional_string(key::SEQUENCE_ID)?;
    let status_hash = attrs.optional_string(key::STATUS_HASH)?;
    let cluster_name = attrs.optional_string(key::CLUSTER_NAME)?;
    let time = attrs.optional_time(key::TIME)?;

    let mut metadata: ObjectMeta = match attrs.optional_string(key::METADATA)? {
        Some(json) if !json.is_empty() => serde_json::from_str(&json).map_err(|e| {
            Error::Protocol(format!(
                "status event {}: metadata extension is not an ObjectMeta: {e}",
                event.id
            ))
        })?,
        _ => ObjectMeta::default(),
    };
    metadata.uid = Some(resource_id.to_string());
    metadata.generation = Some(resource_version);
    if metadata.name.is_none() {
        metadata.name = Some(resource_id.to_string());
    }
    if metadata.namespace.is_none() {
        metadata.namespace = cluster_name.clone();
    }
    if let Some(seq) = &sequence_id {
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(SEQUENCE_ID_ANNOTATION.into(), seq.clone());
    }

    let payload = decode_payload(event, resource_id)?;
    let (work, deleted) = into_work(payload, metadata);

    Ok(Received::Status(Box::new(StatusEvent {
        resource_id,
        resource_version,
        sequence_id,
        status_hash,
        cluster_name,
        deleted,
        work,
        time,
    })))
}

/// The event's data as a manifest bundle status; no data is an empty one.
fn decode_payload(event: &CloudEvent, resource_id: ResourceId) -> Result<ManifestBundleStatus> {
    match &event.data {
        Some(Data::BinaryData(bytes)) if !bytes.is_empty() => serde_json::from_slice(bytes)
            .map_err(|e| {
                Error::Protocol(format!(
                    "status event {} for resource {resource_id}: data is not a manifest bundle status: {e}",
                    event.id
                ))
            }),
        _ => Ok(ManifestBundleStatus::default()),
    }
}

/// The ManifestWork the payload describes, and whether the agent reports
/// it deleted.
fn into_work(payload: ManifestBundleStatus, metadata: ObjectMeta) -> (ManifestWork, bool) {
    let conditions = payload.conditions.unwrap_or_default();
    let deleted = conditions
        .iter()
        .any(|c| c.type_ == DELETED_CONDITION && c.status == "True");
    let spec = payload
        .manifest_bundle
        .map(ManifestBundle::into_spec)
        .unwrap_or_default();
    let status = ManifestWorkStatus {
        conditions,
        resource_status: payload
            .resource_status
            .map(|manifests| ManifestResourceStatus { manifests }),
    };
    let work = ManifestWork {
        metadata,
        spec,
        status: Some(status),
    };
    (work, deleted)
}

struct Attributes<'a> {
    event_id: &'a str,
    map: &'a HashMap<String, CloudEventAttributeValue>,
}

impl Attributes<'_> {
    fn get(&self, key: &str) -> Option<&Attr> {
        self.map.get(key).and_then(|v| v.attr.as_ref())
    }

    fn wrong(&self, key: &str, expected: &str, got: &Attr) -> Error {
        Error::Protocol(format!(
            "event {}: attribute {key} should be {expected}, got {}",
            self.event_id,
            describe(got)
        ))
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(Attr::CeString(s) | Attr::CeUri(s) | Attr::CeUriRef(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn required_string(&self, key: &str) -> Result<String> {
        self.optional_string(key)?.ok_or_else(|| {
            Error::Protocol(format!(
                "event {}: attribute {key} is missing",
                self.event_id
            ))
        })
    }

    /// Integers arrive as `ce_integer`, or as a decimal string when the
    /// agent's stored status carried them as strings.
    fn required_integer(&self, key: &str) -> Result<i64> {
        match self.get(key) {
            None => Err(Error::Protocol(format!(
                "event {}: attribute {key} is missing",
                self.event_id
            ))),
            Some(Attr::CeInteger(n)) => Ok(i64::from(*n)),
            Some(Attr::CeString(s)) => s
                .trim()
                .parse()
                .map_err(|_| self.wrong(key, "an integer", &Attr::CeString(s.clone()))),
            Some(other) => Err(self.wrong(key, "an integer", other)),
        }
    }

    fn optional_time(&self, key: &str) -> Result<Option<DateTime<Utc>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Attr::CeTimestamp(ts)) => Ok(DateTime::from_timestamp(
                ts.seconds,
                u32::try_from(ts.nanos).unwrap_or(0),
            )),
            Some(Attr::CeString(s)) => DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| self.wrong(key, "an RFC 3339 time", &Attr::CeString(s.clone()))),
            Some(other) => Err(self.wrong(key, "a timestamp", other)),
        }
    }
}

fn describe(attr: &Attr) -> String {
    match attr {
        Attr::CeBoolean(b) => format!("boolean {b}"),
        Attr::CeInteger(n) => format!("integer {n}"),
        Attr::CeString(s) => format!("string {s:?}"),
        Attr::CeBytes(b) => format!("{} bytes", b.len()),
        Attr::CeUri(s) => format!("URI {s:?}"),
        Attr::CeUriRef(s) => format!("URI reference {s:?}"),
        Attr::CeTimestamp(t) => format!("timestamp {}s", t.seconds),
    }
}

fn string(s: &str) -> CloudEventAttributeValue {
    CloudEventAttributeValue {
        attr: Some(Attr::CeString(s.to_string())),
    }
}

/// CloudEvents integers are 32-bit; Go refuses larger values, so do we.
fn integer(n: i64) -> Result<CloudEventAttributeValue> {
    let n = i32::try_from(n).map_err(|_| {
        Error::Protocol(format!(
            "resource version {n} does not fit a CloudEvents integer (32 bits)"
        ))
    })?;
    Ok(CloudEventAttributeValue {
        attr: Some(Attr::CeInteger(n)),
    })
}

fn timestamp(t: DateTime<Utc>) -> CloudEventAttributeValue {
    CloudEventAttributeValue {
        attr: Some(Attr::CeTimestamp(prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
        })),
    }
}

/// A chrono time as a Kubernetes `Time`, which k8s-openapi keeps as a jiff
/// timestamp.
fn k8s_time(t: DateTime<Utc>) -> Time {
    let nanos = i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0);
    Time(
        k8s_openapi::jiff::Timestamp::new(t.timestamp(), nanos)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

#[cfg(test)]
mod tests;
