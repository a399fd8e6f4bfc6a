//! The REST operations: consumers and resource bundles.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::search::consumer_name_equals;
use super::types::Identified;
use super::{
    Consumer, DEFAULT_PAGE_SIZE, ListOptions, MAX_PAGE_SIZE, Page, ResourceBundle, RestClient,
};
use crate::maestro::error::{Error, MaestroCode, Result};
use crate::names::{ConsumerName, ResourceId};

const CONSUMERS: &str = "consumers";
const RESOURCE_BUNDLES: &str = "resource-bundles";

/// More full pages than any real fleet has (4 million bundles at the
/// default size); past it the server is assumed to be looping.
pub const MAX_PAGES: u32 = 10_000;

impl RestClient {
    /// All consumers matching `options`, following every page from
    /// `options.page` (default 1). See [`RestClient::list_resource_bundles`]
    /// for the paging rules.
    pub async fn list_consumers(&self, options: &ListOptions) -> Result<Vec<Consumer>> {
        self.list_all(CONSUMERS, options, MAX_PAGES).await
    }

    /// One page of consumers, exactly as `options` asks.
    pub async fn list_consumers_page(&self, options: &ListOptions) -> Result<Page<Consumer>> {
        self.get_json(&[CONSUMERS], &options.query()).await
    }

    /// The consumer with this server-generated id.
    pub async fn get_consumer(&self, id: &str) -> Result<Consumer> {
        self.get_json(&[CONSUMERS, id], &[]).await
    }

    /// The consumer with this name, if any. Maestro gets consumers only by
    /// id, so this searches.
    pub async fn find_consumer_by_name(&self, name: &ConsumerName) -> Result<Option<Consumer>> {
        let options = ListOptions {
            search: Some(consumer_name_equals(name)),
            page: Some(1),
            size: Some(2),
            order_by: None,
        };
        let page = self.list_consumers_page(&options).await?;
        // Names are unique; matching again guards against a server that
        // ignored the search.
        Ok(page.items.into_iter().find(|c| c.name == name.as_str()))
    }

    /// Registers a consumer. A taken name is [`Error::Conflict`]. The name
    /// is a [`ConsumerName`] because Maestro answers a bad one with a 500.
    pub async fn create_consumer(
        &self,
        name: &ConsumerName,
        labels: &BTreeMap<String, String>,
    ) -> Result<Consumer> {
        let mut body = json!({ "name": name.as_str() });
        if !labels.is_empty() {
            body["labels"] = json!(labels);
        }
        self.call(Method::POST, &[CONSUMERS], &[], Some(&body))
            .await?
            .json()
    }

    /// Replaces all labels of a consumer; an empty map removes them.
    pub async fn patch_consumer_labels(
        &self,
        id: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Consumer> {
        let body = json!({ "labels": labels });
        self.call(Method::PATCH, &[CONSUMERS, id], &[], Some(&body))
            .await?
            .json()
    }

    /// Deletes a consumer. An unknown id succeeds, as the server itself
    /// answers. A consumer that still has bundles, even ones being deleted,
    /// is refused with [`Error::Forbidden`], Maestro's `maestro-4`.
    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        match self.call(Method::DELETE, &[CONSUMERS, id], &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if is_maestro_not_found(&e) => Ok(()),
            // Maestro reports the bundles' foreign key as 403 maestro-4, or
            // as 500 maestro-9 under a concurrent create.
            Err(Error::Forbidden(m) | Error::Server { message: m, .. })
                if m.contains("fk_resources_consumers") =>
            {
                Err(consumer_in_use(id, &m))
            }
            Err(e) => Err(e),
        }
    }

