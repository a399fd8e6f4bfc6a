//! `maestro-cli` end to end: the built binary run as a subprocess against
//! the real local stack (`bash tests/stack/stack.sh up`, then
//! `eval "$(bash tests/stack/stack.sh env)"`).
//!
//! Tests that need status from an agent use the consumers the stack runs
//! agents for (cluster-west-1, cluster-east-2) under a source of their own,
//! so `list` and `delete --all` see only their own works; the others create
//! fresh consumers, whose works no agent ever touches. Everything is named
//! uniquely per run, so the tests run in parallel.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::maestro::{Out, grpc_endpoint, http_endpoint, unique};

const WEST: &str = "cluster-west-1";
const AGENTS_HINT: &str = "needs the stack's agents: bash tests/stack/stack.sh up";
/// An endpoint nothing listens on.
const UNREACHABLE: &str = "http://127.0.0.1:9";
/// `kubectl get` arguments naming a ConfigMap in `default`, the namespace
/// of the test works' ConfigMaps.
const DEFAULT_CONFIGMAP: &[&str] = &["configmap", "-n", "default"];

/// The CLI under a source of its own, with a scratch directory.
struct Cli {
    source: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new(prefix: &str) -> Cli {
        Cli::with_source(&unique(&format!("cli-{prefix}")))
    }

