#!/usr/bin/env bash
# The deployment tests, one entry point for CI: the chart, the kustomize
# tree, RBAC and the operator under its ServiceAccount on the local stack's
# real API server, and the Argo CD health check.
#
#   eval "$(bash tests/stack/stack.sh env)" && bash tests/deploy/run.sh
#
# Steps (each PASS or FAIL; later steps run even when one fails):
#   lint-scripts        shellcheck of the scripts in tests/deploy
#   sync                config/crd, the chart's CRD copy and argocd-cm.yaml match their sources
#   helm-lint           helm lint --strict (defaults and the test values); a misspelt key is refused
#   helm-snapshot       helm template equals tests/deploy/snapshots (UPDATE_SNAPSHOTS=1 rewrites)
#   kustomize-render    config/default renders, and so do the optional prometheus and network-policy parts
#   hardening           every rendered Deployment has the hardened pod spec, probes, requests and limits
#   operator-flags      the operator binary accepts every flag the chart and config/manager pass it
#   kustomize-dry-run   kubectl apply -k config/default --dry-run=server (with the optional parts too)
#   kustomize-apply     kubectl apply -k config/default for real; the pod passes Pod Security "restricted";
#                       its ServiceAccount may do what the operator needs and nothing else; then removed
#   helm-install        helm install into a fresh namespace (TLS Secret as the README says); objects exist,
#                       the tenancy policy among them, and it refuses a user without a delivery grant
#   rbac-can-i          kubectl auth can-i as the chart's ServiceAccount: every needed verb, and denials
#   operator-proof      the operator under the ServiceAccount's token takes a MaestroApply through its life
#   helm-upgrade        helm upgrade to watchNamespace: a Role in that namespace replaces the ClusterRole
#   operator-proof-ns   the operator, namespaced, under the same token
#   helm-uninstall      helm uninstall removes everything but the CRD (kept), the policy included
#   lua-health          deploy/argocd/health.lua against the samples (Lua 5.1 and 5.4)
#   containerfile       the Containerfile's targets, user, pinned bases and build context
#   release-build       the Containerfile's cargo command on its context; the binaries start and
#                       need nothing distroless/cc lacks. Minutes: only with DEPLOY_RELEASE_BUILD=1,
#                       else reported as skipped
# The last line is "N passed, N failed" (", N skipped" when DEPLOY_SKIP="STEP ..."
# named some); the exit status is non-zero when any failed. DEPLOY_VERBOSE=1
# prints every step's log.
#
# Needs the stack's kube component (KUBECONFIG, KUBECTL, HELM), Maestro and
# its agents (MAESTRO_* from `stack.sh env`), and the operator binary
# (OPERATOR_BIN, default target/debug/maestro-operator, built when missing).
# Installs shellcheck, lua5.1, lua5.4 and python3-yaml with apt-get if missing.
# Never deletes the MaestroApply CRD: other tests on the same stack use it;
# and writes it (kustomize-apply, helm-install) only when the copies equal
# crds/ (sync passed), so a stale copy never replaces a newer CRD.
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$DEPLOY_ROOT"

stack_tools
exec 9>"${TMPDIR:-/tmp}/maestro-operator-deploy-tests.lock"
flock -w 900 9 || die "another tests/deploy/run.sh holds the lock"

PY=$(python_with_yaml)
OPERATOR_BIN=${OPERATOR_BIN:-$DEPLOY_ROOT/target/debug/maestro-operator}
export OPERATOR_BIN
work=$(mktemp -d)
suffix="$(date +%s)-$RANDOM"
release="mo-$suffix"
release_ns="deploy-test-$suffix"
watch_ns="deploy-test-$suffix-watched"
kustomize_ns=maestro-operator-system
kustomize_sa="system:serviceaccount:$kustomize_ns:maestro-operator-controller-manager"
crd=maestroapplies.maestro.hyperfleet.io
policy=maestroapply-delivery.maestro.hyperfleet.io

passed=0 failed=0 skipped=0
declare -A result=()
# DEPLOY_SKIP="step ..." skips steps by name, loudly (counted as skipped).
skip_env=${DEPLOY_SKIP:-}
read -r -a skip_list <<<"${skip_env//,/ }"

