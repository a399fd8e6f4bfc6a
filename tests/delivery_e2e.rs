//! The whole delivery loop against the real local stack: ManifestWorks
//! published with our library travel through Maestro to real `maestro agent`
//! processes (tests/stack/agents.sh), which apply them to the stack's
//! kube-apiserver and report status back; we read that status over REST and
//! over the status stream, and the objects straight from the API server.
//!
//! Needs every component up (`bash tests/stack/stack.sh up`) and its
//! environment (`eval "$(bash tests/stack/stack.sh env)"`): KUBECONFIG
//! names the API server the agents apply to, MAESTRO_AGENT_IDS the agents.
//!
//! Both agents apply into that one API server. What a consumer received is
//! told apart by the AppliedManifestWork owning each object (see
//! [`assert_delivered_by`]): its `spec.agentID` is the agent's, and its
//! `spec.manifestWorkName` is the bundle's resource ID, which Maestro derives
//! from source, consumer and work name.
//!
//! Every test uses its own source, work names and namespaces, so the tests
//! run in parallel and leave other runs alone. Waits poll with a deadline and
//! fail saying what was last seen.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use maestro_operator::maestro::config::ensure_crypto_provider;
use maestro_operator::maestro::grpc::SubscribeOptions;
use maestro_operator::maestro::work_client::{
    ApplyOutcome, DeleteOutcome, Detail, WatchEvent, WorkClient,
};
use maestro_operator::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, FieldValue, ManifestCondition, ManifestWork,
    ManifestWorkStatus,
};
use maestro_operator::names::{ConsumerName, WorkName};
use serde_json::{Value, json};
use support::configmap_in;
use support::maestro::*;
use tokio::sync::mpsc;

const WEST: &str = "cluster-west-1";
const EAST: &str = "cluster-east-2";

/// How long any one expected change may take. The agent reports applied
/// state at once, but re-reads feedback values only every
/// --status-sync-interval (7 s on the stack), and deleting a namespace takes a few
/// seconds of the namespace controller.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(300);

/// Evaluates `$check`, a future of `Result<T, String>` (Err describing what
/// it saw), until it is Ok; panics naming `$what` and the last Err once
/// [`DEADLINE`] has passed.
macro_rules! eventually {
    ($what:expr, $check:expr) => {{
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match $check.await {
                Ok(value) => break value,
                Err(last) if tokio::time::Instant::now() >= deadline => panic!(
                    "waited {}s for {}; last seen: {last}",
                    DEADLINE.as_secs(),
                    $what
                ),
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }};
}

// ------------------------------------------------------------ the cluster

/// The API server the agents apply to.
struct Cluster {
    client: kube::Client,
    /// Whether a deleted Namespace goes away. Only the namespace controller
    /// of kube-controller-manager empties a Terminating namespace; without
    /// it (kube.sh with KUBE_CONTROLLER_MANAGER=0) a work holding a
    /// Namespace could never finish deleting. Detected the way kube.sh
    /// decides the controller manager is ready: the serviceaccount
    /// controller, which runs beside the namespace controller, has made
    /// `default/default` (on state kept from a run with the controller
    /// manager, that ServiceAccount stays and the guess is wrong).
    namespaces_deletable: bool,
}

impl Cluster {
    async fn connect() -> Cluster {
        let kubeconfig = support::stack_var("KUBECONFIG");
        ensure_crypto_provider();
        let client = kube::Client::try_default()
            .await
            .unwrap_or_else(|e| panic!("no Kubernetes client from KUBECONFIG={kubeconfig}: {e}"));
        let namespaces_deletable = Api::<ServiceAccount>::namespaced(client.clone(), "default")
            .get_opt("default")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot reach the API server of KUBECONFIG={kubeconfig} (is `kube.sh` up?): {e}"
                )
            })
            .is_some();
        Cluster {
            client,
            namespaces_deletable,
        }
    }

    fn configmaps(&self, namespace: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn deployments(&self, namespace: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn namespaces(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    fn applied_manifest_works(&self) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(
            "work.open-cluster-management.io",
            "v1",
            "AppliedManifestWork",
        );
        let resource = ApiResource::from_gvk_with_plural(&gvk, "appliedmanifestworks");
        Api::all_with(self.client.clone(), &resource)
    }

    /// A namespace of the test's own, outside any work.
    async fn create_namespace(&self, name: &str) {
        let namespace: Namespace = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app.kubernetes.io/created-by": "delivery-e2e"}}
        }))
        .unwrap();
        self.namespaces()
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    /// Removes a namespace the test created, where that is possible at all.
    async fn drop_namespace(&self, name: &str) {
        if self.namespaces_deletable {
            let _ = self
                .namespaces()
                .delete(name, &DeleteParams::background())
                .await;
        }
    }

    /// Where a test's objects go: the work's own Namespace manifest when
    /// namespaces can be deleted again, otherwise a namespace the test
    /// creates and leaves. Returns the Namespace manifest, if any.
    async fn namespace_for_work(&self, name: &str) -> Option<Value> {
        if self.namespaces_deletable {
            Some(namespace(name))
        } else {
            self.create_namespace(name).await;
            None
        }
    }
}

