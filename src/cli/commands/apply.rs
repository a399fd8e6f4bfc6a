//! `apply`: create or update a work from a file.
//!
//! Without `--manifest-name` the file is the whole desired work and
//! replaces what Maestro holds (never a partial update). With it, only the
//! named manifest of the file is put into the existing work, replacing the
//! manifest with the same name or joining the others; the update carries
//! the version just read, so a concurrent writer is detected, not
//! overwritten.

use std::path::PathBuf;

use clap::Args;

use crate::error::Error;
use crate::maestro::work_client::{ApplyOutcome, WorkClient};
use crate::manifestwork::{ManifestWork, validate_work};
use crate::names::{ConsumerName, WorkName};

use crate::cli::args::WriteTimeout;
use crate::cli::connection::Connection;
use crate::cli::errors::{CliError, explain_unknown_consumer};
use crate::cli::input::{self, Content, clean_server_fields};
use crate::cli::ops::guard::{Touch, refuse_foreign, refuse_managed};
use crate::cli::ops::wait::{self, WorkCondition};
use crate::cli::output::{self, Progress};
use crate::cli::remote::{ManifestSelector, WorkHealth, describe_manifest, find, find_retrying};
use crate::cli::results::{Report, ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::{Deadline, retry};

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
    #[command(flatten)]
    pub timeout: WriteTimeout,
    /// Check and print the work that would be sent, send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Change the work even when a MaestroApply manages it (it carries the operator's owner labels); the operator restores its declared spec unless that object's spec.driftPolicy is Report
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(
    conn: &Connection,
    args: ApplyArgs,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    subject.consumer = args.consumer.to_string();
    if let Some(name) = &args.name {
        subject.name = name.to_string();
    }
    if args.watch && args.condition == WorkCondition::Deleted {
        return Err(CliError::Usage(
            "apply --watch cannot wait for Deleted; use Applied, Available, Progressing or Degraded"
                .into(),
        ));
    }
    let deadline = args.timeout.deadline();
    let input = input::load(&args.manifest_file)?;

    if let Some(selector) = &args.manifest_name {
        let selector = ManifestSelector::parse(selector)?;
        return apply_one_manifest(conn, &args, input, &selector, subject, &deadline).await;
    }

    let origin = input.origin.clone();
    let work = input::work_for(input, &args.consumer, args.name.as_ref())?;
    subject.name = work.metadata.name.clone().unwrap_or_default();
    validate_work(&work).map_err(|errors| CliError::Invalid { origin, errors })?;
    let name = WorkName::new(subject.name.clone()).map_err(|e| CliError::Usage(e.to_string()))?;

    if args.dry_run {
        output::emit(&output::to_yaml(&work)?)?;
        eprintln!("manifestwork/{name} is valid (dry run: nothing sent)");
        return Ok(Report::with_result(StatusResult::new(
            subject,
            "Valid",
            "dry run: the work is valid and was not sent",
        )));
    }

    let client = conn.client()?;
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
        conn, client, &args, &name, subject, &deadline, message, args.watch,
    )
    .await
}

/// After a write: wait for the condition, or report the state as it is.
#[allow(clippy::too_many_arguments)]
async fn finish(
    _ctx: &Connection,
    client: &WorkClient,
    args: &ApplyArgs,
    name: &WorkName,
    subject: &Subject,
    deadline: &Deadline,
    message: String,
    watch: bool,
) -> Result<Report, CliError> {
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
        let mut result = StatusResult::new(
            subject,
            condition,
            format!("{message}; {condition} is True"),
        );
        if let Some(remote) = &remote {
            result = result.with_snapshot(&remote.snapshot());
        }
        return Ok(Report::with_result(result));
    }
    // One read for the record; a failure here does not undo the write.
    let current = retry(deadline, "read the applied work", async || {
        find(client, &args.consumer, name).await
    })
    .await;
    let mut result = StatusResult::new(subject, "InProgress", message.clone());
    match current {
        Ok(Some(remote)) => {
            let phase = remote.health();
            if remote.status_is_current()
                && matches!(phase, WorkHealth::Applied | WorkHealth::Available)
            {
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
    Ok(Report::with_result(result))
}

async fn apply_one_manifest(
    conn: &Connection,
    args: &ApplyArgs,
    input: input::InputFile,
    selector: &ManifestSelector,
    subject: &mut Subject,
    deadline: &Deadline,
) -> Result<Report, CliError> {
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
    subject.name = name.to_string();
    let what = describe_manifest(&manifest);
    let client = conn.client()?;

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
            return Ok(Report::with_result(StatusResult::new(
                subject,
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
                    conn, client, args, &name, subject, deadline, message, args.watch,
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
mod tests;
