use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_margin_is_a_fifth_of_the_duration_but_at_least_two_seconds() {
    let t = Timings::new(secs(15));
    assert_eq!((t.duration, t.margin), (secs(15), secs(3)));
    assert_eq!(t.period, secs(3), "a quarter of the 12 s window");
    assert_eq!(t.request_timeout, t.period);

    let t = Timings::new(secs(60));
    assert_eq!(t.margin, secs(12));

    let t = Timings::new(secs(6));
    assert_eq!(t.margin, secs(2), "the floor");
    assert_eq!(t.period, secs(1));
}

#[test]
fn short_leases_are_raised_and_keep_half_their_duration() {
    let t = Timings::new(Duration::from_millis(1500));
    assert_eq!(t.duration, secs(3), "raised to the minimum");
    assert_eq!(t.margin, Duration::from_millis(1500), "at most half");
    let t = Timings::new(Duration::from_millis(6900));
    assert_eq!(t.duration, secs(6), "whole seconds, as the Lease stores");
}

#[test]
fn writes_end_a_margin_before_a_standby_could_take_over() {
    let t = Timings::new(secs(15));
    let sent = Instant::now();
    assert_eq!(t.valid_until(sent) - sent, secs(12));
    // The standby starts counting no earlier than `sent` (it sees the
    // record only after the write), so it takes over at `sent + 15 s`
    // at the earliest: three seconds after this replica stopped.
    assert_eq!(sent + t.duration - t.valid_until(sent), t.margin);
}

fn held_by(holder: &str, seconds: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(seconds),
        ..LeaseSpec::default()
    }
}

/// Standby `b`'s verdict on `spec`, `seconds` after it saw the record,
/// with a lease of its own of 6 s.
fn verdict_after(spec: &LeaseSpec, seconds: u64) -> Verdict {
    let since = Instant::now();
    verdict(
        spec,
        "b",
        since,
        since + secs(seconds),
        Timings::new(secs(6)),
    )
}

#[test]
fn a_standby_takes_a_free_lease_or_its_own_at_once() {
    assert_eq!(verdict_after(&LeaseSpec::default(), 0), Verdict::Take);
    assert_eq!(verdict_after(&held_by("", 6), 0), Verdict::Take);
    assert_eq!(verdict_after(&held_by("b", 6), 0), Verdict::Take);
}

#[test]
fn a_standby_waits_the_holders_duration_from_when_it_saw_the_record() {
    let spec = held_by("a", 10);
    assert_eq!(verdict_after(&spec, 9), Verdict::Wait);
    assert_eq!(verdict_after(&spec, 10), Verdict::Take);
    // Without a duration in the record, its own.
    let mut spec = held_by("a", 0);
    spec.lease_duration_seconds = None;
    assert_eq!(verdict_after(&spec, 5), Verdict::Wait);
    assert_eq!(verdict_after(&spec, 6), Verdict::Take);
}

#[test]
fn taking_a_lease_from_another_holder_counts_a_transition() {
    let mut previous = held_by("a", 6);
    previous.lease_transitions = Some(4);
    let taken: LeaseSpec = serde_json::from_value(acquired(&previous, "b", secs(6))).unwrap();
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(taken.lease_transitions, Some(5));
    assert_eq!(taken.lease_duration_seconds, Some(6));
    assert!(taken.acquire_time.is_some() && taken.renew_time.is_some());

    let again: LeaseSpec = serde_json::from_value(acquired(&taken, "b", secs(6))).unwrap();
    assert_eq!(again.lease_transitions, Some(5), "same holder");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_keeps_the_fence_open_and_without_one_it_closes_a_margin_early() {
    let t = Timings::new(secs(6));
    let fence = WriteFence::closed();
    let acquired_at = Instant::now();
    assert!(fence.extend_until(t.valid_until(acquired_at)));
    tokio::time::advance(t.period).await;
    assert!(fence.extend_until(t.valid_until(Instant::now())));
    let renewed_at = Instant::now();
    // No renewal succeeds from here on (the API server is gone).
    tokio::time::advance(secs(4) - Duration::from_millis(1)).await;
    assert!(fence.check().is_ok());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(fence.check().is_err());
    let standby_earliest = renewed_at + t.duration;
    assert_eq!(standby_earliest - Instant::now(), t.margin);
}
