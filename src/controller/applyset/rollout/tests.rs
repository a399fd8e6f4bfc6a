use pretty_assertions::assert_eq;

use super::*;

const NEW: &str = "new";
const OLD: &str = "old";

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

fn strategy(type_: RolloutType) -> Strategy {
    Strategy {
        type_,
        max_concurrency: None,
        max_failures: None,
        times: StrategyTimes {
            min_success: Duration::ZERO,
            progress_deadline: None,
        },
        mandatory_groups: Vec::new(),
        automatic_rollback: true,
    }
}

fn member(consumer: &str, child: Option<(&str, Health)>) -> Member {
    Member {
        consumer: consumer.into(),
        group: None,
        child: child.map(|(revision, health)| Child {
            revision: revision.into(),
            health,
        }),
    }
}

fn grouped(consumer: &str, group: &str, child: Option<(&str, Health)>) -> Member {
    Member {
        group: Some(group.into()),
        ..member(consumer, child)
    }
}

fn ready(at: i64) -> Health {
    Health::Ready { since: t(at) }
}

fn progressing(at: i64) -> Health {
    Health::Progressing { since: t(at) }
}

fn failed() -> Health {
    Health::Failed {
        reason: "Degraded".into(),
    }
}

fn input<'a>(members: &'a [Member], strategy: &'a Strategy) -> Input<'a> {
    Input {
        members,
        strategy,
        update: NEW,
        current: Some(OLD),
        halted: false,
        suspended: false,
        now: t(100),
    }
}

fn moved(d: &Decision) -> Vec<(&str, &str)> {
    d.moves
        .iter()
        .map(|m| (m.consumer.as_str(), m.revision.as_str()))
        .collect()
}

fn old_fleet(names: &[&str]) -> Vec<Member> {
    names
        .iter()
        .map(|n| member(n, Some((OLD, ready(0)))))
        .collect()
}

#[test]
fn percentages_round_up_for_concurrency_and_down_for_failures() {
    let pct = |s: &str| IntOrString::String(s.into());
    assert_eq!(resolve(Some(&pct("25%")), 10, true, 0), 3);
    assert_eq!(resolve(Some(&pct("25%")), 10, false, 0), 2);
    assert_eq!(resolve(Some(&pct("50%")), 4, false, 0), 2);
    assert_eq!(resolve(Some(&pct("1%")), 4, true, 0), 1);
    assert_eq!(resolve(Some(&pct("1%")), 4, false, 0), 0);
    assert_eq!(resolve(Some(&pct("100%")), 7, false, 0), 7);
    assert_eq!(resolve(Some(&IntOrString::Int(3)), 100, true, 0), 3);
    assert_eq!(resolve(None, 100, true, 9), 9);
    // Malformed values (refused by the schema) fall back rather than panic.
    assert_eq!(resolve(Some(&pct("lots")), 4, true, 1), 1);
    assert_eq!(resolve(Some(&IntOrString::Int(-1)), 4, true, 1), 1);
}

#[test]
fn all_moves_every_consumer_at_once() {
    let members = old_fleet(&["a", "b", "c", "d"]);
    let s = strategy(RolloutType::All);
    let d = decide(&input(&members, &s));
    assert_eq!(
        moved(&d),
        vec![("a", NEW), ("b", NEW), ("c", NEW), ("d", NEW)]
    );
    assert_eq!(d.outcome, Outcome::Progressing { group: None });
}

#[test]
fn progressive_keeps_at_most_max_concurrency_in_flight() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::Int(1));
    let mut members = old_fleet(&["d", "c", "b", "a"]);
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![("a", NEW)], "by consumer name");

    members[3].child = Some(Child {
        revision: NEW.into(),
        health: progressing(90),
    });
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![], "a is still in flight");
    assert_eq!(d.counts.progressing, 1);
    assert_eq!(d.counts.updated, 1);

    members[3].child.as_mut().unwrap().health = ready(95);
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![("b", NEW)], "a succeeded, b is next");
    assert_eq!(d.counts.available, 1);
}

#[test]
fn progressive_defaults_to_a_quarter_rounded_up() {
    let s = strategy(RolloutType::Progressive);
    let members = old_fleet(&["a", "b", "c", "d", "e"]);
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![("a", NEW), ("b", NEW)]);
}

#[test]
fn a_percentage_of_concurrency_counts_against_all_consumers() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::String("50%".into()));
    let members = old_fleet(&["a", "b", "c", "d", "e"]);
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![("a", NEW), ("b", NEW), ("c", NEW)]);
}

