//! `WorkClient` against in-process fakes of both Maestro APIs: the REST
//! reads from the REST client's fake server, and a gRPC server that records
//! what is published, for what the real stack cannot be made to do on
//! demand (a bundle changing owner between two reads).

use parking_lot::Mutex;
use std::pin::Pin;
use std::sync::Arc;
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

use crate::maestro::rest::fake::{FakeServer, Recorded, Reply};

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
        self.0.lock().push(kind);
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
        self.0.lock().clone()
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
fn owned_by(uid: &str) -> impl FnOnce(&HeldWork) -> std::result::Result<(), Refusal> + '_ {
    move |held| {
        let found = held.labels.get(OWNER_UID_LABEL).map(String::as_str);
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

// A publish whose reply is lost after Maestro committed it, and a retry
// that meets its own earlier write: the server here commits a given bundle
// (what the REST fake then serves) before it answers, or never answers.

/// How the committing fake answers a publish.
#[derive(Clone)]
enum Answer {
    /// Commits, then never replies (the client times out).
    CommitThenHang,
    /// Commits nothing and never replies.
    Hang,
    /// Commits nothing and fails with this status.
    Fail(Status),
}

#[derive(Clone)]
struct Committing {
    held: Arc<Mutex<Option<String>>>,
    commit: String,
    answer: Answer,
    publishes: Publishes,
}

#[tonic::async_trait]
impl CloudEventService for Committing {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        self.publishes.publish(request).await?;
        match &self.answer {
            Answer::CommitThenHang => {
                *self.held.lock() = Some(self.commit.clone());
                futures::future::pending().await
            }
            Answer::Hang => futures::future::pending().await,
            Answer::Fail(status) => Err(status.clone()),
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

/// The work `w` on `cluster-west-1` this client publishes.
fn declared(data: &str) -> ManifestWork {
    serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": "w", "namespace": "cluster-west-1",
                     "labels": {OWNER_UID_LABEL: "uid-mine"}},
        "spec": {"workload": {"manifests": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"},
            "data": {"k": data}}]}}
    }))
    .unwrap()
}

/// Maestro's bundle holding `work` at `version`, as `prepare` sends it.
fn bundle_of(work: &ManifestWork, version: i64) -> String {
    json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
        "version": version,
        "consumer_name": "cluster-west-1",
        "metadata": {"name": "w", "namespace": "cluster-west-1",
                     "labels": {OWNER_UID_LABEL: "uid-mine"},
                     "annotations": {SPEC_HASH_ANNOTATION: spec_hash_of_work(work)}},
        "manifests": work.spec.workload.manifests,
    })
    .to_string()
}

