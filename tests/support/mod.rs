//! Shared set-up of the integration tests: they run against the real local
//! stack (`make stack-up`), whose endpoints `tests/stack/stack.sh env`
//! exports. Unset variables fall back to the stack's default ports.
#![allow(dead_code)]

use std::time::Duration;

use maestro_operator::maestro::config::MaestroConfig;
use maestro_operator::maestro::rest::RestClient;
use maestro_operator::maestro::work_client::WorkClient;
use maestro_operator::manifestwork::ManifestWork;
use maestro_operator::names::{ConsumerName, SourceId};
use serde_json::{Value, json};

mod out;
#[allow(unused_imports)] // Only the CLI tests use it.
pub use out::Out;

pub fn http_endpoint() -> String {
    std::env::var("MAESTRO_HTTP_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:18000".into())
}

pub fn grpc_endpoint() -> String {
    std::env::var("MAESTRO_GRPC_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:18090".into())
}

/// A name no other test run uses, so tests need no clean slate.
pub fn unique(prefix: &str) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &tag[..10])
}

pub fn config(source: &str) -> MaestroConfig {
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

pub fn configmap(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    })
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
