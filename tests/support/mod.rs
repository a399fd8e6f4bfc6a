//! Set-up shared by the integration tests. They run against the real local
//! stack (`make stack-up`), whose endpoints and credentials
//! `tests/stack/stack.sh env` exports; `make test` does both.
//!
//! [`maestro`] serves tests that talk to Maestro alone; [`operator`] runs
//! the operator binary against the stack's kube-apiserver. Without the
//! stack's environment a test binary stops at its first test with one
//! message saying how to start it, instead of a wall of connection errors.
#![allow(dead_code)]

pub mod maestro;
pub mod operator;
pub mod out;
pub mod proxy;
pub mod round_robin;

/// A variable `tests/stack/stack.sh env` exports. Unset means the tests
/// run outside the stack's environment: every stack test in this binary
/// would fail the same way, so the binary exits once, saying why.
pub fn stack_var(name: &str) -> String {
    static SAID: std::sync::Once = std::sync::Once::new();
    std::env::var(name).unwrap_or_else(|_| {
        SAID.call_once(|| not_up(name));
        std::process::exit(2)
    })
}

/// Straight to stderr: the test harness captures `eprintln!` and would
/// drop it when the process exits.
fn not_up(name: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n{name} is not set: these tests run against the local stack.\n\
         Run `make test`, or `make stack-up` then \
         `eval \"$(bash tests/stack/stack.sh env)\"` and cargo test again.\n"
    );
}

pub fn http_endpoint() -> String {
    stack_var("MAESTRO_HTTP_ENDPOINT")
}

pub fn grpc_endpoint() -> String {
    stack_var("MAESTRO_GRPC_ENDPOINT")
}

pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// A name no other test run uses, so tests need no clean slate.
pub fn unique(prefix: &str) -> String {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &tag[..10])
}

/// `kubectl` arguments printing the `data.value` of the ConfigMap `name`
/// in `default`, where the tests' works put their ConfigMaps.
pub fn configmap_value_args(name: &str) -> [&str; 7] {
    [
        "get",
        "configmap",
        "-n",
        "default",
        name,
        "-o",
        "jsonpath={.data.value}",
    ]
}

/// A ConfigMap manifest in `namespace`.
pub fn configmap_in(namespace: &str, name: &str, data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    })
}
