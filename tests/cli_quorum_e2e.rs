//! `maestro-cli` across consumers picked by a label selector (`get -l`,
//! `list --consumer-selector`, `wait -l ... --quorum`), run as a subprocess
//! against the real local stack (`bash tests/stack/stack.sh up`, then
//! `eval "$(bash tests/stack/stack.sh env)"`).
//!
//! The stack's agent-served consumers carry env/region labels
//! (STACK_CONSUMER_LABELS): env=prod is cluster-west-1 and cluster-east-2,
//! region=west is cluster-west-1 and cluster-west-3. Those labels are only
//! read here, never changed (other tests select by them); consumers without
//! an agent are created fresh with a label key of this file's own. Each test
//! writes under a source of its own, so the works it waits on are its own.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::maestro::{Out, grpc_endpoint, http_endpoint, unique};

const AGENTS_HINT: &str = "needs the stack's agents: bash tests/stack/stack.sh up";

/// The CLI under a source of its own; the works it applied are deleted
/// when it is dropped, also after a failed assertion.
struct Cli {
    source: String,
    dir: tempfile::TempDir,
    applied: std::cell::RefCell<Vec<(String, String)>>,
}

impl Cli {
    fn new(prefix: &str) -> Cli {
        Cli {
            source: unique(&format!("quorum-{prefix}")),
            dir: tempfile::tempdir().expect("temp dir"),
            applied: Default::default(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        Command::new(env!("CARGO_BIN_EXE_maestro-cli"))
            .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
            .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
            .env("MAESTRO_SOURCE_ID", &self.source)
            .env_remove("RESULTS_PATH")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .args(args)
            .output()
            .expect("run maestro-cli")
            .into()
    }

    /// A work of one ConfigMap (named uniquely, so parallel runs on the
    /// same clusters never share an object), applied to each consumer.
    fn apply(&self, name: &str, consumers: &[&str]) {
        let work = json!({
            "apiVersion": "work.open-cluster-management.io/v1",
            "kind": "ManifestWork",
            "metadata": {"name": name},
            "spec": {"workload": {"manifests": [{
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": unique("quorum-cm"), "namespace": "default"},
                "data": {"from": "cli-quorum-e2e"},
            }]}},
        });
        let file = self.dir.path().join(format!("{name}.json"));
        std::fs::write(&file, work.to_string()).expect("write work file");
        for consumer in consumers {
            self.run(&["apply", "-f", path(&file), "--consumer", consumer])
                .expect(0, &format!("apply {name} to {consumer}"));
            self.applied
                .borrow_mut()
                .push((name.to_string(), consumer.to_string()));
        }
    }

    /// `wait --name NAME -l SELECTOR --quorum QUORUM --condition CONDITION
    /// --timeout TIMEOUT EXTRA...`.
    fn wait_quorum(
        &self,
        name: &str,
        selector: &str,
        quorum: &str,
        condition: &str,
        timeout: &str,
        extra: &[&str],
    ) -> Out {
        let mut args = vec![
            "wait",
            "--name",
            name,
            "-l",
            selector,
            "--quorum",
            quorum,
            "--condition",
            condition,
            "--timeout",
            timeout,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn results(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A consumer with no agent, labelled `key=value`.
    fn agentless_consumer(&self, key: &str, value: &str) -> String {
        let name = unique("quorum-lonely");
        self.run(&[
            "consumers",
            "create",
            &name,
            "-l",
            &format!("{key}={value}"),
        ])
        .expect(0, "create consumer");
        name
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        for (name, consumer) in self.applied.borrow().iter() {
            let out = self.run(&["delete", "--name", name, "--consumer", consumer]);
            if out.code != 0 {
                eprintln!("cleanup of {name} on {consumer} failed: {}", out.stderr);
            }
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn read_results(file: &Path) -> Value {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("results file {}: {e}", file.display()));
    serde_json::from_str(&text).expect("results file is JSON")
}

/// Each consumer in a results file as (name, status, conditionMet).
fn consumers_in(results: &Value) -> Vec<(String, String, Option<bool>)> {
    results["consumers"]
        .as_array()
        .unwrap_or_else(|| panic!("no consumers in {results}"))
        .iter()
        .map(|c| {
            (
                c["consumer"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["conditionMet"].as_bool(),
            )
        })
        .collect()
}

fn state(consumer: &str, status: &str, met: bool) -> (String, String, Option<bool>) {
    (consumer.to_string(), status.to_string(), Some(met))
}

#[test]
fn wait_quorum_succeeds_once_every_selected_consumer_has_the_work_available() {
    let cli = Cli::new("met");
    let name = unique("fleet");
    cli.apply(&name, &["cluster-west-1", "cluster-east-2"]);
    let results = cli.results("met.json");
    cli.wait_quorum(
        &name,
        "env=prod",
        "2",
        "Available",
        "2m",
        &["--results-path", path(&results)],
    )
    .expect(0, AGENTS_HINT)
    .stdout_has("quorum met")
    .stdout_has("2 of 2 consumers");
    let record = read_results(&results);
    assert_eq!(record["status"], "Available");
    assert_eq!(record["exitCode"], 0);
    assert_eq!(record["consumerSelector"], "env=prod");
    assert_eq!(
        record["quorum"],
        json!({"quorum": "2", "required": 2, "selected": 2, "met": 2})
    );
    assert_eq!(
        consumers_in(&record),
        [
            state("cluster-east-2", "Available", true),
            state("cluster-west-1", "Available", true)
        ]
    );

    // Without --quorum every selected consumer must meet the condition.
    let out = cli.run(&[
        "wait",
        "--name",
        &name,
        "--consumer-selector",
        "env in (prod),region",
        "--condition",
        "Applied",
        "-o",
        "json",
    ]);
    out.expect(0, "wait for all selected");
    assert_eq!(out.json()["quorum"]["quorum"], "100%");
    assert_eq!(out.json()["quorum"]["required"], 2);

    // get and list show the work on each selected consumer.
    let got = cli.run(&["get", "--name", &name, "-l", "env=prod", "-o", "json"]);
    got.expect(0, "get across consumers");
    let items = got.json();
    let namespaces: Vec<&str> = items["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|w| w["metadata"]["namespace"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(namespaces, ["cluster-east-2", "cluster-west-1"]);
    let listed = cli.run(&["list", "--consumer-selector", "env=prod"]);
    listed.expect(0, "list across consumers");
    let rows: Vec<Vec<&str>> = listed
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["CONSUMER", "NAME", "STATUS"]);
    assert_eq!(
        rows[1..].iter().map(|r| (r[0], r[1])).collect::<Vec<_>>(),
        [
            ("cluster-east-2", name.as_str()),
            ("cluster-west-1", name.as_str())
        ]
    );
}

#[test]
fn wait_quorum_times_out_naming_the_consumers_without_the_work() {
    let cli = Cli::new("short");
    let name = unique("half");
    // region=west selects cluster-west-1 and cluster-west-3; the work goes
    // to the first only, so at most one of two can meet the condition.
    cli.apply(&name, &["cluster-west-1"]);
    let wait = |quorum: &str, timeout: &str, results: &Path| {
        let results = ["--results-path", path(results)];
        cli.wait_quorum(&name, "region=west", quorum, "Available", timeout, &results)
    };
    // 50% of 2 rounds up to 1.
    let half = cli.results("half.json");
    wait("50%", "90s", &half).expect(0, AGENTS_HINT);
    assert_eq!(read_results(&half)["quorum"]["required"], 1);

    // 51% of 2 rounds up to 2: not reachable.
    let short = cli.results("short.json");
    let out = wait("51%", "4s", &short);
    out.expect(3, "unreachable quorum")
        .stderr_has("1 of 2 consumers")
        .stderr_has("needs 2")
        .stderr_has("cluster-west-3 (NotFound)");
    let record = read_results(&short);
    assert_eq!(record["status"], "Timeout");
    assert_eq!(record["exitCode"], 3);
    assert_eq!(record["quorum"]["met"], 1);
    assert_eq!(
        consumers_in(&record),
        [
            state("cluster-west-1", "Available", true),
            state("cluster-west-3", "NotFound", false)
        ]
    );

    // get across the selection prints what exists and fails for the rest.
    let got = cli.run(&["get", "--name", &name, "-l", "region=west"]);
    got.expect(4, "get with a consumer missing the work")
        .stdout_has("cluster-west-1")
        .stderr_has("missing on: cluster-west-3");
}

#[test]
fn consumers_without_an_agent_keep_a_quorum_unmet_and_are_listed_pending() {
    let cli = Cli::new("lonely");
    let key = "quorum-test";
    let value = unique("run");
    let a = cli.agentless_consumer(key, &value);
    let b = cli.agentless_consumer(key, &value);
    let name = unique("nobody");
    cli.apply(&name, &[&a, &b]);
    let selector = format!("{key}={value}");
    let results = cli.results("lonely.json");
    cli.wait_quorum(
        &name,
        &selector,
        "1",
        "Applied",
        "3s",
        &["--results-path", path(&results)],
    )
    .expect(3, "no agent, no quorum")
    .stderr_has("0 of 2 consumers");
    let mut expected = vec![state(&a, "Pending", false), state(&b, "Pending", false)];
    expected.sort();
    assert_eq!(consumers_in(&read_results(&results)), expected);

    let listed = cli.run(&["list", "--consumer-selector", &selector, "-o", "json"]);
    listed.expect(0, "list across agentless consumers");
    assert_eq!(listed.json()["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn works_from_any_source_are_awaited_across_consumers() {
    // A plain ManifestWork sent by the library client, as any other
    // program would: the CLI finds it by source and name.
    let cli = Cli::new("foreign");
    let name = unique("plain");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for consumer in ["cluster-west-1", "cluster-east-2"] {
        let work = support::maestro::work(
            consumer,
            &name,
            vec![support::maestro::configmap(
                &unique("quorum-cm"),
                json!({"a": "1"}),
            )],
        );
        runtime
            .block_on(async { support::maestro::client(&cli.source).apply(&work).await })
            .unwrap_or_else(|e| panic!("apply to {consumer}: {e}"));
        cli.applied
            .borrow_mut()
            .push((name.clone(), consumer.to_string()));
    }
    cli.wait_quorum(&name, "env=prod", "100%", "Available", "2m", &[])
        .expect(0, AGENTS_HINT);
}

#[test]
fn bad_quorum_and_selector_input_fail_naming_the_value() {
    let cli = Cli::new("bad");
    let base = ["wait", "--name", "w", "--condition", "Applied"];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        cli.run(&args)
    };
    for (quorum, what, named) in [
        ("0", "zero quorum", "at least 1"),
        ("101%", "percent above 100", "101%"),
        ("most", "junk quorum", "most"),
    ] {
        run(&["-l", "env=prod", "--quorum", quorum])
            .expect(2, what)
            .stderr_has(named);
    }
    run(&["--consumer", "cluster-west-1", "--quorum", "1"])
        .expect(2, "quorum without a selector")
        .stderr_has("--quorum");
    run(&["--consumer", "cluster-west-1", "-l", "env=prod"])
        .expect(2, "both consumer and selector")
        .stderr_has("cannot be used with");
    run(&[]).expect(2, "neither").stderr_has("--selector");
    run(&["-l", "env=prod,region in west"])
        .expect(2, "bad selector term")
        .stderr_has("region in west");
    // More consumers than the selector picks can never be reached; the
    // results file records the refusal too.
    let results = cli.results("too-many.json");
    run(&[
        "-l",
        "region=west",
        "--quorum",
        "3",
        "--results-path",
        path(&results),
    ])
    .expect(2, "quorum above the selection")
    .stderr_has("selects only 2 consumers");
    assert_eq!(read_results(&results)["exitCode"], 2);
    let nobody = format!("quorum-test={}", unique("nobody"));
    run(&["-l", &nobody])
        .expect(4, "selector matching nothing")
        .stderr_has(&nobody);
    cli.run(&["get", "--name", "w", "-l", &nobody])
        .expect(4, "get with a selector matching nothing")
        .stderr_has(&nobody);
    cli.run(&["list", "--consumer-selector", ""])
        .expect(2, "empty consumer selector")
        .stderr_has("every consumer");
}
