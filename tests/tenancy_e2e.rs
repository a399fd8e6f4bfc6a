//! Tenancy on the real stack: who may deliver what to which consumer,
//! through a MaestroApply or a MaestroApplySet, decided by the API server
//! (config/admission's ValidatingAdmissionPolicies checking RBAC), with
//! users impersonated by the stack's admin (`kubectl --as`); ownership of
//! bundles between objects; the operator's interval floors; a token never
//! sent over plaintext.
//!
//! See tests/support/operator.rs for the harness (it installs the policies).

mod support;

use std::time::Instant;

use serde_json::{Value, json};
use support::operator::*;

/// A user of this test run (the API server knows no users: impersonation
/// makes them up, in group system:authenticated).
fn user(prefix: &str) -> String {
    unique(prefix)
}

async fn admin_apply(yaml: &str) {
    let (ok, _, err) = kubectl(&["apply", "-f", "-"], Some(yaml)).await;
    assert!(ok, "kubectl apply: {err}\n{yaml}");
}

/// Lets `user` create and change `resources` (a YAML list) in `ns`
/// through the Role `role`, as the built-in edit role would: no delivery
/// grant yet.
async fn allow_editing_of(ns: &str, user: &str, role: &str, resources: &str) {
    admin_apply(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: {role}, namespace: {ns}}}
rules:
  - apiGroups: [maestro.hyperfleet.io]
    resources: {resources}
    verbs: [create, get, list, watch, update, patch, delete]
---
{}"#,
        binding(ns, user, "Role", role)
    ))
    .await;
}

/// Lets `user` create and change MaestroApply objects in `ns`: no
/// delivery grant yet.
async fn allow_editing(ns: &str, user: &str) {
    allow_editing_of(ns, user, "mapply-editor", "[maestroapplies]").await;
}

/// A namespace with an operator serving it, and a [`deliverer`] there.
async fn served_tenant(prefix: &str) -> (TestNs, Operator, String) {
    let ns = TestNs::new(prefix).await;
    let op = ns.operator(&[]).await;
    let alice = deliverer(&ns).await;
    (ns, op, alice)
}

/// A user who may edit MaestroApply objects in `ns` and deliver them to
/// every consumer (`maestro-deliver`).
async fn deliverer(ns: &TestNs) -> String {
    let alice = user("alice");
    allow_editing(&ns.name, &alice).await;
    bind(&ns.name, &alice, "maestro-deliver").await;
    alice
}

/// The RoleBinding `ROLE-USER` in `ns` binding the `kind` (Role or
/// ClusterRole) `role` to `user`, as YAML.
fn binding(ns: &str, user: &str, kind: &str, role: &str) -> String {
    format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: {role}-{user}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: {role}}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]
"#
    )
}

/// Binds `cluster_role` to `user` in `ns`.
async fn bind(ns: &str, user: &str, cluster_role: &str) {
    admin_apply(&binding(ns, user, "ClusterRole", cluster_role)).await;
}

/// Removes what [`bind`] granted.
async fn unbind(ns: &str, user: &str, cluster_role: &str) {
    let binding = format!("{cluster_role}-{user}");
    kubectl(&["delete", "rolebinding", "-n", ns, &binding], None).await;
}

/// Grants `user` the `verbs` on the named consumers only, in `ns`, through a
/// ClusterRole of its own (`PREFIX-…`, returned); the test deletes it with
/// [`drop_role`].
async fn grant(ns: &str, user: &str, prefix: &str, consumers: &[&str], verbs: &[&str]) -> String {
    let name = unique(prefix);
    admin_apply(&format!(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
  - apiGroups: [maestro.hyperfleet.io]
    resources: [consumers]
    resourceNames: {consumers:?}
    verbs: {verbs:?}
"#
    ))
    .await;
    bind(ns, user, &name).await;
    name
}

async fn drop_role(name: &str) {
    kubectl(&["delete", "clusterrole", name, "--ignore-not-found"], None).await;
}

fn object(ns: &str, name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "maestro.hyperfleet.io/v1alpha1",
        "kind": "MaestroApply",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    })
    .to_string()
}

/// Asserts that `kubectl apply` as `user` admits `yaml`.
async fn assert_admitted(user: &str, yaml: &str, what: &str) {
    let (ok, err) = apply_as(user, yaml).await;
    assert!(ok, "{what}: {err}");
}

