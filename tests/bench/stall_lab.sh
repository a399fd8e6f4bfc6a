#!/usr/bin/env bash
# A private Maestro server and agent beside the local stack, for experiments
# that may wedge them (docs/deletion-stall.md): its own database on the
# stack's PostgreSQL, its own ports, one consumer (stall-lab) served by one
# agent that applies into the stack's API server under its own agent ID.
# Nothing of the shared stack is restarted or reconfigured, and a wedged lab
# server blocks only itself.
#
#   eval "$(bash tests/stack/stack.sh env)"
#   bash tests/bench/stall_lab.sh up          start (or reuse) server and agent
#   bash tests/bench/stall_lab.sh restart-agent
#   bash tests/bench/stall_lab.sh resync-test N   N live works, restart the
#                                   agent, report whether it receives them
#   bash tests/bench/stall_lab.sh delete-test N   N live works, all deleted at
#                                   once; bundles and ConfigMaps left every 2 s
#   bash tests/bench/stall_lab.sh trim N      hard-delete all but N works (lab DB)
#   bash tests/bench/stall_lab.sh down        stop both, drop the database,
#                                   delete the namespace and lab AppliedManifestWorks
#
# Settings: LAB_AGENT_ARGS (extra agent flags, e.g. --kube-api-qps=200), LAB_DIR (default /tmp/stall-lab), LAB_BASE_PORT (default 18300:
# REST +0, gRPC +1, broker +2, metrics +3, health +4, agent +10).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${MAESTRO_BIN:?run: eval \"\$(bash tests/stack/stack.sh env)\"}" "${KUBECONFIG:?}" "${KUBECTL:?}"
LAB_DIR=${LAB_DIR:-/tmp/stall-lab}
P=${LAB_BASE_PORT:-18300}
HTTP=$P GRPC=$((P + 1)) BROKER=$((P + 2)) METRICS=$((P + 3)) HEALTH=$((P + 4)) AGENT_PORT=$((P + 10))
CONSUMER=stall-lab
DB=stall_research
NS=stall-lab
API="http://127.0.0.1:$HTTP/api/maestro/v1"
CLI=${CLI:-$ROOT/target/debug/maestro-cli}
K=("$KUBECTL" --kubeconfig="$KUBECONFIG")
URL="dns:///127.0.0.1:$BROKER?agent=$CONSUMER"
AGENT_ID=$(printf '%s' "$URL" | sha256sum | cut -d' ' -f1)
export MAESTRO_ENV=development
mkdir -p "$LAB_DIR/secrets" "$LAB_DIR/agent/tmp"
say() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }

alive() { [[ -f $LAB_DIR/$1.pid ]] && kill -0 "$(cat "$LAB_DIR/$1.pid")" 2>/dev/null; }
start() { # name logfile cmd...
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$LAB_DIR/$name.pid"
}
stop() {
  local pid
  alive "$1" || return 0
  pid=$(cat "$LAB_DIR/$1.pid")
  kill -TERM "$pid"
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
}