async fn get_configmap(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<ConfigMap, String> {
    match cluster.configmaps(namespace).get_opt(name).await {
        Ok(Some(cm)) => Ok(cm),
        Ok(None) => Err(format!("no ConfigMap {namespace}/{name} in the API server")),
        Err(e) => Err(format!("GET ConfigMap {namespace}/{name}: {e}")),
    }
}

async fn get_deployment(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
) -> Result<Deployment, String> {
    match cluster.deployments(namespace).get_opt(name).await {
        Ok(Some(d)) => Ok(d),
        Ok(None) => Err(format!(
            "no Deployment {namespace}/{name} in the API server"
        )),
        Err(e) => Err(format!("GET Deployment {namespace}/{name}: {e}")),
    }
}

/// Ok once `what` (an optional object fetched by `get`) is gone.
fn gone<T: kube::Resource>(what: &str, found: kube::Result<Option<T>>) -> Result<(), String> {
    match found {
        Ok(None) => Ok(()),
        Ok(Some(object)) => Err(format!(
            "{what} still exists (deletionTimestamp: {:?})",
            object.meta().deletion_timestamp
        )),
        Err(e) => Err(format!("GET {what}: {e}")),
    }
}

async fn configmap_gone(cluster: &Cluster, namespace: &str, name: &str) -> Result<(), String> {
    gone(
        &format!("ConfigMap {namespace}/{name}"),
        cluster.configmaps(namespace).get_opt(name).await,
    )
}

async fn deployment_gone(cluster: &Cluster, namespace: &str, name: &str) -> Result<(), String> {
    gone(
        &format!("Deployment {namespace}/{name}"),
        cluster.deployments(namespace).get_opt(name).await,
    )
}

async fn namespace_gone(cluster: &Cluster, name: &str) -> Result<(), String> {
    gone(
        &format!("Namespace {name}"),
        cluster.namespaces().get_opt(name).await,
    )
}

async fn applied_manifest_work_gone(cluster: &Cluster, name: &str) -> Result<(), String> {
    gone(
        &format!("AppliedManifestWork {name}"),
        cluster.applied_manifest_works().get_opt(name).await,
    )
}

fn configmap_value(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.data.as_ref().and_then(|d| d.get(key)).cloned()
}

/// The name of the AppliedManifestWork owning an object, if one does.
fn owning_applied_manifest_work(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.kind == "AppliedManifestWork" && o.api_version == "work.open-cluster-management.io/v1"
        })
        .map(|o| o.name.clone())
}

/// The agent ID `agents.sh env` exported for a consumer, when it did.
fn expected_agent_id(consumer: &str) -> Option<String> {
    let ids = std::env::var("MAESTRO_AGENT_IDS").ok()?;
    ids.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(c, _)| *c == consumer)
        .map(|(_, id)| id.to_string())
}