/// `kubectl apply` as `user`; (success, stderr).
async fn apply_as(user: &str, yaml: &str) -> (bool, String) {
    let (ok, _, err) = kubectl(&["--as", user, "apply", "-f", "-"], Some(yaml)).await;
    (ok, err)
}

/// A spec delivering one namespaced ConfigMap to `consumer`.
fn namespaced(ns: &str, consumer: &str) -> Value {
    spec(
        consumer,
        vec![configmap(ns, "tenant-cm", json!({"value": "x"}))],
    )
}

fn with_manifest(ns: &str, consumer: &str, manifest: Value) -> Value {
    let mut s = namespaced(ns, consumer);
    s["manifestWork"]["workload"]["manifests"]
        .as_array_mut()
        .unwrap()
        .push(manifest);
    s
}

fn assert_refused(result: &(bool, String), wants: &[&str]) {
    let (ok, err) = result;
    assert!(!ok, "admitted; expected a refusal naming {wants:?}");
    for want in wants {
        assert!(err.contains(want), "refusal does not name {want:?}:\n{err}");
    }
}

/// Asserts that `user` may not deliver the object `name` in `ns` to
/// `consumer`.
async fn assert_delivery_refused(user: &str, ns: &str, name: &str, consumer: &str) {
    assert_refused(
        &apply_as(user, &object(ns, name, namespaced(ns, consumer))).await,
        &[&format!(
            "may not deliver to consumer {consumer} from namespace {ns}"
        )],
    );
}

#[tokio::test]
async fn a_user_without_a_grant_is_refused_naming_the_verb_consumer_and_namespace() {
    let ns = TestNs::new("ten-nogrant").await;
    let alice = user("alice");
    allow_editing(&ns.name, &alice).await;

    let refused = apply_as(&alice, &object(&ns.name, "web", namespaced(&ns.name, WEST))).await;
    assert_refused(
        &refused,
        &[
            &format!(
                "user {alice} may not deliver to consumer {WEST} from namespace {}",
                ns.name
            ),
            "verb deliver on consumers.maestro.hyperfleet.io/cluster-west-1",
            "maestro-deliver",
        ],
    );
    assert!(ns.get("web").await.is_none(), "nothing was stored");
    ns.cleanup().await;
}

#[tokio::test]
async fn a_grant_on_one_consumer_admits_it_only_and_only_in_its_namespace() {
    let ns = TestNs::new("ten-west").await;
    let other = TestNs::new("ten-other").await;
    let alice = user("alice");
    allow_editing(&ns.name, &alice).await;
    allow_editing(&other.name, &alice).await;
    let role = grant(&ns.name, &alice, "deliver-west", &[WEST], &["deliver"]).await;

    assert_admitted(
        &alice,
        &object(&ns.name, "west", namespaced(&ns.name, WEST)),
        "the granted consumer is admitted",
    )
    .await;
    assert_delivery_refused(&alice, &ns.name, "east", EAST).await;
    assert_delivery_refused(&alice, &other.name, "west", WEST).await;

    // A SubjectAccessReview asks the authorizer the policy's own question.
    assert!(may_deliver(&alice, WEST, &ns.name).await);
    assert!(!may_deliver(&alice, EAST, &ns.name).await);
    assert!(!may_deliver(&alice, WEST, &other.name).await);
    // `kubectl auth can-i --list` shows the grant.
    let (_, list, _) = kubectl(
        &["auth", "can-i", "--list", "-n", &ns.name, "--as", &alice],
        None,
    )
    .await;
    assert!(
        list.lines()
            .any(|l| l.starts_with("consumers.maestro.hyperfleet.io")
                && l.contains(WEST)
                && l.contains("[deliver]")),
        "{list}"
    );

    drop_role(&role).await;
    ns.cleanup().await;
    other.cleanup().await;
}