    /// A CLI writing as Maestro's own CLI does (source `maestro-cli`).
    fn with_source(source: &str) -> Cli {
        Cli {
            source: source.to_string(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_maestro-cli"));
        c.env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
            .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
            .env("MAESTRO_SOURCE_ID", &self.source)
            .env_remove("RESULTS_PATH")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_cmd(self.command().args(args))
    }

    fn run_cmd(&self, cmd: &mut Command) -> Out {
        cmd.output().expect("run maestro-cli").into()
    }

    /// Runs with one environment variable set (or overridden).
    fn run_env(&self, key: &str, value: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Out {
        self.run_cmd(self.command().env(key, value).args(args))
    }

    /// Starts the CLI in the background, its output piped.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start maestro-cli {args:?}: {e}"))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).expect("write file");
        path.display().to_string()
    }

    /// Registers a fresh consumer through the CLI.
    fn consumer(&self, prefix: &str) -> String {
        let name = unique(prefix);
        self.run(&["consumers", "create", &name])
            .ok("consumers create");
        name
    }

    /// `apply -f FILE --consumer CONSUMER EXTRA...`.
    fn apply_with(&self, file: &str, consumer: &str, extra: &[&str]) -> Out {
        let mut args = vec!["apply", "-f", file, "--consumer", consumer];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `apply -f FILE --consumer CONSUMER`.
    fn apply(&self, file: &str, consumer: &str) -> Out {
        self.apply_with(file, consumer, &[])
    }

    /// `apply`, watching the work until it is applied (at most 2 minutes).
    fn apply_watched(&self, file: &str, consumer: &str) -> Out {
        self.apply_with(file, consumer, &["--watch", "--timeout", "2m"])
    }

    /// `apply` of one manifest into the work `name`, as `--manifest-name`.
    fn apply_manifest(&self, file: &str, consumer: &str, name: &str, manifest: &str) -> Out {
        self.apply_with(
            file,
            consumer,
            &["--name", name, "--manifest-name", manifest],
        )
    }

    /// `COMMAND --name NAME --consumer CONSUMER EXTRA...`: a command on one
    /// work.
    fn on_work(&self, command: &str, name: &str, consumer: &str, extra: &[&str]) -> Out {
        let mut args = vec![command, "--name", name, "--consumer", consumer];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `get -o FORMAT` of one work.
    fn get_as(&self, name: &str, consumer: &str, format: &str) -> Out {
        self.on_work("get", name, consumer, &["-o", format])
    }

    /// The work as `get -o json` prints it (which must succeed).
    fn get_json(&self, name: &str, consumer: &str) -> Value {
        let out = self.get_as(name, consumer, "json");
        out.ok("get -o json");
        out.json()
    }

    /// `list --consumer CONSUMER FILTER... -o json` (which must succeed).
    fn list_json(&self, consumer: &str, filter: &[&str]) -> Value {
        let mut args = vec!["list", "--consumer", consumer];
        args.extend_from_slice(filter);
        args.extend(["-o", "json"]);
        let out = self.run(&args);
        out.ok("list -o json");
        out.json()
    }

    /// `wait --name NAME --consumer CONSUMER --condition CONDITION EXTRA...`.
    fn wait(&self, name: &str, consumer: &str, condition: &str, extra: &[&str]) -> Out {
        let mut args = vec!["--condition", condition];
        args.extend_from_slice(extra);
        self.on_work("wait", name, consumer, &args)
    }

    /// `delete`, watching until the work is gone (at most 2 minutes).
    fn delete_watched(&self, name: &str, consumer: &str) -> Out {
        self.on_work("delete", name, consumer, &["--watch", "--timeout", "2m"])
    }

    /// `delete --manifest-name`: one manifest of the work.
    fn delete_manifest(&self, name: &str, consumer: &str, manifest: &str) -> Out {
        self.on_work("delete", name, consumer, &["--manifest-name", manifest])
    }

    /// `diff --name NAME --consumer CONSUMER -f FILE EXTRA...`.
    fn diff(&self, name: &str, consumer: &str, file: &str, extra: &[&str]) -> Out {
        let mut args = vec!["-f", file];
        args.extend_from_slice(extra);
        self.on_work("diff", name, consumer, &args)
    }

    /// `build --name NAME --consumer CONSUMER --source-file SOURCE EXTRA...`.
    fn build(&self, name: &str, consumer: &str, source: &str, extra: &[&str]) -> Out {
        let mut args = vec!["--source-file", source];
        args.extend_from_slice(extra);
        self.on_work("build", name, consumer, &args)
    }
}

/// A CLI under a source of its own, a fresh consumer no agent serves
/// (`cli-PREFIX-…`) and a work name: the set-up of the tests that need no
/// agent.
fn fresh(prefix: &str) -> (Cli, String, String) {
    let cli = Cli::new(prefix);
    let consumer = cli.consumer(&format!("cli-{prefix}"));
    (cli, consumer, unique(prefix))
}

/// Two versions of the work `name` as files: v1 has ConfigMaps a=1 and
/// b=1; v2 changes a to 2.
fn two_versions(cli: &Cli, name: &str) -> (String, String) {
    let v1 = cli.file(
        "v1.yaml",
        &work_yaml(name, &[configmap("a", "1"), configmap("b", "1")]),
    );
    let v2 = cli.file(
        "v2.yaml",
        &work_yaml(name, &[configmap("a", "2"), configmap("b", "1")]),
    );
    (v1, v2)
}

/// Arguments that watch until the work is Available (at most 2 minutes)
/// and record the outcome in `results`.
fn until_available(results: &Path) -> [&str; 7] {
    [
        "--watch",
        "--condition",
        "Available",
        "--timeout",
        "2m",
        "--results-path",
        results.to_str().unwrap(),
    ]
}

/// A results file's status, reason and exit code.
fn outcome(r: &Value) -> (Option<&str>, Option<&str>, Option<i64>) {
    (
        r["status"].as_str(),
        r["reason"].as_str(),
        r["exitCode"].as_i64(),
    )
}

fn configmap(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default"},
           "data": {"value": value}})
}

fn yaml(value: &Value) -> String {
    serde_norway::to_string(value).expect("yaml")
}

fn work_yaml(name: &str, manifests: &[Value]) -> String {
    yaml(&json!({
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name, "labels": {"app": "cli-e2e"}},
        "spec": {"workload": {"manifests": manifests}},
    }))
}

/// The work's manifest at `index`.
fn manifest(work: &Value, index: usize) -> &Value {
    &work["spec"]["workload"]["manifests"][index]
}

fn manifest_count(work: &Value) -> Option<usize> {
    work["spec"]["workload"]["manifests"]
        .as_array()
        .map(Vec::len)
}

fn item_count(list: &Value) -> Option<usize> {
    list["items"].as_array().map(Vec::len)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("results file {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("results file is not JSON ({e}): {text}"))
}

fn kubectl(args: &[&str]) -> Out {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {bin} (KUBECTL; {AGENTS_HINT}): {e}"))
        .into()
}

/// `kubectl get RESOURCE... NAME --ignore-not-found -o name`: the object's
/// name, or "" when the cluster does not have it.
fn kubectl_find(resource: &[&str], name: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(resource);
    args.extend([name, "--ignore-not-found", "-o", "name"]);
    kubectl(&args).stdout.trim().to_string()
}

fn maestro(args: &[&str]) -> Out {
    let bin = std::env::var("MAESTRO_BIN").unwrap_or_else(|_| {
        panic!("MAESTRO_BIN is not set: eval \"$(bash tests/stack/stack.sh env)\"")
    });
    Command::new(&bin)
        .args(args)
        .args(["--rest-url", &http_endpoint()])
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"))
        .into()
}

/// host:port of the gRPC endpoint, as Maestro's CLI takes it.
fn grpc_address() -> String {
    grpc_endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

// ------------------------------------------------------------ core commands

#[test]
fn apply_then_wait_available_reaches_the_cluster_and_records_results() {
    let cli = Cli::new("avail");
    let name = unique("avail");
    let file = cli.file("work.yaml", &work_yaml(&name, &[configmap(&name, "one")]));
    let results = cli.path("results.json");
    let mut args = vec!["apply", "--manifest-file", &file, "--consumer", WEST];
    args.extend(until_available(&results));
    let out = cli.run(&args);
    out.expect(0, AGENTS_HINT)
        .stdout_has(&format!("manifestwork/{name} created (version 1)"))
        .stdout_has("condition met: Available");
    // Not a terminal: no progress lines.
    assert!(!out.stderr.contains("(+"), "{}", out.stderr);

    let r = read_json(&results);
    assert_eq!(r["status"], "Available", "{r}");
    assert_eq!(
        (r["manifestWorkName"].as_str(), r["consumer"].as_str()),
        (Some(name.as_str()), Some(WEST))
    );
    assert_eq!(r["exitCode"], 0);
    assert_eq!(r["resources"][0]["kind"], "ConfigMap");
    assert_eq!(r["resources"][0]["status"], "Available", "{r}");
    assert!(r["timestamp"].as_str().is_some_and(|t| t.contains('T')));

    // The agent really applied it.
    let cm = kubectl(&support::configmap_value_args(&name));
    cm.ok("kubectl get configmap");
    assert_eq!(cm.stdout, "one");

    // wait on an already-met condition returns at once; its -o json is the record.
    let out = cli.wait(&name, WEST, "Applied", &["-o", "json"]);
    out.ok("wait Applied");
    assert_eq!(out.json()["status"], "Applied");
    // A manifest's own condition.
    cli.wait(
        &name,
        WEST,
        "Available",
        &[
            "--manifest-name",
            &format!("ConfigMap/{name}"),
            "--timeout",
            "1m",
        ],
    )
    .ok("wait for the manifest");

    // describe reads the agent's status: no problems.
    cli.run(&["describe", "--name", &name, "--consumer", WEST])
        .ok("describe")
        .stdout_has("Status:            Available")
        .stdout_has("No problems found.");
    // list --status filters on the agent's conditions.
    let listed = cli.list_json(WEST, &["--status", "Available"]);
    let names: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(names, std::slice::from_ref(&name));

    cli.delete_watched(&name, WEST)
        .ok("delete --watch")
        .stdout_has(&format!("manifestwork/{name} deleted"));
    assert_eq!(
        kubectl_find(DEFAULT_CONFIGMAP, &name),
        "",
        "the agent should have removed the ConfigMap"
    );
    cli.run(&["get", "--name", &name, "--consumer", WEST])
        .expect(4, "get after delete");
}

#[test]
fn get_list_and_describe_show_a_work_in_every_format() {
    let (cli, consumer, name) = fresh("show");
    let file = cli.file(
        "work.yaml",
        &work_yaml(&name, &[configmap("a", "1"), configmap("b", "2")]),
    );
    let results = cli.path("get.json");
    cli.apply(&file, &consumer).ok("apply");

    let out = cli.run(&["get", "--name", &name, "--consumer", &consumer]);
    out.ok("get");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS"),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].starts_with(&name) && lines[1].contains("Pending"),
        "{}",
        out.stdout
    );

    let work = cli.get_json(&name, &consumer);
    assert_eq!(work["kind"], "ManifestWork");
    assert_eq!(work["metadata"]["namespace"], consumer.as_str());
    assert_eq!(manifest(&work, 1)["metadata"]["name"], "b");
    let as_yaml = cli.get_as(&name, &consumer, "yaml");
    as_yaml.ok("get -o yaml");
    let from_yaml: Value = serde_norway::from_str(&as_yaml.stdout).expect("yaml output parses");
    assert_eq!(from_yaml["spec"], work["spec"]);
    let wide = cli.get_as(&name, &consumer, "wide");
    assert!(
        wide.stdout.contains("BUNDLE-ID") && wide.stdout.contains("app=cli-e2e"),
        "{}",
        wide.stdout
    );

    // One manifest, and the results file of a get.
    let out = cli.run(&[
        "get",
        "--name",
        &name,
        "--consumer",
        &consumer,
        "--manifest-name",
        "b",
        "-o",
        "json",
        "--results-path",
        results.to_str().unwrap(),
    ]);
    out.ok("get --manifest-name");
    assert_eq!(out.json()["manifest"]["data"]["value"], "2");
    let r = read_json(&results);
    assert_eq!(
        (
            r["status"].as_str(),
            r["resources"].as_array().map(Vec::len)
        ),
        (Some("Pending"), Some(1))
    );

    let list = cli.run(&["list", "--consumer", &consumer]);
    list.ok("list");
    assert!(
        list.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with(&name)),
        "{}",
        list.stdout
    );
    let by_label = cli.list_json(&consumer, &["-l", "app=cli-e2e"]);
    assert_eq!(item_count(&by_label), Some(1));
    let other_label = cli.list_json(&consumer, &["-l", "app=other"]);
    assert_eq!(item_count(&other_label), Some(0));
    // No agent serves this consumer: nothing is Applied.
    let applied = cli.list_json(&consumer, &["--status", "Applied"]);
    assert_eq!(item_count(&applied), Some(0));

    let page = cli.run(&["describe", "--name", &name, "--consumer", &consumer]);
    page.ok("describe");
    for needle in [
        "Bundle ID:",
        "Version:           1 (agent observed 0)",
        "Diagnosis:",
        "the agent has not reported",
    ] {
        page.stdout_has(needle);
    }

    cli.run(&["get", "--name", "no-such-work", "--consumer", &consumer])
        .expect(4, "missing work");
    cli.run(&["list", "--consumer", &unique("no-such-consumer")])
        .expect(4, "missing consumer");
}

#[test]
fn apply_updates_in_place_and_manifest_name_keeps_the_other_manifests() {
    let (cli, consumer, name) = fresh("update");
    let (v1, v2) = two_versions(&cli, &name);
    let apply = |file: &str| cli.apply(file, &consumer);

    apply(&v1).ok("create").stdout_has("created (version 1)");
    apply(&v1)
        .ok("same again")
        .stdout_has("unchanged (version 1)");
    apply(&v2).ok("update").stdout_has("configured (version 2)");
    let work = cli.get_json(&name, &consumer);
    assert_eq!(manifest(&work, 0)["data"]["value"], "2");

    // A plain manifest list with --name; --manifest-name replaces one manifest.
    let one = cli.file("b.yaml", &yaml(&configmap("b", "3")));
    cli.apply_manifest(&one, &consumer, &name, "b")
        .ok("replace one manifest")
        .stdout_has("manifest ConfigMap default/b replaced (version 3)");
    // ... or adds it when the work lacks it.
    let new = cli.file("c.yaml", &yaml(&configmap("c", "1")));
    cli.apply_manifest(&new, &consumer, &name, "ConfigMap/c")
        .ok("add one manifest");
    let work = cli.get_json(&name, &consumer);
    let data: Vec<(String, String)> = work["spec"]["workload"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["metadata"]["name"].as_str().unwrap().to_string(),
                m["data"]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [("a", "2"), ("b", "3"), ("c", "1")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(data, expected);
    assert_eq!(work["metadata"]["resourceVersion"], "4");

    // The whole file replaces the work again: c goes.
    apply(&v2).ok("back to v2");
    assert_eq!(manifest_count(&cli.get_json(&name, &consumer)), Some(2));

    // delete --manifest-name removes one manifest and keeps the work.
    cli.delete_manifest(&name, &consumer, "a")
        .ok("delete one manifest");
    let work = cli.get_json(&name, &consumer);
    assert_eq!(manifest(&work, 0)["metadata"]["name"], "b");
    cli.delete_manifest(&name, &consumer, "b")
        .expect(2, "the last manifest")
        .stderr_has("delete the work instead");
}

#[test]
fn results_files_record_success_failure_and_timeout() {
    let (cli, consumer, name) = fresh("results");
    let file = cli.file("work.yaml", &work_yaml(&name, &[configmap("a", "1")]));
    let path = cli.path("results.json");
    let p = path.to_str().unwrap();

    // Success, through RESULTS_PATH.
    cli.run_env(
        "RESULTS_PATH",
        p,
        &["apply", "-f", &file, "--consumer", &consumer],
    )
    .ok("apply");
    let r = read_json(&path);
    assert_eq!(r["status"], "InProgress", "{r}");
    assert_eq!(r["version"], 1);

    // Timeout: no agent serves this consumer, so Applied never comes.
    let started = Instant::now();
    cli.wait(
        &name,
        &consumer,
        "Applied",
        &["--timeout", "3s", "--results-path", p],
    )
    .expect(3, "wait times out")
    .stderr_has("timed out after 3s");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let r = read_json(&path);
    assert_eq!(outcome(&r), (Some("Timeout"), Some("Timeout"), Some(3)));
    assert!(
        r["message"].as_str().unwrap().contains("last status"),
        "{r}"
    );
    assert_eq!(r["resources"][0]["status"], "Pending", "{r}");

    // Failure: the flag wins over RESULTS_PATH.
    let elsewhere = cli.path("elsewhere.json");
    cli.run_env(
        "RESULTS_PATH",
        &elsewhere,
        &[
            "get",
            "--name",
            "missing",
            "--consumer",
            &consumer,
            "--results-path",
            p,
        ],
    )
    .expect(4, "get missing");
    let r = read_json(&path);
    assert_eq!(
        (r["status"].as_str(), r["reason"].as_str()),
        (Some("Failed"), Some("NotFound"))
    );
    assert!(!elsewhere.exists());

    // A usage error is recorded too, and an invalid file sends nothing.
    cli.run_env("RESULTS_PATH", p, &["wait", "--name", &name])
        .expect(2, "missing flags");
    let r = read_json(&path);
    assert_eq!(
        (r["status"].as_str(), r["reason"].as_str()),
        (Some("Failed"), Some("UsageError")),
        "{r}"
    );
    let bad = cli.file("bad.yaml", &work_yaml("Bad_Name", &[configmap("a", "1")]));
    cli.run(&[
        "apply",
        "-f",
        &bad,
        "--consumer",
        &consumer,
        "--results-path",
        p,
    ])
    .expect(2, "invalid work");
    assert_eq!(read_json(&path)["reason"], "InvalidWork");
    // No stray temporary files beside the results.
    let mut names: Vec<String> = std::fs::read_dir(cli.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    names.sort();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn validate_names_file_and_field_of_every_problem() {
    let cli = Cli::new("validate");
    let consumer = cli.consumer("cli-validate");
    let good = cli.file("good.yaml", &work_yaml("web", &[configmap("a", "1")]));
    cli.run(&[
        "validate",
        "--manifest-file",
        &good,
        "--consumer",
        &consumer,
    ])
    .ok("valid")
    .stdout_has("valid ManifestWork \"web\"");

    let bad = cli.file(
        "bad.yaml",
        &work_yaml(
            "Web",
            &[
                configmap("a", "1"),
                configmap("a", "1"),
                json!({"apiVersion": "v1", "kind": "ConfigMap"}),
            ],
        ),
    );
    let out = cli.run(&["validate", "-f", &bad, "--consumer", &consumer]);
    out.expect(2, "invalid");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert!(lines.len() >= 3, "{}", out.stderr);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("error: {bad}: "))),
        "{}",
        out.stderr
    );
    for field in [
        "metadata.name",
        "spec.workload.manifests[1]",
        "spec.workload.manifests[2].metadata",
    ] {
        out.stderr_has(field);
    }

    // Over the size limit.
    let big = "x".repeat(600 * 1024);
    let huge = cli.file("huge.yaml", &work_yaml("big", &[configmap("a", &big)]));
    cli.run(&["validate", "-f", &huge])
        .expect(2, "too large")
        .stderr_has("500 KiB");

    // A consumer Maestro does not know.
    cli.run(&["validate", "-f", &good, "--consumer", &unique("nobody")])
        .expect(4, "unknown consumer")
        .stderr_has("not registered");
    // Without a server the consumer check is skipped with a warning.
    cli.run_env(
        "MAESTRO_HTTP_ENDPOINT",
        UNREACHABLE,
        &[
            "validate",
            "-f",
            &good,
            "--consumer",
            &consumer,
            "--timeout",
            "2s",
        ],
    )
    .ok("offline")
    .stderr_has("warning: could not check");
}

#[test]
fn bad_input_gets_a_clear_error_and_nothing_reaches_maestro() {
    let cli = Cli::new("badin");
    let consumer = cli.consumer("cli-badin");
    let malformed = cli.file("broken.yaml", "apiVersion: v1\nkind: [ConfigMap\n");
    cli.run(&[
        "apply",
        "-f",
        &malformed,
        "--consumer",
        &consumer,
        "--name",
        "x",
    ])
    .expect(2, "malformed yaml")
    .stderr_has(&format!("{malformed}: line "));
    let json_file = cli.file(
        "broken.json",
        "{\"kind\": \"ManifestWork\",\n \"metadata\": }",
    );
    cli.apply(&json_file, &consumer)
        .expect(2, "malformed json")
        .stderr_has("line 2, column");

    cli.apply("/nonexistent/work.yaml", &consumer)
        .expect(2, "missing file")
        .stderr_has("/nonexistent/work.yaml: file does not exist");
    cli.run(&["apply", "--consumer", &consumer])
        .expect(2, "missing flag")
        .stderr_has("--manifest-file");
    cli.wait("w", &consumer, "Ready", &[])
        .expect(2, "unknown condition")
        .stderr_has("Available");
    cli.wait("w", &consumer, "Applied", &["--timeout", "10ms"])
        .expect(2, "tiny timeout")
        .stderr_has("too small");

    // Invalid work: refused before sending, so the consumer stays empty.
    let invalid = cli.file(
        "invalid.yaml",
        &work_yaml(
            "ok-name",
            &[json!({"apiVersion": "v1", "kind": "ConfigMap"})],
        ),
    );
    cli.apply(&invalid, &consumer).expect(2, "invalid");
    let list = cli.list_json(&consumer, &[]);
    assert_eq!(item_count(&list), Some(0), "{list}");

    // An unknown consumer is a not-found with a way out.
    let ok = cli.file("ok.yaml", &work_yaml("ok-name", &[configmap("a", "1")]));
    cli.apply(&ok, &unique("nobody"))
        .expect(4, "unknown consumer")
        .stderr_has("consumers create");
}

#[test]
fn unreachable_maestro_is_retried_until_the_timeout_and_permanent_errors_fail_at_once() {
    let cli = Cli::new("down");
    let started = Instant::now();
    let out = cli.run_env(
        "MAESTRO_HTTP_ENDPOINT",
        UNREACHABLE,
        &["get", "--name", "w", "--consumer", "c", "--timeout", "3s"],
    );
    out.expect(1, "unreachable");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(15),
        "took {took:?}"
    );
    out.stderr_has("gave up after");

    let consumer = cli.consumer("cli-down");
    let started = Instant::now();
    cli.run(&[
        "get",
        "--name",
        "missing",
        "--consumer",
        &consumer,
        "--timeout",
        "1m",
    ])
    .expect(4, "missing");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not found must not be retried"
    );
}

