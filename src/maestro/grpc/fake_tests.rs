//! The gRPC client against small in-process servers, for what the real
//! Maestro cannot be made to do on demand: drop streams, fall silent,
//! demand client certificates.

use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

use super::fake::EventStream;
use super::*;
use crate::maestro::codec::HEARTBEAT_TYPE;
use crate::maestro::proto::cloud_event_service_server::CloudEventService;

/// How the fake answers Subscribe.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Send one heartbeat, then end the stream.
    HeartbeatThenEnd,
    /// Accept and never send anything.
    Silent,
    /// A heartbeat every 50 ms, forever.
    Heartbeats,
}

#[derive(Clone)]
struct Fake {
    behaviour: Behaviour,
    seen: Arc<Mutex<Seen>>,
    publish_error: Option<Status>,
}

#[derive(Default)]
struct Seen {
    authorization: Vec<Option<String>>,
    subscriptions: Vec<SubscriptionRequest>,
}

fn heartbeat() -> CloudEvent {
    CloudEvent {
        id: "hb".into(),
        spec_version: "1.0".into(),
        r#type: HEARTBEAT_TYPE.into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl CloudEventService for Fake {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        self.record_auth(&request);
        match &self.publish_error {
            Some(status) => Err(status.clone()),
            None => Ok(Response::new(())),
        }
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscriptionRequest>,
    ) -> Result<Response<EventStream>, Status> {
        self.record_auth(&request);
        self.seen.lock().subscriptions.push(request.into_inner());
        let stream: EventStream = match self.behaviour {
            Behaviour::HeartbeatThenEnd => Box::pin(tokio_stream::iter([Ok(heartbeat())])),
            Behaviour::Silent => Box::pin(futures::stream::pending()),
            Behaviour::Heartbeats => Box::pin(async_stream::stream! {
                loop {
                    yield Ok(heartbeat());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }),
        };
        let mut response = Response::new(stream);
        response
            .metadata_mut()
            .insert("subscription-id", "sub-1".parse().unwrap());
        Ok(response)
    }
}

impl Fake {
    fn new(behaviour: Behaviour) -> Fake {
        Fake {
            behaviour,
            seen: Arc::default(),
            publish_error: None,
        }
    }

    fn record_auth<T>(&self, request: &Request<T>) {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.seen.lock().authorization.push(auth);
    }

    async fn serve(self, tls: Option<ServerTlsConfig>) -> String {
        super::fake::serve(self, tls).await
    }
}

fn config(endpoint: &str) -> MaestroConfig {
    let mut c = MaestroConfig::new(
        endpoint,
        "http://127.0.0.1:1",
        SourceId::new("fake-test").unwrap(),
    )
    .unwrap();
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c
}

fn fast(heartbeat_timeout: Duration) -> SubscribeOptions {
    SubscribeOptions {
        heartbeat_timeout,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        buffer: 16,
    }
}

async fn next(rx: &mut mpsc::Receiver<StreamEvent>) -> StreamEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event in time")
        .expect("stream open")
}

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rest/tls")
        .join(name)
}

fn server_tls(require_client_cert: bool) -> ServerTlsConfig {
    let read = |n: &str| std::fs::read(tls_file(n)).unwrap();
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(
        read("server.pem"),
        read("server-key.pem"),
    ));
    if require_client_cert {
        tls.client_ca_root(Certificate::from_pem(read("ca.pem")))
    } else {
        tls
    }
}

