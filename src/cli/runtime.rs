//! The CLI's runtime, below every command and operation: the deadline
//! (`--timeout`), retries of transient failures, following a consumer's
//! status stream to know when to look again, and the signals that end a
//! command early.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::backoff::Backoff;
use crate::maestro::error::Error;
use crate::maestro::grpc::SubscribeOptions;
use crate::maestro::work_client::{WatchEvent, WorkClient};
use crate::names::ConsumerName;

use super::errors::CliError;

/// The shortest `--timeout` accepted: less cannot fit one round trip and
/// a retry.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest `--timeout` accepted: a year is beyond any command, and a
/// bound keeps the deadline (now + timeout) within what a clock can hold.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Time left at which a failed attempt is the last one.
const LAST_ATTEMPT_MARGIN: Duration = Duration::from_millis(100);

/// How often to read Maestro while waiting, besides reading on every
/// status event: rarely while the status stream is up (a safety net), more
/// often while it is down (REST is then the only source).
const POLL_WITH_STREAM: Duration = Duration::from_secs(5);
const POLL_WITHOUT_STREAM: Duration = Duration::from_secs(2);

/// When a command must be done by.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    total: Duration,
}

impl Deadline {
    pub fn after(total: Duration) -> Deadline {
        Deadline {
            start: Instant::now(),
            total,
        }
    }

    pub fn total(&self) -> Duration {
        self.total
    }

    pub fn end(&self) -> Instant {
        // `--timeout` is bounded, but a caller's own total may not be:
        // past what the clock holds, "never" is the best answer.
        self.start
            .checked_add(self.total)
            .unwrap_or_else(|| self.start + MAX_TIMEOUT)
    }

    pub fn remaining(&self) -> Duration {
        self.end().saturating_duration_since(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Parses `--timeout` as the CRD parses its durations (kube's Go-style
/// `Duration`: `90s`, `5m`, `1h30m`, `500ms`), and bare digits as seconds
/// (`90`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; use e.g. 30s, 5m or 1h".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is too long, not a missing unit.
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| too_long(text));
    }
    if seconds_written(text)? > MAX_TIMEOUT.as_secs_f64() {
        return Err(too_long(text));
    }
    let parsed: kube::core::Duration = text
        .parse()
        .map_err(|e| format!("{text:?} is not a duration: {e}; use e.g. 30s, 5m or 1h30m"))?;
    if parsed.is_negative() {
        return Err(format!("{text:?} must not be negative"));
    }
    Ok(Duration::from(parsed))
}

/// The seconds a duration's terms add up to, as a float that cannot
/// overflow: kube's parser panics on terms beyond what a `Duration` holds
/// (`99999999999999999h`) and on a negative term after the first
/// (`1s-1s`), so those are measured, or refused, before it runs. What is
/// malformed otherwise counts as nothing here and is left to kube to name.
fn seconds_written(text: &str) -> Result<f64, String> {
    let mut total = 0.0;
    let mut rest = text.trim_start_matches(['+', '-']);
    while !rest.is_empty() {
        let (number, tail) = rest.split_at(rest.find(char::is_alphabetic).unwrap_or(rest.len()));
        let (unit, tail) = tail.split_at(
            tail.find(|c: char| !c.is_alphabetic())
                .unwrap_or(tail.len()),
        );
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "ms" => 1e-3,
            "us" | "\u{00b5}s" | "\u{03bc}s" => 1e-6,
            "ns" => 1e-9,
            _ => 1.0,
        };
        if let Ok(value) = number.parse::<f64>() {
            if value.is_nan() || value < 0.0 {
                return Err(format!(
                    "{text:?} is not a duration; use e.g. 30s, 5m or 1h30m"
                ));
            }
            total += value * scale;
        }
        rest = tail;
    }
    Ok(total)
}

fn too_long(text: &str) -> String {
    format!(
        "{text:?} is too large: --timeout may be at most {} ({} days)",
        format_duration(MAX_TIMEOUT),
        MAX_TIMEOUT.as_secs() / 86_400
    )
}

/// `--timeout`: a duration of at least [`MIN_TIMEOUT`].
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > MAX_TIMEOUT {
        return Err(too_long(text));
    }
    if d < MIN_TIMEOUT {
        return Err(format!(
            "{text} is too small: the timeout must be at least {}s, enough for one round trip to Maestro and a retry",
            MIN_TIMEOUT.as_secs()
        ));
    }
    Ok(d)
}