/// Asserts that the object with `meta` came from `consumer`'s agent as part
/// of `work` of `client`'s source: it is owned by an AppliedManifestWork
/// whose spec names the work's resource ID and the consumer's agent, and
/// which is named `<agent ID>-<resource ID>` as the agent names them.
/// Returns the AppliedManifestWork's name and agent ID.
async fn assert_delivered_by(
    cluster: &Cluster,
    client: &WorkClient,
    consumer: &str,
    work: &str,
    meta: &ObjectMeta,
) -> (String, String) {
    let object = format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    );
    let owner = owning_applied_manifest_work(meta).unwrap_or_else(|| {
        panic!(
            "{object} has no AppliedManifestWork owner; ownerReferences: {:?}",
            meta.owner_references
        )
    });
    let applied = cluster
        .applied_manifest_works()
        .get(&owner)
        .await
        .unwrap_or_else(|e| panic!("GET AppliedManifestWork {owner} (owner of {object}): {e}"));
    let resource_id = client
        .resource_id(&consumer_name(consumer), &work_name(work))
        .to_string();
    let spec = &applied.data["spec"];
    assert_eq!(
        spec["manifestWorkName"], resource_id,
        "{object}: its AppliedManifestWork {owner} is not for {consumer}/{work}; spec: {spec}"
    );
    let agent_id = spec["agentID"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        owner,
        format!("{agent_id}-{resource_id}"),
        "AppliedManifestWork name is not <agentID>-<resource ID>"
    );
    if let Some(expected) = expected_agent_id(consumer) {
        assert_eq!(
            agent_id, expected,
            "{object} was applied by agent {agent_id}, not by the {consumer} agent"
        );
    }
    (owner, agent_id)
}

// --------------------------------------------------------------- manifests

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Without a kubelet its Pods never run: only spec values and what the
/// deployment controller writes without nodes (status.replicas) are stable.
fn deployment(namespace: &str, name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    })
}

/// Feedback rules: WellKnownStatus and `.spec.replicas` of the Deployment,
/// `.data.x` of the ConfigMap.
fn feedback_configs(namespace: &str, deployment: &str, configmap: &str) -> Value {
    json!([
        {
            "resourceIdentifier": {"group": "apps", "resource": "deployments",
                                   "namespace": namespace, "name": deployment},
            "feedbackRules": [
                {"type": "WellKnownStatus"},
                {"type": "JSONPaths", "jsonPaths": [{"name": "replicas", "path": ".spec.replicas"}]},
            ],
        },
        {
            "resourceIdentifier": {"resource": "configmaps", "namespace": namespace, "name": configmap},
            "feedbackRules": [
                {"type": "JSONPaths", "jsonPaths": [{"name": "x", "path": ".data.x"}]},
            ],
        },
    ])
}

fn with_configs(mut work: ManifestWork, configs: Value) -> ManifestWork {
    work.spec.manifest_configs = serde_json::from_value(configs).expect("valid manifestConfigs");
    work
}

fn consumer_name(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

fn work_name(name: &str) -> WorkName {
    WorkName::new(name).unwrap()
}

// ------------------------------------------------------------------ status

/// The status of the manifest of `kind` named `name`.
fn manifest<'a>(
    status: &'a ManifestWorkStatus,
    kind: &str,
    name: &str,
) -> Option<&'a ManifestCondition> {
    status
        .resource_status
        .as_ref()?
        .manifests
        .iter()
        .find(|m| m.resource_meta.kind == kind && m.resource_meta.name == name)
}

fn describe_status(status: Option<&ManifestWorkStatus>) -> String {
    status.map_or_else(
        || "no status".to_string(),
        |s| serde_json::to_string(s).unwrap_or_default(),
    )
}

/// Ok when the work's status says generation `version` is applied and
/// available, and every `expected` (kind, name, feedback name, value) is
/// reported.
fn check_status(
    status: Option<&ManifestWorkStatus>,
    version: i64,
    expected: &[(&str, &str, &str, FieldValue)],
) -> Result<(), String> {
    let seen = || describe_status(status);
    let status = status.ok_or_else(seen)?;
    for condition in [CONDITION_APPLIED, CONDITION_AVAILABLE] {
        if !status.is_condition_true(condition, Some(version)) {
            return Err(format!(
                "{condition} is not True for generation {version}: {}",
                seen()
            ));
        }
    }
    for (kind, name, feedback, value) in expected {
        let reported = manifest(status, kind, name).and_then(|m| m.feedback(feedback));
        if reported != Some(value) {
            return Err(format!(
                "{kind} {name} feedback {feedback} is {reported:?}, want {value:?}: {}",
                seen()
            ));
        }
    }
    Ok(())
}

