//! Deletion: with `deletionPolicy: Delete`, ask Maestro to delete the work
//! and keep the object until the agent confirmed; with `Orphan`, let go at
//! once.

use std::time::{Duration, Instant};

use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use tracing::{info, warn};

use super::crd::{DeletionPolicy, DeletionTimeoutAction, MaestroApply, Phase};
use super::deletions::Admission;
use super::pacing;
use super::poller::View;
use super::report::{event, now, write_status};
use super::status::{self, Input, Outcome};
use super::target::{Target, bundle_owner};
use super::{Context, Error, Result};
use crate::maestro::HeldWork;
use crate::maestro::work_client::{DeleteOutcome, Detail, Refusal};

/// What deletion does next, from what is known of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeleteStep {
    /// A direct read found no bundle: the finalizer may go.
    Gone,
    /// The bundle carries another owner's uid (or none, and this object
    /// never published there): it is not ours to delete, so the finalizer
    /// goes and the bundle stays.
    NotOurs,
    /// The poller's cache has no bundle, which is not proof: it is built
    /// from an offset-paged list, where rows deleted between two pages
    /// shift others past a page boundary. Read the bundle directly.
    Confirm,
    /// Maestro cannot be read: wait.
    Unreadable,
    /// Ours and being deleted: wait for the agent's confirmation.
    AwaitAgent,
    /// Ours: ask Maestro to delete it.
    Request,
}

/// What deletion needs to know of a bundle that is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// This object's to delete (see [`owned_by`]).
    ours: bool,
    /// Maestro marked it for deletion; the agent has yet to confirm.
    deleting: bool,
}

impl Seen {
    /// `published`: the object's status records a publish under this
    /// resource ID.
    fn of(bundle: &HeldWork, uid: &str, published: bool) -> Seen {
        Seen {
            ours: owned_by(bundle, uid, published),
            deleting: bundle.is_deleting(),
        }
    }
}

/// What is known of the bundle, and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// The poller's cache; `readable` when it is synced and its last poll
    /// worked.
    Cached {
        bundle: Option<Seen>,
        readable: bool,
    },
    /// A direct read; `None`: Maestro answered that it has none.
    Read(Option<Seen>),
}

impl Known {
    fn cached(view: &View, uid: &str, published: bool) -> Known {
        Known::Cached {
            bundle: view.held.as_deref().map(|b| Seen::of(b, uid, published)),
            readable: view.synced && view.error.is_none(),
        }
    }
}

/// The next step. A direct read outranks the cache: only it proves a
/// bundle gone.
fn decide_delete(known: Known) -> DeleteStep {
    let seen = match known {
        Known::Read(None) => return DeleteStep::Gone,
        Known::Cached {
            bundle: None,
            readable: true,
        } => return DeleteStep::Confirm,
        Known::Cached {
            bundle: None,
            readable: false,
        } => return DeleteStep::Unreadable,
        Known::Read(Some(seen))
        | Known::Cached {
            bundle: Some(seen), ..
        } => seen,
    };
    match seen {
        Seen { ours: false, .. } => DeleteStep::NotOurs,
        Seen { deleting: true, .. } => DeleteStep::AwaitAgent,
        Seen { .. } => DeleteStep::Request,
    }
}

/// How soon a deletion the agent confirmed is read again when Maestro
/// still served its row.
const CONFIRMED_RECHECK: Duration = Duration::from_secs(2);

/// Without `deletionTimeout`, an unconfirmed deletion is reported (not
/// stalled) after this long.
const NOTICE_AFTER: Duration = Duration::from_secs(300);

/// What a deletion the agent has not confirmed for `waited` calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Overdue {
    /// Nothing yet: keep waiting quietly.
    No,
    /// Say so in the status (Stalled once past `deletionTimeout`).
    Report { message: String, stalled: bool },
    /// `deletionTimeoutAction: Orphan`: let the object go.
    Orphan { message: String },
}

