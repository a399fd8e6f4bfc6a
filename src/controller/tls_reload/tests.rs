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