server_up() {
  alive server && return 0
  [[ -s $LAB_DIR/secrets/db.password ]] || head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$LAB_DIR/secrets/db.password"
  printf 127.0.0.1 >"$LAB_DIR/secrets/db.host"
  printf %s "${STACK_PG_PORT:-15432}" >"$LAB_DIR/secrets/db.port"
  printf %s "$DB" >"$LAB_DIR/secrets/db.name"
  printf %s "$DB" >"$LAB_DIR/secrets/db.user"
  bash "$ROOT/tests/stack/postgres.sh" ensure-db "$DB" "$DB" "$(cat "$LAB_DIR/secrets/db.password")"
  local s="$LAB_DIR/secrets" db=()
  db=(--db-host-file="$s/db.host" --db-port-file="$s/db.port" --db-name-file="$s/db.name"
    --db-user-file="$s/db.user" --db-password-file="$s/db.password" --db-sslmode=disable)
  (cd "$LAB_DIR" && "$MAESTRO_BIN" migration "${db[@]}" >>"$LAB_DIR/migration.log" 2>&1)
  (cd "$LAB_DIR" && start server "$LAB_DIR/server.log" "$MAESTRO_BIN" server \
    --server-hostname=127.0.0.1 --http-server-bindport="$HTTP" --enable-grpc-server=true \
    --grpc-server-bindport="$GRPC" --message-broker-type=grpc --grpc-broker-bindport="$BROKER" \
    --metrics-server-bindport="$METRICS" --health-check-server-bindport="$HEALTH" "${db[@]}" --v=2)
  for _ in $(seq 1 150); do
    curl -sf -o /dev/null "$API/consumers" && break
    sleep 0.2
  done
  curl -sfG "$API/consumers" --data-urlencode "search=name='$CONSUMER'" | grep -q "\"name\":\"$CONSUMER\"" ||
    curl -sf -o /dev/null -H 'Content-Type: application/json' -d "{\"name\":\"$CONSUMER\"}" "$API/consumers"
  say "server up: REST $HTTP, gRPC $GRPC, broker $BROKER"
}

agent_up() {
  alive agent && return 0
  printf 'url: %s\n' "$URL" >"$LAB_DIR/agent/grpc-config.yaml"
  "${K[@]}" create namespace "$NS" --dry-run=client -o yaml | "${K[@]}" apply -f - >/dev/null
  local off=0 extra=()
  read -r -a extra <<<"${LAB_AGENT_ARGS:-}"
  [[ -f $LAB_DIR/agent.log ]] && off=$(stat -c %s "$LAB_DIR/agent.log")
  echo "===== $(date -u +%FT%T.%NZ) start agent" >>"$LAB_DIR/agent.log"
  TMPDIR="$LAB_DIR/agent/tmp" start agent "$LAB_DIR/agent.log" "$MAESTRO_BIN" agent \
    --consumer-name="$CONSUMER" --workload-source-driver=grpc \
    --workload-source-config="$LAB_DIR/agent/grpc-config.yaml" \
    --cloudevents-client-id="$CONSUMER-maestro-agent" --kubeconfig="$KUBECONFIG" \
    --listen="127.0.0.1:$AGENT_PORT" --namespace="$NS" --status-sync-interval=7s -v=2 "${extra[@]}"
  for _ in $(seq 1 300); do
    (($(tail -c +"$((off + 1))" "$LAB_DIR/agent.log" | grep -c 'subscribed to grpc server' || true) > 0)) && break
    sleep 0.2
  done
  say "agent up (pid $(cat "$LAB_DIR/agent.pid"), agent ID ${AGENT_ID:0:12}...)"
}

