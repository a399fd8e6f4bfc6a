//! What a reconcile tells the world besides Maestro: the object's status
//! and the events recorded on it. Shared by publishing and deletion, so
//! both write the same way (only real changes, never past the fence).

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::debug;

use super::crd::{API_VERSION, CONDITION_READY, KIND, MaestroApply, MaestroApplyStatus, Phase};
use super::{Context, MANAGER, Result};

/// A status timestamp: Kubernetes keeps seconds, so finer ones would make
/// every comparison with the stored status differ.
pub(super) fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now())
}

/// Writes the status when it differs from the stored one, so an idle
/// object costs no API write and the operator's own writes (filtered out
/// of the watch) never wake it.
pub(super) async fn write_status(
    obj: &MaestroApply,
    api: &Api<MaestroApply>,
    ctx: &Context,
    status: MaestroApplyStatus,
) -> Result<()> {
    if obj.status.as_ref() == Some(&status) {
        return Ok(());
    }
    // A replica whose leader lease ended must not overwrite what the new
    // leader writes (both patch as the same, forcing, field manager).
    ctx.maestro.get().fence().check()?;
    let patch = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    ctx.metrics.status_written();
    Ok(())
}

/// Events on transitions only: becoming Ready, and each new failure
/// reason. A poll that changes nothing says nothing.
pub(super) async fn announce(
    obj: &MaestroApply,
    ctx: &Context,
    prev: Option<&MaestroApplyStatus>,
    new: &MaestroApplyStatus,
) {
    let Some(ready) = new.condition(CONDITION_READY) else {
        return;
    };
    let old = prev.and_then(|p| p.condition(CONDITION_READY));
    if old.is_some_and(|o| o.reason == ready.reason && o.status == ready.status) {
        return;
    }
    let type_ = match new.phase {
        Some(Phase::Stalled | Phase::Failed | Phase::Degraded) => EventType::Warning,
        Some(Phase::Applied | Phase::Available | Phase::Suspended) => EventType::Normal,
        _ => return,
    };
    event(
        ctx,
        obj,
        type_,
        &ready.reason,
        "Reconcile",
        ready.message.clone(),
    )
    .await;
}

pub(super) async fn event<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = KubeEvent {
        type_,
        reason: reason.to_string(),
        note: Some(truncate_note(note)),
        action: action.to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        // Events are best effort; the status carries the same news.
        debug!(error = %e, reason, "cannot publish an event");
    }
}

/// Event notes are limited to 1 kB.
fn truncate_note(mut note: String) -> String {
    if note.len() > 1000 {
        let mut end = 997;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

#[cfg(test)]
mod tests;
