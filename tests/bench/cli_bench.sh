#!/usr/bin/env bash
# Wall time and peak memory of `maestro-cli get` and `list` against Maestro's
# own CLI (`maestro resourcebundle get` / `list`) doing the same reads on the
# same server, side by side in one run.
#
#   eval "$(bash tests/stack/stack.sh env)"     # the stack must be up
#   bash tests/bench/cli_bench.sh [RUNS] [WORKS]
#
# RUNS (default 30) runs of each command, interleaved so that both CLIs see
# the same server and machine load; WORKS (default 50) ManifestWorks on a
# fresh consumer, which `list` returns. Both CLIs print JSON to /dev/null.
# Figures are medians (and min-max) of the elapsed time and /usr/bin/time's
# maximum resident set size (wall time from bash's EPOCHREALTIME around
# /usr/bin/time, which adds the same ~1 ms to both). Needs a release build,
# which the script makes.
set -euo pipefail

RUNS=${1:-30}
WORKS=${2:-50}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${MAESTRO_HTTP_ENDPOINT:?run: eval \"\$(bash tests/stack/stack.sh env)\"}"
: "${MAESTRO_GRPC_ENDPOINT:?}"
: "${MAESTRO_BIN:?}"
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (apt-get install -y time)" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet --bin maestro-cli)
CLI="${CARGO_TARGET_DIR:-$ROOT/target}/release/maestro-cli"
GRPC_ADDR=${MAESTRO_GRPC_ENDPOINT#http://}
# Both CLIs write as source maestro-cli (Maestro's default), so both list the
# same bundles.
export MAESTRO_SOURCE_ID=maestro-cli

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CONSUMER="bench-$(date +%s)-$RANDOM"
"$CLI" consumers create "$CONSUMER" >/dev/null
echo "setting up $WORKS works on consumer $CONSUMER ..." >&2
for i in $(seq 1 "$WORKS"); do
  cat >"$WORK/w.yaml" <<YAML
apiVersion: work.open-cluster-management.io/v1
kind: ManifestWork
metadata: {name: bench-$i, labels: {bench: "yes"}}
spec:
  workload:
    manifests:
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: bench-$i, namespace: default}, data: {index: "$i", payload: "$(head -c 600 /dev/zero | tr '\0' x)"}}
    - {apiVersion: v1, kind: Secret, metadata: {name: bench-$i, namespace: default}, stringData: {k: v}}
YAML
  "$CLI" apply -f "$WORK/w.yaml" --consumer "$CONSUMER" >/dev/null
done
ID=$("$CLI" get --name bench-1 --consumer "$CONSUMER" -o json | sed -n 's/.*"uid": "\(.*\)".*/\1/p' | head -1)

# name | command...
declare -a NAMES CMDS
add() { NAMES+=("$1"); CMDS+=("$2"); }
add "maestro-cli get"                "$CLI get --name bench-1 --consumer $CONSUMER -o json"
add "maestro resourcebundle get"     "$MAESTRO_BIN resourcebundle get $ID --output json --rest-url $MAESTRO_HTTP_ENDPOINT"
add "maestro-cli list"               "$CLI list --consumer $CONSUMER -o json"
add "maestro resourcebundle list"    "$MAESTRO_BIN resourcebundle list --search \"consumer_name='$CONSUMER'\" --size 1000 --output json --rest-url $MAESTRO_HTTP_ENDPOINT"

# Sanity: both list commands see every work.
ours=$($CLI list --consumer "$CONSUMER" -o json | grep -c '"kind": "ManifestWork"' || true)
theirs=$(eval "${CMDS[3]}" | grep -c '"consumer_name"' || true)
echo "works listed: maestro-cli $ours, maestro $theirs (expected $WORKS)" >&2
[[ $ours == "$WORKS" && $theirs == "$WORKS" ]] || { echo "the two CLIs do not list the same works" >&2; exit 1; }

for c in "${!CMDS[@]}"; do  # warm-up, and every command must work
  : >"$WORK/$c.samples"
  eval "${CMDS[$c]}" >/dev/null || { echo "failed: ${CMDS[$c]}" >&2; exit 1; }
done
for r in $(seq 1 "$RUNS"); do
  for c in "${!CMDS[@]}"; do
    t0=$EPOCHREALTIME
    eval "/usr/bin/time -f %M -o $WORK/t ${CMDS[$c]} >/dev/null 2>/dev/null"
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" -v kb="$(cat "$WORK/t")" 'BEGIN { printf "%.3f %d\n", (b - a) * 1000, kb }' >>"$WORK/$c.samples"
  done
done

stats() {  # column of a samples file -> "median min max"
  awk -v col="$2" '{print $col}' "$1" | sort -g | awk '{a[NR]=$1} END {
    m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; print m, a[1], a[NR] }'
}

echo
echo "maestro-cli vs maestro (Maestro's CLI), $RUNS runs each, $WORKS works on the consumer"
echo "server: $MAESTRO_HTTP_ENDPOINT; $(uname -srm); $(nproc) CPUs"
printf '%-30s %26s %30s\n' "command" "wall ms: median (min-max)" "peak RSS MiB: median (min-max)"
for c in "${!CMDS[@]}"; do
  read -r tm tmin tmax < <(stats "$WORK/$c.samples" 1)
  read -r mm mmin mmax < <(stats "$WORK/$c.samples" 2)
  awk -v n="${NAMES[$c]}" -v tm="$tm" -v tmin="$tmin" -v tmax="$tmax" -v mm="$mm" -v mmin="$mmin" -v mmax="$mmax" \
    'BEGIN { printf "%-30s %12.1f (%5.1f-%5.1f) %16.1f (%5.1f-%5.1f)\n", n, tm, tmin, tmax, mm/1024, mmin/1024, mmax/1024 }'
done

# Leave the server as it was.
"$CLI" delete --consumer "$CONSUMER" --all --yes >/dev/null
echo "(the bench works on $CONSUMER were deleted; no agent serves it, so they stay marked deleting)" >&2
