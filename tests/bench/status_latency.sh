#!/usr/bin/env bash
# Status latency benchmark: how long after an agent delivers an object the
# MaestroApply turns Ready, measured from outside the operator, with
# --status-source=stream and with --status-source=poll in one run.
#
#   [PACED=40] [PACE=0.5] [BURST=1000] bash tests/bench/status_latency.sh
#
# One process (tests/bench/latency_watch.py) follows two watches on the
# stack's API server: the ConfigMaps the agents create in namespace
# mapply-latency-objects, and the MaestroApply objects in mapply-latency.
# Latency = the arrival of Ready=True (at the object's current generation)
# - the arrival of its ConfigMap's first event, both on that process's
# clock (creationTimestamp has one-second resolution). Under each round a
# second line splits that latency at the agent's last status report before
# Ready (from the agents' logs, same clock): the agent's part and the rest
# (Maestro, the stream, the operator, its status patch, the watch). All
# objects go to
# the stack's two agent-served consumers, alternately. Rounds, each printed
# as one line of figures (nearest-rank percentiles, seconds):
#
#   1. poll, PACED new objects created PACE s apart (default pollInterval);
#   2. stream, PACED new objects created PACE s apart (pollInterval 10m, so
#      a REST poll cannot be what makes them Ready);
#   3. stream, BURST new objects applied at once (one kubectl apply);
#   4. stream, the BURST objects updated at once: each one's ConfigMap is
#      renamed, so the agent creates a new one (generation 2);
#   5. poll, the same update again (generation 3, default pollInterval).
#
# Rounds 4 and 5 compare the two paths on the same load without a second
# thousand objects: the agents confirm deletions slowly (about one in 3 s
# each, docs/deletion-stall.md), so every object costs clean-up time. The
# operator is restarted between paths (same source ID); before an update
# round it is given time to settle (its reconcile count stops moving).
#
# Clean-up (also on failure): a stream-mode operator deletes every object
# (deletionPolicy Delete; it keeps --max-unconfirmed-deletions per consumer
# in the agents' hands), so the agents remove the ConfigMaps and Maestro the
# bundles; progress is printed every 30 s; CLEANUP_WAIT (default 3600 s)
# bounds it. Then the namespaces are deleted. A clean-up that gives up says
# how to finish it and keeps the namespace.
#
# OPERATOR_BIN  the operator binary (default: build the release binary).
# RUST_LOG      with maestro_operator::controller::stream=debug and
#               maestro_operator::controller::run=debug, each stream round
#               also splits "the rest" into Maestro (report sent -> the
#               operator's stream has it), the operator (-> its reconcile
#               with the status patch done) and the watch (-> Ready seen).
# READY_WAIT    seconds a round may wait for all its objects (default 900).
# ROUNDS        which rounds to run (default "1 2 3 4 5"); 4 and 5 need 3.
#
# Needs the full local stack (make stack-up). BURST/2 objects per consumer
# is above the ~100 bundles an agent can take back in one resync after a
# restart (docs/deletion-stall.md): do not restart the agents during a run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tests/bench/lib.sh
PACED=${PACED:-40}
PACE=${PACE:-0.5}
BURST=${BURST:-1000}
READY_WAIT=${READY_WAIT:-900}
ROUNDS=${ROUNDS:-1 2 3 4 5}
for r in $ROUNDS; do
  [[ $r =~ ^[1-5]$ ]] || { echo "status_latency: ROUNDS: '$r' is not a round number (1 to 5)" >&2; exit 2; }
done
if [[ " $ROUNDS " =~ \ [45]\  && " $ROUNDS " != *" 3 "* ]]; then
  echo "status_latency: ROUNDS: rounds 4 and 5 update round 3's objects; add 3" >&2
  exit 2
