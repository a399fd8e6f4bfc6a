use super::*;
use serde_json::{Value, json};

fn source() -> SourceId {
    SourceId::new("mw-client-example").unwrap()
}

fn sample_work() -> ManifestWork {
    serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {
            "name": "e44ec579-9646-549a-b679-db8d19d6da37",
            "namespace": "7ff1a8f4-8811-49b4-8c19-9271bc51975e",
            "labels": {"maestro.resource.type": "2d18a7dc-c731-5753-8aa9-6b2f22e3b12b"}
        },
        "spec": {
            "workload": {"manifests": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"replicas": 1}
            }]},
            "deleteOption": {"propagationPolicy": "Orphan"},
            "manifestConfigs": [{
                "resourceIdentifier": {"group": "apps", "resource": "deployments", "name": "web", "namespace": "default"},
                "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "replicas", "path": ".status.replicas"}]}],
                "updateStrategy": {"type": "ServerSideApply", "serverSideApply": {"force": true, "fieldManager": "work-agent"}}
            }],
            "executor": {"subject": {"type": "ServiceAccount", "serviceAccount": {"namespace": "default", "name": "deployer"}}}
        }
    }))
    .unwrap()
}

fn attr<'a>(event: &'a CloudEvent, key: &str) -> &'a Attr {
    event
        .attributes
        .get(key)
        .and_then(|v| v.attr.as_ref())
        .unwrap_or_else(|| panic!("attribute {key} missing"))
}

fn string_attr(event: &CloudEvent, key: &str) -> String {
    match attr(event, key) {
        Attr::CeString(s) => s.clone(),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn data_json(event: &CloudEvent) -> Value {
    match &event.data {
        Some(Data::BinaryData(b)) => serde_json::from_slice(b).unwrap(),
        other => panic!("no binary data: {other:?}"),
    }
}

#[test]
fn create_event_uses_maestro_attribute_keys_and_binary_json() {
    let now = Utc::now();
    let event = encode_spec(&source(), SpecAction::Create, &sample_work(), 0, now).unwrap();

    assert_eq!(event.spec_version, "1.0");
    assert_eq!(event.source, "mw-client-example");
    assert_eq!(
        event.r#type,
        "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request"
    );
    assert!(Uuid::parse_str(&event.id).is_ok());
    let mut keys: Vec<_> = event.attributes.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ce-clustername",
            "ce-logtracing",
            "ce-metadata",
            "ce-originalsource",
            "ce-resourceid",
            "ce-resourceversion",
            "ce-time",
            "contenttype"
        ]
    );
    assert_eq!(string_attr(&event, "contenttype"), "application/json");
    assert_eq!(
        string_attr(&event, "ce-resourceid"),
        "55c61e54-a3f6-563d-9fec-b1fe297bdfdb"
    );
    assert_eq!(
        string_attr(&event, "ce-clustername"),
        "7ff1a8f4-8811-49b4-8c19-9271bc51975e"
    );
    assert!(matches!(
        attr(&event, "ce-resourceversion"),
        Attr::CeInteger(0)
    ));
    assert!(
        matches!(attr(&event, "ce-time"), Attr::CeTimestamp(t) if t.seconds == now.timestamp())
    );

    let metadata: Value = serde_json::from_str(&string_attr(&event, "ce-metadata")).unwrap();
    assert_eq!(
        metadata,
        json!({
            "name": "e44ec579-9646-549a-b679-db8d19d6da37",
            "namespace": "7ff1a8f4-8811-49b4-8c19-9271bc51975e",
            "uid": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
            "resourceVersion": "0",
            "labels": {"maestro.resource.type": "2d18a7dc-c731-5753-8aa9-6b2f22e3b12b"}
        })
    );

    let data = data_json(&event);
    assert_eq!(data["manifests"][0]["kind"], "Deployment");
    assert_eq!(data["deleteOption"]["propagationPolicy"], "Orphan");
    assert_eq!(
        data["manifestConfigs"][0]["updateStrategy"]["type"],
        "ServerSideApply"
    );
    // Maestro's payload spells the executor "executer".
    assert_eq!(
        data["executer"]["subject"]["serviceAccount"]["name"],
        "deployer"
    );
    assert!(data.get("executor").is_none());
}

#[test]
fn minimal_work_sends_only_manifests() {
    let mut work = sample_work();
    work.spec.delete_option = None;
    work.spec.manifest_configs.clear();
    work.spec.executor = None;
    let event = encode_spec(&source(), SpecAction::Create, &work, 0, Utc::now()).unwrap();
    let data = data_json(&event);
    let keys: Vec<_> = data.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["manifests"]);
}

