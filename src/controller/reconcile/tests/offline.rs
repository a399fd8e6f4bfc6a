//! The reconciler's publish and delete paths offline: a mocked Kubernetes
//! API server (a tower-test pair behind a `kube::Client`, answered by a
//! task that records every request) and in-process fakes of Maestro's two
//! APIs (the REST fake serving one bundle, a gRPC server answering each
//! publish as the test scripts it), so each path runs through the real
//! `WorkClient`, poller, limiter and status code.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use http::{Request as HttpRequest, Response as HttpResponse};
use kube::api::Api;
use kube::client::Body;
use serde_json::{Value, json};

use crate::controller::crd::{MaestroApply, MaestroApplySpec, Phase};
use crate::controller::delete::cleanup;
use crate::controller::deletions::Deletions;
use crate::controller::metrics::Metrics;
use crate::controller::poller::{Poller, maestro_fetcher};
use crate::controller::publish::sync_work;
use crate::controller::ratelimit::RateLimiter;
use crate::controller::status::Outcome;
use crate::controller::target::{OWNER_UID_LABEL, Target};
use crate::controller::{Context, Error, FINALIZER, Failures, MaestroHandle, Settings};
use crate::maestro::fence::WriteFence;
use crate::maestro::grpc::fake::{Answer, FakeMaestro, bundle_of, deleting};
use crate::maestro::work_client::WorkClient;
use crate::manifestwork::ManifestWork;
use crate::names::SourceId;

const UID: &str = "6f1c1a52-8b8e-4a0e-9d3f-0c1d2e3f4a5b";
const OTHER_UID: &str = "0a0b0c0d-1111-2222-3333-444455556666";
const SOURCE: &str = "offline-test";

/// One request the Kubernetes API mock received.
#[derive(Debug, Clone)]
struct KubeRequest {
    method: String,
    path: String,
    body: Value,
}

/// The mocked API server: event creates and status patches are answered,
/// anything else is a 404 the test then finds in `requests`.
fn kube_mock(object: Value) -> (kube::Client, Arc<Mutex<Vec<KubeRequest>>>) {
    let (service, mut handle) = tower_test::mock::pair::<HttpRequest<Body>, HttpResponse<Body>>();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = requests.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().to_string();
            let path = request.uri().path().to_string();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (status, reply) = if method == "POST" && path.ends_with("/events") {
                (201, body.clone())
            } else if method == "PATCH" && path.ends_with("/status") {
                let mut object = object.clone();
                object["status"] = body["status"].clone();
                (200, object)
            } else {
                (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404, "message": "not mocked"}),
                )
            };
            recorded.lock().push(KubeRequest { method, path, body });
            send.send_response(
                HttpResponse::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, "default"), requests)
}

/// One reconciler test: an object, the fakes and the context around it.
struct Rig {
    obj: MaestroApply,
    target: Target,
    desired: ManifestWork,
    ctx: Context,
    maestro: FakeMaestro,
    kube: Arc<Mutex<Vec<KubeRequest>>>,
}

fn object(spec: Value) -> MaestroApply {
    let mut spec_json = json!({
        "consumer": "cluster-west-1",
        "manifestWork": {"workload": {"manifests": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"},
            "data": {"k": "v2"}}]}},
    });
    if let (Some(base), Some(extra)) = (spec_json.as_object_mut(), spec.as_object()) {
        base.extend(extra.clone());
    }
    let spec: MaestroApplySpec = serde_json::from_value(spec_json).unwrap();
    let mut obj = MaestroApply::new("web", spec);
    obj.metadata.namespace = Some("team-a".into());
    obj.metadata.uid = Some(UID.into());
    obj.metadata.generation = Some(1);
    obj.metadata.finalizers = Some(vec![FINALIZER.into()]);
    obj
}

/// `work` as another object (uid `OTHER_UID`) would have published it.
fn bundle_of_other(work: &ManifestWork, version: i64) -> Value {
    let mut bundle = bundle_of(work, version);
    bundle["metadata"]["labels"][OWNER_UID_LABEL] = json!(OTHER_UID);
    bundle
}

/// The work `obj` declares, and the one it declared before.
struct Declared {
    desired: ManifestWork,
}

impl Declared {
    fn of(obj: &MaestroApply) -> Declared {
        Declared {
            desired: declared(obj),
        }
    }

    fn earlier(&self) -> ManifestWork {
        let mut work = self.desired.clone();
        work.spec.workload.manifests[0]
            .0
            .insert("data".into(), json!({"k": "v1"}));
        work
    }
}

fn declared(obj: &MaestroApply) -> ManifestWork {
    let source = SourceId::new(SOURCE).unwrap();
    Target::of(obj, &source).unwrap().build_work(obj)
}

