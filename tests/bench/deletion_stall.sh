#!/usr/bin/env bash
# Deletion-stall experiment (docs/deletion-stall.md): N one-ConfigMap
# ManifestWorks on one agent-served consumer, all Applied, then all deleted
# at once; prints, every INTERVAL seconds, how many bundles Maestro still
# holds (all of them marked deleting), how many of their ConfigMaps and
# AppliedManifestWorks are still in the cluster, and what the stack's
# watchdog did meanwhile.
#
#   eval "$(bash tests/stack/stack.sh env)"
#   bash tests/bench/deletion_stall.sh [N] [OBSERVE_SECONDS]
#
# Settings (environment):
#   CONSUMER        agent-served consumer (default cluster-west-1)
#   APPLY_PARALLEL  concurrent `maestro-cli apply` (default 4)
#   INTERVAL        seconds between samples (default 2)
#   DUMP_AT         comma-separated seconds after the delete at which to save
#                   the agent's goroutine dump (/debug/pprof/goroutine on its
#                   health port, with the stack's admin token) into OUT_DIR
#   OUT_DIR         where samples and dumps go (default a new mktemp -d)
#   CLEANUP_WAIT    seconds the clean-up waits for stuck bundles before it
#                   gives up and says so (default 600)
#   LINGER          seconds to keep sampling once Maestro holds no bundle of
#                   the run (ConfigMaps and AppliedManifestWorks left behind)
#   STOP_AGENT=1    SIGTERM the consumer's agent (its pid file) right before
#                   the delete, so that the deletes reach only the fresh agent
#                   the stack's watchdog starts, through its resync
#
# Everything it makes carries the run's id, stall-research-<random>: the
# source ID of the bundles, the namespace of the ConfigMaps and the label
# stall-research=<id> (which the agent copies onto the AppliedManifestWorks).
# The clean-up deletes the namespace once Maestro holds no bundle of the
# source any more. Apart from STOP_AGENT it never touches the stack's
# processes. Careful: once the consumer holds more than about 100 bundles, a
# restarted agent (STOP_AGENT, or any watchdog restart) can wedge, and with
# it Maestro's delivery to every consumer; see docs/deletion-stall.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-300}
OBSERVE=${2:-300}
: "${MAESTRO_HTTP_ENDPOINT:?run: eval \"\$(bash tests/stack/stack.sh env)\"}"
: "${KUBECONFIG:?}" "${KUBECTL:?}"
CONSUMER=${CONSUMER:-cluster-west-1}
APPLY_PARALLEL=${APPLY_PARALLEL:-4}
INTERVAL=${INTERVAL:-2}
DUMP_AT=${DUMP_AT:-}
CLEANUP_WAIT=${CLEANUP_WAIT:-600}
STOP_AGENT=${STOP_AGENT:-0}
LINGER=${LINGER:-0}
STACK_DIR=${STACK_DIR:-/tmp/maestro-operator-stack}
CLI=${CLI:-$ROOT/target/debug/maestro-cli}
[[ -x $CLI ]] || (cd "$ROOT" && cargo build --quiet --bin maestro-cli)
K=("$KUBECTL" --kubeconfig="$KUBECONFIG")
API="$MAESTRO_HTTP_ENDPOINT/api/maestro/v1"

RUN="stall-research-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
OUT_DIR=${OUT_DIR:-$(mktemp -d -t "$RUN.XXXX")}
mkdir -p "$OUT_DIR"
export MAESTRO_SOURCE_ID=$RUN
AGENT_LOG="$STACK_DIR/logs/agent-$CONSUMER.log"
WATCHDOG_LOG="$STACK_DIR/logs/agents-watchdog.log"
MAESTRO_LOG="$STACK_DIR/logs/maestro.log"

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# bundles of this run's source still in Maestro (soft-deleted ones included)
bundles() {
  curl -sfG "$API/resource-bundles" --data-urlencode "search=source='$RUN'" --data-urlencode size=1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}
# of them, how many have status Applied=True reported by the agent
applied() {
  curl -sfG "$API/resource-bundles" --data-urlencode "search=source='$RUN'" --data-urlencode size=10000 |
    python3 -c '
import json, sys
n = 0
for b in json.load(sys.stdin)["items"]:
    conds = ((b.get("status") or {}).get("conditions") or [])
    n += any(c.get("type") == "Applied" and c.get("status") == "True" for c in conds)
print(n)'
}
configmaps() { "${K[@]}" -n "$RUN" get configmaps -l "stall-research=$RUN" --no-headers 2>/dev/null | wc -l; }
amws() { "${K[@]}" get appliedmanifestworks -l "stall-research=$RUN" --no-headers 2>/dev/null | wc -l; }
# the agent's health port, as agents.sh numbers them
agent_port() {
  local i=0 c
  for c in ${STACK_CONSUMERS:-cluster-west-1 cluster-east-2}; do
    [[ $c == "$CONSUMER" ]] && { echo $((18100 + i)); return; }
    i=$((i + 1))
  done
}
dump_agent() {
  local token
  token=$(sed -n 's/^ *token: *//p' "$KUBECONFIG" | head -n 1)
  curl -sk --max-time 10 -H @<(printf 'Authorization: Bearer %s\n' "$token") \
    "https://127.0.0.1:$(agent_port)/debug/pprof/goroutine?debug=2" >"$OUT_DIR/agent-goroutines-$1.txt" || true
}

