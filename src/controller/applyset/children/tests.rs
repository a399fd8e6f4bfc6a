use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelectorRequirement, Time};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::controller::crd::MaestroApplyStatus;

fn template(spec: Value) -> ApplyTemplate {
    serde_json::from_value(json!({ "spec": spec })).unwrap()
}

fn spec() -> Value {
    json!({
        "manifestWork": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}}
        ]}},
        "timeout": "1m",
    })
}

fn set(name: &str) -> MaestroApplySet {
    let mut set: MaestroApplySet = serde_json::from_value(json!({
        "apiVersion": "maestro.hyperfleet.io/v1alpha1",
        "kind": "MaestroApplySet",
        "metadata": {"name": name, "namespace": "team", "uid": "u-1"},
        "spec": {"consumers": ["c1"], "template": {"spec": spec()}},
    }))
    .unwrap();
    set.metadata.generation = Some(1);
    set
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn condition(type_: &str, status: &str, at: i64) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: "R".into(),
        message: "m".into(),
        observed_generation: Some(2),
        last_transition_time: Time(Timestamp::from_second(at).unwrap()),
    }
}

fn child_with(
    generation: i64,
    observed: i64,
    phase: Phase,
    conditions: Vec<Condition>,
) -> MaestroApply {
    let mut child = build_child(
        &set("web"),
        "c1",
        "r1",
        &template(spec()),
        Timestamp::from_second(1000).unwrap(),
        None,
    )
    .unwrap();
    child.metadata.generation = Some(generation);
    child.status = Some(MaestroApplyStatus {
        observed_generation: Some(observed),
        bundle_version: Some(1),
        applied_version: Some(1),
        phase: Some(phase),
        conditions,
        ..MaestroApplyStatus::default()
    });
    child
}

#[test]
fn child_names_are_the_set_and_consumer_when_they_fit() {
    assert_eq!(child_name("web", "cluster-1"), "web-cluster-1");
}

#[test]
fn long_or_dotted_child_names_are_cut_to_a_label_with_a_stable_digest() {
    let long = "a".repeat(60);
    let name = child_name(&long, "cluster-1");
    assert!(name.len() <= 63, "{name}");
    assert!(check_dns1123_label(&name).is_ok(), "{name}");
    assert_eq!(name, child_name(&long, "cluster-1"));
    assert_ne!(name, child_name(&long, "cluster-2"));
    let dotted = child_name("web.v1", "c");
    assert!(check_dns1123_label(&dotted).is_ok(), "{dotted}");
    assert!(dotted.starts_with("web-v1-c-"), "{dotted}");
}

#[test]
fn the_revision_follows_the_template_not_the_key_order() {
    let a = template(json!({"timeout": "1m", "suspend": false}));
    let b = template(json!({"suspend": false, "timeout": "1m"}));
    let c = template(json!({"suspend": false, "timeout": "2m"}));
    assert_eq!(revision_of(&a), revision_of(&b));
    assert_ne!(revision_of(&a), revision_of(&c));
    assert_eq!(revision_of(&a).len(), 10);
}

#[test]
fn a_child_carries_the_consumer_labels_revision_and_controller_owner() {
    let now = Timestamp::from_second(1000).unwrap();
    let mut t = template(spec());
    t.metadata.labels = labels(&[("team", "a")]);
    let child = build_child(&set("web"), "c1", "r1", &t, now, None).unwrap();
    assert_eq!(child.spec.consumer, "c1");
    assert_eq!(child.spec.timeout, "1m");
    assert_eq!(child.metadata.namespace.as_deref(), Some("team"));
    let l = child.labels();
    assert_eq!(l.get("team").map(String::as_str), Some("a"));
    assert_eq!(l.get(SET_LABEL).map(String::as_str), Some("web"));
    assert_eq!(l.get(REVISION_LABEL).map(String::as_str), Some("r1"));
    let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "MaestroApplySet");
    assert_eq!(owner.uid, "u-1");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    assert!(owned_by(&child.metadata, &set("web")));
    assert_eq!(
        child
            .annotations()
            .get(UPDATED_AT_ANNOTATION)
            .map(String::as_str),
        Some(now.to_string().as_str())
    );
}

#[test]
fn a_template_that_is_no_maestroapply_spec_is_refused_by_field() {
    let err = build_child(
        &set("web"),
        "c1",
        "r1",
        &template(json!({"timeout": 5})),
        Timestamp::UNIX_EPOCH,
        None,
    )
    .unwrap_err();
    assert!(err.contains("spec.template.spec (revision r1)"), "{err}");
}

