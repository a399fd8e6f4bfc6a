# shellcheck shell=bash
# Shared helpers of the local real stack. Sourced (never run) by the
# component scripts in tests/stack. Sources env.sh, so a component script only
# needs:   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Conventions every component script follows (stack.sh relies on them):
#   <name>.sh up       start if not running; a no-op when already healthy
#   <name>.sh down     stop; a no-op when not running
#   <name>.sh status   one line on stdout; exit 0 when running, 3 when stopped
#   <name>.sh env      `export VAR=value` lines for tests
# Background processes keep their pid in $STACK_RUN_DIR/<name>.pid and their
# output in $STACK_LOG_DIR/<name>.log.

# shellcheck source=tests/stack/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# shellcheck disable=SC2034 # used by the component scripts
STACK_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${STACK_RUN_DIR:=$STACK_DIR/run}"
# Default seconds to wait for a component to become ready.
: "${STACK_WAIT_TIMEOUT:=120}"
# Seconds `up` gives a process it finds alive but not ready, and past its
# start-up, to become ready again before it replaces it (see proc_adopt).
: "${STACK_UNREADY_GRACE:=20}"
# Seconds `up` waits for a process it replaces to exit before SIGKILL.
: "${STACK_STOP_TIMEOUT:=30}"

# ---------------------------------------------------------------- logging

# log COMPONENT MESSAGE... : progress to stderr, so stdout stays parseable.
log() {
  local who=$1
  shift
  printf '[stack %s] %-8s %s\n' "$(date +%H:%M:%S)" "$who" "$*" >&2
}

# die COMPONENT MESSAGE... : log and exit 1.
die() {
  local who=$1
  shift
  log "$who" "ERROR: $*"
  exit 1
}

# tail_log FILE [LINES] : show the end of a log file on stderr (for failures).
tail_log() {
  local file=$1 lines=${2:-30}
  [[ -f $file ]] || return 0
  printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
  tail -n "$lines" "$file" >&2
  printf -- '----- end of %s -----\n' "$file" >&2
}

# ------------------------------------------------------------- directories

# ensure_stack_dirs : create STACK_DIR, its run and log directories. STACK_DIR
# is made world-traversable (0755) because services may run as another user.
ensure_stack_dirs() {
  mkdir -p "$STACK_DIR" "$STACK_RUN_DIR" "$STACK_LOG_DIR"
  chmod 0755 "$STACK_DIR" "$STACK_RUN_DIR" "$STACK_LOG_DIR"
}

# ------------------------------------------------------------------ waiting

# port_open HOST PORT : true when a TCP connect succeeds (bash /dev/tcp).
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# wait_for_port WHO HOST PORT [TIMEOUT] [LOGFILE] [PIDNAME]
# Waits until HOST:PORT accepts connections. Fails with the log's tail; with
# PIDNAME, fails at once if that managed process has died.
wait_for_port() {
  local who=$1 host=$2 port=$3 timeout=${4:-$STACK_WAIT_TIMEOUT} logfile=${5:-} pidname=${6:-}
  local deadline=$((SECONDS + timeout))
  until port_open "$host" "$port"; do
    give_up_if_dead_or_late "$who" "$deadline" "$logfile" "$pidname" \
      "process exited before $host:$port was listening" \
      "$host:$port not listening after ${timeout}s"
    sleep 0.2
  done
}

# give_up_if_dead_or_late WHO DEADLINE LOGFILE PIDNAME DIED LATE
# One round of a wait: fails with the log's tail and DIED when the managed
# process PIDNAME (if given) has exited, or with LATE once SECONDS has
# reached DEADLINE.
give_up_if_dead_or_late() {
  local who=$1 deadline=$2 logfile=$3 pidname=$4 died=$5 late=$6
  if [[ -n $pidname ]] && ! proc_alive "$pidname"; then
    [[ -n $logfile ]] && tail_log "$logfile"
    die "$who" "$died; see ${logfile:-its log}"
  fi
  if ((SECONDS >= deadline)); then
    [[ -n $logfile ]] && tail_log "$logfile"
    die "$who" "$late; see ${logfile:-its log}"
  fi
}

# http_code URL : the HTTP status code of a GET (000 when nothing answers).
http_code() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null || true
}

