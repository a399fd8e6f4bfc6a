#!/usr/bin/env bash
# Runs the operator's end-to-end tests with the operator authenticated as
# the chart's ServiceAccount (real RBAC), the tests themselves as admin:
#
#   operator-e2e-under-sa.sh [CARGO TEST ARGS...]
#       default: --test operator_e2e --test operator_resilience
#
# Installs the chart into a fresh namespace, writes a kubeconfig with a
# token of its ServiceAccount (rbac-kubeconfig.sh) and runs `cargo test`
# with
#   OPERATOR_KUBECONFIG       that kubeconfig: the tests' helper gives it to
#                             the operator processes it starts (their own
#                             clients keep KUBECONFIG)
#   OPERATOR_LEASE_NAMESPACE  the release namespace: the only namespace whose
#                             Leases the ServiceAccount may use
# then uninstalls. Needs the stack's env and a test helper that reads both
# variables (tests/support/operator.rs).
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$DEPLOY_ROOT"
stack_tools
require_api_server
: "${MAESTRO_GRPC_ENDPOINT:?the stack env is needed: eval \"\$(tests/stack/stack.sh env)\"}"
: "${MAESTRO_HTTP_ENDPOINT:?the stack env is needed}"
for v in OPERATOR_KUBECONFIG OPERATOR_LEASE_NAMESPACE; do
  grep -rqs "$v" tests/support ||
    die "the operator's test helper (tests/support/operator.rs) does not read $v yet"
done
(($#)) || set -- --test operator_e2e --test operator_resilience

suffix="$(date +%s)-$RANDOM"
ns="deploy-sa-$suffix"
release=maestro-operator
tmp=$(mktemp -d)
cleanup() {
  local rc=$?
  set +e
  "$HELM" uninstall "$release" -n "$ns" --wait --timeout 2m >/dev/null 2>&1
  "$KUBECTL" delete namespace "$ns" --wait=false >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

"$KUBECTL" create namespace "$ns" >/dev/null
"$HELM" install "$release" "$CHART_DIR" -n "$ns" --take-ownership --wait=false \
  --set maestro.tls.enabled=false \
  --set "maestro.grpcEndpoint=$MAESTRO_GRPC_ENDPOINT" \
  --set "maestro.httpEndpoint=$MAESTRO_HTTP_ENDPOINT" >/dev/null
bash tests/deploy/rbac-kubeconfig.sh -n "$ns" -r "$release" -d 4h -o "$tmp/kubeconfig"
say "cargo test $* with the operator as system:serviceaccount:$ns:$release"
OPERATOR_KUBECONFIG=$tmp/kubeconfig OPERATOR_LEASE_NAMESPACE=$ns cargo test "$@"
