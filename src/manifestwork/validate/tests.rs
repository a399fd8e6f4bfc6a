use super::*;
use crate::manifestwork::{
    ConditionRule, FeedbackRule, IgnoreField, IgnoreFieldsCondition, JsonPath,
    ManifestWorkExecutorSubject, SelectivelyOrphan, ServerSideApplyConfig, UpdateStrategy,
    UpdateStrategyType,
};
use serde_json::json;

fn manifest(value: Value) -> Manifest {
    Manifest::from_value(value).unwrap()
}

fn config_map(name: &str) -> Manifest {
    manifest(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": "v"}
    }))
}

fn work() -> ManifestWork {
    ManifestWork::for_consumer("cluster-west-1", "hello", vec![config_map("hello-cfg")])
}

fn errors_of(work: &ManifestWork) -> ValidationErrors {
    validate_work(work).expect_err("work should be refused")
}

/// The single error of `work`, which must be about `field`.
fn single_error(work: &ManifestWork, field: &str) -> FieldError {
    let errs = errors_of(work);
    assert_eq!(errs.len(), 1, "{errs}");
    let err = errs.0[0].clone();
    assert_eq!(err.field, field, "{errs}");
    err
}

fn manifest_errors(manifests: Vec<Manifest>) -> ValidationErrors {
    validate_manifests(&manifests).expect_err("manifests should be refused")
}

fn single_manifest_error(m: Manifest, field: &str) -> FieldError {
    let errs = manifest_errors(vec![m]);
    assert_eq!(errs.len(), 1, "{errs}");
    assert_eq!(errs.0[0].field, field, "{errs}");
    errs.0[0].clone()
}

fn config(resource: &str, name: &str) -> ManifestConfigOption {
    ManifestConfigOption {
        resource_identifier: ResourceIdentifier::new("apps", resource, "default", name),
        ..ManifestConfigOption::default()
    }
}

#[test]
fn a_plain_work_is_valid() {
    assert_eq!(validate_work(&work()), Ok(()));
}

#[test]
fn display_joins_field_and_message_pairs() {
    let errs = ValidationErrors(vec![
        FieldError {
            field: "a".into(),
            message: "x".into(),
        },
        FieldError {
            field: "b".into(),
            message: "y".into(),
        },
    ]);
    assert_eq!(errs.to_string(), "a: x; b: y");
    assert_eq!(errs.iter().count(), 2);
    assert!(!errs.is_empty());
}

#[test]
fn work_namespace_is_required_and_a_label() {
    let mut w = work();
    w.metadata.namespace = None;
    let err = single_error(&w, "metadata.namespace");
    assert!(err.message.contains("consumer"), "{err}");

    w.metadata.namespace = Some("Cluster_1".into());
    let err = single_error(&w, "metadata.namespace");
    assert!(err.message.contains("lower case"), "{err}");
}

#[test]
fn work_name_is_a_dns_label_of_at_most_63_characters() {
    let mut w = work();
    w.metadata.name = Some("a".repeat(63));
    assert_eq!(validate_work(&w), Ok(()));
    w.metadata.name = Some("a".repeat(64));
    let err = single_error(&w, "metadata.name");
    assert!(err.message.contains("63"), "{err}");
    w.metadata.name = Some("my.work".into());
    single_error(&w, "metadata.name");
    w.metadata.name = None;
    w.metadata.generate_name = Some("hello-".into());
    let err = single_error(&w, "metadata.name");
    assert!(err.message.contains("generateName"), "{err}");
}

