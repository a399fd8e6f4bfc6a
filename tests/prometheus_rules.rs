//! The operator's alerts and dashboard, checked with the real promtool
//! (built from the prometheus module pinned in tests/tools/promtool by
//! `tests/stack/promtool.sh build`; `$PROMTOOL` from `stack.sh env`):
//!
//! - `promtool check rules` and `promtool test rules` on
//!   config/prometheus/maestro-operator.rules.yaml and its unit tests
//!   (tests/prometheus/alerts.test.yaml); every alert has a summary, a
//!   description, a unit test and a runbook section in the README;
//! - the Grafana dashboard (config/grafana/maestro-operator.json): its
//!   structure, and every panel query parsed by promtool;
//! - a live scrape of a running operator (leader, objects published, one
//!   deletion unconfirmed, Maestro out of reach for a while): `promtool
//!   check metrics` passes, and every metric the rules
//!   and the dashboard query is exported.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::{
    Operator, Proxy, TestNs, configmap, fresh_consumer, grpc_endpoint, http_endpoint, spec, unique,
};

const RULES: &str = "config/prometheus/maestro-operator.rules.yaml";
const RULE_TESTS: &str = "tests/prometheus/alerts.test.yaml";
const DASHBOARD: &str = "config/grafana/maestro-operator.json";

/// Metrics the status stream adds (branch stream-status, not merged into
/// this tree yet): the stream alert and the dashboard's stream panels use
/// them. While the operator does not export them the live check names them
/// instead of failing.
const STREAM_METRICS: &[&str] = &[
    "maestro_operator_status_stream_up",
    "maestro_operator_status_stream_subscriptions_total",
    "maestro_operator_status_updates_total",
];

