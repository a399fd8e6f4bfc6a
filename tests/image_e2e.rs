//! The container images, built from this test run's binaries
//! (`tests/stack/image.sh build --bin-dir`, Containerfile.scratch) and run
//! with podman against the real local stack as Kubernetes would run them:
//!
//! - the operator image with the arguments, environment, security context
//!   and certificate mount the Helm chart renders, on the host network,
//!   reaching the stack's mTLS Maestro and API server, until a MaestroApply
//!   is Ready, delivered and deleted;
//! - the CLI image as a Job runs it: `apply`, then `wait`, each writing its
//!   results file into a mounted directory;
//! - bad arguments: the images fail with the binaries' own errors and exit
//!   codes.
//!
//! Needs podman (with tests/stack/containers.conf, which image.sh selects)
//! and the whole stack (`make test` provides both). The test binaries are
//! debug builds, so these images are larger than `make image`'s release ones.

mod support;

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::*;

const TAG: &str = "e2e";
const OPERATOR_IMAGE: &str = "localhost/maestro-operator:e2e";
const CLI_IMAGE: &str = "localhost/maestro-cli:e2e";
/// The images' user (distroless' nonroot), and the chart's fsGroup.
const NONROOT: u32 = 65532;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn image_script() -> PathBuf {
    repo().join("tests/stack/image.sh")
}

/// Builds both images once per test process, from the binaries cargo built
/// for this run (the ones the other tests run as processes).
fn images() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let operator = Path::new(env!("CARGO_BIN_EXE_maestro-operator"));
        let bin_dir = operator.parent().expect("the binaries' directory");
        assert_eq!(
            Path::new(env!("CARGO_BIN_EXE_maestro-cli")).parent(),
            Some(bin_dir),
            "image.sh takes both binaries from one directory"
        );
        let out = Command::new("bash")
            .arg(image_script())
            .args(["build", "--bin-dir"])
            .arg(bin_dir)
            .args(["--tag", TAG])
            .stdin(Stdio::null())
            .output()
            .expect("run tests/stack/image.sh");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tests/stack/image.sh build failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

