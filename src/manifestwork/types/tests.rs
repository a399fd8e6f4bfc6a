use super::*;
use kube::Resource;
use pretty_assertions::assert_eq;
use serde_json::json;

/// The resource bundle of the Maestro REST reference example, laid out
/// as the ManifestWork the Go client rebuilds from it.
fn rest_example_work() -> Value {
    json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {
            "creationTimestamp": "2025-12-13T13:32:30Z",
            "labels": {"maestro.resource.type": "2d18a7dc-c731-5753-8aa9-6b2f22e3b12b"},
            "name": "e44ec579-9646-549a-b679-db8d19d6da37",
            "namespace": "7ff1a8f4-8811-49b4-8c19-9271bc51975e",
            "resourceVersion": "0",
            "uid": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb"
        },
        "spec": {
            "workload": {"manifests": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "maestro-e2e-upgrade-test", "namespace": "default"},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "nginx"}}, "strategy": {},
                         "template": {"metadata": {"labels": {"app": "nginx"}},
                                      "spec": {"containers": [{"image": "quay.io/nginx/nginx-unprivileged:latest",
                                                               "imagePullPolicy": "IfNotPresent", "name": "nginx", "resources": {}}]}}},
                "status": {}
            }]},
            "manifestConfigs": [{
                "feedbackRules": [{"jsonPaths": [{"name": "status", "path": ".status"}], "type": "JSONPaths"}],
                "resourceIdentifier": {"group": "apps", "name": "maestro-e2e-upgrade-test", "namespace": "default", "resource": "deployments"},
                "updateStrategy": {"serverSideApply": {"fieldManager": "maestro-agent", "force": true}, "type": "ServerSideApply"}
            }]
        },
        "status": {
            "conditions": [
                {"lastTransitionTime": "2025-12-13T13:32:30Z", "message": "Apply manifest work complete", "observedGeneration": 1, "reason": "AppliedManifestWorkComplete", "status": "True", "type": "Applied"},
                {"lastTransitionTime": "2025-12-13T13:32:30Z", "message": "All resources are available", "observedGeneration": 1, "reason": "ResourcesAvailable", "status": "True", "type": "Available"}
            ],
            "resourceStatus": {"manifests": [{
                "conditions": [
                    {"lastTransitionTime": "2025-12-13T13:32:30Z", "message": "Apply manifest complete", "reason": "AppliedManifestComplete", "status": "True", "type": "Applied"},
                    {"lastTransitionTime": "2025-12-13T13:32:30Z", "message": "Resource is available", "reason": "ResourceAvailable", "status": "True", "type": "Available"},
                    {"lastTransitionTime": "2025-12-13T13:32:30Z", "message": "", "reason": "StatusFeedbackSynced", "status": "True", "type": "StatusFeedbackSynced"}
                ],
                "resourceMeta": {"group": "apps", "kind": "Deployment", "name": "maestro-e2e-upgrade-test", "namespace": "default", "ordinal": 0, "resource": "deployments", "version": "v1"},
                "statusFeedback": {"values": [{"fieldValue": {"jsonRaw": "{\"observedGeneration\":1}", "type": "JsonRaw"}, "name": "status"}]}
            }]}
        }
    })
}

fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(value: &Value) -> (T, Value) {
    let typed: T = serde_json::from_value(value.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    (typed, back)
}

#[test]
fn rest_example_round_trips_unchanged() {
    let input = rest_example_work();
    let (work, back) = round_trip::<ManifestWork>(&input);
    assert_eq!(back, input);

    let config = &work.spec.manifest_configs[0];
    assert_eq!(config.resource_identifier.resource, "deployments");
    assert_eq!(config.feedback_rules[0].type_, FeedbackType::JsonPaths);
    let strategy = config.update_strategy.as_ref().unwrap();
    assert_eq!(strategy.type_, UpdateStrategyType::ServerSideApply);
    assert_eq!(
        strategy
            .server_side_apply
            .as_ref()
            .unwrap()
            .field_manager
            .as_deref(),
        Some("maestro-agent")
    );
    let status = work.status.as_ref().unwrap();
    assert!(status.is_condition_true(CONDITION_APPLIED, Some(1)));
    let manifest = status.manifest(0).unwrap();
    assert_eq!(manifest.resource_meta.kind, "Deployment");
    assert_eq!(
        manifest.feedback("status").and_then(FieldValue::to_json),
        Some(json!({"observedGeneration": 1}))
    );
}

#[test]
fn all_four_feedback_value_types_round_trip() {
    let input = json!({
        "resourceMeta": {"ordinal": 1, "group": "apps", "version": "v1", "kind": "Deployment",
                         "resource": "deployments", "name": "hello", "namespace": "default"},
        "statusFeedback": {"values": [
            {"name": "ReadyReplicas", "fieldValue": {"type": "Integer", "integer": 3}},
            {"name": "available", "fieldValue": {"type": "String", "string": "True"}},
            {"name": "paused", "fieldValue": {"type": "Boolean", "boolean": false}},
            {"name": "conditions", "fieldValue": {"type": "JsonRaw", "jsonRaw": "[{\"type\":\"Available\"}]"}}
        ]},
        "conditions": []
    });
    let (manifest, back) = round_trip::<ManifestCondition>(&input);
    assert_eq!(back, input);
    assert_eq!(
        manifest.feedback("ReadyReplicas"),
        Some(&FieldValue::integer(3))
    );
    assert_eq!(
        manifest.feedback("available"),
        Some(&FieldValue::string("True"))
    );
    assert_eq!(
        manifest.feedback("paused"),
        Some(&FieldValue::boolean(false))
    );
    assert_eq!(
        manifest
            .feedback("conditions")
            .and_then(FieldValue::to_json),
        Some(json!([{"type": "Available"}]))
    );
    assert_eq!(manifest.feedback("missing"), None);
}

#[test]
fn absent_optional_fields_stay_absent() {
    let cm = Manifest::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    )
    .unwrap();
    let work = ManifestWork::for_consumer("cluster1", "hello", vec![cm]);
    assert_eq!(
        serde_json::to_value(&work).unwrap(),
        json!({
            "apiVersion": "work.open-cluster-management.io/v1",
            "kind": "ManifestWork",
            "metadata": {"name": "hello", "namespace": "cluster1"},
            "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]}}
        })
    );
    assert_eq!(
        serde_json::to_value(ManifestWorkSpec::default()).unwrap(),
        json!({})
    );

    let config = ManifestConfigOption {
        resource_identifier: ResourceIdentifier::new("", "configmaps", "", "c"),
        feedback_rules: vec![FeedbackRule::json_paths(vec![JsonPath::new(
            "data", ".data",
        )])],
        update_strategy: Some(UpdateStrategy::default()),
        ..ManifestConfigOption::default()
    };
    assert_eq!(
        serde_json::to_value(&config).unwrap(),
        json!({
            "resourceIdentifier": {"resource": "configmaps", "name": "c"},
            "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "data", "path": ".data"}]}],
            "updateStrategy": {"type": "Update"}
        })
    );
    assert_eq!(
        serde_json::to_value(DeleteOption::default()).unwrap(),
        json!({"propagationPolicy": "Foreground"})
    );
    assert_eq!(
        serde_json::to_value(ManifestWorkStatus::default()).unwrap(),
        json!({})
    );
}

#[test]
fn reference_spec_example_decodes_into_typed_fields() {
    let yaml = r#"
workload:
  manifests:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: hello-cfg, namespace: default}, data: {greeting: hi}}
deleteOption:
  propagationPolicy: SelectivelyOrphan
  selectivelyOrphans:
    orphaningRules:
    - {group: "", resource: configmaps, namespace: default, name: hello-cfg}
  ttlSecondsAfterFinished: 300
manifestConfigs:
- resourceIdentifier: {group: apps, resource: deployments, namespace: default, name: hello}
  feedbackRules:
  - type: WellKnownStatus
  - type: JSONPaths
    jsonPaths:
    - {name: available, path: '.status.conditions[?(@.type=="Available")].status', version: v1}
  updateStrategy:
    type: ServerSideApply
    serverSideApply:
      force: true
      fieldManager: work-agent-myapp
      ignoreFields:
      - condition: OnSpokeChange
        jsonPaths: [".spec.replicas"]
  conditionRules:
  - condition: Progressing
    type: CEL
    celExpressions: ["object.status.updatedReplicas != object.spec.replicas"]
    message: rolling out
  feedbackScrapeType: Watch
executor:
  subject:
    type: ServiceAccount
    serviceAccount: {namespace: default, name: my-sa}
