//! Exponential backoff with jitter, the one used for every retry: each
//! delay is drawn between half and all of the current step, so clients
//! failing together spread out instead of retrying in step.

use std::time::Duration;

use rand::Rng;

/// A delay drawn between half and all of `step`.
pub fn jittered(step: Duration) -> Duration {
    let half = step / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter)
}

/// The delay before retry `failures` (1-based) without keeping state:
/// `min` doubling per failure up to `max`, jittered.
pub fn delay_after(failures: u32, min: Duration, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(20);
    jittered(min.saturating_mul(1 << exponent).min(max))
}

/// Backoff that remembers its step: `min` doubling per delay up to `max`,
/// back to `min` on [`Backoff::reset`].
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            step: min,
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        jittered(step)
    }

    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests;
