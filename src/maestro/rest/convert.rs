//! ResourceBundle → ManifestWork, as the Go source client's `ToManifestWork`
//! does it, so a work read back over REST looks the same from either client.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{BundleStatus, ResourceBundle};
use crate::maestro::error::{Error, Result};
use crate::maestro::held::{AgentReport, Detail, HeldWork, StringMap, parse_sequence};
use crate::manifestwork::{
    DeleteOption, Manifest, ManifestCondition, ManifestConfigOption, ManifestResourceStatus,
    ManifestWork, ManifestWorkSpec, ManifestWorkStatus, ManifestsTemplate,
};

impl ResourceBundle {
    /// The domain's view of this bundle; with [`Detail::Work`], the
    /// published work too (which fails on a bundle that cannot be read as
    /// one). Without it only the id must be sound: labels or annotations that
    /// are not strings and report entries that are not manifest
    /// conditions are left out, so one odd row never hides the others.
    pub fn into_held(self, detail: Detail) -> Result<HeldWork> {
        let id = self.id.parse().map_err(|_| {
            Error::Protocol(format!(
                "resource bundle {:?}: the id is not a UUID",
                self.id
            ))
        })?;
        let work = if detail == Detail::Work {
            Some(Box::new(self.to_manifest_work()?))
        } else {
            None
        };
        Ok(HeldWork {
            id,
            name: self.work_name().map(str::to_string),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleting_since: self.deleted_at,
            labels: self.string_map("labels"),
            annotations: self.string_map("annotations"),
            manifest_count: self.manifests.len(),
            report: self.status.map(report),
            consumer: self.consumer_name,
            work,
        })
    }

    fn string_map(&self, key: &str) -> StringMap {
        self.metadata
            .get(key)
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k, v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The ManifestWork this bundle holds.
    ///
    /// `resourceVersion` and `generation` both come from the bundle
    /// `version`, which is what Maestro compares updates against. `uid` and
    /// `namespace` fall back to the bundle id and consumer when the stored
    /// metadata lacks them. A bundle that cannot be read as a work is an
    /// [`Error::Protocol`] naming the bundle and the part.
    pub fn to_manifest_work(&self) -> Result<ManifestWork> {
        let mut metadata: ObjectMeta =
            self.part("metadata", Value::Object(self.metadata.clone()))?;
        metadata.resource_version = Some(self.version.to_string());
        metadata.generation = Some(self.version);
        if metadata.uid.as_deref().is_none_or(str::is_empty) {
            metadata.uid = Some(self.id.clone());
        }
        if metadata.namespace.as_deref().is_none_or(str::is_empty) && !self.consumer_name.is_empty()
        {
            metadata.namespace = Some(self.consumer_name.clone());
        }

        let manifests = self
            .manifests
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Manifest::from_value(m.clone()).map_err(|e| self.bad(&format!("manifests[{i}]"), e))
            })
            .collect::<Result<Vec<_>>>()?;
        // The server writes `{}` for "no delete option"; decoding it would
        // invent the default policy instead.
        let delete_option =
            if self.delete_option.is_empty() {
                None
            } else {
                Some(self.part::<DeleteOption>(
                    "delete_option",
                    Value::Object(self.delete_option.clone()),
                )?)
            };
        let manifest_configs = self
            .manifest_configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.part::<ManifestConfigOption>(&format!("manifest_configs[{i}]"), c.clone())
            })
            .collect::<Result<Vec<_>>>()?;

        let status = match &self.status {
            None => None,
            Some(status) => {
                let manifests = status
                    .resource_status
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        self.part::<ManifestCondition>(
                            &format!("status.resourceStatus[{i}]"),
                            m.clone(),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(ManifestWorkStatus {
                    conditions: status.conditions.clone(),
                    resource_status: (!manifests.is_empty())
                        .then_some(ManifestResourceStatus { manifests }),
                })
            }
        };

        Ok(ManifestWork {
            metadata,
            spec: ManifestWorkSpec {
                workload: ManifestsTemplate { manifests },
                delete_option,
                manifest_configs,
                executor: None,
            },
            status,
        })
    }

    fn part<T: DeserializeOwned>(&self, what: &str, value: Value) -> Result<T> {
        serde_json::from_value(value).map_err(|e| self.bad(what, e))
    }

    fn bad(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Protocol(format!(
            "resource bundle {} cannot be read as a ManifestWork: {what}: {e}",
            self.id
        ))
    }
}

fn report(status: BundleStatus) -> AgentReport {
    AgentReport {
        observed_version: status.observed_version,
        sequence: parse_sequence(&status.sequence_id),
        conditions: status.conditions,
        manifests: status
            .resource_status
            .into_iter()
            .filter_map(|m| serde_json::from_value(m).ok())
            .collect(),
    }
}

#[cfg(test)]
mod tests;
