//! The gRPC source client: publishes spec events and follows the status
//! stream of one source.
//!
//! One HTTP/2 channel carries both Publish and Subscribe. That matters: a
//! status resync request is answered only by the Maestro instance that
//! received it, so it must travel with the stream it is meant for.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};
use tracing::{debug, info, warn};

use super::codec::{self, DATA_TYPE, Received, StatusEvent};
use super::config::{MaestroConfig, read_file};
use super::proto::cloud_event_service_client::CloudEventServiceClient;
use super::proto::{CloudEvent, PublishRequest, SubscriptionRequest};
use super::tls_probe;
use crate::maestro::error::{Error, Result};
use crate::names::SourceId;

/// Status events can carry whole bundles and exceed gRPC's 4 MiB default;
/// Maestro sends up to 2 GiB. 64 MiB covers any bundle the 500 KiB manifest
/// limit allows, with its status.
pub const MAX_RECEIVE_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Maestro answers pings more often than every 5 s with GOAWAY
/// `too_many_pings`; stay well above.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Maestro sends a heartbeat every 10 s by default; three missed ones mean
/// the stream is dead even if TCP has not noticed.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

type Service = InterceptedService<Channel, BearerToken>;

/// A cheap-to-clone handle on one Maestro gRPC server.
#[derive(Clone)]
pub struct GrpcSourceClient {
    client: CloudEventServiceClient<Service>,
    source: SourceId,
    endpoint: String,
    publish_timeout: Duration,
    /// For [`tls_probe::refusal`] when the server hangs up on us.
    config: Arc<MaestroConfig>,
}

