#!/usr/bin/env bash
# Prometheus' promtool, built from the prometheus Go module pinned in
# tests/tools/promtool and cached like the stack's servers. Nothing runs: the
# tests call it to unit-test and check the alerting rules
# (config/prometheus/alerts.yaml) and to lint the operator's /metrics.
#
#   promtool.sh build    compile the pinned promtool into the tools cache (once)
#   promtool.sh up       build it when missing (a no-op once cached)
#   promtool.sh status   whether it is built
#   promtool.sh env      export PROMTOOL=...
#   promtool.sh down     nothing to stop
#
# Only ./cmd/promtool is built, with -trimpath and the build tag
# remove_all_sd, which leaves out the service-discovery plugins (AWS, Azure,
# GCE, ...; promtool's `check config` of those SD kinds is what goes with
# them): a cold build then compiles far fewer packages. Kubernetes SD stays,
# promtool imports it directly.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROMTOOL_MODULE_DIR="$STACK_REPO_ROOT/tests/tools/promtool"
PROMTOOL_BIN_DIR="$TOOLS_CACHE_DIR/prometheus/$PROMETHEUS_VERSION"
PROMTOOL_BIN="$PROMTOOL_BIN_DIR/promtool"
PROMTOOL_PACKAGE="github.com/prometheus/prometheus/cmd/promtool"
PROMTOOL_TAGS="remove_all_sd"

promtool_go() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  require_cmd promtool go
  # The caller's GOFLAGS (e.g. -mod=mod) must not rewrite the pinned go.mod.
  GOFLAGS="-mod=readonly -buildvcs=false" go "$@"
}

# The module version and the release it is (v0.316.0 is Prometheus 3.16.0).
promtool_release() {
  local v=${PROMETHEUS_VERSION#v0.}
  printf '%s.%s.%s' "${v:0:1}" "$((10#${v:1:2}))" "${v#*.}"
}

promtool_ldflags() {
  printf '%s' "-s -w -X github.com/prometheus/common/version.Version=$(promtool_release) \
-X github.com/prometheus/common/version.Branch=$PROMETHEUS_VERSION"
}

promtool_check_pins() {
  grep -qF "github.com/prometheus/prometheus $PROMETHEUS_VERSION" "$PROMTOOL_MODULE_DIR/go.mod" ||
    die promtool "tests/tools/promtool/go.mod does not require github.com/prometheus/prometheus $PROMETHEUS_VERSION (env.sh PROMETHEUS_VERSION); update both together"
}

# The binary is rebuilt when go.mod, go.sum, the tags or the flags change
# (PROMTOOL_BIN.key); each build's wall time goes to build-times.log.
promtool_key() {
  cat "$PROMTOOL_MODULE_DIR/go.mod" "$PROMTOOL_MODULE_DIR/go.sum" \
    <(printf '%s\n%s\n%s\n' "$PROMTOOL_PACKAGE" "$PROMTOOL_TAGS" "$(promtool_ldflags)") |
    sha256sum | cut -d' ' -f1
}

promtool_built() {
  [[ -x $PROMTOOL_BIN && -f $PROMTOOL_BIN.key && $(<"$PROMTOOL_BIN.key") == "$(promtool_key)" ]]
}

promtool_build() {
  promtool_check_pins
  mkdir -p "$PROMTOOL_BIN_DIR"
  # One build at a time per cache (parallel stack runs share it).
  exec 9>"$PROMTOOL_BIN_DIR/.build.lock"
  flock 9
  if promtool_built; then
    log promtool "cached: $PROMTOOL_BIN"
    exec 9>&-
    return 0
  fi
  log promtool "building $PROMTOOL_PACKAGE@$PROMETHEUS_VERSION (-tags $PROMTOOL_TAGS) with $(promtool_go env GOVERSION); cold: several minutes"
  local start=$SECONDS secs key
  key=$(promtool_key)
  (cd "$PROMTOOL_MODULE_DIR" &&
    promtool_go build -trimpath -tags "$PROMTOOL_TAGS" -ldflags="$(promtool_ldflags)" \
      -o "$PROMTOOL_BIN.tmp" "$PROMTOOL_PACKAGE") || {
    rm -f "$PROMTOOL_BIN.tmp"
    die promtool "go build of $PROMTOOL_PACKAGE failed"
  }
  mv -f "$PROMTOOL_BIN.tmp" "$PROMTOOL_BIN"
  printf '%s\n' "$key" >"$PROMTOOL_BIN.key"
  secs=$((SECONDS - start))
  printf '%s promtool %ss nproc=%s go=%s\n' "$(date -Is)" "$secs" "$(nproc)" \
    "$(promtool_go env GOVERSION)" >>"$PROMTOOL_BIN_DIR/build-times.log"
  log promtool "built $PROMTOOL_BIN in ${secs}s"
  exec 9>&-
}

promtool_up() {
  promtool_built || promtool_build
}

promtool_down() { return 0; }

promtool_status() {
  if promtool_built; then
    echo "promtool: built ($PROMTOOL_BIN)"
    return 0
  fi
  echo "promtool: not built (tests/stack/promtool.sh build)"
  return 3
}

promtool_env() {
  printf 'export PROMTOOL=%q\n' "$PROMTOOL_BIN"
}

component_main promtool "$@"
