use super::*;

#[tokio::test(start_paused = true)]
async fn a_burst_goes_at_once_then_the_rate_applies() {
    let limiter = RateLimiter::new(10.0, 3);
    let start = Instant::now();
    for _ in 0..3 {
        limiter.acquire().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
    for _ in 0..10 {
        limiter.acquire().await;
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1000) && elapsed < Duration::from_millis(1100),
        "ten more at 10/s take a second, took {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn zero_qps_never_waits() {
    let limiter = RateLimiter::new(0.0, 1);
    let start = Instant::now();
    for _ in 0..100 {
        limiter.acquire().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[test]
fn absurdly_small_qps_saturate_at_one_a_day_instead_of_panicking() {
    for qps in [1e-300, f64::MIN_POSITIVE, 5e-324, 1e-9, 1.0 / 86_400.0] {
        assert_eq!(period_of(qps), MAX_PERIOD, "{qps}");
    }
    // The window is period × burst, saturated: no overflow either.
    let limiter = RateLimiter::new(1e-300, u32::MAX);
    assert_eq!(limiter.period, MAX_PERIOD);
    assert_eq!(
        limiter.window,
        MAX_PERIOD.saturating_mul(u32::MAX),
        "a window of centuries, not a panic"
    );
    // A huge burst on a slow rate used to overflow `period * burst`.
    let limiter = RateLimiter::new(1e-10, u32::MAX);
    assert_eq!(limiter.window, MAX_PERIOD * u32::MAX);
}

#[test]
fn huge_and_invalid_qps_disable_limiting() {
    for qps in [f64::INFINITY, 1e300, f64::NAN, -1.0, 0.0] {
        assert_eq!(period_of(qps), Duration::ZERO, "{qps}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_saturated_limiter_still_hands_out_its_burst_and_then_waits() {
    let limiter = RateLimiter::new(1e-300, 2);
    let start = Instant::now();
    limiter.acquire().await;
    limiter.acquire().await;
    assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
    let third = tokio::time::timeout(Duration::from_secs(3600), limiter.acquire()).await;
    assert!(third.is_err(), "the third publish waits for a day");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_u32_max_never_waits_and_never_overflows() {
    let limiter = RateLimiter::new(1e-300, u32::MAX);
    let start = Instant::now();
    for _ in 0..1000 {
        limiter.acquire().await;
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}
