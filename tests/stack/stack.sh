#!/usr/bin/env bash
# The whole local stack: walks the component scripts in order.
#
#   stack.sh build              build (into the tools cache) what components compile
#   stack.sh up                 start every component (a no-op for running ones)
#   stack.sh down               stop them in reverse order
#   stack.sh status             one line per component
#   stack.sh env                `export ...` lines for tests:  eval "$(stack.sh env)"
#   stack.sh logs [NAME] [-f]   tail the logs (of NAME only), optionally follow
#
# A component is tests/stack/<name>.sh implementing up|down|status|env (see
# lib.sh); names in STACK_COMPONENTS whose script does not exist are skipped.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${STACK_COMPONENTS:=postgres maestro kube agents secure promtool kstatus jaeger}"

components() {
  local c
  for c in $STACK_COMPONENTS; do
    [[ -f $STACK_SCRIPTS_DIR/$c.sh ]] && echo "$c"
  done
  return 0
}

run_component() { bash "$STACK_SCRIPTS_DIR/$1.sh" "${@:2}"; }

# component_logs NAME : the log files of a component (its processes log
# under their own names).
component_logs() {
  local files=()
  shopt -s nullglob
  case $1 in
  agents) files=("$STACK_LOG_DIR"/agent{-*,s-watchdog}.log) ;;
  kube) files=("$STACK_LOG_DIR"/{etcd,kube-apiserver,kube-controller-manager}.log) ;;
  maestro) files=("$STACK_LOG_DIR"/maestro{,-migration,-peer}.log) ;;
  secure) files=("$STACK_LOG_DIR"/maestro-{mtls,token}.log) ;;
  *) files=("$STACK_LOG_DIR/${1}"*.log) ;;
  esac
  shopt -u nullglob
  ((${#files[@]})) && printf '%s\n' "${files[@]}"
  return 0
}

# Serialise up/down so two concurrent `make test` runs do not race.
lock_stack() {
  ensure_stack_dirs
  exec 8>"$STACK_DIR/.stack.lock"
  if ! flock -n 8; then
    log stack "another stack.sh up/down is running; waiting for it (lock $STACK_DIR/.stack.lock)"
    # Generous: a cold up may compile Kubernetes.
    flock -w "${STACK_LOCK_TIMEOUT:-3600}" 8 || die stack "timed out waiting for the stack lock"
  fi
}

stack_up() {
  lock_stack
  local c t0=$SECONDS started=0 total=0
  for c in $(components); do
    total=$((total + 1))
    # Still call up when healthy: it is idempotent and repairs details (e.g.
    # consumers). up returns only once what it found or started is ready.
    run_component "$c" status >/dev/null 2>&1 || started=$((started + 1))
    run_component "$c" up ||
      die stack "$c is not ready; logs: $(component_logs "$c" | paste -sd' ') (stack.sh logs $c)"
  done
  if ((started == 0)); then
    log stack "all $total components were already running; nothing to do"
  else
    log stack "up in $((SECONDS - t0))s ($started of $total components started)"
  fi
  stack_status
  log stack "for tests: eval \"\$($0 env)\"; logs in $STACK_LOG_DIR"
}

# Components that compile their binaries offer `build` (a <name>_build function).
stack_build() {
  local c
  for c in $(components); do
    if grep -q "^${c}_build()" "$STACK_SCRIPTS_DIR/$c.sh"; then
      run_component "$c" build
    fi
  done
}

stack_down() {
  lock_stack
  local c list
  list=$(components | tac)
  for c in $list; do
    run_component "$c" down
  done
}

stack_status() {
  local c
  for c in $(components); do
    run_component "$c" status || true
  done
}

stack_env() {
  local c
  # Where the processes keep their pid files (run/) and logs: the fault
  # tests stop and kill components by them.
  printf 'export STACK_DIR=%q\n' "$STACK_DIR"
  for c in $(components); do
    run_component "$c" env
  done
}

stack_logs() {
  local name="" follow=0 a files=()
  for a in "$@"; do
    case $a in
    -f | --follow) follow=1 ;;
    *) name=$a ;;
    esac
  done
  mapfile -t files < <(component_logs "$name")
  ((${#files[@]})) || die stack "no logs${name:+ for $name} in $STACK_LOG_DIR"
  if ((follow)); then
    exec tail -n "${STACK_LOG_LINES:-20}" -F "${files[@]}"
  fi
  tail -n "${STACK_LOG_LINES:-40}" "${files[@]}"
}

component_main stack "$@"
