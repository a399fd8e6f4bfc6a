use super::*;
use crate::controller::crd::MaestroApplySpec;
use crate::maestro::held::from_json;
use serde_json::json;

fn object(name: &str, work_name: Option<&str>) -> MaestroApply {
    let spec: MaestroApplySpec = serde_json::from_value(json!({
            "consumer": "cluster-west-1",
            "workName": work_name,
            "workMetadata": {"labels": {"team": "a", MANAGED_BY_LABEL: "someone-else"}},
            "manifestWork": {"workload": {"manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
            ]}},
        }))
        .unwrap();
    let mut obj = MaestroApply::new(name, spec);
    obj.metadata.namespace = Some("team-a".into());
    obj.metadata.uid = Some("0b7c1d1e-1111-4222-8333-444455556666".into());
    obj
}

fn source() -> SourceId {
    SourceId::new("maestro-operator").unwrap()
}

#[test]
fn work_name_defaults_to_the_object_name() {
    let t = Target::of(&object("web", None), &source()).unwrap();
    assert_eq!(t.work.as_str(), "web");
    let t = Target::of(&object("web", Some("other")), &source()).unwrap();
    assert_eq!(t.work.as_str(), "other");
    assert_eq!(
        t.resource_id,
        ResourceId::for_work(&source(), "cluster-west-1", "other")
    );
}

#[test]
fn a_dotted_object_name_without_work_name_is_an_invalid_spec_naming_the_fix() {
    let e = Target::of(&object("web.v1", None), &source()).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidSpec(m) if m.contains("spec.workName is unset")),
        "{e}"
    );
}

#[test]
fn built_work_carries_the_owner_and_our_labels_win() {
    let obj = object("web", None);
    let t = Target::of(&obj, &source()).unwrap();
    let work = t.build_work(&obj);
    let labels = work.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY_VALUE);
    assert_eq!(labels["team"], "a");
    assert_eq!(labels[OWNER_UID_LABEL], obj.metadata.uid.clone().unwrap());
    assert_eq!(labels[OWNER_NAME_LABEL], "web");
    assert_eq!(
        work.metadata.annotations.as_ref().unwrap()[OWNER_ANNOTATION],
        "team-a/web"
    );
    assert_eq!(work.metadata.namespace.as_deref(), Some("cluster-west-1"));
}

#[test]
fn owner_is_read_back_from_a_bundle() {
    let obj = object(&"n".repeat(70), Some("w"));
    let t = Target::of(&obj, &source()).unwrap();
    let work = t.build_work(&obj);
    assert!(
        !work
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .contains_key(OWNER_NAME_LABEL),
        "a 70-character name does not fit a label value"
    );
    let bundle = from_json(json!({
        "id": t.resource_id.to_string(),
        "version": 1,
        "metadata": work.metadata,
    }))
    .unwrap();
    assert_eq!(bundle_owner(&bundle), Some(t.owner.clone()));
    let foreign = from_json(
        json!({"id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 1,
                                   "metadata": {"name": "w"}}),
    )
    .unwrap();
    assert_eq!(bundle_owner(&foreign), None);
}

