//! Works as Maestro would hold them, for the tests of whatever judges a
//! [`Remote`].

use serde_json::{Value, json};

use crate::maestro::held::from_json;

use super::Remote;

/// One ConfigMap work at `version`, its agent report at `observed` with
/// these work and manifest conditions.
pub fn remote(
    observed: i64,
    version: i64,
    work_conditions: Value,
    manifest_conditions: Value,
) -> Remote {
    let bundle = from_json(json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "c", "version": version,
        "metadata": {"name": "w"},
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}],
        "status": {"ObservedVersion": observed, "SequenceID": "1", "conditions": work_conditions,
                   "resourceStatus": [{"resourceMeta": {"ordinal": 0, "kind": "ConfigMap", "name": "cm"},
                                       "conditions": manifest_conditions}]}
    }))
    .unwrap();
    Remote::from_held(bundle).unwrap()
}

/// A condition as the agent writes it.
pub fn cond(t: &str, s: &str) -> Value {
    json!({"type": t, "status": s, "reason": "", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"})
}