/// podman with this machine's settings (image.sh points CONTAINERS_CONF at
/// tests/stack/containers.conf).
fn podman(args: &[String]) -> Output {
    Command::new("bash")
        .arg(image_script())
        .arg("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run podman through tests/stack/image.sh")
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory as a Secret volume with the chart's fsGroup shows it: root's,
/// readable by the group only (defaultMode 0440).
fn secret_dir(files: &[(&str, &Path)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, source) in files {
        let path = dir.path().join(name);
        std::fs::copy(source, &path).unwrap_or_else(|e| panic!("copy {}: {e}", source.display()));
        group_owned(&path, 0o440);
    }
    group_owned(dir.path(), 0o750);
    dir
}

/// Gives `path` to root and the nonroot group with `mode` (the test runs as
/// root, as rootful podman does).
fn group_owned(path: &Path, mode: u32) {
    chown(path, Some(0), Some(NONROOT))
        .unwrap_or_else(|e| panic!("chown {} (the test runs as root): {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// ---------------------------------------------------------------- the chart

/// The chart's Deployment, rendered by the stack's helm with `values`.
fn rendered_deployment(values: &[(&str, String)]) -> Value {
    let mut cmd = Command::new(env("HELM"));
    cmd.args(["template", "image-e2e"])
        .arg(repo().join("charts/maestro-operator"))
        .args(["--show-only", "templates/deployment.yaml"]);
    for (key, value) in values {
        cmd.arg("--set").arg(format!("{key}={value}"));
    }
    let out = cmd.output().expect("run helm");
    assert!(out.status.success(), "helm template: {}", text(&out.stderr));
    serde_norway::from_slice(&out.stdout).expect("the rendered Deployment is YAML")
}

/// The podman flags a kubelet's settings come to for the chart's pod: the
/// test fails when the chart asks for something these flags do not give.
fn security_flags(deployment: &Value) -> Vec<String> {
    let pod = &deployment["spec"]["template"]["spec"]["securityContext"];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true, "{pod}");
    assert_eq!(container["readOnlyRootFilesystem"], true, "{container}");
    assert_eq!(container["allowPrivilegeEscalation"], false, "{container}");
    assert_eq!(
        container["capabilities"]["drop"],
        json!(["ALL"]),
        "{container}"
    );
    assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault", "{pod}");
    let user = pod["runAsUser"].as_u64().expect("runAsUser");
    let group = pod["runAsGroup"].as_u64().expect("runAsGroup");
    assert_eq!(
        (user, group, pod["fsGroup"].as_u64()),
        (
            u64::from(NONROOT),
            u64::from(NONROOT),
            Some(u64::from(NONROOT))
        ),
        "the images' user and the secret files' group are the chart's"
    );
    hardened(user, group)
}

/// `podman run` flags for what a restricted pod gets: this user and
/// group, a read-only root, no capabilities, no privilege escalation.
fn hardened(user: impl std::fmt::Display, group: impl std::fmt::Display) -> Vec<String> {
    strings(&[
        &format!("--user={user}:{group}"),
        // Kubernetes gives no /tmp or /run tmpfs on a read-only root.
        "--read-only",
        "--read-only-tmpfs=false",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
    ])
}

/// The container's environment as the kubelet sets it: plain values, and
/// the pod's namespace and name for the downward API's fieldRefs.
fn environment(deployment: &Value, namespace: &str, pod: &str) -> Vec<String> {
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("the container's env");
    env.iter()
        .map(|e| {
            let name = e["name"].as_str().expect("an env name");
            let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.namespace") => namespace.to_string(),
                Some("metadata.name") => pod.to_string(),
                Some(other) => panic!("the test does not provide fieldRef {other}"),
                None => e["value"].as_str().expect("an env value").to_string(),
            };
            format!("--env={name}={value}")
        })
        .collect()
}

// ------------------------------------------------------------- containers

/// A detached container, removed when the test ends (its log printed first
/// when the test fails).
struct Container {
    name: String,
}

impl Container {
    fn run(flags: &[String], image: &str, args: &[String]) -> Container {
        let name = unique("maestro-image-e2e");
        let mut all = strings(&["run", "--detach", "--name", &name]);
        all.extend_from_slice(flags);
        all.push(image.to_string());
        all.extend_from_slice(args);
        let out = podman(&all);
        assert!(
            out.status.success(),
            "podman run {image}: {}",
            text(&out.stderr)
        );
        Container { name }
    }

    fn logs(&self) -> String {
        let out = podman(&strings(&["logs", &self.name]));
        text(&out.stdout) + &text(&out.stderr)
    }

    fn running(&self) -> bool {
        let out = podman(&strings(&[
            "inspect",
            "--format",
            "{{.State.Running}}",
            &self.name,
        ]));
        text(&out.stdout).trim() == "true"
    }

    /// The real, effective, saved and file-system user IDs of the
    /// container's main process, as the host's /proc shows them.
    fn process_uids(&self) -> String {
        let out = podman(&strings(&[
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &self.name,
        ]));
        let pid = text(&out.stdout).trim().to_string();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status of {}: {e}", self.name));
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|u| u.split_whitespace().collect::<Vec<_>>().join(" "))
            .expect("a Uid line")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- podman logs {} -----\n{}", self.name, self.logs());
        }
        let _ = podman(&strings(&["rm", "--force", "--time", "5", &self.name]));
    }
}

