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

use kube::api::ObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::crd::{API_VERSION, GROUP, KIND, MaestroApply, VERSION};

/// A MaestroApply with its spec and status still undecoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RawMaestroApply {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<RawValue>>,
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
        for (field, raw) in [("spec", &self.spec), ("status", &self.status)] {
            if let Some(raw) = raw {
                text.push_str(&format!(",\"{field}\":{}", raw.get()));
            }
        }
        text.push('}');
        serde_json::from_str(&text).map_err(|e| describe(&e))
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
mod tests {
    use super::*;
    use serde_json::json;

    fn object_with_manifest(manifest: serde_json::Value) -> String {
        json!({
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "web", "namespace": "team-a", "uid": "u1", "generation": 3},
            "spec": {
                "consumer": "cluster-west-1",
                "manifestWork": {"workload": {"manifests": [manifest]}},
            },
            "status": {"phase": "Available"},
        })
        .to_string()
    }

    fn nested(depth: usize) -> String {
        let mut value = "\"deep\"".to_string();
        for _ in 0..depth {
            value = format!("{{\"a\":{value}}}");
        }
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c","namespace":"d"}},"data":{value}}}"#
        )
    }

    #[test]
    fn a_good_object_decodes_to_the_typed_one() {
        let text = object_with_manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        );
        let raw: RawMaestroApply = serde_json::from_str(&text).unwrap();
        let typed = raw.decode().unwrap();
        let direct: MaestroApply = serde_json::from_str(&text).unwrap();
        assert_eq!(typed, direct);
        assert_eq!(raw.typed_ref(), ObjectRef::from_obj(&typed));
        assert_eq!(raw_ref(&raw.typed_ref()), ObjectRef::from_obj(&raw));
    }

    #[test]
    fn a_list_holding_a_manifest_nested_140_deep_still_decodes_the_others() {
        // Spliced as text: serde_json itself cannot hold it as a Value.
        let bad = object_with_manifest(serde_json::Value::Null).replacen(
            r#""manifests":[null]"#,
            &format!(r#""manifests":[{}]"#, nested(140)),
            1,
        );
        let good = object_with_manifest(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        );
        let list = format!(r#"{{"items":[{bad},{good}]}}"#);

        #[derive(Deserialize)]
        struct List<T> {
            items: Vec<T>,
        }
        assert!(
            serde_json::from_str::<List<MaestroApply>>(&list).is_err(),
            "the typed list fails whole: the defect this module exists for"
        );
        let raw = serde_json::from_str::<List<RawMaestroApply>>(&list).unwrap();
        assert_eq!(raw.items.len(), 2);
        let e = raw.items[0].decode().unwrap_err();
        assert!(e.contains("recursion limit"), "{e}");
        assert!(raw.items[1].decode().is_ok());
    }
}
