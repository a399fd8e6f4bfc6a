//! Argument groups the commands flatten into theirs, so that a flag shared
//! by several commands is declared once: `--timeout`, and which work on
//! which consumer. A command that words a flag's help its own way changes
//! just that, with [`reword`].

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Arg, ArgGroup, Args};

use crate::maestro::error::Error;
use crate::maestro::rest::LabelSelector;
use crate::names::{ConsumerName, WorkName};

use super::errors::CliError;
use super::runtime::{Deadline, parse_timeout};

/// For `#[command(mut_args(reword("id", |a| ...)))]`: changes the
/// argument `id` of a flattened group (its help, its default) where it
/// stands; clap's `mut_arg` would move it last, reordering the completion
/// scripts.
pub fn reword(id: &'static str, change: impl Fn(Arg) -> Arg) -> impl FnMut(Arg) -> Arg {
    move |arg| {
        if arg.get_id() == id { change(arg) } else { arg }
    }
}

/// `--timeout` of a command that reads, retrying transient failures.
#[derive(Args, Debug, Clone, Copy)]
pub struct ReadTimeout {
    /// Give up after this long (transient failures are retried until then)
    #[arg(id = "timeout", long = "timeout", value_name = "TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub duration: Duration,
}

impl ReadTimeout {
    /// The deadline, from now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.duration)
    }
}

/// `--timeout` of a command that writes and may wait for the agent.
#[derive(Args, Debug, Clone, Copy)]
pub struct WriteTimeout {
    /// Give up after this long (retries and --watch included)
    #[arg(id = "timeout", long = "timeout", value_name = "TIMEOUT", default_value = "5m", value_parser = parse_timeout)]
    pub duration: Duration,
}

impl WriteTimeout {
    /// The deadline, from now.
    pub fn deadline(&self) -> Deadline {
        Deadline::after(self.duration)
    }
}

/// One work on one consumer: `--name` and `--consumer`.
#[derive(Args, Debug, Clone)]
pub struct WorkOnConsumer {
    #[arg(long, value_name = "NAME")]
    pub name: WorkName,
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
}

/// One work on one consumer (`--consumer`) or on every consumer whose
/// labels match (`--selector`); one of the two is required.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("where").required(true).args(["consumer", "selector"])))]
pub struct WorkOnConsumers {
    #[arg(long, value_name = "NAME")]
    pub name: WorkName,
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<ConsumerName>,
    /// The consumers whose labels match (kubectl syntax, e.g. env=prod,region in (west))
    #[arg(short = 'l', long, value_name = "SELECTOR", visible_alias = "consumer-selector", value_parser = ConsumerSelector::parse)]
    pub selector: Option<ConsumerSelector>,
}

/// Where a [`WorkOnConsumers`] command looks.
pub enum Consumers<'a> {
    One(&'a ConsumerName),
    Selected(&'a ConsumerSelector),
}

impl WorkOnConsumers {
    /// The consumer or the selector; `command` names the command in the
    /// error when neither was given (clap refuses that before).
    pub fn consumers(&self, command: &str) -> Result<Consumers<'_>, CliError> {
        match (&self.consumer, &self.selector) {
            (Some(consumer), _) => Ok(Consumers::One(consumer)),
            (None, Some(selector)) => Ok(Consumers::Selected(selector)),
            (None, None) => Err(CliError::Usage(format!(
                "{command} needs --consumer or --selector"
            ))),
        }
    }
}

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

#[cfg(test)]
mod tests;