#[test]
fn health_reads_the_child_against_its_own_generation() {
    let ready = condition("Ready", "True", 2000);
    let stale = child_with(2, 1, Phase::Available, vec![ready.clone()]);
    assert!(matches!(health(&stale), Health::Progressing { .. }));

    let fresh = child_with(2, 2, Phase::Available, vec![ready]);
    assert_eq!(
        health(&fresh),
        Health::Ready {
            since: Timestamp::from_second(2000).unwrap()
        }
    );

    let stalled = child_with(2, 2, Phase::Stalled, vec![condition("Stalled", "True", 5)]);
    assert!(matches!(health(&stalled), Health::Failed { .. }));

    let degraded = child_with(2, 2, Phase::Degraded, vec![condition("Ready", "False", 5)]);
    assert!(matches!(health(&degraded), Health::Failed { .. }));
}

#[test]
fn ready_before_the_last_update_counts_from_the_update() {
    let child = child_with(2, 2, Phase::Available, vec![condition("Ready", "True", 10)]);
    assert_eq!(
        health(&child),
        Health::Ready {
            since: Timestamp::from_second(1000).unwrap()
        }
    );
}

#[test]
fn selectors_match_with_kubernetes_semantics() {
    let selector = LabelSelector {
        match_labels: Some(labels(&[("env", "prod")]).into_iter().collect()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "region".into(),
                operator: "In".into(),
                values: Some(vec!["eu".into(), "us".into()]),
            },
            LabelSelectorRequirement {
                key: "retired".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    assert!(selector_matches(
        &selector,
        &labels(&[("env", "prod"), ("region", "eu")])
    ));
    assert!(!selector_matches(
        &selector,
        &labels(&[("env", "dev"), ("region", "eu")])
    ));
    assert!(!selector_matches(
        &selector,
        &labels(&[("env", "prod"), ("region", "ap")])
    ));
    assert!(!selector_matches(
        &selector,
        &labels(&[("env", "prod"), ("region", "eu"), ("retired", "y")])
    ));
    assert_eq!(
        selector_string(Some(&selector), &["extra".into()], false),
        "env=prod,region in (eu,us),!retired + extra"
    );
}

#[test]
fn after_a_move_that_changes_the_work_ready_counts_only_for_a_later_bundle_version() {
    let before = child_with(
        2,
        2,
        Phase::Available,
        vec![condition("Ready", "True", 2000)],
    );
    let mut changed = spec();
    changed["manifestWork"]["workload"]["manifests"][0]["data"]["k"] = json!("v2");
    let mut moved = build_child(
        &set("web"),
        "c1",
        "r2",
        &template(changed),
        Timestamp::from_second(3000).unwrap(),
        Some(&before),
    )
    .unwrap();
    assert_eq!(
        moved
            .annotations()
            .get(BASE_VERSION_ANNOTATION)
            .map(String::as_str),
        Some("1")
    );
    moved.metadata.generation = Some(3);
    // The child's status recomputed for generation 3 from the old bundle.
    moved.status = before.status.clone();
    moved.status.as_mut().unwrap().observed_generation = Some(3);
    assert!(matches!(health(&moved), Health::Progressing { .. }));
    let status = moved.status.as_mut().unwrap();
    status.bundle_version = Some(2);
    assert!(
        matches!(health(&moved), Health::Progressing { .. }),
        "the agent has not reported on version 2 yet"
    );
    moved.status.as_mut().unwrap().applied_version = Some(2);
    assert!(matches!(health(&moved), Health::Ready { .. }));
}

#[test]
fn a_move_that_leaves_the_work_alone_expects_no_new_bundle_version() {
    let before = child_with(
        2,
        2,
        Phase::Available,
        vec![condition("Ready", "True", 2000)],
    );
    let mut t = template(spec());
    t.metadata.labels = labels(&[("tier", "web")]);
    let moved = build_child(
        &set("web"),
        "c1",
        "r2",
        &t,
        Timestamp::UNIX_EPOCH,
        Some(&before),
    )
    .unwrap();
    assert_eq!(moved.annotations().get(BASE_VERSION_ANNOTATION), None);
}

#[test]
fn ready_while_the_agent_reports_a_manifest_not_applied_is_not_ready() {
    let child = child_with(
        2,
        2,
        Phase::Available,
        vec![
            condition("Ready", "True", 2000),
            condition("Applied", "False", 2000),
        ],
    );
    assert!(matches!(health(&child), Health::Progressing { .. }));
}
