//! `delete`: a work, one manifest of it, or every work of a consumer.
//!
//! Deleting is asynchronous in Maestro: the bundle is marked, the agent
//! removes the resources from the cluster, then Maestro drops the bundle.
//! `--watch` waits for that last step.

use std::collections::BTreeSet;

use clap::Args;

use crate::maestro::HeldWork;
use crate::maestro::error::Error;
use crate::maestro::work_client::WorkClient;
use crate::manifestwork::validate_work;
use crate::names::{ConsumerName, ResourceId, WorkName};

use crate::cli::args::WriteTimeout;
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::input::clean_server_fields;
use crate::cli::ops::guard::{Touch, refuse_foreign, refuse_managed, refuse_managed_among};
use crate::cli::ops::wait::{self, WorkCondition};
use crate::cli::output::{self, Progress};
use crate::cli::remote::{
    ManifestSelector, Remote, describe_manifest, find_retrying, work_not_found,
};
use crate::cli::results::{Report, ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::{Deadline, Follower, format_duration, poll_until, retry};

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// The work to delete
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub name: Option<WorkName>,
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// Remove only this manifest from the work (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(
        long,
        value_name = "MANIFEST",
        requires = "name",
        conflicts_with = "all"
    )]
    pub manifest_name: Option<String>,
    /// Delete every work of the consumer (asks first on a terminal unless --yes)
    #[arg(long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
    /// Wait until the agent has removed the resources and Maestro the work
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub timeout: WriteTimeout,
    /// Succeed when the work does not exist
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Delete or change works even when a MaestroApply manages them (they carry the operator's owner labels); the operator publishes them again unless the MaestroApply is deleted
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub results: ResultsArgs,
}

pub async fn run(
    conn: &Connection,
    args: DeleteArgs,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    subject.consumer = args.consumer.to_string();
    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    match (&args.name, args.all) {
        (Some(name), false) => {
            subject.name = name.to_string();
            match &args.manifest_name {
                Some(m) => {
                    let selector = ManifestSelector::parse(m)?;
                    delete_manifest(client, &args, name, &selector, subject, &deadline).await
                }
                None => delete_work(client, &args, name, subject, &deadline).await,
            }
        }
        (None, true) => delete_all(client, &args, subject, &deadline).await,
        _ => Err(CliError::Usage("give --name or --all".into())),
    }
}

/// Requests deletion of one bundle: over gRPC for our own works, over REST
/// for bundles of other clients (whose ids we do not derive).
async fn request_delete(
    client: &WorkClient,
    consumer: &ConsumerName,
    remote: &Remote,
    deadline: &Deadline,
) -> Result<(), CliError> {
    let name = remote.name().to_string();
    let what = format!("delete manifestwork {name} on consumer {consumer}");
    if remote.is_foreign(client, consumer) {
        let id = remote.held.id;
        retry(deadline, &what, async || {
            client.delete_bundle_by_id(&id).await
        })
        .await
    } else {
        let work_name = WorkName::new(name).map_err(|e| CliError::Failed(e.to_string()))?;
        retry(deadline, &what, async || {
            client.delete(consumer, &work_name).await
        })
        .await
        .map(|_| ())
    }
}

async fn delete_work(
    client: &WorkClient,
    args: &DeleteArgs,
    name: &WorkName,
    subject: &Subject,
    deadline: &Deadline,
) -> Result<Report, CliError> {
    let consumer = &args.consumer;
    let remote = find_retrying(client, deadline, consumer, name).await?;
    let Some(remote) = remote else {
        if args.ignore_not_found {
            output::emit(&format!("manifestwork/{name} not found (ignored)\n"))?;
            return Ok(Report::with_result(StatusResult::new(
                subject,
                "Deleted",
                "ManifestWork does not exist",
            )));
        }
        return Err(work_not_found(consumer, name));
    };
    if !remote.held.is_deleting() {
        refuse_managed(consumer, &remote, Touch::Delete, args.force)?;
        request_delete(client, consumer, &remote, deadline).await?;
    }
    if !args.watch {
        output::emit(&format!(
            "manifestwork/{name} deletion requested; the agent removes its resources, then Maestro drops it\n"
        ))?;
        return Ok(Report::with_result(
            StatusResult::new(subject, "Deleting", "deletion requested")
                .with_snapshot(&remote.snapshot()),
        ));
    }
    let mut progress = Progress::new();
    wait::wait_for(
        client,
        consumer,
        name,
        WorkCondition::Deleted,
        None,
        deadline,
        &mut progress,
    )
    .await?;
    output::emit(&format!("manifestwork/{name} deleted\n"))?;
    Ok(Report::with_result(StatusResult::new(
        subject,
        "Deleted",
        "the agent removed the resources and Maestro the work",
    )))
}

