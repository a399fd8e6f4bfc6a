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

use crate::error::{Error, Result};
use crate::maestro::config::{MaestroConfig, read_file, read_token_file};

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

        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
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

        let started = Instant::now();
        let limit = self.inner.max_response_bytes;
        let outcome = async {
            let mut response = request.send().await?;
            let status = response.status();
            // Read in chunks (already decompressed) so an oversized answer
            // is refused at the limit, never buffered whole.
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > limit {
                    return Ok(Err(body.len() + chunk.len()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>(Ok((status, Bytes::from(body))))
        }
        .await;
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

#[cfg(test)]
mod tests {
    use super::fake::{FakeServer, Recorded, Reply, gzip};
    use super::*;
    use crate::names::SourceId;

    const CONSUMER: &str = r#"{"id":"c1","kind":"Consumer","name":"cluster1"}"#;

    fn config(url: &str) -> MaestroConfig {
        MaestroConfig::new("127.0.0.1:1", url, SourceId::new("mw-client").unwrap()).unwrap()
    }

    fn client(url: &str) -> RestClient {
        RestClient::new(&config(url)).unwrap()
    }

    #[tokio::test]
    async fn token_is_sent_as_bearer_and_reread_for_each_request() {
        let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "first-token\n").unwrap();
        let mut cfg = config(&server.url());
        cfg.token_file = Some(token.clone());
        // The fake serves plaintext; real deployments use TLS.
        cfg.allow_insecure_token = true;
        let c = RestClient::new(&cfg).unwrap();
        c.get_consumer("c1").await.unwrap();
        std::fs::write(&token, "second-token").unwrap();
        c.get_consumer("c1").await.unwrap();
        let auth: Vec<_> = server
            .requests()
            .iter()
            .map(|r| r.header("authorization").unwrap_or_default().to_string())
            .collect();
        assert_eq!(auth, ["Bearer first-token", "Bearer second-token"]);
        assert!(!format!("{c:?}").contains("second-token"));
    }

    #[tokio::test]
    async fn no_token_file_sends_no_authorization() {
        let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
        client(&server.url()).get_consumer("c1").await.unwrap();
        assert_eq!(server.requests()[0].header("authorization"), None);
    }

    #[tokio::test]
    async fn unreadable_token_file_fails_before_sending() {
        let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
        let mut cfg = config(&server.url());
        cfg.token_file = Some("/nonexistent/token".into());
        // The fake serves plaintext; real deployments use TLS.
        cfg.allow_insecure_token = true;
        let e = RestClient::new(&cfg)
            .unwrap()
            .get_consumer("c1")
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("/nonexistent/token")),
            "{e:?}"
        );
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn operation_id_is_sent_only_by_a_client_given_one() {
        let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
        let c = client(&server.url());
        c.with_operation_id("op-42")
            .unwrap()
            .get_consumer("c1")
            .await
            .unwrap();
        c.get_consumer("c1").await.unwrap();
        let ids: Vec<_> = server
            .requests()
            .iter()
            .map(|r| r.header("x-operation-id").map(str::to_string))
            .collect();
        assert_eq!(ids, [Some("op-42".to_string()), None]);
        assert!(c.with_operation_id("bad\nid").is_err());
    }

    #[tokio::test]
    async fn gzip_answers_are_decoded() {
        let server = FakeServer::start(|r: &Recorded| {
            assert!(
                r.header("accept-encoding")
                    .unwrap_or_default()
                    .contains("gzip")
            );
            let mut reply = Reply::json(200, "");
            reply.body = gzip(CONSUMER.as_bytes());
            reply
                .headers
                .push(("Content-Encoding".into(), "gzip".into()));
            reply
        })
        .await;
        let consumer = client(&server.url()).get_consumer("c1").await.unwrap();
        assert_eq!(consumer.name, "cluster1");
    }

    #[tokio::test]
    async fn an_answer_over_the_size_limit_is_refused_after_decompression() {
        let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(64 * 1024));
        let gzipped = gzip(big.as_bytes());
        let server = FakeServer::start(move |_: &Recorded| {
            let mut reply = Reply::json(200, "");
            reply.body = gzipped.clone();
            reply
                .headers
                .push(("Content-Encoding".into(), "gzip".into()));
            reply
        })
        .await;
        let mut cfg = config(&server.url());
        cfg.max_response_bytes = 16 * 1024;
        let e = RestClient::new(&cfg)
            .unwrap()
            .get_consumer("c1")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, Error::Protocol(_)) && text.contains("larger than 16384 bytes"),
            "{text}"
        );
        assert!(text.contains("GET /api/maestro/v1/consumers/c1"), "{text}");
        // Within the limit, the same answer reads.
        cfg.max_response_bytes = 1024 * 1024;
        let c = RestClient::new(&cfg).unwrap().get_consumer("c1").await;
        assert!(!matches!(c, Err(Error::Protocol(ref m)) if m.contains("larger than")));
    }

    #[tokio::test]
    async fn slow_answer_is_a_timeout_naming_the_duration() {
        let server = FakeServer::start(|_: &Recorded| {
            let mut reply = Reply::json(200, CONSUMER);
            reply.delay = Duration::from_secs(10);
            reply
        })
        .await;
        let mut cfg = config(&server.url());
        cfg.request_timeout = Duration::from_millis(300);
        let c = RestClient::new(&cfg).unwrap();
        let started = Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), c.get_consumer("c1"))
            .await
            .expect("the client must give up on its own")
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        let Error::Timeout { what, after } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(*after, Duration::from_millis(300));
        assert!(what.contains("GET /api/maestro/v1/consumers/c1"), "{what}");
        assert!(e.to_string().contains("timed out after 300ms"), "{e}");
    }

    #[tokio::test]
    async fn refused_connection_is_unavailable_naming_the_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = client(&url).get_consumer("c1").await.unwrap_err();
        let Error::Unavailable(m) = &e else {
            panic!("{e:?}")
        };
        assert!(m.contains(&url), "{m}");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn undecodable_success_is_a_protocol_error_naming_the_path() {
        let server =
            FakeServer::start(|_: &Recorded| Reply::json(200, r#"{"kind":"Consumer"}"#)).await;
        let e = client(&server.url()).get_consumer("c1").await.unwrap_err();
        let Error::Protocol(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("GET /api/maestro/v1/consumers/c1") && m.contains("missing field `id`"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn error_bodies_map_to_variants_end_to_end() {
        let server = FakeServer::start(|r: &Recorded| match r.path.rsplit('/').next() {
            Some("bad-search") => Reply::json(
                400,
                r#"{"code":"maestro-21","href":"/api/maestro/v1/errors/21","id":"21","kind":"Error","operation_id":"o","reason":"Failed to parse search query: x"}"#,
            ),
            Some("broken") => Reply::json(
                500,
                r#"{"code":"maestro-9","href":"/api/maestro/v1/errors/9","id":"9","kind":"Error","operation_id":"o","reason":"Unspecified error"}"#,
            ),
            _ => {
                let mut reply = Reply::empty(502);
                reply.headers.push(("Content-Type".into(), "text/html".into()));
                reply.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
                reply
            }
        })
        .await;
        let c = client(&server.url());
        let e = c.get_consumer("bad-search").await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Rejected {
                    code: crate::error::MaestroCode(Some(21)),
                    ..
                }
            ),
            "{e:?}"
        );
        let e = c.get_consumer("broken").await.unwrap_err();
        assert!(matches!(e, Error::Server { .. }), "{e:?}");
        let e = c.get_consumer("proxy").await.unwrap_err();
        let Error::Unavailable(m) = &e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("502 Bad Gateway") && m.contains("GET /api/maestro/v1/consumers/proxy"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn endpoint_path_prefix_is_kept() {
        let server = FakeServer::start(|_: &Recorded| Reply::json(200, CONSUMER)).await;
        client(&format!("{}/maestro/", server.url()))
            .get_consumer("c 1/x")
            .await
            .unwrap();
        assert_eq!(
            server.requests()[0].path,
            "/maestro/api/maestro/v1/consumers/c%201%2Fx"
        );
    }

    #[test]
    fn ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let mut cfg = config("https://maestro:8000");
        cfg.tls.ca_file = Some(ca);
        let e = RestClient::new(&cfg).unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("ca.pem")),
            "{e:?}"
        );
    }

    #[test]
    fn half_a_client_certificate_is_refused() {
        let mut cfg = config("https://maestro:8000");
        cfg.tls.key_file = Some("/tmp/key.pem".into());
        let e = RestClient::new(&cfg).unwrap_err();
        assert!(
            matches!(e, Error::Config(ref m) if m.contains("--cert-file")),
            "{e:?}"
        );
    }
}
