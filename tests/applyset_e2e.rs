//! MaestroApplySet on the real stack: four agent-served consumers
//! (cluster-west-1, cluster-east-2, cluster-west-3, cluster-east-4), each
//! test selecting them by a label key of its own that it adds to their
//! Maestro labels (and removes again), its own namespace and its own
//! operator process.
//!
//! A failing revision is one the agents cannot apply: a ConfigMap in a
//! namespace that does not exist.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use maestro_operator::controller::applyset::children::{
    CONSUMER_LABEL, REVISION_LABEL, UPDATED_AT_ANNOTATION,
};
use maestro_operator::controller::applyset::{MaestroApplySet, MaestroApplySetStatus};
use maestro_operator::controller::crd::MaestroApply;
use maestro_operator::names::ConsumerName;
use serde_json::{Value, json};
use support::operator::*;

const WEST3: &str = "cluster-west-3";
const EAST4: &str = "cluster-east-4";
const FLEET: [&str; 4] = [WEST, EAST, WEST3, EAST4];
const SET_DEADLINE: Duration = Duration::from_secs(180);

/// Maestro's PATCH replaces all of a consumer's labels, so the tests'
/// read-modify-write of them must not interleave.
static LABELS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test's world: namespace, operator, and a label key on the fleet.
struct Fleet {
    ns: TestNs,
    op: Operator,
    key: String,
    _labels: Unlabel,
}

/// Removes a test's label keys (selection and grouping) from the fleet
/// when the test ends, also by a panic (on a runtime of its own: the
/// test's may be unwinding).
struct Unlabel(String);

