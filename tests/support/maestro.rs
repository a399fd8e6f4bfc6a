//! Set-up of the tests that talk to Maestro alone: clients under a source
//! of the test's choosing, and consumers no agent serves.

use std::time::Duration;

use maestro_operator::maestro::config::{MaestroConfig, ensure_crypto_provider};
use maestro_operator::maestro::rest::RestClient;
use maestro_operator::maestro::work_client::WorkClient;
use maestro_operator::manifestwork::ManifestWork;
use maestro_operator::names::{ConsumerName, SourceId};
use serde_json::{Value, json};

#[allow(unused_imports)] // Each test binary uses its share.
pub use super::out::Out;
#[allow(unused_imports)] // Each test binary uses its share.
pub use super::{grpc_endpoint, http_endpoint, unique};

pub fn config(source: &str) -> MaestroConfig {
    ensure_crypto_provider();
    let mut config = MaestroConfig::new(
        &grpc_endpoint(),
        &http_endpoint(),
        SourceId::new(source).expect("valid source id"),
    )
    .expect("valid endpoints");
    config.request_timeout = Duration::from_secs(20);
    config
}

pub fn client(source: &str) -> WorkClient {
    WorkClient::new(&config(source)).expect("client")
}

pub fn rest() -> RestClient {
    RestClient::new(&config("integration-tests")).expect("rest client")
}

/// Registers a fresh consumer for one test. No agent serves it, so bundles
/// sent to it stay exactly as Maestro stored them.
pub async fn fresh_consumer(prefix: &str) -> ConsumerName {
    let name = ConsumerName::new(unique(prefix)).expect("valid consumer name");
    rest()
        .create_consumer(&name, &Default::default())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot create consumer {name} at {}: {e}\n\
                 (is the local stack up? run `make stack-up`)",
                http_endpoint()
            )
        });
    name
}

/// A ConfigMap manifest in `default`.
pub fn configmap(name: &str, data: Value) -> Value {
    super::configmap_in("default", name, data)
}

pub fn work(consumer: &str, name: &str, manifests: Vec<Value>) -> ManifestWork {
    serde_json::from_value(json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "namespace": consumer},
        "spec": {"workload": {"manifests": manifests}},
    }))
    .expect("valid work")
}
