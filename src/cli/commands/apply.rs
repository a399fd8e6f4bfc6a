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

use crate::maestro::HeldWork;
use crate::maestro::error::Error;
use crate::maestro::work_client::{
    APPLY_ATTEMPTS, Applied, Decision, Detail, Refusal, WorkClient, replace,
};
use crate::manifestwork::{Manifest, ManifestWork, validate_work};
use crate::names::{ConsumerName, WorkName};

use crate::cli::args::WriteTimeout;
use crate::cli::connection::Connection;
use crate::cli::errors::{CliError, explain_unknown_consumer};
use crate::cli::input::{self, Content, clean_server_fields};
use crate::cli::ops::guard::{Touch, refuse_foreign, refuse_managed};
use crate::cli::ops::wait::{self, WorkCondition};
use crate::cli::output::{self, Progress};
use crate::cli::remote::{
    ManifestSelector, Remote, WorkHealth, describe_manifest, find, find_retrying,
};
use crate::cli::results::{Report, ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::{Deadline, retry};

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
    refuse_foreign_by_name(client, &deadline, &args.consumer, &name).await?;
    let what = format!("apply manifestwork {name} to consumer {}", args.consumer);
    let applied = retry(&deadline, &what, async || {
        let decide = replace_unless_managed(&args.consumer, &work, args.force);
        client
            .apply_with(&args.consumer, &name, Detail::Work, decide)
            .await
    })
    .await
    .map_err(explain_unknown_consumer)?;
    let (verb, version) = match applied {
        Applied::Created { .. } => ("created", 1),
        Applied::Updated { from_version, .. } => ("configured", from_version + 1),
        Applied::Skipped { current, .. } => ("unchanged", current.map_or(0, |b| b.version)),
        Applied::Refused(ApplyRefusal::Cli(e)) => return Err(e),
        Applied::Refused(ApplyRefusal::Maestro(refusal)) => {
            return Err(CliError::maestro(what, Error::Conflict(refusal.0)));
        }
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
    let Picked {
        origin,
        manifest,
        name,
        template,
    } = pick(args, input, selector)?;
    subject.name = name.to_string();
    let what = describe_manifest(&manifest);
    let client = conn.client()?;

    refuse_foreign_by_name(client, deadline, &args.consumer, &name).await?;
    let merge = Merge {
        consumer: &args.consumer,
        name: &name,
        manifest: &manifest,
        template: template.as_ref(),
        selector,
        origin: &origin,
        force: args.force,
        dry_run: args.dry_run,
    };
    let applied = retry(
        deadline,
        &format!("apply manifestwork {name}"),
        async || {
            client
                .apply_with(&args.consumer, &name, Detail::Work, |current| {
                    merge.decide(current)
                })
                .await
        },
    )
    .await;
    let (verb, version) = match applied {
        Ok(Applied::Created { note }) => (note.verb(), 1),
        Ok(Applied::Updated { from_version, note }) => (note.verb(), from_version + 1),
        Ok(Applied::Skipped {
            note: Merged::DryRun(verb, work),
            ..
        }) => {
            output::emit(&output::to_yaml(&work)?)?;
            eprintln!("manifest {what} would be {verb} (dry run: nothing sent)");
            return Ok(Report::with_result(StatusResult::new(
                subject,
                "Valid",
                "dry run: nothing sent",
            )));
        }
        Ok(Applied::Skipped { note, current }) => (note.verb(), current.map_or(0, |b| b.version)),
        Ok(Applied::Refused(e)) => return Err(e),
        Err(CliError::Maestro {
            source: Error::StaleVersion { .. } | Error::Conflict(_),
            ..
        }) => {
            return Err(CliError::Failed(format!(
                "manifestwork {name}: other writers kept changing it; gave up after \
                 {APPLY_ATTEMPTS} attempts"
            )));
        }
        Err(e) => return Err(explain_unknown_consumer(e)),
    };
    output::emit(&format!(
        "manifestwork/{name}: manifest {what} {verb} (version {version})\n"
    ))?;
    let message = format!("manifest {what} {verb} (version {version})");
    finish(
        conn, client, args, &name, subject, deadline, message, args.watch,
    )
    .await
}

/// The manifest `--manifest-name` names in the input, and the work it
/// goes into.
struct Picked {
    origin: String,
    manifest: Manifest,
    name: WorkName,
    /// The input's ManifestWork, which lends its name and labels to a
    /// work created here.
    template: Option<ManifestWork>,
}

fn pick(
    args: &ApplyArgs,
    input: input::InputFile,
    selector: &ManifestSelector,
) -> Result<Picked, CliError> {
    let origin = input.origin.clone();
    let index = selector.find_in(input.manifests())?.ok_or_else(|| {
        CliError::Usage(format!(
            "{origin}: no manifest matches --manifest-name {selector}"
        ))
    })?;
    let manifest = input.manifests()[index].clone();
    let (file_name, template) = match input.content {
        Content::Work(w) => (w.metadata.name.clone(), Some(*w)),
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
    Ok(Picked {
        origin,
        manifest,
        name,
        template,
    })
}

/// What a `--manifest-name` apply merges, and where.
struct Merge<'a> {
    consumer: &'a ConsumerName,
    name: &'a WorkName,
    manifest: &'a Manifest,
    /// The ManifestWork file, lending its labels to a work created here.
    template: Option<&'a ManifestWork>,
    selector: &'a ManifestSelector,
    origin: &'a str,
    force: bool,
    dry_run: bool,
}

/// What a merge did to the work, as the output words it.
#[derive(Debug)]
enum Merged {
    Write(&'static str),
    Unchanged,
    DryRun(&'static str, Box<ManifestWork>),
}

impl Merged {
    fn verb(&self) -> &'static str {
        match self {
            Merged::Write(verb) | Merged::DryRun(verb, _) => verb,
            Merged::Unchanged => "unchanged",
        }
    }
}

impl Merge<'_> {
    /// The decision of `apply --manifest-name`: the manifest put into the
    /// current work (or a new one), nothing when it is already there, and
    /// never into a work a MaestroApply manages (unless `force`), one being
    /// deleted, or one the merge makes invalid.
    fn decide(&self, current: Option<&HeldWork>) -> Decision<Merged, CliError> {
        let (work, verb) = match current.map(|b| self.merged(b)) {
            None => (self.new_work(), "added to a new work"),
            Some(Ok(merged)) => merged,
            Some(Err(e)) => return Decision::Refuse(e),
        };
        if let Err(errors) = validate_work(&work) {
            return Decision::Refuse(CliError::Invalid {
                origin: format!("{} merged into manifestwork {}", self.origin, self.name),
                errors,
            });
        }
        match (self.dry_run, verb) {
            (true, verb) => Decision::Skip(Merged::DryRun(verb, Box::new(work))),
            (false, "unchanged") => Decision::Skip(Merged::Unchanged),
            (false, verb) => Decision::Publish(Box::new(work), Merged::Write(verb)),
        }
    }

    fn new_work(&self) -> ManifestWork {
        let mut work = ManifestWork::for_consumer(
            self.consumer.as_str(),
            self.name.as_str(),
            vec![self.manifest.clone()],
        );
        if let Some(t) = self.template {
            work.metadata.labels = t.metadata.labels.clone();
            work.metadata.annotations = t.metadata.annotations.clone();
            clean_server_fields(&mut work);
        }
        work
    }

    /// The current work with the manifest replaced or added.
    fn merged(&self, bundle: &HeldWork) -> Result<(ManifestWork, &'static str), CliError> {
        let remote = remote_of(bundle)?;
        refuse_managed(self.consumer, &remote, Touch::Change, self.force)?;
        if bundle.is_deleting() {
            return Err(CliError::Failed(format!(
                "manifestwork {} on consumer {} is being deleted; apply again once it is gone",
                self.name, self.consumer
            )));
        }
        let mut work = remote.work;
        clean_server_fields(&mut work);
        let manifests = &mut work.spec.workload.manifests;
        let verb = match self.selector.find_in(manifests)? {
            Some(i) if manifests[i] == *self.manifest => "unchanged",
            Some(i) => {
                manifests[i] = self.manifest.clone();
                "replaced"
            }
            None => {
                manifests.push(self.manifest.clone());
                "added"
            }
        };
        Ok((work, verb))
    }
}

/// [`refuse_foreign`] for the work of this name, found as [`find`] does:
/// a bundle another client made under a random id is not read by
/// [`WorkClient::apply_with`], which would create a second one beside it.
async fn refuse_foreign_by_name(
    client: &WorkClient,
    deadline: &Deadline,
    consumer: &ConsumerName,
    name: &WorkName,
) -> Result<(), CliError> {
    match find_retrying(client, deadline, consumer, name).await? {
        Some(remote) => refuse_foreign(client, consumer, &remote),
        None => Ok(()),
    }
}

/// Why an apply left the work alone.
#[derive(Debug)]
enum ApplyRefusal {
    /// The CLI's own rules (managed by a MaestroApply, invalid merge).
    Cli(CliError),
    /// The plain apply's (being deleted).
    Maestro(Refusal),
}

/// The remote a decision judges, or the refusal of an unreadable bundle.
fn remote_of(bundle: &HeldWork) -> Result<Remote, CliError> {
    Remote::from_held(bundle.clone())
        .map_err(|e| CliError::maestro("read the current manifestwork", e))
}

/// The decision of `apply` without `--manifest-name`: [`replace`], but not
/// a work a MaestroApply manages unless `force`.
fn replace_unless_managed<'a>(
    consumer: &'a ConsumerName,
    work: &'a ManifestWork,
    force: bool,
) -> impl FnMut(Option<&HeldWork>) -> Decision<(), ApplyRefusal> + 'a {
    let mut plain = replace(work);
    move |current| {
        if let Some(bundle) = current {
            let managed =
                remote_of(bundle).and_then(|r| refuse_managed(consumer, &r, Touch::Change, force));
            if let Err(e) = managed {
                return Decision::Refuse(ApplyRefusal::Cli(e));
            }
        }
        match plain(current) {
            Decision::Publish(work, ()) => Decision::Publish(work, ()),
            Decision::Skip(()) => Decision::Skip(()),
            Decision::Refuse(r) => Decision::Refuse(ApplyRefusal::Maestro(r)),
        }
    }
}

#[cfg(test)]
mod tests;