// ------------------------------------------------------------ delete, watch, diff, build

#[test]
fn delete_all_with_watch_waits_until_every_work_is_gone() {
    let cli = Cli::new("delall");
    let names = [unique("all-a"), unique("all-b")];
    for name in &names {
        let file = cli.file(
            &format!("{name}.yaml"),
            &work_yaml(name, &[configmap(name, "x")]),
        );
        cli.apply_watched(&file, WEST).ok(AGENTS_HINT);
    }
    let list = cli.list_json(WEST, &[]);
    assert_eq!(
        item_count(&list),
        Some(2),
        "only this test's source is listed"
    );

    let results = cli.path("delete.json");
    cli.run(&[
        "delete",
        "--consumer",
        WEST,
        "--all",
        "--watch",
        "--timeout",
        "2m",
        "--results-path",
        results.to_str().unwrap(),
    ])
    .ok("delete --all --watch")
    .stdout_has("all 2 manifestworks");
    let r = read_json(&results);
    assert_eq!(r["status"], "Deleted");
    assert_eq!(item_count(&cli.list_json(WEST, &[])), Some(0));
    for name in &names {
        assert_eq!(
            kubectl_find(DEFAULT_CONFIGMAP, name),
            "",
            "{name} should be gone from the cluster"
        );
    }
    // Nothing left: still a success.
    cli.run(&["delete", "--consumer", WEST, "--all"])
        .ok("empty --all");
}