impl Drop for Unlabel {
    fn drop(&mut self) {
        let keys = [self.0.clone(), group_key(&self.0)];
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the label cleanup");
            runtime.block_on(async {
                for key in &keys {
                    for c in FLEET {
                        set_label(key, c, None).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The label key a test groups its consumers by (groupBy).
fn group_key(key: &str) -> String {
    format!("{key}-group")
}

/// Sets (`Some`) or removes (`None`) label `key` on a consumer, keeping
/// its other labels.
async fn set_label(key: &str, consumer: &str, value: Option<&str>) {
    let _one_at_a_time = LABELS.lock().await;
    let rest = rest();
    let found = rest
        .find_consumer_by_name(&ConsumerName::new(consumer).unwrap())
        .await
        .expect("find consumer")
        .expect("consumer exists");
    let mut labels = found.labels.clone();
    match value {
        Some(v) => labels.insert(key.to_string(), v.to_string()),
        None => labels.remove(key),
    };
    if labels != found.labels {
        rest.patch_consumer_labels(&found.id, &labels)
            .await
            .expect("patch consumer labels");
    }
}

impl Fleet {
    async fn new(prefix: &str) -> Fleet {
        install_crd();
        let ns = TestNs::new(prefix).await;
        for c in FLEET {
            assert!(
                rest()
                    .find_consumer_by_name(&ConsumerName::new(c).unwrap())
                    .await
                    .expect("list consumers")
                    .is_some(),
                "consumer {c} is not registered: this test needs the four-consumer stack (make stack-up)"
            );
        }
        let op = ns
            .operator(&["--consumer-relist-interval=2s", "--status-source=poll"])
            .await;
        op.wait_ready().await;
        let key = unique("fleet-e2e");
        Fleet {
            ns,
            op,
            _labels: Unlabel(key.clone()),
            key,
        }
    }

    fn sets(&self) -> Api<MaestroApplySet> {
        Api::namespaced(self.ns.client.clone(), &self.ns.name)
    }

    async fn label(&self, consumer: &str, value: Option<&str>) {
        set_label(&self.key, consumer, value).await;
    }

    /// Puts `consumer` in group `group` of this test's groupBy key.
    async fn group(&self, consumer: &str, group: &str) {
        set_label(&group_key(&self.key), consumer, Some(group)).await;
    }

    async fn label_all(&self, consumers: &[&str]) {
        for c in consumers {
            self.label(c, Some("member")).await;
        }
    }

    async fn finish(self) {
        let _ = self
            .sets()
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await;
        self.ns.cleanup().await;
        drop(self.op);
    }

    fn configmap(&self, name: &str, value: &str) -> Value {
        configmap(&self.ns.name, name, json!({ "value": value }))
    }

    /// A set over the consumers carrying this test's label.
    async fn apply(&self, name: &str, strategy: Value, manifests: Vec<Value>, extra: Value) {
        let mut spec = json!({
            "consumerSelector": {"matchLabels": {self.key.clone(): "member"}},
            "rolloutStrategy": strategy,
            "template": {
                "metadata": {"labels": {"app": "fleet"}},
                "spec": {
                    "pollInterval": "2s",
                    "manifestWork": {"workload": {"manifests": manifests}},
                },
            },
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let obj = json!({
            "apiVersion": "maestro.hyperfleet.io/v1alpha1",
            "kind": "MaestroApplySet",
            "metadata": {"name": name, "namespace": self.ns.name},
            "spec": spec,
        });
        self.sets()
            .patch(
                name,
                &PatchParams::apply("applyset-e2e").force(),
                &Patch::Apply(&obj),
            )
            .await
            .unwrap_or_else(|e| panic!("apply MaestroApplySet {name}: {e}"));
    }

    async fn children(&self) -> BTreeMap<String, MaestroApply> {
        self.ns
            .mapply()
            .list(&ListParams::default())
            .await
            .expect("list children")
            .items
            .into_iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| Some((c.metadata.labels.as_ref()?.get(CONSUMER_LABEL)?.clone(), c)))
            .collect()
    }

    async fn wait_set(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&MaestroApplySet) -> bool,
    ) -> MaestroApplySet {
        self.watch(name, what, &mut Seen::default(), check).await
    }

    /// Until the set reports its current template rolled out (Ready, on
    /// the generation it has).
    async fn wait_rolled_out(&self, name: &str) -> MaestroApplySet {
        self.wait_set(name, "rolled out", rolled_out).await
    }

    /// As [`Fleet::wait_set`], recording in `seen` every revision each
    /// child is on and each group the set reports rolling out.
    async fn watch(
        &self,
        name: &str,
        what: &str,
        seen: &mut Seen,
        check: impl Fn(&MaestroApplySet) -> bool,
    ) -> MaestroApplySet {
        let deadline = Instant::now() + SET_DEADLINE;
        loop {
            seen.children(&self.children().await);
            let set = self.sets().get_opt(name).await.expect("get set");
            if let Some(group) = set
                .as_ref()
                .and_then(|s| s.status.as_ref()?.current_group.clone())
                && seen.groups.last() != Some(&group)
            {
                seen.groups.push(group);
            }
            if let Some(s) = &set
                && check(s)
            {
                return s.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not {what} within {SET_DEADLINE:?}; last seen:\n{}\nchildren:\n{}\noperator log:\n{}",
                    serde_norway::to_string(&set).unwrap_or_default(),
                    serde_norway::to_string(&self.children().await).unwrap_or_default(),
                    tail(&self.op.log_text()),
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Scrapes the test's operator (which watches only the test's
    /// namespace) until every one of `samples` is a line of its /metrics.
    async fn wait_for_samples(&self, samples: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let scrape = self.op.metrics().await;
            let missing: Vec<&&str> = samples
                .iter()
                .filter(|s| !scrape.lines().any(|l| l == **s))
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {missing:?} within 30s:\n{}",
                scrape
                    .lines()
                    .filter(|l| l.contains("applyset"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Each consumer's ManifestWork version in Maestro.
    async fn bundle_versions(&self) -> BTreeMap<String, i64> {
        self.ns
            .live_bundles()
            .await
            .into_iter()
            .map(|b| (b.consumer_name.clone(), b.version))
            .collect()
    }
}

/// What a test saw while it waited: every revision each child was on, and
/// the groups the set reported rolling out, in order.
#[derive(Default)]
struct Seen {
    revisions: BTreeMap<String, BTreeSet<String>>,
    groups: Vec<String>,
}

impl Seen {
    fn children(&mut self, children: &BTreeMap<String, MaestroApply>) {
        for (c, child) in children {
            self.revisions
                .entry(c.clone())
                .or_default()
                .insert(revision_of(child));
        }
    }
}

/// The set reports its current template rolled out (Ready, on the
/// generation it has).
fn rolled_out(s: &MaestroApplySet) -> bool {
    s.status.as_ref().is_some_and(|st| {
        st.observed_generation == s.metadata.generation
            && condition_is(st, "Ready", "True")
            && st.current_revision == st.update_revision
    })
}

/// The set reports a failed rollout of its current generation.
fn stopped(s: &MaestroApplySet) -> bool {
    s.status.as_ref().is_some_and(|st| {
        st.observed_generation == s.metadata.generation && condition_is(st, "RolledBack", "True")
    })
}

/// A template whose second manifest no agent can apply: a ConfigMap in a
/// namespace that does not exist (under a name of its own: the pinned
/// agent reports a manifest Available when one of the same name elsewhere
/// is).
fn bad_manifests(f: &Fleet, name: &str, value: &str) -> Vec<Value> {
    let missing = unique("no-such-namespace");
    vec![
        f.configmap(name, value),
        configmap(
            &missing,
            &format!("{name}-missing"),
            json!({ "value": value }),
        ),
    ]
}

/// A Progressive strategy two consumers at a time that stops at the second
/// failure (a child not Ready within 20 s), each update counting once
/// Ready for `min_success_time`.
fn two_at_a_time_one_failure(min_success_time: &str) -> Value {
    json!({
        "type": "Progressive",
        "maxConcurrency": 2,
        "maxFailures": 1,
        "progressDeadline": "20s",
        "minSuccessTime": min_success_time,
    })
}

/// Asserts that `st` reports the rollout of revision `bad` stopped by two
/// failures (more than maxFailures 1), each named in the RolledBack
/// condition.
fn assert_stopped_by_two_failures(st: &MaestroApplySetStatus, bad: &str) {
    let record = st.rolled_back.as_ref().expect("a rollback record");
    assert_eq!(record.revision, bad);
    assert_eq!(record.failed_consumers.len(), 2, "{record:?}");
    let message = &st.condition("RolledBack").unwrap().message;
    for c in &record.failed_consumers {
        assert!(message.contains(c.as_str()), "{message}");
    }
    assert!(condition_is(st, "Stalled", "True"));
    assert!(condition_is(st, "Ready", "False"));
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn condition_is(status: &MaestroApplySetStatus, type_: &str, value: &str) -> bool {
    status.condition(type_).is_some_and(|c| c.status == value)
}

fn revision_of(child: &MaestroApply) -> String {
    child
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .cloned()
        .unwrap_or_default()
}

fn ready_since(child: &MaestroApply) -> Option<Timestamp> {
    let status = child.status.as_ref()?;
    let c = status.condition("Ready").filter(|c| c.status == "True")?;
    Some(c.last_transition_time.0)
}

fn updated_at(child: &MaestroApply) -> Timestamp {
    child
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(UPDATED_AT_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .expect("the child has its revision-updated-at annotation")
}

#[tokio::test]
async fn all_reaches_every_selected_consumer_and_follows_labels_and_deletion() {
    let f = Fleet::new("set-all").await;
    f.label_all(&[WEST, EAST, WEST3]).await;
    f.apply(
        "web",
        json!({"type": "All"}),
        vec![f.configmap("web-all", "v1")],
        json!({}),
    )
    .await;
    let set = f.wait_rolled_out("web").await;
    let status = set.status.unwrap();
    assert_eq!((status.total, status.ready, status.available), (3, 3, 3));
    assert_eq!(status.ready_summary.as_deref(), Some("3/3"));
    let children = f.children().await;
    assert_eq!(
        children.keys().map(String::as_str).collect::<Vec<_>>(),
        [EAST, WEST, WEST3]
    );
    for child in children.values() {
        let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "MaestroApplySet");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(
            child
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("fleet")
        );
        assert_eq!(revision_of(child), status.update_revision.clone().unwrap());
    }

    // A consumer labelled in joins with the current revision; one
    // labelled out leaves (its child is deleted).
    f.label(EAST4, Some("member")).await;
    f.label(WEST3, None).await;
    let set = f
        .wait_set("web", "following the new labels", |s| {
            s.status.as_ref().is_some_and(|st| {
                st.total == 4 - 1
                    && st.available == 3
                    && st.consumers.iter().any(|r| r.name == EAST4)
                    && !st.consumers.iter().any(|r| r.name == WEST3)
            })
        })
        .await;
    let children = f.children().await;
    assert!(children.contains_key(EAST4), "{:?}", children.keys());
    assert!(!children.contains_key(WEST3), "{:?}", children.keys());
    assert_eq!(
        revision_of(&children[EAST4]),
        set.status.unwrap().current_revision.unwrap()
    );

    // Deleting the set deletes the children (garbage collection), which
    // delete their ManifestWorks by their deletionPolicy.
    f.sets()
        .delete("web", &DeleteParams::foreground())
        .await
        .expect("delete set");
    let deadline = Instant::now() + SET_DEADLINE;
    while !f
        .ns
        .mapply()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "children still exist after the set's deletion"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        f.ns.live_bundles().await.is_empty(),
        "the children's ManifestWorks are deleted from Maestro"
    );
    f.finish().await;
}

#[tokio::test]
async fn progressive_with_max_concurrency_one_updates_one_consumer_at_a_time() {
    let f = Fleet::new("set-prog").await;
    f.label_all(&FLEET).await;
    f.apply(
        "web",
        json!({"type": "Progressive", "maxConcurrency": 1, "minSuccessTime": "2s"}),
        vec![f.configmap("web-prog", "v1")],
        json!({}),
    )
    .await;
    f.wait_rolled_out("web").await;
    let children = f.children().await;
    assert_eq!(children.len(), 4);
    // By name, each started only once the one before was Ready for the
    // soak time.
    let mut order: Vec<(Timestamp, Timestamp, &str)> = children
        .iter()
        .map(|(c, child)| {
            (
                updated_at(child),
                ready_since(child).expect("Ready"),
                c.as_str(),
            )
        })
        .collect();
    order.sort();
    let names: Vec<&str> = order.iter().map(|o| o.2).collect();
    assert_eq!(names, [EAST, EAST4, WEST, WEST3], "consumers taken by name");
    for pair in order.windows(2) {
        let (prev_ready, next_started) = (pair[0].1, pair[1].0);
        assert!(
            next_started >= prev_ready + k8s_openapi::jiff::SignedDuration::from_secs(2),
            "{} started at {next_started} before {} had been Ready (since {prev_ready}) for 2s",
            pair[1].2,
            pair[0].2
        );
    }
    f.finish().await;
}

#[tokio::test]
async fn a_bad_revision_trips_max_failures_and_is_rolled_back_where_it_reached() {
    let f = Fleet::new("set-bad").await;
    f.label_all(&FLEET).await;
    let strategy = two_at_a_time_one_failure("5s");
    f.apply(
        "web",
        strategy.clone(),
        vec![f.configmap("web-bad", "v1")],
        json!({}),
    )
    .await;
    let good = f.wait_rolled_out("web").await.status.unwrap();
    let good_revision = good.current_revision.clone().unwrap();
    let versions_before = f.bundle_versions().await;
    assert_eq!(versions_before.len(), 4, "{versions_before:?}");

    f.apply(
        "web",
        strategy,
        bad_manifests(&f, "web-bad", "v2"),
        json!({}),
    )
    .await;
    // Record every revision each child is seen on until the rollback.
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let deadline = Instant::now() + SET_DEADLINE;
    let set = loop {
        for (c, child) in f.children().await {
            seen.entry(c).or_default().insert(revision_of(&child));
        }
        let set = f.sets().get("web").await.unwrap();
        let st = set.status.clone().unwrap_or_default();
        if condition_is(&st, "RolledBack", "True")
            && st.observed_generation == set.metadata.generation
        {
            break set;
        }
        assert!(
            Instant::now() < deadline,
            "not rolled back: {}\n{}",
            serde_norway::to_string(&set.status).unwrap(),
            tail(&f.op.log_text())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let st = set.status.unwrap();
    let bad_revision = st.update_revision.clone().unwrap();
    assert_ne!(bad_revision, good_revision);
    assert_stopped_by_two_failures(&st, &bad_revision);
    let record = st.rolled_back.clone().unwrap();
    assert_eq!(record.to_revision.as_deref(), Some(good_revision.as_str()));
    assert_eq!(st.phase.as_deref(), Some("RolledBack"));

    // Those it reached go back to the good revision and are Ready again;
    // the others never got it: their ManifestWork was never updated.
    let set = f
        .wait_set("web", "back on the good revision", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.ready == 4 && st.updated == 0)
        })
        .await;
    for (c, child) in f.children().await {
        seen.entry(c.clone())
            .or_default()
            .insert(revision_of(&child));
        assert_eq!(
            revision_of(&child),
            good_revision,
            "{c} is back on the good revision"
        );
    }
    let versions_after = f.bundle_versions().await;
    let reached: BTreeSet<&str> = FLEET
        .into_iter()
        .filter(|c| versions_after[*c] != versions_before[*c])
        .collect();
    for c in FLEET {
        if reached.contains(c) {
            assert!(
                versions_after[c] >= versions_before[c] + 2,
                "{c} was updated to the bad revision and back: {versions_before:?} -> {versions_after:?}"
            );
        } else {
            assert_eq!(
                seen[c],
                BTreeSet::from([good_revision.clone()]),
                "{c} was not reached and never saw the bad revision"
            );
        }
    }
    for c in &record.failed_consumers {
        assert!(
            reached.contains(c.as_str()),
            "{c} failed without being reached"
        );
    }
    // maxConcurrency 2, and a failure within maxFailures frees a slot: at
    // most three consumers are reached before the second failure.
    assert!(
        (2..=3).contains(&reached.len()),
        "reached {reached:?}; versions {versions_before:?} -> {versions_after:?}"
    );
    assert_eq!(
        set.status.unwrap().rolled_back.map(|r| r.revision),
        Some(bad_revision),
        "the record stays until the template changes"
    );
    f.finish().await;
}

#[tokio::test]
async fn suspend_pauses_the_rollout_until_resumed() {
    let f = Fleet::new("set-suspend").await;
    f.label_all(&[WEST, EAST]).await;
    f.apply(
        "web",
        json!({"type": "All"}),
        vec![f.configmap("web-suspend", "v1")],
        json!({"suspend": true}),
    )
    .await;
    let set = f
        .wait_set("web", "Suspended", |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.phase.as_deref() == Some("Suspended") && st.total == 2)
        })
        .await;
    let st = set.status.unwrap();
    assert!(condition_is(&st, "Ready", "False"));
    assert_eq!(st.condition("Ready").unwrap().reason, "Suspended");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        f.children().await.is_empty(),
        "nothing is created while suspended"
    );

    f.apply(
        "web",
        json!({"type": "All"}),
        vec![f.configmap("web-suspend", "v1")],
        json!({"suspend": false}),
    )
    .await;
    let set = f.wait_rolled_out("web").await;
    assert_eq!(set.status.unwrap().available, 2);
    f.finish().await;
}

#[tokio::test]
async fn bad_specs_are_refused_by_the_api_server_with_the_field_named() {
    install_crd();
    let ns = TestNs::new("set-refused").await;
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns.name}});
    let cases = [
        (
            json!({"consumerSelector": {}, "template": {"spec": {"manifestWork": {"workload": {"manifests": [manifest]}}}}}),
            "spec.consumerSelector selects by no label and would match every consumer",
        ),
        // Beside a list it would still match every consumer.
        (
            json!({"consumerSelector": {}, "consumers": ["c1"], "template": {"spec": {"manifestWork": {"workload": {"manifests": [manifest]}}}}}),
            "spec.consumerSelector selects by no label and would match every consumer",
        ),
        (
            json!({"consumers": ["c1"], "rolloutStrategy": {"maxFailures": "150%"}, "template": {"spec": {"manifestWork": {"workload": {"manifests": [manifest]}}}}}),
            "maxFailures must be a non-negative integer or a percentage from 0% to 100%",
        ),
        (
            json!({"consumers": ["c1"], "template": {"spec": {"consumer": "c1", "manifestWork": {"workload": {"manifests": [manifest]}}}}}),
            "spec.template.spec.consumer must not be set",
        ),
    ];
    for (spec, message) in cases {
        let obj = json!({
            "apiVersion": "maestro.hyperfleet.io/v1alpha1",
            "kind": "MaestroApplySet",
            "metadata": {"name": "refused", "namespace": ns.name},
            "spec": spec,
        });
        let (ok, _, stderr) = kubectl(&["apply", "-f", "-"], Some(&obj.to_string())).await;
        assert!(!ok, "{spec} was accepted");
        assert!(stderr.contains(message), "{stderr}");
    }
    // An explicit choice of every consumer is accepted.
    let obj = json!({
        "apiVersion": "maestro.hyperfleet.io/v1alpha1",
        "kind": "MaestroApplySet",
        "metadata": {"name": "everyone", "namespace": ns.name},
        "spec": {"allConsumers": true, "suspend": true,
                 "template": {"spec": {"manifestWork": {"workload": {"manifests": [manifest]}}}}},
    });
    let (ok, stored, stderr) = kubectl(
        &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
        Some(&obj.to_string()),
    )
    .await;
    assert!(ok, "{stderr}");
    // Before any reconcile kstatus must read it as not yet observed.
    let stored: Value = serde_json::from_str(&stored).expect("kubectl prints JSON");
    assert_eq!(stored["status"]["observedGeneration"], 0, "{stored}");
    assert!(stored["status"]["conditions"].is_null(), "{stored}");
    ns.cleanup().await;
}

#[tokio::test]
async fn per_group_rollout_takes_mandatory_groups_first_then_one_group_at_a_time_and_a_mandatory_failure_stops_it()
 {
    let f = Fleet::new("set-groups").await;
    f.label_all(&FLEET).await;
    // By value the groups would go east, pilot, west; pilot is mandatory
    // and must go first.
    f.group(WEST3, "pilot").await;
    f.group(EAST, "east").await;
    f.group(EAST4, "east").await;
    f.group(WEST, "west").await;
    let strategy = json!({
        "type": "ProgressivePerGroup",
        "groupBy": group_key(&f.key),
        "mandatoryGroups": ["pilot"],
        // Every failure outside a mandatory group is tolerated: only the
        // pilot's can stop the rollout.
        "maxFailures": "100%",
        "minSuccessTime": "2s",
        "progressDeadline": "20s",
    });
    f.apply(
        "web",
        strategy.clone(),
        vec![f.configmap("web-groups", "v1")],
        json!({}),
    )
    .await;
    let mut seen = Seen::default();
    let set = f.watch("web", "rolled out", &mut seen, rolled_out).await;
    assert_eq!(seen.groups, ["pilot", "east", "west"], "groups in order");
    let st = set.status.unwrap();
    let good = st.current_revision.clone().unwrap();
    let groups: BTreeMap<&str, Option<&str>> = st
        .consumers
        .iter()
        .map(|r| (r.name.as_str(), r.group.as_deref()))
        .collect();
    assert_eq!(
        groups,
        BTreeMap::from([
            (EAST, Some("east")),
            (WEST, Some("west")),
            (WEST3, Some("pilot")),
            (EAST4, Some("east")),
        ])
    );
    let children = f.children().await;
    let started = |c: &str| updated_at(&children[c]);
    let ready = |c: &str| ready_since(&children[c]).expect("Ready");
    let soak = k8s_openapi::jiff::SignedDuration::from_secs(2);
    // A whole group at once (no maxConcurrency), only once the group
    // before it succeeded (Ready for minSuccessTime).
    assert_eq!(started(EAST), started(EAST4), "east started as one");
    assert!(
        started(EAST) >= ready(WEST3) + soak,
        "east started at {} before pilot had been Ready (since {}) for 2s",
        started(EAST),
        ready(WEST3)
    );
    let east_ready = ready(EAST).max(ready(EAST4));
    assert!(
        started(WEST) >= east_ready + soak,
        "west started at {} before east had been Ready (since {east_ready}) for 2s",
        started(WEST)
    );

    // A revision that fails in the pilot stops there, within maxFailures:
    // no other group gets it, and the pilot goes back.
    let versions_before = f.bundle_versions().await;
    f.apply(
        "web",
        strategy,
        bad_manifests(&f, "web-groups", "v2"),
        json!({}),
    )
    .await;
    let set = f.watch("web", "rolled back", &mut seen, stopped).await;
    let st = set.status.unwrap();
    let record = st.rolled_back.clone().unwrap();
    assert_eq!(record.failed_consumers, [WEST3], "{record:?}");
    assert_eq!(record.to_revision.as_deref(), Some(good.as_str()));
    assert!(
        st.condition("RolledBack").unwrap().message.contains(WEST3),
        "{:?}",
        st.condition("RolledBack")
    );
    assert!(condition_is(&st, "Stalled", "True"));
    assert_eq!(st.phase.as_deref(), Some("RolledBack"));
    f.watch("web", "back on the good revision", &mut seen, |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.ready == 4 && st.updated == 0)
    })
    .await;
    let versions_after = f.bundle_versions().await;
    for c in [EAST, EAST4, WEST] {
        assert_eq!(
            seen.revisions[c],
            BTreeSet::from([good.clone()]),
            "{c} never saw the bad revision"
        );
        assert_eq!(versions_after[c], versions_before[c], "{c} was not updated");
    }
    assert!(
        versions_after[WEST3] >= versions_before[WEST3] + 2,
        "the pilot got the bad revision and went back: {versions_before:?} -> {versions_after:?}"
    );
    f.finish().await;
}

#[tokio::test]
async fn without_automatic_rollback_a_failed_rollout_stops_where_it_is_until_the_template_changes()
{
    let f = Fleet::new("set-noauto").await;
    f.label_all(&FLEET).await;
    let strategy = two_at_a_time_one_failure("2s");
    let no_rollback = json!({"rollback": {"automatic": false}});
    f.apply(
        "web",
        strategy.clone(),
        vec![f.configmap("web-noauto", "v1")],
        no_rollback.clone(),
    )
    .await;
    let mut seen = Seen::default();
    let set = f.watch("web", "rolled out", &mut seen, rolled_out).await;
    let good = set.status.unwrap().current_revision.unwrap();
    let versions_before = f.bundle_versions().await;
    assert_eq!(versions_before.len(), 4, "{versions_before:?}");

    f.apply(
        "web",
        strategy.clone(),
        bad_manifests(&f, "web-noauto", "v2"),
        no_rollback.clone(),
    )
    .await;
    let set = f.watch("web", "stopped", &mut seen, stopped).await;
    let st = set.status.unwrap();
    let bad = st.update_revision.clone().unwrap();
    assert_ne!(bad, good);
    assert_stopped_by_two_failures(&st, &bad);
    let record = st.rolled_back.clone().unwrap();
    assert_eq!(record.to_revision, None, "nothing goes back: {record:?}");
    assert_eq!(st.phase.as_deref(), Some("Halted"));

    // Several relists later nothing has moved: the consumers reached stay
    // on the bad revision, the others never got it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let children = f.children().await;
    seen.children(&children);
    let versions = f.bundle_versions().await;
    let reached: BTreeSet<&str> = FLEET
        .into_iter()
        .filter(|c| revision_of(&children[*c]) == bad)
        .collect();
    // maxConcurrency 2, and a failure within maxFailures frees a slot.
    assert!((2..=3).contains(&reached.len()), "reached {reached:?}");
    for c in &record.failed_consumers {
        assert!(reached.contains(c.as_str()), "{c} failed unreached");
    }
    for c in FLEET {
        if reached.contains(c) {
            assert_eq!(
                versions[c],
                versions_before[c] + 1,
                "{c} was updated to the bad revision once and not back"
            );
        } else {
            assert_eq!(versions[c], versions_before[c], "{c} was not updated");
            assert_eq!(
                seen.revisions[c],
                BTreeSet::from([good.clone()]),
                "{c} never saw the bad revision"
            );
        }
    }
    let st = f.sets().get("web").await.unwrap().status.unwrap();
    assert!(condition_is(&st, "RolledBack", "True"));
    assert_eq!(st.updated as usize, reached.len());
    f.wait_for_samples(&[
        r#"maestro_operator_applysets{phase="Halted"} 1"#,
        r#"maestro_operator_applyset_rollouts_total{result="complete"} 1"#,
        r#"maestro_operator_applyset_rollouts_total{result="rolled_back"} 1"#,
    ])
    .await;

    // A new template starts a new rollout, from wherever each consumer
    // is, and it completes.
    f.apply(
        "web",
        strategy,
        vec![f.configmap("web-noauto", "v3")],
        no_rollback,
    )
    .await;
    // With progressDeadline 20s a child slow to turn Ready on a loaded
    // machine counts as failed within maxFailures 1 and the rollout may
    // complete first: wait for all four to be Ready too.
    let st = f
        .wait_set("web", "rolled out and all four Ready", |s| {
            rolled_out(s) && s.status.as_ref().is_some_and(|st| st.ready == 4)
        })
        .await
        .status
        .unwrap();
    let fixed = st.current_revision.clone().unwrap();
    assert!(fixed != good && fixed != bad, "{fixed}");
    assert_eq!((st.total, st.ready, st.available), (4, 4, 4));
    assert_eq!(
        st.rolled_back, None,
        "the record belonged to the bad revision"
    );
    assert!(condition_is(&st, "RolledBack", "False"));
    for (c, child) in f.children().await {
        assert_eq!(revision_of(&child), fixed, "{c}");
    }
    // Two rollouts completed (the first and the fix), one stopped.
    f.wait_for_samples(&[
        r#"maestro_operator_applyset_rollouts_total{result="complete"} 2"#,
        r#"maestro_operator_applyset_rollouts_total{result="rolled_back"} 1"#,
        r#"maestro_operator_applysets{phase="Ready"} 1"#,
        r#"maestro_operator_applysets{phase="Halted"} 0"#,
        r#"maestro_operator_applyset_consumers{state="Succeeded"} 4"#,
        r#"maestro_operator_applyset_consumers{state="Failed"} 0"#,
    ])
    .await;
    f.finish().await;
}

/// With `spec.template.spec.workName` every child publishes one work name,
/// so a Job can wait on the ManifestWorks themselves across the fleet.
#[tokio::test]
async fn a_template_work_name_lets_maestro_cli_wait_on_the_set_with_a_quorum() {
    let f = Fleet::new("set-quorum").await;
    f.label_all(&FLEET).await;
    let work = unique("fleet-work");
    f.apply(
        "web",
        json!({"type": "All"}),
        Vec::new(),
        json!({"template": {"spec": {
            "workName": work,
            "pollInterval": "2s",
            "manifestWork": {"workload": {"manifests": [f.configmap("web-quorum", "1")]}},
        }}}),
    )
    .await;
    f.wait_rolled_out("web").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let results = dir.path().join("results.json");
    let selector = format!("{}=member", f.key);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maestro-cli"))
        .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
        .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
        .env("MAESTRO_SOURCE_ID", &f.ns.source)
        .env_remove("RESULTS_PATH")
        .args(["wait", "--name", &work, "-l", &selector, "--quorum", "75%"])
        .args(["--condition", "Available", "--timeout", "60s"])
        .arg("--results-path")
        .arg(&results)
        .output()
        .expect("run maestro-cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "maestro-cli wait: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(&results).expect("results file")).expect("JSON");
    assert_eq!(record["quorum"]["required"], 3, "{record}");
    let mut listed: Vec<&str> = record["consumers"]
        .as_array()
        .expect("consumers in the results")
        .iter()
        .filter_map(|c| c["consumer"].as_str())
        .collect();
    listed.sort_unstable();
    let mut fleet = FLEET.to_vec();
    fleet.sort_unstable();
    assert_eq!(listed, fleet, "{record}");
    f.finish().await;
}
