//! The reconciler: a finalizer, then publish (create, update or nothing)
//! and status; on deletion, delete and wait, or orphan.
//!
//! Decisions are made from the shared poller's cache, so an object whose
//! bundle is in sync costs no REST request. Every publish first reads the
//! bundle afresh: the cache decides whether to look, never what to
//! overwrite.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, warn};

use super::crd::{Intervals, MaestroApply, MaestroApplyStatus, Phase};
use super::delete::cleanup;
use super::pacing;
use super::poller::View;
use super::publish::sync_work;
use super::raw::RawMaestroApply;
use super::report::{announce, event, now, write_status};
use super::status::{self, Input, Outcome};
use super::target::Target;
use super::{Context, Error, FINALIZER, Result};
use crate::maestro::work_client::spec_hash_of_work;

/// Entry point for `Controller::run`: decodes the object, then reconciles
/// it. An object that cannot be decoded is reported on itself and left
/// alone until it changes; the others are not affected.
pub async fn reconcile(raw: Arc<RawMaestroApply>, ctx: Arc<Context>) -> Result<Action> {
    let span = tracing::info_span!(
        "reconcile",
        namespace = raw.namespace().unwrap_or_default(),
        name = raw.name_any(),
        otel.status_code = tracing::field::Empty,
    );
    let result = reconcile_raw(raw, ctx).instrument(span.clone()).await;
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    result
}

async fn reconcile_raw(raw: Arc<RawMaestroApply>, ctx: Arc<Context>) -> Result<Action> {
    let started = ctx.metrics.reconcile_started();
    let key = raw.typed_ref();
    let obj = match raw.decode() {
        Ok(obj) => Arc::new(obj),
        Err(problem) => {
            undecodable(&raw, &ctx, &problem).await;
            ctx.metrics
                .reconcile_finished(started, Some(REASON_INVALID_OBJECT));
            ctx.metrics.set_phase(&key, Some(Phase::Stalled));
            return Ok(Action::await_change());
        }
    };
    let result = reconcile_object(obj, &ctx).await;
    ctx.metrics
        .reconcile_finished(started, result.as_ref().err().map(Error::reason));
    if result.is_ok() {
        ctx.failures.reset(&key);
    }
    result
}

