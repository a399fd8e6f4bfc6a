//! maestro-operator against the stack's secured Maestro (tests/stack/secure.sh):
//! gRPC over mTLS with the client certificate the chart mounts, authorized
//! by a SubjectAccessReview on the stack's API server; and a certificate
//! without a grant, which must show on the object rather than in a log.
//!
//! Needs the whole stack and its environment (`make test` provides both).

mod support;

use serde_json::json;
use support::operator::*;

const WEST: &str = "cluster-west-1";

fn pki(file: &str) -> String {
    format!("{}/pki/{file}", env("MAESTRO_SECURE_DIR"))
}

/// A namespace whose operator publishes as the source the stack's grants
/// name, over mTLS as `identity` (a certificate in the stack's pki).
async fn secured(prefix: &str, identity: &str) -> (TestNs, Operator) {
    let mut ns = TestNs::new(prefix).await;
    ns.source = env("MAESTRO_SECURE_SOURCE_ID");
    let (ca, cert, key) = (
        pki("ca.crt"),
        pki(&format!("{identity}.crt")),
        pki(&format!("{identity}.key")),
    );
    let op = Operator::start_via(
        &ns.name,
        &ns.source,
        &env("MAESTRO_MTLS_GRPC_ENDPOINT"),
        &env("MAESTRO_MTLS_HTTP_ENDPOINT"),
        &["--ca-file", &ca, "--cert-file", &cert, "--key-file", &key],
    )
    .await;
    (ns, op)
}

#[tokio::test]
async fn the_operator_delivers_and_deletes_over_mtls() {
    let (ns, _op) = secured("op-mtls", "hyperfleet-client").await;
    let cm = configmap(&ns.name, "cm", json!({"value": "over mTLS"}));
    ns.apply("web", spec(WEST, vec![cm])).await;
    ns.wait_ready("web").await;
    ns.wait_configmap("cm", "delivered by the agent", |cm| cm.is_some())
        .await;

    ns.delete("web").await;
    ns.wait_gone("web").await;
    ns.wait_configmap("cm", "removed by the agent", |cm| cm.is_none())
        .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_certificate_without_a_grant_shows_as_forbidden_on_the_object() {
    let (ns, op) = secured("op-mtls-denied", "stranger-client").await;
    let cm = configmap(&ns.name, "cm", json!({"value": "x"}));
    ns.apply("web", spec(WEST, vec![cm])).await;
    let obj = ns
        .wait_condition("web", "Ready", "False", "Forbidden")
        .await;
    let ready = obj.status.as_ref().and_then(|s| s.condition("Ready"));
    let message = ready.map(|c| c.message.clone()).unwrap_or_default();
    assert!(
        message.contains("unauthorized to publish"),
        "Ready message does not say why: {message}"
    );
    // Other tests publish as the same source: count only this namespace's.
    let ours = ns
        .live_bundles()
        .await
        .into_iter()
        .filter(|b| {
            b.metadata["labels"]["maestro.hyperfleet.io/owner-namespace"] == ns.name.as_str()
        })
        .count();
    assert_eq!(ours, 0, "nothing was published");
    // The operator stays up and healthy: the refusal is the object's
    // problem, not the process's.
    let mut op = op;
    assert!(op.is_running());
    ns.cleanup().await;
}
