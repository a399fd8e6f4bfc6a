//! The JSON objects of Maestro's REST API.
//!
//! Decoding is lenient where the server is: unknown keys are ignored and
//! keys the server omits when empty default to empty. `null` is accepted
//! wherever an empty collection is, since Go encodes nil slices as `null`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::names::ResourceId;

/// A registered cluster. Its `name` is the agent's cluster name and the
/// namespace of the ManifestWorks delivered to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    /// Server-generated; the only key `GET /consumers/{id}` accepts.
    pub id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// A ManifestWork as Maestro stores it: created and updated over gRPC,
/// read and deleted over REST.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceBundle {
    /// The resource ID; for Go-compatible clients a UUID v5, see
    /// [`ResourceId::for_work`].
    pub id: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub href: String,
    /// Equal to `id` for bundles created over gRPC.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub consumer_name: String,
    /// Starts at 1 and grows with every accepted update. Required: without
    /// it the bundle cannot be turned into a ManifestWork.
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Set while a deletion is pending; the row disappears once the agent
    /// confirms it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// The ManifestWork's ObjectMeta as the source sent it, with
    /// `creationTimestamp` (and `deletionTimestamp` while deleting) rewritten
    /// by the server.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Map<String, Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub manifests: Vec<Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub manifest_configs: Vec<Value>,
    /// `{}` when the work has no delete option.
    #[serde(default, deserialize_with = "null_as_default")]
    pub delete_option: Map<String, Value>,
    /// Absent until the agent has reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<BundleStatus>,
}

impl ResourceBundle {
    /// Whether a deletion has been requested and not yet confirmed.
    pub fn is_deleting(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The id as a [`ResourceId`], when it is a UUID.
    pub fn resource_id(&self) -> Option<ResourceId> {
        self.id.parse().ok()
    }

    /// The ManifestWork name the source gave, from `metadata.name`.
    pub fn work_name(&self) -> Option<&str> {
        self.metadata.get("name").and_then(Value::as_str)
    }
}

/// What the agent last reported. The first two keys are capitalised on
/// the wire because the server serialises a Go struct without JSON tags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BundleStatus {
    /// The bundle `version` the agent had applied when it reported.
    #[serde(rename = "ObservedVersion", default)]
    pub observed_version: i64,
    /// A snowflake id as a decimal string; larger is newer.
    #[serde(rename = "SequenceID", default)]
    pub sequence_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub conditions: Vec<Condition>,
    /// Per-manifest `ManifestCondition`s, the list a ManifestWork keeps under
    /// `status.resourceStatus.manifests`.
    #[serde(
        rename = "resourceStatus",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_status: Vec<Value>,
    #[serde(
        rename = "manifestBundle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub manifest_bundle: Option<Value>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default)]
    pub kind: String,
    /// The page asked for, echoed.
    #[serde(default)]
    pub page: i64,
    /// The number of items on this page (not the size asked for).
    #[serde(default)]
    pub size: i64,
    /// All rows matching the search, across pages.
    #[serde(default)]
    pub total: i64,
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// The page with its items mapped, those answering `None` left out;
    /// `size` and `total` still count the rows as the server did, which
    /// paging relies on.
    pub fn filter_map<U>(self, f: impl FnMut(T) -> Option<U>) -> Page<U> {
        Page {
            kind: self.kind,
            page: self.page,
            size: self.size,
            total: self.total,
            items: self.items.into_iter().filter_map(f).collect(),
        }
    }
}

/// Query parameters of a list call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// See [`super::Search`] for the strings the Go client sends.
    pub search: Option<String>,
    /// 1-based.
    pub page: Option<u32>,
    /// Items per page. The server's default is 100 and its cap 65500.
    pub size: Option<u32>,
    /// Comma-separated `field [asc|desc]` entries, sent as `orderBy`.
    pub order_by: Option<String>,
}

impl ListOptions {
    pub fn search(search: impl Into<String>) -> ListOptions {
        ListOptions {
            search: Some(search.into()),
            ..ListOptions::default()
        }
    }

    /// The query pairs, in a fixed order so requests are reproducible.
    pub(super) fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(search) = &self.search {
            query.push(("search", search.clone()));
        }
        if let Some(page) = self.page {
            query.push(("page", page.to_string()));
        }
        if let Some(size) = self.size {
            query.push(("size", size.to_string()));
        }
        if let Some(order_by) = &self.order_by {
            query.push(("orderBy", order_by.clone()));
        }
        query
    }
}

/// Items that paging can de-duplicate.
pub trait Identified {
    fn key(&self) -> String;
}

impl Identified for Consumer {
    fn key(&self) -> String {
        self.id.clone()
    }
}

impl Identified for ResourceBundle {
    fn key(&self) -> String {
        self.id.clone()
    }
}

impl Identified for crate::maestro::held::HeldWork {
    fn key(&self) -> String {
        self.id.to_string()
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests;
