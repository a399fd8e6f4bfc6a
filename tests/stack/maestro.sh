#!/usr/bin/env bash
# The real Maestro server for the local stack, built from the Go module pinned
# in tests/tools/maestro and backed by the stack's PostgreSQL.
#
#   maestro.sh build   compile the pinned Maestro into the tools cache (once)
#   maestro.sh up      create DB + user, migrate, start the server, register consumers
#   maestro.sh down | status | env
#
# Two instances on the one database: `maestro` (the one everything uses; the
# agents connect to its broker) and `maestro-peer`, a second plain instance
# with ports of its own (MAESTRO_PEER_* in env.sh) that no agent connects to.
# That is Maestro's multi-instance layout as its chart runs replicas: each
# instance has its own --client-id (its row in server_instances, its
# heartbeat), a work published to either is sent to the agent by the
# instance whose broker holds that consumer (the other learns of it through
# PostgreSQL LISTEN/NOTIFY and skips it), and status reaches the Subscribe
# streams of both. The fault suite's maestro-instance-killed SIGKILLs the peer
# under an operator that reaches both through round-robin proxies.
#
# Every listener binds --server-hostname, which we set to $STACK_HOST
# (127.0.0.1): REST API, gRPC source server, gRPC agent broker, metrics, health.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${MAESTRO_DB_NAME:=maestro}"
: "${MAESTRO_DB_USER:=maestro}"
# klog verbosity. Maestro's "development" environment defaults to 10, which
# logs every request and SQL statement; 2 keeps the log readable.
: "${MAESTRO_LOG_VERBOSITY:=2}"
: "${MAESTRO_STATE_DIR:=$STACK_DIR/maestro}"
MAESTRO_BIN="$TOOLS_CACHE_DIR/maestro/$MAESTRO_VERSION/maestro"
MAESTRO_TOOLS_MODULE_DIR="$STACK_REPO_ROOT/tests/tools/maestro"
SECRETS_DIR="$MAESTRO_STATE_DIR/secrets"
HTTP_URL="http://$STACK_HOST:$MAESTRO_HTTP_PORT"
HEALTH_URL="http://$STACK_HOST:$MAESTRO_HEALTH_PORT/healthcheck"
API="$HTTP_URL/api/maestro/v1"
PEER_HTTP_URL="http://$STACK_HOST:$MAESTRO_PEER_HTTP_PORT"
PEER_HEALTH_URL="http://$STACK_HOST:$MAESTRO_PEER_HEALTH_PORT/healthcheck"

# ------------------------------------------------------------------- build

# Maestro's own ManifestWork example client (the Go grpcsource client), the
# reference the interoperability tests compare our client against.
MAESTRO_GO_CLIENT_BIN="$TOOLS_CACHE_DIR/maestro/$MAESTRO_VERSION/maestro-go-client"

maestro_build() {
  if [[ -x $MAESTRO_BIN && -x $MAESTRO_GO_CLIENT_BIN ]]; then
    log maestro "binaries cached in $(dirname "$MAESTRO_BIN")"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="$PATH:/usr/local/go/bin"
  fi
  require_cmd maestro go
  # env.sh names the version; go.mod is what actually gets built. Keep them equal.
  grep -qF "$MAESTRO_MODULE $MAESTRO_VERSION" "$MAESTRO_TOOLS_MODULE_DIR/go.mod" ||
    die maestro "tests/tools/maestro/go.mod does not require $MAESTRO_MODULE $MAESTRO_VERSION (env.sh MAESTRO_VERSION); update both together"
  mkdir -p "$(dirname "$MAESTRO_BIN")"
  # Serialise concurrent builds of the same version.
  exec 9>"$(dirname "$MAESTRO_BIN")/.build.lock"
  flock 9
  _maestro_go_build "$MAESTRO_MODULE/cmd/maestro" "$MAESTRO_BIN"
  _maestro_go_build "$MAESTRO_MODULE/examples/manifestwork" "$MAESTRO_GO_CLIENT_BIN"
  exec 9>&-
}

_maestro_go_build() {
  local package=$1 out=$2
  [[ -x $out ]] && return 0
  log maestro "building $package@$MAESTRO_VERSION with $(go version | cut -d' ' -f3) (first time: several minutes)"
  local start=$SECONDS tmp="$out.tmp.$$"
  (cd "$MAESTRO_TOOLS_MODULE_DIR" && go build -mod=readonly -trimpath -o "$tmp" "$package") ||
    {
      rm -f "$tmp"
      die maestro "go build of $package failed"
    }
  mv -f "$tmp" "$out"
  log maestro "built $out in $((SECONDS - start))s"
}

# ---------------------------------------------------------------- helpers

_maestro_healthy() {
  [[ $(http_code "$HEALTH_URL") == 200 ]] && [[ $(http_code "$API/consumers") == 200 ]]
}

