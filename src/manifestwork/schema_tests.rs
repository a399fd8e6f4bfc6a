//! Checks the serde and schemars output of the ManifestWork types against
//! the real OCM CRD (a verbatim copy in tests/fixtures/manifestwork/).
//!
//! Plain JSON Schema misses the Kubernetes list rules
//! (`x-kubernetes-list-type: map | set`), so a small walker checks those.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResourceExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

const CRD_YAML: &str = include_str!(
    "../../tests/fixtures/manifestwork/0000_00_work.open-cluster-management.io_manifestworks.crd.yaml"
);

fn real_schema() -> Value {
    let crd: Value = serde_norway::from_str(CRD_YAML).unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "the CRD has one version, v1");
    assert_eq!(versions[0]["name"], "v1");
    versions[0]["schema"]["openAPIV3Schema"].clone()
}

fn generated_schema() -> Value {
    let crd = serde_json::to_value(ManifestWork::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Every JSON-Schema error of `instance`, as `path: message`.
fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(schema)
        .unwrap();
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// Violations of `x-kubernetes-list-type` `map` (unique key tuples, keys
/// present or defaulted) and `set` (unique items) anywhere in `instance`.
fn list_type_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    walk(schema, instance, "", &mut errors);
    errors
}

fn walk(schema: &Value, instance: &Value, path: &str, errors: &mut Vec<String>) {
    match instance {
        Value::Object(obj) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, value) in obj {
                match props.and_then(|p| p.get(key)) {
                    Some(sub) => walk(sub, value, &format!("{path}.{key}"), errors),
                    None => {
                        if let Some(extra) =
                            schema.get("additionalProperties").filter(|s| s.is_object())
                        {
                            walk(extra, value, &format!("{path}.{key}"), errors);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => check_list_map(schema, items, path, errors),
                Some("set") => check_list_set(items, path, errors),
                _ => {}
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn check_list_map(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<String>) {
    let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(!keys.is_empty(), "{path}: list-type map without map keys");
    let mut seen: HashMap<String, usize> = HashMap::new();
    'items: for (i, item) in items.iter().enumerate() {
        let mut tuple = Vec::new();
        for key in &keys {
            // The API server defaults a missing key before comparing.
            let default = &schema["items"]["properties"][*key]["default"];
            match item.get(*key).filter(|v| !v.is_null()) {
                Some(value) => tuple.push(value.clone()),
                None if !default.is_null() => tuple.push(default.clone()),
                None => {
                    errors.push(format!("{path}[{i}]: map key {key:?} is missing"));
                    continue 'items;
                }
            }
        }
        let id = Value::Array(tuple).to_string();
        match seen.get(&id) {
            Some(first) => errors.push(format!(
                "{path}[{i}]: duplicate map key {id}, first at {path}[{first}]"
            )),
            None => {
                seen.insert(id, i);
            }
        }
    }
}

fn check_list_set(items: &[Value], path: &str, errors: &mut Vec<String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        // Object keys serialise sorted, so equal items give equal text.
        let id = item.to_string();
        match seen.get(&id) {
            Some(first) => errors.push(format!(
                "{path}[{i}]: duplicate set item {id}, first at {path}[{first}]"
            )),
            None => {
                seen.insert(id, i);
            }
        }
    }
}

fn manifest(value: Value) -> Manifest {
    Manifest::from_value(value).unwrap()
}

fn condition(type_: &str, status: &str, reason: &str, generation: Option<i64>) -> Condition {
    serde_json::from_value(json!({
        "type": type_, "status": status, "reason": reason, "message": "",
        "lastTransitionTime": "2026-01-01T00:00:05Z", "observedGeneration": generation
    }))
    .unwrap()
}

fn minimal_work() -> ManifestWork {
    ManifestWork::for_consumer(
        "cluster1",
        "minimal",
        vec![manifest(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "default"},
            "data": {"a": "b"}
        }))],
    )
}

/// A work that sets every spec field the types offer.
fn full_work() -> ManifestWork {
    let mut work = ManifestWork::for_consumer(
        "cluster1",
        "hello-work",
        vec![
            manifest(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
            ),
            manifest(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
            })),
        ],
    );
    work.metadata.labels = Some(BTreeMap::from([("team".into(), "shop".into())]));
    work.spec.delete_option = Some(DeleteOption {
        propagation_policy: DeletePropagationPolicy::SelectivelyOrphan,
        selectively_orphan: Some(SelectivelyOrphan {
            orphaning_rules: vec![ResourceIdentifier::new("", "namespaces", "", "shop")],
        }),
        ttl_seconds_after_finished: Some(600),
    });
    work.spec.manifest_configs = vec![
        ManifestConfigOption {
            resource_identifier: ResourceIdentifier::new("apps", "deployments", "shop", "web"),
            feedback_rules: vec![
                FeedbackRule::well_known_status(),
                FeedbackRule::json_paths(vec![
                    JsonPath::new(
                        "available",
                        ".status.conditions[?(@.type==\"Available\")].status",
                    ),
                    JsonPath {
                        version: Some("v1".into()),
                        ..JsonPath::new("replicas", ".spec.replicas")
                    },
                ]),
            ],
            update_strategy: Some(UpdateStrategy {
                type_: UpdateStrategyType::ServerSideApply,
                server_side_apply: Some(ServerSideApplyConfig {
                    force: true,
                    field_manager: Some("work-agent-shop".into()),
                    ignore_fields: vec![
                        IgnoreField {
                            condition: IgnoreFieldsCondition::OnSpokeChange,
                            json_paths: vec![".spec.replicas".into()],
                            ..IgnoreField::default()
                        },
                        IgnoreField {
                            condition: IgnoreFieldsCondition::OnSpokePresent,
                            json_pointers: vec!["/metadata/annotations".into()],
                            jq_path_expressions: vec![".spec.template.metadata.labels".into()],
                            ..IgnoreField::default()
                        },
                    ],
                }),
            }),
            condition_rules: vec![
                ConditionRule {
                    condition: CONDITION_PROGRESSING.into(),
                    type_: ConditionRuleType::Cel,
                    cel_expressions: vec![
                        "object.status.updatedReplicas != object.spec.replicas".into(),
                    ],
                    message: Some("rolling out".into()),
                    message_expression: Some("result ? 'rolling' : 'done'".into()),
                },
                ConditionRule {
                    condition: CONDITION_COMPLETE.into(),
                    type_: ConditionRuleType::WellKnownConditions,
                    cel_expressions: vec![],
                    message: None,
                    message_expression: None,
                },
            ],
            feedback_scrape_type: Some(FeedbackScrapeType::Watch),
        },
        ManifestConfigOption {
            resource_identifier: ResourceIdentifier::new("", "namespaces", "", "*"),
            update_strategy: Some(UpdateStrategy {
                type_: UpdateStrategyType::CreateOnly,
                server_side_apply: None,
            }),
            feedback_scrape_type: Some(FeedbackScrapeType::Poll),
            ..ManifestConfigOption::default()
        },
    ];
    work.spec.executor = Some(ManifestWorkExecutor::service_account("shop", "deployer"));
    work
}

