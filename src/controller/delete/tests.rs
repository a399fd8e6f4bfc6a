use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use super::*;
use crate::controller::poller::PollError;
use crate::controller::target::OWNER_UID_LABEL;
use crate::maestro::held::from_json;

const UID: &str = "6f1c1a52-8b8e-4a0e-9d3f-0c1d2e3f4a5b";

fn bundle(owner_uid: &str, deleting: bool) -> HeldWork {
    let mut b = json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 2,
        "metadata": {"name": "web", "labels": {OWNER_UID_LABEL: owner_uid}},
    });
    if deleting {
        b["deleted_at"] = json!("2025-12-13T13:32:30Z");
    }
    from_json(b).unwrap()
}

/// The step for what the cache holds, or (`direct`) what a direct
/// read found.
fn decide(
    view: &View,
    direct: Option<Option<&HeldWork>>,
    uid: &str,
    published: bool,
) -> DeleteStep {
    decide_delete(match direct {
        Some(read) => Known::Read(read.map(|b| Seen::of(b, uid, published))),
        None => Known::cached(view, uid, published),
    })
}

fn cached(bundle: Option<HeldWork>) -> View {
    View {
        held: bundle.map(Arc::new),
        synced: true,
        error: None,
    }
}

#[test]
fn a_bundle_missing_from_the_cache_is_read_directly_before_letting_go() {
    assert_eq!(decide(&cached(None), None, UID, false), DeleteStep::Confirm);
    assert_eq!(
        decide(&cached(None), Some(None), UID, false),
        DeleteStep::Gone
    );
}

#[test]
fn a_direct_read_that_still_finds_our_bundle_keeps_the_finalizer() {
    let ours = bundle(UID, false);
    assert_eq!(
        decide(&cached(None), Some(Some(&ours)), UID, false),
        DeleteStep::Request,
        "the poller missed it: delete it again"
    );
    let deleting = bundle(UID, true);
    assert_eq!(
        decide(&cached(None), Some(Some(&deleting)), UID, false),
        DeleteStep::AwaitAgent
    );
}

#[test]
fn a_bundle_of_another_owner_is_let_go_untouched() {
    let theirs = bundle("another-uid", false);
    assert_eq!(
        decide(&cached(Some(theirs.clone())), None, UID, false),
        DeleteStep::NotOurs
    );
    assert_eq!(
        decide(&cached(None), Some(Some(&theirs)), UID, false),
        DeleteStep::NotOurs
    );
}

#[test]
fn an_unlabelled_bundle_this_object_published_is_deleted_not_left_behind() {
    let unlabelled = from_json(json!({
        "id": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb", "version": 3,
        "metadata": {"name": "web"},
    }))
    .unwrap();
    assert_eq!(
        decide(&cached(Some(unlabelled.clone())), None, UID, true),
        DeleteStep::Request,
        "rewritten without our labels by another client: still ours"
    );
    assert_eq!(
        decide(&cached(None), Some(Some(&unlabelled)), UID, true),
        DeleteStep::Request
    );
    assert_eq!(
        decide(&cached(Some(unlabelled)), None, UID, false),
        DeleteStep::NotOurs,
        "never published there: another client's"
    );
    // Another object's label outranks our record.
    assert_eq!(
        decide(&cached(Some(bundle("another-uid", false))), None, UID, true),
        DeleteStep::NotOurs
    );
}

#[test]
fn an_unsynced_or_failing_cache_waits() {
    let mut view = cached(None);
    view.synced = false;
    assert_eq!(decide(&view, None, UID, false), DeleteStep::Unreadable);
    let mut view = cached(None);
    view.error = Some(PollError {
        reason: "MaestroUnavailable",
        message: "connection refused".into(),
        since: Utc::now(),
    });
    assert_eq!(decide(&view, None, UID, false), DeleteStep::Unreadable);
}

#[test]
fn our_bundle_in_the_cache_is_deleted_or_awaited() {
    assert_eq!(
        decide(&cached(Some(bundle(UID, false))), None, UID, false),
        DeleteStep::Request
    );
    assert_eq!(
        decide(&cached(Some(bundle(UID, true))), None, UID, false),
        DeleteStep::AwaitAgent
    );
}

fn target() -> Target {
    let spec: crate::controller::crd::MaestroApplySpec = serde_json::from_value(json!({
        "consumer": "cluster-gone",
        "manifestWork": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}}
        ]}},
    }))
    .unwrap();
    let mut obj = MaestroApply::new("web", spec);
    obj.metadata.namespace = Some("team-a".into());
    obj.metadata.uid = Some(UID.into());
    Target::of(&obj, &crate::names::SourceId::new("s").unwrap()).unwrap()
}

#[test]
fn an_unconfirmed_deletion_is_reported_after_five_minutes_without_a_timeout() {
    let t = target();
    let min = |m: u64| Duration::from_secs(60 * m);
    assert_eq!(
        overdue(min(4), None, DeletionTimeoutAction::Wait, &t),
        Overdue::No
    );
    let Overdue::Report { message, stalled } =
        overdue(min(6), None, DeletionTimeoutAction::Wait, &t)
    else {
        panic!("reported after five minutes")
    };
    assert!(!stalled, "no timeout: still progressing");
    assert!(message.contains("consumer cluster-gone"), "{message}");
    assert!(message.contains("deletionPolicy: Orphan"), "{message}");
}

#[test]
fn past_the_deletion_timeout_it_stalls_or_orphans_as_the_spec_says() {
    let t = target();
    let (ten, eleven) = (Duration::from_secs(600), Duration::from_secs(660));
    assert_eq!(
        overdue(
            Duration::from_secs(599),
            Some(ten),
            DeletionTimeoutAction::Orphan,
            &t
        ),
        Overdue::No
    );
    let Overdue::Report { message, stalled } =
        overdue(eleven, Some(ten), DeletionTimeoutAction::Wait, &t)
    else {
        panic!("reported past the timeout")
    };
    assert!(stalled);
    assert!(
        message.contains("cluster-gone") && message.contains("deletionTimeout (10m)"),
        "{message}"
    );
    assert!(matches!(
        overdue(eleven, Some(ten), DeletionTimeoutAction::Orphan, &t),
        Overdue::Orphan { message } if message.contains("removing the finalizer")
    ));
}
