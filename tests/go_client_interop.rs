//! Our CloudEvents against those of Maestro's own Go ManifestWork client
//! (the `examples/manifestwork` program of the pinned Maestro module, built
//! by the stack scripts): the real server must store what we send exactly as
//! it stores what the Go client sends, and each client must read and update
//! what the other wrote.

mod support;

use std::path::PathBuf;
use std::process::Command;

use maestro_operator::maestro::work_client::{ApplyOutcome, Detail, SPEC_HASH_ANNOTATION};
use maestro_operator::names::WorkName;
use serde_json::{Value, json};
use support::maestro::*;

fn go_client() -> PathBuf {
    let path = std::env::var("MAESTRO_GO_CLIENT").unwrap_or_else(|_| {
        panic!("MAESTRO_GO_CLIENT is not set: run the tests through `make test`, which builds Maestro's Go example client")
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "MAESTRO_GO_CLIENT {} does not exist",
        path.display()
    );
    path
}

fn run_go_client(source: &str, consumer: &str, args: &[&str]) -> String {
    let grpc = grpc_endpoint();
    let grpc = grpc.trim_start_matches("http://").trim_end_matches('/');
    let output = Command::new(go_client())
        .args(args)
        .arg(format!("--source={source}"))
        .arg(format!("--consumer-name={consumer}"))
        .arg(format!("--maestro-server={}", http_endpoint()))
        .arg(format!("--grpc-server={grpc}"))
        .output()
        .expect("run the Go client");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "Go client {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn work_json(consumer: &str, name: &str) -> Value {
    json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "namespace": consumer, "labels": {"app": "interop"}},
        "spec": {
            "workload": {"manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "interop", "namespace": "default"},
                 "data": {"answer": "42", "nested": "{\"a\": [1, 2]}"}},
                {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                 "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}},
                                       "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}
            ]},
            "deleteOption": {"propagationPolicy": "SelectivelyOrphan",
                             "selectivelyOrphans": {"orphaningRules": [
                                 {"group": "", "resource": "configmaps", "namespace": "default", "name": "interop"}]}},
            "manifestConfigs": [{
                "resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": "default", "name": "web"},
                "feedbackRules": [{"type": "WellKnownStatus"},
                                  {"type": "JSONPaths", "jsonPaths": [{"name": "replicas", "path": ".spec.replicas"}]}],
                "updateStrategy": {"type": "ServerSideApply",
                                   "serverSideApply": {"force": true, "fieldManager": "work-agent"}}
            }]
        }
    })
}

/// What the server stored, without the parts that differ by design: the
/// name and the ID derived from it, times, our change-detection annotation
/// and the Go client's per-operation tracing annotation.
fn comparable(bundle: &maestro_operator::maestro::rest::ResourceBundle) -> Value {
    let mut metadata = bundle.metadata.clone();
    for key in ["name", "uid", "creationTimestamp"] {
        metadata.remove(key);
    }
    if let Some(Value::Object(annotations)) = metadata.get_mut("annotations") {
        annotations.remove(SPEC_HASH_ANNOTATION);
        annotations.retain(|key, _| !key.starts_with("logging.open-cluster-management.io/"));
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
    json!({
        "consumer": bundle.consumer_name,
        "version": bundle.version,
        "metadata": metadata,
        "manifests": bundle.manifests,
        "manifest_configs": bundle.manifest_configs,
        "delete_option": bundle.delete_option,
    })
}

#[tokio::test]
async fn server_stores_our_create_exactly_as_the_go_clients() {
    let consumer = fresh_consumer("it-interop").await;
    let source = unique("interop-src");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.json");
    std::fs::write(&file, work_json(consumer.as_str(), "by-go").to_string()).unwrap();
    run_go_client(
        &source,
        consumer.as_str(),
        &["apply", file.to_str().unwrap()],
    );

    let ours = client(&source);
    let mine: maestro_operator::manifestwork::ManifestWork =
        serde_json::from_value(work_json(consumer.as_str(), "by-rust")).unwrap();
    assert_eq!(
        ours.apply(&mine).await.unwrap(),
        ApplyOutcome::Created { version: 1 }
    );

    // The rows as Maestro stores them: what each client wrote, compared.
    let row = async |name: &str| {
        let id = ours.resource_id(&consumer, &WorkName::new(name).unwrap());
        rest().find_resource_bundle(&id).await.unwrap()
    };
    let go_bundle = row("by-go")
        .await
        .expect("the Go client's bundle, found under the ID we compute");
    let rust_bundle = row("by-rust").await.unwrap();
    pretty_assertions::assert_eq!(comparable(&rust_bundle), comparable(&go_bundle));
    assert_eq!(go_bundle.metadata["name"], "by-go");
    assert_eq!(rust_bundle.metadata["name"], "by-rust");
}

#[tokio::test]
async fn each_client_reads_and_updates_what_the_other_wrote() {
    let consumer = fresh_consumer("it-interop-rw").await;
    let source = unique("interop-rw");
    let ours = client(&source);

    // Go creates; we read it back and update it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("work.json");
    std::fs::write(&file, work_json(consumer.as_str(), "shared").to_string()).unwrap();
    run_go_client(
        &source,
        consumer.as_str(),
        &["apply", file.to_str().unwrap()],
    );
    let name = WorkName::new("shared").unwrap();
    let read = ours
        .get(&consumer, &name)
        .await
        .unwrap()
        .expect("Go-created work");
    assert_eq!(read.spec.workload.manifests.len(), 2);
    assert_eq!(read.spec.manifest_configs.len(), 1);

    let mut changed = work_json(consumer.as_str(), "shared");
    changed["spec"]["workload"]["manifests"][0]["data"]["answer"] = json!("43");
    let changed: maestro_operator::manifestwork::ManifestWork =
        serde_json::from_value(changed).unwrap();
    assert_eq!(
        ours.apply(&changed).await.unwrap(),
        ApplyOutcome::Updated { from_version: 1 }
    );

    // The Go client reads our update.
    let printed = run_go_client(&source, consumer.as_str(), &["get", "shared"]);
    assert!(
        printed.contains("43"),
        "Go client output lacks our update:\n{printed}"
    );

    // We create; Go reads and deletes it.
    let mine: maestro_operator::manifestwork::ManifestWork =
        serde_json::from_value(work_json(consumer.as_str(), "ours")).unwrap();
    ours.apply(&mine).await.unwrap();
    let printed = run_go_client(&source, consumer.as_str(), &["get", "ours"]);
    assert!(
        printed.contains("interop"),
        "Go client cannot read our work:\n{printed}"
    );
    run_go_client(&source, consumer.as_str(), &["delete", "ours"]);
    let bundle = ours
        .get_held(&consumer, &WorkName::new("ours").unwrap(), Detail::Summary)
        .await
        .unwrap()
        .expect("soft-deleted bundle");
    assert!(bundle.is_deleting());
}
