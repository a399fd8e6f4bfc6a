//! A token bucket for publishes to Maestro, so a burst of changes (a
//! restart over thousands of objects, a bulk edit) does not flood the
//! server: each publish waits for its slot instead of failing.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

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
    /// of zero or less disables limiting.
    pub fn new(qps: f64, burst: u32) -> Self {
        let period = if qps > 0.0 {
            Duration::from_secs_f64(1.0 / qps)
        } else {
            Duration::ZERO
        };
        RateLimiter {
            period,
            window: period * burst.max(1),
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
            let now = Instant::now();
            let start = (*next_free).max(now);
            *next_free = start + self.period;
            // Within the burst window the token is available now.
            (*next_free).checked_sub(self.window).filter(|t| *t > now)
        };
        if let Some(at) = wait_until {
            tokio::time::sleep_until(at).await;
        }
    }
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
}