fn overdue(
    waited: Duration,
    timeout: Option<Duration>,
    action: DeletionTimeoutAction,
    target: &Target,
) -> Overdue {
    let (consumer, work) = (&target.consumer, &target.work);
    let waited_for = crate::durations::format(Duration::from_secs(waited.as_secs()));
    match timeout {
        Some(t) if waited >= t => {
            let what = format!(
                "the agent on consumer {consumer} has not confirmed the deletion of ManifestWork \
                 {work} within spec.deletionTimeout ({})",
                crate::durations::format(t)
            );
            match action {
                DeletionTimeoutAction::Orphan => Overdue::Orphan {
                    message: format!(
                        "{what}; removing the finalizer (deletionTimeoutAction: Orphan): the \
                         ManifestWork stays marked for deletion in Maestro and its resources may \
                         remain on the cluster"
                    ),
                },
                DeletionTimeoutAction::Wait => Overdue::Report {
                    message: format!(
                        "{what}; still waiting. If the cluster is gone, set deletionPolicy: Orphan \
                         (or deletionTimeoutAction: Orphan) to let the object go"
                    ),
                    stalled: true,
                },
            }
        }
        None if waited >= NOTICE_AFTER => Overdue::Report {
            message: format!(
                "the agent on consumer {consumer} has not confirmed the deletion of ManifestWork \
                 {work} for {waited_for}; with no spec.deletionTimeout the operator keeps waiting. \
                 If the cluster is gone, set deletionPolicy: Orphan"
            ),
            stalled: false,
        },
        _ => Overdue::No,
    }
}

/// Labelled with our uid, or unlabelled where we published: another
/// client of the source ID rewrote our work without its labels, and a
/// deletion must not leave behind a work the object delivered.
fn owned_by(bundle: &HeldWork, uid: &str, published: bool) -> bool {
    match bundle_owner(bundle) {
        Some(owner) => owner.uid == uid,
        None => published,
    }
}

/// Deletion. `None` when the finalizer may go, else when to look again.
pub(super) async fn cleanup(
    obj: &MaestroApply,
    api: &Api<MaestroApply>,
    ctx: &Context,
) -> Result<Option<Action>> {
    let key = ObjectRef::from_obj(obj);
    let Ok(target) = Target::of(obj, ctx.maestro.get().source()) else {
        // Nothing valid was ever published.
        ctx.metrics.set_phase(&key, None);
        return Ok(None);
    };
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        orphan(ctx, obj, &key, &target).await;
        return Ok(None);
    }
    let pace = pacing::awaiting_deletion(obj.spec.intervals().ok().as_ref());
    ctx.poller
        .register(&key, &target.consumer, target.resource_id, pace);
    ctx.poller
        .wait_polled(&target.consumer, ctx.settings.sync_wait)
        .await;
    let (step, confirm_error) = next_step(ctx, obj, &key, &target).await;
    let Waiting { outcome, error } = match act(ctx, obj, &key, &target, step, confirm_error).await?
    {
        Acted::Finished => return Ok(None),
        Acted::Waiting(waiting) => waiting,
    };
    let view = ctx.poller.view(&key, &target.consumer, &target.resource_id);
    let resource_id = target.resource_id.to_string();
    let names = (
        target.consumer.as_str(),
        target.work.as_str(),
        resource_id.as_str(),
    );
    let status = status::compute(
        obj.status.as_ref(),
        &Input::new(obj, names, &view, &outcome, now()),
    );
    write_status(obj, api, ctx, status).await?;
    ctx.metrics.set_phase(&key, Some(Phase::Deleting));
    match error {
        Some(e) => Err(e),
        // The agent's confirmation came, and Maestro still served the row
        // to our read: it drops it in a moment.
        None if step == DeleteStep::AwaitAgent && view.held.is_none() => {
            Ok(Some(Action::requeue(CONFIRMED_RECHECK)))
        }
        // Come back in time for the timeout, the first notice, or the
        // next poll, whichever is first.
        None => Ok(Some(Action::requeue(
            pace.stream_down.min(Duration::from_secs(60)),
        ))),
    }
}

/// `deletionPolicy: Orphan`: let go at once, and say so.
async fn orphan(ctx: &Context, obj: &MaestroApply, key: &ObjectRef<MaestroApply>, target: &Target) {
    ctx.poller.unregister(key, &target.consumer);
    // It may have been waiting in line before the policy changed.
    release(ctx, target);
    ctx.metrics.set_phase(key, None);
    event(
        ctx,
        obj,
        EventType::Normal,
        "Orphaned",
        "Delete",
        format!(
            "left ManifestWork {} on consumer {} in place (deletionPolicy: Orphan)",
            target.work, target.consumer
        ),
    )
    .await;
}