#[test]
fn watch_prints_the_initial_state_then_a_change_made_by_another_process() {
    let cli = Cli::new("watch");
    let name = unique("watched");
    let v1 = cli.file("v1.yaml", &work_yaml(&name, &[configmap(&name, "1")]));
    let v2 = cli.file("v2.yaml", &work_yaml(&name, &[configmap(&name, "2")]));
    cli.apply_watched(&v1, WEST).ok(AGENTS_HINT);

    let mut child = cli.spawn(&[
        "watch",
        "--consumer",
        WEST,
        "--name",
        &name,
        "-o",
        "json",
        "--timeout",
        "90s",
    ]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let event: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not NDJSON ({e}): {line}"));
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no watch event for {what}"))
    };
    let first = next("the initial state");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["metadata"]["name"], name.as_str());
    assert_eq!(first["object"]["metadata"]["resourceVersion"], "1");

    // Another process changes the work.
    cli.apply(&v2, WEST).ok("update from elsewhere");
    let changed = loop {
        let event = next("the update");
        assert_eq!(event["type"], "MODIFIED", "{event}");
        if event["object"]["metadata"]["resourceVersion"] == "2" {
            break event;
        }
    };
    assert_eq!(manifest(&changed["object"], 0)["data"]["value"], "2");
    // The agent's report on version 2: in the same event when a poll caught
    // the new spec and its status together, else in a later one.
    let applied_v2 = |event: &Value| {
        event["object"]["status"]["conditions"]
            .as_array()
            .is_some_and(|conditions| {
                conditions.iter().any(|c| {
                    c["type"] == "Applied" && c["status"] == "True" && c["observedGeneration"] == 2
                })
            })
    };
    if !applied_v2(&changed) {
        while !applied_v2(&next("the agent's status for version 2")) {}
    }
    cli.run(&["delete", "--name", &name, "--consumer", WEST])
        .ok("delete");
    loop {
        if next("the deletion")["type"] == "DELETED" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn diff_exits_0_when_equal_1_when_different_and_2_on_errors() {
    let (cli, consumer, name) = fresh("diff");
    let (v1, v2) = two_versions(&cli, &name);

    // Nothing there yet: everything is added.
    cli.run(&[
        "diff",
        "--name",
        &name,
        "--consumer",
        &consumer,
        "--manifest-file",
        &v1,
    ])
    .expect(1, "diff against nothing")
    .stdout_has("+++ desired/v1/ConfigMap/default/a");

    cli.apply(&v1, &consumer).ok("apply");
    let out = cli.diff(&name, &consumer, &v1, &[]);
    out.expect(0, "no difference");
    assert_eq!(out.stdout, "");

    let out = cli.diff(&name, &consumer, &v2, &[]);
    out.expect(1, "difference")
        .stdout_has("--- live/v1/ConfigMap/default/a\n+++ desired/v1/ConfigMap/default/a\n");
    assert!(
        out.stdout.contains("-  value: '1'") && out.stdout.contains("+  value: '2'"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("ConfigMap/default/b"),
        "{}",
        out.stdout
    );
    // Limited to one manifest that did not change.
    cli.diff(&name, &consumer, &v2, &["--manifest-name", "b"])
        .expect(0, "b unchanged");

    let broken = cli.file("broken.yaml", "kind: [");
    cli.diff(&name, &consumer, &broken, &[])
        .expect(2, "bad file");
    cli.run_env(
        "MAESTRO_HTTP_ENDPOINT",
        UNREACHABLE,
        &[
            "diff",
            "--name",
            &name,
            "--consumer",
            &consumer,
            "-f",
            &v1,
            "--timeout",
            "1s",
        ],
    )
    .expect(2, "unreachable is an error, not a difference");
}

#[test]
fn build_merges_manifests_into_the_remote_work_and_guards_replace() {
    let (cli, consumer, name) = fresh("build");
    let base = cli.file(
        "base.yaml",
        &work_yaml(&name, &[configmap("keep", "1"), configmap("a", "1")]),
    );
    cli.apply(&base, &consumer).ok("base");

    let source = cli.file(
        "source.yaml",
        &format!(
            "{}---\n{}",
            yaml(&configmap("a", "2")),
            yaml(&configmap("new", "1"))
        ),
    );
    // Output only: the merged work, nothing written.
    let built = cli.path("built.yaml");
    let built = built.to_str().unwrap();
    cli.build(&name, &consumer, &source, &["--output", built])
        .ok("build --output")
        .stderr_has("1 added, 1 replaced, 0 unchanged, 1 kept");
    let work: Value = serde_norway::from_str(&std::fs::read_to_string(built).unwrap()).unwrap();
    let names: Vec<&str> = work["spec"]["workload"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep", "a", "new"]);
    let remote = cli.get_json(&name, &consumer);
    assert_eq!(
        remote["metadata"]["resourceVersion"], "1",
        "build without --apply writes nothing"
    );
    // The built file applies as is.
    cli.apply(built, &consumer).ok("apply built");
    let remote = cli.get_json(&name, &consumer);
    assert_eq!(manifest(&remote, 1)["data"]["value"], "2");

    // replace drops ConfigMaps the source does not list, only with --force.
    let only_a = cli.file("only-a.yaml", &yaml(&configmap("a", "3")));
    let replace = ["--strategy", "replace", "--apply"];
    cli.build(&name, &consumer, &only_a, &replace)
        .expect(2, "replace without --force")
        .stderr_has("--force");
    let forced = [&replace[..], &["--force"]].concat();
    cli.build(&name, &consumer, &only_a, &forced)
        .ok("replace --force");
    let remote = cli.get_json(&name, &consumer);
    assert_eq!(manifest_count(&remote), Some(1));
    assert_eq!(remote["metadata"]["resourceVersion"], "3");

    // --dry-run validates and writes nothing.
    let out = cli.build(&name, &consumer, &source, &["--dry-run"]);
    out.ok("dry run");
    assert_eq!(out.stdout, "");
}

#[test]
fn build_applies_a_nodepool_configuration_the_agent_creates_as_nodepools() {
    let crd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cli/nodepools.hyperfleet.io.crd.yaml"
    );
    kubectl(&["apply", "-f", crd]).ok(AGENTS_HINT);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/nodepools.hyperfleet.io",
        "--timeout=60s",
    ])
    .ok("CRD established");

    let cli = Cli::new("nodepool");
    let name = unique("np");
    let pool = unique("workers");
    let base = cli.file("base.yaml", &work_yaml(&name, &[configmap(&name, "keep")]));
    cli.apply(&base, WEST).ok("base work");
    let config = json!({
        "nodepools": [{"name": pool, "instanceType": "m5.large", "replicas": 3,
                       "zones": ["us-west-2a"], "labels": {"hyperfleet.io/nodepool": pool}}],
        "metadata": {"cluster": WEST, "region": "us-west-2", "version": "1.29"}
    });
    let source = cli.file("nodepools.json", &config.to_string());
    let results = cli.path("build.json");
    cli.build(
        &name,
        WEST,
        &source,
        &[
            ["--strategy", "merge", "--apply"].as_slice(),
            &until_available(&results),
        ]
        .concat(),
    )
    .ok(AGENTS_HINT)
    .stdout_has("configured (version 2)");
    let r = read_json(&results);
    assert_eq!(r["status"], "Available", "{r}");
    assert_eq!(r["resources"].as_array().map(Vec::len), Some(2), "{r}");

    let np = kubectl(&["get", "nodepools.hyperfleet.io", &pool, "-o", "json"]);
    np.ok("the agent created the NodePool");
    let np = np.json();
    assert_eq!(np["spec"]["replicas"], 3);
    assert_eq!(np["spec"]["kubernetesVersion"], "1.29");
    assert_eq!(np["metadata"]["labels"]["hyperfleet.io/cluster"], WEST);
    kubectl(&["get", "configmap", "-n", "default", &name]).ok("the merged-in ConfigMap stays");

    // A configuration for another cluster is refused before anything is sent.
    let other = json!({"nodepools": [{"name": "x", "instanceType": "m5", "replicas": 1}],
                       "metadata": {"cluster": "cluster-east-2"}});
    let other = cli.file("other.json", &other.to_string());
    cli.build(&name, WEST, &other, &["--apply"])
        .expect(2, "wrong cluster")
        .stderr_has("metadata.cluster");

    cli.delete_watched(&name, WEST).ok("clean up");
    assert_eq!(kubectl_find(&["nodepools.hyperfleet.io"], &pool), "");
}