#[test]
fn update_event_carries_the_version_it_is_based_on() {
    let event = encode_spec(&source(), SpecAction::Update, &sample_work(), 7, Utc::now()).unwrap();
    assert!(event.r#type.ends_with(".spec.update_request"));
    assert!(matches!(
        attr(&event, "ce-resourceversion"),
        Attr::CeInteger(7)
    ));
    let metadata: Value = serde_json::from_str(&string_attr(&event, "ce-metadata")).unwrap();
    assert_eq!(metadata["resourceVersion"], "7");
    assert_eq!(metadata["generation"], 7);
}

#[test]
fn delete_event_has_no_data_and_a_deletion_timestamp() {
    let now = Utc::now();
    let event = encode_spec(&source(), SpecAction::Delete, &sample_work(), 3, now).unwrap();
    assert!(event.r#type.ends_with(".spec.delete_request"));
    assert!(event.data.is_none());
    assert!(!event.attributes.contains_key("contenttype"));
    assert!(
        matches!(attr(&event, "ce-deletiontimestamp"), Attr::CeTimestamp(t) if t.seconds == now.timestamp())
    );
    let metadata: Value = serde_json::from_str(&string_attr(&event, "ce-metadata")).unwrap();
    assert!(metadata["deletionTimestamp"].is_string(), "{metadata}");
}

#[test]
fn version_beyond_32_bits_is_refused() {
    let err = encode_spec(
        &source(),
        SpecAction::Update,
        &sample_work(),
        i64::from(i32::MAX) + 1,
        Utc::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("32 bits"), "{err}");
}

#[test]
fn resync_request_payload_has_the_go_keys() {
    let event = encode_status_resync(
        &source(),
        &[StatusHash {
            resource_id: "55c61e54-a3f6-563d-9fec-b1fe297bdfdb".into(),
            status_hash: "abc".into(),
        }],
        Utc::now(),
    )
    .unwrap();
    assert_eq!(
        event.r#type,
        "io.open-cluster-management.works.v1alpha1.manifestbundles.status.resync_request"
    );
    assert_eq!(
        data_json(&event),
        json!({"statusHashes": [{"resourceID": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "statusHash": "abc"}]})
    );
}

fn status_event(resource_version: Attr, data: Value) -> CloudEvent {
    let a = |attr: Attr| CloudEventAttributeValue { attr: Some(attr) };
    let attributes = HashMap::from([
        ("contenttype".to_string(), a(Attr::CeString("application/json".into()))),
        ("ce-clustername".to_string(), a(Attr::CeString("cluster-west-1".into()))),
        ("ce-resourceid".to_string(), a(Attr::CeString("55c61e54-a3f6-563d-9fec-b1fe297bdfdb".into()))),
        ("ce-resourceversion".to_string(), a(resource_version)),
        ("ce-originalsource".to_string(), a(Attr::CeString("maestro".into()))),
        ("ce-sequenceid".to_string(), a(Attr::CeString("2000808179729960960".into()))),
        ("ce-statushash".to_string(), a(Attr::CeString("e3b23766bcdd155db51bf1d715bdf5224a06bdf597461b4f80bce8ba220121de".into()))),
        ("ce-time".to_string(), a(Attr::CeString("2025-12-16T06:00:17.923752996Z".into()))),
        ("ce-metadata".to_string(), a(Attr::CeString(
            r#"{"creationTimestamp":"2025-12-16T06:00:17Z","labels":{"app":"web"},"name":"web-work","namespace":"cluster-west-1","resourceVersion":"0","uid":"55c61e54-a3f6-563d-9fec-b1fe297bdfdb"}"#.into(),
        ))),
    ]);
    CloudEvent {
        id: "8a3993ab-1193-4d40-bc8c-6bc1fc098089".into(),
        source: "cluster-west-1-work-agent".into(),
        spec_version: "1.0".into(),
        r#type: "io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request"
            .into(),
        attributes,
        data: Some(Data::BinaryData(serde_json::to_vec(&data).unwrap())),
    }
}

fn agent_status() -> Value {
    json!({
        "manifestBundle": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}]},
        "conditions": [
            {"type": "Applied", "status": "True", "observedGeneration": 1, "lastTransitionTime": "2025-12-16T06:00:17Z", "reason": "AppliedManifestWorkComplete", "message": "Apply manifest work complete"},
            {"type": "Available", "status": "True", "observedGeneration": 1, "lastTransitionTime": "2025-12-16T06:00:17Z", "reason": "ResourcesAvailable", "message": "All resources are available"}
        ],
        "resourceStatus": [{
            "resourceMeta": {"ordinal": 0, "group": "", "version": "v1", "kind": "ConfigMap", "resource": "configmaps", "name": "c", "namespace": "default"},
            "statusFeedback": {"values": [
                {"name": "n", "fieldValue": {"type": "Integer", "integer": 3}},
                {"name": "s", "fieldValue": {"type": "String", "string": "x"}},
                {"name": "b", "fieldValue": {"type": "Boolean", "boolean": true}},
                {"name": "j", "fieldValue": {"type": "JsonRaw", "jsonRaw": "{\"a\":1}"}}
            ]},
            "conditions": [{"type": "Applied", "status": "True", "lastTransitionTime": "2025-12-16T06:00:17Z", "reason": "AppliedManifestComplete", "message": "Apply manifest complete"}]
        }]
    })
}

