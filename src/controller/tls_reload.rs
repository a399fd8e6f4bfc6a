//! Certificate rotation without a restart: the TLS files are checked
//! periodically and the Maestro client is rebuilt when they change.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use tracing::{info, warn};

use super::MaestroHandle;
use crate::maestro::config::MaestroConfig;
use tokio_util::sync::CancellationToken;

/// Rebuilds the Maestro client when a TLS file changes on disk. Polling
/// rather than inotify: Kubernetes updates mounted Secrets by swapping a
/// symlink, which file watches easily miss.
pub async fn reload_on_change(
    config: MaestroConfig,
    maestro: MaestroHandle,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    let files: Vec<_> = [
        &config.tls.ca_file,
        &config.tls.cert_file,
        &config.tls.key_file,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    if files.is_empty() {
        return;
    }
    let fingerprint = || {
        let mut hasher = DefaultHasher::new();
        for f in &files {
            std::fs::read(f).ok().hash(&mut hasher);
        }
        hasher.finish()
    };
    let mut last = fingerprint();
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let now = fingerprint();
        if now == last {
            continue;
        }
        match maestro.reload(&config) {
            Ok(()) => {
                info!("TLS files changed; Maestro connections rebuilt");
                last = now;
            }
            // A half-written rotation (new cert, old key): try again on the
            // next tick, keep the working client meanwhile.
            Err(e) => {
                warn!(error = %e, "TLS files changed but cannot be loaded; keeping the previous ones")
            }
        }
    }
}

#[cfg(test)]
mod tests;
