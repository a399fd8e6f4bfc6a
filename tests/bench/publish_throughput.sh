#!/usr/bin/env bash
# Publish throughput: ManifestWork creates per second sent to Maestro by the
# operator with its publish rate limit lifted (--maestro-qps 0), against
# Maestro's own Go ManifestWork client (the stack's maestro-go-client, the
# pinned Maestro's examples/manifestwork) creating the same number of works
# in the same run.
#
#   [GO_PARALLEL=16] [QPS=0] bash tests/bench/publish_throughput.sh [N] [CONSUMERS]
#
# N works (default 500) of one small ConfigMap each, spread over CONSUMERS
# (default 10) consumers registered without an agent, so no agent's pace
# enters the figure (only Maestro's: it stores each create and queues it
# for an agent that is not there).
#
# Go client: one `maestro-go-client apply FILE` process per work (the
# program applies one work per run), GO_PARALLEL at a time (the operator
# publishes up to --concurrency, 16, at once); its rate is N over the wall
# time of all N. Each process also connects and subscribes, so the script
# first times GO_PARALLEL runs of `get` of a missing work (the per-process
# cost without any create) and prints it beside the rate.
# Operator: the N MaestroApply objects are created with the operator
# stopped; then it starts (--maestro-qps QPS, default 0: no limit) and its
# rate is the creates counted by maestro_operator_maestro_publishes{action=
# "create"} from the first to the last, over the time between them (the
# counter sampled every 0.2 s).
#
# Prints one line per client and the ratio. Clean-up: the objects use
# deletionPolicy Orphan and are deleted, and both sources' rows are removed
# from Maestro's database (only on this run's consumers, which no agent
# serves).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tests/bench/lib.sh
N=${1:-500}
CONSUMERS=${2:-10}
GO_PARALLEL=${GO_PARALLEL:-16}
QPS=${QPS:-0}
NS=mapply-throughput
ADDRESS=127.0.0.1:18192
RUN=$(date +%s)
SOURCE=throughput-op-$RUN
GO_SOURCE=throughput-go-$RUN
dir=$(mktemp -d -t publish-throughput.XXXXXX)
LOG=$dir/operator.log
GRPC_ADDR=${MAESTRO_GRPC_ENDPOINT#http://}
if "$K" get namespace "$NS" >/dev/null 2>&1; then
  echo "namespace $NS exists (a run that did not clean up); delete it first" >&2
  exit 1
fi

consumers=()
for i in $(seq 1 "$CONSUMERS"); do
  consumers+=("throughput-$RUN-$i")
  bench_register_consumer "throughput-$RUN-$i"
done
bench_operator_bin
bench_setup "$NS"

cleanup() {
  set +e
  # With the operator still running, which lets go of Orphan objects at
  # once; without it, their finalizers are removed by hand.
  "$K" delete namespace "$NS" --wait=false >/dev/null 2>&1
  local deadline=$((SECONDS + 300))
  while "$K" get namespace "$NS" >/dev/null 2>&1 && ((SECONDS < deadline)) &&
    [[ -n ${OPERATOR_PID:-} ]] && kill -0 "$OPERATOR_PID" 2>/dev/null; do
    sleep 2
  done
  bench_stop_operator
  "$K" -n "$NS" get mapply -o name 2>/dev/null |
    xargs -r "$K" -n "$NS" patch --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1
  bench_drop_agentless_rows "$SOURCE" "throughput-$RUN-%"
  bench_drop_agentless_rows "$GO_SOURCE" "throughput-$RUN-%"
  say "clean-up: done (namespace $NS, the rows of $SOURCE and $GO_SOURCE)"
}
trap cleanup EXIT

work() {
  cat <<EOF
{"apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork",
 "metadata": {"name": "$1", "namespace": "$2"},
 "spec": {"workload": {"manifests": [
   {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "$1", "namespace": "default"},
    "data": {"payload": "configuration value for work $1"}}]}}}
EOF
}
go_client() {
  "$MAESTRO_GO_CLIENT" "$@" --source="$GO_SOURCE" --maestro-server="$MAESTRO_HTTP_ENDPOINT" --grpc-server="$GRPC_ADDR"
}
export -f go_client
export MAESTRO_GO_CLIENT MAESTRO_HTTP_ENDPOINT GRPC_ADDR GO_SOURCE