async fn delete_manifest(
    client: &WorkClient,
    args: &DeleteArgs,
    name: &WorkName,
    selector: &ManifestSelector,
    subject: &Subject,
    deadline: &Deadline,
) -> Result<Report, CliError> {
    let consumer = &args.consumer;
    let mut attempts = 0;
    let (removed, version) = loop {
        attempts += 1;
        let remote = find_retrying(client, deadline, consumer, name)
            .await?
            .ok_or_else(|| work_not_found(consumer, name))?;
        refuse_foreign(client, consumer, &remote)?;
        refuse_managed(consumer, &remote, Touch::Change, args.force)?;
        let mut work = remote.work.clone();
        clean_server_fields(&mut work);
        let manifests = &mut work.spec.workload.manifests;
        let Some(index) = selector.find_in(manifests)? else {
            if args.ignore_not_found {
                output::emit(&format!(
                    "manifestwork/{name}: no manifest {selector} (ignored)\n"
                ))?;
                return Ok(Report::with_result(
                    StatusResult::new(subject, "Deleted", "the manifest was not in the work")
                        .with_snapshot(&remote.snapshot()),
                ));
            }
            return Err(CliError::NotFound(format!(
                "manifestwork {name} on consumer {consumer} has no manifest matching {selector}"
            )));
        };
        if manifests.len() == 1 {
            return Err(CliError::Usage(format!(
                "{} is the only manifest of manifestwork {name}; a work needs at least one, \
                 so delete the work instead (delete --name {name} --consumer {consumer})",
                describe_manifest(&manifests[0])
            )));
        }
        let removed = manifests.remove(index);
        validate_work(&work).map_err(|errors| CliError::Invalid {
            origin: format!("manifestwork {name} without {selector}"),
            errors,
        })?;
        let version = remote.version();
        match retry(
            deadline,
            &format!("update manifestwork {name}"),
            async || client.update(&work, version).await,
        )
        .await
        {
            Ok(()) => break (removed, version + 1),
            Err(CliError::Maestro {
                source: Error::StaleVersion { .. },
                ..
            }) if attempts < 3 => continue,
            Err(e) => return Err(e),
        }
    };
    let what = describe_manifest(&removed);
    let removal = Removal {
        name,
        selector,
        what: &what,
        version,
    };
    report_removal(client, args, &removal, subject, deadline).await
}

/// A manifest taken out of a work: which, and the work's version after.
struct Removal<'a> {
    name: &'a WorkName,
    selector: &'a ManifestSelector,
    what: &'a str,
    version: i64,
}

/// After a manifest left the spec: with `--watch`, wait until the agent
/// has removed it; else report the removal requested.
async fn report_removal(
    client: &WorkClient,
    args: &DeleteArgs,
    removal: &Removal<'_>,
    subject: &Subject,
    deadline: &Deadline,
) -> Result<Report, CliError> {
    let Removal {
        name,
        selector,
        what,
        version,
    } = removal;
    let consumer = &args.consumer;
    if args.watch {
        let mut progress = Progress::new();
        wait::wait_for(
            client,
            consumer,
            name,
            WorkCondition::Deleted,
            Some(*selector),
            deadline,
            &mut progress,
        )
        .await?;
        output::emit(&format!(
            "manifestwork/{name}: manifest {what} removed (version {version}); the agent has applied it\n"
        ))?;
        return Ok(Report::with_result(StatusResult::new(
            subject,
            "Deleted",
            format!("manifest {what} removed and the agent applied version {version}"),
        )));
    }
    output::emit(&format!(
        "manifestwork/{name}: manifest {what} removed (version {version})\n"
    ))?;
    Ok(Report::with_result(StatusResult::new(
        subject,
        "Deleting",
        format!("manifest {what} removed from the work (version {version})"),
    )))
}

