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
use super::input::{json_error, yaml_error};

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
        serde_json::from_str(text).map_err(|e| json_error(origin, &e))
    } else {
        serde_norway::from_str(text).map_err(|e| yaml_error(origin, &e))
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
mod tests;
