//! Traces end to end on the real local stack: a real Jaeger v2 (built by
//! tests/stack/jaeger.sh) receives OTLP from the operator (the real binary)
//! and from a Maestro server instance of this test's own, started with
//! Maestro's OTEL variables on free ports against the stack's database; the
//! test applies a MaestroApply and reads the trace back from Jaeger's query
//! API. A second test points the operator at a collector that is not there.
//!
//! The stack's own Maestro instances are left alone (other tests use them).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::operator::*;

/// A process this test started: SIGTERM at the end, killed if the test
/// panics first.
struct Proc {
    name: &'static str,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Proc {
    fn start(name: &'static str, cmd: &mut tokio::process::Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc { name, child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `url` answers 200, failing with the log if the process
    /// exits or a minute passes.
    async fn wait_http(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited with {status}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if reqwest::get(url)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} does not answer {url}; log:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            if tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .is_err()
            {
                let _ = self.child.kill().await;
            }
        }
    }
}

/// The Jaeger binary, built first when missing: CI builds it in the
/// background while the other tests run, and this waits for that build
/// (jaeger.sh holds a lock while it compiles).
fn jaeger_binary() -> String {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let binary = env("JAEGER");
    BUILT.call_once(|| {
        if std::path::Path::new(&binary).exists() {
            return;
        }
        eprintln!("building Jaeger, or waiting for its build (bash tests/stack/jaeger.sh build)");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stack/jaeger.sh");
        let status = std::process::Command::new("bash")
            .args([script, "build"])
            .status()
            .expect("run jaeger.sh");
        assert!(status.success(), "bash tests/stack/jaeger.sh build failed");
    });
    binary
}

fn work_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Jaeger {
    proc: Proc,
    /// OTLP over HTTP, the base URL for OTEL_EXPORTER_OTLP_ENDPOINT.
    otlp: String,
    query: String,
}

/// Jaeger v2 with in-memory storage, an OTLP/HTTP receiver and the query
/// API, each on a free loopback port; its own telemetry off (no fixed ports).
async fn start_jaeger(dir: &Path) -> Jaeger {
    let (otlp_port, query_port, grpc_port) = (free_port(), free_port(), free_port());
    let config = format!(
        r#"service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"#
    );
    let path = dir.join("jaeger.yaml");
    std::fs::write(&path, config).unwrap();
    let mut proc = Proc::start(
        "jaeger",
        tokio::process::Command::new(jaeger_binary())
            .arg(format!("--config={}", path.display()))
            // Jaeger's own spans would go to a collector on localhost:4317.
            .env("OTEL_TRACES_EXPORTER", "none"),
        dir.join("jaeger.log"),
    );
    let query = format!("http://127.0.0.1:{query_port}");
    proc.wait_http(&format!("{query}/api/services")).await;
    Jaeger {
        proc,
        otlp: format!("http://127.0.0.1:{otlp_port}"),
        query,
    }
}

struct Maestro {
    proc: Proc,
    grpc: String,
    http: String,
}