"#;
    let spec: ManifestWorkSpec = serde_norway::from_str(yaml).unwrap();
    let delete = spec.delete_option.as_ref().unwrap();
    assert_eq!(
        delete.propagation_policy,
        DeletePropagationPolicy::SelectivelyOrphan
    );
    assert_eq!(delete.ttl_seconds_after_finished, Some(300));
    assert_eq!(
        delete.selectively_orphan.as_ref().unwrap().orphaning_rules,
        [ResourceIdentifier::new(
            "",
            "configmaps",
            "default",
            "hello-cfg"
        )]
    );
    let config = &spec.manifest_configs[0];
    assert_eq!(
        config.feedback_rules[1].json_paths[0].version.as_deref(),
        Some("v1")
    );
    let ssa = config
        .update_strategy
        .as_ref()
        .unwrap()
        .server_side_apply
        .as_ref()
        .unwrap();
    assert_eq!(
        ssa.ignore_fields[0].condition,
        IgnoreFieldsCondition::OnSpokeChange
    );
    assert_eq!(config.condition_rules[0].type_, ConditionRuleType::Cel);
    assert_eq!(config.feedback_scrape_type, Some(FeedbackScrapeType::Watch));
    assert_eq!(
        spec.executor,
        Some(ManifestWorkExecutor::service_account("default", "my-sa"))
    );

    let again: ManifestWorkSpec =
        serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
    assert_eq!(again, spec);
}

#[test]
fn unknown_values_from_newer_servers_decode_and_survive_a_round_trip() {
    let input = json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": "w", "namespace": "c"},
        "spec": {
            "deleteOption": {"propagationPolicy": "Background"},
            "manifestConfigs": [{
                "resourceIdentifier": {"resource": "deployments", "name": "x"},
                "feedbackRules": [{"type": "Everything"}],
                "updateStrategy": {"type": "Replace"},
                "conditionRules": [{"condition": "Ready", "type": "Rego"}],
                "feedbackScrapeType": "Push"
            }],
            "executor": {"subject": {"type": "User"}}
        },
        "status": {
            "conditions": [{"type": "Teleported", "status": "True", "reason": "Beam", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "resourceStatus": {"manifests": [{
                "resourceMeta": {"ordinal": 0, "group": "", "version": "", "kind": "", "resource": "", "name": "", "namespace": ""},
                "statusFeedback": {"values": [{"name": "ratio", "fieldValue": {"type": "Float", "float": 0.5}}]},
                "conditions": []
            }]}
        }
    });
    let work: ManifestWork = serde_json::from_value(input.clone()).unwrap();
    let config = &work.spec.manifest_configs[0];
    assert_eq!(
        config.update_strategy.as_ref().unwrap().type_,
        UpdateStrategyType::Unknown("Replace".into())
    );
    assert!(!config.feedback_rules[0].type_.is_known());
    let status = work.status.as_ref().unwrap();
    assert!(status.is_condition_true("Teleported", None));
    let value = status.manifest(0).unwrap().feedback("ratio").unwrap();
    assert_eq!(value.type_, ValueType::Unknown("Float".into()));
    assert_eq!(value.to_json(), None);

    // The unknown member `float` is dropped, like any unknown field;
    // every unknown enum value is written back as it came.
    let mut expected = input;
    expected["status"]["resourceStatus"]["manifests"][0]["statusFeedback"]["values"][0]["fieldValue"] =
        json!({"type": "Float"});
    assert_eq!(serde_json::to_value(&work).unwrap(), expected);
}

#[test]
fn go_nulls_for_nil_slices_decode_as_empty() {
    let spec: ManifestWorkSpec = serde_json::from_value(json!({
        "workload": {"manifests": null},
        "manifestConfigs": [{
            "resourceIdentifier": {"group": "", "resource": "jobs", "name": "j", "namespace": ""},
            "conditionRules": [{"condition": "Complete", "type": "WellKnownConditions",
                                "celExpressions": null, "message": "", "messageExpression": ""}]
        }]
    }))
    .unwrap();
    assert!(spec.workload.manifests.is_empty());
    assert!(
        spec.manifest_configs[0].condition_rules[0]
            .cel_expressions
            .is_empty()
    );

    let manifest: ManifestCondition =
        serde_json::from_value(json!({"resourceMeta": {"ordinal": 2}, "conditions": null}))
            .unwrap();
    assert_eq!(manifest.resource_meta.ordinal, 2);
    assert!(manifest.conditions.is_empty());
    let status: ManifestWorkStatus = serde_json::from_value(json!({"conditions": null})).unwrap();
    assert!(status.conditions.is_empty());
}

fn condition(type_: &str, status: &str, generation: Option<i64>) -> Condition {
    serde_json::from_value(json!({
        "type": type_, "status": status, "reason": "R", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation
    }))
    .unwrap()
}