/// The bundle of `consumer/name` once it is at `version` and its status
/// passes [`check_status`] for that version (the agent observed it).
async fn bundle_status(
    client: &WorkClient,
    consumer: &str,
    name: &str,
    version: i64,
    expected: &[(&str, &str, &str, FieldValue)],
) -> Result<ManifestWork, String> {
    let held = client
        .get_held(&consumer_name(consumer), &work_name(name), Detail::Work)
        .await
        .map_err(|e| format!("GET bundle: {e}"))?
        .ok_or("no bundle in Maestro (REST 404)")?;
    if held.version != version {
        return Err(format!("bundle version {}, want {version}", held.version));
    }
    let observed = held.report.as_ref().map(|s| s.observed_version);
    if observed != Some(version) {
        return Err(format!(
            "status ObservedVersion {observed:?}, want {version}"
        ));
    }
    let work = *held.work.ok_or("read without the work")?;
    check_status(work.status.as_ref(), version, expected)?;
    Ok(work)
}

async fn bundle_gone(client: &WorkClient, consumer: &str, name: &str) -> Result<(), String> {
    match client
        .get_held(&consumer_name(consumer), &work_name(name), Detail::Summary)
        .await
    {
        Ok(None) => Ok(()),
        Ok(Some(held)) => Err(format!(
            "bundle still in Maestro: deleted since {:?}, report {:?}",
            held.deleting_since, held.report
        )),
        Err(e) => Err(format!("GET bundle: {e}")),
    }
}

// ------------------------------------------------------------------- watch

type Events = mpsc::Receiver<maestro_operator::maestro::Result<WatchEvent>>;

/// Starts watching `consumer` for `client`'s source and waits for the end of
/// the initial list, so that what follows is news.
async fn watch_from_now(client: &WorkClient, consumer: &str) -> Events {
    let mut events = client.watch(
        Some(consumer_name(consumer)),
        None,
        SubscribeOptions::default(),
    );
    next_event(
        &mut events,
        "the watch's initial sync",
        |event| match event {
            WatchEvent::Synced => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    events
}

/// Reads the watch until `accept` takes an event; panics after [`DEADLINE`]
/// with the last event `accept` refused.
async fn next_event<T>(
    events: &mut Events,
    what: &str,
    mut accept: impl FnMut(WatchEvent) -> Result<T, String>,
) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = "no event".to_string();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => panic!(
                "watched {}s for {what}; last event: {last}",
                DEADLINE.as_secs()
            ),
            Ok(None) => panic!("the watch ended while waiting for {what}; last event: {last}"),
            Ok(Some(Err(e))) => last = format!("error {e}"),
            Ok(Some(Ok(event))) => match accept(event) {
                Ok(value) => return value,
                Err(refused) => last = refused,
            },
        }
    }
}

fn is_work(work: &ManifestWork, resource_id: &str) -> bool {
    work.metadata.uid.as_deref() == Some(resource_id)
}

