//! Refusals before a write: works this CLI cannot update (made by another
//! client) and works a MaestroApply manages (the operator's, unless
//! `--force`).

use crate::controller::target::Owner;
use crate::maestro::work_client::WorkClient;
use crate::names::ConsumerName;

use crate::cli::errors::CliError;
use crate::cli::remote::Remote;

/// Bundles made by other clients have ids this CLI does not derive; an
/// update would create a second bundle of the same name instead.
pub fn refuse_foreign(
    client: &WorkClient,
    consumer: &ConsumerName,
    remote: &Remote,
) -> Result<(), CliError> {
    if remote.is_foreign(client, consumer) {
        return Err(CliError::Failed(format!(
            "manifestwork {:?} on consumer \"{consumer}\" is resource bundle {}, created by another \
             client under an id this CLI does not derive for source {:?}; maestro-cli can read and \
             delete it but not update it",
            remote.name(),
            remote.bundle.id,
            client.source().as_str()
        )));
    }
    Ok(())
}

/// What a command is about to do to a work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    Change,
    Delete,
}

/// Works a MaestroApply manages belong to the operator: a change here is
/// drift it undoes (or, with `driftPolicy: Report`, a silent divergence
/// from the object), and a deletion is undone at its next resync. So the
/// CLI leaves them alone unless `--force`, and says whose they are.
pub fn refuse_managed(
    consumer: &ConsumerName,
    remote: &Remote,
    touch: Touch,
    force: bool,
) -> Result<(), CliError> {
    let Some(owner) = remote.managed_by() else {
        return Ok(());
    };
    let owner = owner_name(&owner);
    let name = remote.name();
    if force {
        tracing::warn!(%consumer, work = name, owner, "--force: touching a work a MaestroApply manages");
        return Ok(());
    }
    let (verb, then) = match touch {
        Touch::Change => (
            "change",
            "the operator restores the declared spec at its next resync unless the object's \
             spec.driftPolicy is Report; change the MaestroApply instead",
        ),
        Touch::Delete => (
            "delete",
            "the operator publishes it again at its next resync; delete the MaestroApply instead",
        ),
    };
    Err(CliError::Failed(format!(
        "ManifestWork {name} on consumer {consumer} is managed by {owner}; pass --force to \
         {verb} it anyway ({then})"
    )))
}

/// `--all` touches nothing when any of the works is a MaestroApply's:
/// deleting the others and not those would be a surprise either way.
pub fn refuse_managed_among(consumer: &ConsumerName, works: &[Remote]) -> Result<(), CliError> {
    let managed: Vec<String> = works
        .iter()
        .filter(|w| !w.bundle.is_deleting())
        .filter_map(|w| {
            let owner = w.managed_by()?;
            Some(format!("{} (managed by {})", w.name(), owner_name(&owner)))
        })
        .collect();
    if managed.is_empty() {
        return Ok(());
    }
    Err(CliError::Failed(format!(
        "{} of the works on consumer {consumer} are managed by MaestroApply objects: {}; \
         nothing was deleted; delete the MaestroApply objects instead, or pass --force to \
         delete these too (the operator publishes them again while their objects exist)",
        managed.len(),
        managed.join(", ")
    )))
}

/// "MaestroApply ns/name", or by uid when the bundle does not say the name.
pub fn owner_name(owner: &Owner) -> String {
    if owner.name.is_empty() {
        format!("a MaestroApply (uid {})", owner.uid)
    } else {
        format!("MaestroApply {owner}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::target::{
        MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION, OWNER_UID_LABEL,
    };
    use serde_json::{Value, json};

    fn remote(metadata: Value) -> Remote {
        Remote::from_bundle(
            serde_json::from_value(json!({
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
            Remote::from_bundle(
                serde_json::from_value(json!({
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
}
