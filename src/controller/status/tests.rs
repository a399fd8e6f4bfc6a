use std::sync::Arc;

use chrono::Utc;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::controller::poller::PollError;

const T0: i64 = 1_765_000_000;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(T0 + second).unwrap()
}

fn cond(type_: &str, status: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": format!("{type_}Reason"),
           "message": format!("{type_} is {status}"), "observedGeneration": generation,
           "lastTransitionTime": "2025-12-13T13:32:30Z"})
}

/// A bundle at `version` with one ConfigMap; `report` is the agent's
/// (observed version, conditions), if it reported.
fn bundle(version: i64, report: Option<(i64, Vec<Value>)>) -> View {
    let mut b = json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": version,
        "metadata": {"name": "web"},
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}],
    });
    if let Some((observed, conditions)) = report {
        b["status"] = json!({
            "ObservedVersion": observed, "SequenceID": "7", "conditions": conditions,
            "resourceStatus": [{
                "resourceMeta": {"ordinal": 0, "group": "", "version": "v1", "kind": "ConfigMap",
                                 "resource": "configmaps", "name": "c", "namespace": "default"},
                "conditions": [cond("Applied", "True", observed)],
                "statusFeedback": {"values": [{"name": "replicas", "fieldValue": {"type": "Integer", "integer": 3}}]},
            }],
        });
    }
    View {
        held: Some(Arc::new(crate::maestro::held::from_json(b).unwrap())),
        synced: true,
        error: None,
    }
}

fn input<'a>(view: &'a View, outcome: &'a Outcome, now: Timestamp) -> Input<'a> {
    Input {
        generation: Some(2),
        consumer: "cluster-west-1",
        work_name: "web",
        resource_id: "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
        wait_for: WaitFor::Available,
        timeout: Duration::from_secs(600),
        view,
        outcome,
        requested_at: None,
        now,
    }
}

fn get<'a>(s: &'a MaestroApplyStatus, type_: &str) -> Option<&'a Condition> {
    s.condition(type_)
}

fn summary(s: &MaestroApplyStatus) -> (String, String, Option<Phase>) {
    let ready = get(s, CONDITION_READY).unwrap();
    (ready.status.clone(), ready.reason.clone(), s.phase)
}

/// The summary of an object waiting for the agent.
fn progressing() -> (String, String, Option<Phase>) {
    (
        "False".into(),
        "Progressing".into(),
        Some(Phase::Progressing),
    )
}

#[test]
fn ready_when_the_agent_reports_available_for_the_current_version() {
    let view = bundle(
        3,
        Some((
            3,
            vec![cond("Applied", "True", 3), cond("Available", "True", 3)],
        )),
    );
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(
        summary(&s),
        ("True".into(), "Available".into(), Some(Phase::Available))
    );
    assert!(get(&s, CONDITION_RECONCILING).is_none() && get(&s, CONDITION_STALLED).is_none());
    assert_eq!(get(&s, "Available").unwrap().reason, "AvailableReason");
    assert_eq!(get(&s, "Available").unwrap().observed_generation, Some(2));
    assert_eq!((s.bundle_version, s.applied_version), (Some(3), Some(3)));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(s.work_name.as_deref(), Some("web"));
    let m = &s.manifests[0];
    assert_eq!(
        (m.resource.kind.as_str(), m.resource.name.as_str()),
        ("ConfigMap", "c")
    );
    assert_eq!(m.status_feedback.values[0].field_value.integer, Some(3));
}

#[test]
fn a_report_on_an_older_version_is_not_ready_and_mirrors_as_unknown() {
    let view = bundle(4, Some((3, vec![cond("Available", "True", 3)])));
    let s = compute(None, &input(&view, &Outcome::Published, at(0)));
    assert_eq!(summary(&s), progressing());
    let available = get(&s, "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_str()),
        ("Unknown", "AwaitingAgent")
    );
    assert!(
        available.message.contains("bundle version 4"),
        "{}",
        available.message
    );
    let reconciling = get(&s, CONDITION_RECONCILING).unwrap();
    assert!(
        reconciling
            .message
            .contains("last reported on bundle version 3"),
        "{}",
        reconciling.message
    );
}