# step NAME [REQUIRED_STEP...] -- FUNCTION: runs FUNCTION, logs to a file,
# prints PASS or FAIL (with the log's tail).
step() {
  local name=$1 start=$SECONDS rc=0 dep s
  shift
  for s in "${skip_list[@]}"; do
    if [[ $s == "$name" ]]; then
      result[$name]=SKIP
      skipped=$((skipped + 1))
      printf 'SKIP %-18s DEPLOY_SKIP names it\n' "$name"
      return 0
    fi
  done
  while [[ $1 != -- ]]; do
    dep=$1
    shift
    if [[ ${result[$dep]:-} == SKIP ]]; then
      result[$name]=SKIP
      skipped=$((skipped + 1))
      printf 'SKIP %-18s it needs %s, which was skipped\n' "$name" "$dep"
      return 0
    elif [[ ${result[$dep]:-} != PASS ]]; then
      result[$name]=FAIL
      failed=$((failed + 1))
      printf 'FAIL %-18s not run: it needs %s, which failed\n' "$name" "$dep"
      return 0
    fi
  done
  shift
  # In the background, so that errexit applies inside the step (bash
  # ignores it in a subshell whose status is tested with || or if).
  (
    set -euo pipefail
    "$@"
  ) >"$work/$name.log" 2>&1 </dev/null &
  wait $! || rc=$?
  if ((rc == 0)); then
    result[$name]=PASS
    passed=$((passed + 1))
    printf 'PASS %-18s %4ss\n' "$name" $((SECONDS - start))
  else
    result[$name]=FAIL
    failed=$((failed + 1))
    printf 'FAIL %-18s %4ss (exit %s); last lines of its log:\n' "$name" $((SECONDS - start)) "$rc"
    tail -n "${DEPLOY_LOG_LINES:-40}" "$work/$name.log" | sed 's/^/     | /'
  fi
  if [[ ${DEPLOY_VERBOSE:-0} == 1 ]]; then
    sed 's/^/     : /' "$work/$name.log"
  fi
}

