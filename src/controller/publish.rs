//! Publishing: bring Maestro in line with an object's spec, never over a
//! work another object owns.

use std::time::Instant;

use kube::runtime::events::EventType;
use tracing::{debug, info};

use super::crd::{ADOPT_ANNOTATION, DriftPolicy, MaestroApply};
use super::poller::View;
use super::report::event;
use super::status::Outcome;
use super::target::{Drift, Standing, Target, standing};
use super::{Context, Error};
use crate::maestro::HeldWork;
use crate::maestro::work_client::{Applied, Decision, Detail, spec_hash_of_work};
use crate::manifestwork::{ManifestWork, validate_work};
use crate::names::SourceId;

/// Brings Maestro in line with the spec. Returns what happened and, for a
/// failure worth a retry with backoff, the error.
pub(super) async fn sync_work(
    obj: &MaestroApply,
    target: &Target,
    desired: &ManifestWork,
    view: &View,
    ctx: &Context,
) -> (Outcome, Option<Error>) {
    if obj.spec.suspend {
        return (Outcome::Suspended, None);
    }
    if let Err(errors) = validate_work(desired) {
        return (
            Outcome::Failed {
                reason: "InvalidWork".into(),
                message: format!("the ManifestWork would be refused: {errors}"),
                terminal: true,
            },
            None,
        );
    }
    let plan = Plan {
        hash: spec_hash_of_work(desired),
        adopt: obj.adopt_requested(),
        published: obj.published_hash_at(&target.resource_id),
        policy: obj.spec.drift_policy,
    };
    if let Some(bundle) = &view.held {
        let standing = plan.standing(bundle, desired, target);
        if let Standing::Claimed(holder) = &standing
            && !plan.adopt
        {
            return (
                Outcome::Claimed {
                    owner: holder.to_string(),
                },
                None,
            );
        }
        if bundle.is_deleting() {
            return (Outcome::WaitingForOldBundle, None);
        }
        match standing {
            Standing::InSync => return (Outcome::InSync, None),
            Standing::Drifted(drift) if plan.policy == DriftPolicy::Report => {
                return (drift_reported(target, drift, bundle.version), None);
            }
            _ => {}
        }
    }
    match publish(ctx, target, desired, &plan).await {
        Ok(published) => (announce(ctx, obj, target, published).await, None),
        Err(e) => failed(Error::Maestro(e)),
    }
}

/// What a publish did, as an outcome; what it wrote is announced in an
/// event (drift corrected also counted).
async fn announce(
    ctx: &Context,
    obj: &MaestroApply,
    target: &Target,
    published: Published,
) -> Outcome {
    if let Published::Corrected {
        drift,
        from_version,
    } = &published
    {
        ctx.metrics.drift_corrected();
        info!(consumer = %target.consumer, work = %target.work, %drift, from_version,
              "restored a work changed behind our back");
    }
    let source = ctx.maestro.get().source().clone();
    if let Some((type_, reason, note)) = publish_note(&source, target, &published) {
        event(ctx, obj, type_, reason, "Publish", note).await;
    }
    match published {
        Published::Created
        | Published::Updated { .. }
        | Published::Corrected { .. }
        | Published::Adopted { .. } => Outcome::Published,
        Published::Unchanged => Outcome::InSync,
        Published::Deleting => Outcome::WaitingForOldBundle,
        Published::Claimed(owner) => Outcome::Claimed { owner },
        Published::DriftReported { drift, version } => drift_reported(target, drift, version),
    }
}

