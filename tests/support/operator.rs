//! Harness of the operator's end-to-end tests on the real local stack
//! (`bash tests/stack/stack.sh up`, then `eval "$(bash tests/stack/stack.sh
//! env)"`): the kube-apiserver the agents apply to, Maestro, and real
//! agents for cluster-west-1 and cluster-east-2.
//!
//! Each test gets its own namespace and its own operator process (the real
//! binary), watching only that namespace and publishing under a source ID
//! of its own, so tests run in parallel without seeing each other. The
//! operator is killed when the test ends; a failing test prints its log.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Once;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use maestro_operator::controller::crd::MaestroApply;
use maestro_operator::maestro::config::ensure_crypto_provider;
use maestro_operator::maestro::rest::{ListOptions, ResourceBundle, Search};
use maestro_operator::names::SourceId;
use serde_json::{Value, json};

#[allow(unused_imports)] // Each test binary uses its share.
pub use super::proxy::Proxy;
#[allow(unused_imports)] // Each test binary uses its share.
pub use super::round_robin::RoundRobin;
#[allow(unused_imports)] // Each test binary uses its share.
pub use super::{grpc_endpoint, http_endpoint, kubectl_path, stack_var as env, unique};

pub const WEST: &str = "cluster-west-1";
pub const EAST: &str = "cluster-east-2";

/// How long one expected change may take: the agent re-reads feedback only
/// every 10 s and the operator polls every 2 s in these tests.
pub const DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(500);

/// Runs kubectl; returns (success, stdout, stderr).
pub async fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(kubectl_path());
    cmd.args(args)
        .env("KUBECONFIG", env("KUBECONFIG"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).await.unwrap();
        drop(pipe);
    }
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

static CRD: Once = Once::new();

/// Installs (or updates) the CRDs from crds/ and the tenancy admission
/// policies from config/admission, once per test process: every operator
/// test runs under the policies, as a shared cluster would.
pub fn install_crd() {
    CRD.call_once(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds");
        let admission = concat!(env!("CARGO_MANIFEST_DIR"), "/config/admission");
        let run = |args: &[&str]| {
            let out = std::process::Command::new(kubectl_path())
                .args(args)
                .env("KUBECONFIG", env("KUBECONFIG"))
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["apply", "--server-side", "--force-conflicts", "-f", path]);
        run(&[
            "wait",
            "--for=condition=Established",
            "crd/maestroapplies.maestro.hyperfleet.io",
            "crd/maestroapplysets.maestro.hyperfleet.io",
            "--timeout=60s",
        ]);
        run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-k",
            admission,
        ]);
    });
}

pub async fn client() -> kube::Client {
    ensure_crypto_provider();
    kube::Client::try_default()
        .await
        .expect("a Kubernetes client from KUBECONFIG")
}

#[allow(unused_imports)] // Each test binary uses its share.
pub use super::maestro::rest;

/// The owner uid label of a bundle as Maestro stores it.
pub fn owner_uid(bundle: &ResourceBundle) -> Option<String> {
    let labels = bundle.metadata.get("labels")?;
    let uid = labels.get(maestro_operator::controller::target::OWNER_UID_LABEL)?;
    uid.as_str().map(str::to_string)
}

/// Every bundle of `source` (deleting ones included).
pub async fn bundles(source: &str) -> Vec<ResourceBundle> {
    let search = Search::source(&SourceId::new(source).unwrap()).build();
    rest()
        .list_resource_bundles(&ListOptions::search(search))
        .await
        .expect("list bundles")
}

