//! Liveness from the controller's watch: a watch that keeps failing (RBAC
//! revoked, the CRD gone, an API server that refuses every list) leaves
//! the operator alive but reconciling nothing. Past a bound, `/healthz`
//! fails so the kubelet restarts the pod and the failure shows as restarts,
//! not as silence.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::server::Health;
use tokio_util::sync::CancellationToken;

/// When the watch started failing, and the last error.
#[derive(Clone, Default)]
pub struct WatchHealth {
    failing: Arc<Mutex<Option<(Instant, String)>>>,
}

impl WatchHealth {
    /// Records one item of the watch stream.
    pub fn observe<T, E: std::fmt::Display>(&self, item: &Result<T, E>) {
        // The guarded value is a timestamp and a text, never half-written.
        let mut failing = self.failing.lock();
        match item {
            Ok(_) => {
                if let Some((since, _)) = failing.take() {
                    info!(
                        failed_for_s = since.elapsed().as_secs(),
                        "the MaestroApply watch works again"
                    );
                }
            }
            Err(e) => {
                if failing.is_none() {
                    warn!(error = %e, "the MaestroApply watch is failing");
                    *failing = Some((Instant::now(), e.to_string()));
                } else if let Some((_, last)) = failing.as_mut() {
                    *last = e.to_string();
                }
            }
        }
    }

    /// How long the watch has been failing, and the last error.
    pub fn failing_for(&self) -> Option<(Duration, String)> {
        self.failing
            .lock()
            .as_ref()
            .map(|(since, error)| (since.elapsed(), error.clone()))
    }

    /// Marks the process broken once the watch has failed for `limit`.
    pub async fn enforce(self, limit: Duration, health: Health, shutdown: CancellationToken) {
        let every = (limit / 4).clamp(Duration::from_secs(1), Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                () = shutdown.cancelled() => return,
            }
            if let Some((failed_for, error)) = self.failing_for()
                && failed_for >= limit
            {
                let reason = format!(
                    "the MaestroApply watch has been failing for {}s (--watch-failure-limit): {error}",
                    failed_for.as_secs()
                );
                warn!(
                    reason,
                    "liveness fails so the kubelet restarts the operator"
                );
                health.set_broken(&reason);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
