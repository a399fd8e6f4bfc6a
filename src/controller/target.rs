//! Where an object's ManifestWork goes and who owns it: the work built from
//! the spec, labelled with its owner so the operator finds its bundles and
//! never touches anyone else's.

use kube::ResourceExt;

use super::crd::MaestroApply;
use super::{Error, Result};
use crate::maestro::HeldWork;
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
    pub fn of(bundle: &HeldWork, us: &Owner) -> Holder {
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
    bundle: &HeldWork,
    desired: &ManifestWork,
    desired_hash: &str,
    owner: &Owner,
    published: Option<&str>,
) -> Standing {
    let holder = Holder::of(bundle, owner);
    if !holder.is_ours(published.is_some()) {
        return Standing::Claimed(holder);
    }
    let hash = crate::maestro::work_client::spec_hash_of(bundle);
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

fn owner_marks_match(bundle: &HeldWork, desired: &ManifestWork) -> bool {
    let labels = &bundle.labels;
    let annotations = &bundle.annotations;
    let declared_labels = desired.metadata.labels.as_ref();
    let declared_annotations = desired.metadata.annotations.as_ref();
    OWNER_LABELS
        .iter()
        .all(|k| labels.get(k) == declared_labels.and_then(|l| l.get(*k)).map(String::as_str))
        && annotations.get(OWNER_ANNOTATION)
            == declared_annotations
                .and_then(|a| a.get(OWNER_ANNOTATION))
                .map(String::as_str)
}

fn declared_labels_match(bundle: &HeldWork, desired: &ManifestWork) -> bool {
    let labels = &bundle.labels;
    desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v.as_str()))
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
pub fn bundle_owner(bundle: &HeldWork) -> Option<Owner> {
    let labels = &bundle.labels;
    let uid = labels.get(OWNER_UID_LABEL)?.to_string();
    let annotations = &bundle.annotations;
    let (namespace, name) = match annotations.get(OWNER_ANNOTATION) {
        Some(owner) => owner
            .split_once('/')
            .map(|(ns, n)| (ns.to_string(), n.to_string()))
            .unwrap_or_default(),
        None => (
            labels
                .get(OWNER_NAMESPACE_LABEL)
                .unwrap_or_default()
                .to_string(),
            labels.get(OWNER_NAME_LABEL).unwrap_or_default().to_string(),
        ),
    };
    Some(Owner {
        namespace,
        name,
        uid,
    })
}

#[cfg(test)]
mod tests;