#[test]
fn work_labels_annotations_and_finalizers_follow_kubernetes_rules() {
    let mut w = work();
    w.metadata.labels = Some(BTreeMap::from([
        ("app.kubernetes.io/name".into(), "hello".into()),
        ("tier".into(), "".into()),
    ]));
    w.metadata.annotations = Some(BTreeMap::from([(
        "Example.COM/Note".into(),
        "any text at all".into(),
    )]));
    w.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    assert_eq!(validate_work(&w), Ok(()));

    w.metadata.labels = Some(BTreeMap::from([("bad key".into(), "ok".into())]));
    let err = single_error(&w, "metadata.labels");
    assert!(err.message.contains("\"bad key\""), "{err}");

    w.metadata.labels = Some(BTreeMap::from([("ok".into(), "not ok!".into())]));
    let err = single_error(&w, "metadata.labels");
    assert!(err.message.contains("\"not ok!\""), "{err}");

    w.metadata.labels = None;
    w.metadata.annotations = Some(BTreeMap::from([("a/b/c".into(), "x".into())]));
    single_error(&w, "metadata.annotations");

    w.metadata.annotations = None;
    w.metadata.finalizers = Some(vec!["orphan".into(), "foregroundDeletion".into()]);
    let err = single_error(&w, "metadata.finalizers");
    assert!(err.message.contains("cannot both"), "{err}");
}

#[test]
fn manifests_must_not_be_empty() {
    let err = single_manifest_error_list(vec![], MANIFESTS);
    assert!(err.message.contains("at least one"), "{err}");
}

fn single_manifest_error_list(manifests: Vec<Manifest>, field: &str) -> FieldError {
    let errs = manifest_errors(manifests);
    assert_eq!(errs.len(), 1, "{errs}");
    assert_eq!(errs.0[0].field, field, "{errs}");
    errs.0[0].clone()
}

fn sized_config_map(name: &str, data_len: usize) -> Manifest {
    manifest(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"k": "x".repeat(data_len)}
    }))
}

#[test]
fn total_manifest_size_is_limited_to_500_kib_and_named() {
    let overhead = sized_config_map("a", 0).encoded_len();
    let exact = vec![
        sized_config_map("a", MAX_MANIFESTS_BYTES / 2 - overhead),
        sized_config_map("b", MAX_MANIFESTS_BYTES / 2 - overhead),
    ];
    assert_eq!(
        exact.iter().map(Manifest::encoded_len).sum::<usize>(),
        MAX_MANIFESTS_BYTES
    );
    assert_eq!(validate_manifests(&exact), Ok(()));

    let over = vec![
        sized_config_map("a", MAX_MANIFESTS_BYTES / 2 - overhead),
        sized_config_map("b", MAX_MANIFESTS_BYTES / 2 - overhead + 1),
    ];
    let err = single_manifest_error_list(over, MANIFESTS);
    assert!(
        err.message
            .contains(&format!("{} bytes", MAX_MANIFESTS_BYTES + 1)),
        "{err}"
    );
    assert!(err.message.contains("500 KiB"), "{err}");
}

#[test]
fn api_version_needs_a_subdomain_group_and_a_dns1035_version() {
    for ok in ["v1", "apps/v1", "cert-manager.io/v1beta1"] {
        let m = manifest(json!({"apiVersion": ok, "kind": "X", "metadata": {"name": "n"}}));
        assert_eq!(validate_manifests(&[m]), Ok(()), "{ok}");
    }
    let field = "spec.workload.manifests[0].apiVersion";
    for (bad, why) in [
        ("1v", "start with a lower case letter"),
        ("Apps/v1", "group \"Apps\""),
        ("/v1", "group before '/'"),
        ("apps/", "version must not be empty"),
        ("a/b/c", "\"group/version\""),
    ] {
        let m = manifest(json!({"apiVersion": bad, "kind": "X", "metadata": {"name": "n"}}));
        let err = single_manifest_error(m, field);
        assert!(err.message.contains(why), "{bad}: {err}");
    }
    let missing = manifest(json!({"kind": "X", "metadata": {"name": "n"}}));
    let err = single_manifest_error(missing, field);
    assert!(err.message.contains("is required"), "{err}");
    let number = manifest(json!({"apiVersion": 1, "kind": "X", "metadata": {"name": "n"}}));
    let err = single_manifest_error(number, field);
    assert!(err.message.contains("must be a string"), "{err}");
}

