use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;

use super::*;
use crate::controller::applyset::rollout::{Child, Counts, Health, Standing};

fn at(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

fn members(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            consumer: format!("c{i}"),
            group: None,
            child: Some(Child {
                revision: "r2".into(),
                health: Health::Failed {
                    reason: "Stalled: timed out".into(),
                },
            }),
        })
        .collect()
}

fn decision(outcome: Outcome, n: usize) -> Decision {
    Decision {
        moves: Vec::new(),
        outcome,
        counts: Counts {
            total: u32::try_from(n).unwrap(),
            failed: u32::try_from(n).unwrap(),
            updated: u32::try_from(n).unwrap(),
            ..Counts::default()
        },
        standings: vec![Standing::Failed; n],
        max_failures: 0,
        recheck_in: None,
    }
}

fn input<'a>(members: &'a [Member], d: &'a Decision, rolled_back: Option<RolledBack>) -> Input<'a> {
    Input {
        set_name: "web",
        generation: Some(3),
        selector: "env=prod".into(),
        members,
        decision: d,
        update: "r2",
        current: Some("r1"),
        rolled_back,
        now: at(100),
    }
}

fn find<'a>(s: &'a MaestroApplySetStatus, t: &str) -> &'a Condition {
    s.condition(t).unwrap()
}

#[test]
fn a_rolled_back_set_is_stalled_and_names_the_failing_consumers() {
    let m = members(2);
    let d = decision(
        Outcome::RolledBack {
            failed: vec!["c0".into(), "c1".into()],
        },
        2,
    );
    let record = RolledBack {
        revision: "r2".into(),
        to_revision: Some("r1".into()),
        failed_consumers: vec!["c0".into(), "c1".into()],
        time: Some(at(90)),
    };
    let s = compute(None, &input(&m, &d, Some(record)));
    assert_eq!(s.phase.as_deref(), Some("RolledBack"));
    assert_eq!(find(&s, "RolledBack").status, "True");
    assert_eq!(find(&s, "Stalled").status, "True");
    assert_eq!(find(&s, "Ready").status, "False");
    assert_eq!(find(&s, "Reconciling").status, "False");
    let message = &find(&s, "RolledBack").message;
    assert!(
        message.contains("c0, c1") && message.contains("rolled back to revision r1"),
        "{message}"
    );
    assert_eq!(
        s.consumers[0].message.as_deref(),
        Some("Stalled: timed out")
    );
    assert_eq!(s.observed_generation, Some(3));
}

#[test]
fn a_complete_rollout_is_ready_and_not_reconciling() {
    let m = members(1);
    let mut d = decision(Outcome::Complete, 1);
    d.counts = Counts {
        total: 1,
        updated: 1,
        ready: 1,
        available: 1,
        failed: 0,
        progressing: 0,
    };
    let s = compute(None, &input(&m, &d, None));
    assert_eq!(find(&s, "Ready").status, "True");
    assert_eq!(find(&s, "Reconciling").status, "False");
    assert_eq!(find(&s, "Stalled").status, "False");
    assert_eq!(find(&s, "RolledBack").status, "False");
    assert_eq!(s.ready_summary.as_deref(), Some("1/1"));
}

#[test]
fn rows_are_bounded_and_the_rest_only_counted() {
    let m = members(MAX_ROWS + 5);
    let d = decision(Outcome::Progressing { group: None }, MAX_ROWS + 5);
    let s = compute(None, &input(&m, &d, None));
    assert_eq!(s.consumers.len(), MAX_ROWS);
    assert_eq!(s.consumers_omitted, 5);
    assert_eq!(s.total, i32::try_from(MAX_ROWS + 5).unwrap());
}

#[test]
fn transition_times_stay_while_a_condition_keeps_its_status() {
    let m = members(1);
    let d = decision(Outcome::Progressing { group: None }, 1);
    let first = compute(None, &input(&m, &d, None));
    let mut later = input(&m, &d, None);
    later.now = at(500);
    let second = compute(Some(&first), &later);
    assert_eq!(find(&second, "Reconciling").last_transition_time, at(100));
}

#[test]
fn the_metrics_sample_splits_the_selected_consumers_by_standing() {
    let status = MaestroApplySetStatus {
        phase: Some("Progressing".into()),
        total: 10,
        updated: 6,
        progressing: 2,
        available: 3,
        failed: 1,
        ..MaestroApplySetStatus::default()
    };
    let sample = metrics_sample(Some(&status));
    assert_eq!(sample.phase, "Progressing");
    assert_eq!(sample.consumers, [4, 2, 3, 1]);
    assert_eq!(sample.consumers.iter().sum::<i64>(), 10);
    let fresh = metrics_sample(None);
    assert_eq!((fresh.phase.as_str(), fresh.consumers), ("Pending", [0; 4]));
}