/// Deletes works a test leaves behind, without waiting.
async fn forget(client: &WorkClient, consumer: &str, name: &str) {
    let _ = client
        .delete(&consumer_name(consumer), &work_name(name))
        .await;
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn a_published_work_is_applied_by_the_agent_and_its_status_and_feedback_come_back() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-apply"));
    let ns = unique("e2e-apply");
    let name = "web";
    let mut manifests: Vec<Value> = cluster.namespace_for_work(&ns).await.into_iter().collect();
    manifests.push(configmap_in(&ns, "web-config", json!({"x": "hello"})));
    manifests.push(deployment(&ns, "web", 2));
    let work = with_configs(
        work(WEST, name, manifests),
        feedback_configs(&ns, "web", "web-config"),
    );
    let resource_id = client
        .resource_id(&consumer_name(WEST), &work_name(name))
        .to_string();
    let mut events = watch_from_now(&client, WEST).await;

    assert_eq!(
        client.apply(&work).await.unwrap(),
        ApplyOutcome::Created { version: 1 }
    );

    // The objects, in the API server, from the west agent.
    let cm = eventually!(
        "the ConfigMap in the API server",
        get_configmap(&cluster, &ns, "web-config")
    );
    assert_eq!(configmap_value(&cm, "x").as_deref(), Some("hello"));
    let (applied_name, _) = assert_delivered_by(&cluster, &client, WEST, name, &cm.metadata).await;
    let deploy = eventually!(
        "the Deployment in the API server",
        get_deployment(&cluster, &ns, "web")
    );
    assert_eq!(deploy.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert_eq!(
        owning_applied_manifest_work(&deploy.metadata).as_deref(),
        Some(applied_name.as_str())
    );
    if cluster.namespaces_deletable {
        let namespace = cluster.namespaces().get(&ns).await.unwrap();
        assert_eq!(
            owning_applied_manifest_work(&namespace.metadata).as_deref(),
            Some(applied_name.as_str()),
            "the work's Namespace is owned by the work"
        );
    }

    // Status over REST: Applied and Available for version 1, and the
    // feedback values that hold without nodes.
    let expected = [
        ("ConfigMap", "web-config", "x", FieldValue::string("hello")),
        ("Deployment", "web", "replicas", FieldValue::integer(2)),
    ];
    let reported = eventually!(
        "status of version 1 with feedback over REST",
        bundle_status(&client, WEST, name, 1, &expected)
    );
    let status = reported.status.as_ref().unwrap();
    let deploy_status = manifest(status, "Deployment", "web").unwrap();
    assert!(
        deploy_status.is_condition_true("StatusFeedbackSynced", None),
        "{deploy_status:?}"
    );
    // WellKnownStatus reports only the fields present; ReadyReplicas and
    // AvailableReplicas stay absent without a kubelet. Replicas is the
    // deployment controller's count of (Pending) Pods.
    assert_eq!(deploy_status.feedback("ReadyReplicas"), None);
    let applied = status.condition(CONDITION_APPLIED).unwrap();
    assert_eq!(applied.reason, "AppliedManifestWorkComplete");
    let available = status.condition(CONDITION_AVAILABLE).unwrap();
    assert_eq!(available.reason, "ResourcesAvailable");

    // And over the status stream.
    let streamed = next_event(
        &mut events,
        "a Modified event with the status",
        |event| match event {
            WatchEvent::Modified(w) if is_work(&w, &resource_id) => {
                check_status(w.status.as_ref(), 1, &expected).map(|()| w)
            }
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert_eq!(streamed.metadata.namespace.as_deref(), Some(WEST));

    forget(&client, WEST, name).await;
}

#[tokio::test]
async fn an_updated_configmap_is_changed_in_place_and_the_version_observed_is_2() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-update"));
    let ns = unique("e2e-update");
    cluster.create_namespace(&ns).await;
    let name = "settings";
    let configs = json!([{
        "resourceIdentifier": {"resource": "configmaps", "namespace": ns, "name": "settings"},
        "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "x", "path": ".data.x"}]}],
    }]);
    let v1 = with_configs(
        work(
            WEST,
            name,
            vec![configmap_in(&ns, "settings", json!({"x": "1"}))],
        ),
        configs.clone(),
    );
    client.apply(&v1).await.unwrap();
    eventually!(
        "version 1 applied",
        bundle_status(
            &client,
            WEST,
            name,
            1,
            &[("ConfigMap", "settings", "x", FieldValue::string("1"))]
        )
    );
    let before = get_configmap(&cluster, &ns, "settings").await.unwrap();

    let v2 = with_configs(
        work(
            WEST,
            name,
            vec![configmap_in(&ns, "settings", json!({"x": "2"}))],
        ),
        configs,
    );
    assert_eq!(
        client.apply(&v2).await.unwrap(),
        ApplyOutcome::Updated { from_version: 1 }
    );

    let after = eventually!("x=2 in the API server", async {
        let cm = get_configmap(&cluster, &ns, "settings").await?;
        match configmap_value(&cm, "x").as_deref() {
            Some("2") => Ok(cm),
            other => Err(format!("ConfigMap data.x is {other:?}")),
        }
    });
    assert_eq!(
        after.metadata.uid, before.metadata.uid,
        "updated in place, not recreated"
    );
    let reported = eventually!(
        "version 2 observed with the new feedback",
        bundle_status(
            &client,
            WEST,
            name,
            2,
            &[("ConfigMap", "settings", "x", FieldValue::string("2"))]
        )
    );
    assert_eq!(reported.metadata.generation, Some(2));

    forget(&client, WEST, name).await;
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn a_manifest_removed_from_the_work_is_deleted_from_the_cluster() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-prune"));
    let ns = unique("e2e-prune");
    cluster.create_namespace(&ns).await;
    let name = "pair";
    let keep = configmap_in(&ns, "keep", json!({"x": "k"}));
    let drop = configmap_in(&ns, "drop", json!({"x": "d"}));
    client
        .apply(&work(WEST, name, vec![keep.clone(), drop]))
        .await
        .unwrap();
    eventually!(
        "version 1 applied",
        bundle_status(&client, WEST, name, 1, &[])
    );
    let kept = get_configmap(&cluster, &ns, "keep").await.unwrap();
    let dropped = get_configmap(&cluster, &ns, "drop").await.unwrap();
    let (applied_name, _) =
        assert_delivered_by(&cluster, &client, WEST, name, &dropped.metadata).await;

    client.apply(&work(WEST, name, vec![keep])).await.unwrap();

    eventually!(
        "the removed ConfigMap deleted from the API server",
        configmap_gone(&cluster, &ns, "drop")
    );
    let reported = eventually!(
        "version 2 applied",
        bundle_status(&client, WEST, name, 2, &[])
    );
    let manifests = &reported
        .status
        .as_ref()
        .unwrap()
        .resource_status
        .as_ref()
        .unwrap()
        .manifests;
    let names: Vec<_> = manifests
        .iter()
        .map(|m| m.resource_meta.name.as_str())
        .collect();
    assert_eq!(names, ["keep"]);
    let still = get_configmap(&cluster, &ns, "keep").await.unwrap();
    assert_eq!(
        still.metadata.uid, kept.metadata.uid,
        "the kept ConfigMap was left alone"
    );
    let applied = cluster
        .applied_manifest_works()
        .get(&applied_name)
        .await
        .unwrap();
    let resources: Vec<_> = applied.data["status"]["appliedResources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        resources,
        ["keep"],
        "AppliedManifestWork status: {}",
        applied.data["status"]
    );

    forget(&client, WEST, name).await;
    cluster.drop_namespace(&ns).await;
}

#[tokio::test]
async fn a_deleted_work_removes_its_objects_then_the_bundle_and_the_watch_sees_it_deleted() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-delete"));
    let ns = unique("e2e-delete");
    let name = "doomed";
    let mut manifests: Vec<Value> = cluster.namespace_for_work(&ns).await.into_iter().collect();
    let with_namespace = !manifests.is_empty();
    manifests.push(configmap_in(&ns, "doomed", json!({"x": "1"})));
    manifests.push(deployment(&ns, "doomed", 1));
    client.apply(&work(WEST, name, manifests)).await.unwrap();
    eventually!(
        "version 1 applied",
        bundle_status(&client, WEST, name, 1, &[])
    );
    let cm = get_configmap(&cluster, &ns, "doomed").await.unwrap();
    let (applied_name, _) = assert_delivered_by(&cluster, &client, WEST, name, &cm.metadata).await;
    get_deployment(&cluster, &ns, "doomed").await.unwrap();
    let resource_id = client
        .resource_id(&consumer_name(WEST), &work_name(name))
        .to_string();
    let mut events = watch_from_now(&client, WEST).await;

    assert_eq!(
        client
            .delete(&consumer_name(WEST), &work_name(name))
            .await
            .unwrap(),
        DeleteOutcome::Deleting
    );

    eventually!("ConfigMap deleted", configmap_gone(&cluster, &ns, "doomed"));
    eventually!(
        "Deployment deleted",
        deployment_gone(&cluster, &ns, "doomed")
    );
    if with_namespace {
        eventually!(
            "the work's Namespace deleted",
            namespace_gone(&cluster, &ns)
        );
    }
    eventually!(
        "the AppliedManifestWork deleted",
        applied_manifest_work_gone(&cluster, &applied_name)
    );
    eventually!(
        "the bundle gone from Maestro (REST 404)",
        bundle_gone(&client, WEST, name)
    );
    let deleted = next_event(&mut events, "a Deleted event", |event| match event {
        WatchEvent::Deleted(w) if is_work(&w, &resource_id) => Ok(w),
        other => Err(format!("{other:?}")),
    })
    .await;
    assert_eq!(deleted.metadata.namespace.as_deref(), Some(WEST));
    assert_eq!(deleted.metadata.name.as_deref(), Some(name));
    assert_eq!(
        client
            .delete(&consumer_name(WEST), &work_name(name))
            .await
            .unwrap(),
        DeleteOutcome::NotFound
    );
    if !with_namespace {
        cluster.drop_namespace(&ns).await;
    }
}

#[tokio::test]
async fn an_orphaning_work_leaves_its_objects_in_place_after_the_bundle_is_gone() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-orphan"));
    let ns = unique("e2e-orphan");
    cluster.create_namespace(&ns).await;
    let name = "keepsake";
    let mut work = work(
        WEST,
        name,
        vec![
            configmap_in(&ns, "keepsake", json!({"x": "1"})),
            deployment(&ns, "keepsake", 1),
        ],
    );
    work.spec.delete_option =
        Some(serde_json::from_value(json!({"propagationPolicy": "Orphan"})).unwrap());
    client.apply(&work).await.unwrap();
    eventually!(
        "version 1 applied",
        bundle_status(&client, WEST, name, 1, &[])
    );
    let cm = get_configmap(&cluster, &ns, "keepsake").await.unwrap();
    let deploy = get_deployment(&cluster, &ns, "keepsake").await.unwrap();
    // Orphaned objects get no owner, so deleting the AppliedManifestWork
    // cannot garbage-collect them.
    assert_eq!(owning_applied_manifest_work(&cm.metadata), None);
    assert_eq!(owning_applied_manifest_work(&deploy.metadata), None);
    let applied_name = eventually!("the AppliedManifestWork of the work", async {
        let list = cluster
            .applied_manifest_works()
            .list(&Default::default())
            .await
            .map_err(|e| format!("LIST AppliedManifestWorks: {e}"))?;
        let resource_id = client
            .resource_id(&consumer_name(WEST), &work_name(name))
            .to_string();
        list.items
            .iter()
            .find(|a| a.data["spec"]["manifestWorkName"] == resource_id.as_str())
            .and_then(|a| a.metadata.name.clone())
            .ok_or_else(|| {
                format!(
                    "none of {} has manifestWorkName {resource_id}",
                    list.items.len()
                )
            })
    });

    client
        .delete(&consumer_name(WEST), &work_name(name))
        .await
        .unwrap();

    eventually!(
        "the bundle gone from Maestro (REST 404)",
        bundle_gone(&client, WEST, name)
    );
    eventually!(
        "the AppliedManifestWork deleted",
        applied_manifest_work_gone(&cluster, &applied_name)
    );
    let cm_after = get_configmap(&cluster, &ns, "keepsake").await.unwrap();
    let deploy_after = get_deployment(&cluster, &ns, "keepsake").await.unwrap();
    assert_eq!(cm_after.metadata.uid, cm.metadata.uid);
    assert_eq!(cm_after.metadata.deletion_timestamp, None);
    assert_eq!(deploy_after.metadata.uid, deploy.metadata.uid);
    assert_eq!(deploy_after.metadata.deletion_timestamp, None);

    if cluster.namespaces_deletable {
        cluster.drop_namespace(&ns).await;
    } else {
        let _ = cluster
            .configmaps(&ns)
            .delete("keepsake", &DeleteParams::default())
            .await;
        let _ = cluster
            .deployments(&ns)
            .delete("keepsake", &DeleteParams::background())
            .await;
    }
}