bundles() {
  curl -sfG "$API/resource-bundles" --data-urlencode "search=consumer_name='$CONSUMER'" --data-urlencode size=1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# resync-test N : make the consumer hold N live one-ConfigMap works (adding
# what is missing), restart the agent, and count the works it receives in
# its resync within 30 s. A wedged agent receives nothing (or one event).
# PAD=BYTES pads each new ConfigMap with that many bytes of data.
add_works() {
  local n=$1 have
  have=$(bundles)
  if ((have < n)); then
    say "adding works $((have + 1))..$n"
    # shellcheck disable=SC2016 # expanded by the inner sh
    seq $((have + 1)) "$n" | xargs -P 4 -I{} sh -c 'printf "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%s, namespace: %s}\ndata: {i: \"%s\", pad: \"%s\"}\n" "$1" "$2" "$1" "$7" |
      MAESTRO_SOURCE_ID=stall-lab "$3" apply -f - --name "w-$1" --consumer "$4" --grpc-endpoint "http://127.0.0.1:$5" --http-endpoint "http://127.0.0.1:$6" >/dev/null' \
      _ {} "$NS" "$CLI" "$CONSUMER" "$GRPC" "$HTTP" "$(head -c "${PAD:-0}" /dev/zero | tr '\0' x)"
  fi
}

resync_test() {
  local n=$1 off got
  add_works "$n"
  say "consumer holds $(bundles) bundles; restarting the agent"
  stop agent
  off=$(stat -c %s "$LAB_DIR/agent.log")
  agent_up
  sleep 30
  got=$(tail -c +"$((off + 1))" "$LAB_DIR/agent.log" | grep -c '"Received event".*resync_response' || true)
  # grep reads to the end (no -q): an early exit would SIGPIPE tail under pipefail
  if (($(tail -c +"$((off + 1))" "$LAB_DIR/agent.log" | grep -c '"receiving events"' || true) > 0)); then r=started; else r="never started"; fi
  say "N=$(bundles): the fresh agent received $got resync events in 30 s (receiver $r)"
  echo "$(bundles) $got"
}

# delete-test N : make the consumer hold N live works, wait until all are
# Applied, delete them all at once (maestro-cli delete --all) and print every
# 2 s how many bundles are left. No watchdog here: the agent is left alone.
delete_test() {
  local n=$1 t0 left
  add_works "$n"
  until (($(curl -sfG "$API/resource-bundles" --data-urlencode "search=consumer_name='$CONSUMER'" --data-urlencode size=10000 |
    python3 -c 'import json,sys; print(sum(any(c.get("type")=="Applied" and c.get("status")=="True" for c in ((b.get("status") or {}).get("conditions") or [])) for b in json.load(sys.stdin)["items"]))') >= n)); do sleep 2; done
  say "all $n Applied; deleting them all"
  t0=$SECONDS
  MAESTRO_SOURCE_ID=stall-lab "$CLI" delete --consumer "$CONSUMER" --all --yes --grpc-endpoint "http://127.0.0.1:$GRPC" --http-endpoint "http://127.0.0.1:$HTTP" >/dev/null
  while left=$(bundles) && ((left > 0)) && ((SECONDS - t0 < ${DELETE_OBSERVE:-600})); do
    echo "$((SECONDS - t0)) $left $("${K[@]}" -n "$NS" get configmaps --no-headers 2>/dev/null | grep -c '^cm-' || true)"
    sleep 2
  done
  say "$left bundles left $((SECONDS - t0)) s after the delete"
}

# trim N : forget (hard-delete in the lab database) all but the N oldest
# works, the only way to shrink a wedged consumer (its agent confirms nothing)
trim() {
  bash "$ROOT/tests/stack/postgres.sh" psql -d "$DB" -q -c "DELETE FROM resources WHERE consumer_name = '$CONSUMER' AND id NOT IN (SELECT id FROM resources WHERE consumer_name = '$CONSUMER' ORDER BY created_at LIMIT $1)" >/dev/null
  say "trimmed to $(bundles) bundles"
}

down() {
  stop agent
  stop server
  "${K[@]}" get appliedmanifestworks -o name 2>/dev/null | while read -r a; do
    if [[ $("${K[@]}" get "$a" -o jsonpath='{.spec.agentID}' 2>/dev/null) == "$AGENT_ID" ]]; then
      "${K[@]}" patch "$a" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
      "${K[@]}" delete "$a" --wait=false >/dev/null 2>&1 || true
    fi
  done
  "${K[@]}" delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
  bash "$ROOT/tests/stack/postgres.sh" psql -d postgres -q -c "DROP DATABASE IF EXISTS $DB" -c "DROP ROLE IF EXISTS $DB" >/dev/null
  say "down: lab processes stopped, database, namespace and AppliedManifestWorks removed"
}

case ${1:-} in
up) server_up && agent_up ;;
restart-agent) stop agent && agent_up ;;
resync-test) server_up && agent_up && resync_test "${2:?N}" ;;
trim) trim "${2:?N}" ;;
delete-test) server_up && agent_up && delete_test "${2:?N}" ;;
down) down ;;
*) echo "usage: $0 up|restart-agent|resync-test N|down" >&2; exit 2 ;;
esac
