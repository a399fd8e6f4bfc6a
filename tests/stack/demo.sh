#!/usr/bin/env bash
# `make demo`: the operator end to end on the local real stack.
#
#   demo.sh [up]   bring the stack up, install the CRD, build and (re)start the
#                  operator in the background, apply the sample MaestroApply
#                  (a ConfigMap for cluster-west-1), wait until it is Ready and
#                  show it, its status and the ConfigMap the agent created
#   demo.sh down   delete the sample (the operator removes the ConfigMap) and
#                  stop the operator; the stack keeps running (stack.sh down)
#   demo.sh logs   follow the operator's log
#
# The operator runs as the managed process "operator" (pid in
# $STACK_RUN_DIR/operator.pid, log in $STACK_LOG_DIR/operator.log) and watches
# only $DEMO_NAMESPACE, so it leaves other MaestroApply objects (tests) alone.
#
# Settings (environment), besides those of env.sh:
#   DEMO_NAMESPACE          where the sample goes (default maestro-demo)
#   DEMO_SAMPLE             the sample (default config/samples/configmap-west.yaml)
#   DEMO_TIMEOUT            how long to wait for Ready (default 180s)
#   OPERATOR_ADDRESS        the operator's /metrics, /healthz, /readyz
#                           (default 127.0.0.1:18180)
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DEMO_NAMESPACE:=maestro-demo}"
: "${DEMO_SAMPLE:=$STACK_REPO_ROOT/config/samples/configmap-west.yaml}"
: "${DEMO_TIMEOUT:=180s}"
: "${OPERATOR_ADDRESS:=127.0.0.1:18180}"
CRD_FILE="$STACK_REPO_ROOT/crds/maestroapply.yaml"

# The stack's endpoints (MAESTRO_*_ENDPOINT, KUBECONFIG, KUBECTL) for us and
# for the operator, which reads them from its environment.
load_env() {
  eval "$(bash "$STACK_SCRIPTS_DIR/stack.sh" env)"
  export KUBECONFIG MAESTRO_GRPC_ENDPOINT MAESTRO_HTTP_ENDPOINT
}

k() { "$KUBECTL" "$@"; }

# A banner and the command, then its output, so the demo reads as a session.
show() {
  printf '\n\033[1m$ kubectl %s\033[0m\n' "$*"
  k "$@"
}

sample_name() {
  sed -n 's/^  name: *//p' "$DEMO_SAMPLE" | head -n1
}

start_operator() {
  log demo "building the operator"
  (cd "$STACK_REPO_ROOT" && cargo build --quiet --bin maestro-operator)
  local bin="$STACK_REPO_ROOT/target/debug/maestro-operator"
  if proc_alive operator; then
    log demo "restarting the running operator with the fresh build"
    proc_stop operator
  fi
  proc_start operator "$bin" \
    --namespace "$DEMO_NAMESPACE" \
    --metrics-address "$OPERATOR_ADDRESS" \
    --health-address "$OPERATOR_ADDRESS" \
    --metrics-secure=false
  wait_for_http operator "http://$OPERATOR_ADDRESS/readyz" 60 "$(proc_logfile operator)" operator
  log demo "operator running (pid $(proc_pid operator), log $(proc_logfile operator))"
}

demo_up() {
  require_cmd demo cargo curl
  bash "$STACK_SCRIPTS_DIR/stack.sh" up
  load_env

  log demo "installing the MaestroApply CRD"
  k apply --server-side --force-conflicts -f "$CRD_FILE" >/dev/null
  k wait --for=condition=Established crd/maestroapplies.maestro.hyperfleet.io --timeout=60s >/dev/null

  start_operator

  local name
  name=$(sample_name)
  k create namespace "$DEMO_NAMESPACE" --dry-run=client -o yaml | k apply -f - >/dev/null
  show -n "$DEMO_NAMESPACE" apply -f "$DEMO_SAMPLE"
  if ! show -n "$DEMO_NAMESPACE" wait --for=condition=Ready "mapply/$name" --timeout="$DEMO_TIMEOUT"; then
    k -n "$DEMO_NAMESPACE" get mapply "$name" -o yaml >&2 || true
    tail_log "$(proc_logfile operator)" 40
    die demo "$name did not become Ready within $DEMO_TIMEOUT"
  fi
  show -n "$DEMO_NAMESPACE" get mapply -o wide
  printf '\n\033[1m$ kubectl -n %s get mapply %s -o jsonpath={.status}\033[0m\n' "$DEMO_NAMESPACE" "$name"
  k -n "$DEMO_NAMESPACE" get mapply "$name" -o jsonpath='{.status}' | json_pretty
  # The ConfigMap the agent created from the work, read from the API server.
  local cm_ns cm_name
  cm_ns=$(k -n "$DEMO_NAMESPACE" get mapply "$name" -o jsonpath='{.status.manifests[0].namespace}')
  cm_name=$(k -n "$DEMO_NAMESPACE" get mapply "$name" -o jsonpath='{.status.manifests[0].name}')
  show -n "$cm_ns" get configmap "$cm_name" -o yaml
  printf '\nThe operator keeps running (demo.sh logs to follow it; demo.sh down to stop it).\n'
  printf 'Metrics: curl http://%s/metrics\n' "$OPERATOR_ADDRESS"
}

# Pretty-prints JSON when python3 is there; raw otherwise.
json_pretty() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -m json.tool
  else
    cat
    echo
  fi
}

demo_down() {
  load_env
  local name
  name=$(sample_name)
  if proc_alive operator; then
    log demo "deleting $DEMO_NAMESPACE/$name (the operator deletes its ManifestWork)"
    k -n "$DEMO_NAMESPACE" delete mapply "$name" --ignore-not-found --timeout=120s || true
  fi
  log demo "stopping the operator"
  proc_stop operator
}

demo_logs() {
  tail -n 50 -f "$(proc_logfile operator)"
}

case "${1:-up}" in
  up) demo_up ;;
  down) demo_down ;;
  logs) demo_logs ;;
  *)
    echo "usage: $(basename "$0") [up|down|logs]" >&2
    exit 2
    ;;
esac
