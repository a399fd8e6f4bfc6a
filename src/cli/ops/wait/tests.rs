use super::*;
use crate::cli::remote::fixtures::{cond, remote};
use serde_json::json;

fn names() -> (ConsumerName, WorkName) {
    (ConsumerName::new("c").unwrap(), WorkName::new("w").unwrap())
}

#[test]
fn a_condition_counts_only_for_the_current_version() {
    let (c, n) = names();
    let applied = json!([cond("Applied", "True")]);
    let fresh = remote(2, 2, applied.clone(), json!([]));
    let stale = remote(1, 2, applied, json!([]));
    assert!(is_met(Some(&fresh), WorkCondition::Applied, None, &c, &n).unwrap());
    assert!(!is_met(Some(&stale), WorkCondition::Applied, None, &c, &n).unwrap());
    assert!(!is_met(Some(&fresh), WorkCondition::Available, None, &c, &n).unwrap());
}

/// The agent answers a new spec before applying it with the new version
/// and the previous generation's conditions: `wait` must not take that
/// for the new spec's.
#[test]
fn the_agents_echo_of_a_new_spec_does_not_meet_a_condition() {
    let (c, n) = names();
    let mut applied = cond("Applied", "True");
    applied["observedGeneration"] = json!(1);
    let available = cond("Available", "True");
    let echo = remote(2, 2, json!([applied.clone(), available.clone()]), json!([]));
    assert!(!is_met(Some(&echo), WorkCondition::Available, None, &c, &n).unwrap());
    applied["observedGeneration"] = json!(2);
    let done = remote(2, 2, json!([applied, available]), json!([]));
    assert!(is_met(Some(&done), WorkCondition::Available, None, &c, &n).unwrap());
}

#[test]
fn deleted_is_met_by_absence_and_missing_works_fail_otherwise() {
    let (c, n) = names();
    assert!(is_met(None, WorkCondition::Deleted, None, &c, &n).unwrap());
    let e = is_met(None, WorkCondition::Applied, None, &c, &n).unwrap_err();
    assert_eq!(e.exit_status().code(), 4);
}

#[test]
fn manifest_conditions_are_read_from_the_manifest_status() {
    let (c, n) = names();
    let r = remote(1, 1, json!([]), json!([cond("Available", "True")]));
    let sel = ManifestSelector::parse("ConfigMap/cm").unwrap();
    assert!(is_met(Some(&r), WorkCondition::Available, Some(&sel), &c, &n).unwrap());
    assert!(!is_met(Some(&r), WorkCondition::Available, None, &c, &n).unwrap());
    let missing = ManifestSelector::parse("other").unwrap();
    let e = is_met(Some(&r), WorkCondition::Available, Some(&missing), &c, &n).unwrap_err();
    assert_eq!(e.exit_status().code(), 4);
    assert!(is_met(Some(&r), WorkCondition::Deleted, Some(&missing), &c, &n).unwrap());
}
