#!/usr/bin/env bash
# Runs deploy/argocd/health.lua against the samples in tests/deploy/argocd
# (health_test.yaml lists each sample and the health Argo CD must show),
# under Lua 5.1 (the language of Argo CD's gopher-lua) and Lua 5.4, in a
# sandbox with only the libraries Argo CD offers. Installs lua5.1, lua5.4
# and python3-yaml with apt-get when they are missing: nothing is skipped.
# Also checks that deploy/argocd/argocd-cm.yaml embeds health.lua verbatim.
set -euo pipefail
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

missing=()
for v in 5.1 5.4; do
  command -v "lua$v" >/dev/null || missing+=("lua$v")
done
((${#missing[@]} == 0)) || apt_install "${missing[@]}"
py=$(python_with_yaml)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$py" "$DEPLOY_TESTS/lib/yaml2lua.py" "$DEPLOY_TESTS/argocd/health_test.yaml" >"$tmp/cases.lua"

failed=0
for v in 5.1 5.4; do
  say "Lua $v: $("lua$v" -v 2>&1 | head -n 1)"
  "lua$v" "$DEPLOY_TESTS/lib/health-runner.lua" "$DEPLOY_ROOT/deploy/argocd/health.lua" "$tmp/cases.lua" || failed=1
done

# The ConfigMap snippet users copy must carry the tested script.
if ! "$py" - "$DEPLOY_ROOT/deploy/argocd/argocd-cm.yaml" "$DEPLOY_ROOT/deploy/argocd/health.lua" <<'PY'; then
import sys
import yaml

cm = yaml.safe_load(open(sys.argv[1]))
for kind in ("MaestroApply", "MaestroApplySet"):
    key = "resource.customizations.health.maestro.hyperfleet.io_" + kind
    script = (cm.get("data") or {}).get(key)
    if script is None:
        sys.exit("argocd-cm.yaml has no data key %s" % key)
    if script != open(sys.argv[2]).read():
        sys.exit("argocd-cm.yaml does not embed deploy/argocd/health.lua verbatim under %s; run tests/deploy/sync.sh" % key)
PY
  failed=1
fi
exit "$failed"