async fn delete_all(
    client: &WorkClient,
    args: &DeleteArgs,
    subject: &mut Subject,
    deadline: &Deadline,
) -> Result<Report, CliError> {
    let consumer = &args.consumer;
    let bundles = retry(
        deadline,
        &format!("list manifestworks of consumer {consumer}"),
        async || client.list_held(Some(consumer), None).await,
    )
    .await?;
    let works = bundles
        .into_iter()
        .map(|row| row.and_then(Remote::from_held))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::maestro("read the listed works", e))?;
    if works.is_empty() {
        output::emit(&format!("no manifestworks on consumer {consumer}\n"))?;
        return Ok(Report::with_result(StatusResult::new(
            subject,
            "Deleted",
            "the consumer had no works",
        )));
    }
    if !args.force {
        refuse_managed_among(consumer, &works)?;
    }
    let names: Vec<String> = works.iter().map(|w| w.name().to_string()).collect();
    if !output::confirmed(args.yes, &delete_all_question(consumer, &names))? {
        return Err(CliError::Failed("deletion cancelled".into()));
    }

    request_each(client, consumer, &works, deadline).await?;
    let message = format!("deleted {} works: {}", names.len(), names.join(", "));
    if !args.watch {
        return Ok(Report::with_result(StatusResult::new(
            subject,
            "Deleting",
            format!(
                "deletion requested for {} works: {}",
                names.len(),
                names.join(", ")
            ),
        )));
    }

    let ids: BTreeSet<ResourceId> = works.iter().map(|w| w.held.id).collect();
    wait_all_gone(client, consumer, &ids, deadline).await?;
    output::emit(&format!(
        "all {} manifestworks of consumer {consumer} deleted\n",
        ids.len()
    ))?;
    Ok(Report::with_result(StatusResult::new(
        subject, "Deleted", message,
    )))
}

/// Requests the deletion of each work not already being deleted; the
/// failures are reported together, after every work was tried.
async fn request_each(
    client: &WorkClient,
    consumer: &ConsumerName,
    works: &[Remote],
    deadline: &Deadline,
) -> Result<(), CliError> {
    let mut failures = Vec::new();
    for work in works {
        if work.held.is_deleting() {
            continue;
        }
        match request_delete(client, consumer, work, deadline).await {
            Ok(()) => output::emit(&format!(
                "manifestwork/{} deletion requested\n",
                work.name()
            ))?,
            Err(e) => failures.push(format!("{}: {e}", work.name())),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(CliError::Failed(format!(
        "could not delete {} of {} works:\n{}",
        failures.len(),
        works.len(),
        failures.join("\n")
    )))
}

/// Waits until none of the bundles `ids` is left on the consumer.
async fn wait_all_gone(
    client: &WorkClient,
    consumer: &ConsumerName,
    ids: &BTreeSet<ResourceId>,
    deadline: &Deadline,
) -> Result<(), CliError> {
    let mut follower = Follower::start(client, consumer);
    let mut progress = Progress::new();
    poll_until(
        &mut follower,
        deadline,
        async || client.list_held(Some(consumer), None).await,
        |left| {
            let remaining = still_present(left, ids);
            progress.report(format!(
                "{} of {} works still present{}",
                remaining.len(),
                ids.len(),
                if remaining.is_empty() {
                    String::new()
                } else {
                    format!(": {}", remaining.join(", "))
                }
            ));
            Ok(remaining.is_empty())
        },
        |last| {
            let remaining = still_present(&last.unwrap_or_default(), ids);
            CliError::Timeout {
                message: format!(
                    "timed out after {} waiting for the works of consumer {consumer} to be deleted; still present: {}",
                    format_duration(deadline.total()),
                    if remaining.is_empty() { "unknown".to_string() } else { remaining.join(", ") }
                ),
                last: None,
            }
        },
    )
    .await?;
    Ok(())
}

/// The names of the works `ids` among the rows listed; a row that cannot
/// be read is no work's.
fn still_present(
    rows: &[crate::maestro::Result<HeldWork>],
    ids: &BTreeSet<ResourceId>,
) -> Vec<String> {
    rows.iter()
        .flatten()
        .filter(|h| ids.contains(&h.id))
        .map(|h| h.name.clone().unwrap_or_else(|| h.id.to_string()))
        .collect()
}

/// "Delete N manifestworks on consumer C (a, b, ... and K more)?"
fn delete_all_question(consumer: &ConsumerName, names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    let more = if names.len() > shown.len() {
        format!(" and {} more", names.len() - shown.len())
    } else {
        String::new()
    };
    format!(
        "Delete {} manifestworks on consumer {consumer} ({}{more})?",
        names.len(),
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests;