/// A Maestro server of this test's own on the stack's database (like the
/// stack's maestro-peer), exporting its traces to `otlp` as Maestro reads
/// it: OTEL_TRACES_EXPORTER turns tracing (and the otelhttp handler) on.
async fn start_maestro(dir: &Path, otlp: &str) -> Maestro {
    let secrets = PathBuf::from(env("STACK_DIR")).join("maestro/secrets");
    let [http, grpc, broker, metrics, health] = [(); 5].map(|()| free_port());
    let mut cmd = tokio::process::Command::new(env("MAESTRO_BIN"));
    cmd.arg("server")
        .arg(format!("--client-id=maestro-{}", unique("trace")))
        .arg("--server-hostname=127.0.0.1")
        .arg(format!("--http-server-bindport={http}"))
        .arg("--enable-grpc-server=true")
        .arg(format!("--grpc-server-bindport={grpc}"))
        .arg("--message-broker-type=grpc")
        .arg(format!("--grpc-broker-bindport={broker}"))
        .arg(format!("--metrics-server-bindport={metrics}"))
        .arg(format!("--health-check-server-bindport={health}"))
        .arg("--db-sslmode=disable")
        .arg("--v=2");
    for f in ["host", "port", "name", "user", "password"] {
        cmd.arg(format!(
            "--db-{f}-file={}",
            secrets.join(format!("db.{f}")).display()
        ));
    }
    cmd.env("MAESTRO_ENV", "development")
        .env("OTEL_TRACES_EXPORTER", "otlp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", otlp)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let mut proc = Proc::start("maestro", &mut cmd, dir.join("maestro.log"));
    let http = format!("http://127.0.0.1:{http}");
    proc.wait_http(&format!("http://127.0.0.1:{health}/healthcheck"))
        .await;
    proc.wait_http(&format!("{http}/api/maestro/v1/consumers"))
        .await;
    Maestro {
        proc,
        grpc: format!("http://127.0.0.1:{grpc}"),
        http,
    }
}

/// One span of a Jaeger trace, with its service.
#[derive(Debug)]
struct Span {
    id: String,
    parent: Option<String>,
    operation: String,
    service: String,
}

