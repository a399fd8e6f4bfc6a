//! The nodepool configuration of the CLI guide, and its conversion to
//! Kubernetes manifests.
//!
//! The input (JSON or YAML):
//!
//! ```json
//! {
//!   "nodepools": [
//!     {"name": "workers", "instanceType": "m5.large", "replicas": 3,
//!      "zones": ["us-west-2a"], "labels": {"hyperfleet.io/nodepool": "workers"},
//!      "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}
//!   ],
//!   "metadata": {"cluster": "cluster-west-1", "region": "us-west-2", "version": "1.29"}
//! }
//! ```
//!
//! Each nodepool becomes one cluster-scoped custom resource:
//!
//! ```yaml
//! apiVersion: hyperfleet.io/v1alpha1
//! kind: NodePool
//! metadata:
//!   name: workers                          # the nodepool's name
//!   labels:
//!     hyperfleet.io/nodepool: workers
//!     hyperfleet.io/cluster: cluster-west-1  # metadata.cluster, when given
//! spec:
//!   instanceType: m5.large
//!   replicas: 3
//!   zones: [us-west-2a]                    # omitted when empty
//!   nodeLabels: {...}                      # the nodepool's labels, omitted when empty
//!   taints: [{key, value, effect}]         # omitted when empty
//!   region: us-west-2                      # metadata.region, when given
//!   kubernetesVersion: "1.29"              # metadata.version, when given
//! ```
//!
//! The target cluster needs the `nodepools.hyperfleet.io` CRD
//! (`tests/fixtures/cli/nodepools.hyperfleet.io.crd.yaml`) for the agent to
//! apply these. Unknown keys are refused (a typo must not silently drop a
//! setting), as are duplicate names, empty instance types, unknown taint
//! effects, and a `metadata.cluster` other than the consumer.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::manifestwork::Manifest;
use crate::names::check_dns1123_subdomain;

use super::errors::CliError;

pub const NODEPOOL_API_VERSION: &str = "hyperfleet.io/v1alpha1";
pub const NODEPOOL_KIND: &str = "NodePool";
pub const NODEPOOL_LABEL: &str = "hyperfleet.io/nodepool";
pub const CLUSTER_LABEL: &str = "hyperfleet.io/cluster";

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodepoolConfig {
    pub nodepools: Vec<Nodepool>,
    #[serde(default)]
    pub metadata: ClusterMetadata,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Nodepool {
    pub name: String,
    pub instance_type: String,
    pub replicas: u32,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterMetadata {
    pub cluster: Option<String>,
    pub region: Option<String>,
    pub version: Option<String>,
}

/// Whether a parsed document looks like a nodepool configuration rather
/// than a Kubernetes object.
pub fn is_nodepool_config(doc: &Value) -> bool {
    doc.get("nodepools").is_some() && doc.get("kind").is_none()
}

/// Parses a configuration text, with file, line and column in errors.
/// Only for a text [`super::input::documents`] has accepted, which bounds
/// how far YAML aliases may expand; this second, typed pass keeps the
/// line and column of type errors.
pub fn parse(origin: &str, text: &str) -> Result<NodepoolConfig, CliError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            CliError::InputFile(format!(
                "{origin}: line {}, column {}: {msg}",
                e.line(),
                e.column()
            ))
        })
    } else {
        serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => {
                let msg = e.to_string();
                let msg = msg
                    .rsplit_once(" at line ")
                    .map_or(msg.as_str(), |(m, _)| m);
                CliError::InputFile(format!(
                    "{origin}: line {}, column {}: {msg}",
                    l.line(),
                    l.column()
                ))
            }
            None => CliError::InputFile(format!("{origin}: {e}")),
        })
    }
}