# wait_for_http WHO URL [TIMEOUT] [LOGFILE] [PIDNAME] [EXPECTED_CODE]
# Waits until GET URL returns EXPECTED_CODE (default 200).
wait_for_http() {
  local who=$1 url=$2 timeout=${3:-$STACK_WAIT_TIMEOUT} logfile=${4:-} pidname=${5:-} want=${6:-200}
  local deadline=$((SECONDS + timeout)) code
  while :; do
    code=$(http_code "$url")
    [[ $code == "$want" ]] && return 0
    give_up_if_dead_or_late "$who" "$deadline" "$logfile" "$pidname" \
      "process exited before $url returned $want" \
      "$url returned $code, not $want, after ${timeout}s"
    sleep 0.5
  done
}

# ------------------------------------------------------ managed processes

# The pid file holds "PID STARTTIME" (STARTTIME is field 22 of /proc/PID/stat),
# so a pid reused by an unrelated process after a reboot or crash is not
# mistaken for ours and never signalled.

proc_pidfile() { printf '%s/%s.pid' "$STACK_RUN_DIR" "$1"; }
proc_logfile() { printf '%s/%s.log' "$STACK_LOG_DIR" "$1"; }

_proc_starttime() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # Drop "pid (comm) " first: comm may contain spaces.
  stat=${stat##*) }
  # Now field 3 of the original is field 1 here; starttime (22) is field 20.
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat
  printf '%s' "${20}"
}

# _pid_running PID : true when PID exists and is not a zombie (an exited
# process its parent has not reaped yet). A multi-threaded process whose main
# thread has exited is a zombie while its other threads still tear down (and
# hold its sockets): running until every thread is gone.
_pid_running() {
  local stat t
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} == [ZX] ]] || return 0
  for t in "/proc/$1/task/"*/stat; do
    stat=$(cat "$t" 2>/dev/null) || continue
    stat=${stat##*) }
    [[ ${stat%% *} == [ZX] ]] || return 0
  done
  return 1
}

# proc_pid NAME : print the pid when the managed process is alive; else fail.
proc_pid() {
  local pidfile pid start now
  pidfile=$(proc_pidfile "$1")
  [[ -f $pidfile ]] || return 1
  read -r pid start <"$pidfile" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  _pid_running "$pid" || return 1
  if [[ -n ${start:-} && -r /proc/$pid/stat ]]; then
    now=$(_proc_starttime "$pid") || return 1
    [[ $now == "$start" ]] || return 1
  fi
  printf '%s\n' "$pid"
}

# proc_alive NAME : true when the managed process is running.
proc_alive() { proc_pid "$1" >/dev/null; }

# proc_start NAME CMD [ARGS...] : start CMD in the background, in its own
# session (so it survives the calling shell), appending stdout and stderr to
# $STACK_LOG_DIR/NAME.log. Does nothing when NAME is already alive. The
# working directory is $STACK_DIR.
proc_start() {
  local name=$1
  shift
  ensure_stack_dirs
  if proc_alive "$name"; then
    return 0
  fi
  local logfile pidfile pid start
  logfile=$(proc_logfile "$name")
  pidfile=$(proc_pidfile "$name")
  rm -f "$pidfile"
  printf '\n===== %s start %s: %s\n' "$(date -Is)" "$name" "$*" >>"$logfile"
  (
    # Close every inherited descriptor above stderr (e.g. the stack's flock),
    # or the long-lived service would hold it for its whole life.
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    cd "$STACK_DIR" && exec setsid "$@" </dev/null >>"$logfile" 2>&1
  ) &
  pid=$!
  # setsid forks only when the caller leads a process group; in a background
  # subshell it does not, so $! is the service itself.
  start=$(_proc_starttime "$pid" || true)
  printf '%s %s\n' "$pid" "$start" >"$pidfile"
  disown "$pid" 2>/dev/null || true
}

# proc_stop NAME [SIGNAL] [TIMEOUT] : send SIGNAL (default TERM) to the managed
# process, wait up to TIMEOUT seconds (default 30), then SIGKILL its process
# group (its own session, created by proc_start) and wait up to 10 s more.
# Removes the pid file; fails when the process is still there.
proc_stop() {
  local name=$1 sig=${2:-TERM} timeout=${3:-30} pid deadline
  if ! pid=$(proc_pid "$name"); then
    rm -f "$(proc_pidfile "$name")"
    return 0
  fi
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while _pid_running "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name" "did not stop within ${timeout}s after SIG$sig; sending SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while _pid_running "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
      break
    fi
    sleep 0.2
  done
  rm -f "$(proc_pidfile "$name")"
  ! _pid_running "$pid"
}

