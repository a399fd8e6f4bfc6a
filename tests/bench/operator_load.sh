#!/usr/bin/env bash
# Operator load benchmark: N MaestroApply objects spread over CONSUMERS
# consumers (default 10: the stack's two agent-served consumers plus the
# others registered without an agent), one release-built operator. Prints the operator's memory before
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
# CONSUMERS    consumers (default 10); object i goes to consumer i % CONSUMERS,
#              the first two being the agent-served ones.
# CREATE_BATCH objects per kubectl apply (default 1000), with a progress
#              line after each: a 10,000-object apply in one go keeps the
#              API server and etcd busy past kubectl's patience.
# PUBLISH_WAIT seconds to wait for all objects to be published (default
#              900); a progress line every 30 s in the meantime.
# RESTART=1    after the steady period, restarts the operator with every
#              object in place and prints the time until each object is
#              reconciled again (the sum of maestro_operator_objects over
#              phases reaches N), the publishes it made meanwhile (none
#              expected: nothing changed) and the REST requests of that
#              resync (one full status cycle over all consumers).
# RESTART_BINS "NAME=BIN ..." after that, one more restart per entry, in
#              order, with that binary (a wrapper that execs the binary, e.g.
#              with an environment variable set, works too), then each
#              NAME's median RSS after its restarts and the ratio to the
#              first NAME's: repeat the entries (a b a b a b) for paired
#              rounds over the same objects.
# STATUS_SOURCE the operator's --status-source (default stream).
# CLEANUP_WAIT seconds the clean-up waits for the agents to confirm the
#              deletions (default 1800; the agents confirm about one
#              deletion in 3 s, so 200 objects take some 10 minutes).
#
# Needs the full local stack (make stack-up). Objects on the agent-served
# consumers (N/CONSUMERS each; keep that at 100 or less, see
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
CONSUMERS=${CONSUMERS:-10}
CREATE_BATCH=${CREATE_BATCH:-1000}
PUBLISH_WAIT=${PUBLISH_WAIT:-900}
RESTART=${RESTART:-0}
RESTART_BINS=${RESTART_BINS:-}
STATUS_SOURCE=${STATUS_SOURCE:-stream}
source tests/bench/lib.sh
NS=mapply-load
TARGET_NS=mapply-load-objects
ADDRESS=127.0.0.1:18190
bench_fresh_namespace "$NS"

SOURCE="operator-load-$(date +%s)"
LOG=$(mktemp -t operator-load.XXXXXX.log)
objects=$(mktemp -t operator-load.XXXXXX.yaml)

consumers=(cluster-west-1 cluster-east-2)
for i in $(seq 1 $((CONSUMERS - 2))); do
  consumers+=("load-consumer-$i")
  bench_register_consumer "load-consumer-$i"
done

bench_operator_bin
bench_setup "$NS" "$TARGET_NS"
operator_args=(--namespace "$NS" --source-id "$SOURCE" --status-source "$STATUS_SOURCE")
bench_start_operator "$ADDRESS" "$LOG" "${operator_args[@]}" || true
operator=$OPERATOR_PID

# bundles of this run's source still in Maestro (soft-deleted ones included)
bundles() { bench_bundles "source='$SOURCE'"; }
cleanup() {
  set +e
  local i names=() deadline=$((SECONDS + CLEANUP_WAIT)) left
  # The agent-served objects first, 20 at a time, so each agent confirms a
  # small batch well within the stack watchdog's 20 s.
  for ((i = 0; i < N; i++)); do
    ((i % CONSUMERS < 2)) && names+=("load-$i")
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
  # The operator removes the Orphan objects' finalizers as the namespace
  # deletion reaches them (thousands take minutes).
  while "$K" get namespace "$NS" >/dev/null 2>&1 && ((SECONDS < deadline)) && kill -0 "$operator" 2>/dev/null; do
    sleep 5
  done
  kill "$operator" 2>/dev/null
  wait "$operator" 2>/dev/null
  bench_drop_agentless_rows "$SOURCE" 'load-consumer-%'
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

status() { bench_proc "$operator" "$1"; }
metric() { bench_metric "$ADDRESS" "$1"; }
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
  ((i % CONSUMERS < 2)) && policy=Delete
  cat <<EOF
---
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: load-$i, namespace: $NS}
spec:
  consumer: ${consumers[$((i % CONSUMERS))]}
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
# Published: Maestro holds all N bundles (none when suspended) and the
# operator has written a status to each object (counting only; listing the
# objects themselves would move N times their size on every check).
published() {
  local b=$N w
  [[ $suspend == true ]] || b=$(bundles)
  w=$(metric maestro_operator_status_writes)
  echo $((${b:-0} < N ? ${b:-0} : ${w:-0} < N ? ${w:-0} : N))
}
start=$SECONDS
# In batches of CREATE_BATCH objects (every document has the same number of
# lines).
split -l "$(($(wc -l <"$objects") / N * CREATE_BATCH))" -d -a 4 "$objects" "$objects.part."
created=0
for part in "$objects".part.*; do
  "$K" apply --server-side -f "$part" >/dev/null
  rm -f "$part"
  created=$((created + CREATE_BATCH < N ? created + CREATE_BATCH : N))
  say "created $created of $N objects ($((SECONDS - start))s; published $(published))"