    /// All bundles matching `options`, following every page.
    ///
    /// Paging starts at `options.page` (default 1) with `options.size`
    /// (default 400, capped at the server's 65500) and stops at the first
    /// page shorter than the size or once `total` rows are in. Without an
    /// `order_by` the rows are ordered by `id`: Postgres gives no stable
    /// order otherwise, and offset paging over an unstable order can skip
    /// or repeat rows. Rows repeated by concurrent inserts are dropped;
    /// rows deleted meanwhile can still shift others past a page boundary.
    pub async fn list_resource_bundles(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<ResourceBundle>> {
        self.list_all(RESOURCE_BUNDLES, options, MAX_PAGES).await
    }

    /// One page of bundles, exactly as `options` asks.
    pub async fn list_resource_bundles_page(
        &self,
        options: &ListOptions,
    ) -> Result<Page<ResourceBundle>> {
        self.get_json(&[RESOURCE_BUNDLES], &options.query()).await
    }

    /// The bundle with this id, including one being deleted. A missing
    /// bundle is [`Error::NotFound`].
    pub async fn get_resource_bundle(&self, id: &ResourceId) -> Result<ResourceBundle> {
        self.get_json(&[RESOURCE_BUNDLES, &id.to_string()], &[])
            .await
    }

    /// Like [`RestClient::get_resource_bundle`], with a missing bundle as
    /// `None`.
    pub async fn find_resource_bundle(&self, id: &ResourceId) -> Result<Option<ResourceBundle>> {
        match self.get_resource_bundle(id).await {
            Ok(bundle) => Ok(Some(bundle)),
            Err(e) if is_maestro_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Asks Maestro to delete a bundle. This returns at once; the bundle
    /// stays readable, with `deleted_at` set, until the agent confirms.
    /// An unknown id succeeds, as the server itself answers.
    pub async fn delete_resource_bundle(&self, id: &ResourceId) -> Result<()> {
        match self
            .call(
                Method::DELETE,
                &[RESOURCE_BUNDLES, &id.to_string()],
                &[],
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_maestro_not_found(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn list_all<T>(
        &self,
        collection: &str,
        options: &ListOptions,
        max_pages: u32,
    ) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Identified,
    {
        let size = match options.size {
            Some(0) => {
                return Err(Error::Config(
                    "a page size of 0 returns no items; use at least 1".into(),
                ));
            }
            Some(size) => size.min(MAX_PAGE_SIZE),
            None => DEFAULT_PAGE_SIZE,
        };
        let request = ListOptions {
            search: options.search.clone(),
            page: Some(options.page.unwrap_or(1).max(1)),
            size: Some(size),
            order_by: Some(options.order_by.clone().unwrap_or_else(|| "id".into())),
        };
        let fetch = |page: u32| {
            let query = ListOptions {
                page: Some(page),
                ..request.clone()
            }
            .query();
            async move { self.get_json::<Page<T>>(&[collection], &query).await }
        };
        follow_pages(
            collection,
            request.page.unwrap_or(1),
            size,
            max_pages,
            fetch,
        )
        .await
        .items
    }
}

/// What [`follow_pages`] read, and how many requests it took (the poller's
/// metrics count them, failed lists included).
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Result<Vec<T>>,
    pub requests: u64,
}

/// Offset paging, the one way every list follows pages: `fetch` reads page
/// `n`, from `first` on with `size` rows a page, until the first page
/// shorter than the size or once `total` rows are in (the rows of skipped
/// pages counted), at most `max_pages` pages. Rows repeated across pages
/// by concurrent inserts are dropped; rows deleted meanwhile can still
/// shift others past a page boundary.
pub async fn follow_pages<T, F, Fut>(
    collection: &str,
    first: u32,
    size: u32,
    max_pages: u32,
    mut fetch: F,
) -> Listed<T>
where
    T: Identified,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let skipped = u64::from(first.saturating_sub(1)) * u64::from(size);
    let mut received: u64 = 0;
    let mut requests = 0;
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut page_number = Some(first);
    for _ in 0..max_pages {
        let Some(number) = page_number else { break };
        requests += 1;
        let page = match fetch(number).await {
            Ok(page) => page,
            Err(e) => {
                return Listed {
                    items: Err(e),
                    requests,
                };
            }
        };
        // `size` is the server's count of the page's rows, which a caller
        // that left some out (see `Page::filter_map`) still passes on.
        let count = page
            .items
            .len()
            .max(usize::try_from(page.size).unwrap_or(0));
        received += count as u64;
        for item in page.items {
            let key = item.key();
            if seen.insert(key.clone()) {
                items.push(item);
            } else {
                tracing::debug!(collection, id = key, "dropped a row repeated across pages");
            }
        }
        let reached_total = u64::try_from(page.total).is_ok_and(|t| skipped + received >= t);
        if count < size as usize || reached_total {
            return Listed {
                items: Ok(items),
                requests,
            };
        }
        page_number = number.checked_add(1);
    }
    let error = Error::Protocol(format!(
        "listing {collection} gave up after {max_pages} full pages of {size} \
         ({} rows so far); the server keeps returning full pages",
        items.len()
    ));
    Listed {
        items: Err(error),
        requests,
    }
}

fn is_maestro_not_found(e: &Error) -> bool {
    // Only a handler's not-found counts; a router 404 (wrong path) is a
    // protocol error, see errors::from_response.
    matches!(e, Error::NotFound(m) if MaestroCode::find_in(m).0 == Some(7))
}

fn consumer_in_use(id: &str, detail: &str) -> Error {
    Error::Forbidden(format!(
        "consumer {id} still has resource bundles (including any being deleted); \
         delete them and wait for their removal first: {detail}"
    ))
}

#[cfg(test)]
mod tests;
