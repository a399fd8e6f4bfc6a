//! The controller's view of a `MaestroApply` before its spec is decoded.
//!
//! The watch decodes every object of a list in one go: a single object the
//! typed decoder refuses (a manifest nested deeper than serde_json's
//! recursion limit, stored before any rule could stop it) would fail the
//! whole list, and with it every object in every namespace, for good. The
//! watch therefore keeps spec and status as raw JSON (skipped without a
//! depth limit), and each reconcile decodes its own object: a bad one is
//! reported on itself and the others go on.

use std::borrow::Cow;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::crd::{
    ADOPT_ANNOTATION, API_VERSION, GROUP, KIND, MaestroApply, RECONCILE_REQUESTED_AT_ANNOTATION,
    VERSION,
};

/// A MaestroApply with its spec and status still undecoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawMaestroApply {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Box<RawValue>>,
    /// Spec and status deflated by [`RawMaestroApply::pack`].
    #[serde(skip)]
    packed: Option<Box<[u8]>>,
    /// Whether this copy differs, in what is worth a reconcile, from the
    /// one it replaces: see [`RawMaestroApply::note_changes`].
    #[serde(skip)]
    changes: Changes,
}

/// A hash of what in an object is worth a reconcile, and whether it
/// changed since the copy before.
#[derive(Clone, Copy, Debug, Default)]
struct Changes {
    hash: u64,
    new: bool,
}

impl Resource for RawMaestroApply {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "maestroapplies".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl RawMaestroApply {
    /// The typed object, or what the decoder says is wrong with it (the
    /// field path and position).
    pub fn decode(&self) -> Result<MaestroApply, String> {
        let mut object = serde_json::Map::new();
        object.insert("apiVersion".into(), API_VERSION.into());
        object.insert("kind".into(), KIND.into());
        let metadata = serde_json::to_value(&self.metadata).map_err(|e| e.to_string())?;
        object.insert("metadata".into(), metadata);
        // Spliced as text, so the typed decoder sees the document as the
        // API server sent it.
        let mut text = serde_json::Value::Object(object).to_string();
        text.pop();
        match &self.packed {
            Some(packed) => text.push_str(&inflate(packed)?),
            None => text.push_str(&self.fields_text()),
        }
        text.push('}');
        serde_json::from_str(&text).map_err(|e| describe(&e))
    }

    /// Keeps spec and status only deflated: the watch cache holds every
    /// object for the operator's life, and their manifests are most of
    /// it, while only the object being reconciled needs them readable
    /// (inflating a few kilobytes takes microseconds). Left as it is if
    /// deflating fails.
    pub fn pack(&mut self) {
        let text = self.fields_text();
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        if encoder.write_all(text.as_bytes()).is_err() {
            return;
        }
        if let Ok(packed) = encoder.finish() {
            self.packed = Some(packed.into_boxed_slice());
            self.spec = None;
            self.status = None;
        }
    }

    /// Records whether this copy differs from `before` (the cached copy
    /// it replaces, if any) in what is worth a reconcile:
    /// [`RawMaestroApply::wakes`] then says so. The cache is the memory,
    /// so this costs nothing per object beyond a hash.
    pub fn note_changes(&mut self, before: Option<&RawMaestroApply>) {
        let hash = self.what_matters();
        self.changes = Changes {
            hash,
            new: before.is_none_or(|b| b.changes.hash != hash),
        };
    }

    /// Whether this copy changed something worth a reconcile.
    pub fn wakes(&self) -> bool {
        self.changes.new
    }

    /// A hash of what is worth a reconcile: spec changes (generation,
    /// which deletion also bumps), finalizers, a new reconcile-requested-at
    /// and the adopt annotation; and the uid, so an object deleted and
    /// created again under its name while the watch was relisting counts
    /// as new. The operator's own status writes change none of them, so
    /// they never wake it.
    fn what_matters(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.metadata.uid.hash(&mut hasher);
        self.metadata.generation.hash(&mut hasher);
        self.finalizers().hash(&mut hasher);
        self.metadata.deletion_timestamp.is_some().hash(&mut hasher);
        for annotation in [RECONCILE_REQUESTED_AT_ANNOTATION, ADOPT_ANNOTATION] {
            self.annotations().get(annotation).hash(&mut hasher);
        }
        hasher.finish()
    }

    /// `,"spec":…,"status":…` as the API server sent them.
    fn fields_text(&self) -> String {
        let mut text = String::new();
        for (field, raw) in [("spec", &self.spec), ("status", &self.status)] {
            if let Some(raw) = raw {
                text.push_str(&format!(",\"{field}\":{}", raw.get()));
            }
        }
        text
    }

    /// The same object's reference in the typed world.
    pub fn typed_ref(&self) -> ObjectRef<MaestroApply> {
        let r = ObjectRef::new(&self.name_any());
        match self.namespace() {
            Some(ns) => r.within(&ns),
            None => r,
        }
    }
}

/// The reference of the raw object for a typed one.
pub fn raw_ref(typed: &ObjectRef<MaestroApply>) -> ObjectRef<RawMaestroApply> {
    let r = ObjectRef::new(&typed.name);
    match &typed.namespace {
        Some(ns) => r.within(ns),
        None => r,
    }
}

fn inflate(packed: &[u8]) -> Result<String, String> {
    let mut text = String::new();
    DeflateDecoder::new(packed)
        .read_to_string(&mut text)
        .map_err(|e| format!("the cached object cannot be inflated: {e}"))?;
    Ok(text)
}

fn describe(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("the object is not valid JSON: {e}")
        }
        _ => format!(
            "the object cannot be read: {e} (a manifest nested too deep, or a field of the wrong type)"
        ),
    }
}

#[cfg(test)]
mod tests;
