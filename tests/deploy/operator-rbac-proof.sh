#!/usr/bin/env bash
# Runs the real operator under the chart's ServiceAccount token (not an
# admin's) against the local stack and takes a MaestroApply through its
# whole life: finalizer, publish, status, Events, leader Lease, an update,
# and deletion with deletionPolicy Delete (the agent removes the object).
# With --metrics-secure (the chart's default) it also scrapes the HTTPS
# /metrics: no token gets 401, the operator's own token 403, and a scraper
# bound to the metrics-reader ClusterRole 200, so the TokenReview and
# SubjectAccessReview the operator makes are allowed to it.
# Any RBAC denial fails the run: in a step that needs it, and in the log.
#
#   operator-rbac-proof.sh -n RELEASE_NAMESPACE [-r RELEASE] [-w WATCH_NAMESPACE]
#
# The operator gets the installed Deployment's own flags, except those that
# point at the cluster's Maestro and TLS files (replaced by the stack's
# endpoints), a source ID and a label selector of its own (so it touches
# only this run's objects, never another test's), and loopback metrics and
# probe addresses. -w: the release was installed with watchNamespace, the object
# goes there. Needs the stack's env (MAESTRO_GRPC_ENDPOINT, ...,
# MAESTRO_CONSUMERS) and the operator binary (OPERATOR_BIN, default
# target/debug/maestro-operator, built when missing).
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

namespace="" release="maestro-operator" watch=""
while getopts "n:r:w:h" opt; do
  case $opt in
  n) namespace=$OPTARG ;;
  r) release=$OPTARG ;;
  w) watch=$OPTARG ;;
  *) usage_exit 2,22 ;;
  esac
done
[[ -n $namespace ]] || die "-n RELEASE_NAMESPACE is required"
stack_tools
require_api_server
: "${MAESTRO_GRPC_ENDPOINT:?the stack env is needed: eval \"\$(tests/stack/stack.sh env)\"}"
: "${MAESTRO_HTTP_ENDPOINT:?the stack env is needed}"
consumer=${MAESTRO_CONSUMERS:-cluster-west-1}
consumer=${consumer%%,*}
: "${PROOF_TIMEOUT:=120}"

bin=${OPERATOR_BIN:-$DEPLOY_ROOT/target/debug/maestro-operator}
if [[ ! -x $bin ]]; then
  say "building the operator (cargo build --bin maestro-operator)"
  (cd "$DEPLOY_ROOT" && cargo build --bin maestro-operator >&2)
fi

id="deploy-proof-$(date +%s)-$RANDOM"
work=$id
objs=${watch:-$id}
tmp=$(mktemp -d)
op_pid=""
created_ns=0
metrics_secure=0
scraper="$id-scraper"

cleanup() {
  local rc=$?
  set +e
  # After a failure, let the operator (if it still runs) delete the work
  # the usual way first.
  if [[ -n $op_pid ]] && kill -0 "$op_pid" 2>/dev/null; then
    if "$KUBECTL" -n "$objs" get maestroapply "$id" >/dev/null 2>&1; then
      "$KUBECTL" -n "$objs" delete maestroapply "$id" --timeout=30s >/dev/null 2>&1
    fi
    kill -TERM "$op_pid"
    wait "$op_pid"
  fi
  # Nothing may stay behind: an object the operator could not finish loses
  # its finalizer (its bundle, if any, is reported below).
  if "$KUBECTL" -n "$objs" get maestroapply "$id" >/dev/null 2>&1; then
    echo "operator-rbac-proof: $objs/$id still exists; removing its finalizer (its ManifestWork $work may stay in Maestro)" >&2
    "$KUBECTL" -n "$objs" patch maestroapply "$id" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null
    "$KUBECTL" -n "$objs" delete maestroapply "$id" --wait=false >/dev/null
  fi
  "$KUBECTL" -n default delete configmap "$work" --ignore-not-found >/dev/null
  if ((metrics_secure)); then
    "$KUBECTL" delete clusterrolebinding "$scraper" --ignore-not-found >/dev/null
    "$KUBECTL" -n "$namespace" delete serviceaccount "$scraper" --ignore-not-found >/dev/null
  fi
  ((created_ns)) && "$KUBECTL" delete namespace "$objs" --wait=false >/dev/null
  if ((rc != 0)) && [[ -f $tmp/operator.log ]]; then
    echo "operator-rbac-proof: the operator's log (last 40 lines):" >&2
    tail -n 40 "$tmp/operator.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "operator-rbac-proof: FAILED: $*" >&2
  exit 1
}