/// Retries a failed object with exponential backoff and jitter, per object
/// and capped, so a failing object never spins and a flapping Maestro
/// does not synchronise retries.
pub fn error_policy(obj: Arc<RawMaestroApply>, error: &Error, ctx: Arc<Context>) -> Action {
    let key = obj.typed_ref();
    let failures = ctx.failures.bump(&key);
    let delay =
        crate::backoff::delay_after(failures, ctx.settings.min_backoff, ctx.settings.max_backoff);
    warn!(
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        reason = error.reason(),
        error = %error,
        failures,
        retry_in_ms = delay.as_millis() as u64,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile_object(obj: Arc<MaestroApply>, ctx: &Context) -> Result<Action> {
    let namespace = obj
        .namespace()
        .ok_or_else(|| Error::InvalidSpec("a MaestroApply must have a namespace".into()))?;
    let api: Api<MaestroApply> = Api::namespaced(ctx.client.clone(), &namespace);
    debug!(
        namespace,
        name = obj.name_any(),
        generation = obj.meta().generation,
        "reconciling"
    );

    // The finalizer helper removes the finalizer as soon as cleanup returns
    // Ok; deletion must instead wait for the agent, so it is driven here
    // and the helper only runs once it is finished.
    let ours = obj.finalizers().iter().any(|f| f == FINALIZER);
    if obj.meta().deletion_timestamp.is_some()
        && ours
        && let Some(later) = cleanup(&obj, &api, ctx).await?
    {
        return Ok(later);
    }
    finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(obj) => apply(obj, &api, ctx).await,
            Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
    .map_err(|e| match e {
        FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
        other => Error::Finalizer(Box::new(other)),
    })
}

/// Time left until `deadline` (plus a second, so the reconcile then finds
/// it passed), if it is ahead.
fn until(deadline: Timestamp) -> Option<Duration> {
    let left = Timestamp::now().duration_until(deadline);
    Duration::try_from(left)
        .ok()
        .filter(|d| !d.is_zero())
        .map(|d| d + Duration::from_secs(1))
}

async fn apply(obj: Arc<MaestroApply>, api: &Api<MaestroApply>, ctx: &Context) -> Result<Action> {
    let key = ObjectRef::from_obj(&*obj);
    let source = ctx.maestro.get().source().clone();
    let prev = obj.status.as_ref();
    let (target, mut intervals) = match (Target::of(&obj, &source), obj.spec.intervals()) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) => return invalid(&obj, api, ctx, e.to_string()).await,
        (_, Err(e)) => return invalid(&obj, api, ctx, e).await,
    };
    let raised = intervals.raise_to(ctx.settings.floors);

    let ready_before = prev.is_some_and(MaestroApplyStatus::is_ready);
    ctx.poller.register(
        &key,
        &target.consumer,
        target.resource_id,
        pacing::of(&intervals, ready_before),
    );

    let requested = obj.requested_at();
    let handle_request = requested.is_some()
        && requested != prev.and_then(|s| s.last_handled_reconcile_at.as_deref());
    await_poll(ctx, &target, handle_request).await;
    let mut view = ctx.poller.view(&key, &target.consumer, &target.resource_id);

    let desired = target.build_work(&obj);
    let (outcome, error) = sync_work(&obj, &target, &desired, &view, ctx).await;
    if matches!(
        outcome,
        Outcome::Published | Outcome::InSync | Outcome::Drifted { .. }
    ) {
        view = ctx.poller.view(&key, &target.consumer, &target.resource_id);
    }

    let resource_id = target.resource_id.to_string();
    let names = (
        target.consumer.as_str(),
        target.work.as_str(),
        resource_id.as_str(),
    );
    let mut status = status::compute(
        prev,
        &Input::new(&obj, names, &view, &outcome, now())
            .timeout(intervals.timeout)
            .requested_at(requested.filter(|_| handle_request)),
    );
    record_publish(&mut status, &outcome, || spec_hash_of_work(&desired));
    note_drift(&mut status, prev, &outcome);
    if note_raised_intervals(&mut status, prev, &raised) {
        event(
            ctx,
            &*obj,
            EventType::Warning,
            REASON_INTERVALS_RAISED,
            "Reconcile",
            raised.join("; "),
        )
        .await;
    }
    announce(&obj, ctx, prev, &status).await;
    write_status(&obj, api, ctx, status.clone()).await?;
    ctx.metrics.set_phase(&key, status.phase);

    let ready = status.is_ready();
    if ready != ready_before {
        ctx.poller.register(
            &key,
            &target.consumer,
            target.resource_id,
            pacing::of(&intervals, ready),
        );
    }
    match error {
        Some(e) => Err(e),
        None => Ok(Action::requeue(next_visit(&outcome, &status, &intervals))),
    }
}

/// Waits for the consumer's first poll, or (`fresh`: a new
/// reconcile-requested-at value) for a new one: a shared poll of the
/// consumer, not a read of this one bundle, so a pulse over many objects
/// still costs one list.
async fn await_poll(ctx: &Context, target: &Target, fresh: bool) {
    if fresh {
        ctx.poller
            .refresh(&target.consumer, ctx.settings.sync_wait)
            .await;
    } else {
        ctx.poller
            .wait_polled(&target.consumer, ctx.settings.sync_wait)
            .await;
    }
}

/// When to reconcile again. The poller wakes the object when its bundle
/// changes, so waiting on pollInterval here would only re-read the cache.
/// Come back for the resync, the timeout, or (claimed) to see whether the
/// holder let go.
fn next_visit(outcome: &Outcome, status: &MaestroApplyStatus, intervals: &Intervals) -> Duration {
    match outcome {
        _ if status.is_ready() => intervals.resync,
        Outcome::Claimed { .. } => intervals.poll,
        _ => status::deadline(status.last_publish_time.as_ref(), intervals.timeout)
            .and_then(until)
            .map_or(intervals.resync, |left| left.min(intervals.resync)),
    }
}

const REASON_INVALID_OBJECT: &str = "InvalidObject";