fn decoded(event: &CloudEvent) -> StatusEvent {
    match decode(event).unwrap() {
        Received::Status(s) => *s,
        other => panic!("not a status: {other:?}"),
    }
}

#[test]
fn status_event_rebuilds_the_work_with_status_and_sequence() {
    let s = decoded(&status_event(Attr::CeInteger(1), agent_status()));
    assert_eq!(
        s.resource_id.to_string(),
        "55c61e54-a3f6-563d-9fec-b1fe297bdfdb"
    );
    assert_eq!(s.resource_version, 1);
    assert_eq!(s.sequence_id.as_deref(), Some("2000808179729960960"));
    assert!(
        s.status_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("e3b2"))
    );
    assert!(!s.deleted);
    assert!(s.time.is_some());

    let work = &s.work;
    assert_eq!(work.metadata.name.as_deref(), Some("web-work"));
    assert_eq!(work.metadata.namespace.as_deref(), Some("cluster-west-1"));
    assert_eq!(work.metadata.generation, Some(1));
    assert_eq!(
        work.metadata.annotations.as_ref().unwrap()[SEQUENCE_ID_ANNOTATION],
        "2000808179729960960"
    );
    assert_eq!(work.spec.workload.manifests.len(), 1);
    let status = work.status.as_ref().unwrap();
    assert_eq!(status.conditions.len(), 2);
    let manifests = &status.resource_status.as_ref().unwrap().manifests;
    assert_eq!(manifests[0].status_feedback.values.len(), 4);
}

#[test]
fn resource_version_may_arrive_as_a_string() {
    let s = decoded(&status_event(Attr::CeString("4".into()), agent_status()));
    assert_eq!(s.resource_version, 4);
}

#[test]
fn null_conditions_decode_as_none() {
    let s = decoded(&status_event(
        Attr::CeInteger(1),
        json!({"conditions": null}),
    ));
    assert!(s.work.status.unwrap().conditions.is_empty());
}

#[test]
fn deleted_condition_marks_the_end_of_a_deletion() {
    let data = json!({"conditions": [{"type": "Deleted", "status": "True", "lastTransitionTime": "2025-12-16T06:00:17Z", "reason": "ManifestsDeleted", "message": "The manifests are deleted from the cluster cluster-west-1"}]});
    assert!(decoded(&status_event(Attr::CeInteger(2), data)).deleted);
}

#[test]
fn heartbeat_and_foreign_types_are_not_errors() {
    let hb = CloudEvent {
        id: "x".into(),
        spec_version: "1.0".into(),
        r#type: HEARTBEAT_TYPE.into(),
        ..Default::default()
    };
    assert_eq!(decode(&hb).unwrap(), Received::Heartbeat);
    let other = CloudEvent {
        r#type: "io.example.something.else".into(),
        ..hb
    };
    assert!(matches!(decode(&other).unwrap(), Received::Ignored { .. }));
}

#[test]
fn missing_or_malformed_attributes_are_named() {
    let mut e = status_event(Attr::CeInteger(1), agent_status());
    e.attributes.remove("ce-resourceid");
    assert!(
        decode(&e)
            .unwrap_err()
            .to_string()
            .contains("ce-resourceid is missing")
    );

    let e = status_event(Attr::CeString("one".into()), agent_status());
    let err = decode(&e).unwrap_err().to_string();
    assert!(
        err.contains("ce-resourceversion") && err.contains("\"one\""),
        "{err}"
    );

    let mut e = status_event(Attr::CeInteger(1), agent_status());
    e.data = Some(Data::BinaryData(b"not json".to_vec()));
    let err = decode(&e).unwrap_err().to_string();
    assert!(err.contains("55c61e54"), "{err}");
}

#[test]
fn trace_context_goes_in_traceparent_and_in_maestros_logtracing_entries() {
    let mut event =
        encode_spec(&source(), SpecAction::Create, &sample_work(), 0, Utc::now()).unwrap();
    assert_eq!(string_attr(&event, "ce-logtracing"), "{}");
    assert!(!event.attributes.contains_key("ce-traceparent"));

    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    set_trace_context(&mut event, traceparent);
    assert_eq!(string_attr(&event, "ce-traceparent"), traceparent);
    let log_tracing: Value = serde_json::from_str(&string_attr(&event, "ce-logtracing")).unwrap();
    assert_eq!(
        log_tracing,
        json!({"logging.open-cluster-management.io/traceparent": traceparent})
    );
}
