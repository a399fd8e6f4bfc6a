use super::*;
use crate::controller::target::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION, OWNER_UID_LABEL,
};
use crate::maestro::held::from_json;
use serde_json::{Value, json};

fn remote(metadata: Value) -> Remote {
    Remote::from_held(
            from_json(json!({
                "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "c1", "version": 2,
                "metadata": metadata,
                "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}],
            }))
            .unwrap(),
        )
        .unwrap()
}

fn managed() -> Remote {
    remote(json!({
        "name": "web",
        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: "0b7c1d1e"},
        "annotations": {OWNER_ANNOTATION: "team-a/hello"},
    }))
}

fn consumer() -> ConsumerName {
    ConsumerName::new("cluster-west-1").unwrap()
}

#[test]
fn a_work_a_maestroapply_manages_is_refused_naming_the_owner_and_the_way_out() {
    for (touch, verb) in [(Touch::Change, "change"), (Touch::Delete, "delete")] {
        let e = refuse_managed(&consumer(), &managed(), touch, false).unwrap_err();
        let message = e.to_string();
        assert!(
                message.contains(
                    "ManifestWork web on consumer cluster-west-1 is managed by MaestroApply team-a/hello"
                ) && message.contains(&format!("pass --force to {verb} it anyway")),
                "{message}"
            );
        assert!(
            matches!(e, CliError::Failed(_)),
            "exit code 1, as other refusals"
        );
    }
}

#[test]
fn force_lets_a_managed_work_be_touched() {
    assert!(refuse_managed(&consumer(), &managed(), Touch::Change, true).is_ok());
    assert!(refuse_managed(&consumer(), &managed(), Touch::Delete, true).is_ok());
}

#[test]
fn works_without_owner_labels_are_not_refused() {
    let plain = remote(json!({"name": "web", "labels": {"app": "web"}}));
    assert!(refuse_managed(&consumer(), &plain, Touch::Change, false).is_ok());
}

#[test]
fn an_owner_without_a_recorded_name_is_named_by_uid() {
    let bare = remote(json!({"name": "web", "labels": {OWNER_UID_LABEL: "0b7c1d1e"}}));
    let message = refuse_managed(&consumer(), &bare, Touch::Change, false)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("a MaestroApply (uid 0b7c1d1e)"),
        "{message}"
    );
}

#[test]
fn delete_all_refuses_when_any_work_is_a_maestroapplys_naming_them() {
    let work = |name: &str, metadata: serde_json::Value| {
        let mut metadata = metadata;
        metadata["name"] = json!(name);
        Remote::from_held(
                from_json(json!({
                    "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 1,
                    "metadata": metadata,
                    "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}],
                }))
                .unwrap(),
            )
            .unwrap()
    };
    let consumer = ConsumerName::new("c1").unwrap();
    let plain = work("plain", json!({}));
    let managed = work(
        "web",
        json!({"labels": {OWNER_UID_LABEL: "u1"}, "annotations": {OWNER_ANNOTATION: "team-a/hello"}}),
    );
    assert!(refuse_managed_among(&consumer, std::slice::from_ref(&plain)).is_ok());
    let message = refuse_managed_among(&consumer, &[plain, managed])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("web (managed by MaestroApply team-a/hello)")
            && message.contains("nothing was deleted")
            && message.contains("--force"),
        "{message}"
    );
}