/// Checks a configuration against `consumer`; every problem is reported,
/// each naming its field.
pub fn check(origin: &str, config: &NodepoolConfig, consumer: &str) -> Result<(), CliError> {
    let mut problems = Vec::new();
    if config.nodepools.is_empty() {
        problems.push("nodepools: must list at least one nodepool".to_string());
    }
    if let Some(cluster) = &config.metadata.cluster
        && cluster != consumer
    {
        problems.push(format!(
            "metadata.cluster: is {cluster:?} but --consumer is {consumer:?}; the configuration is for another cluster"
        ));
    }
    let mut names = BTreeSet::new();
    for (i, pool) in config.nodepools.iter().enumerate() {
        let at = format!("nodepools[{i}]");
        if let Err(reason) = check_dns1123_subdomain(&pool.name) {
            problems.push(format!("{at}.name: {:?} {reason}", pool.name));
        }
        if !names.insert(pool.name.as_str()) {
            problems.push(format!("{at}.name: {:?} is used twice", pool.name));
        }
        if pool.instance_type.trim().is_empty() {
            problems.push(format!("{at}.instanceType: must not be empty"));
        }
        for (z, zone) in pool.zones.iter().enumerate() {
            if zone.trim().is_empty() {
                problems.push(format!("{at}.zones[{z}]: must not be empty"));
            }
        }
        for (t, taint) in pool.taints.iter().enumerate() {
            if taint.key.is_empty() {
                problems.push(format!("{at}.taints[{t}].key: must not be empty"));
            }
            if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
                problems.push(format!(
                    "{at}.taints[{t}].effect: {:?} is not one of {}",
                    taint.effect,
                    TAINT_EFFECTS.join(", ")
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::InputFile(
            problems
                .into_iter()
                .map(|p| format!("{origin}: {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ))
    }
}

/// One `NodePool` manifest per nodepool, in the configuration's order.
pub fn to_manifests(config: &NodepoolConfig) -> Vec<Manifest> {
    let meta = &config.metadata;
    config
        .nodepools
        .iter()
        .map(|pool| {
            let mut labels = Map::new();
            labels.insert(NODEPOOL_LABEL.into(), pool.name.clone().into());
            if let Some(cluster) = &meta.cluster {
                labels.insert(CLUSTER_LABEL.into(), cluster.clone().into());
            }
            let mut spec = Map::new();
            spec.insert("instanceType".into(), pool.instance_type.clone().into());
            spec.insert("replicas".into(), pool.replicas.into());
            if !pool.zones.is_empty() {
                spec.insert("zones".into(), json!(pool.zones));
            }
            if !pool.labels.is_empty() {
                spec.insert("nodeLabels".into(), json!(pool.labels));
            }
            if !pool.taints.is_empty() {
                let taints: Vec<Value> = pool
                    .taints
                    .iter()
                    .map(|t| json!({"key": t.key, "value": t.value, "effect": t.effect}))
                    .collect();
                spec.insert("taints".into(), Value::Array(taints));
            }
            if let Some(region) = &meta.region {
                spec.insert("region".into(), region.clone().into());
            }
            if let Some(version) = &meta.version {
                spec.insert("kubernetesVersion".into(), version.clone().into());
            }
            let mut object = Map::new();
            object.insert("apiVersion".into(), NODEPOOL_API_VERSION.into());
            object.insert("kind".into(), NODEPOOL_KIND.into());
            object.insert(
                "metadata".into(),
                json!({"name": pool.name, "labels": Value::Object(labels)}),
            );
            object.insert("spec".into(), Value::Object(spec));
            Manifest(object)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUIDE_EXAMPLE: &str = r#"{
  "nodepools": [
    {"name": "workers", "instanceType": "m5.large", "replicas": 3,
     "zones": ["us-west-2a", "us-west-2b"],
     "labels": {"node-role.kubernetes.io/worker": "", "hyperfleet.io/nodepool": "workers"}},
    {"name": "gpu-workers", "instanceType": "p3.2xlarge", "replicas": 1, "zones": ["us-west-2a"],
     "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}
  ],
  "metadata": {"cluster": "cluster-west-1", "region": "us-west-2", "version": "1.29"}
}"#;

    #[test]
    fn the_guides_example_becomes_two_nodepool_resources() {
        let config = parse("np.json", GUIDE_EXAMPLE).unwrap();
        check("np.json", &config, "cluster-west-1").unwrap();
        let manifests = to_manifests(&config);
        assert_eq!(manifests.len(), 2);
        let gpu = serde_json::to_value(&manifests[1]).unwrap();
        assert_eq!(
            gpu,
            json!({
                "apiVersion": "hyperfleet.io/v1alpha1", "kind": "NodePool",
                "metadata": {"name": "gpu-workers", "labels": {
                    "hyperfleet.io/nodepool": "gpu-workers", "hyperfleet.io/cluster": "cluster-west-1"}},
                "spec": {"instanceType": "p3.2xlarge", "replicas": 1, "zones": ["us-west-2a"],
                         "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                         "region": "us-west-2", "kubernetesVersion": "1.29"}
            })
        );
        assert_eq!(
            manifests[0].as_map()["spec"]["nodeLabels"]["hyperfleet.io/nodepool"],
            "workers"
        );
        assert!(is_nodepool_config(
            &serde_json::from_str(GUIDE_EXAMPLE).unwrap()
        ));
    }

    #[test]
    fn yaml_configurations_are_read_too() {
        let yaml = "nodepools:\n- name: w\n  instanceType: m5.large\n  replicas: 2\n";
        let config = parse("np.yaml", yaml).unwrap();
        assert_eq!(config.nodepools[0].replicas, 2);
        assert_eq!(config.metadata, ClusterMetadata::default());
    }

    #[test]
    fn a_misspelt_key_is_refused_with_its_line() {
        let text = "{\n  \"nodepools\": [\n    {\"name\": \"w\", \"instancetype\": \"m5\", \"replicas\": 1}\n  ]\n}";
        let m = parse("np.json", text).unwrap_err().to_string();
        assert!(m.starts_with("np.json: line 3, column"), "{m}");
        assert!(m.contains("instancetype"), "{m}");
    }

    #[test]
    fn every_semantic_problem_is_named_by_field() {
        let text = r#"{"nodepools": [
            {"name": "Bad_Name", "instanceType": " ", "replicas": 1,
             "taints": [{"key": "k", "effect": "Sometimes"}]},
            {"name": "Bad_Name", "instanceType": "m5", "replicas": 1}],
            "metadata": {"cluster": "cluster-east-2"}}"#;
        let config = parse("np.json", text).unwrap();
        let m = check("np.json", &config, "cluster-west-1")
            .unwrap_err()
            .to_string();
        for needle in [
            "np.json: metadata.cluster: is \"cluster-east-2\"",
            "np.json: nodepools[0].name:",
            "np.json: nodepools[0].instanceType: must not be empty",
            "np.json: nodepools[0].taints[0].effect: \"Sometimes\" is not one of",
            "np.json: nodepools[1].name: \"Bad_Name\" is used twice",
        ] {
            assert!(m.contains(needle), "{needle} missing from:\n{m}");
        }
        assert_eq!(m.lines().count(), 6, "{m}");
    }

    #[test]
    fn negative_replicas_are_a_type_error() {
        let text = r#"{"nodepools": [{"name": "w", "instanceType": "m5", "replicas": -1}]}"#;
        let m = parse("np.json", text).unwrap_err().to_string();
        assert!(m.contains("line 1") && m.contains("-1"), "{m}");
    }

    #[test]
    fn the_shipped_example_converts_to_resources_the_shipped_crd_accepts() {
        let text = include_str!("../../tests/fixtures/cli/nodepool-config.json");
        let config = parse("nodepool-config.json", text).unwrap();
        check("nodepool-config.json", &config, "cluster-west-1").unwrap();
        let crd: Value = serde_norway::from_str(include_str!(
            "../../tests/fixtures/cli/nodepools.hyperfleet.io.crd.yaml"
        ))
        .unwrap();
        let version = &crd["spec"]["versions"][0];
        let api_version = format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap(),
            version["name"].as_str().unwrap()
        );
        assert_eq!(api_version, NODEPOOL_API_VERSION);
        assert_eq!(crd["spec"]["names"]["kind"], NODEPOOL_KIND);
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .build(&version["schema"]["openAPIV3Schema"])
            .unwrap();
        for manifest in to_manifests(&config) {
            let value = serde_json::to_value(&manifest).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?} in {value}");
            assert!(
                manifest.namespace().is_none(),
                "NodePools are cluster-scoped"
            );
        }
    }
}
