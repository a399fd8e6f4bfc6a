//! The set's reconcile: read the consumers, the children and the stored
//! revisions; let [`rollout::decide`] choose; write the children it moved,
//! delete those whose consumer left, keep the revision history bounded and
//! report.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use super::children::{
    self, REVISION_LABEL, SET_LABEL, build_child, consumer_of_child, owned_by, revision_name,
    revision_of, revision_of_child, selector_matches, selector_string, set_label,
};
use super::crd::{
    ApplyTemplate, KIND, MaestroApplySet, MaestroApplySetStatus, RolledBack, StrategyTimes,
};
use super::rollout::{self, Child, Decision, Member, Outcome, Strategy};
use super::status;
use crate::controller::crd::{API_VERSION, MaestroApply};
use crate::controller::metrics::Metrics;
use crate::controller::{Error, MaestroHandle, Result};

/// The field manager of the set's writes (children, status).
pub const SET_MANAGER: &str = "maestro-operator-applyset";

pub struct SetContext {
    pub client: kube::Client,
    pub maestro: MaestroHandle,
    pub recorder: Arc<crate::controller::events::Events>,
    /// How often the consumers are read again: Maestro has no consumer
    /// watch, so labels that change are seen at this pace.
    pub relist: Duration,
    pub min_backoff: Duration,
    pub metrics: Arc<Metrics>,
}

pub async fn reconcile(set: Arc<MaestroApplySet>, ctx: Arc<SetContext>) -> Result<Action> {
    if set.meta().deletion_timestamp.is_some() {
        // The garbage collector deletes the children (ownerReferences),
        // each by its own deletionPolicy.
        return Ok(Action::await_change());
    }
    match reconcile_set(&set, &ctx).await {
        Ok(action) => Ok(action),
        Err(e) => {
            let stalled = matches!(e, Error::InvalidSpec(_));
            report_error(&set, &ctx, &e, stalled).await;
            Err(e)
        }
    }
}

pub fn error_policy(set: Arc<MaestroApplySet>, error: &Error, ctx: Arc<SetContext>) -> Action {
    warn!(
        namespace = set.namespace().unwrap_or_default(),
        name = set.name_any(),
        reason = error.reason(),
        error = %error,
        "MaestroApplySet reconcile failed"
    );
    if matches!(error, Error::InvalidSpec(_)) {
        return Action::await_change();
    }
    Action::requeue(ctx.min_backoff.max(Duration::from_secs(2)))
}

async fn reconcile_set(set: &MaestroApplySet, ctx: &SetContext) -> Result<Action> {
    let spec = &set.spec;
    let update = revision_of(&spec.template);
    let times = spec.rollout_strategy.times().map_err(Error::InvalidSpec)?;
    let now = Timestamp::now();

    let seen = observe(set, ctx, &update).await?;
    let members = members(
        &seen.selected,
        &seen.children,
        spec.rollout_strategy.group_by.as_deref(),
    );
    let current = current_revision(&seen.revisions);
    let decision = decide(
        set,
        &seen,
        &members,
        &update,
        current.as_deref(),
        times,
        now,
    );

    if !spec.suspend {
        act(set, ctx, &seen, &decision, now).await?;
    }

    let (current, rolled_back) = record(
        set,
        ctx,
        &seen.revisions_api,
        &decision,
        &update,
        current,
        seen.revisions.get(&update),
        now,
    )
    .await?;
    if !spec.suspend {
        trim_history(
            &seen.revisions_api,
            set,
            &seen.revisions,
            &[Some(update.as_str()), current.as_deref()],
        )
        .await;
    }
    let status = status::compute(
        set.status.as_ref(),
        &status::Input {
            set_name: &set.name_any(),
            generation: set.meta().generation,
            selector: selector_string(
                spec.consumer_selector.as_ref(),
                &spec.consumers,
                spec.all_consumers,
            ),
            members: &members,
            decision: &decision,
            update: &update,
            current: current.as_deref(),
            rolled_back,
            now: Time(now),
        },
    );
    write_status(ctx, set, &status).await?;

    let wait = decision
        .recheck_in
        .map_or(ctx.relist, |r| r.min(ctx.relist));
    Ok(Action::requeue(wait.max(Duration::from_secs(1))))
}