/// `full_work` as the agent reports it, with all four feedback value types.
fn work_with_status() -> ManifestWork {
    let mut work = full_work();
    work.metadata.generation = Some(3);
    let applied = condition(
        CONDITION_APPLIED,
        "True",
        "AppliedManifestComplete",
        Some(3),
    );
    work.status = Some(ManifestWorkStatus {
        conditions: vec![
            condition(
                CONDITION_APPLIED,
                "True",
                "AppliedManifestWorkComplete",
                Some(3),
            ),
            condition(CONDITION_AVAILABLE, "True", "ResourcesAvailable", Some(3)),
            condition(
                CONDITION_PROGRESSING,
                "False",
                "ConditionRulesAggregated",
                Some(3),
            ),
        ],
        resource_status: Some(ManifestResourceStatus {
            manifests: vec![
                ManifestCondition {
                    resource_meta: ManifestResourceMeta {
                        ordinal: 0,
                        version: "v1".into(),
                        kind: "Namespace".into(),
                        resource: "namespaces".into(),
                        name: "shop".into(),
                        ..ManifestResourceMeta::default()
                    },
                    status_feedback: StatusFeedbackResult::default(),
                    conditions: vec![applied.clone()],
                },
                ManifestCondition {
                    resource_meta: ManifestResourceMeta {
                        ordinal: 1,
                        group: "apps".into(),
                        version: "v1".into(),
                        kind: "Deployment".into(),
                        resource: "deployments".into(),
                        name: "web".into(),
                        namespace: "shop".into(),
                    },
                    status_feedback: StatusFeedbackResult {
                        values: vec![
                            FeedbackValue {
                                name: "ReadyReplicas".into(),
                                field_value: FieldValue::integer(2),
                            },
                            FeedbackValue {
                                name: "available".into(),
                                field_value: FieldValue::string("True"),
                            },
                            FeedbackValue {
                                name: "paused".into(),
                                field_value: FieldValue::boolean(false),
                            },
                            FeedbackValue {
                                name: "replicas".into(),
                                field_value: FieldValue::json_raw("{\"replicas\":2}"),
                            },
                        ],
                    },
                    conditions: vec![
                        applied,
                        condition(CONDITION_AVAILABLE, "True", "ResourceAvailable", None),
                        condition(
                            CONDITION_STATUS_FEEDBACK_SYNCED,
                            "True",
                            "StatusFeedbackSynced",
                            None,
                        ),
                    ],
                },
            ],
        }),
    });
    work
}