/// Available as the pinned agent first writes it: without a generation.
fn available_naming_no_generation() -> Value {
    let mut available = cond("Available", "True", 0);
    available
        .as_object_mut()
        .unwrap()
        .remove("observedGeneration");
    available
}

/// The agent's answer to a new spec before it applies it: the new version,
/// the previous generation's Applied, and an Available naming no
/// generation (as the pinned agent writes it).
#[test]
fn the_agents_echo_of_a_new_spec_before_applying_it_is_not_ready() {
    let available = available_naming_no_generation();
    let view = bundle(2, Some((2, vec![cond("Applied", "True", 1), available])));
    let s = compute(None, &input(&view, &Outcome::Published, at(0)));
    assert_eq!(summary(&s), progressing());
    for type_ in ["Applied", "Available"] {
        let c = get(&s, type_).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "AwaitingAgent"),
            "{type_}"
        );
    }
    let reconciling = get(&s, CONDITION_RECONCILING).unwrap();
    assert!(
        reconciling
            .message
            .contains("has received bundle version 2 and not applied it yet"),
        "{}",
        reconciling.message
    );

    // Once Applied names the new generation, the same Available counts.
    let available = available_naming_no_generation();
    let view = bundle(2, Some((2, vec![cond("Applied", "True", 2), available])));
    let s = compute(None, &input(&view, &Outcome::InSync, at(1)));
    assert_eq!(
        summary(&s),
        ("True".into(), "Available".into(), Some(Phase::Available))
    );
}

#[test]
fn applied_is_enough_when_wait_for_is_applied() {
    let view = bundle(
        1,
        Some((
            1,
            vec![cond("Applied", "True", 1), cond("Available", "False", 1)],
        )),
    );
    let outcome = Outcome::InSync;
    let mut i = input(&view, &outcome, at(0));
    assert_eq!(summary(&compute(None, &i)).0, "False");
    i.wait_for = WaitFor::Applied;
    assert_eq!(
        summary(&compute(None, &i)),
        ("True".into(), "Applied".into(), Some(Phase::Applied))
    );
}

#[test]
fn past_the_timeout_it_is_stalled_and_still_reports_progress() {
    let view = bundle(
        1,
        Some((
            1,
            vec![cond("Applied", "True", 1), cond("Available", "False", 1)],
        )),
    );
    let published = compute(None, &input(&view, &Outcome::Published, at(0)));
    assert_eq!(published.last_publish_time, Some(Time(at(0))));
    let before = compute(Some(&published), &input(&view, &Outcome::InSync, at(599)));
    assert_eq!(summary(&before).1, "Progressing");
    assert!(get(&before, CONDITION_RECONCILING).is_some());

    let after = compute(Some(&before), &input(&view, &Outcome::InSync, at(601)));
    assert_eq!(
        summary(&after),
        ("False".into(), "TimedOut".into(), Some(Phase::Stalled))
    );
    let stalled = get(&after, CONDITION_STALLED).unwrap();
    assert!(
        stalled.message.contains("not Available within 10m")
            && stalled.message.contains("Available is False"),
        "{}",
        stalled.message
    );
    assert!(get(&after, CONDITION_RECONCILING).is_none());

    // It may still succeed.
    let ok = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let later = compute(Some(&after), &input(&ok, &Outcome::InSync, at(900)));
    assert_eq!(summary(&later).0, "True");
    assert!(get(&later, CONDITION_STALLED).is_none());
}

#[test]
fn a_publish_whose_status_write_was_lost_does_not_time_out_at_once() {
    // Version 1 was published long ago and recorded.
    let old = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let recorded = compute(None, &input(&old, &Outcome::Published, at(0)));
    // Version 2 was published an hour later, but that status write was
    // lost; a restarted operator finds the bundle already at version 2.
    let fresh = bundle(2, Some((1, vec![cond("Available", "True", 1)])));
    let after_restart = compute(Some(&recorded), &input(&fresh, &Outcome::InSync, at(3600)));
    assert_eq!(after_restart.last_publish_time, Some(Time(at(3600))));
    assert_eq!(summary(&after_restart).1, "Progressing", "not TimedOut");
    // And it times out, once, a timeout after the version was seen.
    let later = compute(
        Some(&after_restart),
        &input(&fresh, &Outcome::InSync, at(3600 + 601)),
    );
    assert_eq!(summary(&later).1, "TimedOut");
}

