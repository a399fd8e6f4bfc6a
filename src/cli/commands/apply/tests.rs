use super::*;
use crate::cli::Cli;
use crate::controller::target::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION, OWNER_UID_LABEL,
};
use crate::maestro::held::from_json;
use clap::Parser;
use serde_json::{Value, json};

#[test]
fn apply_delete_and_build_take_force() {
    for args in [
        &[
            "maestro-cli",
            "apply",
            "-f",
            "w.yaml",
            "--consumer",
            "c",
            "--force",
        ][..],
        &[
            "maestro-cli",
            "delete",
            "--name",
            "w",
            "--consumer",
            "c",
            "--force",
        ],
        &[
            "maestro-cli",
            "delete",
            "--all",
            "--consumer",
            "c",
            "--force",
        ],
        &[
            "maestro-cli",
            "build",
            "--name",
            "w",
            "--consumer",
            "c",
            "--source-file",
            "s",
            "--apply",
            "--force",
        ],
    ] {
        assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
    }
}

fn consumer() -> ConsumerName {
    ConsumerName::new("cluster-west-1").unwrap()
}

fn bundle(metadata: Value, deleting: bool) -> HeldWork {
    let mut b = json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "cluster-west-1",
        "version": 2, "metadata": metadata,
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}],
    });
    if deleting {
        b["deleted_at"] = json!("2025-12-13T13:32:30Z");
    }
    from_json(b).unwrap()
}

fn managed_bundle() -> HeldWork {
    bundle(
        json!({"name": "web", "namespace": "cluster-west-1",
                   "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: "0b7c1d1e"},
                   "annotations": {OWNER_ANNOTATION: "team-a/hello"}}),
        false,
    )
}

fn plain_bundle(deleting: bool) -> HeldWork {
    bundle(
        json!({"name": "web", "namespace": "cluster-west-1"}),
        deleting,
    )
}

fn configmap(name: &str, data: &str) -> Manifest {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": data}}))
    .unwrap()
}

fn web(manifests: Vec<Manifest>) -> ManifestWork {
    ManifestWork::for_consumer("cluster-west-1", "web", manifests)
}

#[test]
fn a_plain_apply_creates_replaces_and_leaves_an_unchanged_work_alone() {
    let work = web(vec![configmap("a", "1")]);
    let consumer = consumer();
    let mut decide = replace_unless_managed(&consumer, &work, false);
    assert!(matches!(decide(None), Decision::Publish(_, ())));
    assert!(matches!(
        decide(Some(&plain_bundle(false))),
        Decision::Publish(_, ())
    ));
    let mut same = plain_bundle(false);
    let hash = crate::maestro::work_client::spec_hash_of_work(&work);
    same.annotations = same
        .annotations
        .iter()
        .chain([(
            crate::maestro::work_client::SPEC_HASH_ANNOTATION,
            hash.as_str(),
        )])
        .collect();
    assert!(matches!(decide(Some(&same)), Decision::Skip(())));
}

#[test]
fn a_plain_apply_refuses_a_managed_work_unless_forced_and_one_being_deleted() {
    let work = web(vec![configmap("a", "1")]);
    let consumer = consumer();
    let managed = managed_bundle();
    let refused = replace_unless_managed(&consumer, &work, false)(Some(&managed));
    assert!(
        matches!(&refused, Decision::Refuse(ApplyRefusal::Cli(CliError::Failed(m))) if m.contains("--force")),
        "{refused:?}"
    );
    let forced = replace_unless_managed(&consumer, &work, true)(Some(&managed));
    assert!(matches!(forced, Decision::Publish(_, ())), "{forced:?}");
    let deleting = replace_unless_managed(&consumer, &work, false)(Some(&plain_bundle(true)));
    assert!(
        matches!(&deleting, Decision::Refuse(ApplyRefusal::Maestro(r)) if r.0.contains("being deleted")),
        "{deleting:?}"
    );
}