fn works_we_produce() -> Vec<(&'static str, Value)> {
    vec![
        ("minimal", serde_json::to_value(minimal_work()).unwrap()),
        ("full spec", serde_json::to_value(full_work()).unwrap()),
        (
            "with status",
            serde_json::to_value(work_with_status()).unwrap(),
        ),
    ]
}

#[test]
fn works_we_produce_pass_our_own_validation() {
    for work in [minimal_work(), full_work(), work_with_status()] {
        assert_eq!(validate_work(&work), Ok(()), "{:?}", work.metadata.name);
    }
}

/// Asserts that `schema` accepts every work we produce, list types too.
fn assert_accepts_works_we_produce(schema: &Value) {
    for (what, instance) in works_we_produce() {
        assert_eq!(
            schema_errors(schema, &instance),
            Vec::<String>::new(),
            "{what}"
        );
        assert_eq!(
            list_type_errors(schema, &instance),
            Vec::<String>::new(),
            "{what}"
        );
    }
}

#[test]
fn works_we_produce_validate_against_the_real_crd_schema() {
    assert_accepts_works_we_produce(&real_schema());
}

#[test]
fn the_real_crd_schema_refuses_what_the_api_server_refuses() {
    let schema = real_schema();
    let base = serde_json::to_value(full_work()).unwrap();
    type Breaker = fn(&mut Value);
    let cases: [(&str, Breaker); 4] = [
        ("/spec/deleteOption/propagationPolicy", |w| {
            w["spec"]["deleteOption"]["propagationPolicy"] = json!("Background")
        }),
        (
            "/spec/manifestConfigs/0/updateStrategy/serverSideApply/fieldManager",
            |w| {
                w["spec"]["manifestConfigs"][0]["updateStrategy"]["serverSideApply"]["fieldManager"] =
                    json!("maestro-agent")
            },
        ),
        ("/spec/manifestConfigs/1/resourceIdentifier", |w| {
            if let Some(id) = w["spec"]["manifestConfigs"][1]["resourceIdentifier"].as_object_mut()
            {
                id.remove("resource");
            }
        }),
        ("/spec/executor/subject/serviceAccount/name", |w| {
            w["spec"]["executor"]["subject"]["serviceAccount"]["name"] = json!("Deployer")
        }),
    ];
    for (path, break_it) in cases {
        let mut instance = base.clone();
        break_it(&mut instance);
        let errors = schema_errors(&schema, &instance);
        assert_eq!(errors.len(), 1, "{path}: {errors:?}");
        assert!(errors[0].starts_with(path), "{path}: {errors:?}");
    }
}