fn spans_of(trace: &Value) -> Vec<Span> {
    let services: HashMap<&str, &str> = trace["processes"]
        .as_object()
        .map(|p| {
            p.iter()
                .map(|(k, v)| (k.as_str(), v["serviceName"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Span {
            id: s["spanID"].as_str().unwrap_or("").to_string(),
            parent: s["references"]
                .as_array()
                .and_then(|r| r.iter().find(|r| r["refType"] == "CHILD_OF"))
                .and_then(|r| r["spanID"].as_str())
                .map(str::to_string),
            operation: s["operationName"].as_str().unwrap_or("").to_string(),
            service: services
                .get(s["processID"].as_str().unwrap_or(""))
                .copied()
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

/// The ID of a trace holding the operator's reconcile and publish spans
/// and a span of Maestro's whose parent is the operator's REST client span.
fn joined_trace(traces: &Value) -> Option<String> {
    traces["data"].as_array()?.iter().find_map(|trace| {
        let spans = spans_of(trace);
        let ours = |op: &str| {
            spans
                .iter()
                .any(|s| s.service == "maestro-operator" && s.operation == op)
        };
        let rest: HashSet<&str> = spans
            .iter()
            .filter(|s| s.service == "maestro-operator" && s.operation == "maestro.rest")
            .map(|s| s.id.as_str())
            .collect();
        let maestro_child = spans.iter().any(|s| {
            s.service == "maestro" && s.parent.as_deref().is_some_and(|p| rest.contains(p))
        });
        (ours("reconcile") && ours("publish") && maestro_child)
            .then(|| trace["traceID"].as_str().unwrap_or("").to_string())
    })
}

#[tokio::test]
async fn one_trace_holds_the_operators_reconcile_and_publish_spans_and_maestros_http_span() {
    maestro_operator::maestro::config::ensure_crypto_provider();
    let dir = work_dir("tracing");
    let jaeger = start_jaeger(&dir).await;
    let maestro = start_maestro(&dir, &jaeger.otlp).await;
    let ns = TestNs::new("trace").await;
    let op = Operator::start_with_env(
        &ns.name,
        &ns.source,
        &maestro.grpc,
        &maestro.http,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.otlp.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
        &["--log-format=json"],
    )
    .await;
    ns.apply(
        "traced",
        spec(
            WEST,
            vec![configmap(&ns.name, "traced", json!({"value": "t"}))],
        ),
    )
    .await;
    ns.wait_ready("traced").await;

    let url = format!(
        "{}/api/traces?service=maestro-operator&operation=publish&limit=100&lookback=1h",
        jaeger.query
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (trace_id, last) = loop {
        let traces: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if let Some(id) = joined_trace(&traces) {
            break (id, traces);
        }
        if Instant::now() > deadline {
            panic!(
                "no trace joins the operator's reconcile and publish spans with Maestro's HTTP span; \
                 Jaeger has:\n{}\noperator log:\n{}\nmaestro log (tail):\n{}",
                serde_json::to_string_pretty(&traces).unwrap_or_default(),
                op.log_text(),
                tail(&maestro.proc.log_text(), 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!trace_id.is_empty(), "{last}");

    // The JSON log lines written inside the trace carry its ID.
    let logged = op.log_text().lines().any(|line| {
        serde_json::from_str::<Value>(line)
            .is_ok_and(|v| v["trace_id"] == trace_id.as_str() && v["span_id"].is_string())
    });
    assert!(
        logged,
        "no JSON log line with trace_id {trace_id}:\n{}",
        op.log_text()
    );
    assert!(
        op.metric("maestro_operator_trace_spans_exported_total")
            .await
            > 0.0,
        "{}",
        op.metrics().await
    );

    // Maestro's gRPC server does not continue the trace at the pinned
    // version, but it logs the traceparent the published event carries:
    // that of a trace in Jaeger holding the operator's maestro.publish span.
    let received: Vec<String> = maestro
        .proc
        .log_text()
        .lines()
        .filter(|l| l.contains("receive the event from client") && l.contains(&ns.source))
        .filter_map(|l| l.split("traceparent=\"00-").nth(1))
        .filter_map(|rest| rest.split('-').next())
        .map(str::to_string)
        .collect();
    assert!(
        !received.is_empty(),
        "Maestro logged no traceparent for our events:\n{}",
        tail(&maestro.proc.log_text(), 40)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !traces_hold_publish(&jaeger.query, &received).await {
        assert!(
            Instant::now() < deadline,
            "none of the traces Maestro logged ({received:?}) holds a maestro.publish span"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    ns.cleanup().await;
    drop(op);
    maestro.proc.stop().await;
    jaeger.proc.stop().await;
}

/// Nothing listens where the operator sends its spans: it reconciles as
/// usual and counts the spans it could not export.
#[tokio::test]
async fn an_unreachable_collector_does_not_stop_reconciling_and_dropped_spans_are_counted() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let ns = TestNs::new("trace-down").await;
    let op = Operator::start_with_env(
        &ns.name,
        &ns.source,
        &grpc_endpoint(),
        &http_endpoint(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
        ],
        &[],
    )
    .await;
    ns.apply(
        "untraced",
        spec(
            WEST,
            vec![configmap(&ns.name, "untraced", json!({"value": "u"}))],
        ),
    )
    .await;
    ns.wait_ready("untraced").await;

    let sample = "maestro_operator_trace_spans_dropped_total{reason=\"export_failed\"}";
    let deadline = Instant::now() + Duration::from_secs(30);
    while op.metric_opt(sample).await.unwrap_or(0.0) == 0.0 {
        assert!(
            Instant::now() < deadline,
            "no dropped spans counted:\n{}",
            op.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        op.metric("maestro_operator_trace_spans_exported_total")
            .await,
        0.0
    );
    assert!(
        op.log_text().contains("trace export failed"),
        "{}",
        op.log_text()
    );
    ns.cleanup().await;
}

/// Whether one of the traces `ids` holds the operator's maestro.publish span.
async fn traces_hold_publish(query: &str, ids: &[String]) -> bool {
    for id in ids {
        let trace: Value = reqwest::get(format!("{query}/api/traces/{id}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let held = trace["data"].as_array().into_iter().flatten().any(|t| {
            spans_of(t)
                .iter()
                .any(|s| s.service == "maestro-operator" && s.operation == "maestro.publish")
        });
        if held {
            return true;
        }
    }
    false
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
