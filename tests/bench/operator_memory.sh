#!/usr/bin/env bash
# Operator memory against object size: runs tests/bench/operator_load.sh
# with N objects of each size in SIZES (KiB of manifest data per object),
# RUNS rounds with the sizes interleaved, and prints the median of each
# figure per size, and the difference per object and per KiB of manifest
# between the largest and the smallest size.
#
#   [SIZES="1 100"] [RUNS=3] [SUSPEND=1] bash tests/bench/operator_memory.sh [N] [STEADY_SECONDS]
#
# SUSPEND=1 is passed on to operator_load.sh: suspended objects, nothing
# published, so the figures are the operator's memory without the publish
# path and with empty status lists (mostly the watch cache of the objects).
#
# Needs the full local stack (make stack-up); each round cleans up after
# itself (see operator_load.sh). All rounds run one copy of the operator:
# OPERATOR_BIN, or one built (release) from the work tree at the start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
N=${1:-1000}
STEADY=${2:-60}
read -ra sizes <<<"${SIZES:-1 100}"
RUNS=${RUNS:-3}
dir=$(mktemp -d -t operator-memory.XXXXXX)

if [[ -n ${OPERATOR_BIN:-} ]]; then
  cp "$OPERATOR_BIN" "$dir/maestro-operator"
else
  echo "building the operator (release)" >&2
  cargo build --quiet --release --bin maestro-operator
  cp target/release/maestro-operator "$dir/maestro-operator"
fi

for run in $(seq 1 "$RUNS"); do
  for kib in "${sizes[@]}"; do
    echo "== round $run of $RUNS: $N objects of ${kib} KiB" >&2
    OPERATOR_BIN=$dir/maestro-operator OBJECT_KIB=$kib RESULTS="$dir/$kib.$run" bash tests/bench/operator_load.sh "$N" "$STEADY" >&2
  done
done

# median KEY KIB: the median of KEY over the rounds of size KIB
median() {
  cat "$dir/$2".* | awk -v k="$1" '$1 == k {print $2}' | sort -g |
    awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
range() {
  cat "$dir/$2".* | awk -v k="$1" '$1 == k {print $2}' | sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%s-%s", a, b}'
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
rows=(idle_rss_kib published_hwm_kib published_rss_kib steady_rss_kib steady_hwm_kib)
labels=("RSS before any object" "peak (VmHWM) when all are published" "RSS when all are published"
  "RSS after ${STEADY}s steady" "peak (VmHWM) at the end")
echo
suspended=""
[[ ${SUSPEND:-0} == 1 ]] && suspended=" suspended (nothing published)"
echo "operator memory, $N objects$suspended, median of $RUNS runs (MiB; range in brackets)"
printf '| %s |' "figure"
for kib in "${sizes[@]}"; do printf ' %s KiB objects |' "$kib"; done
echo
printf '| --- |'
for _ in "${sizes[@]}"; do printf ' --- |'; done
echo
printf '| object size as served (KiB) |'
for kib in "${sizes[@]}"; do printf ' %s |' "$(awk -v b="$(median object_bytes "$kib")" 'BEGIN {printf "%.1f", b / 1024}')"; done
echo
printf '| publish time (s) |'
for kib in "${sizes[@]}"; do printf ' %s (%s) |' "$(median publish_seconds "$kib")" "$(range publish_seconds "$kib")"; done
echo
for i in "${!rows[@]}"; do
  printf '| %s |' "${labels[$i]}"
  for kib in "${sizes[@]}"; do
    r=$(range "${rows[$i]}" "$kib")
    printf ' %s (%s-%s) |' "$(mib "$(median "${rows[$i]}" "$kib")")" "$(mib "${r%-*}")" "$(mib "${r#*-}")"
  done
  echo
done
printf '| one consumer status list (KiB) |'
for kib in "${sizes[@]}"; do printf ' %s |' "$(($(median list_bytes "$kib") / 1024))"; done
echo
printf '| REST requests per 10 s poll cycle |'
for kib in "${sizes[@]}"; do printf ' %s |' "$(median requests_per_cycle "$kib")"; done
echo
small=${sizes[0]} large=${sizes[-1]}
bytes=$(($(median object_bytes "$large") - $(median object_bytes "$small")))
for key in published_hwm_kib steady_rss_kib; do
  awk -v a="$(median "$key" "$small")" -v b="$(median "$key" "$large")" -v n="$N" -v d="$bytes" -v k="$key" \
    'BEGIN {printf "%s: %+.1f MiB from %s to %s KiB objects = %.1f KiB per object, %.2f bytes of RSS per byte of object\n",
      k, (b - a) / 1024, "'"$small"'", "'"$large"'", (b - a) / n, (b - a) * 1024 / n / d}'
done
echo "raw results: $dir"
