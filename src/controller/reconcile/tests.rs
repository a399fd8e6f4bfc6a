use super::*;

mod offline;

#[test]
fn raised_intervals_are_a_condition_announced_once_and_removed_when_gone() {
    let raised = vec!["spec.pollInterval 1s is below the operator's minimum".to_string()];
    let mut first = MaestroApplyStatus::default();
    assert!(note_raised_intervals(&mut first, None, &raised), "new");
    let c = first.condition(CONDITION_INTERVALS_RAISED).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", REASON_INTERVALS_RAISED)
    );

    let mut again = MaestroApplyStatus::default();
    assert!(
        !note_raised_intervals(&mut again, Some(&first), &raised),
        "not new"
    );
    assert_eq!(
        again
            .condition(CONDITION_INTERVALS_RAISED)
            .unwrap()
            .last_transition_time,
        c.last_transition_time
    );

    let mut fixed = again.clone();
    assert!(!note_raised_intervals(&mut fixed, Some(&again), &[]));
    assert!(fixed.condition(CONDITION_INTERVALS_RAISED).is_none());
}

#[test]
fn a_publish_records_its_digest_and_a_claim_forgets_it() {
    let mut s = MaestroApplyStatus {
        published_spec_hash: Some("h1".into()),
        ..Default::default()
    };
    record_publish(&mut s, &Outcome::Published, || "h2".into());
    assert_eq!(s.published_spec_hash.as_deref(), Some("h2"));
    record_publish(&mut s, &Outcome::InSync, || "h3".into());
    assert_eq!(s.published_spec_hash.as_deref(), Some("h3"));
    // A failed publish or reported drift publishes nothing: what was
    // published stays the measure of drift.
    let failed = Outcome::Failed {
        reason: "MaestroUnavailable".into(),
        message: "down".into(),
        terminal: false,
    };
    for outcome in [
        failed,
        Outcome::Drifted {
            what: "spec".into(),
        },
        Outcome::Suspended,
    ] {
        record_publish(&mut s, &outcome, || "other".into());
        assert_eq!(s.published_spec_hash.as_deref(), Some("h3"), "{outcome:?}");
    }
    record_publish(
        &mut s,
        &Outcome::Claimed {
            owner: "MaestroApply a/b (uid u)".into(),
        },
        || "h4".into(),
    );
    assert_eq!(s.published_spec_hash, None, "another holder's now");
}

#[test]
fn reported_drift_is_a_condition_kept_while_it_lasts_and_removed_after() {
    let drifted = Outcome::Drifted {
        what: "its spec changed".into(),
    };
    let mut first = MaestroApplyStatus::default();
    note_drift(&mut first, None, &drifted);
    let c = first.condition(CONDITION_DRIFTED).unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        ("True", "DriftDetected", "its spec changed")
    );

    let mut again = MaestroApplyStatus::default();
    note_drift(&mut again, Some(&first), &drifted);
    assert_eq!(again, first, "unchanged: nothing to write");

    let mut fixed = again.clone();
    note_drift(&mut fixed, Some(&again), &Outcome::InSync);
    assert!(fixed.condition(CONDITION_DRIFTED).is_none());
}
