//! Where an object's ManifestWork goes and who owns it: the work built from
//! the spec, labelled with its owner so the operator finds its bundles and
//! never touches anyone else's.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::crd::MaestroApply;
use super::{Error, Result};
use crate::maestro::rest::ResourceBundle;
use crate::manifestwork::ManifestWork;
use crate::names::{ConsumerName, ResourceId, SourceId, WorkName};

/// On every work the operator publishes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "maestro-operator";
pub const OWNER_UID_LABEL: &str = "maestro.hyperfleet.io/owner-uid";
pub const OWNER_NAMESPACE_LABEL: &str = "maestro.hyperfleet.io/owner-namespace";
/// Only set when the owner's name fits a label value (63 characters);
/// the annotation always carries it.
pub const OWNER_NAME_LABEL: &str = "maestro.hyperfleet.io/owner-name";
/// `<namespace>/<name>` of the owning object.
pub const OWNER_ANNOTATION: &str = "maestro.hyperfleet.io/owner";

/// The object that owns a work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An object's destination, validated.
#[derive(Debug, Clone)]
pub struct Target {
    pub consumer: ConsumerName,
    pub work: WorkName,
    pub resource_id: ResourceId,
    pub owner: Owner,
}

impl Target {
    pub fn of(obj: &MaestroApply, source: &SourceId) -> Result<Target> {
        let consumer = ConsumerName::new(obj.spec.consumer.as_str())
            .map_err(|e| Error::InvalidSpec(format!("spec.consumer: {e}")))?;
        let work = WorkName::new(obj.work_name()).map_err(|e| {
            Error::InvalidSpec(if obj.spec.work_name.is_some() {
                format!("spec.workName: {e}")
            } else {
                format!("metadata.name is the work name when spec.workName is unset: {e}")
            })
        })?;
        let owner = Owner {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            uid: obj.uid().unwrap_or_default(),
        };
        Ok(Target {
            resource_id: ResourceId::for_work(source, consumer.as_str(), work.as_str()),
            consumer,
            work,
            owner,
        })
    }

    /// The ManifestWork to publish: the spec's work, with the user's labels
    /// and annotations and ours on top (ours win: the operator depends on
    /// them).
    pub fn build_work(&self, obj: &MaestroApply) -> ManifestWork {
        let mut labels = obj.spec.work_metadata.labels.clone();
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
        labels.insert(OWNER_UID_LABEL.into(), self.owner.uid.clone());
        labels.insert(OWNER_NAMESPACE_LABEL.into(), self.owner.namespace.clone());
        if self.owner.name.len() <= 63 {
            labels.insert(OWNER_NAME_LABEL.into(), self.owner.name.clone());
        } else {
            labels.remove(OWNER_NAME_LABEL);
        }
        let mut annotations = obj.spec.work_metadata.annotations.clone();
        annotations.insert(OWNER_ANNOTATION.into(), self.owner.to_string());
        ManifestWork {
            metadata: kube::api::ObjectMeta {
                name: Some(self.work.to_string()),
                namespace: Some(self.consumer.to_string()),
                labels: Some(labels),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: obj.spec.manifest_work.clone(),
            status: None,
        }
    }
}

/// Who holds a bundle, as seen by the object `us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Labelled with our object's uid.
    Us,
    /// Labelled with another object's uid, whether or not that object
    /// still exists: a uid is never reused, and only an explicit adoption
    /// moves a bundle to another owner.
    Object(Owner),
    /// Written under this source ID by a client that sets no owner labels.
    Unlabelled,
}

impl Holder {
    pub fn of(bundle: &ResourceBundle, us: &Owner) -> Holder {
        match bundle_owner(bundle) {
            Some(owner) if owner.uid == us.uid => Holder::Us,
            Some(owner) => Holder::Object(owner),
            None => Holder::Unlabelled,
        }
    }

    /// Whether the bundle is ours to write and delete. `published`: our
    /// status records a publish under this resource ID. The ID is
    /// deterministic, so an unlabelled bundle there that we published is
    /// ours with its labels stripped by another client of the source ID,
    /// not that client's. Another object's uid is never ours.
    pub fn is_ours(&self, published: bool) -> bool {
        match self {
            Holder::Us => true,
            Holder::Unlabelled => published,
            Holder::Object(_) => false,
        }
    }
}

/// What of a bundle changed behind the operator's back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drift {
    /// The spec digest is not the one this object published.
    pub spec: bool,
    /// Owner labels or annotation (or, while the declaration is the one
    /// published, any declared label) differ from what it declares.
    pub labels: bool,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match (self.spec, self.labels) {
            (true, true) => "spec and labels",
            (true, false) => "spec",
            (false, _) => "labels",
        })
    }
}

/// How the bundle under an object's resource ID stands towards the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Ours, and what the object declares.
    InSync,
    /// Ours and as this object last published it (or of unknown history);
    /// the declaration changed since: an ordinary update.
    Outdated,
    /// Ours, and changed by someone else since this object published it.
    Drifted(Drift),
    /// Another holder's: never written without adoption.
    Claimed(Holder),
}

