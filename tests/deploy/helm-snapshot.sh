#!/usr/bin/env bash
# The chart renders what the committed snapshots say, for fixed values:
#
#   snapshots/default.yaml            the chart's defaults
#   snapshots/full.yaml               values/full.yaml (every option on)
#   snapshots/namespaced-token.yaml   values/namespaced-token.yaml
#
# The CRD is left out of the snapshots (crds.install=false) and checked on
# its own: the chart's CRD template must render crds/ exactly, plus Helm's
# keep annotation, so a regenerated CRD needs no snapshot update.
#
#   helm-snapshot.sh                   compare; exit 1 with a diff on change
#   UPDATE_SNAPSHOTS=1 helm-snapshot.sh   rewrite the snapshots
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
stack_tools

snapshots="$DEPLOY_TESTS/snapshots"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Pinned so the output does not depend on the machine's API server.
common=(--namespace maestro-operator-system --kube-version 1.35.0 --set crds.install=false)

render() {
  local name=$1
  shift
  "$HELM" template maestro-operator "$CHART_DIR" "${common[@]}" "$@" >"$tmp/$name.yaml"
}
render default
render full -f "$DEPLOY_TESTS/values/full.yaml"
render namespaced-token -f "$DEPLOY_TESTS/values/namespaced-token.yaml"

failed=0
for f in "$tmp"/*.yaml; do
  name=$(basename "$f")
  if [[ ${UPDATE_SNAPSHOTS:-0} == 1 ]]; then
    mkdir -p "$snapshots"
    cp "$f" "$snapshots/$name"
    say "updated snapshots/$name"
  elif [[ ! -f $snapshots/$name ]]; then
    echo "helm-snapshot: snapshots/$name does not exist; create it with UPDATE_SNAPSHOTS=1 $0" >&2
    failed=1
  elif ! diff -u "$snapshots/$name" "$f" >"$tmp/diff"; then
    echo "helm-snapshot: the chart's output changed for snapshots/$name:" >&2
    cat "$tmp/diff" >&2
    echo "helm-snapshot: if intended, run UPDATE_SNAPSHOTS=1 $0 and commit the snapshot" >&2
    failed=1
  fi
done

# The CRD template against crds/.
"$HELM" template maestro-operator "$CHART_DIR" --namespace maestro-operator-system \
  --kube-version 1.35.0 --show-only templates/crds.yaml >"$tmp/crd-rendered.yaml"
py=$(python_with_yaml)
if ! "$py" - "$tmp/crd-rendered.yaml" "$DEPLOY_ROOT"/crds/*.yaml <<'PY'; then
import sys
import yaml

rendered = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
sources = [yaml.safe_load(open(p)) for p in sys.argv[2:]]
problems = []
if len(rendered) != len(sources):
    problems.append("the chart renders %d CRDs, crds/ has %d" % (len(rendered), len(sources)))
by_name = {d["metadata"]["name"]: d for d in rendered}
for src in sources:
    name = src["metadata"]["name"]
    got = by_name.get(name)
    if got is None:
        problems.append("the chart does not render CRD %s" % name)
        continue
    if got["metadata"].get("annotations", {}).get("helm.sh/resource-policy") != "keep":
        problems.append("CRD %s lacks helm.sh/resource-policy: keep" % name)
    if got.get("spec") != src.get("spec"):
        problems.append("CRD %s: the chart's spec differs from crds/ (run tests/deploy/sync.sh)" % name)
    for key in ("labels", "annotations"):
        for k, v in (src["metadata"].get(key) or {}).items():
            if got["metadata"].get(key, {}).get(k) != v:
                problems.append("CRD %s: metadata.%s[%s] is lost" % (name, key, k))
for p in problems:
    print("helm-snapshot: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
  failed=1
fi

if ((failed)); then
  exit 1
fi
say "helm template matches the snapshots, and the CRD template matches crds/"