/// The event that tells what a publish wrote; `None` when it wrote
/// nothing (the outcome's condition says why).
fn publish_note(
    source: &SourceId,
    target: &Target,
    published: &Published,
) -> Option<(EventType, &'static str, String)> {
    let (work, consumer) = (&target.work, &target.consumer);
    Some(match published {
        Published::Created => (
            EventType::Normal,
            "Created",
            format!(
                "created ManifestWork {work} on consumer {consumer} (resource bundle {})",
                target.resource_id
            ),
        ),
        Published::Updated { from_version } => (
            EventType::Normal,
            "Updated",
            format!(
                "updated ManifestWork {work} on consumer {consumer} from bundle version {from_version}"
            ),
        ),
        Published::Corrected {
            drift,
            from_version,
        } => (
            EventType::Warning,
            REASON_DRIFT_CORRECTED,
            format!(
                "restored ManifestWork {work} on consumer {consumer}: its {drift} had been changed \
                 by another client of source ID {source} (bundle version {from_version}); \
                 published the declared spec and labels over it"
            ),
        ),
        Published::Adopted { from, from_version } => (
            EventType::Normal,
            "Adopted",
            format!(
                "took over ManifestWork {work} on consumer {consumer} from {from} at bundle version \
                 {from_version} ({ADOPT_ANNOTATION})"
            ),
        ),
        Published::Unchanged
        | Published::Deleting
        | Published::Claimed(_)
        | Published::DriftReported { .. } => return None,
    })
}

/// The reason of the event recorded when drift is corrected.
pub const REASON_DRIFT_CORRECTED: &str = "DriftCorrected";

/// Drift left in place (`driftPolicy: Report`).
fn drift_reported(target: &Target, drift: Drift, version: i64) -> Outcome {
    // The status and one Warning event carry the news; this repeats on
    // every reconcile while the drift lasts.
    debug!(consumer = %target.consumer, work = %target.work, %drift, version,
           "the work was changed behind our back; driftPolicy Report: not restoring it");
    Outcome::Drifted {
        what: format!(
            "its {drift} changed since this object published it (now bundle version {version})"
        ),
    }
}

/// What a publish decides with.
struct Plan<'a> {
    /// The digest of the declared work.
    hash: String,
    adopt: bool,
    /// The digest this object last published under its resource ID.
    published: Option<&'a str>,
    policy: DriftPolicy,
}

impl Plan<'_> {
    fn standing(&self, bundle: &HeldWork, desired: &ManifestWork, target: &Target) -> Standing {
        standing(bundle, desired, &self.hash, &target.owner, self.published)
    }
}

fn failed(error: Error) -> (Outcome, Option<Error>) {
    let terminal = match &error {
        Error::Maestro(e) => matches!(
            e,
            crate::maestro::Error::InvalidWork(_)
                | crate::maestro::Error::Rejected { .. }
                | crate::maestro::Error::UnknownConsumer { .. }
                | crate::maestro::Error::Unauthenticated(_)
                | crate::maestro::Error::Forbidden(_)
                | crate::maestro::Error::Config(_)
        ),
        Error::InvalidSpec(_) | Error::Config(_) => true,
        Error::Kube(_) | Error::Finalizer(_) => false,
    };
    (
        Outcome::Failed {
            reason: error.reason().to_string(),
            message: error.to_string(),
            terminal,
        },
        Some(error),
    )
}

enum Published {
    Created,
    Updated {
        from_version: i64,
    },
    /// Published over a drifted bundle of ours, at its version.
    Corrected {
        drift: Drift,
        from_version: i64,
    },
    /// Relabelled from another holder, at its version.
    Adopted {
        from: String,
        from_version: i64,
    },
    Unchanged,
    Deleting,
    Claimed(String),
    /// Drifted, and the policy is to report it: nothing was written.
    DriftReported {
        drift: Drift,
        version: i64,
    },
}

/// What the operator makes of the bundle Maestro holds now, for
/// [`crate::maestro::work_client::WorkClient::apply_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Intent {
    Create,
    /// An ordinary update of a declaration that changed.
    Update,
    /// An update over a drifted bundle of ours.
    Correct(Drift),
    /// An update relabelling another holder's bundle to this object.
    Adopt(String),
    Unchanged,
    Deleting,
    ReportDrift(Drift),
}

impl Intent {
    /// The metrics' name of the write, "read" when nothing is written.
    fn action(&self) -> &'static str {
        match self {
            Intent::Create => "create",
            Intent::Update | Intent::Correct(_) => "update",
            Intent::Adopt(_) => "adopt",
            Intent::Unchanged | Intent::Deleting | Intent::ReportDrift(_) => "read",
        }
    }
}