/// A client against the committing fake; REST serves what it holds.
async fn committing_client(
    held: Option<String>,
    commit: String,
    answer: Answer,
) -> (WorkClient, Publishes, FakeServer) {
    let held = Arc::new(Mutex::new(held));
    let served = held.clone();
    let rest = FakeServer::start(move |_: &Recorded| match served.lock().clone() {
        Some(b) => Reply::json(200, b),
        None => Reply::json(
            404,
            r#"{"code":"maestro-7","href":"/api/maestro/v1/errors/7","id":"7","kind":"Error","operation_id":"o","reason":"Resource not found"}"#,
        ),
    })
    .await;
    let publishes = Publishes::default();
    let fake = Committing {
        held,
        commit,
        answer,
        publishes: publishes.clone(),
    };
    crate::maestro::config::ensure_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(
        Server::builder()
            .add_service(CloudEventServiceServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut config =
        MaestroConfig::new(&grpc, &rest.url(), SourceId::new("fake-test").unwrap()).unwrap();
    config.request_timeout = Duration::from_millis(500);
    config.connect_timeout = Duration::from_secs(2);
    (WorkClient::new(&config).unwrap(), publishes, rest)
}

const STALE: &str = "failed to update resource: maestro-6: the resource version is not the latest, the latest version: 4";

#[tokio::test]
async fn a_create_whose_reply_is_lost_after_the_commit_is_reported_as_done() {
    let work = declared("v1");
    let (client, publishes, _rest) =
        committing_client(None, bundle_of(&work, 1), Answer::CommitThenHang).await;
    client.create(&work).await.unwrap();
    assert_eq!(publishes.kinds().len(), 1, "one publish, no retry");
}

#[tokio::test]
async fn a_create_whose_reply_is_lost_without_a_commit_still_times_out() {
    let work = declared("v1");
    let (client, _, _rest) = committing_client(None, String::new(), Answer::Hang).await;
    let e = client.create(&work).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[tokio::test]
async fn a_retried_update_that_meets_its_own_earlier_write_succeeds_not_stale() {
    // The earlier attempt at version 3 committed version 4 and lost its
    // reply; the retry at version 3 is refused as stale.
    let work = declared("v2");
    let (client, _, _rest) = committing_client(
        Some(bundle_of(&work, 4)),
        String::new(),
        Answer::Fail(Status::unknown(STALE)),
    )
    .await;
    client.update(&work, 3).await.unwrap();
}

#[tokio::test]
async fn a_stale_version_against_another_writers_spec_stays_an_error() {
    let (client, _, _rest) = committing_client(
        Some(bundle_of(&declared("theirs"), 4)),
        String::new(),
        Answer::Fail(Status::unknown(STALE)),
    )
    .await;
    let e = client.update(&declared("v2"), 3).await.unwrap_err();
    assert!(matches!(e, Error::StaleVersion { .. }), "{e:?}");
}

#[tokio::test]
async fn a_retried_create_that_meets_its_own_earlier_create_succeeds_not_conflict() {
    let work = declared("v1");
    let (client, _, _rest) = committing_client(
        Some(bundle_of(&work, 1)),
        String::new(),
        Answer::Fail(Status::already_exists(
            "failed to create resource: maestro-6: resource already exists",
        )),
    )
    .await;
    client.create(&work).await.unwrap();
}

// apply_with's read-decide-write loop against a gRPC fake that refuses
// the first publishes as stale.

/// Fails the first `stale` publishes with a stale version, then accepts.
#[derive(Clone)]
struct StaleFirst {
    stale: Arc<Mutex<u32>>,
    publishes: Publishes,
}

#[tonic::async_trait]
impl CloudEventService for StaleFirst {
    async fn publish(&self, request: Request<PublishRequest>) -> Result<Response<()>, Status> {
        self.publishes.publish(request).await?;
        let mut stale = self.stale.lock();
        if *stale > 0 {
            *stale -= 1;
            return Err(Status::unknown(STALE));
        }
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

/// A client whose REST reads always answer `bundle` and whose first
/// `stale` publishes are refused as stale.
async fn stale_first_client(bundle: String, stale: u32) -> (WorkClient, Publishes, FakeServer) {
    let rest = FakeServer::start(move |_: &Recorded| Reply::json(200, bundle.clone())).await;
    let publishes = Publishes::default();
    let fake = StaleFirst {
        stale: Arc::new(Mutex::new(stale)),
        publishes: publishes.clone(),
    };
    crate::maestro::config::ensure_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(
        Server::builder()
            .add_service(CloudEventServiceServer::new(fake))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let config =
        MaestroConfig::new(&grpc, &rest.url(), SourceId::new("fake-test").unwrap()).unwrap();
    (WorkClient::new(&config).unwrap(), publishes, rest)
}

#[tokio::test]
async fn apply_with_reads_and_decides_again_after_a_stale_version() {
    let (client, publishes, rest) = stale_first_client(bundle_of(&declared("theirs"), 3), 1).await;
    let (consumer, name) = names();
    let mut seen = Vec::new();
    let applied = client
        .apply_with(&consumer, &name, Detail::Summary, |current| {
            seen.push(current.map(|b| b.version));
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), "mine")
        })
        .await
        .unwrap();
    assert!(
        matches!(
            applied,
            Applied::Updated {
                from_version: 3,
                note: "mine"
            }
        ),
        "{applied:?}"
    );
    assert_eq!(seen, [Some(3), Some(3)], "a fresh decision per read");
    assert_eq!(publishes.kinds().len(), 2);
    // Per attempt one read before the write, and one read back after the
    // stale answer to tell a landed write from a lost one.
    assert_eq!(rest.requests().len(), 3);
}

#[tokio::test]
async fn apply_with_gives_up_with_the_stale_version_after_its_attempts() {
    let (client, publishes, _rest) =
        stale_first_client(bundle_of(&declared("theirs"), 3), u32::MAX).await;
    let (consumer, name) = names();
    let e = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), ())
        })
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StaleVersion { .. }), "{e:?}");
    assert_eq!(publishes.kinds().len(), APPLY_ATTEMPTS as usize);
}

#[tokio::test]
async fn apply_with_sends_nothing_on_a_skip_or_a_refusal() {
    let (client, publishes, _rest) = stale_first_client(bundle_of(&declared("v1"), 3), 0).await;
    let (consumer, name) = names();
    let skipped = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Skip(7)
        })
        .await
        .unwrap();
    assert!(
        matches!(&skipped, Applied::Skipped { note: 7, current: Some(b) } if b.version == 3),
        "{skipped:?}"
    );
    let refused = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<(), _>::Refuse(Refusal("not yours".into()))
        })
        .await
        .unwrap();
    assert!(matches!(refused, Applied::Refused(Refusal(r)) if r == "not yours"));
    assert!(publishes.kinds().is_empty());
}

#[tokio::test]
async fn apply_with_refuses_a_decision_to_publish_another_work() {
    let (client, publishes, _rest) = stale_first_client(bundle_of(&declared("v1"), 3), 0).await;
    let consumer = ConsumerName::new("cluster-east-2").unwrap();
    let name = WorkName::new("w").unwrap();
    let e = client
        .apply_with(&consumer, &name, Detail::Summary, |_| {
            Decision::<_, Refusal>::Publish(Box::new(declared("v2")), ())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("cluster-east-2/w")),
        "{e:?}"
    );
    assert!(publishes.kinds().is_empty());
}

#[tokio::test]
async fn plain_apply_leaves_an_unchanged_work_and_refuses_one_being_deleted() {
    let work = declared("v1");
    let (client, publishes, _rest) = stale_first_client(bundle_of(&work, 3), 0).await;
    assert_eq!(
        client.apply(&work).await.unwrap(),
        ApplyOutcome::Unchanged { version: 3 }
    );
    let (client, _, _rest) = stale_first_client(bundle_json("uid-mine", true), 0).await;
    let e = client.apply(&work).await.unwrap_err();
    assert!(
        matches!(e, Error::Conflict(ref m) if m.contains("being deleted")),
        "{e:?}"
    );
    assert!(publishes.kinds().is_empty());
}
