//! A token bucket for publishes to Maestro, so a burst of changes (a
//! restart over thousands of objects, a bulk edit) does not flood the
//! server: each publish waits for its slot instead of failing.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The longest time between two tokens: a `--maestro-qps` below one
/// publish a day (1/86400) is taken as one a day. Slower makes no sense
/// for an operator, and an unbounded `1/qps` overflows `Duration` (a qps of
/// 1e-300 is 1e300 seconds).
pub const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);

pub struct RateLimiter {
    /// Time between two tokens.
    period: Duration,
    /// How far ahead of now the schedule may run: `burst` tokens.
    window: Duration,
    /// When the schedule would next be empty (GCRA's "theoretical arrival
    /// time").
    next_free: Mutex<Instant>,
}

impl RateLimiter {
    /// `qps` publishes per second on average, up to `burst` at once. A `qps`
    /// of zero or less (or not a number) disables limiting; one too large
    /// for a nanosecond period does too, and one below one a day is one a
    /// day ([`MAX_PERIOD`]). Never panics, whatever the flags say.
    pub fn new(qps: f64, burst: u32) -> Self {
        let period = period_of(qps);
        RateLimiter {
            period,
            // Saturates: a huge burst makes a window of centuries, that is
            // no waiting, which is what such a burst asks for.
            window: period.saturating_mul(burst.max(1)),
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// Waits until a publish may go out.
    pub async fn acquire(&self) {
        if self.period.is_zero() {
            return;
        }
        let wait_until = {
            let mut next_free = self.next_free.lock().await;
            reserve(&mut next_free, Instant::now(), self.period, self.window)
        };
        if let Some(at) = wait_until {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// Takes the next token of a schedule (GCRA) that hands one out every
/// `period`, up to `window` ahead of the clock, and returns when it may be
/// used (`None`: now).
pub(super) fn reserve(
    next_free: &mut Instant,
    now: Instant,
    period: Duration,
    window: Duration,
) -> Option<Instant> {
    let start = (*next_free).max(now);
    // The schedule cannot outrun the clock by more than the burst
    // window plus a period, so this only fails with a window of
    // centuries; then the schedule stays where it is (no wait).
    *next_free = start.checked_add(period).unwrap_or(start);
    // Within the burst window the token is available now.
    (*next_free).checked_sub(window).filter(|t| *t > now)
}

/// The time between two tokens for `qps`, saturated to `0..=MAX_PERIOD`.
pub(super) fn period_of(qps: f64) -> Duration {
    if qps.is_nan() || qps <= 0.0 {
        return Duration::ZERO;
    }
    // For qps below 1/MAX_PERIOD, 1/qps may be too large for a Duration
    // (or infinite): saturate instead.
    Duration::try_from_secs_f64(1.0 / qps)
        .unwrap_or(MAX_PERIOD)
        .min(MAX_PERIOD)
}

#[cfg(test)]
mod tests {
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
}