/// The operator's decision: create when Maestro has nothing, update when
/// the bundle differs (an ordinary update, or a correction when it
/// drifted), nothing when it matches, is being deleted or its drift is only
/// to be reported; never over a bundle another holder has (refused with
/// the holder) unless `adopt`, when the update relabels it to this object.
fn decide(
    plan: &Plan<'_>,
    desired: &ManifestWork,
    target: &Target,
    current: Option<&HeldWork>,
) -> Decision<Intent, String> {
    let Some(bundle) = current else {
        return Decision::Publish(Box::new(desired.clone()), Intent::Create);
    };
    if bundle.is_deleting() {
        return Decision::Skip(Intent::Deleting);
    }
    match plan.standing(bundle, desired, target) {
        Standing::Claimed(holder) if !plan.adopt => Decision::Refuse(holder.to_string()),
        Standing::InSync => Decision::Skip(Intent::Unchanged),
        Standing::Drifted(drift) if plan.policy == DriftPolicy::Report => {
            Decision::Skip(Intent::ReportDrift(drift))
        }
        Standing::Outdated => Decision::Publish(Box::new(desired.clone()), Intent::Update),
        Standing::Drifted(drift) => {
            Decision::Publish(Box::new(desired.clone()), Intent::Correct(drift))
        }
        Standing::Claimed(holder) => {
            Decision::Publish(Box::new(desired.clone()), Intent::Adopt(holder.to_string()))
        }
    }
}

/// What a write [`decide`]d on did.
fn outcome_of(applied: Applied<Intent, String>, ctx: &Context, target: &Target) -> Published {
    match applied {
        Applied::Created { .. } => Published::Created,
        Applied::Updated { from_version, note } => match note {
            Intent::Correct(drift) => Published::Corrected {
                drift,
                from_version,
            },
            Intent::Adopt(from) => Published::Adopted { from, from_version },
            _ => Published::Updated { from_version },
        },
        Applied::Refused(holder) => Published::Claimed(holder),
        Applied::Skipped { note, current } => {
            let version = current.as_ref().map_or(0, |b| b.version);
            if matches!(note, Intent::Unchanged | Intent::ReportDrift(_)) {
                ctx.poller
                    .record(&target.consumer, target.resource_id, current.map(|b| *b));
            }
            match note {
                Intent::ReportDrift(drift) => Published::DriftReported { drift, version },
                Intent::Deleting => Published::Deleting,
                _ => Published::Unchanged,
            }
        }
    }
}

/// Publishes the declared work after a fresh read, as [`decide`] says;
/// an adoption's update is at the version read, so a concurrent change by
/// the holder makes it fail, not vanish.
#[tracing::instrument(name = "publish", skip_all, fields(consumer = %target.consumer, work = %target.work))]
async fn publish(
    ctx: &Context,
    target: &Target,
    desired: &ManifestWork,
    plan: &Plan<'_>,
) -> crate::maestro::Result<Published> {
    ctx.limiter.acquire().await;
    let client = ctx.maestro.get();
    let started = Instant::now();
    // "read" until the read before the write tells create from update.
    let mut action = "read";
    let outcome = client
        .apply_with(&target.consumer, &target.work, Detail::Summary, |current| {
            let decision = decide(plan, desired, target, current);
            if let Decision::Publish(_, intent) = &decision {
                action = intent.action();
            }
            decision
        })
        .await
        .map(|applied| outcome_of(applied, ctx, target));
    let published = matches!(
        outcome,
        Ok(Published::Created
            | Published::Updated { .. }
            | Published::Corrected { .. }
            | Published::Adopted { .. })
    );
    if published || outcome.is_err() {
        ctx.publish_finished(action, started, outcome.as_ref().map(|_| ()));
    }
    if published {
        info!(consumer = %target.consumer, work = %target.work, action, "published");
        // Let reconciles see the new version before the next poll.
        match client
            .get_held(&target.consumer, &target.work, Detail::Summary)
            .await
        {
            Ok(fresh) => ctx
                .poller
                .record(&target.consumer, target.resource_id, fresh),
            Err(e) => debug!(error = %e, "cannot read the bundle back; the next poll will"),
        }
    }
    outcome
}

#[cfg(test)]
mod tests;
