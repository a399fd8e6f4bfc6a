//! Turning failed HTTP exchanges into [`crate::maestro::Error`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::maestro::error::{Error, MaestroCode};

/// Longest excerpt of a body that is not a Maestro error.
const EXCERPT_CHARS: usize = 200;

/// Maestro's error body. The router's own 404 says `type` where handlers
/// say `kind`; neither is needed to classify the error.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    operation_id: String,
}

/// Classifies a non-2xx answer.
pub(super) fn from_response(method: &Method, path: &str, status: StatusCode, body: &[u8]) -> Error {
    let context = format!("{method} {path} -> HTTP {}", status.as_u16());
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if !e.code.is_empty() => {
            let code = MaestroCode::find_in(&e.code);
            let mut message = format!("{}: {} ({context}", e.code, e.reason);
            if !e.operation_id.is_empty() {
                message.push_str(&format!(", operation {}", e.operation_id));
            }
            message.push(')');
            if status == StatusCode::NOT_FOUND && code.0 != Some(7) {
                // Only maestro-7 means "no such object". The router's
                // maestro-404 means the path itself is unknown: a wrong
                // endpoint must not read as "the work does not exist".
                return wrong_endpoint(&message);
            }
            Error::from_maestro_text(&message, Some(status.as_u16()))
        }
        _ => from_status(status, format!("{context}: {}", excerpt(body))),
    }
}

/// For bodies that are not Maestro's (proxies, load balancers): the status
/// alone decides, since the body may mention `maestro-<n>` in a host name.
fn from_status(status: StatusCode, message: String) -> Error {
    match status.as_u16() {
        400 => Error::Rejected {
            code: MaestroCode(None),
            message,
        },
        401 => Error::Unauthenticated(message),
        403 => Error::Forbidden(message),
        404 => wrong_endpoint(&message),
        409 => Error::Conflict(message),
        408 | 429 | 502..=504 => Error::Unavailable(message),
        500..=599 => Error::Server {
            code: MaestroCode(None),
            message,
        },
        // Redirects (not followed), 405 and the like mean we are not
        // talking to the API we were written for.
        _ => Error::Protocol(message),
    }
}

fn wrong_endpoint(message: &str) -> Error {
    Error::Protocol(format!(
        "{message}; this is not a Maestro not-found answer, so the HTTP endpoint may be wrong"
    ))
}

/// A short, single-line excerpt of a body, for messages.
pub(super) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut words = text.split_whitespace();
    let mut out = String::new();
    let mut chars = 0;
    for word in words.by_ref() {
        let n = word.chars().count();
        if chars + n + 1 > EXCERPT_CHARS {
            let room = EXCERPT_CHARS.saturating_sub(chars + 1);
            if !out.is_empty() {
                out.push(' ');
            }
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += n;
    }
    if out.is_empty() {
        "(empty body)".to_string()
    } else {
        out
    }
}

/// What a request was, for transport error messages.
pub(super) struct Attempt<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub endpoint: &'a str,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// Classifies a failure to send a request or to read its answer.
pub(super) fn from_transport(attempt: &Attempt<'_>, e: &reqwest::Error) -> Error {
    let Attempt {
        method,
        path,
        endpoint,
        ..
    } = attempt;
    let what = format!("{method} {path} at Maestro {endpoint}");
    if e.is_timeout() {
        // reqwest reports both deadlines as a timeout; a connect timeout is
        // also a connect error.
        return if e.is_connect() {
            Error::Timeout {
                what: format!("a connection to Maestro at {endpoint} (for {method} {path})"),
                after: attempt.connect_timeout,
            }
        } else {
            Error::Timeout {
                what,
                after: attempt.request_timeout,
            }
        };
    }
    let cause = causes(e);
    if let Some(tls) = certificate_problem(e) {
        // Retrying cannot fix trust or identity; the files need changing.
        return Error::Config(format!(
            "TLS with Maestro at {endpoint} failed ({method} {path}): {tls}; check \
             --ca-file (the CA that signed the server's certificate) and, for mutual TLS, \
             --cert-file and --key-file"
        ));
    }
    if e.is_builder() {
        return Error::Config(format!("cannot build {what}: {cause}"));
    }
    if e.is_decode() {
        return Error::Protocol(format!("{what}: cannot decode the body: {cause}"));
    }
    if e.is_connect() {
        return Error::Unavailable(format!(
            "cannot connect to Maestro at {endpoint} ({method} {path}): {cause}"
        ));
    }
    Error::Unavailable(format!("{what}: {cause}"))
}

/// A TLS failure about certificates, from either side of the handshake.
/// rustls errors reach us wrapped in `io::Error`, whose `source()` skips
/// the wrapped error, so those are unwrapped by hand.
fn certificate_problem<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    use rustls::AlertDescription as A;
    let mut next = Some(e);
    while let Some(mut error) = next {
        // io::Error may wrap io::Error (hyper-rustls does so twice).
        while let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            error = inner;
        }
        let tls = error.downcast_ref::<rustls::Error>();
        if let Some(tls) = tls {
            let about_certificates = match tls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    true
                }
                rustls::Error::AlertReceived(alert) => matches!(
                    alert,
                    A::BadCertificate
                        | A::UnsupportedCertificate
                        | A::CertificateRevoked
                        | A::CertificateExpired
                        | A::CertificateUnknown
                        | A::UnknownCA
                        | A::CertificateRequired
                        | A::AccessDenied
                ),
                _ => false,
            };
            return about_certificates.then_some(tls);
        }
        next = error.source();
    }
    None
}

/// The error and its sources, since reqwest's own message is only
/// "error sending request".
pub(super) use crate::maestro::error::causes;

#[cfg(test)]
mod tests;
