use super::*;
use crate::maestro::held::from_json;
use serde_json::{Value, json};

fn bundle(status: Value, version: i64) -> HeldWork {
    from_json(json!({
            "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "c1", "version": version,
            "metadata": {"name": "web"},
            "manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}},
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "namespace": "default"}}
            ],
            "status": status
        }))
        .unwrap()
}

fn cond(t: &str, s: &str) -> Value {
    json!({"type": t, "status": s, "reason": "R", "message": "m",
               "lastTransitionTime": "2025-01-01T00:00:00Z"})
}

#[test]
fn health_reports_the_worst_news_first() {
    let cases = [
        (vec![], WorkHealth::Pending),
        (vec![cond("Applied", "True")], WorkHealth::Applied),
        (
            vec![cond("Applied", "True"), cond("Available", "True")],
            WorkHealth::Available,
        ),
        (
            vec![cond("Applied", "False"), cond("Available", "True")],
            WorkHealth::Failed,
        ),
        (
            vec![cond("Available", "True"), cond("Degraded", "True")],
            WorkHealth::Degraded,
        ),
        (vec![cond("Progressing", "True")], WorkHealth::Progressing),
    ];
    for (conditions, phase) in cases {
        let status = json!({"ObservedVersion": 1, "SequenceID": "1", "conditions": conditions});
        let r = Remote::from_held(bundle(status, 1)).unwrap();
        assert_eq!(r.health(), phase);
    }
}

#[test]
fn status_of_an_older_version_is_not_current() {
    let status = json!({"ObservedVersion": 1, "SequenceID": "1",
                            "conditions": [cond("Applied", "True")]});
    let old = Remote::from_held(bundle(status.clone(), 2)).unwrap();
    assert!(!old.status_is_current());
    let now = Remote::from_held(bundle(status, 1)).unwrap();
    assert!(now.status_is_current());
    let none = Remote::from_held(bundle(Value::Null, 1)).unwrap();
    assert!(!none.status_is_current());
    assert_eq!(none.health(), WorkHealth::Pending);
}

#[test]
fn resources_join_spec_and_status_by_ordinal() {
    let status = json!({"ObservedVersion": 1, "SequenceID": "1", "conditions": [],
    "resourceStatus": [{
        "resourceMeta": {"ordinal": 1, "kind": "Secret", "name": "a", "namespace": "default"},
        "conditions": [cond("Applied", "True")],
        "statusFeedback": {"values": [{"name": "n", "fieldValue": {"type": "Integer", "integer": 3}}]}
    }]});
    let r = Remote::from_held(bundle(status, 1)).unwrap();
    let res = r.snapshot().resources;
    assert_eq!(res.len(), 2);
    assert_eq!(
        (res[0].kind.as_str(), res[0].status.as_str()),
        ("ConfigMap", "Pending")
    );
    assert_eq!(
        (res[1].kind.as_str(), res[1].status.as_str()),
        ("Secret", "Applied")
    );
    assert_eq!(res[1].feedback.get("n"), Some(&json!(3)));
}

#[test]
fn manifest_selector_needs_qualifying_when_ambiguous() {
    let r = Remote::from_held(bundle(Value::Null, 1)).unwrap();
    let m = &r.work.spec.workload.manifests;
    let e = ManifestSelector::parse("a")
        .unwrap()
        .find_in(m)
        .unwrap_err();
    assert!(e.to_string().contains("ConfigMap default/a"), "{e}");
    assert_eq!(
        ManifestSelector::parse("secret/a")
            .unwrap()
            .find_in(m)
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        ManifestSelector::parse("ConfigMap/default/a")
            .unwrap()
            .find_in(m)
            .unwrap(),
        Some(0)
    );
    assert_eq!(
        ManifestSelector::parse("ConfigMap/other/a")
            .unwrap()
            .find_in(m)
            .unwrap(),
        None
    );
    assert!(ManifestSelector::parse("a//b").is_err());
    assert!(ManifestSelector::parse("a/b/c/d").is_err());
}