# Maestro reads its database settings from files (--db-*-file); it resolves
# relative paths against its *source* directory, so we pass absolute ones.
_maestro_write_secrets() {
  mkdir -p "$SECRETS_DIR"
  chmod 0700 "$MAESTRO_STATE_DIR" "$SECRETS_DIR"
  if [[ ! -s $SECRETS_DIR/db.password ]]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$SECRETS_DIR/db.password")
  fi
  printf '%s' "$STACK_HOST" >"$SECRETS_DIR/db.host"
  printf '%s' "$PG_PORT" >"$SECRETS_DIR/db.port"
  printf '%s' "$MAESTRO_DB_NAME" >"$SECRETS_DIR/db.name"
  printf '%s' "$MAESTRO_DB_USER" >"$SECRETS_DIR/db.user"
  chmod 0600 "$SECRETS_DIR"/db.*
}

_maestro_db_flags() {
  printf '%s\n' \
    "--db-host-file=$SECRETS_DIR/db.host" \
    "--db-port-file=$SECRETS_DIR/db.port" \
    "--db-name-file=$SECRETS_DIR/db.name" \
    "--db-user-file=$SECRETS_DIR/db.user" \
    "--db-password-file=$SECRETS_DIR/db.password" \
    "--db-sslmode=disable"
}

# _maestro_consumer_labels NAME : the consumer's labels from
# STACK_CONSUMER_LABELS as a JSON object ({} when it has none).
_maestro_consumer_labels() {
  local entry pairs kv json=""
  for entry in $STACK_CONSUMER_LABELS; do
    [[ ${entry%%:*} == "$1" ]] || continue
    pairs=${entry#*:}
    IFS=, read -ra kvs <<<"$pairs"
    for kv in "${kvs[@]}"; do
      json+="${json:+,}\"${kv%%=*}\":\"${kv#*=}\""
    done
  done
  printf '{%s}' "$json"
}

# Register one consumer through REST unless a consumer of that name exists,
# with its STACK_CONSUMER_LABELS; an existing one gets the labels it lacks
# (PATCH replaces all labels, so the ones it has are sent along).
_maestro_ensure_consumer() {
  local name=$1 found code labels
  labels=$(_maestro_consumer_labels "$name")
  found=$(curl -sS --fail --max-time 10 -G "$API/consumers" --data-urlencode "search=name='$name'") ||
    die maestro "listing consumers failed ($API/consumers)"
  if [[ $found == *"\"name\":\"$name\""* ]]; then
    _maestro_add_consumer_labels "$name" "$found" "$labels"
    return 0
  fi
  code=$(curl -sS -o "$MAESTRO_STATE_DIR/consumer-create.json" -w '%{http_code}' --max-time 10 \
    -H 'Content-Type: application/json' -d "{\"name\":\"$name\",\"labels\":$labels}" "$API/consumers")
  case $code in
  201) log maestro "registered consumer $name (labels $labels)" ;;
  409) ;; # created concurrently
  *) die maestro "creating consumer $name returned HTTP $code: $(cat "$MAESTRO_STATE_DIR/consumer-create.json")" ;;
  esac
}