#[test]
fn ready_counts_as_succeeded_only_after_the_soak_time() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::Int(1));
    s.times.min_success = Duration::from_secs(30);
    let members = vec![
        member("a", Some((NEW, ready(80)))),
        member("b", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![], "a has been Ready for 20s of 30s");
    assert_eq!(d.standings[0], Standing::Soaking);
    assert_eq!(d.recheck_in, Some(Duration::from_secs(10)));

    let mut later = input(&members, &s);
    later.now = t(110);
    let d = decide(&later);
    assert_eq!(moved(&d), vec![("b", NEW)]);
    assert_eq!(d.standings[0], Standing::Succeeded);
}

#[test]
fn past_the_progress_deadline_a_consumer_counts_as_failed() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::Int(1));
    s.max_failures = Some(IntOrString::Int(1));
    s.times.progress_deadline = Some(Duration::from_secs(60));
    let members = vec![
        member("a", Some((NEW, progressing(50)))),
        member("b", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(d.standings[0], Standing::InFlight, "50s of 60s");
    assert_eq!(moved(&d), vec![]);
    assert_eq!(d.recheck_in, Some(Duration::from_secs(11)));

    let mut later = input(&members, &s);
    later.now = t(111);
    let d = decide(&later);
    assert_eq!(d.standings[0], Standing::Failed);
    assert_eq!(d.counts.failed, 1);
    assert_eq!(
        moved(&d),
        vec![("b", NEW)],
        "one failure is tolerated and does not hold a slot"
    );
}

#[test]
fn failures_beyond_max_failures_roll_the_reached_consumers_back() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::Int(2));
    s.max_failures = Some(IntOrString::Int(1));
    let members = vec![
        member("a", Some((NEW, failed()))),
        member("b", Some((NEW, failed()))),
        member("c", Some((NEW, ready(10)))),
        member("d", Some((OLD, ready(0)))),
        member("e", None),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::RolledBack {
            failed: vec!["a".into(), "b".into()]
        }
    );
    assert_eq!(
        moved(&d),
        vec![("a", OLD), ("b", OLD), ("c", OLD), ("e", OLD)],
        "d was never reached and e gets the good revision"
    );
}