/// What a reconcile reads before it decides, with the APIs it writes
/// through afterwards.
struct Observed {
    revisions_api: Api<ControllerRevision>,
    revisions: HashMap<String, Stored>,
    /// The selected consumers and their labels.
    selected: BTreeMap<String, BTreeMap<String, String>>,
    children_api: Api<MaestroApply>,
    /// The set's children by consumer.
    children: HashMap<String, MaestroApply>,
}

/// Reads the stored revisions, the selected consumers and the children.
/// A template not stored yet is stored first (unless suspended), so the
/// rollout can refer to it by revision.
async fn observe(set: &MaestroApplySet, ctx: &SetContext, update: &str) -> Result<Observed> {
    let namespace = set.namespace().unwrap_or_default();
    let revisions_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut revisions = stored_revisions(&revisions_api, set).await?;
    if !revisions.contains_key(update) && !set.spec.suspend {
        store_update_revision(ctx, &revisions_api, set, update, &mut revisions).await?;
    }
    let selected = selected_consumers(set, ctx).await?;
    let children_api: Api<MaestroApply> = Api::namespaced(ctx.client.clone(), &namespace);
    let children = owned_children(&children_api, set).await?;
    Ok(Observed {
        revisions_api,
        revisions,
        selected,
        children_api,
        children,
    })
}

/// Lets [`rollout::decide`] choose the moves, and logs its choice.
fn decide(
    set: &MaestroApplySet,
    seen: &Observed,
    members: &[Member],
    update: &str,
    current: Option<&str>,
    times: StrategyTimes,
    now: Timestamp,
) -> Decision {
    let halted = seen
        .revisions
        .get(update)
        .is_some_and(|r| r.rolled_back.is_some());
    let decision = rollout::decide(&rollout::Input {
        members,
        strategy: &strategy(set, times),
        update,
        current,
        halted,
        suspended: set.spec.suspend,
        now,
    });
    log_decision(set, update, members, &decision);
    decision
}

/// Moves the children the decision chose and deletes those whose consumer
/// left the selection.
async fn act(
    set: &MaestroApplySet,
    ctx: &SetContext,
    seen: &Observed,
    decision: &Decision,
    now: Timestamp,
) -> Result<()> {
    fenced(ctx)?;
    apply_moves(
        set,
        &seen.children_api,
        &seen.children,
        decision,
        &seen.revisions,
        now,
    )
    .await?;
    let keep: BTreeSet<&str> = seen.selected.keys().map(String::as_str).collect();
    delete_leavers(ctx, &seen.children_api, &seen.children, &keep).await
}

/// The newest revision that fully rolled out: the one a rollback returns to.
fn current_revision(revisions: &HashMap<String, Stored>) -> Option<String> {
    revisions
        .iter()
        .filter(|(_, r)| r.complete)
        .max_by_key(|(_, r)| r.number)
        .map(|(hash, _)| hash.clone())
}

/// Logs the decision with each member's standing and child, the trail a
/// rollout that went wrong is read back from.
fn log_decision(set: &MaestroApplySet, update: &str, members: &[Member], decision: &Decision) {
    debug!(
        namespace = set.namespace().unwrap_or_default(),
        name = set.name_any(),
        update,
        outcome = ?decision.outcome,
        moves = decision.moves.len(),
        members = ?members
            .iter()
            .zip(&decision.standings)
            .map(|(m, s)| format!("{}:{}:{:?}", m.consumer, s.as_str(), m.child.as_ref().map(|c| (&c.revision, &c.health))))
            .collect::<Vec<_>>(),
        "rollout decision"
    );
}

/// Stores the template as a new revision, numbered after the others.
async fn store_update_revision(
    ctx: &SetContext,
    api: &Api<ControllerRevision>,
    set: &MaestroApplySet,
    update: &str,
    revisions: &mut HashMap<String, Stored>,
) -> Result<()> {
    fenced(ctx)?;
    let number = revisions.values().map(|r| r.number).max().unwrap_or(0) + 1;
    store_revision(api, set, update, &set.spec.template, number).await?;
    revisions.insert(
        update.to_string(),
        Stored {
            template: set.spec.template.clone(),
            number,
            complete: false,
            rolled_back: None,
        },
    );
    Ok(())
}