#[tokio::test]
async fn cluster_wide_manifests_and_executors_need_deliver_cluster_scoped() {
    let ns = TestNs::new("ten-wide").await;
    let alice = deliverer(&ns).await;

    let crb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "tenant-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}],
    });
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-ns"}});
    let role_in_ns = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "r", "namespace": ns.name}, "rules": [],
    });
    for (what, manifest, named) in [
        ("ClusterRoleBinding", crb, "ClusterRoleBinding/tenant-admin"),
        ("Namespace", namespace.clone(), "Namespace/tenant-ns"),
        ("a namespaced Role", role_in_ns, "Role/r"),
    ] {
        let refused = apply_as(
            &alice,
            &object(&ns.name, "wide", with_manifest(&ns.name, WEST, manifest)),
        )
        .await;
        assert!(!refused.0, "{what} admitted");
        assert!(
            refused.1.contains(named) && refused.1.contains("verb deliver-cluster-scoped"),
            "{what}: {}",
            refused.1
        );
    }
    let mut with_executor = namespaced(&ns.name, WEST);
    with_executor["manifestWork"]["executor"] = json!({"subject": {"type": "ServiceAccount", "serviceAccount": {"namespace": "default", "name": "x"}}});
    assert_refused(
        &apply_as(&alice, &object(&ns.name, "exec", with_executor)).await,
        &["spec.manifestWork.executor", "deliver-cluster-scoped"],
    );

    // An admitted object cannot be changed into a cluster-wide one; what
    // was stored is untouched.
    assert_admitted(
        &alice,
        &object(&ns.name, "web", namespaced(&ns.name, WEST)),
        "a namespaced object",
    )
    .await;
    let before = ns.get("web").await.unwrap();
    assert_refused(
        &apply_as(
            &alice,
            &object(
                &ns.name,
                "web",
                with_manifest(&ns.name, WEST, namespace.clone()),
            ),
        )
        .await,
        &["Namespace/tenant-ns", "deliver-cluster-scoped"],
    );
    let after = ns.get("web").await.unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);

    // With the wider grant it is admitted.
    bind(&ns.name, &alice, "maestro-deliver-cluster-scoped").await;
    assert_admitted(
        &alice,
        &object(&ns.name, "web", with_manifest(&ns.name, WEST, namespace)),
        "with deliver-cluster-scoped",
    )
    .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_granted_tenant_is_served_by_the_operator_and_label_edits_need_no_grant() {
    let (ns, op, alice) = served_tenant("ten-serve").await;

    assert_admitted(
        &alice,
        &object(&ns.name, "web", namespaced(&ns.name, WEST)),
        "a granted tenant",
    )
    .await;
    // The operator adds its finalizer and writes status: neither needs a
    // delivery verb.
    ns.wait_ready("web").await;
    ns.wait_configmap("tenant-cm", "delivered", |cm| cm.is_some())
        .await;

    // Losing the grant stops new deliveries, not metadata edits.
    unbind(&ns.name, &alice, "maestro-deliver").await;
    let (ok, _, err) = kubectl(
        &[
            "--as", &alice, "-n", &ns.name, "label", "mapply", "web", "team=a",
        ],
        None,
    )
    .await;
    assert!(ok, "a label edit is admitted without the grant: {err}");
    let mut changed = namespaced(&ns.name, WEST);
    changed["manifestWork"]["workload"]["manifests"][0]["data"]["value"] = json!("y");
    assert_refused(
        &apply_as(&alice, &object(&ns.name, "web", changed)).await,
        &["may not deliver to consumer"],
    );
    drop(op);
    ns.cleanup().await;
}

#[tokio::test]
async fn a_bundle_of_a_deleted_owner_is_adopted_only_with_the_annotation_and_the_adopt_grant() {
    let (ns, _op, alice) = served_tenant("ten-adopt").await;

    // The admin delivered a work and let its object go, leaving the work.
    let mut old = namespaced(&ns.name, WEST);
    old["workName"] = json!("shared");
    old["deletionPolicy"] = json!("Orphan");
    let old_obj = ns.apply_ready("old", old).await;
    ns.delete("old").await;
    ns.wait_gone("old").await;

    let mut new = namespaced(&ns.name, WEST);
    new["workName"] = json!("shared");
    new["manifestWork"]["workload"]["manifests"][0]["data"]["value"] = json!("taken");
    assert_admitted(
        &alice,
        &object(&ns.name, "new", new.clone()),
        "a claim on the shared work",
    )
    .await;
    let claimed = ns
        .wait_condition("new", "Ready", "False", "WorkClaimed")
        .await;
    let message = ready_message(&claimed);
    assert!(message.contains(&format!("{}/old", ns.name)), "{message}");
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].version, 1, "nothing was overwritten");
    assert_eq!(owner_uid(&live[0]), old_obj.metadata.uid);

    // Asking to adopt needs its own verb...
    let mut adopt = serde_json::from_str::<Value>(&object(&ns.name, "new", new)).unwrap();
    adopt["metadata"]["annotations"] = json!({"maestro.hyperfleet.io/adopt": "true"});
    assert_refused(
        &apply_as(&alice, &adopt.to_string()).await,
        &[
            "may not adopt",
            "verb adopt on consumers.maestro.hyperfleet.io/cluster-west-1",
        ],
    );
    // ...and with it the operator relabels the bundle at its version.
    bind(&ns.name, &alice, "maestro-adopt").await;
    assert_admitted(&alice, &adopt.to_string(), "adopt with the adopt grant").await;
    let adopted = ns
        .wait_until("new", "Ready on the adopted work", |o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.is_ready() && s.bundle_version == Some(2))
        })
        .await;
    let live = ns.live_bundles().await;
    assert_eq!(live.len(), 1, "adopted, not duplicated");
    assert_eq!(owner_uid(&live[0]), adopted.metadata.uid);
    ns.cleanup().await;
}