impl Rig {
    async fn new(obj: MaestroApply, held: Option<Value>, script: Vec<Answer>) -> Rig {
        let maestro = FakeMaestro::start(held, script).await;
        let config = maestro.config(SOURCE);
        let handle = MaestroHandle::new(
            WorkClient::new(&config)
                .unwrap()
                .with_fence(WriteFence::open()),
        );
        let (client, kube) = kube_mock(serde_json::to_value(&obj).unwrap());
        let metrics = Arc::new(Metrics::new());
        let (poller, _wakes) = Poller::new(
            maestro_fetcher(handle.clone()),
            100,
            Duration::from_millis(50),
            metrics.clone(),
        );
        let recorder = crate::controller::events::Events::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: crate::controller::MANAGER.into(),
                instance: None,
            },
        );
        let ctx = Context {
            maestro_failing: AtomicBool::new(false),
            client,
            maestro: handle,
            poller,
            recorder,
            metrics: metrics.clone(),
            limiter: RateLimiter::new(0.0, 1),
            failures: Failures::default(),
            deletions: Deletions::new(10, metrics),
            settings: Settings {
                sync_wait: Duration::from_secs(5),
                ..Settings::default()
            },
        };
        let target = Target::of(&obj, &SourceId::new(SOURCE).unwrap()).unwrap();
        let desired = target.build_work(&obj);
        Rig {
            obj,
            target,
            desired,
            ctx,
            maestro,
            kube,
        }
    }

    /// Publishes as a reconcile does: from the poller's view, after its
    /// first poll of the consumer.
    async fn sync(&self) -> (Outcome, Option<Error>) {
        let key = kube::runtime::reflector::ObjectRef::from_obj(&self.obj);
        let (consumer, id) = (&self.target.consumer, self.target.resource_id);
        let intervals = self.obj.spec.intervals().unwrap();
        self.ctx.poller.register(
            &key,
            consumer,
            id,
            crate::controller::pacing::of(&intervals, false),
        );
        self.ctx
            .poller
            .wait_polled(consumer, self.ctx.settings.sync_wait)
            .await;
        let view = self.ctx.poller.view(&key, consumer, &id);
        sync_work(&self.obj, &self.target, &self.desired, &view, &self.ctx).await
    }

    /// The object with its deletion under way, as `cleanup` sees it.
    fn being_deleted(&mut self) {
        self.obj.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
    }

    async fn cleanup(
        &self,
    ) -> crate::controller::Result<Option<kube::runtime::controller::Action>> {
        let api: Api<MaestroApply> = Api::namespaced(self.ctx.client.clone(), "team-a");
        cleanup(&self.obj, &api, &self.ctx).await
    }

    /// The reasons of the events recorded, in order.
    fn events(&self) -> Vec<String> {
        self.requests("POST")
            .iter()
            .map(|r| r.body["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The phases the status patches wrote, in order.
    fn phases(&self) -> Vec<String> {
        self.requests("PATCH")
            .iter()
            .map(|r| {
                r.body["status"]["phase"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    fn requests(&self, method: &str) -> Vec<KubeRequest> {
        let all = self.kube.lock().clone();
        assert!(
            all.iter()
                .all(|r| r.path.ends_with("/events") || r.path.ends_with("/status")),
            "only events and status patches: {all:?}"
        );
        all.into_iter().filter(|r| r.method == method).collect()
    }

    fn held(&self) -> Option<Value> {
        self.maestro.held()
    }
}

#[tokio::test]
async fn a_work_maestro_does_not_hold_is_created_and_announced() {
    let obj = object(json!({}));
    let created = bundle_of(&declared(&obj), 1);
    let rig = Rig::new(
        obj,
        None,
        vec![Answer::accept().holding(Some(created.clone()))],
    )
    .await;
    let (outcome, error) = rig.sync().await;
    assert_eq!(outcome, Outcome::Published);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rig.maestro.published(), ["create"]);
    assert_eq!(rig.events(), ["Created"]);
    assert_eq!(rig.held(), Some(created));
}

#[tokio::test]
async fn an_outdated_work_of_ours_is_updated_at_the_version_read() {
    let probe = Declared::of(&object(json!({})));
    let (old, new) = (bundle_of(&probe.earlier(), 3), bundle_of(&probe.desired, 4));
    let rig = Rig::new(
        object(json!({})),
        Some(old),
        vec![Answer::accept().holding(Some(new))],
    )
    .await;
    let (outcome, error) = rig.sync().await;
    assert_eq!(outcome, Outcome::Published);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rig.maestro.published(), ["update"]);
    assert_eq!(rig.events(), ["Updated"]);
}

#[tokio::test]
async fn a_work_already_as_declared_is_left_unwritten() {
    let probe = Declared::of(&object(json!({})));
    let same = bundle_of(&probe.desired, 3);
    let rig = Rig::new(object(json!({})), Some(same), vec![]).await;
    let (outcome, error) = rig.sync().await;
    assert_eq!(outcome, Outcome::InSync);
    assert!(error.is_none(), "{error:?}");
    assert!(rig.maestro.published().is_empty(), "nothing published");
    assert!(rig.events().is_empty(), "nothing announced");
}

#[tokio::test]
async fn a_work_another_object_owns_is_refused_and_left_alone() {
    let probe = Declared::of(&object(json!({})));
    let theirs = bundle_of_other(&probe.earlier(), 3);
    let rig = Rig::new(object(json!({})), Some(theirs.clone()), vec![]).await;
    let (outcome, error) = rig.sync().await;
    let Outcome::Claimed { owner } = outcome else {
        panic!("claimed, not {outcome:?}")
    };
    assert!(owner.contains(OTHER_UID), "{owner}");
    assert!(error.is_none(), "{error:?}");
    assert!(rig.maestro.published().is_empty(), "nothing published");
    assert_eq!(rig.held(), Some(theirs), "their work untouched");
}

#[tokio::test]
async fn a_stale_version_is_read_again_and_the_update_retried_once() {
    let probe = Declared::of(&object(json!({})));
    // Another writer moved the bundle to version 4 between the read and
    // the write: the first update is stale, the retry reads v4.
    let (v3, v4) = (
        bundle_of(&probe.earlier(), 3),
        bundle_of(&probe.earlier(), 4),
    );
    let v5 = bundle_of(&probe.desired, 5);
    let stale = Answer::stale().holding(Some(v4));
    let rig = Rig::new(
        object(json!({})),
        Some(v3),
        vec![stale, Answer::accept().holding(Some(v5.clone()))],
    )
    .await;
    let (outcome, error) = rig.sync().await;
    assert_eq!(outcome, Outcome::Published);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(rig.maestro.published(), ["update", "update"]);
    assert_eq!(rig.held(), Some(v5));
}

#[tokio::test]
async fn a_version_stale_on_every_attempt_fails_for_a_retry_with_backoff() {
    use crate::maestro::work_client::APPLY_ATTEMPTS;
    let probe = Declared::of(&object(json!({})));
    let (v3, v4) = (
        bundle_of(&probe.earlier(), 3),
        bundle_of(&probe.earlier(), 4),
    );
    let stale = || Answer::stale().holding(Some(v4.clone()));
    let rig = Rig::new(
        object(json!({})),
        Some(v3),
        (0..APPLY_ATTEMPTS).map(|_| stale()).collect(),
    )
    .await;
    let (outcome, error) = rig.sync().await;
    let Outcome::Failed { terminal, .. } = outcome else {
        panic!("failed, not {outcome:?}")
    };
    assert!(!terminal, "a stale version is worth a retry");
    assert!(
        matches!(
            error,
            Some(Error::Maestro(crate::maestro::Error::StaleVersion { .. }))
        ),
        "{error:?}"
    );
    assert_eq!(
        rig.maestro.published(),
        vec!["update"; APPLY_ATTEMPTS as usize],
        "each attempt reads again and updates once"
    );
}

#[tokio::test]
async fn a_deleted_object_deletes_its_work_and_keeps_the_finalizer_until_it_is_gone() {
    let probe = Declared::of(&object(json!({})));
    let ours = bundle_of(&probe.desired, 3);
    let mut rig = Rig::new(
        object(json!({})),
        Some(ours.clone()),
        vec![Answer::accept().holding(Some(deleting(ours)))],
    )
    .await;
    rig.being_deleted();
    let later = rig.cleanup().await.unwrap();
    assert!(later.is_some(), "waits for the agent");
    assert_eq!(rig.maestro.published(), ["delete"]);
    assert_eq!(rig.events(), ["Deleting"]);
    assert_eq!(rig.phases(), [Phase::Deleting.as_str()]);

    // The agent confirmed: Maestro no longer has the bundle.
    rig.maestro.hold(None);
    rig.ctx
        .poller
        .refresh(&rig.target.consumer, Duration::from_secs(5))
        .await;
    let done = rig.cleanup().await.unwrap();
    assert!(done.is_none(), "the finalizer may go");
    assert_eq!(rig.maestro.published(), ["delete"], "deleted once");
    assert_eq!(rig.events(), ["Deleting", "Deleted"]);
}

#[tokio::test]
async fn a_deleted_object_whose_work_is_another_objects_lets_go_without_deleting() {
    let probe = Declared::of(&object(json!({})));
    let theirs = bundle_of_other(&probe.desired, 3);
    let mut rig = Rig::new(object(json!({})), Some(theirs.clone()), vec![]).await;
    rig.being_deleted();
    assert!(
        rig.cleanup().await.unwrap().is_none(),
        "the finalizer may go"
    );
    assert!(rig.maestro.published().is_empty(), "nothing deleted");
    assert_eq!(rig.held(), Some(theirs));
}

#[tokio::test]
async fn an_orphaning_object_lets_go_and_leaves_its_work_in_place() {
    let orphaning = object(json!({"deletionPolicy": "Orphan"}));
    let ours = bundle_of(&declared(&orphaning), 3);
    let mut rig = Rig::new(orphaning, Some(ours.clone()), vec![]).await;
    rig.being_deleted();
    assert!(
        rig.cleanup().await.unwrap().is_none(),
        "the finalizer may go"
    );
    assert!(rig.maestro.published().is_empty(), "nothing deleted");
    assert_eq!(rig.events(), ["Orphaned"]);
    assert_eq!(rig.held(), Some(ours));
}