/// The selected consumers as the rollout sees them: their group and
/// their child's revision and health, if they have one.
fn members(
    selected: &BTreeMap<String, BTreeMap<String, String>>,
    children: &HashMap<String, MaestroApply>,
    group_by: Option<&str>,
) -> Vec<Member> {
    selected
        .iter()
        .map(|(consumer, labels)| Member {
            consumer: consumer.clone(),
            group: group_by.and_then(|k| labels.get(k).cloned()),
            child: children.get(consumer).and_then(|c| {
                Some(Child {
                    revision: revision_of_child(c)?.to_string(),
                    health: children::health(c),
                })
            }),
        })
        .collect()
}

fn strategy(set: &MaestroApplySet, times: StrategyTimes) -> Strategy {
    let spec = &set.spec;
    Strategy {
        type_: spec.rollout_strategy.type_,
        max_concurrency: spec.rollout_strategy.max_concurrency.clone(),
        max_failures: spec.rollout_strategy.max_failures.clone(),
        times,
        mandatory_groups: spec.rollout_strategy.mandatory_groups.clone(),
        automatic_rollback: spec.rollback.automatic,
    }
}

/// The revision to record as current and the rollback record: marked on
/// the update revision's ControllerRevision when they change, with an
/// event.
#[allow(clippy::too_many_arguments)]
async fn record(
    set: &MaestroApplySet,
    ctx: &SetContext,
    api: &Api<ControllerRevision>,
    decision: &Decision,
    update: &str,
    current: Option<String>,
    stored: Option<&Stored>,
    now: Timestamp,
) -> Result<(Option<String>, Option<RolledBack>)> {
    let name = revision_name(&set.name_any(), update);
    let marked_rollback = stored.and_then(|r| r.rolled_back.clone());
    match &decision.outcome {
        Outcome::Complete => {
            if !stored.is_some_and(|r| r.complete) && !set.spec.suspend {
                mark(api, &name, COMPLETE_ANNOTATION, &now.to_string()).await?;
                // Once per revision: the mark is read back before this.
                ctx.metrics.applyset_rollout("complete");
                event(
                    ctx,
                    set,
                    EventType::Normal,
                    "RolloutComplete",
                    format!(
                        "revision {update} rolled out to {} consumer(s)",
                        decision.counts.total
                    ),
                )
                .await;
            }
            Ok((Some(update.to_string()), marked_rollback))
        }
        Outcome::RolledBack { failed } => {
            if let Some(r) = marked_rollback {
                return Ok((current, Some(r)));
            }
            let to = current
                .clone()
                .filter(|c| c != update && set.spec.rollback.automatic);
            let record = RolledBack {
                revision: update.to_string(),
                to_revision: to.clone(),
                failed_consumers: failed.clone(),
                time: Some(Time(now)),
            };
            let value = serde_json::to_string(&record)
                .map_err(|e| Error::Config(format!("cannot encode the rollback record: {e}")))?;
            mark(api, &name, ROLLED_BACK_ANNOTATION, &value).await?;
            ctx.metrics.applyset_rollout("rolled_back");
            event(
                ctx,
                set,
                EventType::Warning,
                "RolledBack",
                format!(
                    "revision {update} failed on {} (maxFailures {}); {}",
                    failed.join(", "),
                    decision.max_failures,
                    to.map_or_else(
                        || "stopped without rollback".to_string(),
                        |t| format!("rolling back to revision {t}")
                    )
                ),
            )
            .await;
            Ok((current, Some(record)))
        }
        _ => Ok((current, marked_rollback)),
    }
}

async fn mark(api: &Api<ControllerRevision>, name: &str, key: &str, value: &str) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Writing children after the leader lease ended could race the next
/// leader; stop instead.
fn fenced(ctx: &SetContext) -> Result<()> {
    ctx.maestro.get().fence().check()?;
    Ok(())
}