#[test]
fn kind_and_metadata_name_are_required() {
    let m = manifest(json!({"apiVersion": "v1", "metadata": {"name": "n"}}));
    single_manifest_error(m, "spec.workload.manifests[0].kind");
    let m = manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}}),
    );
    single_manifest_error(m, "spec.workload.manifests[0].metadata.name");
    let m = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap"}));
    single_manifest_error(m, "spec.workload.manifests[0].metadata.name");
    let m = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}));
    single_manifest_error(m, "spec.workload.manifests[0].metadata");
}

#[test]
fn manifest_namespace_must_be_a_dns_label_when_set() {
    let m = manifest(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": ""}}),
    );
    assert_eq!(validate_manifests(&[m]), Ok(()));
    let m = manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "namespace": "my.ns"}}),
    );
    single_manifest_error(m, "spec.workload.manifests[0].metadata.namespace");
}

#[test]
fn server_owned_metadata_fields_are_refused() {
    for (key, value) in [
        ("generateName", json!("x-")),
        ("resourceVersion", json!("12")),
        ("deletionGracePeriodSeconds", json!(0)),
    ] {
        let m = manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", key: value}}),
        );
        let err = single_manifest_error(m, &format!("spec.workload.manifests[0].metadata.{key}"));
        assert!(err.message.contains("must not be set"), "{err}");
    }
    // Empty values are what Go treats as unset.
    let m = manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "n", "generateName": "", "resourceVersion": ""}}));
    assert_eq!(validate_manifests(&[m]), Ok(()));
}

#[test]
fn manifest_labels_annotations_and_finalizers_are_checked() {
    let m = |meta: Value| {
        let mut meta = meta;
        meta["name"] = json!("n");
        manifest(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}))
    };
    let good =
        m(json!({"labels": {"a.b/c": "d"}, "annotations": {"x": "y"}, "finalizers": ["a.io/f"]}));
    assert_eq!(validate_manifests(&[good]), Ok(()));

    let err = single_manifest_error(
        m(json!({"labels": {"a": "b c"}})),
        "spec.workload.manifests[0].metadata.labels",
    );
    assert!(err.message.contains("\"b c\""), "{err}");
    let err = single_manifest_error(
        m(json!({"labels": {"a": 1}})),
        "spec.workload.manifests[0].metadata.labels",
    );
    assert!(err.message.contains("must be a string"), "{err}");
    single_manifest_error(
        m(json!({"annotations": {"-x": "y"}})),
        "spec.workload.manifests[0].metadata.annotations",
    );
    single_manifest_error(
        m(json!({"finalizers": ["a/b/c"]})),
        "spec.workload.manifests[0].metadata.finalizers",
    );
    single_manifest_error(
        m(json!({"finalizers": "x"})),
        "spec.workload.manifests[0].metadata.finalizers",
    );
}

#[test]
fn annotations_are_limited_to_256_kib_in_total() {
    let meta = |len: usize| {
        manifest(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "n", "annotations": {"k": "v".repeat(len)}}}))
    };
    assert_eq!(
        validate_manifests(&[meta(MAX_ANNOTATIONS_BYTES - 1)]),
        Ok(())
    );
    let err = single_manifest_error(
        meta(MAX_ANNOTATIONS_BYTES),
        "spec.workload.manifests[0].metadata.annotations",
    );
    assert!(err.message.contains("256 KiB"), "{err}");
}

#[test]
fn duplicate_manifests_name_both_indexes() {
    let err = single_manifest_error_list(
        vec![config_map("a"), config_map("b"), config_map("a")],
        "spec.workload.manifests[2]",
    );
    assert!(err.message.contains("spec.workload.manifests[0]"), "{err}");
    assert!(err.message.contains("v1 ConfigMap default/a"), "{err}");

    // The same name in another namespace or kind is another resource.
    let other_ns = manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "other"}}),
    );
    let secret = manifest(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "default"}}),
    );
    assert_eq!(
        validate_manifests(&[config_map("a"), other_ns, secret]),
        Ok(())
    );
}