#[tokio::test]
async fn a_dropped_stream_is_resubscribed_with_a_fresh_subscribed_signal() {
    let fake = Fake::new(Behaviour::HeartbeatThenEnd);
    let seen = fake.seen.clone();
    let endpoint = fake.serve(None).await;
    let client = GrpcSourceClient::new(&config(&endpoint)).unwrap();
    let mut rx = client.subscribe(fast(Duration::from_secs(5)));

    let mut subscribed = 0;
    let mut disconnected = 0;
    while subscribed < 3 {
        match next(&mut rx).await {
            StreamEvent::Subscribed { subscription_id } => {
                assert_eq!(subscription_id.as_deref(), Some("sub-1"));
                subscribed += 1;
            }
            StreamEvent::Disconnected { error, .. } => {
                assert!(
                    error.to_string().contains("closed the status stream"),
                    "{error}"
                );
                disconnected += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(disconnected >= 2);
    let seen = seen.lock();
    assert!(seen.subscriptions.len() >= 3);
    assert_eq!(seen.subscriptions[0].source, "fake-test");
    assert_eq!(seen.subscriptions[0].data_type, DATA_TYPE);
    assert_eq!(seen.subscriptions[0].cluster_name, "");
}

#[tokio::test]
async fn a_silent_stream_is_abandoned_after_the_heartbeat_timeout() {
    let endpoint = Fake::new(Behaviour::Silent).serve(None).await;
    let client = GrpcSourceClient::new(&config(&endpoint)).unwrap();
    let mut rx = client.subscribe(fast(Duration::from_millis(300)));
    assert!(matches!(
        next(&mut rx).await,
        StreamEvent::Subscribed { .. }
    ));
    match next(&mut rx).await {
        StreamEvent::Disconnected { error, .. } => {
            assert!(error.to_string().contains("no heartbeat"), "{error}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        next(&mut rx).await,
        StreamEvent::Subscribed { .. }
    ));
}

#[tokio::test]
async fn heartbeats_keep_a_quiet_stream_alive() {
    let endpoint = Fake::new(Behaviour::Heartbeats).serve(None).await;
    let client = GrpcSourceClient::new(&config(&endpoint)).unwrap();
    let mut rx = client.subscribe(fast(Duration::from_millis(300)));
    assert!(matches!(
        next(&mut rx).await,
        StreamEvent::Subscribed { .. }
    ));
    // Heartbeats are consumed, not forwarded: nothing arrives, and above
    // all no Disconnected, for several heartbeat timeouts.
    let quiet = tokio::time::timeout(Duration::from_millis(1200), rx.recv()).await;
    assert!(quiet.is_err(), "unexpected event: {quiet:?}");
}

#[tokio::test]
async fn the_token_file_is_sent_as_a_bearer_token_and_re_read() {
    let fake = Fake::new(Behaviour::Heartbeats);
    let seen = fake.seen.clone();
    let endpoint = fake.serve(None).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first\n").unwrap();
    let mut config = config(&endpoint);
    config.token_file = Some(token.clone());
    // The fake serves plaintext; real deployments use TLS.
    config.allow_insecure_token = true;
    let client = GrpcSourceClient::new(&config).unwrap();

    client.publish(heartbeat()).await.unwrap();
    std::fs::write(&token, "second").unwrap();
    client.publish(heartbeat()).await.unwrap();
    let mut rx = client.subscribe(fast(Duration::from_secs(5)));
    assert!(matches!(
        next(&mut rx).await,
        StreamEvent::Subscribed { .. }
    ));

    let auth = seen.lock().authorization.clone();
    assert_eq!(
        auth,
        [
            Some("Bearer first".to_string()),
            Some("Bearer second".to_string()),
            Some("Bearer second".to_string())
        ]
    );
}

#[tokio::test]
async fn publish_errors_are_classified_from_the_maestro_code() {
    let mut fake = Fake::new(Behaviour::Silent);
    fake.publish_error = Some(Status::unknown(
        "failed to update resource: maestro-6: the resource version is not the latest, the latest version: 5",
    ));
    let endpoint = fake.serve(None).await;
    let client = GrpcSourceClient::new(&config(&endpoint)).unwrap();
    let err = client.publish(heartbeat()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleVersion {
                latest: Some(5),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn mtls_presents_the_client_certificate_and_without_one_says_it_is_required() {
    let endpoint = Fake::new(Behaviour::Silent)
        .serve(Some(server_tls(true)))
        .await;
    let url = format!("https://{endpoint}");

    let mut with_cert = config(&url);
    with_cert.tls.ca_file = Some(tls_file("ca.pem"));
    with_cert.tls.cert_file = Some(tls_file("client.pem"));
    with_cert.tls.key_file = Some(tls_file("client-key.pem"));
    GrpcSourceClient::new(&with_cert)
        .unwrap()
        .publish(heartbeat())
        .await
        .unwrap();

    let mut without_cert = config(&url);
    without_cert.tls.ca_file = Some(tls_file("ca.pem"));
    let err = GrpcSourceClient::new(&without_cert)
        .unwrap()
        .publish(heartbeat())
        .await
        .unwrap_err();
    // The server's alert, explained: not a bare transport error.
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("requires a client certificate")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_outside_the_given_ca_is_a_configuration_error() {
    let endpoint = Fake::new(Behaviour::Silent)
        .serve(Some(server_tls(false)))
        .await;
    let mut config = config(&format!("https://{endpoint}"));
    // The server's own certificate is not a CA: nothing it signs... and it
    // does not sign itself, so verification fails.
    config.tls.ca_file = Some(tls_file("client.pem"));
    let err = GrpcSourceClient::new(&config)
        .unwrap()
        .publish(heartbeat())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("UnknownIssuer")),
        "{err:?}"
    );
    assert!(!err.is_transient());

    config.tls.ca_file = Some(tls_file("ca.pem"));
    GrpcSourceClient::new(&config)
        .unwrap()
        .publish(heartbeat())
        .await
        .unwrap();
}