cleanup() {
  local left deadline=$((SECONDS + CLEANUP_WAIT))
  say "clean-up: deleting what is left of $RUN"
  "$CLI" delete --consumer "$CONSUMER" --all --yes >/dev/null 2>&1 || true
  while left=$(bundles 2>/dev/null) && ((left > 0)) && ((SECONDS < deadline)); do sleep 5; done
  if ((${left:-1} > 0)); then
    say "clean-up: $left bundle(s) of source $RUN are still marked deleting in Maestro; namespace $RUN kept (a wedged agent? see docs/deletion-stall.md)"
  else
    "${K[@]}" delete namespace "$RUN" --wait=false >/dev/null 2>&1 || true
    say "clean-up: done (namespace $RUN deleted)"
  fi
}
trap cleanup EXIT

say "run $RUN: $N works on $CONSUMER; samples in $OUT_DIR"
"${K[@]}" create namespace "$RUN" >/dev/null
WORK=$(mktemp -d)
for i in $(seq 1 "$N"); do
  cat >"$WORK/w-$i.yaml" <<YAML
apiVersion: work.open-cluster-management.io/v1
kind: ManifestWork
metadata: {name: w-$i, labels: {stall-research: $RUN}}
spec:
  workload:
    manifests:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: cm-$i, namespace: $RUN, labels: {stall-research: $RUN}}, data: {index: "$i"}}
YAML
done
t_apply=$SECONDS
# shellcheck disable=SC2016 # expanded by the inner sh
seq 1 "$N" | xargs -P "$APPLY_PARALLEL" -I{} sh -c \
  '"$1" apply -f "$2/w-$3.yaml" --consumer "$4" >/dev/null' _ "$CLI" "$WORK" {} "$CONSUMER"
rm -rf "$WORK"
say "published $N works in $((SECONDS - t_apply))s; waiting until all are Applied"
until (($(applied) >= N)); do
  ((SECONDS - t_apply < 600)) || { say "not all Applied after 600s"; exit 1; }
  sleep 2
done
say "all $N Applied $((SECONDS - t_apply))s after the first apply; ConfigMaps: $(configmaps), AppliedManifestWorks: $(amws)"
sleep 3

agent_off=$(stat -c %s "$AGENT_LOG")
wd_off=$(stat -c %s "$WATCHDOG_LOG")
m_off=$(stat -c %s "$MAESTRO_LOG")
echo "$agent_off $wd_off $m_off" >"$OUT_DIR/log-offsets"
if ((STOP_AGENT)); then
  read -r pid _ <"$STACK_DIR/run/agent-$CONSUMER.pid"
  say "stopping the $CONSUMER agent (pid $pid); the watchdog restarts it"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
fi
t0=$(date +%s.%N)
date -u +%FT%T.%NZ >"$OUT_DIR/delete-started"
"$CLI" delete --consumer "$CONSUMER" --all --yes >/dev/null
say "delete --all returned after $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)")s"

printf '%6s %8s %11s %5s  %s\n' t_s bundles configmaps amws watchdog | tee "$OUT_DIR/samples.txt" >&2
IFS=, read -r -a dumps <<<"$DUMP_AT"
start=$SECONDS
gone_at=-1
while :; do
  t=$((SECONDS - start))
  b=$(bundles) c=$(configmaps) a=$(amws)
  wd=$(tail -c +"$((wd_off + 1))" "$WATCHDOG_LOG" | grep -c "restarting" || true)
  printf '%6d %8d %11d %5d  restarts=%s\n' "$t" "$b" "$c" "$a" "$wd" | tee -a "$OUT_DIR/samples.txt" >&2
  for d in "${dumps[@]}"; do
    [[ -n $d && ! -f $OUT_DIR/agent-goroutines-$d.txt ]] && ((t >= d)) && dump_agent "$d"
  done
  ((b == 0 && gone_at < 0)) && gone_at=$t
  ((gone_at >= 0 && t - gone_at >= LINGER || t >= OBSERVE)) && break
  sleep "$INTERVAL"
done
tail -c +"$((agent_off + 1))" "$AGENT_LOG" >"$OUT_DIR/agent.log"
tail -c +"$((wd_off + 1))" "$WATCHDOG_LOG" >"$OUT_DIR/watchdog.log"
tail -c +"$((m_off + 1))" "$MAESTRO_LOG" >"$OUT_DIR/maestro.log"
say "after ${t}s: $b of $N bundles unconfirmed; logs in $OUT_DIR"