/// The selected consumers and their labels: the selector's matches among
/// Maestro's consumers, plus the explicit list.
async fn selected_consumers(
    set: &MaestroApplySet,
    ctx: &SetContext,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let spec = &set.spec;
    let consumers = ctx.maestro.get().list_consumers().await?;
    let mut selected = BTreeMap::new();
    let by_selector = spec.consumer_selector.is_some() || spec.all_consumers;
    for c in consumers {
        let matched = spec.all_consumers
            || spec
                .consumer_selector
                .as_ref()
                .is_some_and(|s| selector_matches(s, &c.labels));
        if (by_selector && matched) || spec.consumers.contains(&c.name) {
            selected.insert(c.name, c.labels);
        }
    }
    // Listed consumers Maestro does not know still get a child, which
    // reports the unknown consumer.
    for name in &spec.consumers {
        selected.entry(name.clone()).or_default();
    }
    Ok(selected)
}

async fn owned_children(
    api: &Api<MaestroApply>,
    set: &MaestroApplySet,
) -> Result<HashMap<String, MaestroApply>> {
    let params =
        ListParams::default().labels(&format!("{SET_LABEL}={}", set_label(&set.name_any())));
    let list = api.list(&params).await?;
    Ok(list
        .items
        .into_iter()
        .filter(|c| owned_by(&c.metadata, set))
        .filter_map(|c| Some((consumer_of_child(&c)?.to_string(), c)))
        .collect())
}

async fn apply_moves(
    set: &MaestroApplySet,
    api: &Api<MaestroApply>,
    children: &HashMap<String, MaestroApply>,
    decision: &Decision,
    revisions: &HashMap<String, Stored>,
    now: Timestamp,
) -> Result<()> {
    let params = PatchParams::apply(SET_MANAGER).force();
    for mv in &decision.moves {
        let Some(stored) = revisions.get(&mv.revision) else {
            warn!(
                set = set.name_any(),
                revision = mv.revision,
                consumer = mv.consumer,
                "the revision to move to is no longer stored; leaving the child as it is"
            );
            continue;
        };
        let child = build_child(
            set,
            &mv.consumer,
            &mv.revision,
            &stored.template,
            now,
            children.get(&mv.consumer),
        )
        .map_err(Error::InvalidSpec)?;
        let name = child.name_any();
        api.patch(&name, &params, &Patch::Apply(&child)).await?;
        info!(
            set = set.name_any(),
            child = name,
            consumer = mv.consumer,
            revision = mv.revision,
            "child moved to revision"
        );
    }
    Ok(())
}