/// The next step from the poller's cache, confirmed by a direct read when
/// the cache has no bundle. The read's error, if it failed.
async fn next_step(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
) -> (DeleteStep, Option<crate::maestro::Error>) {
    let view = ctx.poller.view(key, &target.consumer, &target.resource_id);
    let uid = target.owner.uid.as_str();
    let published = obj.published_hash_at(&target.resource_id).is_some();
    let step = decide_delete(Known::cached(&view, uid, published));
    if step != DeleteStep::Confirm {
        return (step, None);
    }
    match ctx
        .maestro
        .get()
        .get_held(&target.consumer, &target.work, Detail::Summary)
        .await
    {
        Ok(read) => {
            if let Some(bundle) = &read {
                info!(consumer = %target.consumer, work = %target.work,
                      "the poller no longer lists the bundle but Maestro still has it");
                ctx.poller
                    .record(&target.consumer, target.resource_id, Some(bundle.clone()));
            }
            let seen = read.as_ref().map(|b| Seen::of(b, uid, published));
            (decide_delete(Known::Read(seen)), None)
        }
        Err(e) => (step, Some(e)),
    }
}

/// What a deletion step came to.
enum Acted {
    /// The finalizer may go.
    Finished,
    Waiting(Waiting),
}

/// A deletion still under way: what the status says, and the error worth
/// a retry with backoff, if any.
struct Waiting {
    outcome: Outcome,
    error: Option<Error>,
}

impl Waiting {
    fn deleting(message: String, error: Option<Error>) -> Acted {
        Acted::Waiting(Waiting {
            outcome: Outcome::Deleting { message },
            error,
        })
    }
}

async fn act(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
    step: DeleteStep,
    confirm_error: Option<crate::maestro::Error>,
) -> Result<Acted> {
    match step {
        DeleteStep::Gone => Ok(finished(ctx, obj, key, target, Finish::Gone).await),
        // Never ours, or adopted by another object meanwhile.
        DeleteStep::NotOurs => Ok(finished(ctx, obj, key, target, Finish::NotOurs).await),
        DeleteStep::Confirm => Ok(match confirm_error {
            Some(e) => Waiting::deleting(
                format!("cannot confirm the deletion: {e}"),
                Some(Error::Maestro(e)),
            ),
            None => Waiting::deleting("cannot confirm the deletion yet".into(), None),
        }),
        DeleteStep::Unreadable => Ok(Waiting::deleting(
            "cannot confirm the deletion while Maestro cannot be read".into(),
            None,
        )),
        DeleteStep::AwaitAgent => Ok(await_agent(ctx, obj, key, target).await),
        DeleteStep::Request => request(ctx, obj, key, target).await,
    }
}

/// How overdue the agent's confirmation is, by the object's clock.
fn overdue_now(obj: &MaestroApply, target: &Target) -> Overdue {
    let waited = obj
        .meta()
        .deletion_timestamp
        .as_ref()
        .and_then(|t| Duration::try_from(t.0.duration_until(now())).ok())
        .unwrap_or_default();
    let timeout = obj.spec.deletion_timeout().ok().flatten();
    overdue(waited, timeout, obj.spec.deletion_timeout_action, target)
}

/// Ours and marked for deletion: wait for the agent, reporting a wait
/// that grows long, or orphaning past the timeout if the spec says so.
async fn await_agent(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
) -> Acted {
    ctx.deletions.awaiting(&target.consumer, target.resource_id);
    match overdue_now(obj, target) {
        Overdue::Orphan { message } => timed_out(ctx, obj, key, target, message).await,
        Overdue::Report { message, stalled } => Acted::Waiting(Waiting {
            outcome: Outcome::DeletionNotConfirmed { message, stalled },
            error: None,
        }),
        Overdue::No => Waiting::deleting(
            format!(
                "waiting for the agent on consumer {} to confirm the deletion of ManifestWork {}",
                target.consumer, target.work
            ),
            None,
        ),
    }
}