# The Go client's fixed cost per process: `get` of a work that does not exist.
mkdir -p "$dir/works"
start=$EPOCHREALTIME
for i in $(seq 1 "$GO_PARALLEL"); do
  go_client get missing-$i --consumer-name="${consumers[0]}" >/dev/null 2>&1 &
done
wait
per_process=$(awk -v a="$start" -v b="$EPOCHREALTIME" -v p="$GO_PARALLEL" 'BEGIN {printf "%.3f", (b - a)}')

for ((i = 0; i < N; i++)); do
  c=${consumers[$((i % CONSUMERS))]}
  work "go-$i" "$c" >"$dir/works/$i.json"
  echo "$i $c"
done >"$dir/go.list"
load0=$(bench_loadavg)
say "Go client: $N creates, $GO_PARALLEL processes at a time"
start=$EPOCHREALTIME
xargs -P "$GO_PARALLEL" -L 1 bash -c 'go_client apply "$0/works/$1.json" --consumer-name="$2" >/dev/null' "$dir" <"$dir/go.list" ||
  say "some Go client runs failed (the rate counts the works Maestro holds)"
go_seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')
created=$(bench_bundles "source='$GO_SOURCE'")
go_rate=$(awk -v n="$created" -v s="$go_seconds" 'BEGIN {printf "%.1f", n / s}')
echo "publish_throughput client=maestro-go-client works=$created seconds=$go_seconds rate=${go_rate}/s parallel=$GO_PARALLEL per_process_batch=${per_process}s loadavg=$load0-$(bench_loadavg)"

for ((i = 0; i < N; i++)); do
  cat <<EOF
---
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: op-$i, namespace: $NS}
spec:
  consumer: ${consumers[$((i % CONSUMERS))]}
  deletionPolicy: Orphan
  manifestWork:
    workload:
      manifests:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: op-$i, namespace: default}
          data: {payload: "configuration value for work op-$i"}
EOF
done >"$dir/objects.yaml"
"$K" apply --server-side -f "$dir/objects.yaml" >/dev/null
load0=$(bench_loadavg)
say "operator: $N creates, --maestro-qps $QPS"
bench_start_operator "$ADDRESS" "$LOG" --namespace "$NS" --source-id "$SOURCE" --maestro-qps "$QPS" --maestro-burst 40
creates() { bench_metric "$ADDRESS" maestro_operator_maestro_publishes 'action="create"'; }
first="" first_count=0 last="" deadline=$((SECONDS + 1800))
while ((SECONDS < deadline)); do
  now=$EPOCHREALTIME
  count=$(creates)
  count=${count:-0}
  if [[ -z $first ]] && ((count > 0)); then
    first=$now first_count=$count
  fi
  if ((count >= N)); then
    last=$now
    break
  fi
  sleep 0.2
done
[[ -n $last ]] || {
  echo "the operator published $(creates) of $N creates in 30 minutes" >&2
  exit 1
}
op_seconds=$(awk -v a="$first" -v b="$last" 'BEGIN {printf "%.2f", b - a}')
op_rate=$(awk -v n="$((N - first_count))" -v s="$op_seconds" 'BEGIN {printf "%.1f", (s > 0 ? n / s : 0)}')
echo "publish_throughput client=maestro-operator works=$N seconds=$op_seconds rate=${op_rate}/s maestro_qps=$QPS concurrency=16 loadavg=$load0-$(bench_loadavg)"
awk -v a="$op_rate" -v b="$go_rate" 'BEGIN {printf "publish_throughput operator/go=%.0f%% (target >= 90%%)\n", (b > 0 ? 100 * a / b : 0)}'