async fn delete_leavers(
    ctx: &SetContext,
    api: &Api<MaestroApply>,
    children: &HashMap<String, MaestroApply>,
    keep: &BTreeSet<&str>,
) -> Result<()> {
    for (consumer, child) in children {
        if keep.contains(consumer.as_str()) || child.meta().deletion_timestamp.is_some() {
            continue;
        }
        fenced(ctx)?;
        let name = child.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => info!(
                child = name,
                consumer, "consumer left the set; child deleted"
            ),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A stored revision: its template, its sequence number, and what its
/// rollout came to. The marks live on the ControllerRevision, read afresh
/// each reconcile, not in the set's status: the set a reconcile gets comes
/// from the watch cache and may not show the status the last one wrote,
/// and a failed revision must never be rolled out again on that account.
struct Stored {
    template: ApplyTemplate,
    number: i64,
    complete: bool,
    rolled_back: Option<RolledBack>,
}

/// On a ControllerRevision: every selected consumer succeeded on it.
const COMPLETE_ANNOTATION: &str = "maestro.hyperfleet.io/rollout-complete";
/// On a ControllerRevision: its rollout failed; the RolledBack record as
/// JSON.
const ROLLED_BACK_ANNOTATION: &str = "maestro.hyperfleet.io/rolled-back";

async fn stored_revisions(
    api: &Api<ControllerRevision>,
    set: &MaestroApplySet,
) -> Result<HashMap<String, Stored>> {
    let params =
        ListParams::default().labels(&format!("{SET_LABEL}={}", set_label(&set.name_any())));
    let mut out = HashMap::new();
    for r in api.list(&params).await?.items {
        if !owned_by(&r.metadata, set) {
            continue;
        }
        let Some(hash) = r.labels().get(REVISION_LABEL).cloned() else {
            continue;
        };
        let template = r
            .data
            .as_ref()
            .and_then(|d| d.0.get("template").cloned())
            .and_then(|t| serde_json::from_value::<ApplyTemplate>(t).ok());
        match template {
            Some(template) => {
                let annotations = r.annotations();
                out.insert(
                    hash,
                    Stored {
                        template,
                        number: r.revision,
                        complete: annotations.contains_key(COMPLETE_ANNOTATION),
                        rolled_back: annotations
                            .get(ROLLED_BACK_ANNOTATION)
                            .and_then(|v| serde_json::from_str(v).ok()),
                    },
                );
            }
            None => warn!(
                revision = r.name_any(),
                "a stored revision cannot be read; ignored"
            ),
        }
    }
    Ok(out)
}

async fn store_revision(
    api: &Api<ControllerRevision>,
    set: &MaestroApplySet,
    hash: &str,
    template: &ApplyTemplate,
    number: i64,
) -> Result<()> {
    let set_name = set.name_any();
    let mut revision = ControllerRevision {
        data: Some(RawExtension(json!({ "template": template }))),
        revision: number,
        ..ControllerRevision::default()
    };
    revision.metadata.name = Some(revision_name(&set_name, hash));
    revision.metadata.namespace = set.namespace();
    revision.metadata.labels = Some(BTreeMap::from([
        (SET_LABEL.to_string(), set_label(&set_name)),
        (REVISION_LABEL.to_string(), hash.to_string()),
    ]));
    revision.metadata.owner_references = children::owner_reference(set).map(|o| vec![o]);
    match api.create(&PostParams::default(), &revision).await {
        Ok(_) => Ok(()),
        // Left by an earlier reconcile whose list came before the create.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the oldest stored revisions beyond revisionHistoryLimit,
/// never the update or current one. Best effort: a failure only delays.
async fn trim_history(
    api: &Api<ControllerRevision>,
    set: &MaestroApplySet,
    revisions: &HashMap<String, Stored>,
    pinned: &[Option<&str>],
) {
    let limit = set.spec.rollback.revision_history_limit as usize;
    let mut old: Vec<(&String, i64)> = revisions
        .iter()
        .filter(|(hash, _)| !pinned.contains(&Some(hash.as_str())))
        .map(|(hash, s)| (hash, s.number))
        .collect();
    if old.len() <= limit {
        return;
    }
    old.sort_by_key(|(_, n)| *n);
    let excess = old.len() - limit;
    for (hash, _) in old.into_iter().take(excess) {
        let name = revision_name(&set.name_any(), hash);
        if let Err(e) = api.delete(&name, &DeleteParams::default()).await {
            debug!(revision = name, error = %e, "cannot delete an old revision");
        }
    }
}

async fn write_status(
    ctx: &SetContext,
    set: &MaestroApplySet,
    status: &MaestroApplySetStatus,
) -> Result<()> {
    if set.status.as_ref() == Some(status) {
        return Ok(());
    }
    let api: Api<MaestroApplySet> =
        Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let body = json!({ "apiVersion": API_VERSION, "kind": KIND, "status": status });
    api.patch_status(
        &set.name_any(),
        &PatchParams::apply(SET_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

async fn report_error(set: &MaestroApplySet, ctx: &SetContext, error: &Error, stalled: bool) {
    let prev = set.status.as_ref();
    let mut status = prev.cloned().unwrap_or_default();
    status.observed_generation = set.meta().generation;
    status.conditions = status::error_conditions(
        prev,
        set.meta().generation,
        error.reason(),
        &error.to_string(),
        stalled,
        &Time(Timestamp::now()),
    );
    status.phase = Some(if stalled { "Stalled" } else { "Failed" }.into());
    if let Err(e) = write_status(ctx, set, &status).await {
        debug!(error = %e, "cannot report the error in status");
    }
}

async fn event(
    ctx: &SetContext,
    set: &MaestroApplySet,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Rollout".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &set.object_ref(&())).await {
        debug!(error = %e, reason, "cannot publish an event");
    }
}