fi
CLEANUP_WAIT=${CLEANUP_WAIT:-3600}
NS=mapply-latency
TARGET_NS=mapply-latency-objects
ADDRESS=127.0.0.1:18191
bench_fresh_namespace "$NS"
IFS=, read -ra consumers <<<"$MAESTRO_CONSUMERS"
((${#consumers[@]} >= 2)) || {
  echo "MAESTRO_CONSUMERS names fewer than two agent-served consumers" >&2
  exit 1
}
SOURCE="status-latency-$(date +%s)"
dir=$(mktemp -d -t status-latency.XXXXXX)
LOG=$dir/operator.log
EVENTS=$dir/events
say "run directory $dir (operator log, watch events)"

bench_operator_bin
bench_setup "$NS" "$TARGET_NS"
python3 tests/bench/latency_watch.py watch "$K" "$NS" "$TARGET_NS" "$EVENTS" &
watcher=$!

operator() {
  bench_stop_operator
  say "operator with --status-source=$1"
  bench_start_operator "$ADDRESS" "$LOG" --namespace "$NS" --source-id "$SOURCE" --status-source "$1"
}

# settle: until the operator's reconcile count stays put for 5 s (at most
# 180 s), so an update round does not measure a start-up's resync.
settle() {
  local before after=-1 deadline=$((SECONDS + 180))
  while ((SECONDS < deadline)); do
    before=$after
    sleep 5
    after=$(bench_metric "$ADDRESS" maestro_operator_reconciles)
    [[ $after == "$before" ]] && return 0
  done
}

cleanup() {
  set +e
  local deadline=$((SECONDS + CLEANUP_WAIT)) left last=0
  operator stream || true
  say "clean-up: deleting every object (the agents confirm them at their pace)"
  "$K" -n "$NS" delete mapply --all --wait=false >/dev/null 2>&1
  while left=$("$K" -n "$NS" get mapply -o name 2>/dev/null | wc -l) && ((left > 0)); do
    if ((SECONDS >= deadline)) || ! kill -0 "$OPERATOR_PID" 2>/dev/null; then
      bench_stop_operator
      kill "$watcher" 2>/dev/null
      say "clean-up: gave up with $left objects left; namespace $NS kept; run the operator again with --namespace $NS --source-id $SOURCE to finish (log $LOG)"
      return
    fi
    if ((SECONDS - last >= 30)); then
      say "clean-up: $left objects left"
      last=$SECONDS
    fi
    sleep 3
  done
  bench_stop_operator
  kill "$watcher" 2>/dev/null
  "$K" delete namespace "$NS" "$TARGET_NS" --wait=false >/dev/null 2>&1
  left=$(bench_bundles "source='$SOURCE'")
  say "clean-up: done; bundles of $SOURCE left in Maestro: ${left:-?}"
}
trap cleanup EXIT

# object NAME CONFIGMAP CONSUMER [POLL_INTERVAL]
object() {
  cat <<EOF
---
apiVersion: maestro.hyperfleet.io/v1alpha1
kind: MaestroApply
metadata: {name: $1, namespace: $NS}
spec:
  consumer: $3
  deletionPolicy: Delete
${4:+  pollInterval: $4
}  manifestWork:
    workload:
      manifests:
        - apiVersion: v1
          kind: ConfigMap
          metadata: {name: $2, namespace: $TARGET_NS}
          data: {object: "$1"}
EOF
}

# round MODE LABEL EXPECTED : waits until every object in EXPECTED
# ("OBJECT CONFIGMAP GENERATION" lines) is Ready, then prints the figures.
round() {
  local mode=$1 label=$2 expected=$3 load0=$4 figures deadline=$((SECONDS + READY_WAIT))
  while figures=$(python3 tests/bench/latency_watch.py stats "$EVENTS" "$expected") &&
    [[ $figures != *" missing=0" ]]; do
    if ((SECONDS >= deadline)); then
      say "round $label ($mode): not all Ready after ${READY_WAIT}s"
      break
    fi
    sleep 2
  done
  echo "status_latency source=$mode load=$label $figures loadavg=$load0-$(bench_loadavg)"
  local agent_logs=("${STACK_LOG_DIR:-$STACK_DIR/logs}"/agent-*.log)
  echo "  split at the agent's report: $(python3 tests/bench/latency_watch.py split "$EVENTS" "$expected" "${agent_logs[@]}")"
  if [[ $mode == stream && ${RUST_LOG:-} == *controller::stream=debug* ]]; then
    echo "  after the report: $(python3 tests/bench/latency_watch.py hops "$EVENTS" "$expected" "$LOG" "${agent_logs[@]}")"
  fi
}

# paced MODE [POLL_INTERVAL] : PACED new objects, one every PACE seconds.
paced() {
  local mode=$1 interval=${2:-} i name start load0 expected=$dir/paced-$1
  load0=$(bench_loadavg)
  start=$EPOCHREALTIME
  for ((i = 0; i < PACED; i++)); do
    name=lat$PACED-$mode-$i
    echo "$name $name 1" >>"$expected"
    sleep "$(awk -v s="$start" -v i="$i" -v p="$PACE" -v n="$EPOCHREALTIME" 'BEGIN {d = s + i * p - n; print (d > 0 ? d : 0)}')"
    object "$name" "$name" "${consumers[$((i % 2))]}" "$interval" | "$K" create -f - >/dev/null &
  done
  wait_creates
  round "$mode" "${PACED}x${PACE}s" "$expected" "$load0"
}

# wait_creates: the background kubectl creates (not the watcher or the
# operator).
wait_creates() {
  local job
  for job in $(jobs -p); do
    [[ $job == "$watcher" || $job == "${OPERATOR_PID:-}" ]] || wait "$job"
  done
}

# burst MODE SUFFIX GENERATION [POLL_INTERVAL] : all BURST objects applied
# at once, each delivering ConfigMap OBJECT-SUFFIX.
burst() {
  local mode=$1 suffix=$2 generation=$3 interval=${4:-} i load0 expected=$dir/burst-$1-$2
  for ((i = 0; i < BURST; i++)); do
    object "lat1k-$i" "lat1k-$i-$suffix" "${consumers[$((i % 2))]}" "$interval"
    echo "lat1k-$i lat1k-$i-$suffix $generation" >>"$expected"
  done >"$dir/burst.yaml"
  load0=$(bench_loadavg)
  "$K" apply --server-side --field-manager=status-latency -f "$dir/burst.yaml" >/dev/null
  local label="${BURST}-at-once-create"
  ((generation > 1)) && label="${BURST}-at-once-update"
  round "$mode" "$label" "$expected" "$load0"
}

want() { [[ " $ROUNDS " == *" $1 "* ]]; }

sleep 3
if want 1; then
  operator poll
  paced poll
fi
if want 2 || want 3; then
  operator stream
fi
want 2 && paced stream 10m
want 3 && burst stream a 1 10m
if want 4; then
  settle
  burst stream b 2 10m
fi
if want 5; then
  operator poll
  settle
  burst poll c "$(want 4 && echo 3 || echo 2)"
fi
