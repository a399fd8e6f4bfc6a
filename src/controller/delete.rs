//! Deletion: with `deletionPolicy: Delete`, ask Maestro to delete the work
//! and keep the object until the agent confirmed; with `Orphan`, let go at
//! once.

use std::time::{Duration, Instant};

use kube::Resource;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;

use super::crd::{DeletionPolicy, MaestroApply, Phase};
use super::reconcile::{event, now, write_status};
use super::status::{self, Input, Outcome};
use super::target::{Target, bundle_owner};
use super::{Context, Error, Result};

/// Deletion. `None` when the finalizer may go, else when to look again.
pub(super) async fn cleanup(
    obj: &MaestroApply,
    api: &Api<MaestroApply>,
    ctx: &Context,
) -> Result<Option<Action>> {
    let key = ObjectRef::from_obj(obj);
    let client = ctx.maestro.get();
    let Ok(target) = Target::of(obj, client.source()) else {
        // Nothing valid was ever published.
        ctx.metrics.set_phase(&key, None);
        return Ok(None);
    };
    if obj.spec.deletion_policy == DeletionPolicy::Orphan {
        ctx.poller.unregister(&key, &target.consumer);
        ctx.metrics.set_phase(&key, None);
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
        return Ok(None);
    }
    let poll = obj
        .spec
        .intervals()
        .map(|i| i.poll)
        .unwrap_or(Duration::from_secs(10));
    ctx.poller
        .register(&key, &target.consumer, target.resource_id, poll);
    ctx.poller
        .wait_polled(&target.consumer, ctx.settings.sync_wait)
        .await;
    let view = ctx.poller.view(&key, &target.consumer, &target.resource_id);
    let ours = |b: &crate::maestro::rest::ResourceBundle| {
        bundle_owner(b).is_some_and(|o| o.uid == target.owner.uid)
    };
    let (message, error) = match &view.bundle {
        None if view.synced && view.error.is_none() => {
            return finished(ctx, obj, &key, &target).await.map(|()| None);
        }
        Some(b) if !ours(b) => {
            // Never ours, or adopted by another object meanwhile.
            return finished(ctx, obj, &key, &target).await.map(|()| None);
        }
        None => (
            "cannot confirm the deletion while Maestro cannot be read".to_string(),
            None,
        ),
        Some(b) if b.is_deleting() => (
            format!(
                "waiting for the agent on consumer {} to confirm the deletion of ManifestWork {}",
                target.consumer, target.work
            ),
            None,
        ),
        Some(_) => match delete(ctx, &target).await {
            Ok(()) => {
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
                (
                    format!(
                        "deletion of ManifestWork {} requested; waiting for the agent on consumer {}",
                        target.work, target.consumer
                    ),
                    None,
                )
            }
            Err(e) => (
                format!("cannot request the deletion: {e}"),
                Some(Error::Maestro(e)),
            ),
        },
    };
    let view = ctx.poller.view(&key, &target.consumer, &target.resource_id);
    let status = status::compute(
        obj.status.as_ref(),
        &Input {
            generation: obj.meta().generation,
            consumer: target.consumer.as_str(),
            work_name: target.work.as_str(),
            resource_id: &target.resource_id.to_string(),
            wait_for: obj.spec.wait_for,
            timeout: Duration::ZERO,
            view: &view,
            outcome: &Outcome::Deleting { message },
            requested_at: None,
            now: now(),
        },
    );
    write_status(obj, api, ctx, status).await?;
    ctx.metrics.set_phase(&key, Some(Phase::Deleting));
    match error {
        Some(e) => Err(e),
        None => Ok(Some(Action::requeue(poll))),
    }
}

async fn delete(ctx: &Context, target: &Target) -> crate::Result<()> {
    ctx.limiter.acquire().await;
    let client = ctx.maestro.get();
    let started = Instant::now();
    let result = client.delete(&target.consumer, &target.work).await;
    ctx.metrics.publish_finished(
        "delete",
        started.elapsed(),
        result.as_ref().err().map(crate::Error::reason),
    );
    result?;
    if let Ok(fresh) = client.get_bundle(&target.consumer, &target.work).await {
        ctx.poller
            .record(&target.consumer, target.resource_id, fresh);
    }
    Ok(())
}

async fn finished(
    ctx: &Context,
    obj: &MaestroApply,
    key: &ObjectRef<MaestroApply>,
    target: &Target,
) -> Result<()> {
    ctx.poller.unregister(key, &target.consumer);
    ctx.metrics.set_phase(key, None);
    event(
        ctx,
        obj,
        EventType::Normal,
        "Deleted",
        "Delete",
        format!(
            "ManifestWork {} on consumer {} is gone from Maestro",
            target.work, target.consumer
        ),
    )
    .await;
    Ok(())
}