/// Waits for the operator's probe server to say ready.
async fn wait_readyz(container: &Container, address: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if reqwest::get(format!("http://{address}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        assert!(
            container.running(),
            "the operator container exited:\n{}",
            container.logs()
        );
        assert!(
            Instant::now() < deadline,
            "the operator in its image is not ready within 60 s:\n{}",
            container.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The bearer token of the stack's admin kubeconfig.
fn admin_token(kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().to_string())
        .expect("a token in the stack's kubeconfig")
}

#[tokio::test]
async fn the_operator_image_runs_with_the_charts_arguments_and_makes_a_maestroapply_ready() {
    images();
    let mut ns = TestNs::new("image-op").await;
    // The secured Maestro's grants name this source (tests/stack/secure.sh).
    ns.source = env("MAESTRO_SECURE_SOURCE_ID");
    let (metrics_port, health_port) = (free_port(), free_port());
    let deployment = rendered_deployment(&[
        ("maestro.grpcEndpoint", env("MAESTRO_MTLS_GRPC_ENDPOINT")),
        ("maestro.httpEndpoint", env("MAESTRO_MTLS_HTTP_ENDPOINT")),
        ("maestro.sourceId", ns.source.clone()),
        ("watchNamespace", ns.name.clone()),
        ("metrics.port", metrics_port.to_string()),
        ("health.port", health_port.to_string()),
    ]);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = serde_json::from_value(container["args"].clone()).expect("args");
    assert!(
        args.contains(&"--leader-elect=true".to_string())
            && args.contains(&"--metrics-secure=true".to_string()),
        "the chart's defaults changed: {args:?}"
    );

    // The chart's Secret volume (maestro.tls: ca.crt and the client pair,
    // mounted read-only at /etc/maestro/certs).
    let mount = &container["volumeMounts"][0];
    assert_eq!(
        (&mount["mountPath"], &mount["readOnly"]),
        (&json!("/etc/maestro/certs"), &json!(true))
    );
    let pki = PathBuf::from(env("MAESTRO_SECURE_DIR")).join("pki");
    let certs = secret_dir(&[
        ("ca.crt", &pki.join("ca.crt")),
        ("hyperfleet-client.crt", &pki.join("hyperfleet-client.crt")),
        ("hyperfleet-client.key", &pki.join("hyperfleet-client.key")),
    ]);
    // In a cluster the ServiceAccount's token; here the stack's kubeconfig
    // (or the chart ServiceAccount's, under tests/deploy/operator-e2e-under-sa.sh).
    let kubeconfig_path =
        std::env::var("OPERATOR_KUBECONFIG").unwrap_or_else(|_| env("KUBECONFIG"));
    let kube = secret_dir(&[("config", Path::new(&kubeconfig_path))]);

    let pod = unique("maestro-operator");
    let mut flags = security_flags(&deployment);
    flags.extend(environment(&deployment, &ns.name, &pod));
    flags.extend(strings(&[
        "--network=host",
        "--env=KUBECONFIG=/var/run/maestro/kube/config",
        &format!("--volume={}:/etc/maestro/certs:ro", certs.path().display()),
        &format!(
            "--volume={}:/var/run/maestro/kube:ro",
            kube.path().display()
        ),
    ]));
    let operator = Container::run(&flags, OPERATOR_IMAGE, &args);
    wait_readyz(&operator, &format!("127.0.0.1:{health_port}")).await;
    assert_eq!(
        operator.process_uids(),
        [NONROOT; 4].map(|u| u.to_string()).join(" "),
        "the operator's user IDs (real, effective, saved, file system)"
    );

    let cm = configmap(
        &ns.name,
        "from-image",
        json!({"value": "delivered by the image"}),
    );
    ns.apply("web", spec(WEST, vec![cm])).await;
    ns.wait_ready("web").await;
    ns.wait_configmap("from-image", "delivered by the agent", |cm| {
        cm.is_some_and(|c| {
            c.data
                .as_ref()
                .and_then(|d| d.get("value"))
                .is_some_and(|v| v == "delivered by the image")
        })
    })
    .await;

    // Secure /metrics: the self-signed certificate is made in memory (the
    // root file system is read-only) and the token checked by the API server.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTPS client");
    let response = client
        .get(format!("https://127.0.0.1:{metrics_port}/metrics"))
        .bearer_auth(admin_token(Path::new(&env("KUBECONFIG"))))
        .send()
        .await
        .expect("an answer from /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let metrics = response.text().await.expect("metrics text");
    assert!(
        metrics.contains("maestro_operator_"),
        "no operator metrics:\n{metrics}"
    );

    // The finalizer is the containerized operator's to remove.
    ns.delete("web").await;
    ns.wait_gone("web").await;
    ns.wait_configmap("from-image", "removed by the agent", |cm| cm.is_none())
        .await;
    assert!(operator.running(), "{}", operator.logs());
    ns.cleanup().await;
}

// -------------------------------------------------------------------- CLI

/// One run of the CLI image as a Job's container: read-only root, nonroot,
/// no capabilities, the work file mounted read-only at /input and a
/// writable results directory at /results. Returns the exit code and the
/// output.
fn cli_job(source: &str, input: &Path, results: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = strings(&["run", "--rm", "--network=host"]);
    all.extend(hardened(NONROOT, NONROOT));
    all.extend(strings(&[
        &format!("--env=MAESTRO_GRPC_ENDPOINT={}", grpc_endpoint()),
        &format!("--env=MAESTRO_HTTP_ENDPOINT={}", http_endpoint()),
        &format!("--env=MAESTRO_SOURCE_ID={source}"),
        &format!("--volume={}:/input:ro", input.display()),
        &format!("--volume={}:/results", results.display()),
        CLI_IMAGE,
    ]));
    all.extend(strings(args));
    let out = podman(&all);
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn read_results(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no results file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("results file {text}: {e}"))
}

#[tokio::test]
async fn the_cli_image_applies_and_waits_as_a_job_writing_its_results_files() {
    images();
    let source = unique("image-cli");
    let name = unique("image-cli");
    let input = secret_dir(&[]);
    let work = json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name},
        "spec": {"workload": {"manifests": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"value": "from the CLI image"},
        }]}},
    });
    let work_file = input.path().join("work.yaml");
    std::fs::write(&work_file, serde_norway::to_string(&work).expect("yaml")).expect("write");
    group_owned(&work_file, 0o440);
    // An emptyDir with fsGroup: the group may write.
    let results = tempfile::tempdir().expect("temp dir");
    group_owned(results.path(), 0o770);

    let (code, stdout, stderr) = cli_job(
        &source,
        input.path(),
        results.path(),
        &[
            "apply",
            "--manifest-file",
            "/input/work.yaml",
            "--consumer",
            WEST,
            "--results-path",
            "/results/apply.json",
        ],
    );
    assert_eq!(code, 0, "apply in the image:\n{stdout}\n{stderr}");
    let applied = read_results(&results.path().join("apply.json"));
    assert_eq!(applied["exitCode"], 0, "{applied}");
    assert_eq!(applied["manifestWorkName"], name.as_str(), "{applied}");

    let (code, stdout, stderr) = cli_job(
        &source,
        input.path(),
        results.path(),
        &[
            "wait",
            "--name",
            &name,
            "--consumer",
            WEST,
            "--condition",
            "Available",
            "--timeout",
            "90s",
            "--results-path",
            "/results/wait.json",
        ],
    );
    assert_eq!(code, 0, "wait in the image:\n{stdout}\n{stderr}");
    let waited = read_results(&results.path().join("wait.json"));
    assert_eq!(waited["status"], "Available", "{waited}");
    assert_eq!(waited["exitCode"], 0, "{waited}");
    assert_eq!(waited["consumer"], WEST, "{waited}");
    assert_eq!(waited["resources"][0]["kind"], "ConfigMap", "{waited}");
    assert_eq!(waited["resources"][0]["status"], "Available", "{waited}");
    // The results file belongs to the Job's user, not to root.
    let meta = std::fs::metadata(results.path().join("wait.json")).expect("stat");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NONROOT);

    let (ok, value, err) = kubectl(&support::configmap_value_args(&name), None).await;
    assert!(ok, "the agent applied the ConfigMap: {err}");
    assert_eq!(value, "from the CLI image");

    let (code, stdout, stderr) = cli_job(
        &source,
        input.path(),
        results.path(),
        &[
            "delete",
            "--name",
            &name,
            "--consumer",
            WEST,
            "--watch",
            "--timeout",
            "90s",
        ],
    );
    assert_eq!(code, 0, "delete in the image:\n{stdout}\n{stderr}");
}

