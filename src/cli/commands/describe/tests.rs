use super::*;
use crate::maestro::held::from_json;
use serde_json::{Value, json};

fn remote(extra: Value) -> Remote {
    let mut v = json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "cluster-west-1", "version": 2,
        "created_at": "2025-01-01T00:00:00Z",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "default"}}]
    });
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let bundle = from_json(v).unwrap();
    Remote::from_held(bundle).unwrap()
}

fn now() -> DateTime<Utc> {
    "2025-01-01T00:10:00Z".parse().unwrap()
}

fn cond(t: &str, s: &str, reason: &str, message: &str) -> Value {
    json!({"type": t, "status": s, "reason": reason, "message": message,
               "lastTransitionTime": "2025-01-01T00:05:00Z"})
}

#[test]
fn a_work_without_status_points_at_the_agent() {
    let d = diagnose(&remote(json!({})), now());
    assert_eq!(d.len(), 1);
    assert!(
        d[0].contains("agent running for consumer cluster-west-1"),
        "{d:?}"
    );
}

#[test]
fn failures_of_the_work_and_its_manifests_are_explained() {
    let r = remote(json!({"status": {
        "ObservedVersion": 1, "SequenceID": "1",
        "conditions": [cond("Applied", "False", "AppliedManifestWorkFailed", "1 of 1 failed")],
        "resourceStatus": [{"resourceMeta": {"ordinal": 0}, "conditions": [
            cond("Applied", "False", "AppliedManifestFailed", "no matches for kind \"NodePool\"")]}]
    }}));
    let d = diagnose(&r, now()).join("\n");
    assert!(d.contains("has not reported on version 2"), "{d}");
    assert!(
        d.contains("AppliedManifestWorkFailed: 1 of 1 failed"),
        "{d}"
    );
    assert!(
        d.contains("manifest 0 (ConfigMap default/cm): not applied: AppliedManifestFailed"),
        "{d}"
    );
}

#[test]
fn a_healthy_work_has_no_findings_and_the_page_shows_everything() {
    let r = remote(json!({"status": {
        "ObservedVersion": 2, "SequenceID": "1",
        "conditions": [cond("Applied", "True", "AppliedManifestWorkComplete", "ok"),
                       cond("Available", "True", "ResourcesAvailable", "ok")],
        "resourceStatus": [{"resourceMeta": {"ordinal": 0}, "conditions": [cond("Available", "True", "", "")],
                            "statusFeedback": {"values": [{"name": "replicas", "fieldValue": {"type": "Integer", "integer": 3}}]}}]
    }}));
    assert!(diagnose(&r, now()).is_empty());
    let p = page(&r, "maestro-cli", now());
    for needle in [
        "Name:              web",
        "Bundle ID:         55c61e54",
        "Version:           2 (agent observed 2)",
        "Status:            Available",
        "Labels:            app=web",
        "AppliedManifestWorkComplete   5m",
        "replicas: 3",
        "No problems found.",
    ] {
        assert!(p.contains(needle), "{needle:?} missing from:\n{p}");
    }
}

#[test]
fn a_slow_deletion_is_flagged() {
    let r = remote(json!({"deleted_at": "2025-01-01T00:01:00Z"}));
    let d = diagnose(&r, now()).join("\n");
    assert!(
        d.contains("deletion was requested 9m ago") && d.contains("is the agent"),
        "{d}"
    );
}