/// Reports an object the operator cannot decode, on the object itself
/// (a Warning event, and Ready=False/Stalled in its status, merge-patched
/// without decoding it), so its owner sees what to fix.
async fn undecodable(raw: &RawMaestroApply, ctx: &Context, problem: &str) {
    warn!(
        namespace = raw.namespace().unwrap_or_default(),
        name = raw.name_any(),
        problem,
        "cannot decode a MaestroApply; skipping it until it changes"
    );
    let message = format!("{problem}; fix or re-create the object");
    event(
        ctx,
        raw,
        EventType::Warning,
        REASON_INVALID_OBJECT,
        "Reconcile",
        message.clone(),
    )
    .await;
    let now = Time(now());
    let condition = |type_: &str| Condition {
        type_: type_.into(),
        status: if type_ == super::crd::CONDITION_READY {
            "False"
        } else {
            "True"
        }
        .into(),
        reason: REASON_INVALID_OBJECT.into(),
        message: message.clone(),
        observed_generation: raw.meta().generation,
        last_transition_time: now.clone(),
    };
    let patch = json!({"status": {
        "observedGeneration": raw.meta().generation,
        "phase": Phase::Stalled.as_str(),
        "conditions": [condition(super::crd::CONDITION_READY), condition(super::crd::CONDITION_STALLED)],
    }});
    let Some(namespace) = raw.namespace() else {
        return;
    };
    let api: Api<RawMaestroApply> = Api::namespaced(ctx.client.clone(), &namespace);
    if let Err(e) = api
        .patch_status(
            &raw.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        warn!(error = %e, name = raw.name_any(), "cannot write the status of an undecodable object");
    }
}

/// Records in the status what this object now holds under its resource
/// ID: the digest it published or found in place, or nothing once the
/// bundle is another's. The status keeps it otherwise.
fn record_publish(
    status: &mut MaestroApplyStatus,
    outcome: &Outcome,
    desired_hash: impl FnOnce() -> String,
) {
    match outcome {
        Outcome::Published | Outcome::InSync => {
            status.published_spec_hash = Some(desired_hash());
        }
        Outcome::Claimed { .. } => status.published_spec_hash = None,
        _ => {}
    }
}

/// The condition that says the work drifted and was left so
/// (`spec.driftPolicy: Report`). Present only while that is true; the
/// Warning event comes with the Ready transition (see [`announce`]).
pub const CONDITION_DRIFTED: &str = "Drifted";

fn note_drift(
    status: &mut MaestroApplyStatus,
    prev: Option<&MaestroApplyStatus>,
    outcome: &Outcome,
) {
    status.conditions.retain(|c| c.type_ != CONDITION_DRIFTED);
    let Outcome::Drifted { what } = outcome else {
        return;
    };
    let before = prev.and_then(|p| p.condition(CONDITION_DRIFTED));
    status.conditions.push(Condition {
        type_: CONDITION_DRIFTED.into(),
        status: "True".into(),
        reason: status::REASON_DRIFT_DETECTED.into(),
        message: what.clone(),
        observed_generation: status.observed_generation,
        last_transition_time: before
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(now())),
    });
}

/// The condition that says the operator raised the spec's intervals.
pub const CONDITION_INTERVALS_RAISED: &str = "IntervalsRaised";
const REASON_INTERVALS_RAISED: &str = "BelowOperatorMinimum";

/// Sets (or removes) the condition that says which intervals were raised
/// to the operator's floors. True when the news is new, so the Warning
/// event goes out once, not on every reconcile.
fn note_raised_intervals(
    status: &mut MaestroApplyStatus,
    prev: Option<&MaestroApplyStatus>,
    raised: &[String],
) -> bool {
    status
        .conditions
        .retain(|c| c.type_ != CONDITION_INTERVALS_RAISED);
    if raised.is_empty() {
        return false;
    }
    let message = raised.join("; ");
    let before = prev.and_then(|p| p.condition(CONDITION_INTERVALS_RAISED));
    let unchanged = before.is_some_and(|c| c.message == message);
    status.conditions.push(Condition {
        type_: CONDITION_INTERVALS_RAISED.into(),
        status: "True".into(),
        reason: REASON_INTERVALS_RAISED.into(),
        message,
        observed_generation: status.observed_generation,
        last_transition_time: before
            .map(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| Time(now())),
    });
    !unchanged
}

/// Reports a spec the operator cannot act on; only a change can fix it.
async fn invalid(
    obj: &MaestroApply,
    api: &Api<MaestroApply>,
    ctx: &Context,
    message: String,
) -> Result<Action> {
    let outcome = Outcome::Failed {
        reason: "InvalidSpec".into(),
        message,
        terminal: true,
    };
    let view = View::default();
    let names = (obj.spec.consumer.as_str(), obj.work_name(), "");
    let status = status::compute(
        obj.status.as_ref(),
        &Input::new(obj, names, &view, &outcome, now()).requested_at(obj.requested_at()),
    );
    let status = MaestroApplyStatus {
        resource_bundle_id: None,
        ..status
    };
    announce(obj, ctx, obj.status.as_ref(), &status).await;
    write_status(obj, api, ctx, status.clone()).await?;
    ctx.metrics
        .set_phase(&ObjectRef::from_obj(obj), status.phase);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests;