/// A namespace where `user` may create and change MaestroApplySets (and
/// their status), as the built-in edit role would let them: no delivery
/// grant yet.
async fn set_namespace(prefix: &str, user: &str) -> TestNs {
    install_crd();
    let ns = TestNs::new(prefix).await;
    allow_editing_of(
        &ns.name,
        user,
        "mapplyset-editor",
        "[maestroapplysets, maestroapplysets/status]",
    )
    .await;
    ns
}

/// A set listing `consumers`, its template delivering the manifests of
/// `namespaced` plus `extra`.
fn set_object(ns: &str, name: &str, consumers: &[&str], extra: Vec<Value>) -> Value {
    let mut template = namespaced(ns, WEST);
    template
        .as_object_mut()
        .expect("a spec is an object")
        .remove("consumer");
    template["manifestWork"]["workload"]["manifests"]
        .as_array_mut()
        .expect("manifests are a list")
        .extend(extra);
    json!({
        "apiVersion": "maestro.hyperfleet.io/v1alpha1",
        "kind": "MaestroApplySet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"consumers": consumers, "template": {"spec": template}},
    })
}

/// `set` selecting consumers by label instead of listing them.
fn by_selector(mut set: Value) -> Value {
    set["spec"]
        .as_object_mut()
        .expect("a spec is an object")
        .remove("consumers");
    set["spec"]["consumerSelector"] = json!({"matchLabels": {"tenancy-e2e": "never-set"}});
    set
}

async fn set_exists(ns: &str, name: &str) -> bool {
    kubectl(&["get", "mapplyset", "-n", ns, name], None).await.0
}

