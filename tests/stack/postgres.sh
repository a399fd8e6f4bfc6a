#!/usr/bin/env bash
# PostgreSQL for the local stack: a private cluster in $STACK_DIR/postgres,
# listening only on 127.0.0.1:$PG_PORT and on a unix socket inside $STACK_DIR.
#
#   postgres.sh up|down|status|env
#   postgres.sh ensure-db DB USER PASSWORD   create the role and database if missing
#   postgres.sh psql [ARGS...]               psql as the superuser over the socket
#
# PostgreSQL refuses to run as root, so when we are root the cluster runs as
# $PG_OS_USER (default: postgres). Loopback TCP uses scram-sha-256 passwords;
# the unix socket (0700 directory owned by that user) trusts local users. It
# is a throwaway test database: fsync is off.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ((EUID == 0)); then : "${PG_OS_USER:=postgres}"; else : "${PG_OS_USER:=$(id -un)}"; fi
: "${PG_ROOT:=$STACK_DIR/postgres}"
: "${PG_DATA:=$PG_ROOT/data}"
: "${PG_SOCKET_DIR:=$PG_ROOT/run}"
: "${PG_SUPERUSER:=postgres}"
: "${PG_MAX_CONNECTIONS:=200}"

_pg_bindir() {
  if [[ -n ${PG_BIN_DIR:-} ]]; then
    printf '%s' "$PG_BIN_DIR"
    return
  fi
  # Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin.
  local d
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [[ -n $d && -x $d/postgres ]]; then
    printf '%s' "$d"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
  else
    die postgres "no PostgreSQL server binaries found (set PG_BIN_DIR)"
  fi
}
PG_BIN_DIR=$(_pg_bindir)
as_user "$PG_OS_USER"

# _pg_as CMD... : run CMD as the cluster's OS user, from a directory it can
# read (initdb fails when it cannot resolve the current directory).
_pg_as() { (cd "$PG_ROOT" && "${AS_USER[@]}" "$@"); }

_pg_ready() {
  "$PG_BIN_DIR/pg_isready" -q -h "$STACK_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

# _pg_shutting_down : true when the server refuses connections because it is
# shutting down (e.g. SIGTERM, a "smart" shutdown, which waits for every
# client to leave: with Maestro connected, for ever). The message comes before
# authentication, so no password is needed.
_pg_shutting_down() {
  local out
  out=$(PGCONNECT_TIMEOUT=3 "$PG_BIN_DIR/psql" -w -X -h "$STACK_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" \
    -d postgres -c '' 2>&1 </dev/null) || true
  [[ $out == *'shutting down'* ]]
}

_pg_prepare_dirs() {
  ensure_stack_dirs
  mkdir -p "$PG_ROOT" "$PG_SOCKET_DIR"
  if ((EUID == 0)); then
    chown "$PG_OS_USER:" "$PG_ROOT" "$PG_SOCKET_DIR"
  fi
  chmod 0700 "$PG_ROOT" "$PG_SOCKET_DIR"
  if ! (cd / && "${AS_USER[@]}" test -w "$PG_ROOT"); then
    die postgres "user '$PG_OS_USER' cannot reach $PG_ROOT; every parent directory of STACK_DIR ($STACK_DIR) must be traversable (o+x) by it"
  fi
  local sock="$PG_SOCKET_DIR/.s.PGSQL.$PG_PORT"
  ((${#sock} < 100)) || die postgres "unix socket path too long (${#sock} chars): $sock; use a shorter STACK_DIR"
}

_pg_initdb() {
  [[ -f $PG_DATA/PG_VERSION ]] && return 0
  local logfile
  logfile=$(proc_logfile postgres-initdb)
  log postgres "initdb $PG_DATA (as $PG_OS_USER)"
  rm -rf "$PG_DATA"
  if ! _pg_as "$PG_BIN_DIR/initdb" -D "$PG_DATA" -U "$PG_SUPERUSER" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$logfile" 2>&1; then
    tail_log "$logfile"
    die postgres "initdb failed; see $logfile"
  fi
}

postgres_up() {
  if proc_alive postgres && _pg_ready; then
    log postgres "already running on $STACK_HOST:$PG_PORT"
    return 0
  fi
  # Found alive but not accepting connections: wait for it, or replace it
  # when it is shutting down (SIGINT, PostgreSQL's fast shutdown).
  if proc_adopt postgres "$STACK_WAIT_TIMEOUT" INT _pg_shutting_down _pg_ready; then
    log postgres "ready on $STACK_HOST:$PG_PORT"
    return 0
  fi
  if port_open "$STACK_HOST" "$PG_PORT"; then
    die postgres "$STACK_HOST:$PG_PORT is already taken by a process this stack did not start (set PG_PORT)"
  fi
  _pg_prepare_dirs
  _pg_initdb
  local logfile
  logfile=$(proc_logfile postgres)
  log postgres "starting on $STACK_HOST:$PG_PORT (log: $logfile)"
  proc_start postgres "${AS_USER[@]}" "$PG_BIN_DIR/postgres" -D "$PG_DATA" \
    -c listen_addresses="$STACK_HOST" -c port="$PG_PORT" \
    -c unix_socket_directories="$PG_SOCKET_DIR" -c unix_socket_permissions=0700 \
    -c max_connections="$PG_MAX_CONNECTIONS" -c logging_collector=off \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  local deadline=$((SECONDS + STACK_WAIT_TIMEOUT))
  until _pg_ready; do
    if ! proc_alive postgres; then
      tail_log "$logfile"
      die postgres "postgres exited during startup; see $logfile"
    fi
    ((SECONDS < deadline)) || {
      tail_log "$logfile"
      die postgres "not ready after ${STACK_WAIT_TIMEOUT}s; see $logfile"
    }
    sleep 0.2
  done
  log postgres "ready on $STACK_HOST:$PG_PORT"
}

postgres_down() {
  if proc_alive postgres; then
    log postgres "stopping"
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients.
    proc_stop postgres INT 60
  fi
  log postgres "stopped"
}

postgres_status() {
  local pid
  if pid=$(proc_pid postgres) && _pg_ready; then
    echo "postgres: running (pid $pid) on $STACK_HOST:$PG_PORT, socket dir $PG_SOCKET_DIR, data $PG_DATA"
  elif [[ -n ${pid:-} ]]; then
    echo "postgres: starting or unhealthy (pid $pid), not accepting connections on $STACK_HOST:$PG_PORT"
    return 3
  else
    echo "postgres: stopped"
    return 3
  fi
}

postgres_env() {
  echo "export STACK_PG_HOST=$STACK_HOST STACK_PG_PORT=$PG_PORT STACK_PG_SOCKET_DIR=$PG_SOCKET_DIR"
}

postgres_psql() {
  _pg_ready || die postgres "not running; run: $0 up"
  _pg_as "$PG_BIN_DIR/psql" -X -h "$PG_SOCKET_DIR" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

# postgres_ensure_db DB USER PASSWORD : idempotent; also resets the password
# so it always matches the secret files the caller writes.
postgres_ensure_db() {
  (($# == 3)) || die postgres "usage: $0 ensure-db DB USER PASSWORD"
  local db=$1 user=$2 pass=$3
  postgres_psql -d postgres -v ON_ERROR_STOP=1 -q \
    -v db="$db" -v user="$user" -v pass="$pass" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', :'pass') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

component_main postgres "$@"