# Polls CONDITION (a command) until it succeeds or PROOF_TIMEOUT passes.
wait_for() {
  local what=$1 deadline=$((SECONDS + PROOF_TIMEOUT))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${PROOF_TIMEOUT}s waiting for $what"
    [[ -z $op_pid ]] || kill -0 "$op_pid" 2>/dev/null || fail "the operator exited while waiting for $what"
    sleep 1
  done
  say "ok: $what"
}

jp() { "$KUBECTL" -n "$objs" get maestroapply "$id" -o "jsonpath=$1"; }

# ---- the operator's flags, from the installed Deployment
deployment=$("$KUBECTL" -n "$namespace" get deployment \
  -l "app.kubernetes.io/instance=$release,app.kubernetes.io/component=controller-manager" \
  -o jsonpath='{.items[0].metadata.name}')
[[ -n $deployment ]] || die "no Deployment of release $release in $namespace"
mapfile -t deploy_args < <("$KUBECTL" -n "$namespace" get deployment "$deployment" \
  -o go-template='{{range (index .spec.template.spec.containers 0).args}}{{.}}{{"\n"}}{{end}}')
args=()
lease=""
# A free port for /metrics, so the proof can scrape it.
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for a in "${deploy_args[@]}"; do
  case $a in
  --maestro-grpc-endpoint=* | --maestro-http-endpoint=* | --ca-file=* | --cert-file=* | --key-file=* | \
    --token-file=* | --source-id=* | --label-selector=* | --metrics-address=* | --health-address=* | \
    --metrics-cert-file=* | --metrics-key-file=* | --log-format=*) ;;
  --metrics-secure=true)
    metrics_secure=1
    args+=("$a")
    ;;
  --lease-name=*)
    lease=${a#--lease-name=}
    args+=("$a")
    ;;
  *) args+=("$a") ;;
  esac
done
args+=(
  "--maestro-grpc-endpoint=$MAESTRO_GRPC_ENDPOINT"
  "--maestro-http-endpoint=$MAESTRO_HTTP_ENDPOINT"
  "--source-id=$id"
  "--label-selector=maestro.hyperfleet.io/shard=$id"
  "--metrics-address=127.0.0.1:$metrics_port" --health-address=127.0.0.1:0
  --log-format=json
)

# ---- the ServiceAccount's kubeconfig, and the operator under it
bash "$DEPLOY_TESTS/rbac-kubeconfig.sh" -n "$namespace" -r "$release" -d 1h -o "$tmp/kubeconfig"
if [[ -z $watch ]]; then
  "$KUBECTL" create namespace "$objs" >/dev/null
  created_ns=1
fi
say "starting $bin as system:serviceaccount:$namespace:$(KUBECONFIG=$tmp/kubeconfig "$KUBECTL" config view --minify -o jsonpath='{.users[0].name}' | sed 's/.*://')"
say "  ${args[*]}"
KUBECONFIG=$tmp/kubeconfig POD_NAMESPACE=$namespace POD_NAME=$id RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 \
  RUST_LOG=info,maestro_operator=debug,kube_runtime=info \
  "$bin" "${args[@]}" >"$tmp/operator.log" 2>&1 </dev/null &
op_pid=$!

if [[ -n $lease ]]; then
  holder() { [[ $("$KUBECTL" -n "$namespace" get lease "$lease" -o jsonpath='{.spec.holderIdentity}') == "$id" ]]; }
  wait_for "the operator holds Lease $namespace/$lease (leases: get, create, patch)" holder
fi
started() { grep -q 'initial list done' "$tmp/operator.log"; }
wait_for "the operator listed and watches MaestroApply objects (list, watch)" started