#[tokio::test]
async fn works_of_the_same_name_for_two_consumers_land_through_their_own_agents() {
    let cluster = Cluster::connect().await;
    let client = client(&unique("e2e-fleet"));
    let name = "shared";
    let mut seen = BTreeMap::new();
    let targets = [(WEST, unique("e2e-west")), (EAST, unique("e2e-east"))];
    for (consumer, ns) in &targets {
        cluster.create_namespace(ns).await;
        client
            .apply(&work(
                consumer,
                name,
                vec![configmap_in(ns, "greeting", json!({"from": consumer}))],
            ))
            .await
            .unwrap();
    }
    for (consumer, ns) in &targets {
        let cm = eventually!(
            format!("the {consumer} ConfigMap in the API server"),
            get_configmap(&cluster, ns, "greeting")
        );
        assert_eq!(configmap_value(&cm, "from").as_deref(), Some(*consumer));
        let (_, agent) = assert_delivered_by(&cluster, &client, consumer, name, &cm.metadata).await;
        eventually!(
            format!("the {consumer} agent's status"),
            bundle_status(&client, consumer, name, 1, &[])
        );
        seen.insert(*consumer, agent);
    }
    assert_ne!(
        seen[WEST], seen[EAST],
        "both consumers' works were applied by one agent ID"
    );

    for (consumer, ns) in &targets {
        forget(&client, consumer, name).await;
        cluster.drop_namespace(ns).await;
    }
}