#[test]
fn every_problem_is_collected_with_its_index() {
    let mut w = ManifestWork::for_consumer(
        "",
        "Bad_Name",
        vec![
            config_map("ok"),
            manifest(json!({"kind": "ConfigMap", "metadata": {"generateName": "x-"}})),
            config_map("ok"),
        ],
    );
    w.spec.manifest_configs = vec![config("Deployment", "")];
    let errs = errors_of(&w);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "metadata.namespace",
            "metadata.name",
            "spec.workload.manifests[1].apiVersion",
            "spec.workload.manifests[1].metadata.name",
            "spec.workload.manifests[1].metadata.generateName",
            "spec.workload.manifests[2]",
            "spec.manifestConfigs[0].resourceIdentifier.resource",
            "spec.manifestConfigs[0].resourceIdentifier.name",
        ],
        "{errs}"
    );
    assert!(
        errs.to_string()
            .starts_with("metadata.namespace: is required"),
        "{errs}"
    );
}

#[test]
fn resource_identifier_needs_a_plural_resource_and_a_name() {
    let mut w = work();
    w.spec.manifest_configs = vec![config("deployments", "*")];
    assert_eq!(validate_work(&w), Ok(()));

    w.spec.manifest_configs = vec![config("", "hello")];
    single_error(&w, "spec.manifestConfigs[0].resourceIdentifier.resource");
    w.spec.manifest_configs = vec![config("Deployment", "hello")];
    let err = single_error(&w, "spec.manifestConfigs[0].resourceIdentifier.resource");
    assert!(err.message.contains("not the kind"), "{err}");
    w.spec.manifest_configs = vec![config("deployments", "")];
    let err = single_error(&w, "spec.manifestConfigs[0].resourceIdentifier.name");
    assert!(err.message.contains("\"*\""), "{err}");
    let mut with_version = config("deployments", "hello");
    with_version.resource_identifier.group = "apps/v1".into();
    w.spec.manifest_configs = vec![with_version];
    single_error(&w, "spec.manifestConfigs[0].resourceIdentifier.group");
}

#[test]
fn json_paths_rules_need_named_unique_paths() {
    let mut w = work();
    let mut c = config("deployments", "hello");
    c.feedback_rules = vec![
        FeedbackRule::well_known_status(),
        FeedbackRule::json_paths(vec![JsonPath::new("ready", ".status.readyReplicas")]),
    ];
    w.spec.manifest_configs = vec![c.clone()];
    assert_eq!(validate_work(&w), Ok(()));

    c.feedback_rules = vec![FeedbackRule::json_paths(vec![])];
    w.spec.manifest_configs = vec![c.clone()];
    single_error(&w, "spec.manifestConfigs[0].feedbackRules[0].jsonPaths");

    c.feedback_rules = vec![FeedbackRule::json_paths(vec![JsonPath::new("", "")])];
    w.spec.manifest_configs = vec![c.clone()];
    let fields: Vec<String> = errors_of(&w).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "spec.manifestConfigs[0].feedbackRules[0].jsonPaths[0].name",
            "spec.manifestConfigs[0].feedbackRules[0].jsonPaths[0].path"
        ]
    );

    c.feedback_rules = vec![FeedbackRule::json_paths(vec![
        JsonPath::new("x", ".a"),
        JsonPath::new("x", ".b"),
    ])];
    w.spec.manifest_configs = vec![c];
    let err = single_error(
        &w,
        "spec.manifestConfigs[0].feedbackRules[0].jsonPaths[1].name",
    );
    assert!(err.message.contains("jsonPaths[0]"), "{err}");
}

fn ssa(field_manager: Option<&str>, ignore: Vec<IgnoreField>) -> UpdateStrategy {
    UpdateStrategy {
        type_: UpdateStrategyType::ServerSideApply,
        server_side_apply: Some(ServerSideApplyConfig {
            force: true,
            field_manager: field_manager.map(str::to_string),
            ignore_fields: ignore,
        }),
    }
}

