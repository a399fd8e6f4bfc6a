use super::*;

fn assert_within_step(d: Duration, step: Duration) {
    assert!(
        d >= step / 2 && d <= step,
        "{d:?} outside [{:?}, {step:?}]",
        step / 2
    );
}

#[test]
fn backoff_grows_to_the_cap_with_jitter_and_resets() {
    let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
    let delays: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
    for (d, step) in delays.iter().zip([1, 2, 4, 8, 8, 8]) {
        assert_within_step(*d, Duration::from_secs(step));
    }
    b.reset();
    assert!(b.next_delay() <= Duration::from_secs(1));
}

#[test]
fn the_stateless_delay_doubles_per_failure_up_to_the_cap() {
    let (min, max) = (Duration::from_secs(1), Duration::from_secs(8));
    for (failures, step) in [
        (0, 1),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 8),
        (5, 8),
        (u32::MAX, 8),
    ] {
        assert_within_step(delay_after(failures, min, max), Duration::from_secs(step));
    }
}

#[test]
fn a_zero_minimum_still_waits_a_little() {
    let mut b = Backoff::new(Duration::ZERO, Duration::ZERO);
    assert!(b.next_delay() < Duration::from_millis(2));
}