// -------------------------------------------------------------- bad input

/// Runs `binary` directly, with no environment, and its image with the
/// same arguments; both must fail the same way.
fn fails_alike(binary: &str, image: &str, args: &[&str]) -> (i32, String) {
    let direct = Command::new(binary)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    let mut run = strings(&["run", "--rm", "--network=host"]);
    run.extend(hardened(NONROOT, NONROOT));
    run.push(image.to_string());
    run.extend(strings(args));
    let contained = podman(&run);
    let code = direct.status.code().expect("an exit code");
    assert_ne!(code, 0, "{binary} {args:?} succeeded");
    assert_eq!(
        contained.status.code(),
        Some(code),
        "{image} {args:?}: exit code differs from the binary's;\nimage's stderr:\n{}\nbinary's stderr:\n{}",
        text(&contained.stderr),
        text(&direct.stderr)
    );
    assert_eq!(
        text(&contained.stderr),
        text(&direct.stderr),
        "{image} {args:?}: stderr differs from the binary's"
    );
    (code, text(&direct.stderr))
}

#[tokio::test]
async fn bad_arguments_fail_in_the_images_with_the_binaries_errors() {
    images();
    let operator = env!("CARGO_BIN_EXE_maestro-operator");
    let cli = env!("CARGO_BIN_EXE_maestro-cli");
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            operator,
            OPERATOR_IMAGE,
            &["--no-such-flag"],
            "--no-such-flag",
        ),
        (
            operator,
            OPERATOR_IMAGE,
            &["--maestro-qps=fast", "--source-id=s"],
            "--maestro-qps",
        ),
        (
            operator,
            OPERATOR_IMAGE,
            &[
                "--maestro-grpc-endpoint=https://127.0.0.1:1",
                "--maestro-http-endpoint=http://127.0.0.1:1",
                "--source-id=Not A Source",
            ],
            "source",
        ),
        (cli, CLI_IMAGE, &["apply", "--consumer"], "--consumer"),
        (
            cli,
            CLI_IMAGE,
            &["get", "--name", "Bad_Name", "--consumer", "c"],
            "name",
        ),
        (
            operator,
            OPERATOR_IMAGE,
            &[
                "--maestro-grpc-endpoint=https://127.0.0.1:1",
                "--maestro-http-endpoint=http://127.0.0.1:1",
                "--source-id=s",
                "--ca-file=/no/such/ca.crt",
            ],
            "/no/such/ca.crt",
        ),
    ];
    for (binary, image, args, names) in cases {
        let (_, stderr) = fails_alike(binary, image, args);
        assert!(
            stderr.to_lowercase().contains(names),
            "{image} {args:?}: the error does not name {names}:\n{stderr}"
        );
    }
}
