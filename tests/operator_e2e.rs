//! The operator end to end on the real local stack: MaestroApply objects
//! created, changed and deleted with kubectl and kube-rs; the operator (the
//! real binary) publishes through the real Maestro; real agents apply the
//! ConfigMaps into the real kube-apiserver and report back.
//!
//! See tests/support/operator.rs for the harness. Every test has its own
//! namespace, operator process and source ID.

mod support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use maestro_operator::controller::FINALIZER;
use maestro_operator::controller::crd::{MaestroApply, MaestroApplyStatus, Phase};
use maestro_operator::names::{ResourceId, SourceId};
use serde_json::{Value, json};
use support::operator::*;

fn cm_value(cm: Option<&k8s_openapi::api::core::v1::ConfigMap>) -> Option<String> {
    cm?.data.as_ref()?.get("value").cloned()
}

/// A test's namespace with an operator (no extra flags) running on it.
async fn with_operator(prefix: &str) -> (TestNs, Operator) {
    let ns = TestNs::new(prefix).await;
    let op = ns.operator(&[]).await;
    (ns, op)
}

/// A spec for cluster-west-1 with one ConfigMap `cm` in the test's
/// namespace, its data `{"value": value}`.
fn west_spec(ns: &TestNs, cm: &str, value: &str) -> Value {
    spec(WEST, vec![configmap(&ns.name, cm, json!({"value": value}))])
}

/// [`west_spec`] with the top-level spec `fields` (e.g. `{"interval": "2s"}`)
/// set too.
fn west_spec_with(ns: &TestNs, cm: &str, value: &str, fields: Value) -> Value {
    let mut s = west_spec(ns, cm, value);
    for (key, field) in fields.as_object().expect("fields is an object") {
        s[key] = field.clone();
    }
    s
}

/// Waits until `name` is refused because `owner` holds the work, and checks
/// that the one live bundle is still `owner`'s, unchanged at version 1.
/// Returns the Ready message.
async fn wait_refused_for(ns: &TestNs, name: &str, owner: &MaestroApply) -> String {
    let obj = ns
        .wait_condition(name, "Ready", "False", "WorkClaimed")
        .await;
    let message = ready_message(&obj);
    let owner_name = owner.metadata.name.as_deref().unwrap_or_default();
    assert!(
        message.contains(&format!("{}/{owner_name}", ns.name)),
        "{message}"
    );
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].version, 1, "not overwritten");
    assert_eq!(owner_uid(&live[0]), owner.metadata.uid);
    message
}

/// Runs kubectl in the test's namespace; returns (success, stdout, stderr).
async fn kubectl_in(ns: &TestNs, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut all = vec!["-n", ns.name.as_str()];
    all.extend_from_slice(args);
    kubectl(&all, stdin).await
}

/// Waits until the object has a status satisfying `check`.
async fn wait_status(
    ns: &TestNs,
    name: &str,
    what: &str,
    check: impl Fn(&MaestroApplyStatus) -> bool,
) -> MaestroApply {
    ns.wait_until(name, what, |o| o.status.as_ref().is_some_and(&check))
        .await
}

/// Deletes the object and waits until the API server no longer has it.
async fn delete_and_wait_gone(ns: &TestNs, name: &str) {
    ns.delete(name).await;
    ns.wait_gone(name).await;
}