/// Where `bundle` stands for the object that declares `desired` (digest
/// `desired_hash`), is `owner` and, per its status, last published
/// `published` under this resource ID.
///
/// Drift is measured against what was published, not against the
/// declaration: a bundle still as published while the spec changed is an
/// update, not drift, so a new generation is never reported as drift. A
/// bundle that matches the declaration is in sync whatever happened.
pub fn standing(
    bundle: &ResourceBundle,
    desired: &ManifestWork,
    desired_hash: &str,
    owner: &Owner,
    published: Option<&str>,
) -> Standing {
    let holder = Holder::of(bundle, owner);
    if !holder.is_ours(published.is_some()) {
        return Standing::Claimed(holder);
    }
    let hash = bundle_spec_hash(bundle);
    let owner_marks = owner_marks_match(bundle, desired);
    let declared_labels = declared_labels_match(bundle, desired);
    if hash == Some(desired_hash) && owner_marks && declared_labels {
        return Standing::InSync;
    }
    let drift = Drift {
        spec: published.is_some_and(|p| hash != Some(p)),
        // Owner marks never change for an object; other declared labels
        // only count while the declaration is the one published.
        labels: !owner_marks || (published == Some(desired_hash) && !declared_labels),
    };
    if drift.spec || drift.labels {
        Standing::Drifted(drift)
    } else {
        Standing::Outdated
    }
}

/// The labels and annotation that say who owns a work.
const OWNER_LABELS: [&str; 4] = [
    MANAGED_BY_LABEL,
    OWNER_UID_LABEL,
    OWNER_NAMESPACE_LABEL,
    OWNER_NAME_LABEL,
];

fn owner_marks_match(bundle: &ResourceBundle, desired: &ManifestWork) -> bool {
    let labels = string_map(bundle, "labels");
    let annotations = string_map(bundle, "annotations");
    let declared_labels = desired.metadata.labels.as_ref();
    let declared_annotations = desired.metadata.annotations.as_ref();
    OWNER_LABELS
        .iter()
        .all(|k| labels.get(*k) == declared_labels.and_then(|l| l.get(*k)))
        && annotations.get(OWNER_ANNOTATION)
            == declared_annotations.and_then(|a| a.get(OWNER_ANNOTATION))
}

fn declared_labels_match(bundle: &ResourceBundle, desired: &ManifestWork) -> bool {
    let labels = string_map(bundle, "labels");
    desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Us => write!(f, "this object"),
            Holder::Object(o) => write!(f, "MaestroApply {o} (uid {})", o.uid),
            Holder::Unlabelled => write!(
                f,
                "another client of this source ID (the bundle carries no owner labels)"
            ),
        }
    }
}

/// Who a bundle says owns it, from the labels and annotation we set.
/// `None` for a bundle the operator did not publish.
pub fn bundle_owner(bundle: &ResourceBundle) -> Option<Owner> {
    let labels = string_map(bundle, "labels");
    let uid = labels.get(OWNER_UID_LABEL)?.clone();
    let annotations = string_map(bundle, "annotations");
    let (namespace, name) = match annotations.get(OWNER_ANNOTATION) {
        Some(owner) => owner
            .split_once('/')
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .unwrap_or_default(),
        None => (
            labels
                .get(OWNER_NAMESPACE_LABEL)
                .cloned()
                .unwrap_or_default(),
            labels.get(OWNER_NAME_LABEL).cloned().unwrap_or_default(),
        ),
    };
    Some(Owner {
        namespace,
        name,
        uid,
    })
}

fn string_map(bundle: &ResourceBundle, key: &str) -> BTreeMap<String, String> {
    bundle
        .metadata
        .get(key)
        .and_then(|v| v.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The digest of what was published, as the work client stored it.
pub fn bundle_spec_hash(bundle: &ResourceBundle) -> Option<&str> {
    bundle
        .metadata
        .get("annotations")?
        .get(crate::maestro::work_client::SPEC_HASH_ANNOTATION)?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::crd::MaestroApplySpec;
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
        let bundle: ResourceBundle = serde_json::from_value(json!({
            "id": t.resource_id.to_string(),
            "version": 1,
            "metadata": work.metadata,
        }))
        .unwrap();
        assert_eq!(bundle_owner(&bundle), Some(t.owner.clone()));
        let foreign: ResourceBundle =
            serde_json::from_value(json!({"id": "x", "version": 1, "metadata": {"name": "w"}}))
                .unwrap();
        assert_eq!(bundle_owner(&foreign), None);
    }

    /// The bundle Maestro would hold after `work` was published, its
    /// digest annotation saying `hash`.
    fn stored(work: &ManifestWork, hash: &str) -> ResourceBundle {
        let mut metadata = serde_json::to_value(&work.metadata).unwrap();
        metadata["annotations"][crate::maestro::work_client::SPEC_HASH_ANNOTATION] = json!(hash);
        serde_json::from_value(json!({"id": "x", "version": 3, "metadata": metadata})).unwrap()
    }

    /// What `maestro-cli apply` of other data under our source ID leaves:
    /// no owner labels, its own digest.
    fn rewritten_without_labels(work: &ManifestWork) -> ResourceBundle {
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
}