fn merge<'a>(
    consumer: &'a ConsumerName,
    name: &'a WorkName,
    manifest: &'a Manifest,
    selector: &'a ManifestSelector,
    dry_run: bool,
) -> Merge<'a> {
    Merge {
        consumer,
        name,
        manifest,
        template: None,
        selector,
        origin: "m.yaml",
        force: false,
        dry_run,
    }
}

/// The verb and manifest names of a merge decision.
fn merged(decision: Decision<Merged, CliError>) -> (String, Vec<String>) {
    let names = |w: &ManifestWork| {
        w.spec
            .workload
            .manifests
            .iter()
            .map(describe_manifest)
            .collect()
    };
    match decision {
        Decision::Publish(work, note) => (note.verb().into(), names(&work)),
        Decision::Skip(Merged::DryRun(verb, work)) => (format!("dry run: {verb}"), names(&work)),
        Decision::Skip(note) => (note.verb().into(), Vec::new()),
        Decision::Refuse(e) => (format!("refused: {e}"), Vec::new()),
    }
}

#[test]
fn a_merge_adds_replaces_or_leaves_the_named_manifest() {
    let (consumer, name) = (consumer(), WorkName::new("web").unwrap());
    let sel_a = ManifestSelector::parse("a").unwrap();
    let sel_b = ManifestSelector::parse("b").unwrap();
    let (a2, b1) = (configmap("a", "2"), configmap("b", "1"));
    let current = plain_bundle(false);

    let (verb, names) = merged(merge(&consumer, &name, &b1, &sel_b, false).decide(None));
    assert_eq!((verb.as_str(), names.len()), ("added to a new work", 1));
    let (verb, names) = merged(merge(&consumer, &name, &b1, &sel_b, false).decide(Some(&current)));
    assert_eq!((verb.as_str(), names.len()), ("added", 2));
    let (verb, names) = merged(merge(&consumer, &name, &a2, &sel_a, false).decide(Some(&current)));
    assert_eq!((verb.as_str(), names.len()), ("replaced", 1));
    let a_as_is: Manifest = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"}}))
    .unwrap();
    let (verb, _) = merged(merge(&consumer, &name, &a_as_is, &sel_a, false).decide(Some(&current)));
    assert_eq!(verb, "unchanged");
}

#[test]
fn a_merge_dry_run_shows_the_merged_work_and_writes_nothing() {
    let (consumer, name) = (consumer(), WorkName::new("web").unwrap());
    let sel_b = ManifestSelector::parse("b").unwrap();
    let b1 = configmap("b", "1");
    let (verb, names) =
        merged(merge(&consumer, &name, &b1, &sel_b, true).decide(Some(&plain_bundle(false))));
    assert_eq!(verb, "dry run: added");
    assert_eq!(names.len(), 2);
}

#[test]
fn a_merge_refuses_a_managed_work_one_being_deleted_and_an_invalid_result() {
    let (consumer, name) = (consumer(), WorkName::new("web").unwrap());
    let sel_b = ManifestSelector::parse("b").unwrap();
    let b1 = configmap("b", "1");
    let (verb, _) =
        merged(merge(&consumer, &name, &b1, &sel_b, false).decide(Some(&managed_bundle())));
    assert!(
        verb.contains("managed by MaestroApply team-a/hello"),
        "{verb}"
    );
    let (verb, _) =
        merged(merge(&consumer, &name, &b1, &sel_b, false).decide(Some(&plain_bundle(true))));
    assert!(verb.contains("is being deleted"), "{verb}");
    let nameless: Manifest =
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap"})).unwrap();
    let decision = merge(&consumer, &name, &nameless, &sel_b, false).decide(None);
    assert!(
        matches!(&decision, Decision::Refuse(CliError::Invalid { origin, .. }) if origin.contains("merged into manifestwork web")),
        "{decision:?}"
    );
}
