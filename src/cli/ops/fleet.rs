//! One work across many consumers: `--selector` (a consumer label selector
//! in kubectl syntax) for `get`, `list` and `wait`, and `wait --quorum`.
//!
//! The selection is made once, when the command starts: a consumer
//! labelled later does not join a wait already running, so the count a
//! quorum is measured against cannot move under it.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::maestro::rest::{LabelSelector, ListOptions, ResourceBundle};
use crate::maestro::work_client::WorkClient;
use crate::names::{ConsumerName, WorkName};

use crate::cli::errors::CliError;
use crate::cli::records::{ConsumerState, STATUS_NOT_FOUND};
use crate::cli::remote::Remote;
use crate::cli::runtime::{Deadline, retry};

/// Consumers per bundle search: the search travels in the URL, so a large
/// fleet is read in several requests rather than one unbounded one.
const CONSUMERS_PER_SEARCH: usize = 50;

/// A consumer label selector as given on the command line, parsed.
#[derive(Debug, Clone)]
pub struct ConsumerSelector {
    text: String,
    parsed: LabelSelector,
}

impl ConsumerSelector {
    /// Parses `-l`/`--selector`. An empty selector is refused: it would
    /// pick every consumer, which is never what a typo meant.
    pub fn parse(text: &str) -> Result<ConsumerSelector, String> {
        let parsed = LabelSelector::parse(text).map_err(|e| match e {
            Error::Config(m) => m,
            other => other.to_string(),
        })?;
        if parsed.is_empty() {
            return Err(
                "the consumer selector is empty and would select every consumer; \
                 give at least one term, e.g. env=prod"
                    .into(),
            );
        }
        Ok(ConsumerSelector {
            text: text.trim().to_string(),
            parsed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.parsed.matches(labels)
    }
}

impl std::fmt::Display for ConsumerSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// `--quorum`: how many selected consumers must meet the condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    Count(usize),
    /// A percentage of the selected consumers, rounded up.
    Percent(u8),
}

impl Quorum {
    /// Parses `N` (at least 1) or `P%` (1 to 100).
    pub fn parse(text: &str) -> Result<Quorum, String> {
        let text = text.trim();
        if let Some(number) = text.strip_suffix('%') {
            let percent: u8 = number.trim().parse().map_err(|_| {
                format!("{text:?}: a percentage is a whole number from 1 to 100 followed by %")
            })?;
            if !(1..=100).contains(&percent) {
                return Err(format!("{text:?}: the percentage must be from 1% to 100%"));
            }
            return Ok(Quorum::Percent(percent));
        }
        let count: usize = text.parse().map_err(|_| {
            format!("{text:?}: give a number of consumers (e.g. 8) or a percentage (e.g. 95%)")
        })?;
        if count == 0 {
            return Err(format!("{text:?}: the quorum must be at least 1 consumer"));
        }
        Ok(Quorum::Count(count))
    }

    /// How many of `selected` consumers this quorum needs. A count larger
    /// than the selection can never be met, so it is refused up front.
    pub fn required(self, selected: usize, selector: &ConsumerSelector) -> Result<usize, CliError> {
        match self {
            Quorum::Count(n) if n > selected => Err(CliError::Usage(format!(
                "--quorum {n} cannot be met: the selector {:?} selects only {selected} \
                 consumer{}",
                selector.as_str(),
                plural(selected)
            ))),
            Quorum::Count(n) => Ok(n),
            Quorum::Percent(p) => Ok((selected * usize::from(p)).div_ceil(100)),
        }
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Count(n) => write!(f, "{n}"),
            Quorum::Percent(p) => write!(f, "{p}%"),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The consumers whose labels match `selector`, sorted by name. None
/// matching is an error naming the selector.
pub async fn select_consumers(
    client: &WorkClient,
    deadline: &Deadline,
    selector: &ConsumerSelector,
) -> Result<Vec<ConsumerName>, CliError> {
    let consumers = retry(deadline, "list consumers", async || {
        client.rest().list_consumers(&ListOptions::default()).await
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
) -> crate::error::Result<Vec<ResourceBundle>> {
    let mut bundles = Vec::new();
    for batch in consumers.chunks(CONSUMERS_PER_SEARCH) {
        bundles.extend(client.list_bundles_on(batch, work_labels).await?);
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
) -> crate::error::Result<BTreeMap<ConsumerName, Option<Remote>>> {
    let mut found: BTreeMap<ConsumerName, Option<Remote>> =
        consumers.iter().map(|c| (c.clone(), None)).collect();
    for bundle in bundles_on(client, consumers, None).await? {
        if bundle.work_name() != Some(name.as_str()) {
            continue;
        }
        let Ok(consumer) = ConsumerName::new(bundle.consumer_name.as_str()) else {
            continue;
        };
        let own = bundle.id == client.resource_id(&consumer, name).to_string();
        let Some(slot) = found.get_mut(&consumer) else {
            continue;
        };
        if slot.is_none() || own {
            *slot = Some(Remote::from_bundle(bundle)?);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(text: &str) -> ConsumerSelector {
        ConsumerSelector::parse(text).unwrap()
    }

    #[test]
    fn quorum_takes_counts_and_percentages() {
        assert_eq!(Quorum::parse("8").unwrap(), Quorum::Count(8));
        assert_eq!(Quorum::parse("95%").unwrap(), Quorum::Percent(95));
        assert_eq!(Quorum::parse("100%").unwrap(), Quorum::Percent(100));
    }

    #[test]
    fn quorum_refuses_zero_out_of_range_and_junk_naming_the_value() {
        for (bad, needle) in [
            ("0", "at least 1"),
            ("0%", "from 1% to 100%"),
            ("101%", "from 1% to 100%"),
            ("-1", "a number of consumers"),
            ("half", "a number of consumers"),
            ("9.5%", "whole number"),
            ("%", "whole number"),
        ] {
            let e = Quorum::parse(bad).unwrap_err();
            assert!(e.contains(needle) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn percentages_round_up_and_counts_beyond_the_selection_are_refused() {
        let s = selector("env=prod");
        assert_eq!(Quorum::Percent(95).required(4, &s).unwrap(), 4);
        assert_eq!(Quorum::Percent(50).required(4, &s).unwrap(), 2);
        assert_eq!(Quorum::Percent(51).required(4, &s).unwrap(), 3);
        assert_eq!(Quorum::Percent(1).required(1, &s).unwrap(), 1);
        assert_eq!(Quorum::Count(4).required(4, &s).unwrap(), 4);
        let e = Quorum::Count(5).required(4, &s).unwrap_err();
        assert_eq!(e.exit_status().code(), 2);
        assert!(
            e.to_string().contains("env=prod") && e.to_string().contains("only 4"),
            "{e}"
        );
    }

    #[test]
    fn selectors_use_kubectl_syntax_and_name_the_bad_term() {
        let s = selector("env=prod,region in (west,east),!retired");
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(s.matches(&labels(&[("env", "prod"), ("region", "west")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("region", "north")])));
        assert!(!s.matches(&labels(&[
            ("env", "prod"),
            ("region", "west"),
            ("retired", "yes")
        ])));
        let e = ConsumerSelector::parse("env=prod,region in west").unwrap_err();
        assert!(e.contains("region in west"), "{e}");
    }

    #[test]
    fn an_empty_selector_is_refused_rather_than_selecting_everyone() {
        for text in ["", "  "] {
            let e = ConsumerSelector::parse(text).unwrap_err();
            assert!(e.contains("every consumer"), "{e}");
        }
    }
}
