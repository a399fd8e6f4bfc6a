//! Maestro's REST API (`/api/maestro/v1`): reading consumers and resource
//! bundles, managing consumers and requesting bundle deletion. Bundles are
//! created and updated only over gRPC; see [`super::grpc`].
//!
//! One [`RestClient`] holds one connection pool. It re-reads the bearer
//! token file on every request so a rotated token needs no restart.

mod api;
mod convert;
mod errors;
mod search;
mod types;

/// Also serves the work client's fake tests.
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tls_tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, HeaderValue};
use reqwest::{Certificate, Identity, Method};
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

pub use api::{Listed, MAX_PAGES, follow_pages};
pub use search::{LabelSelector, Operator, Requirement, Search};
pub use types::{BundleStatus, Consumer, Identified, ListOptions, Page, ResourceBundle};

use crate::maestro::config::{MaestroConfig, TlsFiles, read_file, read_token_file};
use crate::maestro::error::{Error, Result};

/// The path every REST call lives under.
const API_PATH: [&str; 3] = ["api", "maestro", "v1"];

/// The page size used when following all pages, as the Go client does.
pub const DEFAULT_PAGE_SIZE: u32 = 400;

/// The server silently clamps larger sizes to this, which would end paging
/// early (a page shorter than asked for looks like the last one).
pub const MAX_PAGE_SIZE: u32 = 65_500;

const OPERATION_ID_HEADER: &str = "x-operation-id";
/// W3C trace context (https://www.w3.org/TR/trace-context/).
const TRACEPARENT_HEADER: &str = "traceparent";

/// A client for one Maestro REST endpoint. Cheap to clone.
#[derive(Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
    operation_id: Option<HeaderValue>,
}

struct Inner {
    http: reqwest::Client,
    /// The configured endpoint, possibly with a path prefix.
    base: Url,
    token_file: Option<PathBuf>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_response_bytes: usize,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("endpoint", &self.inner.base.as_str())
            .field("token_file", &self.inner.token_file)
            .field("operation_id", &self.operation_id)
            .finish()
    }
}