/// Merge-patches the object.
async fn merge_patch(ns: &TestNs, name: &str, patch: Value) {
    ns.mapply()
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn events(ns: &TestNs, name: &str) -> String {
    let field_selector = format!("involvedObject.name={name}");
    let (_, out, _) = kubectl_in(
        ns,
        &[
            "get",
            "events",
            "--field-selector",
            &field_selector,
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason",
            "--no-headers",
        ],
        None,
    )
    .await;
    out
}

#[tokio::test]
async fn invalid_objects_are_rejected_by_the_api_server_with_a_message_naming_the_field() {
    let ns = TestNs::new("op-invalid").await;
    let manifest = |body: &str| {
        format!(
            "apiVersion: maestro.hyperfleet.io/v1alpha1\nkind: MaestroApply\nmetadata: {{name: NAME}}\nspec:\n{body}"
        )
    };
    let good_manifests = "  manifestWork: {workload: {manifests: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}]}}\n";
    let cases = [
        ("empty", "  consumer: cluster-west-1\n  manifestWork: {workload: {manifests: []}}\n".to_string(),
         "spec.manifestWork.workload.manifests"),
        ("noname", "  consumer: cluster-west-1\n  manifestWork: {workload: {manifests: [{apiVersion: v1, kind: ConfigMap, metadata: {namespace: x}}]}}\n".to_string(),
         "each manifest needs apiVersion, kind and metadata.name"),
        ("nokind", "  consumer: cluster-west-1\n  manifestWork: {workload: {manifests: [{apiVersion: v1, metadata: {name: c}}]}}\n".to_string(),
         "spec.manifestWork.workload.manifests[0].kind: Required value"),
        ("duration", format!("  consumer: cluster-west-1\n  pollInterval: soon\n{good_manifests}"),
         "spec.pollInterval: Invalid value: \"soon\": must be a duration"),
        ("consumer", format!("  consumer: Cluster_West\n{good_manifests}"),
         "spec.consumer"),
        ("waitfor", format!("  consumer: cluster-west-1\n  waitFor: Ready\n{good_manifests}"),
         "spec.waitFor: Unsupported value: \"Ready\""),
        ("dotted.name", format!("  consumer: cluster-west-1\n{good_manifests}"),
         "set spec.workName"),
    ];
    for (name, body, expected) in cases {
        let yaml = manifest(&body).replace("NAME", name);
        let (ok, _, err) = kubectl_in(&ns, &["apply", "-f", "-"], Some(&yaml)).await;
        assert!(!ok, "{name} was accepted");
        assert!(err.contains(expected), "{name}: {err}");
    }

    // Immutable fields: create a valid one, then try to move it.
    let yaml =
        manifest(&format!("  consumer: cluster-west-1\n{good_manifests}")).replace("NAME", "fixed");
    let (ok, _, err) = kubectl_in(&ns, &["apply", "-f", "-"], Some(&yaml)).await;
    assert!(ok, "{err}");
    for (patch, expected) in [
        (
            r#"{"spec":{"consumer":"cluster-east-2"}}"#,
            "spec.consumer is immutable",
        ),
        (
            r#"{"spec":{"workName":"other"}}"#,
            "spec.workName is immutable",
        ),
    ] {
        let (ok, _, err) = kubectl_in(
            &ns,
            &["patch", "mapply", "fixed", "--type=merge", "-p", patch],
            None,
        )
        .await;
        assert!(!ok && err.contains(expected), "{patch}: {err}");
    }
    ns.cleanup().await;
}

#[tokio::test]
async fn a_new_object_becomes_available_with_feedback_values_in_its_status() {
    let (ns, _op) = with_operator("op-create").await;
    ns.apply("web", west_spec(&ns, "web-cm", "one")).await;

    let obj = ns
        .wait_until("web", "Available with feedback", |o| {
            o.status.as_ref().is_some_and(|s| s.is_ready())
                && feedback(o, 0).as_deref() == Some("one")
        })
        .await;
    let status = obj.status.as_ref().unwrap();
    let expected_id =
        ResourceId::for_work(&SourceId::new(ns.source.as_str()).unwrap(), WEST, "web");
    assert_eq!(
        status.resource_bundle_id.as_deref(),
        Some(expected_id.to_string().as_str())
    );
    assert_eq!(status.phase, Some(Phase::Available));
    assert_eq!(
        (status.bundle_version, status.applied_version),
        (Some(1), Some(1))
    );
    assert_eq!(status.work_name.as_deref(), Some("web"));
    assert_eq!(status.observed_generation, obj.metadata.generation);
    assert!(status.last_publish_time.is_some() && status.last_status_change_time.is_some());
    assert_eq!(status.condition("Available").unwrap().status, "True");
    assert_eq!(status.condition("Applied").unwrap().status, "True");
    assert!(status.condition("Reconciling").is_none() && status.condition("Stalled").is_none());
    let m = &status.manifests[0];
    assert_eq!(
        (m.resource.kind.as_str(), m.resource.name.as_str()),
        ("ConfigMap", "web-cm")
    );
    assert_eq!(m.resource.namespace, ns.name);
    assert!(
        obj.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .iter()
            .any(|f| f == FINALIZER)
    );

    let cm = ns.configmaps().get("web-cm").await.unwrap();
    assert_eq!(cm_value(Some(&cm)).as_deref(), Some("one"));
    let events = events(&ns, "web").await;
    assert!(
        events.contains("Normal   Created") && events.contains("Normal   Available"),
        "{events}"
    );

    // `kubectl wait` works on it, as Argo CD and Flux health checks would.
    let (ok, _, err) = kubectl_in(
        &ns,
        &[
            "wait",
            "--for=condition=Ready",
            "mapply/web",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    ns.cleanup().await;
}

#[tokio::test]
async fn changing_a_manifest_publishes_a_new_bundle_version_seen_in_the_api_server() {
    let (ns, _op) = with_operator("op-update").await;
    ns.apply_ready("web", west_spec(&ns, "web-cm", "one")).await;

    let changed = ns.apply("web", west_spec(&ns, "web-cm", "two")).await;
    assert_eq!(changed.metadata.generation, Some(2));
    let obj = ns
        .wait_until("web", "updated", |o| {
            o.status.as_ref().is_some_and(|s| {
                s.is_ready() && s.bundle_version == Some(2) && s.observed_generation == Some(2)
            }) && feedback(o, 0).as_deref() == Some("two")
        })
        .await;
    assert_eq!(obj.status.unwrap().applied_version, Some(2));
    ns.wait_configmap("web-cm", "updated", |cm| {
        cm_value(cm).as_deref() == Some("two")
    })
    .await;
    assert!(events(&ns, "web").await.contains("Normal   Updated"));

    // A change that does not touch the work (only the poll interval)
    // publishes nothing, but observedGeneration still follows.
    let mut same = west_spec(&ns, "web-cm", "two");
    same["pollInterval"] = json!("3s");
    ns.apply("web", same).await;
    let obj = wait_status(&ns, "web", "at generation 3", |s| {
        s.observed_generation == Some(3)
    })
    .await;
    assert_eq!(obj.status.unwrap().bundle_version, Some(2));
    ns.cleanup().await;
}

#[tokio::test]
async fn removing_a_manifest_removes_its_object_from_the_cluster() {
    let (ns, _op) = with_operator("op-remove").await;
    let a = configmap(&ns.name, "keep", json!({"value": "a"}));
    let b = configmap(&ns.name, "drop", json!({"value": "b"}));
    ns.apply_ready("pair", spec(WEST, vec![a.clone(), b])).await;
    ns.wait_configmap("drop", "created", |cm| cm.is_some())
        .await;

    ns.apply("pair", spec(WEST, vec![a])).await;
    ns.wait_configmap("drop", "removed", |cm| cm.is_none())
        .await;
    let obj = wait_status(&ns, "pair", "ready with one manifest", |s| {
        s.is_ready() && s.manifests.len() == 1
    })
    .await;
    assert_eq!(obj.status.unwrap().bundle_version, Some(2));
    assert!(ns.configmaps().get_opt("keep").await.unwrap().is_some());
    ns.cleanup().await;
}

#[tokio::test]
async fn deleting_with_delete_waits_until_maestro_no_longer_has_the_bundle() {
    let (ns, _op) = with_operator("op-delete").await;
    ns.apply_ready("web", west_spec(&ns, "web-cm", "x")).await;
    assert_eq!(ns.live_bundles().await.len(), 1);

    delete_and_wait_gone(&ns, "web").await;
    // The finalizer went only after the agent confirmed: Maestro has
    // nothing left, not even a bundle being deleted.
    assert!(bundles(&ns.source).await.is_empty());
    ns.wait_configmap("web-cm", "removed", |cm| cm.is_none())
        .await;
    let events = events(&ns, "web").await;
    assert!(
        events.contains("Deleting") && events.contains("Deleted"),
        "{events}"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn deleting_with_orphan_leaves_the_work_and_its_objects() {
    let (ns, _op) = with_operator("op-orphan").await;
    let s = west_spec_with(&ns, "kept", "x", json!({"deletionPolicy": "Orphan"}));
    ns.apply_ready("web", s).await;

    delete_and_wait_gone(&ns, "web").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let left = ns.live_bundles().await;
    assert_eq!(left.len(), 1, "the bundle stays");
    assert!(ns.configmaps().get_opt("kept").await.unwrap().is_some());

    let id = left[0].resource_id().unwrap();
    rest().delete_resource_bundle(&id).await.unwrap();
    ns.cleanup().await;
}

#[tokio::test]
async fn a_suspended_object_publishes_nothing_until_resumed() {
    let (ns, _op) = with_operator("op-suspend").await;
    let mut s = west_spec(&ns, "cm", "one");
    s["suspend"] = json!(true);
    ns.apply("web", s.clone()).await;
    let obj = ns
        .wait_condition("web", "Ready", "False", "Suspended")
        .await;
    assert_eq!(obj.status.unwrap().phase, Some(Phase::Suspended));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        bundles(&ns.source).await.is_empty(),
        "nothing published while suspended"
    );

    s["suspend"] = json!(false);
    ns.apply_ready("web", s.clone()).await;

    // Suspended again, a change waits; the status keeps reporting.
    s["suspend"] = json!(true);
    s["manifestWork"]["workload"]["manifests"][0]["data"]["value"] = json!("two");
    ns.apply("web", s.clone()).await;
    let obj = ns
        .wait_condition("web", "Ready", "False", "Suspended")
        .await;
    let status = obj.status.unwrap();
    assert_eq!(status.bundle_version, Some(1));
    assert_eq!(status.condition("Available").unwrap().status, "True");
    assert_eq!(ns.live_bundles().await[0].version, 1);

    s["suspend"] = json!(false);
    ns.apply("web", s).await;
    wait_status(&ns, "web", "resumed at version 2", |s| {
        s.is_ready() && s.bundle_version == Some(2)
    })
    .await;
    ns.wait_configmap("cm", "updated", |cm| cm_value(cm).as_deref() == Some("two"))
        .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn an_unknown_consumer_is_reported_in_the_conditions() {
    let (ns, _op) = with_operator("op-unknown").await;
    ns.apply(
        "web",
        spec(
            "no-such-cluster",
            vec![configmap("default", "x", json!({}))],
        ),
    )
    .await;
    let obj = ns
        .wait_condition("web", "Ready", "False", "UnknownConsumer")
        .await;
    let status = obj.status.unwrap();
    let stalled = status.condition("Stalled").expect("Stalled");
    assert_eq!(stalled.reason, "UnknownConsumer");
    assert!(
        stalled.message.contains("no-such-cluster"),
        "{}",
        stalled.message
    );
    assert_eq!(status.phase, Some(Phase::Stalled));
    assert!(
        events(&ns, "web")
            .await
            .contains("Warning   UnknownConsumer")
    );
    // Nothing was published, so nothing holds the deletion up.
    delete_and_wait_gone(&ns, "web").await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_second_object_claiming_the_same_work_is_refused_and_overwrites_nothing() {
    let (ns, _op) = with_operator("op-claim").await;
    let shared = json!({"workName": "shared"});
    let first = west_spec_with(&ns, "first", "1", shared.clone());
    let first_obj = ns.apply_ready("first", first).await;

    ns.apply("second", west_spec_with(&ns, "second", "2", shared))
        .await;
    wait_refused_for(&ns, "second", &first_obj).await;
    assert!(ns.configmaps().get_opt("second").await.unwrap().is_none());

    // Once the first is gone, the second takes the name over.
    delete_and_wait_gone(&ns, "first").await;
    let second_obj = ns.wait_ready("second").await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(owner_uid(&live[0]), second_obj.metadata.uid);
    ns.wait_configmap("second", "created", |cm| cm.is_some())
        .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn an_orphaned_work_is_adopted_only_when_the_new_object_asks_for_it() {
    let (ns, _op) = with_operator("op-adopt").await;
    let old = json!({"workName": "shared", "deletionPolicy": "Orphan"});
    let old_obj = ns
        .apply_ready("old", west_spec_with(&ns, "cm", "old", old))
        .await;
    delete_and_wait_gone(&ns, "old").await;

    // The owner is gone, but its uid is still on the bundle: no silent
    // take-over.
    let new = west_spec_with(&ns, "cm", "new", json!({"workName": "shared"}));
    ns.apply("new", new).await;
    let message = wait_refused_for(&ns, "new", &old_obj).await;
    assert!(message.contains("maestro.hyperfleet.io/adopt"), "{message}");

    // Asked for explicitly: relabelled to the new owner at the current
    // version, with an event.
    merge_patch(
        &ns,
        "new",
        json!({"metadata": {"annotations": {"maestro.hyperfleet.io/adopt": "true"}}}),
    )
    .await;
    let obj = wait_status(&ns, "new", "ready on the adopted work", |s| {
        s.is_ready() && s.bundle_version == Some(2)
    })
    .await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1, "adopted, not duplicated");
    assert_eq!(owner_uid(&live[0]), obj.metadata.uid);
    ns.wait_configmap("cm", "updated", |cm| cm_value(cm).as_deref() == Some("new"))
        .await;
    assert!(events(&ns, "new").await.contains("Adopted"));
    ns.cleanup().await;
}

#[tokio::test]
async fn a_bundle_deleted_behind_our_back_is_recreated_at_the_next_resync() {
    let (ns, _op) = with_operator("op-recreate").await;
    let s = west_spec_with(&ns, "cm", "x", json!({"interval": "3s"}));
    let first = ns.apply_ready("web", s).await;
    let first_publish = first.status.unwrap().last_publish_time;
    let id = ns.live_bundles().await[0].resource_id().unwrap();

    rest().delete_resource_bundle(&id).await.unwrap();
    wait_status(&ns, "web", "republished and ready", |s| {
        s.is_ready() && s.last_publish_time != first_publish
    })
    .await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].resource_id(), Some(id), "same ID: no duplicate");
    ns.wait_configmap("cm", "present again", |cm| cm.is_some())
        .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn the_requested_at_annotation_forces_a_refresh_and_is_acknowledged() {
    // Polls only: the status stream would report the agent's deletion at
    // once, and the point here is the forced read.
    let ns = TestNs::new("op-requested").await;
    let op = ns.operator(&["--status-source=poll"]).await;
    // Default interval (30m): once Ready, nothing is read for half an hour.
    let s = west_spec_with(&ns, "cm", "x", json!({"pollInterval": "10s"}));
    ns.apply_ready("web", s).await;
    let id = ns.live_bundles().await[0].resource_id().unwrap();

    // Deleted behind the operator's back: it will not notice for 30 min...
    rest().delete_resource_bundle(&id).await.unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    while !bundles(&ns.source).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never confirmed the deletion"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(ns.live_bundles().await.is_empty());
    let polls = op.metric("maestro_operator_maestro_polls_total").await;

    // ...unless asked to look now.
    let at = "2026-01-01T00:00:00Z";
    merge_patch(
        &ns,
        "web",
        json!({"metadata": {"annotations": {
                "maestro.hyperfleet.io/reconcile-requested-at": at}}}),
    )
    .await;
    let obj = ns
        .wait_until("web", "acknowledging the request", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(at)
        })
        .await;
    assert!(op.metric("maestro_operator_maestro_polls_total").await > polls);
    assert_eq!(ns.live_bundles().await.len(), 1, "recreated at once");
    assert_eq!(obj.status.unwrap().resource_bundle_id, Some(id.to_string()));
    ns.cleanup().await;
}

#[tokio::test]
async fn an_idle_ready_object_writes_no_status() {
    let (ns, op) = with_operator("op-idle").await;
    // Keep reading every 2 s even once Ready.
    let s = west_spec_with(&ns, "cm", "x", json!({"interval": "2s"}));
    ns.apply("web", s).await;
    ns.wait_until("web", "ready with feedback", |o| {
        o.status.as_ref().is_some_and(|s| s.is_ready()) && feedback(o, 0).is_some()
    })
    .await;
    // Let the agent's next feedback sync land, then measure.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let writes = op.metric("maestro_operator_status_writes_total").await;
    let reconciles = op.metric("maestro_operator_reconciles_total").await;
    let polls = op.metric("maestro_operator_maestro_polls_total").await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(op.metric("maestro_operator_maestro_polls_total").await >= polls + 3.0);
    assert!(op.metric("maestro_operator_reconciles_total").await > reconciles);
    assert_eq!(
        op.metric("maestro_operator_status_writes_total").await,
        writes,
        "polled and reconciled, but nothing changed, so nothing was written"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn an_object_not_ready_within_its_timeout_is_stalled_and_keeps_polling() {
    let (ns, _op) = with_operator("op-timeout").await;
    // A registered consumer no agent serves: the work is stored, never
    // applied.
    let lonely = fresh_consumer().await;
    let mut s = spec(&lonely, vec![configmap("default", "never", json!({}))]);
    s["timeout"] = json!("5s");
    ns.apply("web", s).await;
    let progressing = ns
        .wait_condition("web", "Reconciling", "True", "Progressing")
        .await;
    assert_eq!(progressing.status.unwrap().bundle_version, Some(1));
    let obj = ns
        .wait_condition("web", "Stalled", "True", "TimedOut")
        .await;
    let status = obj.status.unwrap();
    let ready = status.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "TimedOut")
    );
    assert!(
        ready.message.contains("not Available within 5s") && ready.message.contains(&lonely),
        "{}",
        ready.message
    );
    assert_eq!(status.phase, Some(Phase::Stalled));
    assert!(events(&ns, "web").await.contains("Warning   TimedOut"));
    // Nothing will confirm a deletion on this consumer: orphan it.
    merge_patch(&ns, "web", json!({"spec": {"deletionPolicy": "Orphan"}})).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn an_object_the_operator_cannot_decode_is_reported_and_the_others_are_served() {
    let ns = TestNs::new("op-poison").await;
    // A manifest nested 140 levels deep: serde cannot decode it (its
    // recursion limit is 128). The admission policy refuses such an object
    // unless it is too big for CEL to walk, when the policy fails open:
    // 60,000 empty lists beside it get it in, as an object stored before
    // the policy would be. Made as text, since serde_json cannot parse it
    // back either.
    let bad = deep_object(&ns, "poison", 141, 60_000);
    let (ok, _, err) = kubectl(&["apply", "-f", "-"], Some(&bad)).await;
    assert!(ok, "the API server accepts it: {err}");

    // Started after it exists, so its first list holds it.
    let _op = ns.operator(&[]).await;
    ns.apply_ready("good", west_spec(&ns, "good", "1")).await;

    let deadline = std::time::Instant::now() + DEADLINE;
    let mut seen = reason_and_phase(&ns, "poison").await;
    while seen.trim() != "InvalidObject|Stalled" && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        seen = reason_and_phase(&ns, "poison").await;
    }
    assert_eq!(seen.trim(), "InvalidObject|Stalled");
    assert!(
        events(&ns, "poison")
            .await
            .contains("Warning   InvalidObject")
    );

    // Deleting it is not held up: nothing was published for it.
    kubectl(
        &["delete", "mapply", "poison", "-n", &ns.name, "--wait=false"],
        None,
    )
    .await;
    ns.cleanup().await;
}

/// The object's Ready reason and phase as `REASON|PHASE`, read by kubectl
/// (kube-rs cannot decode an object nested that deep).
async fn reason_and_phase(ns: &TestNs, name: &str) -> String {
    let (_, out, _) = kubectl_in(
        ns,
        &[
            "get",
            "mapply",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}|{.status.phase}",
        ],
        None,
    )
    .await;
    out
}

#[tokio::test]
async fn a_manifest_nested_deeper_than_the_bound_is_refused_at_admission() {
    let ns = TestNs::new("op-deep").await;
    // The manifest is level 1, its fields' values level 2, and so on.
    let (ok, _, err) = kubectl(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&deep_object(&ns, "deepest-allowed", 100, 0)),
    )
    .await;
    assert!(ok, "100 levels are allowed: {err}");
    // The API server enforces a policy some moments after it is applied
    // (this process may just have installed it).
    let too_deep = deep_object(&ns, "too-deep", 101, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut ok, mut err) = (true, String::new());
    while ok && std::time::Instant::now() < deadline {
        (ok, _, err) = kubectl(&["create", "--dry-run=server", "-f", "-"], Some(&too_deep)).await;
        if ok {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(!ok, "101 levels are refused");
    assert!(
        err.contains("spec.manifestWork.workload.manifests: a manifest nests objects or lists more than 100 levels deep"),
        "{err}"
    );
    ns.cleanup().await;
}

/// A MaestroApply (as JSON text) delivering a ConfigMap whose deepest
/// object is at `levels` (the manifest is level 1), with `padding` empty
/// lists beside it.
fn deep_object(ns: &TestNs, name: &str, levels: usize, padding: usize) -> String {
    let mut deep = "\"x\"".to_string();
    for _ in 1..levels {
        deep = format!("{{\"a\":{deep}}}");
    }
    let pad = vec!["[]"; padding].join(",");
    format!(
        r#"{{"apiVersion":"maestro.hyperfleet.io/v1alpha1","kind":"MaestroApply",
            "metadata":{{"name":"{name}","namespace":"{ns}"}},
            "spec":{{"consumer":"{WEST}","manifestWork":{{"workload":{{"manifests":[
              {{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep","namespace":"{ns}"}},"data":{{"k":"v"}},"extra":{deep},"pad":[{pad}]}}
            ]}}}}}}}}"#,
        ns = ns.name
    )
}

/// Runs `maestro-cli` under the test's source ID (the operator's), as
/// another client of that source would; returns (exit code, stdout,
/// stderr).
async fn cli_as_operator(ns: &TestNs, args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro-cli"))
        .args(args)
        .args(["--source-id", ns.source.as_str()])
        .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
        .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
        .output()
        .await
        .expect("maestro-cli runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Rewrites work `web` with ConfigMap `cm` holding `value`, no owner
/// labels, through `maestro-cli apply` (with `extra` flags).
async fn tamper(ns: &TestNs, value: &str, extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cm.json");
    std::fs::write(
        &file,
        configmap(&ns.name, "cm", json!({"value": value})).to_string(),
    )
    .unwrap();
    let mut args = vec![
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--name",
        "web",
        "--consumer",
        WEST,
    ];
    args.extend_from_slice(extra);
    cli_as_operator(ns, &args).await
}

#[tokio::test]
async fn a_work_rewritten_behind_our_back_is_restored_with_an_event_and_a_metric() {
    let (ns, op) = with_operator("op-drift").await;
    let mut s = west_spec_with(&ns, "cm", "declared", json!({"interval": "2s"}));
    let obj = ns.apply_ready("web", s.clone()).await;
    let uid = obj.metadata.uid.clone();
    ns.wait_configmap("cm", "declared", |cm| {
        cm_value(cm).as_deref() == Some("declared")
    })
    .await;
    let before = ns.live_bundles().await[0].version;

    // The CLI refuses, naming the owner, and writes nothing.
    let (code, _, err) = tamper(&ns, "tampered", &[]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "ManifestWork web on consumer {WEST} is managed by MaestroApply {}/web",
            ns.name
        )) && err.contains("--force"),
        "{err}"
    );
    assert_eq!(ns.live_bundles().await[0].version, before, "not written");

    // Forced: other data and no owner labels. The operator recognises its
    // own bundle and publishes the declared spec and labels over it.
    let (code, out, err) = tamper(&ns, "tampered", &["--force"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let tampered = before + 1;
    wait_status(&ns, "web", "restored after the tamper", |s| {
        s.is_ready() && s.bundle_version.is_some_and(|v| v > tampered)
    })
    .await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(owner_uid(&live[0]), uid, "owner label back");
    ns.wait_configmap("cm", "declared again", |cm| {
        cm_value(cm).as_deref() == Some("declared")
    })
    .await;
    assert!(
        events(&ns, "web")
            .await
            .contains("Warning   DriftCorrected"),
        "{}",
        events(&ns, "web").await
    );
    let corrections = op.metric("maestro_operator_drift_corrections_total").await;
    assert!(corrections >= 1.0, "{corrections}");

    // A spec change is an update, not drift.
    s["manifestWork"]["workload"]["manifests"][0]["data"]["value"] = json!("changed");
    ns.apply("web", s).await;
    ns.wait_configmap("cm", "changed", |cm| {
        cm_value(cm).as_deref() == Some("changed")
    })
    .await;
    ns.wait_ready("web").await;
    assert_eq!(
        op.metric("maestro_operator_drift_corrections_total").await,
        corrections
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn reported_drift_is_left_in_place_and_deleting_the_object_still_removes_the_work() {
    let (ns, _op) = with_operator("op-drift-report").await;
    let report = json!({"interval": "2s", "driftPolicy": "Report"});
    ns.apply_ready("web", west_spec_with(&ns, "cm", "declared", report))
        .await;

    let (code, out, err) = tamper(&ns, "tampered", &["--force"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let obj = ns
        .wait_condition("web", "Drifted", "True", "DriftDetected")
        .await;
    let status = obj.status.as_ref().unwrap();
    let ready = status.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DriftDetected")
    );
    assert!(
        ready.message.contains("spec and labels changed"),
        "{}",
        ready.message
    );
    ns.wait_configmap("cm", "tampered", |cm| {
        cm_value(cm).as_deref() == Some("tampered")
    })
    .await;
    // Several resyncs later it is still as the other client left it.
    let version = ns.live_bundles().await[0].version;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].version, version, "not restored");
    assert_eq!(owner_uid(&live[0]), None);
    assert!(events(&ns, "web").await.contains("Warning   DriftDetected"));

    // The object delivered this work: deleting it deletes the work, labels
    // or not, and waits for the agent.
    delete_and_wait_gone(&ns, "web").await;
    assert!(ns.live_bundles().await.is_empty());
    ns.wait_configmap("cm", "removed", |cm| cm.is_none()).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_deletion_no_agent_confirms_stalls_after_its_timeout_and_orphans_when_asked() {
    let (ns, _op) = with_operator("op-deltimeout").await;
    // A consumer no agent serves: like a cluster that is gone.
    let consumer = fresh_consumer().await;
    let mut s = spec(
        &consumer,
        vec![configmap(&ns.name, "cm", json!({"value": "x"}))],
    );
    s["deletionTimeout"] = json!("5s");
    ns.apply("web", s.clone()).await;
    ns.wait_condition("web", "Ready", "False", "Progressing")
        .await;

    ns.delete("web").await;
    let obj = ns
        .wait_condition("web", "Stalled", "True", "DeletionNotConfirmed")
        .await;
    let status = obj.status.unwrap();
    let message = &status.condition("Ready").unwrap().message;
    assert!(
        message.contains(&format!("consumer {consumer}"))
            && message.contains("deletionPolicy: Orphan"),
        "{message}"
    );
    assert_eq!(status.phase, Some(Phase::Deleting));

    // Asked to let go after the timeout: the finalizer goes, with a Warning.
    s["deletionTimeoutAction"] = json!("Orphan");
    ns.apply("web", s).await;
    ns.wait_gone("web").await;
    assert!(
        events(&ns, "web")
            .await
            .contains("Warning   DeletionTimedOut")
    );
    ns.cleanup().await;
}
