# Shared by the operator benchmarks (operator_load.sh, status_latency.sh,
# operator_scale.sh, publish_throughput.sh). Source it from the repository
# root after `set -euo pipefail`; it reads the local stack's environment.
eval "$(bash tests/stack/stack.sh env 2>/dev/null)"
K=${KUBECTL:-kubectl}
API=$MAESTRO_HTTP_ENDPOINT/api/maestro/v1

say() { echo "$(date +%T) $*" >&2; }

# bench_operator_bin: OPERATOR_BIN, or the release binary built from the
# work tree (set in OPERATOR_BIN).
bench_operator_bin() {
  if [[ -z ${OPERATOR_BIN:-} ]]; then
    say "building the operator (release)"
    cargo build --quiet --release --bin maestro-operator
    OPERATOR_BIN=${CARGO_TARGET_DIR:-target}/release/maestro-operator
  fi
}

# bench_fresh_namespace NAMESPACE : fails unless NAMESPACE is absent, so a
# run never counts objects a previous run left behind.
bench_fresh_namespace() {
  if "$K" get namespace "$1" >/dev/null 2>&1; then
    echo "namespace $1 exists (a run still cleaning up, or one that gave up); delete it first" >&2
    exit 1
  fi
}

# bench_setup NAMESPACE... : the CRD installed and established, and the
# namespaces created.
bench_setup() {
  "$K" apply --server-side --force-conflicts -f crds/maestroapply.yaml >/dev/null
  "$K" wait --for=condition=Established crd/maestroapplies.maestro.hyperfleet.io --timeout=60s >/dev/null
  local ns
  for ns in "$@"; do
    "$K" create namespace "$ns" --dry-run=client -o yaml | "$K" apply -f - >/dev/null
  done
}

# bench_register_consumer NAME : a Maestro consumer without an agent
# (nothing happens when it exists).
bench_register_consumer() {
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    -d "{\"name\":\"$1\"}" "$API/consumers" || true
}

# bench_start_operator ADDRESS LOG ARGS... : starts OPERATOR_BIN with its
# metrics and probes on ADDRESS (plain HTTP), logging to LOG, and waits
# until it is ready (60 s at most). Sets OPERATOR_PID.
bench_start_operator() {
  local address=$1 log=$2
  shift 2
  "$OPERATOR_BIN" --metrics-address "$address" --health-address "$address" \
    --metrics-secure=false "$@" >>"$log" 2>&1 &
  OPERATOR_PID=$!
  local _
  for _ in $(seq 1 60); do
    curl -sf "http://$address/readyz" >/dev/null && return 0
    kill -0 "$OPERATOR_PID" 2>/dev/null || break
    sleep 1
  done
  say "the operator did not become ready; log $log"
  return 1
}

# bench_stop_operator : SIGTERM to OPERATOR_PID, and wait for it.
bench_stop_operator() {
  [[ -n ${OPERATOR_PID:-} ]] || return 0
  kill "$OPERATOR_PID" 2>/dev/null || true
  wait "$OPERATOR_PID" 2>/dev/null || true
  OPERATOR_PID=
}

# bench_metric ADDRESS NAME [LABELS] : the value of an operator metric
# (counters with or without the _total suffix), summed over its label sets,
# or over those containing LABELS (e.g. 'action="create"').
bench_metric() {
  curl -sf "http://$1/metrics" |
    awk -v m="$2" -v l="${3:-}" '$1 !~ /^#/ {
      name = $1; labels = ""
      i = index(name, "{"); if (i) {labels = substr(name, i); name = substr(name, 1, i - 1)}
      if ((name == m || name == m "_total") && index(labels, l)) {s += $2; n++}
    } END {if (n) printf "%.17g\n", s}'
}

# bench_proc PID KEY : a field of /proc/PID/status (VmRSS, VmHWM: KiB).
bench_proc() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
bench_loadavg() { cut -d' ' -f1 /proc/loadavg; }

# bench_bundles SEARCH : how many bundles Maestro holds that match the TSL
# SEARCH (soft-deleted ones included).
bench_bundles() {
  curl -sfG "$API/resource-bundles" --data-urlencode "search=$1" --data-urlencode size=1 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])'
}

# bench_drop_agentless_rows SOURCE CONSUMER_PATTERN : removes SOURCE's rows
# on consumers matching the SQL LIKE pattern from Maestro's database. Only
# for consumers no agent serves: nothing would ever confirm their deletion.
bench_drop_agentless_rows() {
  bash tests/stack/postgres.sh psql -d "${MAESTRO_DB_NAME:-maestro}" -q -c \
    "DELETE FROM resources WHERE source = '$1' AND consumer_name LIKE '$2'" >/dev/null
}