# proc_age PID : seconds since the process started (0 when unknown).
proc_age() {
  local start up ticks age
  if ! start=$(_proc_starttime "$1") || ! read -r up _ </proc/uptime || ! ticks=$(getconf CLK_TCK); then
    printf 0
    return 0
  fi
  age=$((${up%.*} - start / ticks))
  printf '%s' "$((age > 0 ? age : 0))"
}

# proc_log_since_start NAME : the part of NAME's log written since its last
# start (proc_start marks each start with a "===== ... start NAME:" line).
proc_log_since_start() {
  local logfile line
  logfile=$(proc_logfile "$1")
  [[ -f $logfile ]] || return 0
  line=$(grep -n "^===== .* start $1: " "$logfile" | tail -n 1 | cut -d: -f1)
  tail -n "+${line:-1}" "$logfile"
}

# proc_adopt NAME STARTUP SIGNAL SHUTDOWN_CHECK READY_CMD...
# What `up` does with a managed process it finds. Returns 0 when NAME runs and
# READY_CMD succeeds, at once or after waiting; 1 when NAME does not run (none
# did, or the one found exited or was stopped here): the caller starts a fresh
# one and waits for its readiness.
# A process found alive but not ready is still starting, or shutting down (a
# SIGTERMed kube-apiserver closes its port at once but takes about 60 s to
# exit; PostgreSQL's smart shutdown waits for every client), or wedged. It
# gets until STARTUP seconds after its own start, and at least
# STACK_UNREADY_GRACE seconds from now, to become ready; SHUTDOWN_CHECK (a
# command, or - for none) succeeding says at once that it is shutting down.
# Either way it is then stopped: SIGNAL, STACK_STOP_TIMEOUT seconds to exit,
# then SIGKILL of its process group.
proc_adopt() {
  local name=$1 startup=$2 sig=$3 sdcheck=$4 pid age wait deadline why
  shift 4
  pid=$(proc_pid "$name") || return 1
  "$@" >/dev/null 2>&1 && return 0
  age=$(proc_age "$pid")
  wait=$((startup - age))
  ((wait >= STACK_UNREADY_GRACE)) || wait=$STACK_UNREADY_GRACE
  deadline=$((SECONDS + wait))
  log "$name" "found pid $pid (started ${age}s ago) alive but not ready; waiting up to ${wait}s for it to become ready or exit"
  while :; do
    if ! proc_alive "$name"; then
      log "$name" "pid $pid exited; starting a fresh one"
      rm -f "$(proc_pidfile "$name")"
      return 1
    fi
    if "$@" >/dev/null 2>&1; then
      log "$name" "pid $pid is ready"
      return 0
    fi
    if [[ $sdcheck != - ]] && "$sdcheck" >/dev/null 2>&1; then
      why="it is shutting down"
      break
    fi
    if ((SECONDS >= deadline)); then
      why="not ready after ${wait}s"
      break
    fi
    sleep 0.5
  done
  log "$name" "replacing pid $pid ($why): SIG$sig, SIGKILL after ${STACK_STOP_TIMEOUT}s"
  proc_stop "$name" "$sig" "$STACK_STOP_TIMEOUT" ||
    die "$name" "pid $pid is still there after SIGKILL; see $(proc_logfile "$name")"
  log "$name" "pid $pid exited; starting a fresh one"
  return 1
}

# ------------------------------------------------------------ other helpers

# as_user USER : set the array AS_USER to the command prefix that runs a
# command as USER: setpriv (which execs, no fork, so pids stay exact) when we
# are root and USER is someone else; empty otherwise. Use: "${AS_USER[@]}" cmd
as_user() {
  # shellcheck disable=SC2034 # read by the caller
  AS_USER=()
  if ((EUID == 0)) && [[ $1 != root ]]; then
    # shellcheck disable=SC2034
    AS_USER=(setpriv --reuid="$1" --regid="$(id -g "$1")" --init-groups --)
  fi
}

# require_cmd WHO CMD... : fail clearly when a command is missing.
require_cmd() {
  local who=$1 c
  shift
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "$who" "'$c' is required but not on PATH"
  done
}

# component_main NAME "$@" : dispatch a subcommand to the function
# NAME_<subcommand> (dashes become underscores) defined by the calling script.
component_main() {
  local name=$1 cmd=${2:-}
  shift 2 || shift $#
  local fn="${name}_${cmd//-/_}"
  if [[ -n $cmd ]] && declare -F "$fn" >/dev/null; then
    "$fn" "$@"
  else
    echo "usage: $(basename "$0") {$(compgen -A function "${name}_" | sed "s/^${name}_//; s/_/-/g" | paste -sd'|')}" >&2
    exit 2
  fi
}