impl std::fmt::Debug for GrpcSourceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcSourceClient")
            .field("endpoint", &self.endpoint)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl GrpcSourceClient {
    /// Prepares a client. The connection is made on first use (and remade
    /// after failures), so this does not fail when Maestro is down.
    pub fn new(config: &MaestroConfig) -> Result<Self> {
        super::config::ensure_crypto_provider();
        config.check()?;
        let url = config
            .grpc_endpoint
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::Config(format!("gRPC endpoint {url:?}: {e}")))?
            .connect_timeout(config.connect_timeout)
            .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            // Maestro does not permit pings without an active stream.
            .keep_alive_while_idle(false)
            .tcp_nodelay(true);

        let tls = config.grpc_endpoint.scheme() == "https" || config.tls.ca_file.is_some();
        config.check_token_transport("gRPC", &config.grpc_endpoint, tls)?;
        if tls {
            endpoint = endpoint.tls_config(tls_config(config)?).map_err(|e| {
                Error::Config(format!(
                    "gRPC TLS for {url}: {}",
                    crate::maestro::error::causes(&e)
                ))
            })?;
        }

        let config = Arc::new(config.clone());
        let interceptor = BearerToken {
            config: config.clone(),
        };
        let client =
            CloudEventServiceClient::with_interceptor(endpoint.connect_lazy(), interceptor)
                .max_decoding_message_size(MAX_RECEIVE_MESSAGE_BYTES);
        Ok(GrpcSourceClient {
            client,
            source: config.source_id.clone(),
            endpoint: url,
            publish_timeout: config.request_timeout,
            config,
        })
    }

    pub fn source(&self) -> &SourceId {
        &self.source
    }

    /// A TLS server that refuses our client certificate just closes the
    /// connection; ask it why before reporting the network as the cause.
    async fn explain(&self, error: Error) -> Error {
        // Only a connection the server closed after accepting it; refused or
        // timed-out connections are outages, and probing them would double
        // the wait.
        let hung_up = matches!(&error, Error::Unavailable(m)
            if ["connection closed", "connection reset", "broken pipe"]
                .iter()
                .any(|s| m.to_ascii_lowercase().contains(s)));
        if !hung_up {
            return error;
        }
        match tls_probe::refusal(&self.config).await {
            Some(why) => Error::Unauthenticated(format!("{}: {why}", self.endpoint)),
            None => error,
        }
    }

    /// Publishes one event. Returns once Maestro has committed it (delivery
    /// to the agent is asynchronous).
    pub async fn publish(&self, event: CloudEvent) -> Result<()> {
        let event_type = event.r#type.clone();
        let mut client = self.client.clone();
        let request = Request::new(PublishRequest { event: Some(event) });
        match tokio::time::timeout(self.publish_timeout, client.publish(request)).await {
            Err(_) => Err(Error::Timeout {
                what: format!("Maestro at {} to accept {event_type}", self.endpoint),
                after: self.publish_timeout,
            }),
            Ok(Err(status)) => Err(self.explain(classify_status(&status, &self.endpoint)).await),
            Ok(Ok(_)) => {
                debug!(endpoint = %self.endpoint, %event_type, "published");
                Ok(())
            }
        }
    }

    /// Follows the status stream of this client's source for as long as the
    /// returned receiver lives, reconnecting with backoff and jitter.
    ///
    /// After every (re)subscription the stream yields
    /// [`StreamEvent::Subscribed`]: Maestro does not replay what was missed,
    /// so the consumer must resync then (list over REST, and optionally
    /// [`codec::encode_status_resync`]).
    pub fn subscribe(&self, options: SubscribeOptions) -> mpsc::Receiver<StreamEvent> {
        let (tx, rx) = mpsc::channel(options.buffer);
        let client = self.clone();
        tokio::spawn(async move { client.run_subscription(options, tx).await });
        rx
    }

    async fn run_subscription(self, options: SubscribeOptions, tx: mpsc::Sender<StreamEvent>) {
        let mut backoff = Backoff::new(options.min_backoff, options.max_backoff);
        loop {
            let outcome = self.subscribe_once(&options, &tx).await;
            if tx.is_closed() {
                return;
            }
            let (error, was_healthy) = match outcome {
                SessionEnd::ReceiverGone => return,
                SessionEnd::Failed { error, was_healthy } => (error, was_healthy),
            };
            if was_healthy {
                backoff.reset();
            }
            let delay = backoff.next_delay();
            warn!(endpoint = %self.endpoint, source = %self.source, error = %error,
                  retry_in = ?delay, "status stream lost; reconnecting");
            if tx
                .send(StreamEvent::Disconnected {
                    error: Arc::new(error),
                    retry_in: delay,
                })
                .await
                .is_err()
            {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = tx.closed() => return,
            }
        }
    }

    async fn subscribe_once(
        &self,
        options: &SubscribeOptions,
        tx: &mpsc::Sender<StreamEvent>,
    ) -> SessionEnd {
        let mut client = self.client.clone();
        let request = Request::new(SubscriptionRequest {
            source: self.source.to_string(),
            cluster_name: String::new(),
            data_type: DATA_TYPE.into(),
        });
        let response = match tokio::time::timeout(
            options.heartbeat_timeout,
            client.subscribe(request),
        )
        .await
        {
            Err(_) => {
                return SessionEnd::Failed {
                    error: Error::Timeout {
                        what: format!("Maestro at {} to open the status stream", self.endpoint),
                        after: options.heartbeat_timeout,
                    },
                    was_healthy: false,
                };
            }
            Ok(Err(status)) => {
                return SessionEnd::Failed {
                    error: self.explain(classify_status(&status, &self.endpoint)).await,
                    was_healthy: false,
                };
            }
            Ok(Ok(response)) => response,
        };
        let subscription_id = response
            .metadata()
            .get("subscription-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        info!(endpoint = %self.endpoint, source = %self.source,
              subscription_id = subscription_id.as_deref().unwrap_or(""), "status stream subscribed");
        if tx
            .send(StreamEvent::Subscribed { subscription_id })
            .await
            .is_err()
        {
            return SessionEnd::ReceiverGone;
        }

        self.forward_events(response.into_inner(), options, tx)
            .await
    }

    /// Forwards the stream's status events to `tx` until the stream ends,
    /// stays silent past the heartbeat timeout, or the receiver is gone.
    async fn forward_events(
        &self,
        mut stream: tonic::Streaming<CloudEvent>,
        options: &SubscribeOptions,
        tx: &mpsc::Sender<StreamEvent>,
    ) -> SessionEnd {
        let mut received_any = false;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(options.heartbeat_timeout, stream.next()) => next,
                () = tx.closed() => return SessionEnd::ReceiverGone,
            };
            let event = match next {
                Err(_) => {
                    return SessionEnd::Failed {
                        error: Error::Unavailable(format!(
                            "no heartbeat from {} for {:?}",
                            self.endpoint, options.heartbeat_timeout
                        )),
                        was_healthy: received_any,
                    };
                }
                Ok(None) => {
                    return SessionEnd::Failed {
                        error: Error::Unavailable(format!(
                            "{} closed the status stream",
                            self.endpoint
                        )),
                        was_healthy: received_any,
                    };
                }
                Ok(Some(Err(status))) => {
                    return SessionEnd::Failed {
                        error: classify_status(&status, &self.endpoint),
                        was_healthy: received_any,
                    };
                }
                Ok(Some(Ok(event))) => event,
            };
            received_any = true;
            let forwarded = match codec::decode(&event) {
                Ok(Received::Heartbeat) => continue,
                Ok(Received::Ignored { event_type }) => {
                    debug!(%event_type, "ignoring event of unhandled type");
                    continue;
                }
                Ok(Received::Status(status)) => StreamEvent::Status(status),
                Err(error) => {
                    // One bad event must not cost the others: report and go on.
                    warn!(error = %error, event_id = %event.id, "undecodable status event");
                    StreamEvent::Undecodable(Arc::new(error))
                }
            };
            if tx.send(forwarded).await.is_err() {
                return SessionEnd::ReceiverGone;
            }
        }
    }
}