#[test]
fn list_map_walker_catches_duplicate_keys() {
    let schema = real_schema();
    let mut work = work_with_status();
    let config = &mut work.spec.manifest_configs[0];
    config.feedback_rules[1].json_paths[1].name = "available".into();
    if let Some(ssa) = config
        .update_strategy
        .as_mut()
        .and_then(|s| s.server_side_apply.as_mut())
    {
        ssa.ignore_fields[0].condition = IgnoreFieldsCondition::OnSpokePresent;
    }
    if let Some(status) = work.status.as_mut() {
        status.conditions[1].type_ = CONDITION_APPLIED.into();
    }
    let instance = serde_json::to_value(&work).unwrap();

    assert_eq!(schema_errors(&schema, &instance), Vec::<String>::new());
    assert_eq!(
        list_type_errors(&schema, &instance),
        [
            ".spec.manifestConfigs[0].feedbackRules[1].jsonPaths[1]: duplicate map key [\"available\"], first at .spec.manifestConfigs[0].feedbackRules[1].jsonPaths[0]",
            ".spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[1]: duplicate map key [\"OnSpokePresent\"], first at .spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[0]",
            ".status.conditions[1]: duplicate map key [\"Applied\"], first at .status.conditions[0]",
        ]
    );
    // The client-side validator refuses the same spec duplicates.
    let errs = validate_work(&work).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.manifestConfigs[0].feedbackRules[1].jsonPaths[1].name",
            "spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[1].condition",
        ]
    );
}

#[test]
fn list_map_walker_defaults_missing_keys_or_reports_them() {
    let schema = real_schema();
    let mut instance = serde_json::to_value(full_work()).unwrap();
    let config = &mut instance["spec"]["manifestConfigs"][0];
    // ignoreFields[1] is OnSpokePresent; [0] without a condition defaults
    // to OnSpokePresent too, as the API server would default it.
    if let Some(field) =
        config["updateStrategy"]["serverSideApply"]["ignoreFields"][0].as_object_mut()
    {
        field.remove("condition");
    }
    if let Some(path) = config["feedbackRules"][1]["jsonPaths"][0].as_object_mut() {
        path.remove("name");
    }
    assert_eq!(
        list_type_errors(&schema, &instance),
        [
            ".spec.manifestConfigs[0].feedbackRules[1].jsonPaths[0]: map key \"name\" is missing",
            ".spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[1]: duplicate map key [\"OnSpokePresent\"], first at .spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[0]",
        ]
    );
}

#[test]
fn manifest_configs_are_not_a_list_map_in_the_crd() {
    // The CRD does not key manifestConfigs by resourceIdentifier: two
    // configs for one resource are legal and the agent takes the first
    // match per setting.
    let schema = real_schema();
    let configs = &schema["properties"]["spec"]["properties"]["manifestConfigs"];
    assert_eq!(configs["type"], "array");
    assert!(configs.get("x-kubernetes-list-type").is_none());

    let mut work = full_work();
    let twin = work.spec.manifest_configs[0].clone();
    work.spec.manifest_configs.push(twin);
    let instance = serde_json::to_value(&work).unwrap();
    assert_eq!(schema_errors(&schema, &instance), Vec::<String>::new());
    assert_eq!(list_type_errors(&schema, &instance), Vec::<String>::new());
}

#[test]
fn list_set_walker_catches_duplicate_items() {
    // The ManifestWork CRD declares no set, so use a small schema.
    let schema = json!({
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "nested": {"type": "object", "additionalProperties": {
                "type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "object"}
            }}
        }
    });
    let ok = json!({"tags": ["a", "b"], "nested": {"x": [{"a": 1, "b": 2}, {"a": 2}]}});
    assert_eq!(list_type_errors(&schema, &ok), Vec::<String>::new());
    let bad =
        json!({"tags": ["a", "b", "a"], "nested": {"x": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}});
    assert_eq!(
        list_type_errors(&schema, &bad),
        [
            ".nested.x[1]: duplicate set item {\"a\":1,\"b\":2}, first at .nested.x[0]",
            ".tags[2]: duplicate set item \"a\", first at .tags[0]",
        ]
    );
}

