//! What an object's status should say, from what Maestro holds and what
//! the reconcile did. Pure: no clock, no I/O, so every rule is tested
//! directly and a reconcile can compare the result with the stored status
//! and write only a real change.
//!
//! Conditions follow kstatus: `Ready` is the summary (`kubectl wait
//! --for=condition=Ready`, Argo CD and Flux health checks read it),
//! `Reconciling` is present while work is under way, `Stalled` while the
//! operator cannot make progress without help. Both are removed when false.
//! The ManifestWork's own conditions are mirrored beside them.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::crd::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, MaestroApply, MaestroApplyStatus,
    ManifestStatus, Phase, WaitFor,
};
use super::poller::View;
use crate::maestro::HeldWork;
use crate::manifestwork::{
    CONDITION_APPLIED, CONDITION_AVAILABLE, CONDITION_DEGRADED, CONDITION_DELETING,
    CONDITION_PROGRESSING, FieldValue,
};

/// The ManifestWork conditions mirrored into the status, in this order.
pub const MIRRORED: [&str; 5] = [
    CONDITION_APPLIED,
    CONDITION_AVAILABLE,
    CONDITION_PROGRESSING,
    CONDITION_DEGRADED,
    CONDITION_DELETING,
];

/// Kubernetes caps condition messages at 32 KiB.
const MAX_MESSAGE: usize = 32 * 1024;

/// The CRD's maxLength of a feedback `jsonRaw` (as in the ManifestWork CRD).
const MAX_JSON_RAW: usize = 1024;

/// Feedback strings have no schema bound; one huge value must not crowd
/// out the rest of the status, so they get the same bound as `jsonRaw`.
const MAX_FEEDBACK_STRING: usize = 1024;

/// The most manifest statuses kept: the spec's own maxItems. The agent
/// reports one per manifest, so only a broken or hostile report has more.
const MAX_MANIFEST_STATUSES: usize = 1000;

/// The most JSON the kept manifest statuses may take together. With a
/// 500 KiB workload in the spec and the conditions' 32 KiB messages the
/// object stays well under etcd's 1.5 MiB, so a status patch cannot fail
/// for its size.
const MAX_MANIFEST_STATUS_BYTES: usize = 512 * 1024;

/// The reason of drift that is reported, not corrected.
pub const REASON_DRIFT_DETECTED: &str = "DriftDetected";

/// What the reconcile did or found, besides the bundle itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Maestro holds what the spec asks for; nothing was published.
    InSync,
    /// A create or update was published now.
    Published,
    /// `spec.suspend`: nothing was published.
    Suspended,
    /// Another object owns the work; nothing was published.
    Claimed { owner: String },
    /// Our work was changed behind our back and `spec.driftPolicy` is
    /// Report: nothing was published. `what` says what changed.
    Drifted { what: String },
    /// Maestro still holds an earlier bundle being deleted; the new one is
    /// published once it is gone.
    WaitingForOldBundle,
    /// The object itself is being deleted.
    Deleting { message: String },
    /// The object is being deleted, and its deletion waits for room under
    /// the operator's bound on unconfirmed deletions per consumer.
    DeletionQueued { message: String },
    /// The agent has not confirmed the deletion for long: past
    /// `deletionTimeout` (`stalled`), or for minutes without one.
    DeletionNotConfirmed { message: String, stalled: bool },
    /// Publishing failed. `terminal` errors need a change (spec, consumer
    /// registration, credentials) rather than time.
    Failed {
        reason: String,
        message: String,
        terminal: bool,
    },
}

/// Everything [`compute`] needs.
pub struct Input<'a> {
    pub generation: Option<i64>,
    pub consumer: &'a str,
    pub work_name: &'a str,
    pub resource_id: &'a str,
    pub wait_for: WaitFor,
    pub timeout: Duration,
    pub view: &'a View,
    pub outcome: &'a Outcome,
    /// The `reconcile-requested-at` value this reconcile handled.
    pub requested_at: Option<&'a str>,
    pub now: Timestamp,
}

