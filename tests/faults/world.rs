//! What every fault shares: four objects on both agent-served consumers,
//! the changes made during the fault, the convergence check and its row,
//! and control of the stack's processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use maestro_operator::controller::target::{OWNER_NAMESPACE_LABEL, OWNER_UID_LABEL};
use serde_json::json;

use crate::support::operator::*;

/// How long convergence may take after the fault ends before the row
/// fails: the issue asks for two poll intervals (4 s here) plus what the
/// agents need (status re-sync every 7 s, deletions confirmed by a 2 s
/// loop); a minute leaves room for a loaded 2-core machine without hiding
/// a stuck object.
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);
/// Give up looking after this (the row then says "not converged").
const GIVE_UP: Duration = Duration::from_secs(180);

/// (object, consumer) seeded before each fault, ConfigMap value "v1".
const SEEDED: [(&str, &str); 4] = [("a", WEST), ("b", WEST), ("c", EAST), ("d", EAST)];

/// One fault's outcome.
pub struct Row {
    pub fault: String,
    /// What the objects said during the fault (a condition reason).
    pub said: String,
    pub converged: Option<Duration>,
    pub expected: usize,
    pub actual: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub stuck: usize,
    pub problems: Vec<String>,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.converged.is_some_and(|c| c <= CONVERGE_WITHIN)
            && self.expected == self.actual
            && self.duplicates == 0
            && self.lost == 0
            && self.stuck == 0
            && self.problems.is_empty()
    }

    pub fn line(&self) -> String {
        format!(
            "| {} | {} | {}/{} | {} | {} | {} | {} | {} |",
            self.fault,
            self.converged
                .map_or("not converged".to_string(), |c| format!(
                    "{:.1}",
                    c.as_secs_f64()
                )),
            self.expected,
            self.actual,
            self.duplicates,
            self.lost,
            self.stuck,
            if self.said.is_empty() {
                "-"
            } else {
                &self.said
            },
            if self.ok() {
                "ok".to_string()
            } else {
                format!("FAILED {}", self.problems.join("; "))
            },
        )
    }

    pub fn table(rows: &[Row]) -> String {
        let mut out = String::from(
            "| fault | converged (s) | bundles expected/actual | duplicates | lost | stuck finalizers | objects said | result |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in rows {
            out.push_str(&r.line());
            out.push('\n');
        }
        out
    }
}

/// A fault's namespace, its operator, and what its objects should become.
pub struct World {
    pub ns: TestNs,
    pub op: Operator,
}

fn object_spec(ns: &TestNs, name: &str, consumer: &str, value: &str) -> serde_json::Value {
    let mut s = spec(
        consumer,
        vec![configmap(&ns.name, name, json!({"value": value}))],
    );
    // Work names unique to the run: one fault (cert-rotation) publishes
    // under the secure instance's shared source ID.
    s["workName"] = json!(format!("{}-{name}", ns.name));
    s
}

impl World {
    /// A namespace, an operator on it (with `extra` flags), the four seeded
    /// objects Ready.
    pub async fn seeded(prefix: &str, extra: &[&str]) -> World {
        World::seeded_via(prefix, None, None, extra).await
    }

    /// Like [`World::seeded`], the operator reaching Maestro at the given
    /// endpoints (proxies) where set.
    pub async fn seeded_via(
        prefix: &str,
        grpc: Option<&str>,
        http: Option<&str>,
        extra: &[&str],
    ) -> World {
        let ns = TestNs::new(prefix).await;
        let op = Operator::start_via(
            &ns.name,
            &ns.source,
            grpc.unwrap_or(&grpc_endpoint()),
            http.unwrap_or(&http_endpoint()),
            extra,
        )
        .await;
        World::seed_in(ns, op).await
    }

    pub async fn seed_in(ns: TestNs, op: Operator) -> World {
        for (name, consumer) in SEEDED {
            ns.apply(name, object_spec(&ns, name, consumer, "v1")).await;
        }
        for (name, _) in SEEDED {
            ns.wait_ready(name).await;
        }
        World { ns, op }
    }

    /// The changes made during a fault: an update, two creates (one per
    /// consumer), a deletion.
    pub async fn change(&self) {
        self.change_part_one().await;
        self.change_part_two().await;
    }

    pub async fn change_part_one(&self) {
        self.ns
            .apply("a", object_spec(&self.ns, "a", WEST, "v2"))
            .await;
        self.ns
            .apply("e", object_spec(&self.ns, "e", WEST, "v1"))
            .await;
    }

    pub async fn change_part_two(&self) {
        self.ns
            .apply("f", object_spec(&self.ns, "f", EAST, "v1"))
            .await;
        self.ns.delete("d").await;
    }

