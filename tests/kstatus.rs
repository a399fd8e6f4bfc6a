//! What Flux's health logic makes of our objects: kstatus (`status.Compute`
//! of sigs.k8s.io/cli-utils, which Flux's `wait: true` and `healthChecks`
//! use) run over the Argo CD health samples in tests/deploy/argocd/testdata
//! and over MaestroApply objects captured here from the real local stack.
//!
//! The helper is tests/tools/kstatus (built and cached by
//! tests/stack/kstatus.sh, `$KSTATUS` in the stack's env). Our status means:
//! Ready=True with the spec observed is done (kstatus: Current); publishing or
//! waiting for the agent is work under way (InProgress); Stalled=True needs a
//! person (Failed). An object without any status would be Current to
//! kstatus, so the CRD defaults status to `{observedGeneration: 0}`: an
//! object no operator has reconciled yet is InProgress (README, "Flux").

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};
use support::operator::*;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/argocd/testdata");

/// The helper's path: `$KSTATUS` from the stack's env, else built (once,
/// cached) by tests/stack/kstatus.sh.
fn kstatus_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("KSTATUS").filter(|p| Path::new(p).is_file()) {
            return PathBuf::from(p);
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stack/kstatus.sh");
        let up = Command::new("bash")
            .args([script, "up"])
            .status()
            .expect("bash runs");
        assert!(up.success(), "tests/stack/kstatus.sh up failed");
        let out = Command::new("bash")
            .args([script, "env"])
            .output()
            .expect("bash runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let path = text
            .trim()
            .strip_prefix("export KSTATUS=")
            .unwrap_or_else(|| panic!("unexpected kstatus.sh env output: {text}"));
        PathBuf::from(path.trim_matches('\''))
    })
}

/// kstatus's verdict on one object.
#[derive(Debug, Clone)]
struct Verdict {
    name: String,
    status: String,
    message: String,
}