#[test]
fn is_condition_true_checks_status_and_generation() {
    let status = ManifestWorkStatus {
        conditions: vec![
            condition(CONDITION_APPLIED, "True", Some(2)),
            condition(CONDITION_AVAILABLE, "False", Some(2)),
            condition(CONDITION_COMPLETE, "True", None),
        ],
        resource_status: None,
    };
    assert_eq!(
        status
            .condition(CONDITION_APPLIED)
            .map(|c| c.status.as_str()),
        Some("True")
    );
    assert!(status.condition(CONDITION_DEGRADED).is_none());

    assert!(status.is_condition_true(CONDITION_APPLIED, None));
    assert!(status.is_condition_true(CONDITION_APPLIED, Some(2)));
    assert!(
        !status.is_condition_true(CONDITION_APPLIED, Some(3)),
        "stale generation"
    );
    assert!(
        !status.is_condition_true(CONDITION_AVAILABLE, None),
        "False"
    );
    assert!(
        !status.is_condition_true(CONDITION_DEGRADED, None),
        "absent"
    );
    assert!(status.is_condition_true(CONDITION_COMPLETE, None));
    assert!(
        !status.is_condition_true(CONDITION_COMPLETE, Some(1)),
        "no generation recorded"
    );
}

#[test]
fn manifest_accessors_read_identity_fields() {
    let m = Manifest::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"}
    }))
    .unwrap();
    assert_eq!(m.api_version(), Some("apps/v1"));
    assert_eq!(m.kind(), Some("Deployment"));
    assert_eq!(m.name(), Some("web"));
    assert_eq!(m.namespace(), Some("shop"));
    let key = m.key();
    assert_eq!(
        key,
        ManifestKey {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into()
        }
    );
    assert_eq!(key.to_string(), "apps/v1 Deployment shop/web");

    let cluster_scoped = Manifest::from_value(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    )
    .unwrap();
    assert_eq!(cluster_scoped.namespace(), None);
    assert_eq!(cluster_scoped.key().to_string(), "v1 Namespace shop");

    let empty = Manifest::default();
    assert_eq!((empty.api_version(), empty.name()), (None, None));
    assert_eq!(empty.key().name, "");
}

#[test]
fn a_manifest_must_be_an_object() {
    assert_eq!(
        Manifest::from_value(json!([1])),
        Err(ManifestError::NotAnObject("an array"))
    );
    assert!(serde_json::from_value::<Manifest>(json!("text")).is_err());
    assert!(Manifest::try_from(json!({})).is_ok());
}

#[test]
fn encoded_len_is_the_compact_json_size() {
    let m = Manifest::from_value(json!({"kind": "ConfigMap", "data": {"k": "välue \"quoted\""}}))
        .unwrap();
    assert_eq!(m.encoded_len(), serde_json::to_vec(&m).unwrap().len());
    assert_eq!(Manifest::default().encoded_len(), 2);
}

#[test]
fn constants_match_the_derived_resource() {
    assert_eq!(ManifestWork::api_version(&()), MANIFESTWORK_API_VERSION);
    assert_eq!(ManifestWork::kind(&()), MANIFESTWORK_KIND);
    assert_eq!(ManifestWork::group(&()), MANIFESTWORK_GROUP);
    assert_eq!(ManifestWork::version(&()), MANIFESTWORK_VERSION);
    assert_eq!(ManifestWork::plural(&()), "manifestworks");
}

#[test]
fn for_consumer_puts_the_work_in_the_consumer_namespace() {
    let work = ManifestWork::for_consumer("cluster1", "hello", vec![Manifest::default()]);
    assert_eq!(work.consumer(), Some("cluster1"));
    assert_eq!(work.metadata.name.as_deref(), Some("hello"));
    assert_eq!(work.spec.workload.manifests.len(), 1);
    assert!(work.status.is_none());
}

#[test]
fn string_enums_map_known_and_unknown_text() {
    assert_eq!(FeedbackType::from("JSONPaths"), FeedbackType::JsonPaths);
    assert_eq!(ConditionRuleType::from("CEL"), ConditionRuleType::Cel);
    assert_eq!(
        UpdateStrategyType::from("update"),
        UpdateStrategyType::Unknown("update".into())
    );
    assert_eq!(UpdateStrategyType::from("update").as_str(), "update");
    assert_eq!(DeletePropagationPolicy::default().to_string(), "Foreground");
    assert_eq!(
        ValueType::VALUES,
        ["Integer", "String", "Boolean", "JsonRaw"]
    );
}