// ------------------------------------------------------------ consumers, interop, completion

#[test]
fn consumers_can_be_created_listed_shown_and_deleted() {
    let cli = Cli::new("consumers");
    let name = unique("cli-consumer");
    cli.run(&[
        "consumers",
        "create",
        &name,
        "-l",
        "env=test",
        "-l",
        "tier=e2e",
    ])
    .ok("create")
    .stdout_has(&format!("consumer/{name} created"));
    cli.run(&["consumers", "create", &name])
        .expect(1, "create again");
    cli.run(&["consumers", "create", &name, "--if-not-exists"])
        .ok("create if not exists");

    let got = cli.run(&["consumers", "get", &name, "-o", "json"]).json();
    assert_eq!(got["name"], name.as_str());
    assert_eq!(got["labels"]["env"], "test");
    let by_id = cli
        .run(&[
            "consumers",
            "get",
            got["id"].as_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(by_id["name"], name.as_str());

    let list = cli
        .run(&["consumers", "list", "-l", "tier=e2e", "-o", "json"])
        .json();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name.as_str()),
        "{list}"
    );
    let table = cli.run(&["consumers", "list"]);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("env=test")),
        "{}",
        table.stdout
    );

    cli.run(&["consumers", "delete", &name]).ok("delete");
    cli.run(&["consumers", "get", &name])
        .expect(4, "get deleted");
    cli.run(&["consumers", "delete", &name])
        .expect(4, "delete again");
    cli.run(&["consumers", "delete", &name, "--ignore-not-found"])
        .ok("ignore not found");
}

