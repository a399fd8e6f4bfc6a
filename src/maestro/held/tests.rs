use super::*;
use std::cmp::Ordering::{Greater, Less};

fn report(observed_version: i64, sequence: Option<u128>) -> AgentReport {
    AgentReport {
        observed_version,
        sequence,
        ..AgentReport::default()
    }
}

#[test]
fn a_report_on_a_newer_version_is_newer_whatever_its_sequence() {
    assert_eq!(
        report(2, Some(1)).compare(&report(1, Some(9))),
        Some(Greater)
    );
    assert_eq!(report(1, None).compare(&report(2, Some(1))), Some(Less));
}

#[test]
fn reports_on_one_version_are_ordered_by_sequence() {
    assert_eq!(
        report(3, Some(10)).compare(&report(3, Some(9))),
        Some(Greater)
    );
    assert_eq!(report(3, Some(9)).compare(&report(3, Some(10))), Some(Less));
}

#[test]
fn reports_on_one_version_without_a_sequence_cannot_be_ordered() {
    assert_eq!(report(3, None).compare(&report(3, Some(9))), None);
    assert_eq!(report(3, Some(9)).compare(&report(3, None)), None);
}

#[test]
fn a_sequence_is_read_as_a_decimal_number_or_not_at_all() {
    assert_eq!(parse_sequence(" 1234567890123 "), Some(1_234_567_890_123));
    assert_eq!(parse_sequence("abc"), None);
    assert_eq!(parse_sequence(""), None);
}

fn applied(generation: Option<i64>) -> Condition {
    Condition {
        type_: CONDITION_APPLIED.into(),
        status: "True".into(),
        reason: "AppliedManifestWorkComplete".into(),
        message: String::new(),
        observed_generation: generation,
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ),
    }
}

#[test]
fn a_report_covers_a_version_once_its_applied_condition_names_it() {
    let mut r = report(2, Some(1));
    r.conditions = vec![applied(Some(2))];
    assert!(r.covers(2));
    assert!(!r.covers(3), "a report on version 2 says nothing of 3");
}

#[test]
fn the_agents_echo_of_a_new_spec_does_not_cover_it() {
    let mut r = report(2, Some(1));
    r.conditions = vec![applied(Some(1))];
    assert!(!r.covers(2));
}

#[test]
fn a_report_without_generations_covers_the_version_it_names() {
    assert!(report(2, None).covers(2));
    let mut r = report(2, None);
    r.conditions = vec![applied(None)];
    assert!(r.covers(2));
}

#[test]
fn the_conditions_signature_changes_with_a_status_not_with_a_message() {
    let with = |status: &str, message: &str| AgentReport {
        conditions: vec![Condition {
            status: status.into(),
            message: message.into(),
            ..applied(Some(1))
        }],
        ..report(1, Some(1))
    };
    let signature = |r: AgentReport| r.conditions_signature();
    assert_eq!(signature(with("True", "a")), signature(with("True", "b")));
    assert_ne!(signature(with("True", "a")), signature(with("False", "a")));
    assert_ne!(
        signature(with("True", "a")),
        AgentReport {
            conditions: vec![applied(Some(2))],
            ..report(1, Some(1))
        }
        .conditions_signature()
    );
}
