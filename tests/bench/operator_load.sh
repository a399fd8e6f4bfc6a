#!/usr/bin/env bash
# Operator load benchmark: N MaestroApply objects spread over 10 consumers
# (the stack's two agent-served consumers plus 8 registered without an
# agent), one release-built operator. Prints the operator's memory before
# any object, once all objects are published and after a steady period, and
# the REST requests one status poll cycle costs (from the operator's own
# metrics).
#
#   [OBJECT_KIB=K] [RESULTS=FILE] bash tests/bench/operator_load.sh [N] [STEADY_SECONDS]
#
# OBJECT_KIB   adds about K KiB of manifest data to each object: K ConfigMap
#              data entries of 1 KiB each (default 0: a ConfigMap of two
#              short entries, about 0.1 KiB). The API server takes objects
#              up to 1.5 MiB; keep K at most 1000.
# SUSPEND=1    creates the objects with spec.suspend: the operator holds and
#              reconciles them but publishes nothing (so its memory without
#              the publish path and with empty status lists).
# RESULTS      a file to which the figures are appended as "key value"
#              lines (memory in KiB), for tests/bench/operator_memory.sh.
# OPERATOR_BIN the operator binary to run (default: build the release
#              binary from the work tree and run target/release's).
# CLEANUP_WAIT seconds the clean-up waits for the agents to confirm the
#              deletions (default 1800; the agents confirm about one
#              deletion in 3 s, so 200 objects take some 10 minutes).
#
# Needs the full local stack (make stack-up). Objects on the agent-served
# consumers (N/10 each; keep that at 100 or less, see
# docs/deletion-stall.md) use deletionPolicy Delete, and the clean-up
# deletes them 20 at a time while the operator still runs, so the agents
# remove their ConfigMaps and Maestro its bundles; the others use Orphan
# (no agent would ever confirm a delete), and the clean-up removes their
# bundles from Maestro's database afterwards (only this run's source ID on
# the load-consumer-* consumers, which no agent serves). The run's
# namespaces are deleted at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
N=${1:-1000}
STEADY=${2:-60}
OBJECT_KIB=${OBJECT_KIB:-0}
OPERATOR_BIN=${OPERATOR_BIN:-}
SUSPEND=${SUSPEND:-0}
suspend=false
[[ $SUSPEND == 1 ]] && suspend=true
RESULTS=${RESULTS:-}
CLEANUP_WAIT=${CLEANUP_WAIT:-1800}
eval "$(bash tests/stack/stack.sh env 2>/dev/null)"
K=${KUBECTL:-kubectl}
API=$MAESTRO_HTTP_ENDPOINT/api/maestro/v1
NS=mapply-load
TARGET_NS=mapply-load-objects
ADDRESS=127.0.0.1:18190
if "$K" get namespace "$NS" >/dev/null 2>&1; then
  echo "namespace $NS exists (a run still cleaning up, or one that gave up); delete it first" >&2
  exit 1
fi

SOURCE="operator-load-$(date +%s)"
LOG=$(mktemp -t operator-load.XXXXXX.log)
objects=$(mktemp -t operator-load.XXXXXX.yaml)
say() { echo "$(date +%T) $*" >&2; }

consumers=(cluster-west-1 cluster-east-2)
for i in $(seq 1 8); do
  consumers+=("load-consumer-$i")
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"name\":\"load-consumer-$i\"}" "$API/consumers" || true
done

if [[ -z $OPERATOR_BIN ]]; then
  say "building the operator (release)"
  cargo build --quiet --release --bin maestro-operator
  OPERATOR_BIN=target/release/maestro-operator
fi
"$K" apply --server-side --force-conflicts -f crds/maestroapply.yaml >/dev/null
"$K" wait --for=condition=Established crd/maestroapplies.maestro.hyperfleet.io --timeout=60s >/dev/null
for ns in "$NS" "$TARGET_NS"; do
  "$K" create namespace "$ns" --dry-run=client -o yaml | "$K" apply -f - >/dev/null
done

"$OPERATOR_BIN" --namespace "$NS" --source-id "$SOURCE" \
  --metrics-address "$ADDRESS" --health-address "$ADDRESS" --metrics-secure=false >"$LOG" 2>&1 &
operator=$!

# bundles of this run's source still in Maestro (soft-deleted ones included)
bundles() {
  curl -sfG "$API/resource-bundles" --data-urlencode "search=source='$SOURCE'" \
    --data-urlencode size=1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}