enum SessionEnd {
    ReceiverGone,
    Failed { error: Error, was_healthy: bool },
}

/// What the status stream yields.
#[derive(Debug, Clone)]
pub enum StreamEvent {
    /// The stream is (again) subscribed: resync now.
    Subscribed {
        subscription_id: Option<String>,
    },
    Status(Box<StatusEvent>),
    /// An event that could not be decoded; the stream goes on.
    Undecodable(Arc<Error>),
    /// The stream failed; it will be retried after `retry_in`.
    Disconnected {
        error: Arc<Error>,
        retry_in: Duration,
    },
}

#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    pub heartbeat_timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Events buffered for a slow consumer. The stream is read eagerly
    /// because a stalled reader stalls Maestro's broadcaster for everyone.
    pub buffer: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            buffer: 4096,
        }
    }
}

/// Adds `authorization: Bearer <token>` to every request when a token file
/// is configured, re-reading the file so rotated tokens apply at once.
#[derive(Clone)]
pub struct BearerToken {
    config: Arc<MaestroConfig>,
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match self.config.read_token() {
            Ok(None) => {}
            Ok(Some(token)) => {
                let value = MetadataValue::try_from(format!("Bearer {token}"))
                    .map_err(|_| Status::unauthenticated("token contains invalid characters"))?;
                request.metadata_mut().insert("authorization", value);
            }
            Err(e) => return Err(Status::unauthenticated(e.to_string())),
        }
        Ok(request)
    }
}

fn tls_config(config: &MaestroConfig) -> Result<ClientTlsConfig> {
    let mut tls = ClientTlsConfig::new();
    if let Some(host) = config.grpc_endpoint.host_str() {
        tls = tls.domain_name(host.to_string());
    }
    match &config.tls.ca_file {
        Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read_file("CA file", ca)?)),
        None => tls = tls.with_enabled_roots(),
    }
    if let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) {
        tls = tls.identity(Identity::from_pem(
            read_file("client certificate file", cert)?,
            read_file("client key file", key)?,
        ));
    }
    Ok(tls)
}

/// Maps a gRPC status to the error enum. Maestro returns business errors as
/// `Unknown` with a `maestro-N` text; only its auth interceptors use real
/// codes.
pub fn classify_status(status: &Status, endpoint: &str) -> Error {
    let message = status.message();
    // Connection and TLS failures arrive as `Unknown: transport error` with
    // the cause only in the source chain; without it the text says nothing.
    if let Some(cause) = std::error::Error::source(status) {
        let detail = crate::maestro::error::causes(cause);
        if let Some(why) = tls_probe::explain_reported_alert(&detail) {
            return Error::Unauthenticated(format!("{endpoint}: {why}"));
        }
        // Retrying cannot make an untrusted server certificate trusted.
        if detail.contains("invalid peer certificate") {
            return Error::Config(format!(
                "{endpoint}: cannot verify the server's TLS certificate ({detail}); \
                 is --ca-file the CA that signed it?"
            ));
        }
        return Error::Unavailable(format!("{endpoint}: {message}: {detail}"));
    }
    match status.code() {
        Code::Unauthenticated => Error::Unauthenticated(message.to_string()),
        Code::PermissionDenied => Error::Forbidden(message.to_string()),
        Code::Unavailable => Error::Unavailable(format!("{endpoint}: {message}")),
        Code::DeadlineExceeded => {
            Error::Unavailable(format!("{endpoint}: deadline exceeded: {message}"))
        }
        Code::ResourceExhausted => Error::Rejected {
            code: crate::maestro::error::MaestroCode(None),
            message: format!("message too large for Maestro: {message}"),
        },
        Code::InvalidArgument => Error::Rejected {
            code: crate::maestro::error::MaestroCode(None),
            message: message.to_string(),
        },
        _ if message.starts_with("unauthorized to ") => Error::Forbidden(message.to_string()),
        _ if message.starts_with("token not authenticated") => {
            Error::Unauthenticated(message.to_string())
        }
        _ => Error::from_maestro_text(message, None),
    }
}

/// Also serves the work client's and the reconciler's offline tests.
#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod fake_tests;