# _maestro_add_consumer_labels NAME LIST_JSON WANTED_JSON : merge the wanted
# labels into the consumer's when some are missing.
_maestro_add_consumer_labels() {
  local name=$1 list=$2 wanted=$3 id merged code
  [[ $wanted == "{}" ]] && return 0
  read -r id merged < <(python3 -c '
import json, sys
item = json.loads(sys.argv[1])["items"][0]
wanted = json.loads(sys.argv[2])
have = item.get("labels") or {}
merged = dict(have, **{k: v for k, v in wanted.items() if k not in have})
print(item["id"], json.dumps(merged, separators=(",", ":")) if merged != have else "-")
' "$list" "$wanted") || die maestro "cannot read consumer $name from $API/consumers"
  [[ $merged == "-" ]] && return 0
  code=$(curl -sS -o "$MAESTRO_STATE_DIR/consumer-patch.json" -w '%{http_code}' --max-time 10 -X PATCH \
    -H 'Content-Type: application/json' -d "{\"labels\":$merged}" "$API/consumers/$id")
  [[ $code == 200 ]] ||
    die maestro "labelling consumer $name returned HTTP $code: $(cat "$MAESTRO_STATE_DIR/consumer-patch.json")"
  log maestro "labelled consumer $name: $merged"
}

_maestro_ensure_consumers() {
  local c
  for c in $STACK_CONSUMERS; do
    _maestro_ensure_consumer "$c"
  done
}

# Flags the peer shares with the main instance (which spells them out below).
_maestro_server_flags() {
  local db_flags
  mapfile -t db_flags < <(_maestro_db_flags)
  printf '%s\n' --server-hostname="$STACK_HOST" --enable-grpc-server=true --message-broker-type=grpc \
    "${db_flags[@]}" --v="$MAESTRO_LOG_VERBOSITY"
}

# ------------------------------------------------------------------- peer

_maestro_peer_healthy() {
  [[ $(http_code "$PEER_HEALTH_URL") == 200 ]] &&
    [[ $(http_code "$PEER_HTTP_URL/api/maestro/v1/consumers") == 200 ]] &&
    port_open "$STACK_HOST" "$MAESTRO_PEER_GRPC_PORT"
}

# Starts the peer unless it is alive (found unready: waited for, or
# replaced); needs the database migrated.
_maestro_peer_start() {
  proc_adopt maestro-peer "$STACK_WAIT_TIMEOUT" TERM - _maestro_peer_healthy && return 0
  local port flags
  for port in "$MAESTRO_PEER_HTTP_PORT" "$MAESTRO_PEER_GRPC_PORT" "$MAESTRO_PEER_BROKER_PORT" \
    "$MAESTRO_PEER_METRICS_PORT" "$MAESTRO_PEER_HEALTH_PORT"; do
    port_open "$STACK_HOST" "$port" && die maestro "$STACK_HOST:$port (maestro-peer) is already taken by a process this stack did not start"
  done
  mapfile -t flags < <(_maestro_server_flags)
  log maestro "starting maestro-peer (log: $(proc_logfile maestro-peer))"
  # Its own instance ID, as the chart's replicas have (--client-id=maestro-$(POD_NAME)).
  MAESTRO_ENV=development proc_start maestro-peer "$MAESTRO_BIN" server \
    --client-id=maestro-peer \
    --http-server-bindport="$MAESTRO_PEER_HTTP_PORT" \
    --grpc-server-bindport="$MAESTRO_PEER_GRPC_PORT" \
    --grpc-broker-bindport="$MAESTRO_PEER_BROKER_PORT" \
    --metrics-server-bindport="$MAESTRO_PEER_METRICS_PORT" \
    --health-check-server-bindport="$MAESTRO_PEER_HEALTH_PORT" \
    "${flags[@]}"
}

_maestro_peer_wait() {
  local t0=$SECONDS logfile
  logfile=$(proc_logfile maestro-peer)
  wait_for_port maestro "$STACK_HOST" "$MAESTRO_PEER_GRPC_PORT" "$STACK_WAIT_TIMEOUT" "$logfile" maestro-peer
  # A new instance ID turns healthy once an instance's liveness check marks
  # its heartbeat row ready (every 5 s).
  wait_for_http maestro "$PEER_HEALTH_URL" "$STACK_WAIT_TIMEOUT" "$logfile" maestro-peer
  wait_for_http maestro "$PEER_HTTP_URL/api/maestro/v1/consumers" "$STACK_WAIT_TIMEOUT" "$logfile" maestro-peer
  ((SECONDS - t0 < 1)) || log maestro "maestro-peer ready after $((SECONDS - t0))s on $PEER_HTTP_URL"
}

# -------------------------------------------------------------- lifecycle

maestro_up() {
  if proc_alive maestro && _maestro_healthy; then
    _maestro_ensure_consumers
    _maestro_peer_start
    _maestro_peer_wait
    log maestro "already running on $HTTP_URL"
    return 0
  fi
  "$STACK_SCRIPTS_DIR/postgres.sh" status >/dev/null ||
    die maestro "PostgreSQL is not running; start it first: tests/stack/postgres.sh up (or tests/stack/stack.sh up)"
  local logfile port
  logfile=$(proc_logfile maestro)
  # Found alive but unhealthy: wait for it (it may be starting), or replace it.
  if ! proc_adopt maestro "$STACK_WAIT_TIMEOUT" TERM - _maestro_healthy; then
    for port in "$MAESTRO_HTTP_PORT" "$MAESTRO_GRPC_PORT" "$MAESTRO_BROKER_PORT" "$MAESTRO_METRICS_PORT" "$MAESTRO_HEALTH_PORT"; do
      port_open "$STACK_HOST" "$port" && die maestro "$STACK_HOST:$port is already taken by a process this stack did not start"
    done
    maestro_build
    ensure_stack_dirs
    _maestro_write_secrets
    "$STACK_SCRIPTS_DIR/postgres.sh" ensure-db "$MAESTRO_DB_NAME" "$MAESTRO_DB_USER" "$(cat "$SECRETS_DIR/db.password")"

    local db_flags mlog
    mapfile -t db_flags < <(_maestro_db_flags)
    mlog=$(proc_logfile maestro-migration)
    log maestro "migrating database $MAESTRO_DB_NAME (log: $mlog)"
    local m0=$SECONDS
    if ! (cd "$MAESTRO_STATE_DIR" && MAESTRO_ENV=development "$MAESTRO_BIN" migration "${db_flags[@]}" \
      --v="$MAESTRO_LOG_VERBOSITY" >>"$mlog" 2>&1); then
      tail_log "$mlog"
      die maestro "maestro migration failed; see $mlog"
    fi
    log maestro "migrated in $((SECONDS - m0))s"

    log maestro "starting server (log: $logfile)"
    MAESTRO_ENV=development proc_start maestro "$MAESTRO_BIN" server \
      --server-hostname="$STACK_HOST" \
      --http-server-bindport="$MAESTRO_HTTP_PORT" \
      --enable-grpc-server=true \
      --grpc-server-bindport="$MAESTRO_GRPC_PORT" \
      --message-broker-type=grpc \
      --grpc-broker-bindport="$MAESTRO_BROKER_PORT" \
      --metrics-server-bindport="$MAESTRO_METRICS_PORT" \
      --health-check-server-bindport="$MAESTRO_HEALTH_PORT" \
      "${db_flags[@]}" \
      --v="$MAESTRO_LOG_VERBOSITY"
  fi
  # The peer starts beside the main instance (the database is migrated).
  _maestro_peer_start
  local t0=$SECONDS
  for port in "$MAESTRO_HTTP_PORT" "$MAESTRO_GRPC_PORT" "$MAESTRO_BROKER_PORT" "$MAESTRO_HEALTH_PORT"; do
    wait_for_port maestro "$STACK_HOST" "$port" "$STACK_WAIT_TIMEOUT" "$logfile" maestro
  done
  # /healthcheck turns 200 once this instance's heartbeat row is marked ready
  # (checked every heartbeat-interval/3 = 5 s by default).
  wait_for_http maestro "$HEALTH_URL" "$STACK_WAIT_TIMEOUT" "$logfile" maestro
  wait_for_http maestro "$API/consumers" "$STACK_WAIT_TIMEOUT" "$logfile" maestro
  log maestro "ready after $((SECONDS - t0))s on $HTTP_URL"
  _maestro_ensure_consumers
  _maestro_peer_wait
}

maestro_down() {
  if proc_alive maestro-peer; then
    log maestro "stopping maestro-peer"
    proc_stop maestro-peer TERM 30
  fi
  if proc_alive maestro; then
    log maestro "stopping"
    proc_stop maestro TERM 30
  fi
  log maestro "stopped"
}

maestro_status() {
  local pid rc=0
  if pid=$(proc_pid maestro); then
    if _maestro_healthy; then
      echo "maestro: running (pid $pid) rest=$HTTP_URL grpc=$STACK_HOST:$MAESTRO_GRPC_PORT broker=$STACK_HOST:$MAESTRO_BROKER_PORT health=$HEALTH_URL metrics=http://$STACK_HOST:$MAESTRO_METRICS_PORT/metrics"
    else
      echo "maestro: starting or unhealthy (pid $pid): $HEALTH_URL returns $(http_code "$HEALTH_URL")"
      return 3
    fi
  else
    echo "maestro: stopped"
    return 3
  fi
  if pid=$(proc_pid maestro-peer); then
    if _maestro_peer_healthy; then
      echo "maestro-peer: running (pid $pid) rest=$PEER_HTTP_URL grpc=$STACK_HOST:$MAESTRO_PEER_GRPC_PORT health=$PEER_HEALTH_URL"
    else
      echo "maestro-peer: starting or unhealthy (pid $pid): $PEER_HEALTH_URL returns $(http_code "$PEER_HEALTH_URL")"
      rc=1
    fi
  else
    echo "maestro-peer: stopped"
    rc=1
  fi
  return "$rc"
}

maestro_env() {
  local names consumers
  read -ra names <<<"$STACK_CONSUMERS"
  consumers=$(IFS=,; echo "${names[*]}")
  echo "export MAESTRO_HTTP_ENDPOINT=$HTTP_URL MAESTRO_GRPC_ENDPOINT=http://$STACK_HOST:$MAESTRO_GRPC_PORT MAESTRO_BROKER_ENDPOINT=http://$STACK_HOST:$MAESTRO_BROKER_PORT"
  echo "export MAESTRO_BIN=$MAESTRO_BIN MAESTRO_GO_CLIENT=$MAESTRO_GO_CLIENT_BIN"
  echo "export MAESTRO_HEALTH_ENDPOINT=http://$STACK_HOST:$MAESTRO_HEALTH_PORT MAESTRO_METRICS_ENDPOINT=http://$STACK_HOST:$MAESTRO_METRICS_PORT MAESTRO_CONSUMERS=$consumers"
  echo "export MAESTRO_PEER_HTTP_ENDPOINT=$PEER_HTTP_URL MAESTRO_PEER_GRPC_ENDPOINT=http://$STACK_HOST:$MAESTRO_PEER_GRPC_PORT"
}

component_main maestro "$@"