cleanup() {
  set +e
  local i names=() deadline=$((SECONDS + CLEANUP_WAIT)) left
  # The agent-served objects first, 20 at a time, so each agent confirms a
  # small batch well within the stack watchdog's 20 s.
  for ((i = 0; i < N; i++)); do
    ((i % 10 < 2)) && names+=("load-$i")
  done
  say "clean-up: deleting the ${#names[@]} objects on the agent-served consumers"
  for ((i = 0; i < ${#names[@]}; i += 20)); do
    "$K" -n "$NS" delete mapply "${names[@]:i:20}" --ignore-not-found --wait=false >/dev/null 2>&1
    while (($("$K" -n "$NS" get mapply "${names[@]:i:20}" --ignore-not-found -o name 2>/dev/null | wc -l) > 0)); do
      if ((SECONDS >= deadline)) || ! kill -0 "$operator" 2>/dev/null; then
        break 2
      fi
      sleep 2
    done
  done
  if (($("$K" -n "$NS" get mapply "${names[@]}" --ignore-not-found -o name 2>/dev/null | wc -l) > 0)); then
    # Deleting the namespace now would leave these objects with their
    # finalizer and no operator, and their bundles live on the agents.
    kill "$operator" 2>/dev/null
    say "clean-up: gave up after ${CLEANUP_WAIT}s with objects on the agent-served consumers left; namespace $NS kept; run the operator again with --source-id $SOURCE to finish (log $LOG)"
    rm -f "$objects"
    return
  fi
  "$K" delete namespace "$NS" --wait=false >/dev/null 2>&1
  sleep 5
  kill "$operator" 2>/dev/null
  wait "$operator" 2>/dev/null
  bash tests/stack/postgres.sh psql -d "${MAESTRO_DB_NAME:-maestro}" -q -c \
    "DELETE FROM resources WHERE source = '$SOURCE' AND consumer_name LIKE 'load-consumer-%'" >/dev/null
  left=$(bundles)
  if [[ $left == 0 ]]; then
    "$K" delete namespace "$TARGET_NS" --wait=false >/dev/null 2>&1
    say "clean-up: done (bundles of $SOURCE and namespaces $NS, $TARGET_NS deleted)"
  else
    say "clean-up: ${left:-?} bundle(s) of source $SOURCE are still in Maestro (an agent has not confirmed; see docs/deletion-stall.md); namespace $TARGET_NS kept; operator log $LOG"
  fi
  rm -f "$objects"
}
trap cleanup EXIT
for _ in $(seq 1 60); do
  curl -sf "http://$ADDRESS/readyz" >/dev/null && break
  sleep 1
done

status() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$operator/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
metric() {
  curl -sf "http://$ADDRESS/metrics" | awk -v m="$1" '$1 ~ "^"m"(_total)?$" {print $2}'
}
result() { [[ -z $RESULTS ]] || echo "$1 $2" >>"$RESULTS"; }
idle=$(status VmRSS)
echo "operator RSS before any object: $(mib "$idle")"

# OBJECT_KIB entries of 1 KiB (as JSON: "kNNNN":"<1014 characters>",).
filler=$(printf '%01014d' 0 | tr 0 x)
extra=""
for k in $(seq -f '%04g' 1 "$OBJECT_KIB"); do
  extra+=", k$k: $filler"
done
for i in $(seq 0 $((N - 1))); do
  policy=Orphan
  ((i % 10 < 2)) && policy=Delete
  cat <<EOF
---
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: load-$i, namespace: $NS}
spec:
  consumer: ${consumers[$((i % 10))]}
  deletionPolicy: $policy
  suspend: $suspend
  manifestWork:
    workload:
      manifests:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: load-$i, namespace: $TARGET_NS}
          data: {index: "$i", payload: "configuration value for object number $i"$extra}
EOF
done >"$objects"
start=$SECONDS
"$K" apply --server-side -f "$objects" >/dev/null
size=$("$K" -n "$NS" get mapply load-0 -o json | wc -c)
echo "one object as the API server returns it: $((size / 1024)) KiB"

# Published: Maestro holds all N bundles (none when suspended) and the
# operator has written a status to each object (counting only; listing the
# objects themselves would move N times their size on every check).
published() {
  local b=$N w
  [[ $suspend == true ]] || b=$(bundles)
  w=$(metric maestro_operator_status_writes)
  echo $((${b:-0} < N ? ${b:-0} : ${w:-0} < N ? ${w:-0} : N))
}
while (($(published) < N)); do
  ((SECONDS - start < 900)) || {
    echo "only $(published) of $N objects published after 15 minutes" >&2
    exit 1
  }
  sleep 5
done
publish_seconds=$((SECONDS - start))
echo "all $N objects published in ${publish_seconds}s"
published_rss=$(status VmRSS)
published_hwm=$(status VmHWM)
echo "operator RSS with $N objects, all published: $(mib "$published_rss") (peak so far $(mib "$published_hwm"))"
requests0=$(metric maestro_operator_maestro_poll_requests)
sleep "$STEADY"
requests1=$(metric maestro_operator_maestro_poll_requests)
steady_rss=$(status VmRSS)
steady_hwm=$(status VmHWM)
echo "operator RSS after ${STEADY}s more: $(mib "$steady_rss") (peak $(mib "$steady_hwm"))"
# Objects not yet Ready are polled every pollInterval (10s by default).
cycle=$(awk -v a="$requests0" -v b="$requests1" -v s="$STEADY" 'BEGIN {printf "%.1f", (b - a) * 10 / s}')
echo "REST requests per 10s poll cycle: $cycle (over 10 consumers)"
list=$(curl -sfG "$API/resource-bundles" --data-urlencode "search=source='$SOURCE' and consumer_name='load-consumer-1'" \
  --data-urlencode size=400 | wc -c)
echo "one consumer's status list (what one poll reads): $((list / 1024)) KiB"
result object_kib "$OBJECT_KIB"
result suspend "$suspend"
result object_bytes "$size"
result publish_seconds "$publish_seconds"
result idle_rss_kib "$idle"
result published_rss_kib "$published_rss"
result published_hwm_kib "$published_hwm"
result steady_rss_kib "$steady_rss"
result steady_hwm_kib "$steady_hwm"
result requests_per_cycle "$cycle"
result list_bytes "$list"
