use super::*;
use crate::cli::remote::fixtures::{cond, remote};
use serde_json::json;

#[test]
fn a_quorum_tally_counts_consumers_meeting_the_condition_and_names_the_rest() {
    let name = WorkName::new("w").unwrap();
    let selector = ConsumerSelector::parse("env=prod").unwrap();
    let goal = Goal {
        name: &name,
        condition: WorkCondition::Available,
        manifest: None,
        selector: &selector,
        quorum: Quorum::Percent(60),
        required: 2,
        selected: 3,
    };
    let consumer = |n: &str| ConsumerName::new(n).unwrap();
    let found = BTreeMap::from([
        (
            consumer("a"),
            Some(remote(1, 1, json!([cond("Available", "True")]), json!([]))),
        ),
        (
            consumer("b"),
            Some(remote(1, 1, json!([cond("Applied", "False")]), json!([]))),
        ),
        (consumer("c"), None),
    ]);
    let tally = goal.tally(found);
    assert_eq!(tally.met, 1);
    let states: Vec<_> = tally
        .states
        .iter()
        .map(|s| (s.consumer.as_str(), s.status.as_str(), s.condition_met))
        .collect();
    assert_eq!(
        states,
        [
            ("a", "Available", Some(true)),
            ("b", "Failed", Some(false)),
            ("c", "NotFound", Some(false))
        ]
    );
    assert!(
        tally.states[1]
            .message
            .as_deref()
            .unwrap()
            .contains("Applied=False")
    );
    let line = goal.describe(&tally);
    assert!(
        line.contains("1 of 3")
            && line.contains("needs 2")
            && line.contains("b (Failed), c (NotFound)"),
        "{line}"
    );
}

#[test]
fn a_quorum_message_names_at_most_ten_missing_consumers() {
    let name = WorkName::new("w").unwrap();
    let selector = ConsumerSelector::parse("env=prod").unwrap();
    let goal = Goal {
        name: &name,
        condition: WorkCondition::Applied,
        manifest: None,
        selector: &selector,
        quorum: Quorum::Count(1),
        required: 1,
        selected: 12,
    };
    let found = (0..12)
        .map(|i| (ConsumerName::new(format!("c{i:02}")).unwrap(), None))
        .collect();
    let line = goal.describe(&goal.tally(found));
    assert!(line.contains("c09 (NotFound) and 2 more"), "{line}");
    assert!(!line.contains("c10"), "{line}");
}