impl RestClient {
    /// Builds the client. TLS files are read now; the token file is read
    /// per request.
    pub fn new(config: &MaestroConfig) -> Result<Self> {
        super::config::ensure_crypto_provider();
        let base = config.http_endpoint.clone();
        if base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "HTTP endpoint {base} cannot have API paths appended"
            )));
        }
        config.check_token_transport("REST", &base, base.scheme() == "https")?;
        let tls = &config.tls;
        if base.scheme() == "http"
            && (tls.ca_file.is_some() || tls.cert_file.is_some() || tls.key_file.is_some())
        {
            tracing::warn!(
                endpoint = %base,
                "TLS files are configured but the HTTP endpoint is plain http://; they are not used"
            );
        }

        let mut builder = reqwest::Client::builder()
            .gzip(true)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Maestro never redirects; following one could carry the bearer
            // token to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("maestro-operator/", env!("CARGO_PKG_VERSION")));

        builder = with_tls_files(builder, tls)?;

        let http = builder.build().map_err(|e| {
            Error::Config(format!(
                "cannot build the HTTP client for {base}: {}",
                errors::causes(&e)
            ))
        })?;
        Ok(RestClient {
            inner: Arc::new(Inner {
                http,
                base,
                token_file: config.token_file.clone(),
                connect_timeout: config.connect_timeout,
                request_timeout: config.request_timeout,
                max_response_bytes: config.max_response_bytes,
            }),
            operation_id: None,
        })
    }

    /// A client that sends `X-Operation-ID: <id>` with every request, so
    /// Maestro's logs and error bodies carry it. Shares the connection pool.
    pub fn with_operation_id(&self, operation_id: &str) -> Result<RestClient> {
        let value = HeaderValue::from_str(operation_id).map_err(|_| {
            Error::Config(format!(
                "operation id {operation_id:?} cannot be sent as an HTTP header"
            ))
        })?;
        Ok(RestClient {
            inner: self.inner.clone(),
            operation_id: Some(value),
        })
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.inner.base
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url> {
        for segment in segments {
            // `url` drops "." and ".." segments, which would turn a get of
            // an id into a get of the collection.
            if segment.is_empty() || *segment == "." || *segment == ".." {
                return Err(Error::Config(format!(
                    "{segment:?} is not a valid Maestro id"
                )));
            }
        }
        let mut url = self.inner.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| {
                Error::Config(format!(
                    "HTTP endpoint {} cannot have a path",
                    self.inner.base
                ))
            })?
            .pop_if_empty()
            .extend(API_PATH)
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request and returns the body of a 2xx answer; anything
    /// else becomes an error. A client span when traces are on, whose W3C
    /// `traceparent` header lets Maestro's API server continue the trace.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let span = tracing::info_span!(
            "maestro.rest",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            url.path = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
        );
        let result = self
            .send(method, segments, query, body)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let url = self.url(segments, query)?;
        let span = tracing::Span::current();
        span.record("url.path", url.path());
        let endpoint = self.inner.base.as_str();
        let attempt = errors::Attempt {
            method: &method,
            path: url.path(),
            endpoint,
            connect_timeout: self.inner.connect_timeout,
            request_timeout: self.inner.request_timeout,
        };

        let request = self.request(method.clone(), url.clone(), body)?;

        let started = Instant::now();
        let limit = self.inner.max_response_bytes;
        let outcome = read_bounded(request, limit).await;
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, bytes) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(read)) => {
                return Err(Error::Protocol(format!(
                    "the answer to {method} {} from Maestro at {endpoint} is larger than \
                     {limit} bytes (at least {read}, decompressed); refusing to read more",
                    url.path(),
                )));
            }
            Err(e) => {
                let error = errors::from_transport(&attempt, &e);
                tracing::debug!(
                    %method, path = url.path(), query = url.query(), elapsed_ms,
                    error = %error, "Maestro REST call failed"
                );
                return Err(error);
            }
        };
        span.record("http.response.status_code", status.as_u16());
        tracing::debug!(
            %method, path = url.path(), query = url.query(), status = status.as_u16(),
            elapsed_ms, bytes = bytes.len(), "Maestro REST call"
        );
        if status.is_success() {
            Ok(Reply {
                method,
                path: url.path().to_string(),
                body: bytes,
            })
        } else {
            Err(errors::from_response(&method, url.path(), status, &bytes))
        }
    }

    /// The request with the headers every call carries: JSON, the bearer
    /// token, the operation ID and the trace context.
    fn request(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::RequestBuilder> {
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(ACCEPT, "application/json");
        if let Some(path) = &self.inner.token_file {
            // A small local file, read per request so rotation needs no
            // restart; not worth a blocking-pool hop.
            let token = read_token_file(path)?;
            request = request.bearer_auth(token);
        }
        if let Some(operation_id) = &self.operation_id {
            request = request.header(OPERATION_ID_HEADER, operation_id.clone());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(traceparent) = crate::telemetry::traces::current_traceparent() {
            request = request.header(TRACEPARENT_HEADER, traceparent);
        }
        Ok(request)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        self.call(Method::GET, segments, query, None).await?.json()
    }
}

/// A 2xx answer.
struct Reply {
    method: Method,
    path: String,
    body: Bytes,
}

impl Reply {
    /// Decodes the body; a mismatch is the server breaking the contract.
    fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Protocol(format!(
                "{} {}: cannot decode the answer: {e}; body starts: {}",
                self.method,
                self.path,
                errors::excerpt(&self.body)
            ))
        })
    }
}

/// The client trusting only the configured CA, if any, and presenting the
/// configured client certificate, if any.
fn with_tls_files(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsFiles,
) -> Result<reqwest::ClientBuilder> {
    if let Some(ca_file) = &tls.ca_file {
        let pem = read_file("CA file", ca_file)?;
        let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Config(format!(
                "CA file {}: {}",
                ca_file.display(),
                errors::causes(&e)
            ))
        })?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "CA file {} holds no PEM certificate",
                ca_file.display()
            )));
        }
        // The CA file is the trust anchor for this one endpoint, as on
        // the gRPC channel; it must not depend on what the image's
        // system store happens to hold.
        builder = builder.tls_certs_only(certs);
    }

    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let mut pem = read_file("client certificate file", cert_file)?;
            pem.push(b'\n');
            pem.extend(read_file("client key file", key_file)?);
            let identity = Identity::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "client certificate {} with key {}: {}",
                    cert_file.display(),
                    key_file.display(),
                    errors::causes(&e)
                ))
            })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(Error::Config(
                "a client certificate needs both --cert-file and --key-file".into(),
            ));
        }
    }
    Ok(builder)
}

/// Sends the request and reads the answer, or, past `limit` bytes, how
/// many it had read. Read in chunks (already decompressed) so an oversized
/// answer is refused at the limit, never buffered whole.
async fn read_bounded(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> std::result::Result<std::result::Result<(reqwest::StatusCode, Bytes), usize>, reqwest::Error> {
    let mut response = request.send().await?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(Err(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok((status, Bytes::from(body))))
}

#[cfg(test)]
mod tests;