/// The Ready condition's message ("" when there is none).
pub fn ready_message(obj: &MaestroApply) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.condition("Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The agent's feedback `value` (as [`spec`] asks for it) of the manifest
/// at `ordinal`, from the object's status.
pub fn feedback(obj: &MaestroApply, ordinal: i32) -> Option<String> {
    let status = obj.status.as_ref()?;
    let m = status
        .manifests
        .iter()
        .find(|m| m.resource.ordinal == ordinal)?;
    m.status_feedback
        .values
        .iter()
        .find(|v| v.name == "value")?
        .field_value
        .string
        .clone()
}

/// Runs the operator binary with the stack's Maestro endpoints and
/// kubeconfig and `args`, until it exits: for the start-up refusals.
pub async fn operator_exit(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro-operator"))
        .args([
            "--maestro-grpc-endpoint",
            &grpc_endpoint(),
            "--maestro-http-endpoint",
            &http_endpoint(),
        ])
        .args(args)
        .env("KUBECONFIG", env("KUBECONFIG"))
        .output()
        .await
        .expect("the operator runs")
}

/// Registers a consumer no agent serves.
pub async fn fresh_consumer() -> String {
    super::maestro::fresh_consumer("lonely").await.to_string()
}

/// A test's namespace and handles on it.
pub struct TestNs {
    pub name: String,
    pub client: kube::Client,
    pub source: String,
}

impl TestNs {
    pub async fn new(prefix: &str) -> TestNs {
        install_crd();
        let client = client().await;
        let name = unique(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("maestro-operator-e2e".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        TestNs {
            source: format!("op-e2e-{name}"),
            name,
            client,
        }
    }

    pub fn mapply(&self) -> Api<MaestroApply> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    pub fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Operator arguments electing a leader through the Lease `lease` in
    /// this namespace, each term lasting `duration` (e.g. "6s").
    pub fn leader_election<'a>(&'a self, lease: &'a str, duration: &'a str) -> [&'a str; 7] {
        [
            "--leader-elect",
            "--lease-name",
            lease,
            "--lease-namespace",
            &self.name,
            "--lease-duration",
            duration,
        ]
    }

    /// Starts an operator for this namespace and source.
    pub async fn operator(&self, extra: &[&str]) -> Operator {
        Operator::start(&self.name, &self.source, extra).await
    }

    /// Creates (or replaces by server-side apply) a MaestroApply.
    pub async fn apply(&self, name: &str, spec: Value) -> MaestroApply {
        let obj = json!({
            "apiVersion": "maestro.hyperfleet.io/v1alpha1",
            "kind": "MaestroApply",
            "metadata": {"name": name, "namespace": self.name},
            "spec": spec,
        });
        self.mapply()
            .patch(
                name,
                &PatchParams::apply("operator-e2e").force(),
                &Patch::Apply(&obj),
            )
            .await
            .unwrap_or_else(|e| panic!("apply MaestroApply {name}: {e}"))
    }

    /// Applies a MaestroApply and waits until it is Ready at its new
    /// generation.
    pub async fn apply_ready(&self, name: &str, spec: Value) -> MaestroApply {
        self.apply(name, spec).await;
        self.wait_ready(name).await
    }

    pub async fn get(&self, name: &str) -> Option<MaestroApply> {
        self.mapply().get_opt(name).await.expect("get MaestroApply")
    }

    pub async fn delete(&self, name: &str) {
        self.mapply()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete MaestroApply");
    }

    /// Waits until the object satisfies `check`; fails showing its last
    /// state.
    pub async fn wait_until(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&MaestroApply) -> bool,
    ) -> MaestroApply {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let obj = self.get(name).await;
            if let Some(o) = &obj
                && check(o)
            {
                return o.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not {what} within {DEADLINE:?}; last seen:\n{}",
                    serde_norway::to_string(&obj).unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn wait_ready(&self, name: &str) -> MaestroApply {
        self.wait_until(name, "Ready", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.is_ready() && s.observed_generation == o.metadata.generation)
        })
        .await
    }

    pub async fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + DEADLINE;
        while let Some(obj) = self.get(name).await {
            if Instant::now() > deadline {
                panic!(
                    "{name} still exists after {DEADLINE:?}:\n{}",
                    serde_norway::to_string(&obj).unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a condition of the object's status by type, status and
    /// reason.
    pub async fn wait_condition(
        &self,
        name: &str,
        type_: &str,
        status: &str,
        reason: &str,
    ) -> MaestroApply {
        self.wait_until(name, &format!("{type_}={status} ({reason})"), |o| {
            o.status
                .as_ref()
                .and_then(|s| s.condition(type_))
                .is_some_and(|c| c.status == status && c.reason == reason)
        })
        .await
    }

    /// Waits for a ConfigMap in this namespace to satisfy `check` (`None`:
    /// absent).
    pub async fn wait_configmap(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(Option<&ConfigMap>) -> bool,
    ) -> Option<ConfigMap> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let cm = self
                .configmaps()
                .get_opt(name)
                .await
                .expect("get ConfigMap");
            if check(cm.as_ref()) {
                return cm;
            }
            if Instant::now() > deadline {
                panic!("ConfigMap {name} not {what} within {DEADLINE:?}; last seen: {cm:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Bundles of this test's source that are not being deleted.
    pub async fn live_bundles(&self) -> Vec<ResourceBundle> {
        bundles(&self.source)
            .await
            .into_iter()
            .filter(|b| !b.is_deleting())
            .collect()
    }

    /// Deletes every MaestroApply (letting `operator` finish deletions for a
    /// while), then drops finalizers and the namespace.
    pub async fn cleanup(&self) {
        let list = self.mapply().list(&ListParams::default()).await;
        for obj in list.map(|l| l.items).unwrap_or_default() {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let _ = self.mapply().delete(&name, &DeleteParams::default()).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let left = self.mapply().list(&ListParams::default()).await;
            if left.is_ok_and(|l| l.items.is_empty()) {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.drop_finalizers().await;
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::default())
            .await;
    }

    async fn drop_finalizers(&self) {
        let list = self.mapply().list(&ListParams::default()).await;
        for obj in list.map(|l| l.items).unwrap_or_default() {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let _ = self
                .mapply()
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
        }
    }
}

#[allow(unused_imports)] // Each test binary uses its share.
pub use super::configmap_in as configmap;

/// A spec delivering `manifests` to `consumer`, polling every 2 s, with
/// feedback of every ConfigMap's `data.value`.
pub fn spec(consumer: &str, manifests: Vec<Value>) -> Value {
    let configs: Vec<Value> = manifests
        .iter()
        .map(|m| {
            json!({
                "resourceIdentifier": {
                    "resource": "configmaps",
                    "namespace": m["metadata"]["namespace"],
                    "name": m["metadata"]["name"],
                },
                "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "value", "path": ".data.value"}]}],
            })
        })
        .collect();
    json!({
        "consumer": consumer,
        "pollInterval": "2s",
        "manifestWork": {"workload": {"manifests": manifests}, "manifestConfigs": configs},
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One operator process.
pub struct Operator {
    child: Option<tokio::process::Child>,
    pub log: PathBuf,
    pub address: SocketAddr,
    args: Vec<String>,
    pub name: String,
    /// The operator's kubeconfig, when not the stack's.
    kubeconfig: Option<PathBuf>,
    /// Extra environment of the operator process (e.g. OTEL_*).
    envs: Vec<(String, String)>,
}

impl Operator {
    pub async fn start(namespace: &str, source: &str, extra: &[&str]) -> Operator {
        Operator::start_via(namespace, source, &grpc_endpoint(), &http_endpoint(), extra).await
    }

    /// Like [`Operator::start`], reaching Maestro at the given endpoints.
    pub async fn start_via(
        namespace: &str,
        source: &str,
        grpc: &str,
        http: &str,
        extra: &[&str],
    ) -> Operator {
        Operator::start_with(namespace, source, grpc, http, None, &[], extra).await
    }

    /// Like [`Operator::start_via`], with extra environment variables.
    pub async fn start_with_env(
        namespace: &str,
        source: &str,
        grpc: &str,
        http: &str,
        envs: &[(&str, &str)],
        extra: &[&str],
    ) -> Operator {
        Operator::start_with(namespace, source, grpc, http, None, envs, extra).await
    }

    /// Like [`Operator::start`], reaching the API server as `kubeconfig`
    /// says (e.g. through a [`Proxy`]).
    pub async fn start_with_kubeconfig(
        namespace: &str,
        source: &str,
        kubeconfig: PathBuf,
        extra: &[&str],
    ) -> Operator {
        let (grpc, http) = (grpc_endpoint(), http_endpoint());
        Operator::start_with(
            namespace,
            source,
            &grpc,
            &http,
            Some(kubeconfig),
            &[],
            extra,
        )
        .await
    }

    async fn start_with(
        namespace: &str,
        source: &str,
        grpc: &str,
        http: &str,
        kubeconfig: Option<PathBuf>,
        envs: &[(&str, &str)],
        extra: &[&str],
    ) -> Operator {
        let name = unique("operator");
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{namespace}-{name}.log"));
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut args: Vec<String> = [
            "--namespace",
            namespace,
            "--source-id",
            source,
            "--maestro-grpc-endpoint",
            grpc,
            "--maestro-http-endpoint",
            http,
            "--metrics-address",
            &address.to_string(),
            "--health-address",
            &address.to_string(),
            "--identity",
            &name,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // /metrics as plain HTTP on the probes' port, unless the test asks
        // for secure metrics (`--metrics-secure=true` and a
        // `--metrics-address=...` of its own: the operator refuses a flag
        // given twice).
        if extra.iter().any(|e| e.starts_with("--metrics-address="))
            && let Some(i) = args.iter().position(|a| a == "--metrics-address")
        {
            args.drain(i..i + 2);
        }
        if !extra.iter().any(|e| e.starts_with("--metrics-secure")) {
            args.push("--metrics-secure=false".to_string());
        }
        // The tests' specs poll every 2 s and resync in seconds; the floors
        // themselves are tested in tests/tenancy_e2e.rs. A test may give
        // these flags itself (`--flag=value`): the operator refuses a flag
        // given twice, so its own value replaces the default.
        for default in ["--min-poll-interval=1s", "--min-interval=1s"] {
            let flag = default.split('=').next().unwrap_or_default();
            if !extra.iter().any(|e| e.split('=').next() == Some(flag)) {
                args.push(default.to_string());
            }
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut op = Operator {
            child: None,
            log,
            address,
            args,
            name,
            kubeconfig,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        op.spawn().await;
        op
    }

    async fn spawn(&mut self) {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("operator log file");
        // tests/deploy/operator-e2e-under-sa.sh runs these tests with the
        // operator under the chart's ServiceAccount token; the tests' own
        // clients keep the admin kubeconfig.
        let kubeconfig = match &self.kubeconfig {
            Some(path) => path.display().to_string(),
            None => std::env::var("OPERATOR_KUBECONFIG").unwrap_or_else(|_| env("KUBECONFIG")),
        };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro-operator"))
            .args(operator_args(&self.args))
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,maestro_operator=debug")
            .env("NO_COLOR", "1")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start the operator");
        self.child = Some(child);
        self.wait_serving().await;
    }

    /// Waits until the probe server answers (a standby answers too).
    async fn wait_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the operator exited with {status}; log:\n{}",
                    self.log_text()
                );
            }
            if reqwest::get(format!("http://{}/healthz", self.address))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the operator does not serve /healthz; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until /readyz says ready.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !reqwest::get(format!("http://{}/readyz", self.address))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "the operator is not ready; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILL: no cleanup, no lease release.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, and the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("pid") as i32;
        // kill(1): the crate has no libc binding, and tokio's kill is SIGKILL.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the operator stops within 30 s of SIGTERM")
            .expect("exit status")
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// The exit status, once the process has exited by itself.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// One sample's value, e.g. `maestro_operator_leader`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        sample_value(&text, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
    }

    /// One sample's value, if the operator has recorded it yet.
    pub async fn metric_opt(&self, sample: &str) -> Option<f64> {
        sample_value(&self.metrics().await, sample)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The value of `sample` (name and labels) in a metrics text.
fn sample_value(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(80).collect();
            let mut err = std::io::stderr();
            let _ = writeln!(err, "----- last lines of {} -----", self.log.display());
            for line in tail.iter().rev() {
                let _ = writeln!(err, "{line}");
            }
        }
        // kill_on_drop ends the process.
    }
}

/// The operator's arguments, with `--lease-namespace` replaced by (or, for
/// leader-elected runs, set to) `OPERATOR_LEASE_NAMESPACE` when that is set:
/// the chart's ServiceAccount may use Leases only in its release namespace.
fn operator_args(args: &[String]) -> Vec<String> {
    let Ok(lease_namespace) = std::env::var("OPERATOR_LEASE_NAMESPACE") else {
        return args.to_vec();
    };
    let mut out = args.to_vec();
    match out.iter().position(|a| a == "--lease-namespace") {
        Some(i) if i + 1 < out.len() => out[i + 1] = lease_namespace,
        _ if out.iter().any(|a| a == "--leader-elect") => {
            out.extend(["--lease-namespace".to_string(), lease_namespace]);
        }
        _ => {}
    }
    out
}

/// A copy of the operator's kubeconfig whose server is a proxy in front of
/// the API server, and the proxy.
pub async fn kubeconfig_through_proxy(tag: &str) -> (PathBuf, Proxy) {
    let original = std::env::var("OPERATOR_KUBECONFIG")
        .or_else(|_| std::env::var("KUBECONFIG"))
        .expect("KUBECONFIG is set: run eval \"$(bash tests/stack/stack.sh env)\"");
    let text = std::fs::read_to_string(&original).expect("read the kubeconfig");
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| s.trim().trim_matches('"').to_string())
        .expect("a server in the kubeconfig");
    assert!(
        server.starts_with("https://127.0.0.1:"),
        "the test proxies on 127.0.0.1, which the API server's certificate must name; server is {server}"
    );
    let proxy = Proxy::start(&server).await;
    let proxied = format!("https://{}", proxy.address);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-kubeconfig"));
    std::fs::write(&path, text.replace(&server, &proxied)).expect("write the kubeconfig copy");
    (path, proxy)
}