/// The bundle Maestro would hold after `work` was published, its
/// digest annotation saying `hash`.
fn stored(work: &ManifestWork, hash: &str) -> HeldWork {
    let mut metadata = serde_json::to_value(&work.metadata).unwrap();
    metadata["annotations"][crate::maestro::work_client::SPEC_HASH_ANNOTATION] = json!(hash);
    from_json(
        json!({"id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 3, "metadata": metadata}),
    )
    .unwrap()
}

/// What `maestro-cli apply` of other data under our source ID leaves:
/// no owner labels, its own digest.
fn rewritten_without_labels(work: &ManifestWork) -> HeldWork {
    let mut other = work.clone();
    other.metadata.labels = None;
    other.metadata.annotations = None;
    stored(&other, "cli-digest")
}

fn declared() -> (Target, ManifestWork) {
    let obj = object("web", None);
    let t = Target::of(&obj, &source()).unwrap();
    let work = t.build_work(&obj);
    (t, work)
}

#[test]
fn a_bundle_as_declared_is_in_sync_whatever_the_status_recorded() {
    let (t, work) = declared();
    let b = stored(&work, "h1");
    for published in [None, Some("h1"), Some("h0")] {
        assert_eq!(
            standing(&b, &work, "h1", &t.owner, published),
            Standing::InSync,
            "published {published:?}"
        );
    }
}

#[test]
fn a_bundle_still_as_published_after_a_spec_change_is_an_update_not_drift() {
    let (t, work) = declared();
    let b = stored(&work, "h1");
    assert_eq!(
        standing(&b, &work, "h2", &t.owner, Some("h1")),
        Standing::Outdated
    );
    // Nothing recorded (published before the operator recorded
    // digests): an update, as before.
    assert_eq!(
        standing(&b, &work, "h2", &t.owner, None),
        Standing::Outdated
    );
}

#[test]
fn a_bundle_we_published_rewritten_without_owner_labels_is_drift_not_claimed() {
    let (t, work) = declared();
    let b = rewritten_without_labels(&work);
    assert_eq!(
        standing(&b, &work, "h1", &t.owner, Some("h1")),
        Standing::Drifted(Drift {
            spec: true,
            labels: true
        })
    );
    // Drift also when the spec changed meanwhile: what was published
    // is what the bundle is measured against.
    assert_eq!(
        standing(&b, &work, "h2", &t.owner, Some("h1")),
        Standing::Drifted(Drift {
            spec: true,
            labels: true
        })
    );
}

#[test]
fn an_unlabelled_bundle_this_object_never_published_stays_claimed() {
    let (t, work) = declared();
    let b = rewritten_without_labels(&work);
    assert_eq!(
        standing(&b, &work, "h1", &t.owner, None),
        Standing::Claimed(Holder::Unlabelled)
    );
}

#[test]
fn a_bundle_labelled_with_another_uid_is_never_ours_even_where_we_published() {
    let (t, work) = declared();
    let mut other = object("other", Some("web"));
    other.metadata.uid = Some("another-uid".into());
    let ot = Target::of(&other, &source()).unwrap();
    let b = stored(&ot.build_work(&other), "h9");
    assert!(matches!(
        standing(&b, &work, "h1", &t.owner, Some("h1")),
        Standing::Claimed(Holder::Object(o)) if o.uid == "another-uid"
    ));
}

#[test]
fn stripped_labels_with_the_spec_kept_are_label_drift() {
    let (t, work) = declared();
    let mut stripped = work.clone();
    stripped
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(OWNER_UID_LABEL);
    let b = stored(&stripped, "h1");
    assert_eq!(
        standing(&b, &work, "h1", &t.owner, Some("h1")),
        Standing::Drifted(Drift {
            spec: false,
            labels: true
        })
    );
}

#[test]
fn a_rewritten_spec_under_our_labels_is_spec_drift() {
    let (t, work) = declared();
    let b = stored(&work, "someone-elses");
    assert_eq!(
        standing(&b, &work, "h1", &t.owner, Some("h1")),
        Standing::Drifted(Drift {
            spec: true,
            labels: false
        })
    );
}

#[test]
fn a_declared_label_removed_behind_our_back_is_label_drift_but_a_new_one_is_an_update() {
    let (t, work) = declared();
    let mut edited = work.clone();
    edited.metadata.labels.as_mut().unwrap().remove("team");
    let b = stored(&edited, "h1");
    assert_eq!(
        standing(&b, &work, "h1", &t.owner, Some("h1")),
        Standing::Drifted(Drift {
            spec: false,
            labels: true
        })
    );
    // The declaration changed (a new label, so a new digest): update.
    assert_eq!(
        standing(&b, &work, "h2", &t.owner, Some("h1")),
        Standing::Outdated
    );
}
