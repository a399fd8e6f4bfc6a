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
mod tests;