#[tokio::test]
async fn a_set_is_admitted_for_its_granted_consumers_and_refused_naming_an_ungranted_one() {
    let alice = user("alice");
    let ns = set_namespace("ten-set", &alice).await;

    // No grant at all.
    assert_refused(
        &apply_as(
            &alice,
            &set_object(&ns.name, "none", &[WEST], vec![]).to_string(),
        )
        .await,
        &[&format!(
            "user {alice} may not deliver to consumer {WEST} from namespace {}: this needs verb deliver on consumers.maestro.hyperfleet.io/{WEST} in namespace {}",
            ns.name, ns.name
        )],
    );
    let role = grant(&ns.name, &alice, "deliver-west", &[WEST], &["deliver"]).await;
    assert_admitted(
        &alice,
        &set_object(&ns.name, "west", &[WEST], vec![]).to_string(),
        "a set listing exactly the granted consumer is admitted",
    )
    .await;
    assert!(set_exists(&ns.name, "west").await);

    let refused = apply_as(
        &alice,
        &set_object(&ns.name, "both", &[WEST, EAST], vec![]).to_string(),
    )
    .await;
    assert_refused(
        &refused,
        &[
            "maestroapplyset-delivery.maestro.hyperfleet.io",
            &format!(
                "user {alice} may not deliver to consumer {EAST} from namespace {}",
                ns.name
            ),
            &format!("verb deliver on consumers.maestro.hyperfleet.io/{EAST}"),
            "maestro-deliver",
        ],
    );
    assert!(!set_exists(&ns.name, "both").await, "nothing was stored");

    // The admitted set cannot be widened to another consumer either.
    assert_refused(
        &apply_as(
            &alice,
            &set_object(&ns.name, "west", &[WEST, EAST], vec![]).to_string(),
        )
        .await,
        &[&format!("may not deliver to consumer {EAST}")],
    );
    drop_role(&role).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_selector_or_a_long_list_needs_deliver_on_all_consumers_not_per_consumer_grants() {
    let alice = user("alice");
    let ns = set_namespace("ten-setsel", &alice).await;
    let many = ["c-1", "c-2", "c-3", "c-4", "c-5", "c-6", "c-7"];
    let mut named: Vec<&str> = vec![WEST, EAST];
    named.extend(many);
    // Every consumer by name, none without a name.
    let role = grant(&ns.name, &alice, "deliver-named", &named, &["deliver"]).await;

    let selector = by_selector(set_object(&ns.name, "sel", &[], vec![]));
    let why =
        "spec.consumerSelector (or spec.allConsumers) can reach consumers not known at admission";
    let needs = format!(
        "this needs verb deliver on all consumers.maestro.hyperfleet.io in namespace {}",
        ns.name
    );
    assert_refused(
        &apply_as(&alice, &selector.to_string()).await,
        &[
            &format!(
                "user {alice} may not deliver through this set from namespace {}",
                ns.name
            ),
            why,
            &needs,
            "a grant limited to named consumers does not count",
        ],
    );
    let mut all = set_object(&ns.name, "all", &[], vec![]);
    all["spec"].as_object_mut().unwrap().remove("consumers");
    all["spec"]["allConsumers"] = json!(true);
    assert_refused(&apply_as(&alice, &all.to_string()).await, &[why, &needs]);
    // An empty selector next to a list would match every consumer: the
    // CRD refuses it before the policy is asked.
    let mut empty = set_object(&ns.name, "empty", &[WEST], vec![]);
    empty["spec"]["consumerSelector"] = json!({});
    assert_refused(
        &apply_as(&alice, &empty.to_string()).await,
        &["spec.consumerSelector selects by no label and would match every consumer"],
    );

    // Six listed consumers are checked one by one; a seventh is one too
    // many for the API server's CEL budget.
    let six = set_object(&ns.name, "six", &many[..6], vec![]);
    assert_admitted(&alice, &six.to_string(), "six granted consumers").await;
    assert_refused(
        &apply_as(
            &alice,
            &set_object(&ns.name, "seven", &many, vec![]).to_string(),
        )
        .await,
        &[
            "spec.consumers lists 7 consumers, more than the 6 the policy checks one by one",
            &needs,
            "split spec.consumers into sets of at most 6",
        ],
    );

    // The blanket grant admits all of them.
    bind(&ns.name, &alice, "maestro-deliver").await;
    for (what, set) in [("selector", selector), ("allConsumers", all)] {
        assert_admitted(
            &alice,
            &set.to_string(),
            &format!("{what} with deliver on all consumers"),
        )
        .await;
    }
    assert_admitted(
        &alice,
        &set_object(&ns.name, "seven", &many, vec![]).to_string(),
        "seven with deliver on all consumers",
    )
    .await;
    drop_role(&role).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_set_with_wide_manifests_an_executor_or_adopt_needs_those_verbs_per_consumer_or_on_all() {
    let alice = user("alice");
    let ns = set_namespace("ten-setwide", &alice).await;
    let deliver = grant(
        &ns.name,
        &alice,
        "deliver-west-east",
        &[WEST, EAST],
        &["deliver"],
    )
    .await;
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-ns"}});

    let wide = set_object(&ns.name, "wide", &[WEST, EAST], vec![namespace.clone()]);
    assert_refused(
        &apply_as(&alice, &wide.to_string()).await,
        &[
            &format!(
                "user {alice} may not deliver cluster-scoped or cluster-wide objects (Namespace/tenant-ns) to consumer {WEST} from namespace {}",
                ns.name
            ),
            &format!("verb deliver-cluster-scoped on consumers.maestro.hyperfleet.io/{WEST}"),
            "maestro-deliver-cluster-scoped",
        ],
    );
    let mut executor = set_object(&ns.name, "exec", &[WEST], vec![]);
    executor["spec"]["template"]["spec"]["manifestWork"]["executor"] = json!({"subject": {"type": "ServiceAccount", "serviceAccount": {"namespace": "default", "name": "x"}}});
    assert_refused(
        &apply_as(&alice, &executor.to_string()).await,
        &[
            "with spec.template.spec.manifestWork.executor set",
            "deliver-cluster-scoped",
        ],
    );

    // Granted on WEST only: EAST is named.
    let wide_west = grant(
        &ns.name,
        &alice,
        "wide-west",
        &[WEST],
        &["deliver-cluster-scoped"],
    )
    .await;
    assert_refused(
        &apply_as(&alice, &wide.to_string()).await,
        &[&format!(
            "may not deliver cluster-scoped or cluster-wide objects (Namespace/tenant-ns) to consumer {EAST}"
        )],
    );
    assert_admitted(
        &alice,
        &set_object(&ns.name, "wide", &[WEST], vec![namespace.clone()]).to_string(),
        "wide manifests to the consumer granted them",
    )
    .await;
    assert_admitted(
        &alice,
        &executor.to_string(),
        "an executor on the consumer granted it",
    )
    .await;

    // A selector with wide manifests needs deliver-cluster-scoped on all
    // consumers, beyond deliver on all.
    bind(&ns.name, &alice, "maestro-deliver").await;
    let wide_selector = by_selector(set_object(&ns.name, "wide-sel", &[], vec![namespace]));
    assert_refused(
        &apply_as(&alice, &wide_selector.to_string()).await,
        &[
            "may not deliver cluster-scoped or cluster-wide objects (Namespace/tenant-ns) through this set",
            "can reach consumers not known at admission",
            "verb deliver-cluster-scoped on all consumers.maestro.hyperfleet.io",
        ],
    );
    bind(&ns.name, &alice, "maestro-deliver-cluster-scoped").await;
    assert_admitted(
        &alice,
        &wide_selector.to_string(),
        "a wide selector with deliver-cluster-scoped on all",
    )
    .await;

    // The template's adopt annotation reaches every child: it needs adopt.
    let mut adopting = set_object(&ns.name, "adopt", &[WEST], vec![]);
    adopting["spec"]["template"]["metadata"] =
        json!({"annotations": {"maestro.hyperfleet.io/adopt": "true"}});
    assert_refused(
        &apply_as(&alice, &adopting.to_string()).await,
        &[
            &format!("user {alice} may not adopt ManifestWorks on consumer {WEST}"),
            "spec.template.metadata",
            &format!("verb adopt on consumers.maestro.hyperfleet.io/{WEST}"),
        ],
    );
    let adopt_selector = by_selector(adopting.clone());
    assert_refused(
        &apply_as(&alice, &adopt_selector.to_string()).await,
        &[
            "may not adopt ManifestWorks through this set",
            "verb adopt on all consumers",
        ],
    );
    bind(&ns.name, &alice, "maestro-adopt").await;
    for set in [adopting, adopt_selector] {
        assert_admitted(&alice, &set.to_string(), "adopt with the adopt grant").await;
    }
    drop_role(&deliver).await;
    drop_role(&wide_west).await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_sets_labels_finalizers_and_status_change_without_a_grant_but_its_spec_does_not() {
    let alice = user("alice");
    let ns = set_namespace("ten-setmeta", &alice).await;
    bind(&ns.name, &alice, "maestro-deliver").await;
    let set = set_object(&ns.name, "web", &[WEST], vec![]);
    assert_admitted(&alice, &set.to_string(), "a set with deliver").await;

    unbind(&ns.name, &alice, "maestro-deliver").await;
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--as", alice.as_str(), "-n", ns.name.as_str()];
        all.extend_from_slice(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    for (what, args) in [
        (
            "a label",
            as_alice(&["label", "mapplyset", "web", "team=a"]),
        ),
        (
            "a finalizer",
            as_alice(&[
                "patch",
                "mapplyset",
                "web",
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":["tenancy-e2e/hold"]}}"#,
            ]),
        ),
        (
            "status",
            as_alice(&[
                "patch",
                "mapplyset",
                "web",
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"observedGeneration":1}}"#,
            ]),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, _, err) = kubectl(&args, None).await;
        assert!(ok, "{what} is admitted without the grant: {err}");
    }
    let (_, stored, _) = kubectl(
        &["get", "mapplyset", "-n", &ns.name, "web", "-o", "json"],
        None,
    )
    .await;
    let stored: Value = serde_json::from_str(&stored).expect("the set as JSON");
    assert_eq!(stored["metadata"]["labels"]["team"], "a");
    assert_eq!(stored["metadata"]["finalizers"][0], "tenancy-e2e/hold");
    assert_eq!(stored["status"]["observedGeneration"], 1);

    let mut changed = set.clone();
    changed["spec"]["template"]["spec"]["manifestWork"]["workload"]["manifests"][0]["data"]["value"] =
        json!("y");
    assert_refused(
        &apply_as(&alice, &changed.to_string()).await,
        &[&format!("may not deliver to consumer {WEST}")],
    );
    kubectl(
        &[
            "patch",
            "mapplyset",
            "-n",
            &ns.name,
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
        None,
    )
    .await;
    ns.cleanup().await;
}

#[tokio::test]
async fn intervals_below_the_floors_are_raised_and_forced_refreshes_are_rate_limited() {
    let ns = TestNs::new("ten-floors").await;
    let op = ns
        .operator(&["--min-poll-interval=5s", "--min-interval=1m"])
        .await;
    let mut s = namespaced(&ns.name, WEST);
    s["pollInterval"] = json!("1s");
    s["interval"] = json!("10s");
    ns.apply("web", s).await;
    let obj = ns
        .wait_condition("web", "IntervalsRaised", "True", "BelowOperatorMinimum")
        .await;
    let message = &obj
        .status
        .as_ref()
        .unwrap()
        .condition("IntervalsRaised")
        .unwrap()
        .message;
    assert!(
        message.contains("spec.pollInterval 1s") && message.contains("using 5s"),
        "{message}"
    );
    assert!(message.contains("spec.interval 10s"), "{message}");
    ns.wait_ready("web").await;
    let (_, events, _) = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns.name,
            "--field-selector",
            "involvedObject.name=web,reason=BelowOperatorMinimum",
            "-o",
            "custom-columns=TYPE:.type",
            "--no-headers",
        ],
        None,
    )
    .await;
    assert_eq!(events.trim(), "Warning", "one Warning event: {events:?}");

    // A tenant pulsing reconcile-requested-at: at most one status read of
    // the consumer per --min-poll-interval.
    let polls = op.metric("maestro_operator_maestro_polls_total").await;
    let started = Instant::now();
    for i in 0..20 {
        let patch = json!({"metadata": {"annotations": {
            "maestro.hyperfleet.io/reconcile-requested-at": format!("pulse-{i}")}}});
        ns.mapply()
            .patch(
                "web",
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(patch),
            )
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    ns.wait_until("web", "acknowledging the last pulse", |o| {
        o.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("pulse-19")
    })
    .await;
    let spent = op.metric("maestro_operator_maestro_polls_total").await - polls;
    let allowed = (started.elapsed().as_secs_f64() / 5.0).ceil() + 1.0;
    assert!(
        spent >= 1.0 && spent <= allowed,
        "{spent} polls for 20 pulses in {:?} (allowed {allowed})",
        started.elapsed()
    );
    ns.cleanup().await;
}

/// `maestro-cli list --consumer WEST --token-file TOKEN EXTRA...` against
/// the stack's plaintext Maestro.
async fn cli_list_with_token(token: &str, extra: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_maestro-cli"))
        .args(["list", "--consumer", WEST, "--token-file", token])
        .args(extra)
        .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
        .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bearer_token_is_never_sent_over_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "secret-token").unwrap();
    let token = token.to_str().unwrap();

    // The CLI: a usage error naming the endpoint and the way out.
    let out = cli_list_with_token(token, &[]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refusing to send the bearer token"), "{err}");
    assert!(err.contains("--allow-insecure-token"), "{err}");
    assert!(!err.contains("secret-token"), "the token is never printed");

    // The operator: refuses to start.
    let out = operator_exit(&["--token-file", token]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refusing to send the bearer token"), "{err}");

    // With the explicit opt-in the CLI goes ahead (and Maestro, which does
    // not check tokens on this plaintext instance, answers).
    let out = cli_list_with_token(token, &["--allow-insecure-token"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The authorizer's answer to the policy's question, as the README shows
/// it (a SubjectAccessReview: `kubectl auth can-i` cannot name a resource
/// that discovery does not serve in a group).
async fn may_deliver(user: &str, consumer: &str, namespace: &str) -> bool {
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:authenticated"],
            "resourceAttributes": {
                "group": "maestro.hyperfleet.io", "resource": "consumers",
                "verb": "deliver", "namespace": namespace, "name": consumer,
            },
        },
    });
    let (ok, out, err) = kubectl(
        &["create", "-o", "jsonpath={.status.allowed}", "-f", "-"],
        Some(&review.to_string()),
    )
    .await;
    assert!(ok, "SubjectAccessReview: {err}");
    out.trim() == "true"
}
