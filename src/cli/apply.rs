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
use crate::maestro::rest::ResourceBundle;
use crate::maestro::work_client::{
    APPLY_ATTEMPTS, Applied, Decision, Refusal, WorkClient, replace,
};
use crate::manifestwork::{Manifest, ManifestWork, validate_work};
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
    refuse_foreign_by_name(client, &deadline, &args.consumer, &name).await?;
    let what = format!("apply manifestwork {name} to consumer {}", args.consumer);
    let applied = retry(&deadline, &what, async || {
        let decide = replace_unless_managed(&args.consumer, &work, args.force);
        client.apply_with(&args.consumer, &name, decide).await
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
fn remote_of(bundle: &ResourceBundle) -> Result<Remote, CliError> {
    Remote::from_bundle(bundle.clone())
        .map_err(|e| CliError::maestro("read the current manifestwork", e))
}

/// The decision of `apply` without `--manifest-name`: [`replace`], but not
/// a work a MaestroApply manages unless `force`.
fn replace_unless_managed<'a>(
    consumer: &'a ConsumerName,
    work: &'a ManifestWork,
    force: bool,
) -> impl FnMut(Option<&ResourceBundle>) -> Decision<(), ApplyRefusal> + 'a {
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
                .apply_with(&args.consumer, &name, |current| merge.decide(current))
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
            return Ok(Outcome::with_result(StatusResult::new(
                target,
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
        ctx, client, args, &name, target, deadline, message, args.watch,
    )
    .await
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
    fn decide(&self, current: Option<&ResourceBundle>) -> Decision<Merged, CliError> {
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
    fn merged(&self, bundle: &ResourceBundle) -> Result<(ManifestWork, &'static str), CliError> {
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

    fn bundle(metadata: Value, deleting: bool) -> ResourceBundle {
        let mut b = json!({
            "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "consumer_name": "cluster-west-1",
            "version": 2, "metadata": metadata,
            "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}],
        });
        if deleting {
            b["deleted_at"] = json!("2025-12-13T13:32:30Z");
        }
        serde_json::from_value(b).unwrap()
    }

    fn managed_bundle() -> ResourceBundle {
        bundle(
            json!({"name": "web", "namespace": "cluster-west-1",
                   "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, OWNER_UID_LABEL: "0b7c1d1e"},
                   "annotations": {OWNER_ANNOTATION: "team-a/hello"}}),
            false,
        )
    }

    fn plain_bundle(deleting: bool) -> ResourceBundle {
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
        same.metadata.insert(
            "annotations".into(),
            json!({
                crate::maestro::work_client::SPEC_HASH_ANNOTATION:
                    crate::maestro::work_client::spec_hash_of_work(&work)
            }),
        );
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
            Decision::Skip(Merged::DryRun(verb, work)) => {
                (format!("dry run: {verb}"), names(&work))
            }
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
        let (verb, names) =
            merged(merge(&consumer, &name, &b1, &sel_b, false).decide(Some(&current)));
        assert_eq!((verb.as_str(), names.len()), ("added", 2));
        let (verb, names) =
            merged(merge(&consumer, &name, &a2, &sel_a, false).decide(Some(&current)));
        assert_eq!((verb.as_str(), names.len()), ("replaced", 1));
        let a_as_is: Manifest =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "default"}}))
            .unwrap();
        let (verb, _) =
            merged(merge(&consumer, &name, &a_as_is, &sel_a, false).decide(Some(&current)));
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
