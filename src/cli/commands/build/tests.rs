use super::*;
use serde_json::json;

fn m(kind: &str, name: &str, v: i64) -> Manifest {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": "ns"}, "data": {"v": v}}))
    .unwrap()
}

#[test]
fn merge_replaces_in_place_adds_new_and_keeps_the_rest() {
    let existing = vec![
        m("ConfigMap", "a", 1),
        m("NodePool", "old", 1),
        m("Secret", "s", 1),
    ];
    let source = vec![m("NodePool", "new", 1), m("ConfigMap", "a", 2)];
    let (out, changes) = combine(&existing, &source, Strategy::Merge);
    let names: Vec<_> = out.iter().map(|x| x.name().unwrap()).collect();
    assert_eq!(names, ["a", "old", "s", "new"]);
    assert_eq!(out[0], m("ConfigMap", "a", 2));
    assert_eq!(changes.replaced, ["ConfigMap ns/a"]);
    assert_eq!(changes.added, ["NodePool ns/new"]);
    assert_eq!(changes.kept.len(), 2);
    assert!(changes.removed.is_empty());
}

#[test]
fn replace_drops_unlisted_manifests_of_the_sources_kinds_only() {
    let existing = vec![m("ConfigMap", "a", 1), m("NodePool", "old", 1)];
    let source = vec![m("NodePool", "new", 1)];
    let (out, changes) = combine(&existing, &source, Strategy::Replace);
    let names: Vec<_> = out.iter().map(|x| x.name().unwrap()).collect();
    assert_eq!(names, ["a", "new"]);
    assert_eq!(changes.removed, ["NodePool ns/old"]);
    assert!(!changes.is_noop());
}

#[test]
fn an_identical_source_changes_nothing() {
    let existing = vec![m("ConfigMap", "a", 1)];
    let (out, changes) = combine(&existing, &existing, Strategy::Merge);
    assert_eq!(out, existing);
    assert!(changes.is_noop());
    assert!(
        changes
            .summary()
            .starts_with("0 added, 0 replaced, 1 unchanged")
    );
}
