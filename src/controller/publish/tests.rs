//! The operator's publish decision, offline: each answer from the bundle
//! it is shown.

use serde_json::json;

use super::*;
use crate::controller::crd::MaestroApplySpec;
use crate::maestro::held::from_json;
use crate::maestro::work_client::SPEC_HASH_ANNOTATION;
use crate::names::SourceId;

fn object(name: &str, uid: &str) -> MaestroApply {
    let spec: MaestroApplySpec = serde_json::from_value(json!({
        "consumer": "cluster-west-1",
        "workName": "web",
        "manifestWork": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
        ]}},
    }))
    .unwrap();
    let mut obj = MaestroApply::new(name, spec);
    obj.metadata.namespace = Some("team-a".into());
    obj.metadata.uid = Some(uid.into());
    obj
}

fn declared(uid: &str) -> (Target, ManifestWork) {
    let obj = object("web", uid);
    let target = Target::of(&obj, &SourceId::new("maestro-operator").unwrap()).unwrap();
    let work = target.build_work(&obj);
    (target, work)
}

/// The bundle Maestro holds after `work` was published with digest `hash`.
fn stored(work: &ManifestWork, hash: &str, deleting: bool) -> HeldWork {
    let mut metadata = serde_json::to_value(&work.metadata).unwrap();
    metadata["annotations"][SPEC_HASH_ANNOTATION] = json!(hash);
    let mut bundle =
        json!({"id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 3, "metadata": metadata});
    if deleting {
        bundle["deleted_at"] = json!("2025-12-13T13:32:30Z");
    }
    from_json(bundle).unwrap()
}

fn plan(adopt: bool, published: Option<&str>, policy: DriftPolicy) -> Plan<'_> {
    Plan {
        hash: "h1".into(),
        adopt,
        published,
        policy,
    }
}

/// The intent of a decision, with what it would publish.
fn intent(decision: Decision<Intent, String>) -> (Option<Intent>, Option<String>) {
    match decision {
        Decision::Publish(work, intent) => {
            assert_eq!(work.metadata.name.as_deref(), Some("web"));
            (Some(intent), None)
        }
        Decision::Skip(intent) => (Some(intent), None),
        Decision::Refuse(holder) => (None, Some(holder)),
    }
}

#[test]
fn nothing_in_maestro_is_a_create() {
    let (target, work) = declared("uid-mine");
    let d = decide(
        &plan(false, None, DriftPolicy::Correct),
        &work,
        &target,
        None,
    );
    assert!(matches!(d, Decision::Publish(_, Intent::Create)), "{d:?}");
}

#[test]
fn a_bundle_being_deleted_is_waited_for_whoever_holds_it() {
    let (target, work) = declared("uid-mine");
    let (_, other) = declared("uid-other");
    for bundle in [stored(&work, "h1", true), stored(&other, "h9", true)] {
        let d = decide(
            &plan(true, None, DriftPolicy::Correct),
            &work,
            &target,
            Some(&bundle),
        );
        assert!(matches!(d, Decision::Skip(Intent::Deleting)), "{d:?}");
    }
}

#[test]
fn the_declared_bundle_is_left_alone() {
    let (target, work) = declared("uid-mine");
    let b = stored(&work, "h1", false);
    let d = decide(
        &plan(false, Some("h1"), DriftPolicy::Correct),
        &work,
        &target,
        Some(&b),
    );
    assert!(matches!(d, Decision::Skip(Intent::Unchanged)), "{d:?}");
}

#[test]
fn an_outdated_bundle_of_ours_is_an_ordinary_update() {
    let (target, work) = declared("uid-mine");
    let b = stored(&work, "h0", false);
    let d = decide(
        &plan(false, Some("h0"), DriftPolicy::Correct),
        &work,
        &target,
        Some(&b),
    );
    assert!(matches!(d, Decision::Publish(_, Intent::Update)), "{d:?}");
}

#[test]
fn drift_is_corrected_or_only_reported_as_the_policy_says() {
    let (target, work) = declared("uid-mine");
    let b = stored(&work, "someone-elses", false);
    let corrected = decide(
        &plan(false, Some("h1"), DriftPolicy::Correct),
        &work,
        &target,
        Some(&b),
    );
    assert!(
        matches!(corrected, Decision::Publish(_, Intent::Correct(d)) if d.spec && !d.labels),
        "{corrected:?}"
    );
    let reported = decide(
        &plan(false, Some("h1"), DriftPolicy::Report),
        &work,
        &target,
        Some(&b),
    );
    assert!(
        matches!(reported, Decision::Skip(Intent::ReportDrift(d)) if d.spec),
        "{reported:?}"
    );
}

#[test]
fn another_objects_bundle_is_refused_naming_it_unless_adoption_is_asked() {
    let (target, work) = declared("uid-mine");
    let (_, theirs) = declared("uid-other");
    let b = stored(&theirs, "h9", false);
    let (_, refused) = intent(decide(
        &plan(false, None, DriftPolicy::Correct),
        &work,
        &target,
        Some(&b),
    ));
    let holder = refused.expect("refused");
    assert!(holder.contains("team-a/web"), "{holder}");
    let (adopted, _) = intent(decide(
        &plan(true, None, DriftPolicy::Correct),
        &work,
        &target,
        Some(&b),
    ));
    assert!(matches!(adopted, Some(Intent::Adopt(from)) if from == holder));
}

#[test]
fn only_writes_are_counted_as_create_update_or_adopt() {
    assert_eq!(Intent::Create.action(), "create");
    assert_eq!(Intent::Update.action(), "update");
    assert_eq!(Intent::Adopt("x".into()).action(), "adopt");
    assert_eq!(Intent::Unchanged.action(), "read");
    assert_eq!(Intent::Deleting.action(), "read");
}
