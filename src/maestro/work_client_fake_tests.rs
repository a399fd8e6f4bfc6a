//! `WorkClient` against in-process fakes of both Maestro APIs: the REST
//! reads from the REST client's fake server, and a gRPC server that records
//! what is published, for what the real stack cannot be made to do on
//! demand (a bundle changing owner between two reads).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::*;
use crate::maestro::proto::cloud_event_service_server::{
    CloudEventService, CloudEventServiceServer,
};
use crate::maestro::proto::{CloudEvent, PublishRequest, SubscriptionRequest};

// The REST fake, compiled a second time here: it is private to `rest`.
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "rest/fake.rs"]
mod rest_fake;

use rest_fake::{FakeServer, Recorded, Reply};

const OWNER_UID_LABEL: &str = "maestro.hyperfleet.io/owner-uid";

type EventStream = Pin<Box<dyn Stream<Item = Result<CloudEvent, Status>> + Send>>;

/// Records the type of every published event; never sends status.
#[derive(Clone, Default)]
struct Publishes(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl CloudEventService for Publishes {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let kind = request
            .into_inner()
            .event
            .map(|e| e.r#type)
            .unwrap_or_default();
        self.0.lock().unwrap().push(kind);
        Ok(Response::new(()))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        _: Request<SubscriptionRequest>,
    ) -> Result<Response<EventStream>, Status> {
        Ok(Response::new(Box::pin(futures::stream::pending())))
    }
}

impl Publishes {
    async fn serve(&self) -> String {
        crate::maestro::config::ensure_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(
            Server::builder()
                .add_service(CloudEventServiceServer::new(self.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        format!("127.0.0.1:{port}")
    }

    fn kinds(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The bundle of work `w` on `cluster-west-1`, labelled with `owner_uid`.
fn bundle_json(owner_uid: &str, deleting: bool) -> String {
    let mut bundle = json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
        "version": 3,
        "consumer_name": "cluster-west-1",
        "metadata": {"name": "w", "namespace": "cluster-west-1",
                     "labels": {OWNER_UID_LABEL: owner_uid}},
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "c", "namespace": "default"}}],
    });
    if deleting {
        bundle["deleted_at"] = json!("2025-12-13T13:32:30Z");
    }
    bundle.to_string()
}

/// A client whose REST reads answer `bundle` (404 when `None`) and whose
/// publishes are recorded.
async fn fake_client(bundle: Option<String>) -> (WorkClient, FakeServer, Publishes) {
    let rest = FakeServer::start(move |_: &Recorded| match &bundle {
        Some(b) => Reply::json(200, b.clone()),
        None => Reply::json(
            404,
            r#"{"code":"maestro-7","href":"/api/maestro/v1/errors/7","id":"7","kind":"Error","operation_id":"o","reason":"Resource not found"}"#,
        ),
    })
    .await;
    let publishes = Publishes::default();
    let grpc = publishes.serve().await;
    let mut config =
        MaestroConfig::new(&grpc, &rest.url(), SourceId::new("fake-test").unwrap()).unwrap();
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    (WorkClient::new(&config).unwrap(), rest, publishes)
}

fn names() -> (ConsumerName, WorkName) {
    (
        ConsumerName::new("cluster-west-1").unwrap(),
        WorkName::new("w").unwrap(),
    )
}

/// The operator's check: the bundle must carry our uid.
fn owned_by(uid: &str) -> impl FnOnce(&ResourceBundle) -> std::result::Result<(), Refusal> + '_ {
    move |bundle| {
        let found = bundle
            .metadata
            .get("labels")
            .and_then(|l| l.get(OWNER_UID_LABEL))
            .and_then(|v| v.as_str());
        if found == Some(uid) {
            Ok(())
        } else {
            Err(Refusal(format!("owned by {found:?}, not {uid}")))
        }
    }
}

#[tokio::test]
async fn delete_if_publishes_the_delete_when_the_fresh_read_passes_the_check() {
    let (client, rest, publishes) = fake_client(Some(bundle_json("uid-mine", false))).await;
    let (consumer, name) = names();
    let outcome = client
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    assert_eq!(outcome, DeleteOutcome::Deleting);
    let kinds = publishes.kinds();
    assert!(
        kinds.len() == 1 && kinds[0].ends_with(".delete_request"),
        "{kinds:?}"
    );
    assert_eq!(rest.requests().len(), 1, "one fresh read before the write");
}

#[tokio::test]
async fn delete_if_sends_nothing_when_the_bundle_now_belongs_to_another_owner() {
    let (client, _rest, publishes) = fake_client(Some(bundle_json("uid-other", false))).await;
    let (consumer, name) = names();
    let outcome = client
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    let DeleteOutcome::Refused(refusal) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(refusal.0.contains("uid-other"), "{refusal}");
    assert_eq!(publishes.kinds(), Vec::<String>::new(), "nothing published");
}

#[tokio::test]
async fn delete_if_does_not_take_another_owners_deletion_for_its_own() {
    let (client, _rest, publishes) = fake_client(Some(bundle_json("uid-other", true))).await;
    let (consumer, name) = names();
    let outcome = client
        .delete_if(&consumer, &name, owned_by("uid-mine"))
        .await
        .unwrap();
    assert!(matches!(outcome, DeleteOutcome::Refused(_)), "{outcome:?}");
    assert!(publishes.kinds().is_empty());
}

#[tokio::test]
async fn plain_delete_accepts_any_owner_and_a_missing_bundle_is_not_found() {
    let (client, _rest, publishes) = fake_client(Some(bundle_json("uid-other", false))).await;
    let (consumer, name) = names();
    assert_eq!(
        client.delete(&consumer, &name).await.unwrap(),
        DeleteOutcome::Deleting
    );
    assert_eq!(publishes.kinds().len(), 1);

    let (client, _rest, publishes) = fake_client(None).await;
    assert_eq!(
        client
            .delete_if(&consumer, &name, owned_by("uid-mine"))
            .await
            .unwrap(),
        DeleteOutcome::NotFound
    );
    assert!(publishes.kinds().is_empty());
}