cleanup() {
  local rc=$?
  set +e
  if "$HELM" status "$release" -n "$release_ns" >/dev/null 2>&1; then
    "$HELM" uninstall "$release" -n "$release_ns" --wait --timeout 2m >/dev/null
  fi
  "$KUBECTL" delete namespace "$release_ns" "$watch_ns" --ignore-not-found --wait=false >/dev/null 2>&1
  if [[ -f $work/kustomize-applied ]]; then
    kustomize_delete >/dev/null 2>&1
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

expect() { # expect DESCRIPTION COMMAND...: runs COMMAND, fails with DESCRIPTION
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAILED: $what" >&2
    return 1
  fi
}

# can_i SUBJECT yes|no VERB RESOURCE [kubectl auth can-i flags...]
can_i() {
  local as=$1 want=$2 verb=$3 resource=$4 got
  shift 4
  got=$("$KUBECTL" auth can-i "$verb" "$resource" --as="$as" "$@" 2>/dev/null || true)
  if [[ $got == "$want" ]]; then
    printf 'ok: %-3s %-7s %s %s\n' "$want" "$verb" "$resource" "$*"
  else
    printf 'FAILED: %s may %s %s %s: got %q, want %s\n' "$as" "$verb" "$resource" "$*" "$got" "$want" >&2
    return 1
  fi
}

# The operator's needs (cluster-wide mode) and what it must never get.
# can_i_operator SUBJECT NAMESPACE LEASE
can_i_operator() {
  local as=$1 ns=$2 lease=$3 bad=0
  can_i "$as" yes list maestroapplies.maestro.hyperfleet.io -A || bad=1
  can_i "$as" yes watch maestroapplies.maestro.hyperfleet.io -A || bad=1
  can_i "$as" yes get maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" yes patch maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" yes patch maestroapplies.maestro.hyperfleet.io -n default --subresource=status || bad=1
  can_i "$as" yes create events.events.k8s.io -n default || bad=1
  can_i "$as" yes patch events.events.k8s.io -n default || bad=1
  # Secure /metrics (the default): who a scraper's token is, and whether it
  # may get /metrics.
  can_i "$as" yes create tokenreviews.authentication.k8s.io || bad=1
  can_i "$as" yes create subjectaccessreviews.authorization.k8s.io || bad=1
  can_i "$as" yes get "leases.coordination.k8s.io/$lease" -n "$ns" || bad=1
  can_i "$as" yes create leases.coordination.k8s.io -n "$ns" || bad=1
  can_i "$as" yes patch "leases.coordination.k8s.io/$lease" -n "$ns" || bad=1
  # Least privilege: none of these.
  can_i "$as" no list secrets -A || bad=1
  can_i "$as" no get secrets -n "$ns" || bad=1
  can_i "$as" no list configmaps -A || bad=1
  # MaestroApplySet children: created and deleted by the operator.
  can_i "$as" yes create maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" yes delete maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" yes watch maestroapplysets.maestro.hyperfleet.io -A || bad=1
  can_i "$as" yes patch maestroapplysets.maestro.hyperfleet.io -n default --subresource=status || bad=1
  can_i "$as" yes update maestroapplysets.maestro.hyperfleet.io -n default --subresource=finalizers || bad=1
  can_i "$as" yes create controllerrevisions.apps -n default || bad=1
  can_i "$as" no create maestroapplysets.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" no patch maestroapplysets.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" no update controllerrevisions.apps -n default || bad=1
  can_i "$as" no update maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" no update maestroapplies.maestro.hyperfleet.io -n default --subresource=status || bad=1
  can_i "$as" no create events -n default || bad=1
  can_i "$as" no delete events.events.k8s.io -n default || bad=1
  can_i "$as" no patch leases.coordination.k8s.io -n kube-system || bad=1
  can_i "$as" no create leases.coordination.k8s.io -n default || bad=1
  can_i "$as" no delete leases.coordination.k8s.io -n "$ns" || bad=1
  # Only its own Lease: not another controller's in the same namespace.
  can_i "$as" no patch leases.coordination.k8s.io/another-controller -n "$ns" || bad=1
  can_i "$as" no get leases.coordination.k8s.io/another-controller -n "$ns" || bad=1
  can_i "$as" no update customresourcedefinitions.apiextensions.k8s.io || bad=1
  can_i "$as" no create pods -n "$ns" || bad=1
  can_i "$as" no impersonate serviceaccounts -A || bad=1
  can_i "$as" no create serviceaccounts --subresource=token -n "$ns" || bad=1
  can_i "$as" no get /metrics || bad=1
  return "$bad"
}

# A copy of config/ with the optional parts switched on.
kustomize_full_overlay() {
  rm -rf "$work/config"
  cp -R "$DEPLOY_ROOT/config" "$work/config"
  sed -i -e 's|^  #- \.\./prometheus|  - ../prometheus|' -e 's|^  #- \.\./network-policy|  - ../network-policy|' \
    "$work/config/default/kustomization.yaml"
  echo "$work/config/default"
}

kustomize_delete() {
  # Everything config/default created, but not the CRD (shared by the stack).
  "$KUBECTL" kustomize config/default >"$work/kustomize-delete.yaml"
  "$PY" - "$work/kustomize-delete.yaml" >"$work/kustomize-delete-nocrd.yaml" <<'PY'
import sys
import yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] != "CustomResourceDefinition"]
yaml.safe_dump_all(docs, sys.stdout)
PY
  "$KUBECTL" delete -f "$work/kustomize-delete-nocrd.yaml" --ignore-not-found --wait=true --timeout=120s
  rm -f "$work/kustomize-applied"
}

# Pod Security "restricted" admits a Pod made from DEPLOYMENT's template in
# NAMESPACE (server-side dry run), and refuses an unhardened one (so the
# check is live).
pod_security_restricted() {
  local ns=$1 deployment=$2
  [[ $("$KUBECTL" get namespace "$ns" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]] ||
    {
      echo "FAILED: namespace $ns does not enforce Pod Security restricted" >&2
      return 1
    }
  "$KUBECTL" -n "$ns" get deployment "$deployment" -o json |
    "$PY" -c '
import json, sys
d = json.load(sys.stdin)
t = d["spec"]["template"]
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"generateName": "pss-check-", "labels": t["metadata"].get("labels", {})},
                  "spec": t["spec"]}))' >"$work/pod.json"
  expect "Pod Security restricted admits the operator's pod in $ns" \
    "$KUBECTL" -n "$ns" create --dry-run=server -f "$work/pod.json" -o name
  if "$KUBECTL" -n "$ns" run pss-negative-control --image=busybox --restart=Never --dry-run=server -o name >/dev/null 2>&1; then
    echo "FAILED: $ns admits an unhardened pod: Pod Security is not enforced" >&2
    return 1
  fi
  echo "ok: $ns refuses an unhardened pod (the check is live)"
}

