//! One work across many consumers: the consumers a `--selector` picks, and
//! their works, for `get`, `list` and `wait`.
//!
//! The selection is made once, when the command starts: a consumer
//! labelled later does not join a wait already running, so the count a
//! quorum is measured against cannot move under it.

use std::collections::BTreeMap;

use crate::maestro::HeldWork;
use crate::maestro::work_client::WorkClient;
use crate::names::{ConsumerName, WorkName};

use crate::cli::args::ConsumerSelector;
use crate::cli::errors::CliError;
use crate::cli::records::{ConsumerState, STATUS_NOT_FOUND};
use crate::cli::remote::Remote;
use crate::cli::runtime::{Deadline, retry};

/// Consumers per bundle search: the search travels in the URL, so a large
/// fleet is read in several requests rather than one unbounded one.
const CONSUMERS_PER_SEARCH: usize = 50;

/// The consumers whose labels match `selector`, sorted by name. None
/// matching is an error naming the selector.
pub async fn select_consumers(
    client: &WorkClient,
    deadline: &Deadline,
    selector: &ConsumerSelector,
) -> Result<Vec<ConsumerName>, CliError> {
    let consumers = retry(deadline, "list consumers", async || {
        client.list_consumers().await
    })
    .await?;
    let mut selected: Vec<ConsumerName> = consumers
        .into_iter()
        .filter(|c| selector.matches(&c.labels))
        .filter_map(|c| match ConsumerName::new(c.name.as_str()) {
            Ok(name) => Some(name),
            Err(e) => {
                // Maestro holds a name this CLI could not address anyway.
                tracing::warn!(consumer = %c.name, error = %e, "skipping a consumer with an unusable name");
                None
            }
        })
        .collect();
    if selected.is_empty() {
        return Err(CliError::NotFound(format!(
            "the consumer selector {:?} matches no consumer registered in Maestro",
            selector.as_str()
        )));
    }
    selected.sort();
    Ok(selected)
}

/// This source's bundles on `consumers` (optionally only works whose
/// labels match `work_labels`), read in batches.
pub async fn bundles_on(
    client: &WorkClient,
    consumers: &[ConsumerName],
    work_labels: Option<&str>,
) -> crate::maestro::error::Result<Vec<crate::maestro::Result<HeldWork>>> {
    let mut bundles = Vec::new();
    for batch in consumers.chunks(CONSUMERS_PER_SEARCH) {
        bundles.extend(client.list_held_on(batch, work_labels).await?);
    }
    Ok(bundles)
}

/// The work called `name` on each of `consumers` (`None` where it is
/// absent). Where another client stored a second bundle of that name, the
/// one under this client's own id wins, as [`crate::cli::remote::find`] does.
pub async fn find_on_each(
    client: &WorkClient,
    consumers: &[ConsumerName],
    name: &WorkName,
) -> crate::maestro::error::Result<BTreeMap<ConsumerName, Option<Remote>>> {
    let mut found: BTreeMap<ConsumerName, Option<Remote>> =
        consumers.iter().map(|c| (c.clone(), None)).collect();
    for row in bundles_on(client, consumers, None).await? {
        let bundle = row?;
        if bundle.name.as_deref() != Some(name.as_str()) {
            continue;
        }
        let Ok(consumer) = ConsumerName::new(bundle.consumer.as_str()) else {
            continue;
        };
        let own = bundle.id == client.resource_id(&consumer, name);
        let Some(slot) = found.get_mut(&consumer) else {
            continue;
        };
        if slot.is_none() || own {
            *slot = Some(Remote::from_held(bundle)?);
        }
    }
    Ok(found)
}

impl ConsumerState {
    pub fn of(consumer: &ConsumerName, remote: Option<&Remote>) -> ConsumerState {
        ConsumerState {
            consumer: consumer.to_string(),
            status: remote.map_or_else(|| STATUS_NOT_FOUND.to_string(), |r| r.health().to_string()),
            condition_met: None,
            message: None,
            version: remote.map(Remote::version),
            observed_version: remote.map(Remote::observed_version),
        }
    }
}