/// Ours: ask Maestro to delete it once the bound on unconfirmed deletions
/// lets this one through.
async fn request(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
) -> Result<Acted> {
    let admission = ctx.deletions.admit(
        &target.consumer,
        target.resource_id,
        key,
        &ctx.poller.deleting(&target.consumer),
    );
    if let Admission::Queued {
        position,
        unconfirmed,
        limit,
    } = admission
    {
        // A queued deletion honours deletionTimeoutAction: Orphan too.
        if let Overdue::Orphan { message } = overdue_now(obj, target) {
            return Ok(timed_out(ctx, obj, key, target, message).await);
        }
        return Ok(Acted::Waiting(Waiting {
            outcome: Outcome::DeletionQueued {
                message: format!(
                    "deletion of ManifestWork {} queued ({position} in line): {unconfirmed} \
                     deletions on consumer {} await its agent's confirmation, at most {limit} \
                     at a time (--max-unconfirmed-deletions)",
                    target.work, target.consumer
                ),
            },
            error: None,
        }));
    }
    let published = obj.published_hash_at(&target.resource_id).is_some();
    match delete(ctx, target, published).await {
        Ok(DeleteOutcome::Deleting) => {
            event(
                ctx,
                obj,
                EventType::Normal,
                "Deleting",
                "Delete",
                format!(
                    "asked Maestro to delete ManifestWork {} on consumer {}",
                    target.work, target.consumer
                ),
            )
            .await;
            Ok(Waiting::deleting(
                format!(
                    "deletion of ManifestWork {} requested; waiting for the agent on consumer {}",
                    target.work, target.consumer
                ),
                None,
            ))
        }
        // The read just before the write decided: gone, or taken over
        // by another owner since the poll.
        Ok(DeleteOutcome::NotFound) => Ok(finished(ctx, obj, key, target, Finish::Gone).await),
        Ok(DeleteOutcome::Refused(_)) => Ok(finished(ctx, obj, key, target, Finish::NotOurs).await),
        Err(e) => Ok(Waiting::deleting(
            format!("cannot request the deletion: {e}"),
            Some(Error::Maestro(e)),
        )),
    }
}

/// `deletionTimeoutAction: Orphan` after `deletionTimeout`: say so in a
/// Warning event and let the object go.
async fn timed_out(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
    message: String,
) -> Acted {
    event(
        ctx,
        obj,
        EventType::Warning,
        "DeletionTimedOut",
        "Delete",
        message,
    )
    .await;
    finished(ctx, obj, key, target, Finish::TimedOut).await
}

/// This object's deletion no longer takes a place: wake the next in line.
fn release(ctx: &Context, target: &Target) {
    for next in ctx.deletions.release(&target.consumer, target.resource_id) {
        ctx.poller.wake(next);
    }
}

/// Asks Maestro to delete the bundle if, read right before the write, it
/// is still ours: the poll that showed it ours may be minutes old.
async fn delete(
    ctx: &Context,
    target: &Target,
    published: bool,
) -> crate::maestro::Result<DeleteOutcome> {
    ctx.limiter.acquire().await;
    let client = ctx.maestro.get();
    let started = Instant::now();
    let uid = target.owner.uid.as_str();
    let result = client
        .delete_if(&target.consumer, &target.work, |bundle| {
            if owned_by(bundle, uid, published) {
                Ok(())
            } else {
                Err(Refusal(format!(
                    "the bundle is not this object's (uid {uid}): another owner's label, or \
                     no owner label where this object never published"
                )))
            }
        })
        .await;
    ctx.publish_finished("delete", started, result.as_ref().map(|_| ()));
    let outcome = result?;
    if let DeleteOutcome::Refused(refusal) = &outcome {
        warn!(consumer = %target.consumer, work = %target.work, %refusal,
              "not deleting the bundle: it changed owner since the last poll");
    }
    if let Ok(fresh) = client
        .get_held(&target.consumer, &target.work, Detail::Summary)
        .await
    {
        ctx.poller
            .record(&target.consumer, target.resource_id, fresh);
    }
    Ok(outcome)
}

/// Why the finalizer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finish {
    Gone,
    NotOurs,
    /// `deletionTimeoutAction: Orphan` (its own Warning event went out).
    TimedOut,
}

async fn finished(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
    why: Finish,
) -> Acted {
    ctx.poller.unregister(key, &target.consumer);
    ctx.metrics.set_phase(key, None);
    release(ctx, target);
    if why == Finish::TimedOut {
        return Acted::Finished;
    }
    event(
        ctx,
        obj,
        EventType::Normal,
        "Deleted",
        "Delete",
        match why {
            Finish::Gone => format!(
                "ManifestWork {} on consumer {} is gone from Maestro",
                target.work, target.consumer
            ),
            Finish::NotOurs => format!(
                "ManifestWork {} on consumer {} belongs to another owner; left in place",
                target.work, target.consumer
            ),
            Finish::TimedOut => String::new(),
        },
    )
    .await;
    Acted::Finished
}

#[cfg(test)]
mod tests;