#[test]
fn an_unchanged_report_gives_an_identical_status_later() {
    let view = bundle(3, Some((3, vec![cond("Available", "True", 3)])));
    let first = compute(None, &input(&view, &Outcome::Published, at(0)));
    let second = compute(Some(&first), &input(&view, &Outcome::InSync, at(3600)));
    assert_eq!(first, second, "nothing to write an hour later");
}

#[test]
fn last_status_change_time_follows_the_agent_report_only() {
    let pending = bundle(1, None);
    let s0 = compute(None, &input(&pending, &Outcome::Published, at(0)));
    assert_eq!(s0.last_status_change_time, None);
    assert_eq!(
        summary(&s0),
        ("False".into(), "Progressing".into(), Some(Phase::Pending))
    );

    let applied = bundle(1, Some((1, vec![cond("Applied", "True", 1)])));
    let s1 = compute(Some(&s0), &input(&applied, &Outcome::InSync, at(5)));
    assert_eq!(s1.last_status_change_time, Some(Time(at(5))));
    let s2 = compute(Some(&s1), &input(&applied, &Outcome::InSync, at(10)));
    assert_eq!(s2.last_status_change_time, Some(Time(at(5))));
    let available = bundle(
        1,
        Some((
            1,
            vec![cond("Applied", "True", 1), cond("Available", "True", 1)],
        )),
    );
    let s3 = compute(Some(&s2), &input(&available, &Outcome::InSync, at(15)));
    assert_eq!(s3.last_status_change_time, Some(Time(at(15))));
    assert_eq!(
        get(&s3, CONDITION_READY).unwrap().last_transition_time,
        Time(at(15))
    );
}

#[test]
fn an_unreachable_maestro_makes_ready_unknown_and_keeps_the_last_report() {
    let mut view = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let ready = compute(None, &input(&view, &Outcome::InSync, at(0)));
    view.error = Some(PollError {
        reason: "MaestroUnavailable",
        message: "Maestro unavailable: connection refused".into(),
        since: Utc::now(),
    });
    let s = compute(Some(&ready), &input(&view, &Outcome::InSync, at(30)));
    assert_eq!(
        summary(&s),
        (
            "Unknown".into(),
            "MaestroUnavailable".into(),
            Some(Phase::Available)
        ),
        "unknown is not failed: the last known phase stays"
    );
    assert!(
        get(&s, CONDITION_READY)
            .unwrap()
            .message
            .contains("connection refused")
    );
    assert_eq!(get(&s, "Available").unwrap().status, "True");
    assert_eq!(s.manifests, ready.manifests);
}

#[test]
fn suspended_says_so_and_keeps_reporting() {
    let view = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let s = compute(None, &input(&view, &Outcome::Suspended, at(0)));
    assert_eq!(
        summary(&s),
        ("False".into(), "Suspended".into(), Some(Phase::Suspended))
    );
    assert!(get(&s, CONDITION_RECONCILING).is_none() && get(&s, CONDITION_STALLED).is_none());
    assert_eq!(get(&s, "Available").unwrap().status, "True");
}

#[test]
fn a_work_claimed_by_another_object_names_it_and_stalls() {
    let view = bundle(1, None);
    let outcome = Outcome::Claimed {
        owner: "MaestroApply team-a/first (uid 1234)".into(),
    };
    let s = compute(None, &input(&view, &outcome, at(0)));
    assert_eq!(
        summary(&s),
        ("False".into(), "WorkClaimed".into(), Some(Phase::Stalled))
    );
    let stalled = get(&s, CONDITION_STALLED).unwrap();
    assert!(
        stalled.message.contains("MaestroApply team-a/first"),
        "{}",
        stalled.message
    );
}