# ------------------------------------------------------------------- steps

t_shellcheck() {
  command -v shellcheck >/dev/null || apt_install shellcheck
  shellcheck --version | sed -n 2p
  shellcheck -x tests/deploy/*.sh tests/deploy/lib/*.sh
}

t_sync() { bash tests/deploy/sync.sh --check; }

t_helm_lint() {
  "$HELM" lint --strict "$CHART_DIR"
  "$HELM" lint --strict "$CHART_DIR" -f tests/deploy/values/full.yaml
  "$HELM" lint --strict "$CHART_DIR" -f tests/deploy/values/namespaced-token.yaml
  if "$HELM" lint --strict "$CHART_DIR" --set maestro.grpcEndpont=typo >"$work/lint-typo.log" 2>&1; then
    echo "FAILED: a misspelt value (maestro.grpcEndpont) passed the values schema" >&2
    return 1
  fi
  grep -q 'grpcEndpont' "$work/lint-typo.log" && echo "ok: the schema refuses a misspelt value"
  if "$HELM" template x "$CHART_DIR" --set replicaCount=2 --set leaderElection.enabled=false >/dev/null 2>&1; then
    echo "FAILED: two replicas without leader election rendered" >&2
    return 1
  fi
  echo "ok: two replicas without leader election are refused"
}

t_helm_snapshot() { bash tests/deploy/helm-snapshot.sh; }

render_all() {
  "$HELM" template maestro-operator "$CHART_DIR" -n maestro-operator-system >"$work/r-chart-default.yaml"
  "$HELM" template maestro-operator "$CHART_DIR" -n maestro-operator-system \
    -f tests/deploy/values/full.yaml >"$work/r-chart-full.yaml"
  "$HELM" template maestro-operator "$CHART_DIR" -n maestro-operator-system \
    -f tests/deploy/values/namespaced-token.yaml >"$work/r-chart-namespaced-token.yaml"
  "$KUBECTL" kustomize config/default >"$work/r-kustomize-default.yaml"
  "$KUBECTL" kustomize "$(kustomize_full_overlay)" >"$work/r-kustomize-full.yaml"
  "$KUBECTL" kustomize tests/deploy/overlays/example >"$work/r-kustomize-example-overlay.yaml"
}

t_kustomize_render() {
  render_all
  local kinds
  kinds=$("$PY" tests/deploy/lib/manifests.py names "$work/r-kustomize-default.yaml")
  echo "$kinds"
  for want in "Namespace - maestro-operator-system" "CustomResourceDefinition - $crd" \
    "ServiceAccount $kustomize_ns maestro-operator-controller-manager" \
    "ClusterRole - maestro-operator-manager-role" "ClusterRoleBinding - maestro-operator-manager-rolebinding" \
    "ClusterRole - maestro-operator-metrics-reader" \
    "Role $kustomize_ns maestro-operator-leader-election-role" \
    "RoleBinding $kustomize_ns maestro-operator-leader-election-rolebinding" \
    "Service $kustomize_ns maestro-operator-controller-manager-metrics-service" \
    "Deployment $kustomize_ns maestro-operator-controller-manager"; do
    grep -qx "$want" <<<"$kinds" || {
      echo "FAILED: config/default does not render $want" >&2
      return 1
    }
  done
  # The README's overlay: endpoints by name, image, replicas.
  local overlay=$work/r-kustomize-example-overlay.yaml
  if grep -q 'value: https://maestro-grpc.maestro.svc:8090' "$overlay" &&
    grep -q 'image: registry.example.com/platform/maestro-operator:0.1.0' "$overlay" &&
    [[ $(grep -c 'name: MAESTRO_GRPC_ENDPOINT' "$overlay") == 1 ]]; then
    echo "ok: the README's overlay (tests/deploy/overlays/example) sets the endpoints, image and replicas"
  else
    echo "FAILED: the README's overlay does not render as documented" >&2
    return 1
  fi
  grep -q '^kind: ServiceMonitor' "$work/r-kustomize-full.yaml" &&
    grep -q '^kind: PrometheusRule' "$work/r-kustomize-full.yaml" &&
    grep -q '^kind: NetworkPolicy' "$work/r-kustomize-full.yaml" &&
    echo "ok: with ../prometheus and ../network-policy switched on, the ServiceMonitor, PrometheusRule and NetworkPolicy render"
}

t_hardening() {
  local f bad=0
  [[ -f $work/r-kustomize-full.yaml ]] || render_all
  for f in "$work"/r-*.yaml; do
    if "$PY" tests/deploy/lib/manifests.py hardening "$f"; then
      echo "ok: $(basename "$f" .yaml | sed 's/^r-//') is hardened"
    else
      bad=1
    fi
  done
  return "$bad"
}

t_operator_flags() {
  local f bad=0 args
  [[ -f $work/r-kustomize-full.yaml ]] || render_all
  if [[ ! -x $OPERATOR_BIN ]]; then
    cargo build --bin maestro-operator
  fi
  for f in "$work"/r-*.yaml; do
    mapfile -t args < <("$PY" tests/deploy/lib/manifests.py args "$f")
    # The parser runs over every flag before --help prints: an unknown flag,
    # a repeated one or a bad value fails here.
    if "$OPERATOR_BIN" "${args[@]}" --help >/dev/null 2>"$work/flags.err"; then
      echo "ok: $(basename "$f" .yaml | sed 's/^r-//'): ${#args[@]} flags accepted"
    else
      echo "FAILED: $(basename "$f" .yaml | sed 's/^r-//'): the operator refuses its flags:" >&2
      cat "$work/flags.err" >&2
      bad=1
    fi
    # Environment variables: each must be one the operator reads (a flag's
    # [env: NAME] in --help), or one of the few read directly.
    while read -r name; do
      case $name in
      POD_NAMESPACE | RUST_LOG | HTTPS_PROXY | HTTP_PROXY | NO_PROXY) continue ;;
      esac
      if ! "$OPERATOR_BIN" --help | grep -qF "[env: $name="; then
        echo "FAILED: $(basename "$f" .yaml | sed 's/^r-//'): the operator reads no environment variable $name" >&2
        bad=1
      fi
    done < <("$PY" tests/deploy/lib/manifests.py env "$f")
  done
  return "$bad"
}

t_kustomize_dry_run() {
  require_api_server
  # Namespaced objects cannot be dry-run into a namespace that a dry run
  # only pretends to create: create it first (the real apply follows).
  "$KUBECTL" create namespace "$kustomize_ns" --dry-run=client -o yaml | "$KUBECTL" apply -f - >/dev/null
  touch "$work/kustomize-applied"
  "$KUBECTL" apply -k config/default --dry-run=server
  # The optional parts: the NetworkPolicy is checked by the server too; the
  # ServiceMonitor and the PrometheusRule need the Prometheus Operator's
  # CRDs, which the stack lacks.
  "$PY" - "$work/r-kustomize-full.yaml" >"$work/full-no-monitor.yaml" <<'PY'
import sys
import yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] not in ("ServiceMonitor", "PrometheusRule")]
yaml.safe_dump_all(docs, sys.stdout)
PY
  "$KUBECTL" apply -f "$work/full-no-monitor.yaml" --dry-run=server | grep networkpolicy
}

t_kustomize_apply() {
  touch "$work/kustomize-applied"
  "$KUBECTL" apply -k config/default
  local deployment=maestro-operator-controller-manager
  expect "Deployment $kustomize_ns/$deployment exists" "$KUBECTL" -n "$kustomize_ns" get deployment "$deployment"
  expect "CRD $crd is established" "$KUBECTL" wait --for=condition=Established "crd/$crd" --timeout=60s
  pod_security_restricted "$kustomize_ns" "$deployment"
  can_i_operator "$kustomize_sa" "$kustomize_ns" maestro-operator
  kustomize_delete
  expect "config/default's objects are gone, the CRD stays" bash -c \
    "! '$KUBECTL' get clusterrole maestro-operator-manager-role >/dev/null 2>&1 && '$KUBECTL' get crd $crd >/dev/null"
}

t_helm_install() {
  require_api_server
  "$KUBECTL" create namespace "$release_ns"
  "$KUBECTL" label namespace "$release_ns" pod-security.kubernetes.io/enforce=restricted
  # The TLS Secret exactly as the README tells users to create it.
  local tls=tests/fixtures/rest/tls
  "$KUBECTL" create secret generic maestro-client-certs -n "$release_ns" \
    --from-file=ca.crt="$tls/ca.pem" \
    --from-file=hyperfleet-client.crt="$tls/client.pem" \
    --from-file=hyperfleet-client.key="$tls/client-key.pem"
  # --take-ownership: the CRD may already exist (created by another test
  # on this stack); the release adopts it (and keeps it on uninstall).
  "$HELM" install "$release" "$CHART_DIR" -n "$release_ns" --take-ownership --wait=false \
    --set "maestro.grpcEndpoint=${MAESTRO_GRPC_ENDPOINT:-http://127.0.0.1:18090}" \
    --set "maestro.httpEndpoint=${MAESTRO_HTTP_ENDPOINT:-http://127.0.0.1:18000}"
  local fullname="$release-maestro-operator" kind
  for kind in deployment serviceaccount service role rolebinding; do
    expect "$kind exists" "$KUBECTL" -n "$release_ns" get "$kind" -l "app.kubernetes.io/instance=$release" -o name
  done
  expect "ServiceAccount $fullname exists" "$KUBECTL" -n "$release_ns" get serviceaccount "$fullname"
  expect "ClusterRole and ClusterRoleBinding $fullname-manager exist" \
    "$KUBECTL" get "clusterrole/$fullname-manager" "clusterrolebinding/$fullname-manager"
  expect "the user-facing aggregated ClusterRoles exist" \
    "$KUBECTL" get "clusterrole/$fullname-maestroapply-editor" "clusterrole/$fullname-maestroapply-viewer"
  expect "the metrics-reader ClusterRole for scrapers exists" "$KUBECTL" get "clusterrole/$fullname-metrics-reader"
  expect "the tenancy policy, its binding and the delivery ClusterRoles exist" \
    "$KUBECTL" get "validatingadmissionpolicy/$policy" "validatingadmissionpolicybinding/$policy" \
    clusterrole/maestro-deliver clusterrole/maestro-deliver-cluster-scoped clusterrole/maestro-adopt
  admission_refuses_an_ungranted_user "$release_ns"
  expect "CRD $crd is established" "$KUBECTL" wait --for=condition=Established "crd/$crd" --timeout=60s
  expect "the CRD carries helm.sh/resource-policy: keep" bash -c \
    "[[ \$('$KUBECTL' get crd $crd -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}') == keep ]]"
  expect "the Deployment mounts the Secret at /etc/maestro/certs" bash -c \
    "'$KUBECTL' -n '$release_ns' get deployment '$fullname' -o jsonpath='{.spec.template.spec.containers[0].volumeMounts[*].mountPath}' | grep -qx /etc/maestro/certs"
  pod_security_restricted "$release_ns" "$fullname"
  "$HELM" status "$release" -n "$release_ns" | sed -n '1,6p'
}

# The chart's policy at work: a user who may create MaestroApply objects in
# NS but holds no delivery grant is refused, naming what to ask for.
admission_refuses_an_ungranted_user() {
  local ns=$1 user=deploy-test-tenant out
  "$KUBECTL" -n "$ns" create role mapply-edit --verb=create --resource=maestroapplies.maestro.hyperfleet.io
  "$KUBECTL" -n "$ns" create rolebinding mapply-edit --role=mapply-edit --user="$user"
  out=$("$KUBECTL" -n "$ns" --as="$user" create --dry-run=server -f - 2>&1 <<EOF || true
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: tenant}
spec:
  consumer: cluster-west-1
  manifestWork: {workload: {manifests: [{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: $ns}}]}}
EOF
  )
  expect "the policy refuses an ungranted user, naming the verb" \
    grep -q "user $user may not deliver to consumer cluster-west-1 from namespace $ns: this needs verb deliver" <<<"$out"
}

t_rbac_can_i() {
  can_i_operator "system:serviceaccount:$release_ns:$release-maestro-operator" "$release_ns" "$release-maestro-operator"
}

t_operator_proof() { bash tests/deploy/operator-rbac-proof.sh -n "$release_ns" -r "$release"; }

t_helm_upgrade() {
  "$KUBECTL" create namespace "$watch_ns"
  "$HELM" upgrade "$release" "$CHART_DIR" -n "$release_ns" --reuse-values --wait=false \
    --set "watchNamespace=$watch_ns"
  local as="system:serviceaccount:$release_ns:$release-maestro-operator" bad=0
  expect "the ClusterRole is gone" bash -c "! '$KUBECTL' get clusterrole '$release-maestro-operator-manager' >/dev/null 2>&1" || bad=1
  expect "a Role in $watch_ns replaces it" "$KUBECTL" -n "$watch_ns" get role "$release-maestro-operator-manager" || bad=1
  can_i "$as" yes list maestroapplies.maestro.hyperfleet.io -n "$watch_ns" || bad=1
  can_i "$as" yes watch maestroapplies.maestro.hyperfleet.io -n "$watch_ns" || bad=1
  can_i "$as" yes patch maestroapplies.maestro.hyperfleet.io -n "$watch_ns" --subresource=status || bad=1
  # The metrics reviews are cluster-scoped: a ClusterRole of their own.
  expect "a ClusterRole grants the metrics reviews" \
    "$KUBECTL" get "clusterrole/$release-maestro-operator-metrics-auth" || bad=1
  can_i "$as" yes create tokenreviews.authentication.k8s.io || bad=1
  can_i "$as" yes create subjectaccessreviews.authorization.k8s.io || bad=1
  can_i "$as" yes create events.events.k8s.io -n "$watch_ns" || bad=1
  can_i "$as" yes patch "leases.coordination.k8s.io/$release-maestro-operator" -n "$release_ns" || bad=1
  can_i "$as" no list maestroapplies.maestro.hyperfleet.io -A || bad=1
  can_i "$as" no list maestroapplies.maestro.hyperfleet.io -n default || bad=1
  can_i "$as" no create events.events.k8s.io -n default || bad=1
  expect "the Deployment passes --namespace=$watch_ns" bash -c \
    "'$KUBECTL' -n '$release_ns' get deployment '$release-maestro-operator' -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q -- '--namespace=$watch_ns'" || bad=1
  return "$bad"
}

t_operator_proof_ns() { bash tests/deploy/operator-rbac-proof.sh -n "$release_ns" -r "$release" -w "$watch_ns"; }

t_helm_uninstall() {
  "$HELM" uninstall "$release" -n "$release_ns" --wait --timeout 2m
  local bad=0
  expect "no object of the release is left in $release_ns" bash -c \
    "[[ -z \$('$KUBECTL' -n '$release_ns' get deployment,serviceaccount,service,role,rolebinding -l app.kubernetes.io/instance='$release' -o name) ]]" || bad=1
  expect "no ClusterRole of the release is left" bash -c \
    "[[ -z \$('$KUBECTL' get clusterrole,clusterrolebinding -l app.kubernetes.io/instance='$release' -o name) ]]" || bad=1
  expect "the CRD is kept (helm.sh/resource-policy: keep)" "$KUBECTL" get crd "$crd" -o name || bad=1
  expect "the tenancy policy is gone with the release" bash -c \
    "! '$KUBECTL' get validatingadmissionpolicy '$policy' >/dev/null 2>&1" || bad=1
  "$KUBECTL" delete namespace "$release_ns" "$watch_ns" --wait=false
  return "$bad"
}

t_lua_health() { bash tests/deploy/lua-health-test.sh; }

t_containerfile() { bash tests/deploy/containerfile-check.sh --static; }

t_release_build() { bash tests/deploy/containerfile-check.sh; }

# -------------------------------------------------------------------- run

say "deployment tests against $("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}') (release $release in $release_ns)"
step lint-scripts -- t_shellcheck
step sync -- t_sync
step helm-lint -- t_helm_lint
step helm-snapshot -- t_helm_snapshot
step kustomize-render -- t_kustomize_render
step hardening -- t_hardening
step operator-flags -- t_operator_flags
step kustomize-dry-run sync -- t_kustomize_dry_run
step kustomize-apply kustomize-dry-run -- t_kustomize_apply
step helm-install sync -- t_helm_install
step rbac-can-i helm-install -- t_rbac_can_i
step operator-proof helm-install -- t_operator_proof
step helm-upgrade helm-install -- t_helm_upgrade
step operator-proof-ns helm-upgrade -- t_operator_proof_ns
step helm-uninstall helm-install -- t_helm_uninstall
step lua-health -- t_lua_health
step containerfile -- t_containerfile
if [[ ${DEPLOY_RELEASE_BUILD:-0} == 1 ]]; then
  step release-build containerfile -- t_release_build
else
  skipped=$((skipped + 1))
  printf 'SKIP %-18s a release build takes minutes: DEPLOY_RELEASE_BUILD=1 runs it\n' release-build
fi

if ((skipped)); then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
((failed == 0))
