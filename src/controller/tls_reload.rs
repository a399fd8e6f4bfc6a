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
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::maestro::work_client::WorkClient;
    use crate::names::SourceId;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rest/tls");

    async fn wait_for(what: &str, check: impl Fn() -> bool) {
        for _ in 0..100 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what} did not happen");
    }

    #[tokio::test]
    async fn a_rotated_ca_rebuilds_the_client_and_a_broken_one_keeps_the_old() {
        crate::maestro::config::ensure_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::copy(format!("{FIXTURES}/ca.pem"), &ca).unwrap();
        let mut config = MaestroConfig::new(
            "127.0.0.1:1",
            "http://127.0.0.1:2",
            SourceId::new("test").unwrap(),
        )
        .unwrap();
        config.tls.ca_file = Some(ca.clone());
        let handle = MaestroHandle::new(WorkClient::new(&config).unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reload_on_change(
            config,
            handle.clone(),
            Duration::from_millis(20),
            shutdown.clone(),
        ));

        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(handle.reloads(), 0, "unchanged files rebuild nothing");

        // A half-written rotation fails to load: the working client stays.
        std::fs::write(&ca, "not a certificate").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(handle.reloads(), 0);

        // The rotation completes: a new client.
        let mut rotated = std::fs::read(format!("{FIXTURES}/ca.pem")).unwrap();
        rotated.extend(std::fs::read(format!("{FIXTURES}/server.pem")).unwrap());
        std::fs::write(&ca, rotated).unwrap();
        wait_for("a reload", || handle.reloads() == 1).await;

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("stops on shutdown")
            .unwrap();
    }
}
