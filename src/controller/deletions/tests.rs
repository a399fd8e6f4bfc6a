use super::*;

fn id(n: u128) -> ResourceId {
    ResourceId(uuid::Uuid::from_u128(n))
}

fn key(n: u128) -> ObjectRef<MaestroApply> {
    ObjectRef::new(&format!("o{n}")).within("ns")
}

fn west() -> ConsumerName {
    ConsumerName::new("cluster-west-1").unwrap()
}

fn deletions(limit: usize) -> Deletions {
    Deletions::new(limit, Arc::new(Metrics::new()))
}

#[test]
fn deletions_past_the_limit_wait_in_arrival_order_and_a_confirmation_wakes_the_next() {
    let d = deletions(2);
    assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
    assert_eq!(d.admit(&west(), id(2), &key(2), &[]), Admission::Go);
    let queued = |position| Admission::Queued {
        position,
        unconfirmed: 2,
        limit: 2,
    };
    assert_eq!(d.admit(&west(), id(3), &key(3), &[]), queued(1));
    assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(2));
    // Asking again keeps the place in line.
    assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(2));

    assert_eq!(d.release(&west(), id(1)), vec![key(3)]);
    // The room is the woken one's; the one behind it still waits.
    assert_eq!(
        d.admit(&west(), id(4), &key(4), &[]),
        Admission::Queued {
            position: 2,
            unconfirmed: 1,
            limit: 2
        }
    );
    assert_eq!(d.admit(&west(), id(3), &key(3), &[]), Admission::Go);
    assert_eq!(d.admit(&west(), id(4), &key(4), &[]), queued(1));
}

#[test]
fn an_admitted_deletion_asked_again_goes_without_taking_a_second_place() {
    let d = deletions(1);
    assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
    assert_eq!(d.admit(&west(), id(1), &key(1), &[id(1)]), Admission::Go);
    assert!(matches!(
        d.admit(&west(), id(2), &key(2), &[id(1)]),
        Admission::Queued { unconfirmed: 1, .. }
    ));
}

#[test]
fn bundles_maestro_shows_deleting_count_after_a_restart() {
    let d = deletions(2);
    // A new process: its ledger is empty, Maestro has two deleting.
    let admission = d.admit(&west(), id(3), &key(3), &[id(1), id(2)]);
    assert_eq!(
        admission,
        Admission::Queued {
            position: 1,
            unconfirmed: 2,
            limit: 2
        }
    );
    d.awaiting(&west(), id(1));
    d.awaiting(&west(), id(2));
    assert_eq!(d.release(&west(), id(1)), vec![key(3)]);
    assert_eq!(d.admit(&west(), id(3), &key(3), &[id(2)]), Admission::Go);
}

#[test]
fn consumers_have_separate_limits() {
    let d = deletions(1);
    let east = ConsumerName::new("cluster-east-2").unwrap();
    assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
    assert_eq!(d.admit(&east, id(2), &key(2), &[]), Admission::Go);
}

#[test]
fn no_limit_admits_everything() {
    let d = deletions(0);
    for n in 0..500 {
        assert_eq!(d.admit(&west(), id(n), &key(n), &[]), Admission::Go);
    }
}

#[test]
fn a_released_waiter_leaves_the_line() {
    let d = deletions(1);
    assert_eq!(d.admit(&west(), id(1), &key(1), &[]), Admission::Go);
    assert!(matches!(
        d.admit(&west(), id(2), &key(2), &[]),
        Admission::Queued { .. }
    ));
    // Object 2 was switched to Orphan while waiting.
    assert!(d.release(&west(), id(2)).is_empty());
    assert!(matches!(
        d.admit(&west(), id(3), &key(3), &[]),
        Admission::Queued { position: 1, .. }
    ));
}