#[test]
fn server_side_apply_field_manager_must_start_with_work_agent() {
    let mut w = work();
    let mut c = config("deployments", "hello");
    for ok in [None, Some("work-agent"), Some("work-agent-myapp")] {
        c.update_strategy = Some(ssa(ok, vec![]));
        w.spec.manifest_configs = vec![c.clone()];
        assert_eq!(validate_work(&w), Ok(()), "{ok:?}");
    }
    for bad in ["maestro-agent", ""] {
        c.update_strategy = Some(ssa(Some(bad), vec![]));
        w.spec.manifest_configs = vec![c.clone()];
        let err = single_error(
            &w,
            "spec.manifestConfigs[0].updateStrategy.serverSideApply.fieldManager",
        );
        assert!(err.message.contains("work-agent"), "{err}");
    }
}

#[test]
fn ignore_field_conditions_are_unique() {
    let mut w = work();
    let mut c = config("deployments", "hello");
    let field = |condition| IgnoreField {
        condition,
        json_paths: vec![".spec.replicas".into()],
        ..IgnoreField::default()
    };
    c.update_strategy = Some(ssa(
        None,
        vec![
            field(IgnoreFieldsCondition::OnSpokeChange),
            field(IgnoreFieldsCondition::OnSpokePresent),
        ],
    ));
    w.spec.manifest_configs = vec![c.clone()];
    assert_eq!(validate_work(&w), Ok(()));
    c.update_strategy = Some(ssa(
        None,
        vec![
            field(IgnoreFieldsCondition::OnSpokeChange),
            field(IgnoreFieldsCondition::OnSpokeChange),
        ],
    ));
    w.spec.manifest_configs = vec![c];
    single_error(
        &w,
        "spec.manifestConfigs[0].updateStrategy.serverSideApply.ignoreFields[1].condition",
    );
}

fn cel_rule(condition: &str) -> ConditionRule {
    ConditionRule {
        condition: condition.into(),
        type_: ConditionRuleType::Cel,
        cel_expressions: vec!["object.status.ready == true".into()],
        message: None,
        message_expression: None,
    }
}

#[test]
fn condition_rules_need_a_unique_valid_condition_type() {
    let mut w = work();
    let mut c = config("deployments", "hello");
    c.condition_rules = vec![cel_rule("Progressing"), cel_rule("example.com/Ready")];
    w.spec.manifest_configs = vec![c.clone()];
    assert_eq!(validate_work(&w), Ok(()));

    c.condition_rules = vec![cel_rule("")];
    w.spec.manifest_configs = vec![c.clone()];
    single_error(&w, "spec.manifestConfigs[0].conditionRules[0].condition");

    c.condition_rules = vec![cel_rule("not valid")];
    w.spec.manifest_configs = vec![c.clone()];
    single_error(&w, "spec.manifestConfigs[0].conditionRules[0].condition");

    c.condition_rules = vec![cel_rule("Ready"), cel_rule("Ready")];
    w.spec.manifest_configs = vec![c];
    single_error(&w, "spec.manifestConfigs[0].conditionRules[1].condition");
}

#[test]
fn unknown_enum_values_are_refused_with_the_allowed_ones() {
    let mut w = work();
    let mut c = config("deployments", "hello");
    c.feedback_scrape_type = Some("Push".into());
    c.update_strategy = Some(UpdateStrategy {
        type_: "Replace".into(),
        server_side_apply: None,
    });
    c.feedback_rules = vec![FeedbackRule {
        type_: "Everything".into(),
        json_paths: vec![],
    }];
    c.condition_rules = vec![ConditionRule {
        type_: "Rego".into(),
        ..cel_rule("Ready")
    }];
    w.spec.manifest_configs = vec![c];
    w.spec.delete_option = Some(DeleteOption {
        propagation_policy: "Background".into(),
        ..DeleteOption::default()
    });
    let errs = errors_of(&w);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.deleteOption.propagationPolicy",
            "spec.manifestConfigs[0].feedbackRules[0].type",
            "spec.manifestConfigs[0].updateStrategy.type",
            "spec.manifestConfigs[0].conditionRules[0].type",
            "spec.manifestConfigs[0].feedbackScrapeType",
        ],
        "{errs}"
    );
    assert!(
        errs.0[0]
            .message
            .contains("\"Background\"; supported values: Foreground, Orphan, SelectivelyOrphan"),
        "{errs}"
    );
}

