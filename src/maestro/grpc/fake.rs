//! An in-process Maestro for offline tests of what sits on the gRPC client:
//! a CloudEvents server that answers each publish as the test scripts it,
//! beside the REST fake serving the one bundle Maestro holds. A scripted
//! answer can change what the next read sees, which the real Maestro cannot
//! be made to do on demand (a write landing while its reply is lost,
//! another writer moving the version between a read and a write).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use crate::maestro::config::MaestroConfig;
use crate::maestro::proto::cloud_event_service_server::{
    CloudEventService, CloudEventServiceServer,
};
use crate::maestro::proto::{CloudEvent, PublishRequest, SubscriptionRequest};
use crate::maestro::rest::fake::{FakeServer, Recorded, Reply};
use crate::maestro::work_client::{SPEC_HASH_ANNOTATION, spec_hash_of_work};
use crate::manifestwork::ManifestWork;
use crate::names::SourceId;

/// Maestro's refusal of a write at an outdated version.
pub(crate) const STALE: &str = "failed to update resource: maestro-6: the resource version is not the latest, the latest version: 4";

const NOT_FOUND: &str = r#"{"code":"maestro-7","href":"/api/maestro/v1/errors/7","id":"7","kind":"Error","operation_id":"o","reason":"Resource not found"}"#;

pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Result<CloudEvent, Status>> + Send>>;

/// How one publish is answered.
#[derive(Clone)]
enum PublishReply {
    Accept,
    Refuse(Status),
    /// Never answers: the client's timeout ends the call.
    Hang,
}

/// How Maestro answers one publish, and what it holds afterwards.
#[derive(Clone)]
pub(crate) struct Answer {
    reply: PublishReply,
    /// `None` leaves what Maestro holds as it was.
    then: Option<Option<Value>>,
}

impl Answer {
    pub(crate) fn accept() -> Answer {
        Answer {
            reply: PublishReply::Accept,
            then: None,
        }
    }

    pub(crate) fn refuse(status: Status) -> Answer {
        Answer {
            reply: PublishReply::Refuse(status),
            then: None,
        }
    }

    /// Refused as [`STALE`].
    pub(crate) fn stale() -> Answer {
        Answer::refuse(Status::unknown(STALE))
    }

    pub(crate) fn hang() -> Answer {
        Answer {
            reply: PublishReply::Hang,
            then: None,
        }
    }

    /// Maestro holds `bundle` (nothing when `None`) before it answers.
    pub(crate) fn holding(self, bundle: Option<Value>) -> Answer {
        Answer {
            then: Some(bundle),
            ..self
        }
    }
}

/// The bundle Maestro holds; shared by both servers.
type Held = Arc<Mutex<Option<Value>>>;

/// The gRPC side: answers publishes from the script, recording each
/// event's type; a publish the script does not expect is refused.
#[derive(Clone)]
struct Scripted {
    held: Held,
    script: Arc<Mutex<VecDeque<Answer>>>,
    published: Arc<Mutex<Vec<String>>>,
}

#[tonic::async_trait]
impl CloudEventService for Scripted {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let kind = request
            .into_inner()
            .event
            .map(|e| e.r#type)
            .unwrap_or_default();
        self.published.lock().push(kind.clone());
        let Some(answer) = self.script.lock().pop_front() else {
            return Err(Status::internal(format!("unexpected publish {kind}")));
        };
        if let Some(then) = answer.then {
            *self.held.lock() = then;
        }
        match answer.reply {
            PublishReply::Accept => Ok(Response::new(())),
            PublishReply::Refuse(status) => Err(status),
            PublishReply::Hang => futures::future::pending().await,
        }
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        _: Request<SubscriptionRequest>,
    ) -> Result<Response<EventStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

/// Serves `service` on a free local port, with `tls` when given; returns
/// `host:port`.
pub(crate) async fn serve(service: impl CloudEventService, tls: Option<ServerTlsConfig>) -> String {
    crate::maestro::config::ensure_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls).unwrap();
    }
    tokio::spawn(
        server
            .add_service(CloudEventServiceServer::new(service))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("127.0.0.1:{port}")
}

/// Maestro holding at most one bundle, publishes answered from a script.
pub(crate) struct FakeMaestro {
    grpc: Scripted,
    endpoint: String,
    rest: FakeServer,
}

impl FakeMaestro {
    /// Maestro holding `held`, answering the publishes in order as
    /// `script` says.
    pub(crate) async fn start(
        held: Option<Value>,
        script: impl IntoIterator<Item = Answer>,
    ) -> FakeMaestro {
        let held: Held = Arc::new(Mutex::new(held));
        let rest = FakeServer::start(read_answer(held.clone())).await;
        let grpc = Scripted {
            held,
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            published: Arc::default(),
        };
        let endpoint = serve(grpc.clone(), None).await;
        FakeMaestro {
            grpc,
            endpoint,
            rest,
        }
    }

    /// A client configuration for both servers, as `source`.
    pub(crate) fn config(&self, source: &str) -> MaestroConfig {
        let source = SourceId::new(source).unwrap();
        let mut config = MaestroConfig::new(&self.endpoint, &self.rest.url(), source).unwrap();
        config.request_timeout = Duration::from_secs(5);
        config.connect_timeout = Duration::from_secs(2);
        config
    }

    /// The events published, by action: `create`, `update` or `delete`.
    pub(crate) fn published(&self) -> Vec<String> {
        let kinds = self.grpc.published.lock().clone();
        kinds
            .iter()
            .map(|k| {
                ["create", "update", "delete"]
                    .into_iter()
                    .find(|verb| k.contains(verb))
                    .unwrap_or(k)
                    .to_string()
            })
            .collect()
    }

    pub(crate) fn held(&self) -> Option<Value> {
        self.grpc.held.lock().clone()
    }

    /// Maestro now holds `bundle`, as if an agent or another writer acted.
    pub(crate) fn hold(&self, bundle: Option<Value>) {
        *self.grpc.held.lock() = bundle;
    }

    /// How many REST requests were answered.
    pub(crate) fn reads(&self) -> usize {
        self.rest.requests().len()
    }
}

/// REST reads answer the held bundle: as the one item of a list, alone, or
/// 404 when there is none.
fn read_answer(held: Held) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    move |request| {
        let bundle = held.lock().clone();
        if request.path.ends_with("/resource-bundles") {
            let items: Vec<Value> = bundle.into_iter().collect();
            let n = items.len();
            let list = json!({"kind": "ResourceBundleList", "page": 1, "size": n,
                              "total": n, "items": items});
            return Reply::json(200, list.to_string());
        }
        match bundle {
            Some(b) => Reply::json(200, b.to_string()),
            None => Reply::json(404, NOT_FOUND),
        }
    }
}

/// The bundle Maestro holds for `work` at `version`, as a publish of it
/// leaves it.
pub(crate) fn bundle_of(work: &ManifestWork, version: i64) -> Value {
    let mut metadata = serde_json::to_value(&work.metadata).unwrap();
    metadata["annotations"][SPEC_HASH_ANNOTATION] = json!(spec_hash_of_work(work));
    json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
        "version": version,
        "consumer_name": work.metadata.namespace,
        "metadata": metadata,
        "manifests": work.spec.workload.manifests,
    })
}

/// `bundle` with its deletion requested.
pub(crate) fn deleting(mut bundle: Value) -> Value {
    bundle["deleted_at"] = json!("2025-12-13T13:32:30Z");
    bundle
}