/// Runs `op` until it succeeds, fails for good, or the deadline passes.
/// Transient failures (Maestro unreachable, 5xx, request timeouts) are
/// retried with jittered exponential backoff; others fail at once.
pub async fn retry<T>(
    deadline: &Deadline,
    what: &str,
    mut op: impl AsyncFnMut() -> Result<T, Error>,
) -> Result<T, CliError> {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
    let mut attempt: u32 = 1;
    loop {
        let remaining = deadline.remaining();
        let outcome = match tokio::time::timeout(remaining, op()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                what: what.to_string(),
                after: deadline.total(),
            }),
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(e) if e.is_transient() => {
                // The last attempt is made just before the deadline, so a
                // short outage is ridden out with the whole --timeout.
                let remaining = deadline.remaining();
                if remaining <= LAST_ATTEMPT_MARGIN {
                    let context = if attempt > 1 {
                        format!(
                            "{what} (gave up after {attempt} attempts in {:.1?})",
                            deadline.elapsed()
                        )
                    } else {
                        what.to_string()
                    };
                    return Err(CliError::maestro(context, e));
                }
                let delay = backoff
                    .next_delay()
                    .min(remaining.saturating_sub(LAST_ATTEMPT_MARGIN));
                warn!(attempt, retry_in = ?delay, error = %e, "{what} failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(e) => return Err(CliError::maestro(what, e)),
        }
    }
}

/// Tells when to look at Maestro again: on a status event of the
/// consumer's works, or after a poll interval, which is short while the
/// status stream is down so REST carries on alone.
pub struct Follower {
    events: Option<mpsc::Receiver<crate::maestro::error::Result<WatchEvent>>>,
    stream_up: bool,
}

impl Follower {
    pub fn start(client: &WorkClient, consumer: &ConsumerName) -> Follower {
        Follower::following(client, Some(consumer.clone()))
    }

    /// Follows the works of every consumer of the client's source, for
    /// commands that span consumers.
    pub fn start_all(client: &WorkClient) -> Follower {
        Follower::following(client, None)
    }

    fn following(client: &WorkClient, consumer: Option<ConsumerName>) -> Follower {
        let options = SubscribeOptions {
            buffer: 1024,
            ..SubscribeOptions::default()
        };
        Follower {
            events: Some(client.watch(consumer, None, options)),
            stream_up: false,
        }
    }

    /// Returns when something may have changed.
    pub async fn changed(&mut self) {
        let poll = if self.stream_up {
            POLL_WITH_STREAM
        } else {
            POLL_WITHOUT_STREAM
        };
        let sleep = tokio::time::sleep(poll);
        tokio::pin!(sleep);
        loop {
            let Some(events) = self.events.as_mut() else {
                sleep.as_mut().await;
                return;
            };
            tokio::select! {
                () = sleep.as_mut() => return,
                event = events.recv() => match event {
                    None => {
                        self.events = None;
                        self.stream_up = false;
                    }
                    Some(Ok(WatchEvent::Disconnected { error, retry_in })) => {
                        debug!(%error, ?retry_in, "status stream down; polling REST");
                        self.stream_up = false;
                    }
                    Some(Ok(_)) => {
                        self.stream_up = true;
                        // Take whatever else is already queued: one look
                        // covers a burst of events.
                        while let Ok(more) = events.try_recv() {
                            if let Ok(WatchEvent::Disconnected { .. }) = more {
                                self.stream_up = false;
                            }
                        }
                        return;
                    }
                    Some(Err(e)) => debug!(error = %e, "status stream error"),
                },
            }
        }
    }
}

/// Reads with `fetch` until `done` holds, the deadline passes (then
/// `on_timeout` builds the error from the last value read) or a signal
/// arrives. Reads happen at once, on status events and on every poll
/// interval; transient read failures are logged and retried.
pub async fn poll_until<T>(
    follower: &mut Follower,
    deadline: &Deadline,
    mut fetch: impl AsyncFnMut() -> Result<T, Error>,
    mut done: impl FnMut(&T) -> Result<bool, CliError>,
    on_timeout: impl FnOnce(Option<T>) -> CliError,
) -> Result<T, CliError> {
    let mut last: Option<T> = None;
    loop {
        let read = tokio::time::timeout(deadline.remaining(), fetch()).await;
        match read {
            Ok(Ok(value)) => {
                if done(&value)? {
                    return Ok(value);
                }
                last = Some(value);
            }
            Ok(Err(e)) if e.is_transient() => {
                warn!(error = %e, "reading from Maestro failed; will retry");
            }
            Ok(Err(e)) => return Err(CliError::maestro("reading from Maestro", e)),
            Err(_) => return Err(on_timeout(last)),
        }
        tokio::select! {
            () = follower.changed() => {}
            () = tokio::time::sleep_until(deadline.end()) => return Err(on_timeout(last)),
        }
    }
}

pub use crate::durations::format as format_duration;

#[cfg(test)]
mod tests;