/// Not the operator's: the kubelet's cAdvisor metrics, for the dashboard's
/// memory and CPU panels (the operator exports no process metrics).
const KUBELET_METRICS: &[&str] = &[
    "container_memory_working_set_bytes",
    "container_cpu_usage_seconds_total",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn promtool() -> PathBuf {
    let path = std::env::var("PROMTOOL").unwrap_or_else(|_| {
        panic!(
            "PROMTOOL is not set: build it (bash tests/stack/promtool.sh build, part of \
             `stack.sh build` and `stack.sh up`) and run the tests with the stack's \
             environment: eval \"$(bash tests/stack/stack.sh env)\""
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "no promtool at {} (bash tests/stack/promtool.sh build)",
        path.display()
    );
    path
}

/// Runs promtool; returns (success, stdout + stderr).
fn run_promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new(promtool())
        .args(args)
        .current_dir(root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The alerting rules of the rules file, by alert name.
fn alerts() -> BTreeMap<String, serde_norway::Value> {
    let file: serde_norway::Value = serde_norway::from_str(&read(RULES)).expect("rules YAML");
    let mut alerts = BTreeMap::new();
    for group in file["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("only alerting rules");
            assert!(
                alerts.insert(name.to_string(), rule.clone()).is_none(),
                "alert {name} twice"
            );
        }
    }
    alerts
}

/// The PromQL expressions of the alerts.
fn rule_exprs() -> Vec<String> {
    alerts()
        .values()
        .map(|r| r["expr"].as_str().expect("expr").to_string())
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

/// (panel title, refId, expr) of every query.
fn dashboard_queries(dash: &Value) -> Vec<(String, String, String)> {
    panels(dash)
        .into_iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                (
                    title.clone(),
                    t["refId"].as_str().unwrap_or_default().to_string(),
                    t["expr"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

/// A Grafana query as plain PromQL: the dashboard's variables replaced.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$namespace", ".*")
        .replace("$job", ".*")
}

/// The metric names an expression selects: identifiers outside label
/// matchers, range selectors and strings that are neither functions,
/// keywords nor the label lists of `by (...)`, `on (...)` and the like.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Set operators, modifiers, and aggregations (`sum by (l) (...)` has no
    // parenthesis right after its name).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let (mut i, mut depth, mut braces, mut brackets) = (0, 0usize, 0usize, 0usize);
    let mut in_string = false;
    // Paren depths of the label lists being read.
    let mut label_lists: Vec<usize> = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '(' => depth += 1,
            ')' => {
                if label_lists.last() == Some(&depth) {
                    label_lists.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        if (c.is_ascii_alphabetic() || c == '_' || c == ':') && braces == 0 && brackets == 0 {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
            if GROUPING.contains(&word.as_str()) {
                if next == Some('(') {
                    label_lists.push(depth + 1);
                }
            } else if !KEYWORDS.contains(&word.as_str())
                && next != Some('(')
                && label_lists.last() != Some(&depth)
            {
                names.insert(word);
            }
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            // A number (0.9, 1e3): not a name.
            while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

/// Every sample name a scrape exposes, and every name a family's TYPE line
/// implies (a counter `x` is sampled as `x_total`; a histogram as
/// `x_bucket`, `x_sum`, `x_count`).
fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    names.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    names.insert(name.to_string());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// An OpenMetrics exposition in the classic Prometheus text format: a
/// counter family's HELP and TYPE name its `_total` sample, and the
/// OpenMetrics-only `# UNIT` and `# EOF` lines go.
fn classic_text_format(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn openmetrics_counters_become_classic_text_format() {
    let om = "# HELP a Things.\n# TYPE a counter\na_total 1\n# HELP d Seconds.\n# TYPE d histogram\n# UNIT d seconds\nd_sum 0\n# EOF\n";
    assert_eq!(
        classic_text_format(om),
        "# HELP a_total Things.\n# TYPE a_total counter\na_total 1\n# HELP d Seconds.\n# TYPE d histogram\nd_sum 0\n"
    );
}

#[test]
fn alert_rules_pass_promtool_check_rules() {
    let (ok, out) = run_promtool(&["check", "rules", RULES], None);
    assert!(ok, "promtool check rules {RULES}:\n{out}");
    let n = alerts().len();
    assert!(
        out.contains(&format!("SUCCESS: {n} rules found")),
        "expected {n} rules:\n{out}"
    );
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let (ok, out) = run_promtool(&["test", "rules", RULE_TESTS], None);
    assert!(ok, "promtool test rules {RULE_TESTS}:\n{out}");
}

#[test]
fn every_alert_has_a_summary_description_unit_test_and_runbook() {
    let alerts = alerts();
    let names: Vec<&String> = alerts.keys().collect();
    assert!(alerts.len() >= 7, "alerts: {names:?}");
    let tests = read(RULE_TESTS);
    let readme = read("README.md");
    for (name, rule) in &alerts {
        assert!(
            name.starts_with("MaestroOperator"),
            "{name}: alert names start with MaestroOperator"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|t| t.len() > 20),
                "{name} has no {key}"
            );
        }
        assert!(
            ["warning", "critical"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity warning or critical"
        );
        assert!(rule["for"].as_str().is_some(), "{name} has no for:");
        assert_eq!(
            rule["annotations"]["runbook"].as_str(),
            Some(format!("README.md, Alerts, {name}").as_str()),
            "{name}: its runbook annotation names its README section"
        );
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no unit test in {RULE_TESTS}"
        );
        let heading = format!("#### {name}\n");
        let section = readme
            .split_once(&heading)
            .unwrap_or_else(|| panic!("README.md has no runbook section `#### {name}`"))
            .1;
        let section = section.split("\n#").next().unwrap_or_default();
        for part in ["**Means**", "**Look**", "**Do**"] {
            assert!(
                section.contains(part),
                "README runbook of {name} has no {part}:\n{section}"
            );
        }
    }
    // The chart's copy and the PrometheusRule are what sync.sh makes.
    let out = Command::new("bash")
        .arg(root().join("tests/deploy/sync.sh"))
        .arg("--check")
        .output()
        .expect("run tests/deploy/sync.sh --check");
    assert!(
        out.status.success(),
        "tests/deploy/sync.sh --check:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The chart's PrometheusRule (`helm template` with the stack's helm) as
/// its rule groups.
fn chart_rule_groups(values: &[&str]) -> serde_norway::Value {
    let helm = std::env::var("HELM")
        .unwrap_or_else(|_| panic!("HELM is not set: eval \"$(bash tests/stack/stack.sh env)\""));
    let mut args = vec![
        "template",
        "t",
        "charts/maestro-operator",
        "--show-only",
        "templates/prometheusrule.yaml",
        "--set",
        "prometheusRule.enabled=true",
    ];
    for v in values {
        args.extend(["--set", v]);
    }
    let out = Command::new(helm)
        .args(&args)
        .current_dir(root())
        .output()
        .expect("run helm template");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rule: serde_norway::Value = serde_norway::from_str(&text).expect("one YAML document");
    assert_eq!(rule["kind"].as_str(), Some("PrometheusRule"));
    rule["spec"]["groups"].clone()
}

#[test]
fn the_chart_and_kustomize_install_exactly_these_rules() {
    let file: serde_norway::Value = serde_norway::from_str(&read(RULES)).expect("rules YAML");
    let groups = file["groups"].clone();
    assert_eq!(chart_rule_groups(&[]), groups, "the chart's PrometheusRule");
    let kustomize: serde_norway::Value =
        serde_norway::from_str(&read("config/prometheus/alerts.yaml")).expect("alerts.yaml");
    assert_eq!(kustomize["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        kustomize["spec"]["groups"], groups,
        "config/prometheus/alerts.yaml"
    );
    // Without leader election the leader gauge stays 0: no NoLeader alert.
    let without = chart_rule_groups(&["replicaCount=1", "leaderElection.enabled=false"]);
    let names: Vec<&str> = without
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert!(!names.contains(&"MaestroOperatorNoLeader"), "{names:?}");
    assert_eq!(names.len(), alerts().len() - 1, "{names:?}");
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        r#"sum by (namespace, job) (rate(a_total{reason="x y"}[5m])) / on (job) group_left sum(b) > 0.5 or c{d="e"} unless absent(f)"#,
    );
    let want: BTreeSet<String> = ["a_total", "b", "c", "f"].map(String::from).into();
    assert_eq!(names, want);
}

#[test]
fn dashboard_is_a_well_formed_grafana_dashboard_whose_queries_parse() {
    let dash = dashboard();
    for key in [
        "title",
        "uid",
        "schemaVersion",
        "panels",
        "templating",
        "time",
    ] {
        assert!(!dash[key].is_null(), "the dashboard has no {key}");
    }
    assert!(dash["uid"].as_str().is_some_and(|u| u.len() <= 40));
    assert!(dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(
        dash["id"].is_null(),
        "no instance-local id: Grafana assigns it on import"
    );
    // The data source is a variable, so the import asks for nothing and
    // works with any Prometheus data source.
    let vars = dash["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let var_names: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    for v in ["datasource", "namespace", "job"] {
        assert!(var_names.contains(v), "no ${v} variable");
    }
    let mut ids = BTreeSet::new();
    let mut cells: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    let mut titles = BTreeSet::new();
    for p in panels(&dash) {
        let title = p["title"].as_str().expect("every panel has a title");
        let id = p["id"].as_u64().expect("every panel has a numeric id");
        assert!(ids.insert(id), "panel id {id} twice");
        let kind = p["type"].as_str().expect("panel type");
        assert!(
            ["row", "timeseries", "stat", "gauge", "table"].contains(&kind),
            "{title}: panel type {kind}"
        );
        let g = &p["gridPos"];
        let (h, w, x, y) = (
            g["h"].as_u64().expect("gridPos.h"),
            g["w"].as_u64().expect("gridPos.w"),
            g["x"].as_u64().expect("gridPos.x"),
            g["y"].as_u64().expect("gridPos.y"),
        );
        assert!(w >= 1 && x + w <= 24 && h >= 1, "{title}: gridPos {g}");
        for (ch, cw, cx, cy, other) in &cells {
            let overlap = x < cx + cw && *cx < x + w && y < cy + ch && *cy < y + h;
            assert!(!overlap, "{title} overlaps {other}");
        }
        cells.push((h, w, x, y, title.to_string()));
        if kind == "row" {
            continue;
        }
        titles.insert(title.to_string());
        assert!(
            p["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{title}: no description"
        );
        assert_eq!(p["datasource"]["uid"], json!("${datasource}"), "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            let r = t["refId"].as_str().expect("refId");
            assert!(refs.insert(r), "{title}: refId {r} twice");
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                expr.contains("$namespace"),
                "{title}/{r}: every query is filtered by $namespace: {expr}"
            );
        }
    }
    for wanted in [
        "MaestroApply objects by phase",
        "Publishes by action",
        "Publish errors by reason",
        "REST requests per poll",
        "Poll latency",
        "Unconfirmed deletions by consumer",
        "Memory (container working set)",
        "Status stream up",
    ] {
        assert!(titles.contains(wanted), "no panel {wanted}: {titles:?}");
    }

    // promtool parses every query: each one as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (title, r, expr)) in dashboard_queries(&dash).iter().enumerate() {
        let promql = as_promql(expr);
        rules.push_str(&format!(
            "      # {title} {r}\n      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(&promql).unwrap()
        ));
    }
    let file = std::env::temp_dir().join(format!("{}-dashboard-rules.yaml", unique("grafana")));
    std::fs::write(&file, &rules).unwrap();
    let (ok, out) = run_promtool(&["check", "rules", file.to_str().unwrap()], None);
    let _ = std::fs::remove_file(&file);
    assert!(
        ok,
        "promtool check rules on the dashboard's queries:\n{out}\n{rules}"
    );
}

/// Scrapes `op` until its /metrics holds every one of `samples`
/// (prefixes of sample lines); returns that scrape.
async fn wait_for_samples(op: &Operator, samples: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let scrape = op.metrics().await;
        let missing: Vec<&&str> = samples
            .iter()
            .filter(|s| !scrape.lines().any(|l| l.starts_with(**s)))
            .collect();
        if missing.is_empty() {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "no {missing:?} within 90 s:\n{scrape}\n--- log ---\n{}",
            op.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A real operator (leader by election) reaching Maestro through proxies:
/// two objects published to a consumer no agent serves, one of them deleted
/// (so its deletion stays unconfirmed), then Maestro out of reach while a
/// third is applied (poll, publish and reconcile errors). Every family the
/// alerts and the dashboard use then has samples (the operator leaves a
/// family out until its first sample): `promtool check metrics` passes on
/// that /metrics, every metric used is there, and the poll errors carry the
/// reason the unreachable alert selects.
#[tokio::test]
async fn a_live_scrape_passes_promtool_check_metrics_and_has_every_metric_used() {
    let ns = TestNs::new("prom-rules").await;
    let grpc = Proxy::start(&grpc_endpoint()).await;
    let http = Proxy::start(&http_endpoint()).await;
    let lease = unique("lease");
    let op = Operator::start_via(
        &ns.name,
        &ns.source,
        &grpc.url(),
        &http.url(),
        &[
            "--leader-elect",
            "--lease-name",
            &lease,
            "--lease-namespace",
            &ns.name,
        ],
    )
    .await;
    op.wait_ready().await;
    let lonely = fresh_consumer().await;
    let object = |name: &str| {
        spec(
            &lonely,
            vec![configmap(&ns.name, name, json!({"value": "1"}))],
        )
    };
    for name in ["published", "unconfirmed"] {
        ns.apply(name, object(name)).await;
    }
    for name in ["published", "unconfirmed"] {
        ns.wait_until(name, "published", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.resource_bundle_id.is_some())
        })
        .await;
    }
    ns.delete("unconfirmed").await;
    let gauge = format!("maestro_operator_unconfirmed_deletions{{consumer=\"{lonely}\"}} 1");
    wait_for_samples(&op, &[gauge.as_str()]).await;

    grpc.set_down(true);
    http.set_down(true);
    ns.apply("during-outage", object("during-outage")).await;
    let scrape = wait_for_samples(
        &op,
        &[
            "maestro_operator_maestro_poll_errors_total{reason=\"MaestroUnavailable\"}",
            "maestro_operator_maestro_publish_errors_total{",
            "maestro_operator_reconcile_errors_total{",
            gauge.as_str(),
        ],
    )
    .await;
    grpc.set_down(false);
    http.set_down(false);
    let leader = op.metric("maestro_operator_leader").await;
    ns.cleanup().await;
    assert_eq!(leader, 1.0, "the operator led");

    // promtool check metrics parses the classic text format (0.0.4); the
    // operator serves OpenMetrics, where a counter's HELP and TYPE name the
    // family without `_total` and its sample adds it. On the raw scrape
    // that is all promtool finds ("x_total no help text" for counters whose
    // HELP is there as `x`); on the same scrape in the classic format it
    // finds nothing.
    let (_, raw) = run_promtool(&["check", "metrics"], Some(&scrape));
    for problem in raw.lines().filter(|l| !l.trim().is_empty()) {
        let family = problem
            .strip_suffix(" no help text")
            .and_then(|p| p.strip_suffix("_total"));
        assert!(
            family.is_some_and(|f| scrape.contains(&format!("# HELP {f} "))
                && scrape.contains(&format!("# TYPE {f} counter"))),
            "promtool check metrics on the raw scrape: {problem}\n--- scrape ---\n{scrape}"
        );
    }
    let classic = classic_text_format(&scrape);
    let (ok, out) = run_promtool(&["check", "metrics"], Some(&classic));
    assert!(
        ok,
        "promtool check metrics:\n{out}\n--- scrape in the classic format ---\n{classic}"
    );

    for phase in ["Stalled", "Failed"] {
        assert!(
            scrape.contains(&format!("maestro_operator_objects{{phase=\"{phase}\"}}")),
            "objects{{phase={phase}}} is exported (the alert needs it):\n{scrape}"
        );
    }

    let exported = exported_names(&scrape);
    let mut used: BTreeMap<String, String> = BTreeMap::new();
    for expr in rule_exprs() {
        for m in metric_names(&expr) {
            used.entry(m).or_insert_with(|| "the alerts".into());
        }
    }
    for (title, r, expr) in dashboard_queries(&dashboard()) {
        for m in metric_names(&as_promql(&expr)) {
            used.entry(m)
                .or_insert_with(|| format!("dashboard panel {title}/{r}"));
        }
    }
    let mut missing = Vec::new();
    let mut pending = Vec::new();
    for (metric, by) in &used {
        if exported.contains(metric) || KUBELET_METRICS.contains(&metric.as_str()) {
            continue;
        }
        if STREAM_METRICS.contains(&metric.as_str()) {
            pending.push(metric.as_str());
        } else {
            missing.push(format!("{metric} (used by {by})"));
        }
    }
    assert!(
        missing.is_empty(),
        "not exported by the operator: {missing:?}\n--- scrape ---\n{scrape}"
    );
    if !pending.is_empty() {
        eprintln!(
            "note: the status stream's metrics {pending:?} are not exported by this build \
             (branch stream-status not merged); the stream alert and panels wait for them"
        );
    }
}
