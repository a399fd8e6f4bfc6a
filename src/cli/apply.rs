//! `apply`: create or update a work from a file.
//!
//! Without `--manifest-name` the file is the whole desired work and
//! replaces what Maestro holds (never a partial update). With it, only the
//! named manifest of the file is put into the existing work, replacing the
//! manifest with the same name or joining the others; the update carries
//! the version just read, so a concurrent writer is detected, not
//! overwritten.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::Error;
use crate::maestro::work_client::{ApplyOutcome, WorkClient};
use crate::manifestwork::{ManifestWork, validate_work};
use crate::names::{ConsumerName, WorkName};

use super::context::{Deadline, Progress, parse_timeout, retry};
use super::errors::CliError;
use super::input::{self, Content, clean_server_fields};
use super::output;
use super::remote::{ManifestSelector, Phase, Remote, describe_manifest, find, find_retrying};
use super::results::{ResultsArgs, StatusResult, Target};
use super::wait::{self, WorkCondition};
use super::{Ctx, Outcome, explain_unknown_consumer};
use crate::controller::target::Owner;

/// How often a `--manifest-name` update is retried after losing a race to
/// another writer.
const MERGE_ATTEMPTS: usize = 3;

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// A ManifestWork, or manifests (with --name), in YAML or JSON; - reads standard input
    #[arg(long, short = 'f', value_name = "FILE")]
    pub manifest_file: PathBuf,
    /// The consumer (cluster) to deliver to
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// The work's name; required when the file holds manifests, must agree with a ManifestWork file
    #[arg(long, value_name = "NAME")]
    pub name: Option<WorkName>,
    /// Put only this manifest of the file into the existing work, keeping the others (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST")]
    pub manifest_name: Option<String>,
    /// Then wait for --condition
    #[arg(long)]
    pub watch: bool,
    /// The condition --watch waits for
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkCondition::Applied, requires = "watch")]
    pub condition: WorkCondition,
    /// Give up after this long (retries and --watch included)
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Check and print the work that would be sent, send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Change the work even when a MaestroApply manages it (it carries the operator's owner labels); the operator restores its declared spec unless that object's spec.driftPolicy is Report
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(ctx: &Ctx, args: ApplyArgs, target: &mut Target) -> Result<Outcome, CliError> {
    target.consumer = args.consumer.to_string();
    if let Some(name) = &args.name {
        target.name = name.to_string();
    }
    if args.watch && args.condition == WorkCondition::Deleted {
        return Err(CliError::Usage(
            "apply --watch cannot wait for Deleted; use Applied, Available, Progressing or Degraded"
                .into(),
        ));
    }
    let deadline = Deadline::after(args.timeout);
    let input = input::load(&args.manifest_file)?;

    if let Some(selector) = &args.manifest_name {
        let selector = ManifestSelector::parse(selector)?;
        return apply_one_manifest(ctx, &args, input, &selector, target, &deadline).await;
    }

    let origin = input.origin.clone();
    let work = input::work_for(input, &args.consumer, args.name.as_ref())?;
    target.name = work.metadata.name.clone().unwrap_or_default();
    validate_work(&work).map_err(|errors| CliError::Invalid { origin, errors })?;
    let name = WorkName::new(target.name.clone()).map_err(|e| CliError::Usage(e.to_string()))?;

    if args.dry_run {
        output::emit(&output::to_yaml(&work)?)?;
        eprintln!("manifestwork/{name} is valid (dry run: nothing sent)");
        return Ok(Outcome::with_result(StatusResult::new(
            target,
            "Valid",
            "dry run: the work is valid and was not sent",
        )));
    }

    let client = ctx.client()?;
    let existing = find_retrying(client, &deadline, &args.consumer, &name).await?;
    if let Some(remote) = &existing {
        refuse_foreign(client, &args.consumer, remote)?;
        refuse_managed(&args.consumer, remote, Touch::Change, args.force)?;
    }

    let outcome = retry(
        &deadline,
        &format!("apply manifestwork {name} to consumer {}", args.consumer),
        async || client.apply(&work).await,
    )
    .await
    .map_err(explain_unknown_consumer)?;
    let (verb, version) = match outcome {
        ApplyOutcome::Created { version } => ("created", version),
        ApplyOutcome::Updated { from_version } => ("configured", from_version + 1),
        ApplyOutcome::Unchanged { version } => ("unchanged", version),
    };
    output::emit(&format!("manifestwork/{name} {verb} (version {version})\n"))?;
    let message = format!("ManifestWork {verb} (version {version})");
    finish(
        ctx, client, &args, &name, target, &deadline, message, args.watch,
    )
    .await
}

/// After a write: wait for the condition, or report the state as it is.
#[allow(clippy::too_many_arguments)]
async fn finish(
    _ctx: &Ctx,
    client: &WorkClient,
    args: &ApplyArgs,
    name: &WorkName,
    target: &Target,
    deadline: &Deadline,
    message: String,
    watch: bool,
) -> Result<Outcome, CliError> {
    if watch {
        let mut progress = Progress::new();
        let remote = wait::wait_for(
            client,
            &args.consumer,
            name,
            args.condition,
            None,
            deadline,
            &mut progress,
        )
        .await?;
        let condition = args.condition.as_str();
        output::emit(&format!("manifestwork/{name} condition met: {condition}\n"))?;
        let mut result =
            StatusResult::new(target, condition, format!("{message}; {condition} is True"));
        if let Some(remote) = &remote {
            result = result.with_snapshot(&remote.snapshot());
        }
        return Ok(Outcome::with_result(result));
    }
    // One read for the record; a failure here does not undo the write.
    let current = retry(deadline, "read the applied work", async || {
        find(client, &args.consumer, name).await
    })
    .await;
    let mut result = StatusResult::new(target, "InProgress", message.clone());
    match current {
        Ok(Some(remote)) => {
            let phase = remote.phase();
            if remote.status_is_current() && matches!(phase, Phase::Applied | Phase::Available) {
                result.status = phase.to_string();
                result.message = format!("{message}; the agent reports it {phase}");
            } else {
                result.message = format!("{message}; not yet confirmed by the agent");
            }
            result = result.with_snapshot(&remote.snapshot());
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the work back"),
    }
    Ok(Outcome::with_result(result))
}

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

/// "MaestroApply ns/name", or by uid when the bundle does not say the name.
pub fn owner_name(owner: &Owner) -> String {
    if owner.name.is_empty() {
        format!("a MaestroApply (uid {})", owner.uid)
    } else {
        format!("MaestroApply {owner}")
    }
}

async fn apply_one_manifest(
    ctx: &Ctx,
    args: &ApplyArgs,
    input: input::Input,
    selector: &ManifestSelector,
    target: &mut Target,
    deadline: &Deadline,
) -> Result<Outcome, CliError> {
    let origin = input.origin.clone();
    let index = selector.find_in(input.manifests())?.ok_or_else(|| {
        CliError::Usage(format!(
            "{origin}: no manifest matches --manifest-name {selector}"
        ))
    })?;
    let manifest = input.manifests()[index].clone();
    // A ManifestWork file lends its name and labels to a work created here.
    let (file_name, template) = match &input.content {
        Content::Work(w) => (w.metadata.name.clone(), Some((**w).clone())),
        Content::Manifests(_) => (None, None),
    };
    let name = match (&args.name, file_name) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) => {
            WorkName::new(n).map_err(|e| CliError::Usage(format!("{origin}: {e}")))?
        }
        (None, None) => {
            return Err(CliError::Usage(format!(
                "{origin} holds manifests, not a ManifestWork: name the work with --name"
            )));
        }
    };
    target.name = name.to_string();
    let what = describe_manifest(&manifest);
    let client = ctx.client()?;

    for attempt in 1..=MERGE_ATTEMPTS {
        let existing = find_retrying(client, deadline, &args.consumer, &name).await?;
        let (work, version, verb) = match existing {
            None => {
                let mut work = ManifestWork::for_consumer(
                    args.consumer.as_str(),
                    name.as_str(),
                    vec![manifest.clone()],
                );
                if let Some(t) = &template {
                    work.metadata.labels = t.metadata.labels.clone();
                    work.metadata.annotations = t.metadata.annotations.clone();
                    clean_server_fields(&mut work);
                }
                (work, None, "added to a new work")
            }
            Some(remote) => {
                refuse_foreign(client, &args.consumer, &remote)?;
                refuse_managed(&args.consumer, &remote, Touch::Change, args.force)?;
                if remote.bundle.is_deleting() {
                    return Err(CliError::Failed(format!(
                        "manifestwork {name} on consumer {} is being deleted; apply again once it is gone",
                        args.consumer
                    )));
                }
                let mut work = remote.work.clone();
                clean_server_fields(&mut work);
                let manifests = &mut work.spec.workload.manifests;
                let verb = match selector.find_in(manifests)? {
                    Some(i) if manifests[i] == manifest => "unchanged",
                    Some(i) => {
                        manifests[i] = manifest.clone();
                        "replaced"
                    }
                    None => {
                        manifests.push(manifest.clone());
                        "added"
                    }
                };
                (work, Some(remote.version()), verb)
            }
        };
        validate_work(&work).map_err(|errors| CliError::Invalid {
            origin: format!("{origin} merged into manifestwork {name}"),
            errors,
        })?;
        if args.dry_run {
            output::emit(&output::to_yaml(&work)?)?;
            eprintln!("manifest {what} would be {verb} (dry run: nothing sent)");
            return Ok(Outcome::with_result(StatusResult::new(
                target,
                "Valid",
                "dry run: nothing sent",
            )));
        }
        let written = match (verb, version) {
            ("unchanged", Some(v)) => Ok(v),
            (_, None) => retry(
                deadline,
                &format!("create manifestwork {name}"),
                async || client.create(&work).await,
            )
            .await
            .map(|()| 1),
            (_, Some(v)) => retry(
                deadline,
                &format!("update manifestwork {name}"),
                async || client.update(&work, v).await,
            )
            .await
            .map(|()| v + 1),
        };
        match written {
            Ok(version) => {
                output::emit(&format!(
                    "manifestwork/{name}: manifest {what} {verb} (version {version})\n"
                ))?;
                let message = format!("manifest {what} {verb} (version {version})");
                return finish(
                    ctx, client, args, &name, target, deadline, message, args.watch,
                )
                .await;
            }
            Err(CliError::Maestro {
                source: Error::StaleVersion { .. } | Error::Conflict(_),
                ..
            }) if attempt < MERGE_ATTEMPTS => {
                tracing::info!(attempt, "another writer changed the work; merging again");
            }
            Err(e) => return Err(explain_unknown_consumer(e)),
        }
    }
    Err(CliError::Failed(format!(
        "manifestwork {name}: other writers kept changing it; gave up after {MERGE_ATTEMPTS} attempts"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::controller::target::{
        MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION, OWNER_UID_LABEL,
    };
    use clap::Parser;
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
}