#[test]
fn reported_drift_is_not_ready_and_stalls_naming_what_changed() {
    // The agent reports the tampered bundle available: Ready must still
    // not claim the declared spec is delivered.
    let view = bundle(
        4,
        Some((
            4,
            vec![cond("Applied", "True", 4), cond("Available", "True", 4)],
        )),
    );
    let outcome = Outcome::Drifted {
        what: "spec and labels changed since this object published it".into(),
    };
    let s = compute(None, &input(&view, &outcome, at(0)));
    assert_eq!(
        summary(&s),
        (
            "False".into(),
            REASON_DRIFT_DETECTED.into(),
            Some(Phase::Stalled)
        )
    );
    let ready = get(&s, CONDITION_READY).unwrap();
    assert!(
        ready.message.contains("spec and labels changed") && ready.message.contains("driftPolicy"),
        "{}",
        ready.message
    );
    assert!(get(&s, CONDITION_STALLED).is_some());
    assert_eq!(
        get(&s, "Available").unwrap().status,
        "True",
        "mirrored as is"
    );
}

#[test]
fn the_published_digest_is_kept_for_the_same_bundle_only() {
    let view = bundle(1, None);
    let prev = MaestroApplyStatus {
        resource_bundle_id: Some("55c61e54-a3f6-563d-9fec-b1fe297bdfdb".into()),
        published_spec_hash: Some("h1".into()),
        ..Default::default()
    };
    let s = compute(Some(&prev), &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(s.published_spec_hash.as_deref(), Some("h1"));

    // Another resource ID (the source ID changed): nothing was published
    // there.
    let moved = MaestroApplyStatus {
        resource_bundle_id: Some("0d9b6f2e-1c1a-5b8e-9d3f-0c1d2e3f4a5b".into()),
        ..prev
    };
    let s = compute(Some(&moved), &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(s.published_spec_hash, None);
}

#[test]
fn failures_are_stalled_when_terminal_and_reconciling_otherwise() {
    let view = View::default();
    let terminal = Outcome::Failed {
        reason: "UnknownConsumer".into(),
        message: "consumer \"nope\" is not registered in Maestro".into(),
        terminal: true,
    };
    let s = compute(None, &input(&view, &terminal, at(0)));
    assert_eq!(
        summary(&s),
        (
            "False".into(),
            "UnknownConsumer".into(),
            Some(Phase::Stalled)
        )
    );
    assert!(
        get(&s, CONDITION_STALLED)
            .unwrap()
            .message
            .contains("not registered")
    );
    let transient = Outcome::Failed {
        reason: "MaestroUnavailable".into(),
        message: "connection refused".into(),
        terminal: false,
    };
    let s = compute(None, &input(&view, &transient, at(0)));
    assert_eq!(
        summary(&s),
        (
            "False".into(),
            "MaestroUnavailable".into(),
            Some(Phase::Failed)
        )
    );
    assert!(get(&s, CONDITION_RECONCILING).is_some());
    assert_eq!(s.bundle_version, None);
}

#[test]
fn a_requested_reconcile_is_acknowledged_and_remembered() {
    let view = bundle(1, None);
    let outcome = Outcome::InSync;
    let mut i = input(&view, &outcome, at(0));
    i.requested_at = Some("2025-12-13T13:00:00Z");
    let s = compute(None, &i);
    assert_eq!(
        s.last_handled_reconcile_at.as_deref(),
        Some("2025-12-13T13:00:00Z")
    );
    let again = compute(Some(&s), &input(&view, &outcome, at(10)));
    assert_eq!(
        again.last_handled_reconcile_at.as_deref(),
        Some("2025-12-13T13:00:00Z")
    );
}

#[test]
fn degraded_is_not_ready() {
    let view = bundle(
        1,
        Some((
            1,
            vec![cond("Available", "True", 1), cond("Degraded", "True", 1)],
        )),
    );
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(
        summary(&s),
        ("False".into(), "Degraded".into(), Some(Phase::Degraded))
    );
}

#[test]
fn deleting_overrides_everything_else() {
    let view = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let outcome = Outcome::Deleting {
        message: "waiting for the agent".into(),
    };
    let s = compute(None, &input(&view, &outcome, at(0)));
    assert_eq!(
        summary(&s),
        ("False".into(), "Deleting".into(), Some(Phase::Deleting))
    );
}

#[test]
fn long_agent_messages_are_truncated_to_the_api_limit() {
    let mut c = cond("Available", "False", 1);
    c["message"] = json!("é".repeat(40_000));
    let view = bundle(1, Some((1, vec![c])));
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert!(s.conditions.iter().all(|c| c.message.len() <= MAX_MESSAGE));
}

/// The message a refused REST poll gives, as the poller stores it.
const REFUSED: &str = "Maestro unavailable: cannot connect to Maestro at http://127.0.0.1:9/ \
    (GET /api/maestro/v1/resource-bundles): error sending request for url \
    (http://127.0.0.1:9/api/maestro/v1/resource-bundles?page=1&size=400&orderBy=id): \
    client error (Connect): tcp connect error: Connection refused (os error 111)";

fn outage(view: &mut View) {
    view.error = Some(PollError {
        reason: "MaestroUnavailable",
        message: REFUSED.into(),
        since: Utc::now(),
    });
}

#[test]
fn an_outage_keeps_the_last_known_phase_and_never_claims_failure() {
    let mut progressing = bundle(1, Some((1, vec![cond("Available", "False", 1)])));
    let before = compute(None, &input(&progressing, &Outcome::InSync, at(0)));
    assert_eq!(before.phase, Some(Phase::Progressing));
    outage(&mut progressing);
    let during = compute(
        Some(&before),
        &input(&progressing, &Outcome::InSync, at(30)),
    );
    assert_eq!(
        summary(&during),
        (
            "Unknown".into(),
            "MaestroUnavailable".into(),
            Some(Phase::Progressing)
        )
    );

    // Nothing stored yet (an operator restarted into the outage): the
    // phase comes from the last report the poller kept.
    let mut available = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    outage(&mut available);
    let first = compute(None, &input(&available, &Outcome::InSync, at(0)));
    assert_eq!(summary(&first).2, Some(Phase::Available));

    // Nothing known at all.
    let mut nothing = View::default();
    outage(&mut nothing);
    let first = compute(None, &input(&nothing, &Outcome::InSync, at(0)));
    assert_eq!(
        summary(&first),
        (
            "Unknown".into(),
            "MaestroUnavailable".into(),
            Some(Phase::Pending)
        )
    );
}

#[test]
fn an_outage_message_names_the_maestro_url_once() {
    let mut view = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    outage(&mut view);
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    let message = &get(&s, CONDITION_READY).unwrap().message;
    assert_eq!(message.matches("127.0.0.1:9").count(), 1, "{message}");
    assert!(
        message.contains("cannot connect to Maestro at http://127.0.0.1:9/")
            && message.contains("Connection refused"),
        "{message}"
    );
}

#[test]
fn a_url_named_only_in_the_transport_error_is_kept() {
    let only = "error sending request for url (http://m:8000/api): connection reset";
    assert_eq!(without_repeated_url(only), only);
    let other = "at http://m:8000/ (GET /x): error for url (https://proxy:3128/x): reset";
    assert_eq!(without_repeated_url(other), other);
    assert_eq!(without_repeated_url("no url here"), "no url here");
}

/// The CRD's status schema, as the API server checks a status patch.
fn status_schema_errors(status: &MaestroApplyStatus) -> Vec<String> {
    use kube::CustomResourceExt;
    let crd = serde_json::to_value(crate::controller::crd::MaestroApply::crd()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(schema)
        .unwrap();
    validator
        .iter_errors(&serde_json::to_value(status).unwrap())
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// A bundle at version 1, Available, with the given per-manifest reports.
fn reported(resource_status: Vec<Value>) -> View {
    let mut view = bundle(1, Some((1, vec![cond("Available", "True", 1)])));
    let mut b = (**view.held.as_ref().unwrap()).clone();
    let report = b.report.as_mut().unwrap();
    report.manifests = resource_status
        .into_iter()
        .map(|m| serde_json::from_value(m).unwrap())
        .collect();
    view.held = Some(Arc::new(b));
    view
}

fn manifest_report(ordinal: usize, message: &str, feedback: Vec<Value>) -> Value {
    json!({
        "resourceMeta": {"ordinal": ordinal, "group": "", "version": "v1", "kind": "ConfigMap",
                         "resource": "configmaps", "name": format!("c{ordinal}"), "namespace": "default"},
        "conditions": [{"type": "Applied", "status": "True", "reason": "AppliedManifestComplete",
                        "message": message, "lastTransitionTime": "2025-12-13T13:32:30Z"}],
        "statusFeedback": {"values": feedback},
    })
}

#[test]
fn oversized_feedback_values_are_truncated_with_a_marker_to_fit_the_crd() {
    let raw = format!("[{}]", vec!["\"x\""; 3000].join(","));
    let view = reported(vec![manifest_report(
        0,
        &"m".repeat(100_000),
        vec![
            json!({"name": "raw", "fieldValue": {"type": "JsonRaw", "jsonRaw": raw}}),
            json!({"name": "text", "fieldValue": {"type": "String", "string": "é".repeat(50_000)}}),
            json!({"name": "small", "fieldValue": {"type": "JsonRaw", "jsonRaw": "{\"a\":1}"}}),
        ],
    )]);
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(status_schema_errors(&s), Vec::<String>::new());
    let m = &s.manifests[0];
    let value = |name: &str| {
        &m.status_feedback
            .values
            .iter()
            .find(|v| v.name == name)
            .unwrap()
            .field_value
    };
    let raw_kept = value("raw").json_raw.as_deref().unwrap();
    assert!(raw_kept.len() <= MAX_JSON_RAW, "{}", raw_kept.len());
    assert!(raw_kept.ends_with(&format!("...[truncated from {} bytes]", raw.len())));
    assert!(raw_kept.starts_with("[\"x\",\"x\""));
    let text_kept = value("text").string.as_deref().unwrap();
    assert!(text_kept.len() <= MAX_FEEDBACK_STRING && text_kept.contains("[truncated from"));
    assert_eq!(value("small").json_raw.as_deref(), Some("{\"a\":1}"));
    assert!(m.conditions[0].message.len() <= MAX_MESSAGE);
    assert_eq!(summary(&s).0, "True", "nothing omitted, nothing said");
    assert!(
        !get(&s, CONDITION_READY)
            .unwrap()
            .message
            .contains("omitted")
    );
}

#[test]
fn too_many_manifest_statuses_keep_the_first_and_say_how_many_were_omitted() {
    let reports: Vec<Value> = (0..1500)
        .rev()
        .map(|i| manifest_report(i, "Apply manifest complete", Vec::new()))
        .collect();
    let view = reported(reports);
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(status_schema_errors(&s), Vec::<String>::new());
    assert_eq!(s.manifests.len(), MAX_MANIFEST_STATUSES);
    assert_eq!(s.manifests[0].resource.ordinal, 0, "the first, in order");
    assert_eq!(s.manifests[999].resource.ordinal, 999);
    let ready = get(&s, CONDITION_READY).unwrap();
    assert_eq!(
        ready.status, "True",
        "omitting statuses does not change the verdict"
    );
    assert!(
        ready
            .message
            .contains("lists the first 1000 of 1500 manifest statuses, 500 more omitted"),
        "{}",
        ready.message
    );
}

#[test]
fn manifest_statuses_too_large_together_are_cut_to_the_byte_budget() {
    // 100 statuses of 30 KiB messages and 1 KiB of feedback each: 3 MiB,
    // more than an object may hold.
    let reports: Vec<Value> = (0..100)
        .map(|i| {
            manifest_report(
                i,
                &"m".repeat(30 * 1024),
                vec![json!({"name": "raw", "fieldValue": {"type": "JsonRaw", "jsonRaw": "r".repeat(1024)}})],
            )
        })
        .collect();
    let view = reported(reports);
    let s = compute(None, &input(&view, &Outcome::InSync, at(0)));
    assert_eq!(status_schema_errors(&s), Vec::<String>::new());
    let bytes = serde_json::to_vec(&s.manifests).unwrap().len();
    assert!(bytes <= MAX_MANIFEST_STATUS_BYTES, "{bytes}");
    assert!(s.manifests.len() >= 10 && s.manifests.len() < 100);
    assert!(serde_json::to_vec(&s).unwrap().len() < 1024 * 1024);
    let omitted = 100 - s.manifests.len();
    assert!(
        get(&s, CONDITION_READY)
            .unwrap()
            .message
            .contains(&format!("{omitted} more omitted")),
    );
}