#[test]
fn failures_up_to_max_failures_let_the_rollout_go_on() {
    let mut s = strategy(RolloutType::All);
    s.max_failures = Some(IntOrString::String("50%".into()));
    let members = vec![
        member("a", Some((NEW, failed()))),
        member("b", Some((NEW, failed()))),
        member("c", Some((NEW, ready(10)))),
        member("d", Some((NEW, ready(10)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(d.max_failures, 2);
    assert_eq!(d.outcome, Outcome::Complete);
}

#[test]
fn max_failures_defaults_to_zero() {
    let s = strategy(RolloutType::All);
    let members = vec![
        member("a", Some((NEW, failed()))),
        member("b", Some((NEW, ready(10)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::RolledBack {
            failed: vec!["a".into()]
        }
    );
}

#[test]
fn without_automatic_rollback_the_reached_consumers_stay_and_nothing_moves() {
    let mut s = strategy(RolloutType::All);
    s.automatic_rollback = false;
    let members = vec![
        member("a", Some((NEW, failed()))),
        member("b", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert!(matches!(d.outcome, Outcome::RolledBack { .. }));
    assert_eq!(moved(&d), vec![]);
}

#[test]
fn a_first_rollout_that_fails_has_nothing_to_roll_back_to() {
    let s = strategy(RolloutType::All);
    let members = vec![member("a", Some((NEW, failed()))), member("b", None)];
    let mut i = input(&members, &s);
    i.current = None;
    let d = decide(&i);
    assert!(matches!(d.outcome, Outcome::RolledBack { .. }));
    assert_eq!(moved(&d), vec![]);
}

#[test]
fn a_halted_revision_stays_halted_even_once_failures_clear() {
    let s = strategy(RolloutType::Progressive);
    let members = vec![
        member("a", Some((OLD, ready(0)))),
        member("b", Some((OLD, ready(0)))),
    ];
    let mut i = input(&members, &s);
    i.halted = true;
    let d = decide(&i);
    assert!(matches!(d.outcome, Outcome::RolledBack { .. }));
    assert_eq!(moved(&d), vec![], "nobody gets the failed revision again");
}

#[test]
fn complete_once_every_consumer_succeeded_on_the_update_revision() {
    let mut s = strategy(RolloutType::Progressive);
    s.times.min_success = Duration::from_secs(5);
    let members = vec![
        member("a", Some((NEW, ready(10)))),
        member("b", Some((NEW, ready(20)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(d.outcome, Outcome::Complete);
    assert_eq!(d.counts.available, 2);
    assert_eq!(d.counts.ready, 2);
}

#[test]
fn an_empty_selection_is_complete() {
    let s = strategy(RolloutType::Progressive);
    let d = decide(&input(&[], &s));
    assert_eq!(d.outcome, Outcome::Complete);
    assert_eq!(d.counts, Counts::default());
}

#[test]
fn suspended_moves_nothing_but_still_counts() {
    let s = strategy(RolloutType::All);
    let members = vec![member("a", Some((NEW, ready(0)))), member("b", None)];
    let mut i = input(&members, &s);
    i.suspended = true;
    let d = decide(&i);
    assert_eq!(d.outcome, Outcome::Suspended);
    assert_eq!(moved(&d), vec![]);
    assert_eq!(d.counts.total, 2);
    assert_eq!(d.counts.available, 1);
}

#[test]
fn a_new_consumer_gets_the_current_revision_until_its_turn() {
    let mut s = strategy(RolloutType::Progressive);
    s.max_concurrency = Some(IntOrString::Int(1));
    let members = vec![
        member("a", Some((NEW, progressing(90)))),
        member("b", Some((OLD, ready(0)))),
        member("z", None),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(moved(&d), vec![("z", OLD)]);
}

#[test]
fn without_a_rollout_under_way_a_new_consumer_gets_the_update_revision() {
    let s = strategy(RolloutType::Progressive);
    let members = vec![member("a", Some((NEW, ready(0)))), member("b", None)];
    let mut i = input(&members, &s);
    i.current = Some(NEW);
    let d = decide(&i);
    assert_eq!(moved(&d), vec![("b", NEW)]);
}

#[test]
fn mandatory_groups_go_first_in_their_order_and_must_all_succeed() {
    let mut s = strategy(RolloutType::ProgressivePerGroup);
    s.mandatory_groups = vec!["canary".into(), "eu".into()];
    let mut members = vec![
        grouped("a", "us", Some((OLD, ready(0)))),
        grouped("b", "eu", Some((OLD, ready(0)))),
        grouped("c", "canary", Some((OLD, ready(0)))),
        grouped("d", "canary", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::Progressing {
            group: Some("canary".into())
        }
    );
    // The default 25% of a two-member group rounds up to one.
    assert_eq!(moved(&d), vec![("c", NEW)]);

    members[2].child = Some(Child {
        revision: NEW.into(),
        health: ready(50),
    });
    members[3].child = Some(Child {
        revision: NEW.into(),
        health: ready(50),
    });
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::Progressing {
            group: Some("eu".into())
        }
    );
    assert_eq!(moved(&d), vec![("b", NEW)]);
}

#[test]
fn a_failure_in_a_mandatory_group_stops_the_rollout_whatever_max_failures_says() {
    let mut s = strategy(RolloutType::ProgressivePerGroup);
    s.mandatory_groups = vec!["canary".into()];
    s.max_failures = Some(IntOrString::String("100%".into()));
    let members = vec![
        grouped("a", "canary", Some((NEW, failed()))),
        grouped("b", "prod", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::RolledBack {
            failed: vec!["a".into()]
        }
    );
    assert_eq!(moved(&d), vec![("a", OLD)]);
}

#[test]
fn per_group_rolls_out_one_whole_group_at_a_time_ungrouped_last() {
    let s = strategy(RolloutType::ProgressivePerGroup);
    let members = vec![
        grouped("a", "west", Some((OLD, ready(0)))),
        grouped("b", "east", Some((OLD, ready(0)))),
        grouped("c", "east", Some((OLD, ready(0)))),
        member("d", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::Progressing {
            group: Some("east".into())
        }
    );
    assert_eq!(moved(&d), vec![("b", NEW), ("c", NEW)]);

    let members = vec![
        grouped("a", "west", Some((NEW, ready(0)))),
        grouped("b", "east", Some((NEW, ready(0)))),
        grouped("c", "east", Some((NEW, ready(0)))),
        member("d", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.outcome,
        Outcome::Progressing {
            group: Some(UNGROUPED.into())
        }
    );
    assert_eq!(moved(&d), vec![("d", NEW)]);
}

#[test]
fn per_group_applies_max_concurrency_within_the_group() {
    let mut s = strategy(RolloutType::ProgressivePerGroup);
    s.max_concurrency = Some(IntOrString::String("50%".into()));
    let members = vec![
        grouped("a", "east", Some((OLD, ready(0)))),
        grouped("b", "east", Some((OLD, ready(0)))),
        grouped("c", "east", Some((OLD, ready(0)))),
        grouped("d", "west", Some((OLD, ready(0)))),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        moved(&d),
        vec![("a", NEW), ("b", NEW)],
        "50% of 3 rounds up"
    );
}

#[test]
fn counts_describe_the_fleet_against_the_update_revision() {
    let s = strategy(RolloutType::Progressive);
    let members = vec![
        member("a", Some((NEW, ready(0)))),
        member("b", Some((NEW, progressing(0)))),
        member("c", Some((OLD, ready(0)))),
        member("d", None),
    ];
    let d = decide(&input(&members, &s));
    assert_eq!(
        d.counts,
        Counts {
            total: 4,
            updated: 2,
            ready: 2,
            available: 1,
            failed: 0,
            progressing: 1,
        }
    );
}