done
size=$("$K" -n "$NS" get mapply load-0 -o json | wc -c)
echo "one object as the API server returns it: $((size / 1024)) KiB"

last_progress=$SECONDS
while (($(published) < N)); do
  ((SECONDS - start < PUBLISH_WAIT)) || {
    echo "only $(published) of $N objects published after ${PUBLISH_WAIT}s" >&2
    exit 1
  }
  if ((SECONDS - last_progress >= 30)); then
    say "published $(published) of $N ($((SECONDS - start))s; operator RSS $(mib "$(status VmRSS)"); load average $(bench_loadavg))"
    last_progress=$SECONDS
  fi
  sleep 5
done
publish_seconds=$((SECONDS - start))
echo "all $N objects published in ${publish_seconds}s"
published_rss=$(status VmRSS)
published_hwm=$(status VmHWM)
echo "operator RSS with $N objects, all published: $(mib "$published_rss") (peak so far $(mib "$published_hwm"))"
requests0=$(metric maestro_operator_maestro_poll_requests)
subscriptions0=$(metric maestro_operator_status_stream_subscriptions)
sleep "$STEADY"
requests1=$(metric maestro_operator_maestro_poll_requests)
subscriptions1=$(metric maestro_operator_status_stream_subscriptions)
stream_up=$(metric maestro_operator_status_stream_up)
steady_rss=$(status VmRSS)
steady_hwm=$(status VmHWM)
echo "operator RSS after ${STEADY}s more: $(mib "$steady_rss") (peak $(mib "$steady_hwm"))"
# With --status-source=poll, objects not yet Ready are polled every
# pollInterval (10s by default); with a healthy stream, every interval.
cycle=$(awk -v a="$requests0" -v b="$requests1" -v s="$STEADY" 'BEGIN {printf "%.1f", (b - a) * 10 / s}')
echo "REST requests per 10s poll cycle: $cycle (over $CONSUMERS consumers; $((requests1 - requests0)) in ${STEADY}s; status source $STATUS_SOURCE, stream up ${stream_up:-0}, $((${subscriptions1:-0} - ${subscriptions0:-0})) resubscriptions)"
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

# restart NAME: stops the operator, starts OPERATOR_BIN with every object in
# place, and prints (and records under NAME_) the time until each object is
# reconciled again, the publishes and REST requests of that resync and the
# RSS 10 s after.
restart() {
  local name=$1
  say "restarting the operator ($name) with all $N objects in place"
  kill "$operator"
  wait "$operator" 2>/dev/null || true
  local start=$EPOCHREALTIME
  bench_start_operator "$ADDRESS" "$LOG" "${operator_args[@]}" || true
  operator=$OPERATOR_PID
  local deadline=$((SECONDS + PUBLISH_WAIT)) last_progress=$SECONDS
  while (($(printf '%.0f' "$(metric maestro_operator_objects)") < N)); do
    ((SECONDS < deadline)) || {
      echo "only $(metric maestro_operator_objects) of $N objects reconciled ${PUBLISH_WAIT}s after the restart" >&2
      exit 1
    }
    if ((SECONDS - last_progress >= 30)); then
      say "after the restart: $(metric maestro_operator_objects) of $N reconciled"
      last_progress=$SECONDS
    fi
    sleep 1
  done
  local seconds publishes resync rss hwm
  seconds=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  sleep 10
  publishes=$(metric maestro_operator_maestro_publishes)
  resync=$(metric maestro_operator_maestro_poll_requests)
  rss=$(status VmRSS)
  hwm=$(status VmHWM)
  echo "after a restart ($name): all $N objects reconciled in ${seconds}s; publishes ${publishes:-0}; REST requests of the resync ${resync:-0} (over $CONSUMERS consumers); RSS $(mib "$rss") (peak $(mib "$hwm"))"
  result "${name}_seconds" "$seconds"
  result "${name}_publishes" "${publishes:-0}"
  result "${name}_requests" "${resync:-0}"
  result "${name}_rss_kib" "$rss"
  result "${name}_hwm_kib" "$hwm"
  echo "$name $rss" >>"$restart_rss"
}
restart_rss=$(mktemp -t operator-load-rss.XXXXXX)

[[ $RESTART == 1 ]] && restart restart
[[ -n $RESTART_BINS ]] || exit 0
# Paired rounds: the entries in order, then each NAME's median RSS and its
# ratio to the first NAME's.
for entry in $RESTART_BINS; do
  OPERATOR_BIN=${entry#*=}
  restart "${entry%%=*}"
done
awk '{ rss[$1] = rss[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
  function median(list,   v, k, i, j, t) {
    k = split(list, v, " ")
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
  }
  END {
    base = median(rss[order[1]])
    for (i = 1; i <= n; i++) {
      m = median(rss[order[i]])
      printf "restart RSS, median of %d: %s %.1f MiB (ratio to %s %.2f)\n", split(rss[order[i]], x, " "), order[i], m / 1024, order[1], m / base
    }
  }' "$restart_rss"
rm -f "$restart_rss"
