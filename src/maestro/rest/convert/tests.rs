use super::*;
use crate::manifestwork::{DeletePropagationPolicy, UpdateStrategyType};
use pretty_assertions::assert_eq;
use serde_json::json;

fn fixture() -> ResourceBundle {
    serde_json::from_str(include_str!("../../../../tests/fixtures/rest/bundle.json")).unwrap()
}

#[test]
fn reference_bundle_becomes_the_work_the_go_client_would_build() {
    let work = fixture().to_manifest_work().unwrap();
    let m = &work.metadata;
    assert_eq!(
        m.name.as_deref(),
        Some("e44ec579-9646-549a-b679-db8d19d6da37")
    );
    assert_eq!(
        m.namespace.as_deref(),
        Some("7ff1a8f4-8811-49b4-8c19-9271bc51975e")
    );
    assert_eq!(
        m.uid.as_deref(),
        Some("55c61e54-a3f6-563d-9fec-b1fe297bdfdb")
    );
    // The stored "0" is replaced by the bundle version.
    assert_eq!(m.resource_version.as_deref(), Some("1"));
    assert_eq!(m.generation, Some(1));
    assert_eq!(
        m.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        Some("2025-12-13T13:32:30Z".to_string())
    );
    assert_eq!(
        m.labels
            .as_ref()
            .and_then(|l| l.get("maestro.resource.type"))
            .map(String::as_str),
        Some("2d18a7dc-c731-5753-8aa9-6b2f22e3b12b")
    );

    let spec = &work.spec;
    assert_eq!(spec.workload.manifests.len(), 1);
    assert_eq!(spec.workload.manifests[0].kind(), Some("Deployment"));
    assert_eq!(spec.delete_option, None);
    assert_eq!(spec.manifest_configs.len(), 1);
    let config = &spec.manifest_configs[0];
    assert_eq!(config.resource_identifier.resource, "deployments");
    assert_eq!(
        config.update_strategy.as_ref().map(|u| u.type_.clone()),
        Some(UpdateStrategyType::ServerSideApply)
    );

    let status = work.status.unwrap();
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Applied", "Available"]);
    let manifest = status.manifest(0).unwrap();
    assert_eq!(manifest.resource_meta.kind, "Deployment");
    assert!(manifest.is_condition_true("StatusFeedbackSynced", None));
    assert!(manifest.feedback("status").is_some());
}

#[test]
fn bare_bundle_takes_uid_and_namespace_from_id_and_consumer() {
    let bundle: ResourceBundle = serde_json::from_value(json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "cluster1",
        "version": 4, "metadata": {"name": "web"},
        "delete_option": {"propagationPolicy": "Orphan"},
        "deleted_at": "2025-12-13T13:40:00Z"
    }))
    .unwrap();
    let work = bundle.to_manifest_work().unwrap();
    assert_eq!(
        work.metadata.uid.as_deref(),
        Some("55c61e54-a3f6-563d-9fec-b1fe297bdfdb")
    );
    assert_eq!(work.metadata.namespace.as_deref(), Some("cluster1"));
    assert_eq!(work.metadata.resource_version.as_deref(), Some("4"));
    assert_eq!(
        work.spec.delete_option.map(|d| d.propagation_policy),
        Some(DeletePropagationPolicy::Orphan)
    );
    assert!(work.spec.workload.manifests.is_empty() && work.spec.manifest_configs.is_empty());
    assert!(work.status.is_none());
}

#[test]
fn metadata_namespace_and_uid_win_over_the_fallbacks() {
    let bundle: ResourceBundle = serde_json::from_value(json!({
        "id": "id-1", "consumer_name": "cluster1", "version": 1,
        "metadata": {"name": "web", "namespace": "other", "uid": "u-1",
                     "deletionTimestamp": "2025-12-13T13:40:00Z"},
        "status": {"ObservedVersion": 1, "SequenceID": "9", "conditions": null}
    }))
    .unwrap();
    let work = bundle.to_manifest_work().unwrap();
    assert_eq!(work.metadata.namespace.as_deref(), Some("other"));
    assert_eq!(work.metadata.uid.as_deref(), Some("u-1"));
    assert!(work.metadata.deletion_timestamp.is_some());
    let status = work.status.unwrap();
    assert!(status.conditions.is_empty() && status.resource_status.is_none());
}

#[test]
fn unreadable_parts_are_protocol_errors_naming_bundle_and_part() {
    let cases = [
        (
            json!({"manifests": [{"kind": "A"}, "not an object"]}),
            "manifests[1]",
        ),
        (json!({"metadata": {"labels": "x"}}), "metadata"),
        (
            json!({"manifest_configs": [{"resourceIdentifier": 3}]}),
            "manifest_configs[0]",
        ),
        (
            json!({"status": {"resourceStatus": [{"conditions": []}]}}),
            "status.resourceStatus[0]",
        ),
    ];
    for (extra, part) in cases {
        let mut value = json!({"id": "b-1", "version": 1});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let bundle: ResourceBundle = serde_json::from_value(value).unwrap();
        let e = bundle.to_manifest_work().unwrap_err();
        let Error::Protocol(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("resource bundle b-1") && m.contains(part),
            "{part}: {m}"
        );
    }
}