#[test]
fn maestros_own_cli_reads_what_we_write_and_we_read_what_it_writes() {
    // Both CLIs default to the source `maestro-cli`.
    let cli = Cli::with_source("maestro-cli");

    // Consumers, both ways.
    let ours = cli.consumer("cli-interop");
    maestro(&["consumer", "list", "--output", "json", "--size", "65000"])
        .ok("maestro consumer list")
        .stdout_has(&format!("\"{ours}\""));
    let theirs = unique("mcli-interop");
    maestro(&["consumer", "create", &theirs]).ok("maestro consumer create");
    let got = cli.run(&["consumers", "get", &theirs, "-o", "json"]).json();
    assert_eq!(got["name"], theirs.as_str());

    // A work we apply, read by their CLI.
    let name = unique("ours");
    let file = cli.file("work.yaml", &work_yaml(&name, &[configmap("a", "1")]));
    cli.apply(&file, &ours).ok("apply");
    let id = cli.get_json(&name, &ours)["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let bundle = maestro(&["resourcebundle", "get", &id, "--output", "json"]);
    bundle.ok("maestro resourcebundle get");
    let bundle = bundle.json();
    assert_eq!(bundle["consumer_name"], ours.as_str());
    assert_eq!(bundle["metadata"]["name"], name.as_str());
    assert_eq!(bundle["manifests"][0]["data"]["value"], "1");
    let search = format!("consumer_name='{ours}'");
    maestro(&[
        "resourcebundle",
        "list",
        "--search",
        &search,
        "--output",
        "json",
    ])
    .ok("maestro resourcebundle list")
    .stdout_has(&id);

    // A bundle their CLI applies (random id, our name in its metadata), read by ours.
    let their_work = unique("theirs");
    let spec = json!({
        "consumer_name": theirs,
        "metadata": {"name": their_work},
        "manifests": [configmap("b", "2")],
    });
    let spec_file = cli.file("bundle.json", &spec.to_string());
    let applied = maestro(&[
        "resourcebundle",
        "apply",
        "-f",
        &spec_file,
        "--grpc-server-address",
        &grpc_address(),
    ]);
    applied.ok("maestro resourcebundle apply");
    let their_id = applied
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .unwrap_or_else(|| panic!("no ID in: {}", applied.stdout))
        .trim()
        .to_string();
    let got = cli.get_json(&their_work, &theirs);
    assert_eq!(got["metadata"]["uid"], their_id.as_str());
    assert_eq!(manifest(&got, 0)["data"]["value"], "2");
    cli.run(&["list", "--consumer", &theirs])
        .stdout_has(&their_work);
    // We refuse to update it (its id is not ours), and can delete it.
    let update = cli.file(
        "theirs.yaml",
        &work_yaml(&their_work, &[configmap("b", "3")]),
    );
    cli.apply(&update, &theirs)
        .expect(1, "update of a foreign bundle")
        .stderr_has("another client");
    cli.run(&["delete", "--name", &their_work, "--consumer", &theirs])
        .ok("our delete of their bundle");
    maestro(&["resourcebundle", "get", &their_id, "--output", "json"])
        .ok("their get after our delete")
        .stdout_has("deleted_at");

    // Their delete of our bundle.
    maestro(&[
        "resourcebundle",
        "delete",
        &id,
        "--yes",
        "--grpc-server-address",
        &grpc_address(),
    ])
    .ok("maestro resourcebundle delete");
    let list = cli.list_json(&ours, &["--status", "Deleting"]);
    assert_eq!(
        list["items"][0]["metadata"]["name"],
        name.as_str(),
        "{list}"
    );
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish_are_generated() {
    let cli = Cli::new("completion");
    let bash = cli.run(&["completion", "bash"]);
    bash.ok("bash");
    assert!(
        bash.stdout.contains("complete -F _maestro__cli")
            && bash.stdout.contains("--manifest-file")
    );
    let script = cli.file("completion.bash", &bash.stdout);
    let syntax = Command::new("bash")
        .args(["-n", &script])
        .output()
        .expect("bash");
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let zsh = cli.run(&["completion", "zsh"]);
    zsh.ok("zsh");
    assert!(
        zsh.stdout.starts_with("#compdef maestro-cli"),
        "{}",
        &zsh.stdout[..80.min(zsh.stdout.len())]
    );
    // fish too (tests/kubectl_plugin.rs checks its syntax); others are refused.
    cli.run(&["completion", "fish"]).ok("fish");
    cli.run(&["completion", "powershell"])
        .expect(2, "powershell");
}

#[test]
fn wait_shows_progress_on_a_terminal_only() {
    let (cli, consumer, name) = fresh("tty");
    let file = cli.file("work.yaml", &work_yaml(&name, &[configmap("a", "1")]));
    cli.apply(&file, &consumer).ok("apply");
    let args = format!(
        "{} wait --name {name} --consumer {consumer} --condition Applied --timeout 2s",
        env!("CARGO_BIN_EXE_maestro-cli")
    );
    // `script` gives the command a terminal.
    let log = cli.path("typescript");
    let tty = Command::new("script")
        .args(["-qec", &args, log.to_str().unwrap()])
        .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
        .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
        .env("MAESTRO_SOURCE_ID", &cli.source)
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let seen = String::from_utf8_lossy(&tty.stdout);
    assert!(
        seen.contains("(+") && seen.contains(&format!("{name}: Pending")),
        "{seen}"
    );
    assert!(seen.contains("timed out after 2s"), "{seen}");

    let plain = cli.wait(&name, &consumer, "Applied", &["--timeout", "2s"]);
    plain.expect(3, "timeout");
    assert!(!plain.stderr.contains("(+"), "{}", plain.stderr);
}

#[test]
fn apply_reads_manifests_from_standard_input() {
    let (cli, consumer, name) = fresh("stdin");
    let mut child = cli
        .command()
        .args(["apply", "-f", "-", "--consumer", &consumer, "--name", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let manifests = json!({"apiVersion": "v1", "kind": "List", "items": [configmap("a", "1"), configmap("b", "2")]});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifests.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manifest_count(&cli.get_json(&name, &consumer)), Some(2));
}

#[test]
fn sigterm_ends_a_wait_with_exit_130_and_a_recorded_result() {
    let (cli, consumer, name) = fresh("sigterm");
    let file = cli.file("work.yaml", &work_yaml(&name, &[configmap("a", "1")]));
    cli.apply(&file, &consumer).ok("apply");
    let results = cli.path("results.json");
    // No agent serves this consumer: the wait would last its whole timeout.
    let child = cli.spawn(&[
        "wait",
        "--name",
        &name,
        "--consumer",
        &consumer,
        "--condition",
        "Available",
        "--timeout",
        "5m",
        "--results-path",
        results.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wait for the CLI");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted by SIGTERM"));
    let r = read_json(&results);
    assert_eq!(
        outcome(&r),
        (Some("Failed"), Some("Interrupted"), Some(130))
    );
}