impl<'a> Input<'a> {
    /// The input for `obj` as published under `consumer`, `work_name` and
    /// `resource_id`: no timeout and no handled reconcile request unless
    /// set with [`Input::timeout`] and [`Input::requested_at`].
    pub fn new(
        obj: &MaestroApply,
        (consumer, work_name, resource_id): (&'a str, &'a str, &'a str),
        view: &'a View,
        outcome: &'a Outcome,
        now: Timestamp,
    ) -> Self {
        Input {
            generation: obj.metadata.generation,
            consumer,
            work_name,
            resource_id,
            wait_for: obj.spec.wait_for,
            timeout: Duration::ZERO,
            view,
            outcome,
            requested_at: None,
            now,
        }
    }

    pub fn timeout(self, timeout: Duration) -> Self {
        Input { timeout, ..self }
    }

    pub fn requested_at(self, requested_at: Option<&'a str>) -> Self {
        Input {
            requested_at,
            ..self
        }
    }
}

/// The status to store, given the stored one.
pub fn compute(prev: Option<&MaestroApplyStatus>, input: &Input<'_>) -> MaestroApplyStatus {
    let now = Time(input.now);
    let bundle = input.view.held.as_deref();
    let mirrored = bundle
        .map(|b| mirror(b, input.generation, &now))
        .unwrap_or_default();
    let (manifests, reported) = bundle.map(manifests).unwrap_or_default();
    let applied_version = bundle
        .and_then(|b| b.report.as_ref())
        .map(|s| s.observed_version)
        .filter(|v| *v > 0);

    let last_publish_time = last_publish_time(prev, input, bundle);
    let mut verdict = judge(
        input,
        bundle,
        last_publish_time.as_ref(),
        prev.and_then(|p| p.phase),
    );
    if reported > manifests.len() {
        verdict.message.push_str(&format!(
            "; status.manifests lists the first {} of {reported} manifest statuses, {} more \
             omitted (too many or too large for the object)",
            manifests.len(),
            reported - manifests.len()
        ));
    }

    let conditions = conditions(prev, &verdict, mirrored, input);

    let agent_changed = agent_report_changed(prev, applied_version, &manifests, &conditions);
    let has_report = applied_version.is_some() || !manifests.is_empty();
    let last_status_change_time = match (agent_changed && has_report, prev) {
        (true, _) => Some(now.clone()),
        (false, Some(p)) => p.last_status_change_time.clone(),
        (false, None) => None,
    };

    MaestroApplyStatus {
        observed_generation: input.generation,
        conditions,
        phase: Some(verdict.phase),
        work_name: Some(input.work_name.to_string()),
        resource_bundle_id: Some(input.resource_id.to_string()),
        bundle_version: bundle.map(|b| b.version),
        applied_version,
        last_publish_time,
        last_status_change_time,
        manifests,
        last_handled_reconcile_at: input
            .requested_at
            .map(str::to_string)
            .or_else(|| prev.and_then(|p| p.last_handled_reconcile_at.clone())),
        // Kept while the resource ID is the same; the reconcile sets it on
        // a publish and clears it when the bundle is another's.
        published_spec_hash: prev
            .filter(|p| p.resource_bundle_id.as_deref() == Some(input.resource_id))
            .and_then(|p| p.published_spec_hash.clone()),
    }
}

/// When the bundle was last published. A bundle version the stored status
/// never recorded is a publish whose status write was lost (a failed patch,
/// a SIGTERM, a restart): its time counts from now, so the timeout never
/// fires early for it. The bundle's version is the state that survives;
/// `now` may be late, never early, so a restart can delay a timeout but
/// never invent one.
fn last_publish_time(
    prev: Option<&MaestroApplyStatus>,
    input: &Input<'_>,
    bundle: Option<&HeldWork>,
) -> Option<Time> {
    let unrecorded_publish =
        bundle.is_some_and(|b| prev.is_none_or(|p| p.bundle_version != Some(b.version)));
    if *input.outcome == Outcome::Published || unrecorded_publish {
        Some(Time(input.now))
    } else {
        prev.and_then(|p| p.last_publish_time.clone())
    }
}

/// The status's conditions: `Ready` from the verdict, `Reconciling` or
/// `Stalled` when it says so, then the mirrored agent conditions, each
/// keeping its stored transition time while its status is unchanged.
fn conditions(
    prev: Option<&MaestroApplyStatus>,
    verdict: &Verdict,
    mirrored: Vec<Condition>,
    input: &Input<'_>,
) -> Vec<Condition> {
    let mut conditions = vec![condition(
        CONDITION_READY,
        verdict.ready,
        &verdict.reason,
        &verdict.message,
        input,
    )];
    if let Some(kind) = verdict.progress {
        let type_ = match kind {
            Progress::Reconciling => CONDITION_RECONCILING,
            Progress::Stalled => CONDITION_STALLED,
        };
        conditions.push(condition(
            type_,
            "True",
            &verdict.reason,
            &verdict.message,
            input,
        ));
    }
    conditions.extend(mirrored);
    for c in &mut conditions {
        keep_transition_time(prev, c);
    }
    conditions
}

/// Whether the agent's report (applied version, per-manifest statuses,
/// mirrored conditions) differs from the stored one.
fn agent_report_changed(
    prev: Option<&MaestroApplyStatus>,
    applied_version: Option<i64>,
    manifests: &[ManifestStatus],
    conditions: &[Condition],
) -> bool {
    prev.is_none_or(|p| {
        p.applied_version != applied_version
            || p.manifests != manifests
            || MIRRORED
                .iter()
                .any(|t| p.condition(t) != conditions.iter().find(|c| c.type_ == *t))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Reconciling,
    Stalled,
}

struct Verdict {
    ready: &'static str,
    reason: String,
    message: String,
    progress: Option<Progress>,
    phase: Phase,
}

fn verdict(
    ready: &'static str,
    reason: &str,
    message: String,
    progress: Option<Progress>,
    phase: Phase,
) -> Verdict {
    Verdict {
        ready,
        reason: reason.to_string(),
        message,
        progress,
        phase,
    }
}

/// The summary, first match wins: what the operator itself could not do
/// comes before what the agent reports. `last_phase` is the stored one.
fn judge(
    input: &Input<'_>,
    bundle: Option<&HeldWork>,
    published: Option<&Time>,
    last_phase: Option<Phase>,
) -> Verdict {
    if let Some(own) = operator_verdict(input) {
        return own;
    }
    let known = report_verdict(input, bundle, published);
    let Some(error) = &input.view.error else {
        return known;
    };
    // Unknown is not failed: the phase stays what was last known (stored,
    // else what the last report says) until Maestro answers again.
    verdict(
        "Unknown",
        error.reason,
        format!(
            "cannot read the status from Maestro since {}: {}; the status shows the last report",
            error.since.format("%Y-%m-%dT%H:%M:%SZ"),
            without_repeated_url(&error.message)
        ),
        Some(Progress::Reconciling),
        last_phase.unwrap_or(known.phase),
    )
}

/// The verdict for an outcome of the operator's own (deleting, failed,
/// claimed, drifted), which no agent report can override.
fn operator_verdict(input: &Input<'_>) -> Option<Verdict> {
    use Progress::{Reconciling, Stalled};
    let consumer = input.consumer;
    let work = input.work_name;
    match input.outcome {
        Outcome::Deleting { message } => Some(verdict(
            "False",
            "Deleting",
            message.clone(),
            Some(Reconciling),
            Phase::Deleting,
        )),
        Outcome::DeletionQueued { message } => Some(verdict(
            "False",
            "DeletionQueued",
            message.clone(),
            Some(Reconciling),
            Phase::Deleting,
        )),
        Outcome::DeletionNotConfirmed { message, stalled } => Some(verdict(
            "False",
            "DeletionNotConfirmed",
            message.clone(),
            Some(if *stalled { Stalled } else { Reconciling }),
            Phase::Deleting,
        )),
        Outcome::Failed {
            reason,
            message,
            terminal,
        } => {
            let (progress, phase) = if *terminal {
                (Stalled, Phase::Stalled)
            } else {
                (Reconciling, Phase::Failed)
            };
            Some(verdict(
                "False",
                reason,
                message.clone(),
                Some(progress),
                phase,
            ))
        }
        Outcome::Claimed { owner } => Some(verdict(
            "False",
            "WorkClaimed",
            format!(
                "ManifestWork {work} on consumer {consumer} is held by {owner}; nothing is \
                     published over it (choose another spec.workName, or set the annotation \
                     maestro.hyperfleet.io/adopt: \"true\" to take it over)"
            ),
            Some(Stalled),
            Phase::Stalled,
        )),
        Outcome::Drifted { what } => {
            // Not Ready: what the agent applied is not what this object
            // declares, and only a person (or driftPolicy: Correct) can
            // change that.
            Some(verdict(
                "False",
                REASON_DRIFT_DETECTED,
                format!(
                    "ManifestWork {work} on consumer {consumer} was changed behind the \
                     operator's back: {what}; spec.driftPolicy is Report, so it is not \
                     restored (restore it, or set spec.driftPolicy: Correct)"
                ),
                Some(Stalled),
                Phase::Stalled,
            ))
        }
        _ => None,
    }
}

/// The verdict from the spec's outcome and the last report on `bundle`.
fn report_verdict(
    input: &Input<'_>,
    bundle: Option<&HeldWork>,
    published: Option<&Time>,
) -> Verdict {
    use Progress::Reconciling;
    let consumer = input.consumer;
    let work = input.work_name;
    match input.outcome {
        Outcome::Suspended => {
            return verdict(
                "False",
                "Suspended",
                "spec.suspend is true: nothing is published; the status shows the agent's last report"
                    .into(),
                None,
                Phase::Suspended,
            );
        }
        Outcome::WaitingForOldBundle => {
            return verdict(
                "False",
                "WaitingForDeletion",
                format!(
                    "Maestro is still deleting an earlier ManifestWork {work} on consumer {consumer}; \
                     it is published again once the agent confirmed the deletion"
                ),
                Some(Reconciling),
                Phase::Progressing,
            );
        }
        _ => {}
    }
    let Some(bundle) = bundle else {
        return verdict(
            "False",
            "Pending",
            format!("ManifestWork {work} is not in Maestro yet"),
            Some(Reconciling),
            Phase::Pending,
        );
    };
    agent_verdict(input, bundle, published)
}

/// The verdict from the agent's report on a bundle Maestro holds.
fn agent_verdict(input: &Input<'_>, bundle: &HeldWork, published: Option<&Time>) -> Verdict {
    let wanted = input.wait_for.condition_type();
    let version = bundle.version;
    let consumer = input.consumer;
    let status = bundle.report.as_ref().filter(|s| s.observed_version > 0);
    let current = status.is_some_and(|s| s.covers(version));
    let reported = |type_: &str| {
        status
            .and_then(|s| s.condition(type_))
            .filter(|c| c.observed_generation.is_none_or(|g| g == version))
    };
    let wanted_cond = reported(wanted).filter(|_| current);
    let degraded = reported(CONDITION_DEGRADED).filter(|c| current && c.status == "True");

    if let Some(c) = degraded {
        return degraded_verdict(input, published, c);
    }
    if wanted_cond.is_some_and(|c| c.status == "True") {
        return ready_verdict(input, bundle);
    }
    let waiting = match (status, wanted_cond) {
        (None, _) => format!(
            "waiting for the agent on consumer {consumer} to report on bundle version {version}"
        ),
        (Some(s), _) if s.observed_version == version && !current => format!(
            "the agent on consumer {consumer} has received bundle version {version} and not applied it yet"
        ),
        (Some(s), _) if !current => format!(
            "the agent on consumer {consumer} last reported on bundle version {}; waiting for version {version}",
            s.observed_version
        ),
        (Some(_), None) => {
            format!("the agent has not reported {wanted} for bundle version {version} yet")
        }
        (Some(_), Some(c)) => format!("{wanted} is {}: {}: {}", c.status, c.reason, c.message),
    };
    if timed_out(input, published) {
        return verdict(
            "False",
            "TimedOut",
            format!(
                "not {wanted} within {} of the last publish: {waiting}",
                crate::durations::format(input.timeout)
            ),
            Some(Progress::Stalled),
            Phase::Stalled,
        );
    }
    let phase = if status.is_none() {
        Phase::Pending
    } else {
        Phase::Progressing
    };
    verdict(
        "False",
        "Progressing",
        waiting,
        Some(Progress::Reconciling),
        phase,
    )
}

/// The agent reports the current version degraded: still reconciling until
/// the timeout, stalled after it.
fn degraded_verdict(input: &Input<'_>, published: Option<&Time>, degraded: &Condition) -> Verdict {
    let (progress, phase) = if timed_out(input, published) {
        (Progress::Stalled, Phase::Stalled)
    } else {
        (Progress::Reconciling, Phase::Degraded)
    };
    verdict(
        "False",
        "Degraded",
        format!(
            "the agent reports the work degraded: {}: {}",
            degraded.reason, degraded.message
        ),
        Some(progress),
        phase,
    )
}

/// The agent reports the awaited condition true on the current version.
fn ready_verdict(input: &Input<'_>, bundle: &HeldWork) -> Verdict {
    let count = bundle.manifest_count;
    let version = bundle.version;
    let consumer = input.consumer;
    let (phase, what) = match input.wait_for {
        WaitFor::Applied => (Phase::Applied, "applied"),
        WaitFor::Available => (Phase::Available, "applied and available"),
    };
    verdict(
        "True",
        input.wait_for.condition_type(),
        format!("{count} manifest(s) {what} on consumer {consumer} (bundle version {version})"),
        None,
        phase,
    )
}

fn timed_out(input: &Input<'_>, published: Option<&Time>) -> bool {
    let Ok(timeout) = SignedDuration::try_from(input.timeout) else {
        return false;
    };
    published.is_some_and(|t| {
        t.0.checked_add(timeout)
            .is_ok_and(|deadline| input.now > deadline)
    })
}

/// When the timeout of an object published at `published` runs out.
pub fn deadline(published: Option<&Time>, timeout: Duration) -> Option<Timestamp> {
    let timeout = SignedDuration::try_from(timeout).ok()?;
    published?.0.checked_add(timeout).ok()
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    input: &Input<'_>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: truncate(message),
        observed_generation: input.generation,
        last_transition_time: Time(input.now),
    }
}

/// The agent's conditions on the bundle. One the agent set for an older
/// bundle version says nothing about the current one, so it is mirrored as
/// Unknown; `kubectl wait --for=condition=Available` then cannot be fooled
/// by a report on the previous spec.
fn mirror(bundle: &HeldWork, generation: Option<i64>, now: &Time) -> Vec<Condition> {
    let Some(status) = &bundle.report else {
        return Vec::new();
    };
    MIRRORED
        .iter()
        .filter_map(|type_| status.condition(type_))
        .map(|c| {
            let stale = c
                .observed_generation
                .is_some_and(|g| g != bundle.version)
                || !status.covers(bundle.version);
            if stale {
                Condition {
                    type_: c.type_.clone(),
                    status: "Unknown".into(),
                    reason: "AwaitingAgent".into(),
                    message: truncate(&format!(
                        "the agent has not reported on bundle version {} yet; its last report said {}: {}: {}",
                        bundle.version, c.status, c.reason, c.message
                    )),
                    observed_generation: generation,
                    last_transition_time: now.clone(),
                }
            } else {
                Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: if c.reason.is_empty() {
                        "AgentReported".into()
                    } else {
                        c.reason.clone()
                    },
                    message: truncate(&c.message),
                    observed_generation: generation,
                    last_transition_time: c.last_transition_time.clone(),
                }
            }
        })
        .collect()
}

/// The agent's per-manifest report, bounded to what the CRD and the
/// object's size allow: values over their bound are truncated with a
/// marker, and past [`MAX_MANIFEST_STATUSES`] or
/// [`MAX_MANIFEST_STATUS_BYTES`] the rest is left out. Also returns how
/// many statuses the agent reported.
fn manifests(bundle: &HeldWork) -> (Vec<ManifestStatus>, usize) {
    let Some(status) = &bundle.report else {
        return (Vec::new(), 0);
    };
    let mut all: Vec<ManifestStatus> = status
        .manifests
        .iter()
        .cloned()
        .map(|m| {
            let mut out = ManifestStatus {
                resource: m.resource_meta,
                conditions: m.conditions,
                status_feedback: m.status_feedback,
            };
            bound_manifest(&mut out);
            out
        })
        .collect();
    all.sort_by_key(|m| m.resource.ordinal);
    let reported = all.len();
    let mut room = MAX_MANIFEST_STATUS_BYTES;
    let mut kept = Vec::new();
    for m in all.into_iter().take(MAX_MANIFEST_STATUSES) {
        let size = serde_json::to_vec(&m).map_or(usize::MAX, |v| v.len() + 1);
        if size > room {
            break;
        }
        room -= size;
        kept.push(m);
    }
    (kept, reported)
}

fn bound_manifest(m: &mut ManifestStatus) {
    for c in &mut m.conditions {
        c.message = truncate_to(&c.message, MAX_MESSAGE);
    }
    for v in &mut m.status_feedback.values {
        let FieldValue {
            string, json_raw, ..
        } = &mut v.field_value;
        if let Some(text) = string {
            *text = truncate_to(text, MAX_FEEDBACK_STRING);
        }
        if let Some(text) = json_raw {
            *text = truncate_to(text, MAX_JSON_RAW);
        }
    }
}

/// A REST error names Maestro's URL, then reqwest repeats it with the
/// request path as " for url (...)": keep the first, drop the repeats, so a
/// condition message names the URL once.
fn without_repeated_url(message: &str) -> String {
    const MARK: &str = " for url (";
    let Some(scheme_end) = message.find("://") else {
        return message.to_string();
    };
    let first = message[..scheme_end]
        .rfind(|c: char| !c.is_ascii_alphanumeric())
        .map_or(0, |i| i + 1);
    let host_end = message[scheme_end + 3..]
        .find(['/', ' ', ')'])
        .map_or(message.len(), |i| scheme_end + 3 + i);
    let origin = &message[first..host_end];
    let mut out = String::with_capacity(message.len());
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = message[search..].find(MARK) {
        let at = search + found;
        let url_start = at + MARK.len();
        let Some(len) = message[url_start..].find(')') else {
            break;
        };
        let end = url_start + len + 1;
        if url_start > first && message[url_start..].starts_with(origin) {
            out.push_str(&message[done..at]);
            done = end;
        }
        search = end;
    }
    out.push_str(&message[done..]);
    out
}

/// A condition whose status did not change keeps the time it last changed,
/// so an unchanged report writes nothing.
fn keep_transition_time(prev: Option<&MaestroApplyStatus>, c: &mut Condition) {
    if let Some(old) = prev.and_then(|p| p.condition(&c.type_))
        && old.status == c.status
    {
        c.last_transition_time = old.last_transition_time.clone();
    }
}

fn truncate(message: &str) -> String {
    truncate_to(message, MAX_MESSAGE)
}

/// `text` cut to at most `max` bytes (so also `max` characters, what a
/// schema's maxLength counts), a marker saying so at its end.
fn truncate_to(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let marker = format!("...[truncated from {} bytes]", text.len());
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

#[cfg(test)]
mod tests;