/// Every property path below `root`, with the schema found there.
fn properties(schema: &Value) -> BTreeMap<String, Value> {
    fn collect(schema: &Value, path: String, out: &mut BTreeMap<String, Value>) {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (key, sub) in props {
                let sub_path = format!("{path}.{key}");
                out.insert(sub_path.clone(), sub.clone());
                collect(sub, sub_path, out);
            }
        }
        if let Some(items) = schema.get("items") {
            collect(items, format!("{path}[]"), out);
        }
    }
    let mut out = BTreeMap::new();
    collect(schema, String::new(), &mut out);
    out
}

fn enum_values(schema: &Value) -> Option<BTreeSet<String>> {
    schema.get("enum").and_then(Value::as_array).map(|values| {
        values
            .iter()
            .filter(|v| !v.is_null())
            .map(Value::to_string)
            .collect()
    })
}

#[test]
fn generated_schema_has_the_real_crd_properties_enums_and_list_types() {
    let real = properties(&real_schema());
    let ours = properties(&generated_schema());
    // Kubernetes validates apiVersion, kind and metadata itself, so kube
    // leaves them out of derived schemas.
    let real_paths: BTreeSet<&String> = real
        .keys()
        .filter(|p| p.starts_with(".spec") || p.starts_with(".status"))
        .collect();
    let our_paths: BTreeSet<&String> = ours.keys().collect();
    assert_eq!(our_paths, real_paths);

    for (path, real_schema) in &real {
        let Some(our_schema) = ours.get(path) else {
            continue;
        };
        if path.contains("conditions[].") {
            // k8s-openapi's Condition schema carries no enums or patterns.
            continue;
        }
        assert_eq!(
            our_schema.get("type"),
            real_schema.get("type"),
            "type of {path}"
        );
        assert_eq!(
            enum_values(our_schema),
            enum_values(real_schema),
            "enum of {path}"
        );
        for key in [
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "pattern",
            "maxLength",
        ] {
            assert_eq!(our_schema.get(key), real_schema.get(key), "{key} of {path}");
        }
        if let Some(default) = real_schema.get("default") {
            assert_eq!(
                our_schema.get("default"),
                Some(default),
                "default of {path}"
            );
        }
    }
}

#[test]
fn generated_schema_is_structural() {
    let schema = generated_schema();
    let mut problems = Vec::new();
    fn scan(value: &Value, path: &str, problems: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, sub) in map {
                    if [
                        "anyOf",
                        "oneOf",
                        "allOf",
                        "not",
                        "$ref",
                        "$defs",
                        "definitions",
                    ]
                    .contains(&key.as_str())
                    {
                        problems.push(format!("{path}: {key}"));
                    }
                    if key == "enum" && sub.as_array().is_some_and(|v| v.iter().any(Value::is_null))
                    {
                        problems.push(format!("{path}: null in enum"));
                    }
                    scan(sub, &format!("{path}/{key}"), problems);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    scan(item, &format!("{path}/{i}"), problems);
                }
            }
            _ => {}
        }
    }
    scan(&schema, "", &mut problems);
    assert_eq!(problems, Vec::<String>::new());

    let items =
        &schema["properties"]["spec"]["properties"]["workload"]["properties"]["manifests"]["items"];
    assert_eq!(
        items,
        &json!({
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "x-kubernetes-preserve-unknown-fields": true
        })
    );
}

#[test]
fn works_we_produce_validate_against_the_generated_schema() {
    assert_accepts_works_we_produce(&generated_schema());
}

#[test]
fn plain_schemars_spec_schema_lists_the_spec_fields() {
    let schema = serde_json::to_value(schemars::schema_for!(ManifestWorkSpec)).unwrap();
    let props: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        props,
        BTreeSet::from(["workload", "deleteOption", "manifestConfigs", "executor"])
    );
}