# ---- secure /metrics: the reviews (tokenreviews, subjectaccessreviews: create)
if ((metrics_secure)); then
  reader_role="$release-maestro-operator-metrics-reader"
  "$KUBECTL" get clusterrole "$reader_role" >/dev/null || fail "no ClusterRole $reader_role"
  "$KUBECTL" -n "$namespace" create serviceaccount "$scraper" >/dev/null
  "$KUBECTL" create clusterrolebinding "$scraper" --clusterrole="$reader_role" \
    --serviceaccount="$namespace:$scraper" >/dev/null
  operator_sa=$("$KUBECTL" -n "$namespace" get deployment "$deployment" -o jsonpath='{.spec.template.spec.serviceAccountName}')
  scrape() { # scrape WANT_STATUS [TOKEN]: the status of GET https://.../metrics
    local auth=()
    [[ -z ${2:-} ]] || auth=(-H "Authorization: Bearer $2")
    [[ $(curl -sk -o "$tmp/metrics.out" -w '%{http_code}' "${auth[@]}" "https://127.0.0.1:$metrics_port/metrics") == "$1" ]]
  }
  reader_can() { [[ $("$KUBECTL" auth can-i get /metrics --as="system:serviceaccount:$namespace:$scraper") == yes ]]; }
  wait_for "the scraper's ServiceAccount may get /metrics" reader_can
  wait_for "/metrics without a token: 401" scrape 401
  wait_for "/metrics with the operator's own token (no grant): 403" \
    scrape 403 "$("$KUBECTL" -n "$namespace" create token "$operator_sa" --duration=10m)"
  wait_for "/metrics with a metrics-reader token: 200 (the operator's reviews are allowed)" \
    scrape 200 "$("$KUBECTL" -n "$namespace" create token "$scraper" --duration=10m)"
  grep -q maestro_operator_reconciles_total "$tmp/metrics.out" || fail "the scrape returned no operator metrics"
fi

# ---- create: finalizer, publish, status, Events
"$KUBECTL" apply -f - >/dev/null <<YAML
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata:
  name: $id
  namespace: $objs
  labels:
    maestro.hyperfleet.io/shard: $id
spec:
  consumer: $consumer
  workName: $work
  deletionPolicy: Delete
  waitFor: Available
  manifestWork:
    workload:
      manifests:
        - apiVersion: v1
          kind: ConfigMap
          metadata:
            name: $work
            namespace: default
          data:
            proof: created
YAML
has_finalizer() { [[ $(jp '{.metadata.finalizers}') == *maestro.hyperfleet.io/finalizer* ]]; }
wait_for "the finalizer is added (maestroapplies: patch)" has_finalizer
ready_at() { [[ $(jp '{.status.observedGeneration}') == "$1" && $(jp '{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
wait_for "status Ready=True for generation 1 (maestroapplies/status: patch)" ready_at 1
delivered() { [[ $("$KUBECTL" -n default get configmap "$work" -o jsonpath='{.data.proof}') == "$1" ]]; }
wait_for "the agent created ConfigMap default/$work" delivered created
event() {
  "$KUBECTL" -n "$objs" get events.events.k8s.io \
    -o jsonpath='{range .items[?(@.reportingController=="maestro-operator")]}{.regarding.name}{"\n"}{end}' |
    grep -qx "$id"
}
wait_for "an Event about $id from maestro-operator (events.k8s.io: create)" event

# ---- update
"$KUBECTL" -n "$objs" patch maestroapply "$id" --type=json \
  -p '[{"op":"replace","path":"/spec/manifestWork/workload/manifests/0/data/proof","value":"updated"}]' >/dev/null
wait_for "status Ready=True for generation 2 after an update" ready_at 2
wait_for "the agent updated ConfigMap default/$work" delivered updated

# ---- delete (deletionPolicy Delete): the finalizer holds until the agent confirmed
"$KUBECTL" -n "$objs" delete maestroapply "$id" --wait=false >/dev/null
gone() { ! "$KUBECTL" -n "$objs" get maestroapply "$id" >/dev/null 2>&1; }
wait_for "the object is gone (the finalizer removed after the agent deleted the work)" gone
cm_gone() { ! "$KUBECTL" -n default get configmap "$work" >/dev/null 2>&1; }
wait_for "the agent deleted ConfigMap default/$work" cm_gone

# ---- shutdown and the log
kill -TERM "$op_pid"
wait "$op_pid" || fail "the operator exited with status $? on SIGTERM"
op_pid=""
if grep -Ei 'forbidden|"code": ?403|status=403|Unauthorized' "$tmp/operator.log" >"$tmp/denials"; then
  head -n 5 "$tmp/denials" >&2
  fail "the operator's log shows RBAC denials"
fi
say "no RBAC denial in the operator's log ($(wc -l <"$tmp/operator.log") lines)"