    /// Waits until the namespace holds exactly what the specs say, and
    /// returns the row.
    pub async fn converge(&self, fault: &str, said: String) -> Row {
        let expected: BTreeMap<&str, &str> = [
            ("a", "v2"),
            ("b", "v1"),
            ("c", "v1"),
            ("e", "v1"),
            ("f", "v1"),
        ]
        .into();
        let deleted = ["d"];
        let started = Instant::now();
        let mut last;
        loop {
            last = self.look(&expected, &deleted).await;
            if last.converged() || started.elapsed() > GIVE_UP {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let converged = last.converged().then(|| started.elapsed());
        if converged.is_some() {
            // Left as it is otherwise, for a look at what got stuck.
            self.ns.cleanup().await;
        }
        Row {
            fault: fault.to_string(),
            said,
            converged,
            expected: expected.len(),
            actual: last.bundles,
            duplicates: last.duplicates,
            lost: last.lost,
            stuck: last.stuck,
            problems: if converged.is_some() {
                Vec::new()
            } else {
                last.problems
            },
        }
    }

    async fn look(&self, expected: &BTreeMap<&str, &str>, deleted: &[&str]) -> Look {
        let mut look = Look::default();
        let mut uids = BTreeMap::new();
        for (name, value) in expected {
            match self.ns.get(name).await {
                Some(o) => {
                    let ready = o.status.as_ref().is_some_and(|s| {
                        s.is_ready() && s.observed_generation == o.metadata.generation
                    });
                    if !ready {
                        look.problems
                            .push(format!("{name} not Ready at its generation"));
                    }
                    uids.insert(o.metadata.uid.clone().unwrap_or_default(), *name);
                }
                None => look.problems.push(format!("{name} missing")),
            }
            let cm = self.ns.configmaps().get_opt(name).await.ok().flatten();
            let got = cm.and_then(|c| c.data?.get("value").cloned());
            if got.as_deref() != Some(value) {
                look.problems
                    .push(format!("ConfigMap {name} has {got:?}, not {value:?}"));
            }
        }
        for name in deleted {
            if self.ns.get(name).await.is_some() {
                look.stuck += 1;
                look.problems
                    .push(format!("{name} still exists (finalizer)"));
            }
            if self
                .ns
                .configmaps()
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .is_some()
            {
                look.problems
                    .push(format!("ConfigMap {name} still delivered"));
            }
        }
        // Bundles of this namespace's objects, by owner.
        let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
        for b in bundles(&self.ns.source).await {
            let labels = &b.metadata["labels"];
            if labels[OWNER_NAMESPACE_LABEL].as_str() != Some(self.ns.name.as_str()) {
                continue;
            }
            if b.is_deleting() {
                look.problems
                    .push(format!("bundle {} still being deleted", b.id));
                continue;
            }
            let owner = labels[OWNER_UID_LABEL]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *per_owner.entry(owner).or_default() += 1;
        }
        look.bundles = per_owner.values().sum();
        look.duplicates = per_owner.values().map(|n| n.saturating_sub(1)).sum();
        look.lost = uids.keys().filter(|u| !per_owner.contains_key(*u)).count();
        let strays = per_owner
            .keys()
            .filter(|u| !uids.contains_key(u.as_str()))
            .count();
        if strays > 0 {
            look.problems
                .push(format!("{strays} bundle(s) of no live object"));
        }
        if look.duplicates > 0 || look.lost > 0 {
            look.problems.push(format!(
                "{} duplicate and {} lost bundle(s)",
                look.duplicates, look.lost
            ));
        }
        look
    }
}

#[derive(Default)]
struct Look {
    bundles: usize,
    duplicates: usize,
    lost: usize,
    stuck: usize,
    problems: Vec<String>,
}

impl Look {
    fn converged(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Waits (at most `within`) until an object of `ns` reports one of
/// `reasons` on Ready; returns what it said, or what it said instead.
pub async fn objects_said(ns: &TestNs, reasons: &[&str], within: Duration) -> String {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < within {
        seen.clear();
        if let Ok(list) = ns.mapply().list(&Default::default()).await {
            for o in list.items {
                if let Some(c) = o.status.as_ref().and_then(|s| s.condition("Ready")) {
                    if reasons.contains(&c.reason.as_str()) {
                        return c.reason.clone();
                    }
                    seen.push(c.reason.clone());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    seen.sort();
    seen.dedup();
    format!("none of {reasons:?} (saw {seen:?})")
}

/// The stack's processes, by the names of their pid files.
pub struct Stack;

impl Stack {
    fn run_dir() -> PathBuf {
        let dir =
            std::env::var("STACK_DIR").unwrap_or_else(|_| "/tmp/maestro-operator-stack".into());
        PathBuf::from(dir).join("run")
    }

    /// Sends `signal` (TERM, KILL, ...) to the named process.
    pub fn kill(name: &str, signal: &str) {
        let file = Stack::run_dir().join(format!("{name}.pid"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let pid = text.split_whitespace().next().unwrap_or_default();
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {name} ({pid})");
    }

    /// `tests/stack/<component>.sh <command>`.
    pub async fn script(component: &str, command: &str) {
        let script = format!("{}/tests/stack/{component}.sh", env!("CARGO_MANIFEST_DIR"));
        let out = tokio::process::Command::new("bash")
            .args([&script, command])
            .output()
            .await
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{component}.sh {command}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Brings every component back (a no-op for healthy ones).
    pub async fn up() {
        Stack::script("stack", "up").await;
    }
}

/// Copies of the granted client certificate of the mTLS Maestro, and a way
/// to rotate them on disk.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca: String,
    pub cert: String,
    pub key: String,
    source: PathBuf,
}

impl Pki {
    pub async fn copy(tag: &str) -> Pki {
        let source =
            PathBuf::from(std::env::var("MAESTRO_SECURE_DIR").expect("MAESTRO_SECURE_DIR"))
                .join("pki");
        let dir = tempfile::Builder::new().prefix(tag).tempdir().unwrap();
        let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
        let (ca, cert, key) = (path("ca.crt"), path("client.crt"), path("client.key"));
        std::fs::copy(source.join("ca.crt"), &ca).unwrap();
        std::fs::copy(source.join("hyperfleet-client.crt"), &cert).unwrap();
        std::fs::copy(source.join("hyperfleet-client.key"), &key).unwrap();
        Pki {
            _dir: dir,
            ca,
            cert,
            key,
            source,
        }
    }

    /// A fresh key and certificate for the same identity (CN and O), signed
    /// by the stack's CA, moved over the files in use.
    pub async fn rotate(&self) {
        let dir = std::path::Path::new(&self.cert).parent().unwrap();
        let (key, csr, cert) = (
            dir.join("new.key"),
            dir.join("new.csr"),
            dir.join("new.crt"),
        );
        let openssl = |args: Vec<String>| {
            let out = std::process::Command::new("openssl")
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let s = |p: &std::path::Path| p.to_string_lossy().into_owned();
        openssl(vec![
            "req".into(),
            "-new".into(),
            "-newkey".into(),
            "rsa:2048".into(),
            "-nodes".into(),
            "-keyout".into(),
            s(&key),
            "-out".into(),
            s(&csr),
            "-subj".into(),
            "/O=hyperfleet/CN=hyperfleet-adapter".into(),
        ]);
        // The extensions the stack's client certificates carry (a v1
        // certificate without them is refused by rustls).
        let ext = dir.join("client.ext");
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(vec![
            "x509".into(),
            "-req".into(),
            "-extfile".into(),
            s(&ext),
            "-in".into(),
            s(&csr),
            "-CA".into(),
            s(&self.source.join("ca.crt")),
            "-CAkey".into(),
            s(&self.source.join("ca.key")),
            "-CAcreateserial".into(),
            "-CAserial".into(),
            s(&dir.join("ca.srl")),
            "-days".into(),
            "2".into(),
            "-out".into(),
            s(&cert),
        ]);
        std::fs::rename(&key, &self.key).unwrap();
        std::fs::rename(&cert, &self.cert).unwrap();
    }
}

/// Watches the objects of `ns` for `during` and returns every reason their
/// Ready condition gave while not True (sorted, once each); each new
/// reason and message is logged as it appears. Empty: Ready throughout.
pub async fn reasons_during(ns: &TestNs, during: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut seen: Vec<(String, String)> = Vec::new();
    while started.elapsed() < during {
        if let Ok(list) = ns.mapply().list(&Default::default()).await {
            for o in list.items {
                let Some(c) = o.status.as_ref().and_then(|s| s.condition("Ready")) else {
                    continue;
                };
                // A fresh object is not Ready yet for no fault's sake.
                if c.status == "True" || c.reason.is_empty() {
                    continue;
                }
                let pair = (c.reason.clone(), c.message.clone());
                if !seen.contains(&pair) {
                    eprintln!(
                        "    {:>5.1}s {}: Ready={} {}: {}",
                        started.elapsed().as_secs_f64(),
                        o.metadata.name.as_deref().unwrap_or_default(),
                        c.status,
                        c.reason,
                        c.message
                    );
                    seen.push(pair);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut reasons: Vec<String> = seen.into_iter().map(|(r, _)| r).collect();
    reasons.sort();
    reasons.dedup();
    reasons
}
