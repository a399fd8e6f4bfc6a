//! Maestro's errors, whichever transport met them.
//!
//! Maestro reports business errors as text carrying a `maestro-N` code, over
//! gRPC (always status `Unknown`) and over REST (in a JSON error body). Both
//! paths are classified here into the same variants, so callers decide on
//! retries and user messages without caring which transport failed.

use std::time::Duration;

use crate::manifestwork::ValidationErrors;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The work failed client-side validation; nothing was sent.
    #[error("invalid ManifestWork: {0}")]
    InvalidWork(ValidationErrors),

    /// Maestro refused the request as invalid (maestro-8, -17, -21, -23).
    #[error("rejected by Maestro ({code}): {message}")]
    Rejected { code: MaestroCode, message: String },

    #[error("not found: {0}")]
    NotFound(String),

    /// The consumer named in a publish does not exist in Maestro.
    #[error("consumer {consumer:?} is not registered in Maestro")]
    UnknownConsumer { consumer: String },

    /// The update carried a version older than Maestro's.
    #[error("stale version: {message}")]
    StaleVersion {
        latest: Option<i64>,
        message: String,
    },

    /// Any other conflict: already exists, or under deletion.
    #[error("conflict: {0}")]
    Conflict(String),

    #[error("unauthenticated: {0}")]
    Unauthenticated(String),

    #[error("forbidden: {0}")]
    Forbidden(String),

    /// Maestro could not be reached or answered that it cannot serve now.
    #[error("Maestro unavailable: {0}")]
    Unavailable(String),

    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },

    /// A server error that fits no other variant (maestro-9, 5xx).
    #[error("Maestro server error ({code}): {message}")]
    Server { code: MaestroCode, message: String },

    /// Maestro answered with something we cannot decode.
    #[error("unexpected reply from Maestro: {0}")]
    Protocol(String),

    /// Bad local configuration: endpoints, certificates, token files.
    #[error("configuration: {0}")]
    Config(String),

    /// The client's write fence is closed (see [`crate::maestro::fence`]):
    /// nothing was sent. Not a Maestro failure: the writer lost its right
    /// to write, e.g. an operator replica whose leader lease ran out.
    #[error("write fenced off, nothing sent: {0}")]
    Fenced(String),
}

impl Error {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Timeout { .. } | Error::Server { .. }
        ) || matches!(self, Error::Rejected { code, .. } if code.0 == Some(26))
    }

    /// A short CamelCase reason, stable enough for condition reasons and
    /// metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidWork(_) => "InvalidWork",
            Error::Rejected { .. } => "RejectedByMaestro",
            Error::NotFound(_) => "NotFound",
            Error::UnknownConsumer { .. } => "UnknownConsumer",
            Error::StaleVersion { .. } => "StaleVersion",
            Error::Conflict(_) => "Conflict",
            Error::Unauthenticated(_) => "Unauthenticated",
            Error::Forbidden(_) => "Forbidden",
            Error::Unavailable(_) => "MaestroUnavailable",
            Error::Timeout { .. } => "Timeout",
            Error::Server { .. } => "MaestroServerError",
            Error::Protocol(_) => "ProtocolError",
            Error::Config(_) => "ConfigError",
            Error::Fenced(_) => "NotLeader",
        }
    }

    /// Classifies a Maestro error text such as
    /// `failed to update resource: maestro-6: the resource version is not the latest, the latest version: 2`.
    ///
    /// `http_status` is the REST status when the text came from a REST error
    /// body; gRPC business errors carry none.
    pub fn from_maestro_text(message: &str, http_status: Option<u16>) -> Error {
        let code = MaestroCode::find_in(message);
        let message = message.to_string();
        match code.0 {
            Some(6) => {
                if let Some(latest) = latest_version(&message) {
                    Error::StaleVersion {
                        latest: Some(latest),
                        message,
                    }
                } else if message.contains("version is not the latest") {
                    Error::StaleVersion {
                        latest: None,
                        message,
                    }
                } else {
                    Error::Conflict(message)
                }
            }
            Some(7) => Error::NotFound(message),
            Some(4) => Error::Forbidden(message),
            Some(8 | 17 | 21 | 23) => Error::Rejected { code, message },
            // Only an insert into resources names a missing consumer; the
            // same constraint also guards deleting a consumer still in use.
            Some(9)
                if message.contains("fk_resources_consumers")
                    && message.contains("insert or update on table \"resources\"") =>
            {
                // The text names the FK, not the consumer; callers that know
                // the consumer replace this via `with_consumer`.
                Error::UnknownConsumer {
                    consumer: String::new(),
                }
            }
            _ => match http_status {
                Some(400) => Error::Rejected { code, message },
                Some(401) => Error::Unauthenticated(message),
                Some(403) => Error::Forbidden(message),
                Some(404) => Error::NotFound(message),
                Some(409) => Error::Conflict(message),
                Some(502..=504) => Error::Unavailable(message),
                _ => Error::Server { code, message },
            },
        }
    }

    /// Fills in the consumer name of an [`Error::UnknownConsumer`] whose text
    /// did not carry it.
    pub fn with_consumer(self, consumer: &str) -> Error {
        match self {
            Error::UnknownConsumer { consumer: c } if c.is_empty() => Error::UnknownConsumer {
                consumer: consumer.to_string(),
            },
            other => other,
        }
    }
}

fn latest_version(message: &str) -> Option<i64> {
    let (_, tail) = message.split_once("the latest version:")?;
    let digits: String = tail
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The `N` of a `maestro-N` error code, when the text carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaestroCode(pub Option<u32>);

impl MaestroCode {
    pub fn find_in(text: &str) -> MaestroCode {
        let code = text.match_indices("maestro-").find_map(|(at, prefix)| {
            let digits: String = text[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse().ok()
        });
        MaestroCode(code)
    }
}

impl std::fmt::Display for MaestroCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "maestro-{n}"),
            None => f.write_str("no code"),
        }
    }
}

/// An error with its causes, each once: transport errors (reqwest's
/// "error sending request", tonic's "transport error") keep the reason in
/// their sources.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests;