#[test]
fn selectively_orphans_only_with_the_selectively_orphan_policy() {
    let rule = ResourceIdentifier::new("", "configmaps", "default", "hello-cfg");
    let mut w = work();
    w.spec.delete_option = Some(DeleteOption {
        propagation_policy: DeletePropagationPolicy::SelectivelyOrphan,
        selectively_orphan: Some(SelectivelyOrphan {
            orphaning_rules: vec![rule.clone()],
        }),
        ttl_seconds_after_finished: None,
    });
    assert_eq!(validate_work(&w), Ok(()));

    if let Some(option) = &mut w.spec.delete_option {
        option.propagation_policy = DeletePropagationPolicy::Orphan;
    }
    let err = single_error(&w, "spec.deleteOption.selectivelyOrphans");
    assert!(err.message.contains("not Orphan"), "{err}");
}

#[test]
fn orphaning_rules_need_resource_and_name_and_allow_no_wildcards() {
    let mut w = work();
    let with_rule = |rule| DeleteOption {
        propagation_policy: DeletePropagationPolicy::SelectivelyOrphan,
        selectively_orphan: Some(SelectivelyOrphan {
            orphaning_rules: vec![rule],
        }),
        ttl_seconds_after_finished: None,
    };
    w.spec.delete_option = Some(with_rule(ResourceIdentifier::new("", "", "default", "")));
    let fields: Vec<String> = errors_of(&w).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "spec.deleteOption.selectivelyOrphans.orphaningRules[0].resource",
            "spec.deleteOption.selectivelyOrphans.orphaningRules[0].name",
        ]
    );
    w.spec.delete_option = Some(with_rule(ResourceIdentifier::new(
        "",
        "configmaps",
        "default",
        "*",
    )));
    let err = single_error(
        &w,
        "spec.deleteOption.selectivelyOrphans.orphaningRules[0].name",
    );
    assert!(err.message.contains("wildcards"), "{err}");
}

#[test]
fn service_account_executor_needs_namespace_and_name() {
    let mut w = work();
    w.spec.executor = Some(ManifestWorkExecutor::service_account("default", "my-sa"));
    assert_eq!(validate_work(&w), Ok(()));

    w.spec.executor = Some(ManifestWorkExecutor::service_account("", "My_SA"));
    let fields: Vec<String> = errors_of(&w).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "spec.executor.subject.serviceAccount.namespace",
            "spec.executor.subject.serviceAccount.name"
        ]
    );

    w.spec.executor = Some(ManifestWorkExecutor {
        subject: ManifestWorkExecutorSubject {
            type_: ExecutorSubjectType::ServiceAccount,
            service_account: None,
        },
    });
    single_error(&w, "spec.executor.subject.serviceAccount");

    w.spec.executor = Some(ManifestWorkExecutor {
        subject: ManifestWorkExecutorSubject {
            type_: "User".into(),
            service_account: None,
        },
    });
    single_error(&w, "spec.executor.subject.type");
}

#[test]
fn qualified_names_follow_the_kubernetes_rule() {
    for ok in ["a", "A.b_c-d", "example.com/x", &"a".repeat(63)] {
        assert_eq!(check_qualified_name(ok), Ok(()), "{ok}");
    }
    for bad in [
        "",
        "-a",
        "a-",
        "/a",
        "a/",
        "a/b/c",
        "Example.com/x",
        &"a".repeat(64),
    ] {
        assert!(check_qualified_name(bad).is_err(), "{bad}");
    }
}
