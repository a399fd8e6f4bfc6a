#!/usr/bin/env bash
# Operator load benchmark: N MaestroApply objects spread over 10 consumers
# (the stack's two agent-served consumers plus 8 registered without an
# agent), one release-built operator. Prints the operator's memory once all
# objects are published and after a steady period, and the REST requests
# one status poll cycle costs (from the operator's own metrics).
#
#   bash tests/bench/operator_load.sh [N] [STEADY_SECONDS]
#
# Needs the full local stack (make stack-up). Objects use deletionPolicy
# Orphan so the clean-up does not wait on consumers no agent serves; their
# bundles stay in Maestro under a source ID of their own.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
N=${1:-1000}
STEADY=${2:-60}
eval "$(bash tests/stack/stack.sh env 2>/dev/null)"
K=${KUBECTL:-kubectl}
NS=mapply-load
TARGET_NS=mapply-load-objects
ADDRESS=127.0.0.1:18190
SOURCE="operator-load-$(date +%s)"
LOG=$(mktemp -t operator-load.XXXXXX.log)

consumers=(cluster-west-1 cluster-east-2)
for i in $(seq 1 8); do
  consumers+=("load-consumer-$i")
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"name\":\"load-consumer-$i\"}" "$MAESTRO_HTTP_ENDPOINT/api/maestro/v1/consumers" || true
done

echo "building the operator (release)" >&2
cargo build --quiet --release --bin maestro-operator
"$K" apply --server-side --force-conflicts -f crds/maestroapply.yaml >/dev/null
"$K" wait --for=condition=Established crd/maestroapplies.maestro.hyperfleet.io --timeout=60s >/dev/null
for ns in "$NS" "$TARGET_NS"; do
  "$K" create namespace "$ns" --dry-run=client -o yaml | "$K" apply -f - >/dev/null
done

target/release/maestro-operator --namespace "$NS" --source-id "$SOURCE" \
  --metrics-address "$ADDRESS" --health-address "$ADDRESS" --metrics-secure=false >"$LOG" 2>&1 &
operator=$!
cleanup() {
  "$K" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  sleep 5
  kill "$operator" 2>/dev/null || true
  wait "$operator" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 60); do
  curl -sf "http://$ADDRESS/readyz" >/dev/null && break
  sleep 1
done

objects=$(mktemp -t operator-load.XXXXXX.yaml)
for i in $(seq 0 $((N - 1))); do
  cat <<EOF
---
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: load-$i, namespace: $NS}
spec:
  consumer: ${consumers[$((i % 10))]}
  deletionPolicy: Orphan
  manifestWork:
    workload:
      manifests:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: load-$i, namespace: $TARGET_NS}
          data: {index: "$i", payload: "configuration value for object number $i"}
EOF
done >"$objects"
start=$SECONDS
"$K" apply --server-side -f "$objects" >/dev/null

published() {
  "$K" -n "$NS" get mapply -o jsonpath='{range .items[*]}{.status.bundleVersion}{"\n"}{end}' | grep -c . || true
}
while (($(published) < N)); do
  ((SECONDS - start < 900)) || {
    echo "only $(published) of $N objects published after 15 minutes" >&2
    exit 1
  }
  sleep 5
done
echo "all $N objects published in $((SECONDS - start))s"

rss() { awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' "/proc/$operator/status"; }
metric() {
  curl -sf "http://$ADDRESS/metrics" | awk -v m="$1" '$1 ~ "^"m"(_total)?$" {print $2}'
}
echo "operator RSS with $N objects, all published: $(rss)"
requests0=$(metric maestro_operator_maestro_poll_requests)
sleep "$STEADY"
requests1=$(metric maestro_operator_maestro_poll_requests)
echo "operator RSS after ${STEADY}s more: $(rss) (peak $(awk '/^VmHWM/ {printf "%.1f MiB", $2 / 1024}' "/proc/$operator/status"))"
# Objects not yet Ready are polled every pollInterval (10s by default).
awk -v a="$requests0" -v b="$requests1" -v s="$STEADY" \
  'BEGIN {printf "REST requests per 10s poll cycle: %.1f (over %d consumers)\n", (b - a) * 10 / s, 10}'
