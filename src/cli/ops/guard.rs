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
            remote.held.id,
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
        .filter(|w| !w.held.is_deleting())
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
mod tests;