fn parse(stdout: &[u8]) -> Vec<Verdict> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("kstatus prints JSON lines");
            Verdict {
                name: v["name"].as_str().unwrap_or_default().to_string(),
                status: v["status"].as_str().unwrap_or_default().to_string(),
                message: v["message"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// Runs the helper over objects given as JSON (a JSON array on stdin).
fn kstatus(objects: &[Value]) -> Vec<Verdict> {
    use std::io::Write;
    let mut child = Command::new(kstatus_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kstatus runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(objects).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kstatus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = parse(&out.stdout);
    assert_eq!(verdicts.len(), objects.len(), "one verdict per object");
    verdicts
}

/// The kstatus status of each Argo CD health sample, and why.
const SAMPLE_VERDICTS: &[(&str, &str)] = &[
    // Ready=True, observedGeneration current.
    ("available.yaml", "Current"),
    ("applied.yaml", "Current"),
    // observedGeneration behind metadata.generation.
    ("not-observed.yaml", "InProgress"),
    ("resumed.yaml", "InProgress"),
    // Reconciling=True: publishing, waiting for the agent or for an old
    // bundle's deletion.
    ("pending.yaml", "InProgress"),
    ("progressing.yaml", "InProgress"),
    ("waiting-for-old-bundle.yaml", "InProgress"),
    // Reconciling=True with a reason the operator retries (the agent's
    // Degraded, Maestro unreachable, the status stream unreadable): kstatus
    // keeps waiting where Argo CD says Degraded; Flux reports it at its
    // timeout with the condition's message.
    ("agent-degraded.yaml", "InProgress"),
    ("maestro-unavailable.yaml", "InProgress"),
    ("status-unreadable.yaml", "InProgress"),
    // Stalled=True.
    ("timed-out.yaml", "Failed"),
    ("unknown-consumer.yaml", "Failed"),
    ("claimed.yaml", "Failed"),
    // Ready=False (Suspended), neither Reconciling nor Stalled: kstatus's
    // Ready fallback says InProgress (Argo CD: Suspended).
    ("suspended.yaml", "InProgress"),
    // metadata.deletionTimestamp.
    ("deleting.yaml", "Terminating"),
    // No status at all, as served before the CRD defaulted status: kstatus
    // finds no observedGeneration and no condition and calls it Current.
    // Not what we mean (Argo CD: Progressing), hence the default below.
    ("new.yaml", "Current"),
    // Before the operator's first reconcile, as served now: the CRD's
    // status default, observedGeneration 0, is behind generation 1.
    ("new-defaulted.yaml", "InProgress"),
    // MaestroApplySet: a rollout under way (Reconciling=True), done
    // (Ready=True), and rolled back (Stalled=True).
    ("set-progressing.yaml", "InProgress"),
    ("set-complete.yaml", "Current"),
    ("set-rolled-back.yaml", "Failed"),
    // A set before its first reconcile, with the CRD's status default.
    ("set-new-defaulted.yaml", "InProgress"),
];

#[test]
fn argo_cd_health_samples_under_kstatus() {
    let mut files: Vec<String> = std::fs::read_dir(SAMPLES)
        .expect("the samples' directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SAMPLE_VERDICTS.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every sample needs its kstatus verdict in SAMPLE_VERDICTS"
    );

    let paths: Vec<String> = SAMPLE_VERDICTS
        .iter()
        .map(|(f, _)| format!("{SAMPLES}/{f}"))
        .collect();
    let out = Command::new(kstatus_bin())
        .args(&paths)
        .output()
        .expect("kstatus runs");
    assert!(
        out.status.success(),
        "kstatus: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = parse(&out.stdout);
    assert_eq!(verdicts.len(), SAMPLE_VERDICTS.len());
    let mut wrong = Vec::new();
    for ((file, expected), got) in SAMPLE_VERDICTS.iter().zip(&verdicts) {
        if got.status != *expected {
            wrong.push(format!(
                "{file}: kstatus says {} ({}), expected {expected}",
                got.status, got.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The same rule on every sample, stated on its conditions: Stalled=True
    // is Failed, Ready=True on the observed generation is Current.
    for ((file, _), got) in SAMPLE_VERDICTS.iter().zip(&verdicts) {
        let text = std::fs::read_to_string(format!("{SAMPLES}/{file}")).unwrap();
        let obj: Value = serde_norway::from_str(&text).unwrap();
        let cond = |t: &str| {
            obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == t))
                .map(|c| c["status"].as_str().unwrap_or_default().to_string())
        };
        let deleting = obj["metadata"]["deletionTimestamp"].is_string();
        let observed = obj["status"]["observedGeneration"] == obj["metadata"]["generation"];
        if !deleting && observed && cond("Stalled").as_deref() == Some("True") {
            assert_eq!(got.status, "Failed", "{file}");
        }
        if !deleting && observed && cond("Ready").as_deref() == Some("True") {
            assert_eq!(got.status, "Current", "{file}");
        }
    }
}

#[test]
fn the_helper_reads_yaml_streams_lists_and_refuses_what_is_no_object() {
    let run = |input: &str| {
        use std::io::Write;
        let mut child = Command::new(kstatus_bin())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        "---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    assert!(out.status.success());
    let names: Vec<String> = parse(&out.stdout).into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let out = run("{\"a\": 1}\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Kubernetes object"));
}

/// The object as the API server serves it (what Flux's poller reads).
async fn capture(ns: &TestNs, name: &str) -> Value {
    let (ok, out, err) = kubectl(
        &["-n", &ns.name, "get", "maestroapply", name, "-o", "json"],
        None,
    )
    .await;
    assert!(ok, "kubectl get {name}: {err}");
    let obj: Value = serde_json::from_str(&out).unwrap();
    // Kept for a reader of a failure (and of the README's table).
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kstatus-captured");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&obj).unwrap(),
    );
    obj
}

fn assert_kstatus(label: &str, obj: &Value, expected: &str) -> Verdict {
    let v = kstatus(std::slice::from_ref(obj)).remove(0);
    assert_eq!(
        v.status,
        expected,
        "{label}: kstatus says {} ({}); object:\n{}",
        v.status,
        v.message,
        serde_json::to_string_pretty(&obj["status"]).unwrap()
    );
    v
}

#[tokio::test]
async fn live_objects_under_kstatus() {
    let ns = TestNs::new("kstatus").await;

    // Before any operator runs: the CRD's status default only. kstatus:
    // InProgress (not reconciled yet).
    ns.apply(
        "ready",
        spec(
            WEST,
            vec![configmap(&ns.name, "kstatus-cm", json!({"value": "one"}))],
        ),
    )
    .await;
    let fresh = capture(&ns, "ready").await;
    assert_eq!(fresh["status"], json!({"observedGeneration": 0}), "{fresh}");
    assert_kstatus("never reconciled", &fresh, "InProgress");

    let mut op = ns.operator(&[]).await;
    ns.apply(
        "unknown",
        spec("no-such-cluster", vec![configmap(&ns.name, "x", json!({}))]),
    )
    .await;
    // A registered consumer no agent serves: published, never applied.
    let lonely = fresh_consumer().await;
    ns.apply(
        "waiting",
        spec(&lonely, vec![configmap(&ns.name, "never", json!({}))]),
    )
    .await;

    ns.wait_ready("ready").await;
    let v = assert_kstatus("Ready", &capture(&ns, "ready").await, "Current");
    assert_eq!(v.message, "Resource is Ready");

    ns.wait_condition("unknown", "Stalled", "True", "UnknownConsumer")
        .await;
    let v = assert_kstatus("Stalled", &capture(&ns, "unknown").await, "Failed");
    assert!(v.message.contains("no-such-cluster"), "{}", v.message);

    ns.wait_condition("waiting", "Reconciling", "True", "Progressing")
        .await;
    let v = assert_kstatus(
        "waiting for the agent",
        &capture(&ns, "waiting").await,
        "InProgress",
    );
    assert!(v.message.contains(&lonely), "{}", v.message);

    // Deleted while no agent confirms: the finalizer holds it.
    ns.delete("waiting").await;
    ns.wait_until("waiting", "being deleted", |o| {
        o.metadata.deletion_timestamp.is_some()
    })
    .await;
    assert_kstatus("deleting", &capture(&ns, "waiting").await, "Terminating");

    // A spec change no operator has seen yet: observedGeneration behind.
    op.kill().await;
    ns.apply(
        "ready",
        spec(
            WEST,
            vec![configmap(&ns.name, "kstatus-cm", json!({"value": "two"}))],
        ),
    )
    .await;
    let stale = capture(&ns, "ready").await;
    assert_eq!(stale["metadata"]["generation"], 2, "{stale}");
    let v = assert_kstatus("spec not observed", &stale, "InProgress");
    assert!(
        v.message.contains("latest observed generation is 1"),
        "{}",
        v.message
    );

    // The operator back: Current again once the new spec is applied.
    let _op = ns.operator(&[]).await;
    ns.wait_ready("ready").await;
    assert_kstatus("Ready again", &capture(&ns, "ready").await, "Current");
    ns.cleanup().await;
}
