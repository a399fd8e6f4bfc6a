use super::*;

fn manifest(name: &str, data: &str) -> Manifest {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": data}
    }))
    .unwrap()
}

fn work(manifests: Vec<Manifest>) -> ManifestWork {
    ManifestWork::for_consumer("c", "w", manifests)
}

fn name() -> WorkName {
    WorkName::new("w").unwrap()
}

#[test]
fn equal_works_have_no_diff() {
    let w = work(vec![manifest("a", "1")]);
    assert_eq!(work_diff(&name(), Some(&w), &w), "");
}

#[test]
fn a_changed_value_shows_as_a_unified_diff_of_that_manifest_only() {
    let live = work(vec![manifest("a", "1"), manifest("b", "1")]);
    let desired = work(vec![manifest("a", "2"), manifest("b", "1")]);
    let d = work_diff(&name(), Some(&live), &desired);
    assert!(
        d.contains("--- live/v1/ConfigMap/default/a\n+++ desired/v1/ConfigMap/default/a\n"),
        "{d}"
    );
    assert!(
        d.contains("-  k: '1'\n+  k: '2'\n") || d.contains("-  k: \"1\"\n+  k: \"2\"\n"),
        "{d}"
    );
    assert!(!d.contains("ConfigMap/default/b"), "{d}");
}

#[test]
fn added_and_removed_manifests_diff_against_nothing() {
    let live = work(vec![manifest("a", "1")]);
    let desired = work(vec![manifest("b", "1")]);
    let d = work_diff(&name(), Some(&live), &desired);
    assert!(
        d.contains("-kind: ConfigMap") && d.contains("+kind: ConfigMap"),
        "{d}"
    );
    assert!(
        d.find("default/a").unwrap() < d.find("default/b").unwrap(),
        "{d}"
    );
}

#[test]
fn a_missing_live_work_shows_everything_as_added_and_labels_count() {
    let desired = work(vec![manifest("a", "1")]);
    let d = work_diff(&name(), None, &desired);
    assert!(
        d.contains("+++ desired/ManifestWork/w")
            && d.contains("+++ desired/v1/ConfigMap/default/a"),
        "{d}"
    );
    let mut labelled = desired.clone();
    labelled.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    let d = work_diff(&name(), Some(&desired), &labelled);
    assert!(d.contains("+    app: web"), "{d}");
}
