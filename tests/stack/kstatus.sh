#!/usr/bin/env bash
# kstatus, Flux's health logic, as a test helper: tests/tools/kstatus is a
# small Go program on the cli-utils module pinned in its go.mod
# (sigs.k8s.io/cli-utils/pkg/kstatus/status) that prints status.Compute for
# each object it reads. Built and cached like the stack's servers; nothing
# runs. tests/kstatus.rs runs it over our objects.
#
#   kstatus.sh build    compile it into the tools cache (once per go.mod,
#                       go.sum and source)
#   kstatus.sh up       build it when missing (a no-op once cached)
#   kstatus.sh status   whether it is built
#   kstatus.sh env      export KSTATUS=...
#   kstatus.sh down     nothing to stop
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KSTATUS_MODULE_DIR="$STACK_REPO_ROOT/tests/tools/kstatus"
# The cli-utils version go.mod pins names the cache directory.
KSTATUS_CLI_UTILS_VERSION=$(sed -n 's/^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}sigs\.k8s\.io\/cli-utils \(v[^[:space:]]*\).*/\2/p' \
  "$KSTATUS_MODULE_DIR/go.mod")
KSTATUS_BIN_DIR="$TOOLS_CACHE_DIR/kstatus/${KSTATUS_CLI_UTILS_VERSION:-unknown}"
KSTATUS_BIN="$KSTATUS_BIN_DIR/kstatus"

kstatus_go() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  require_cmd kstatus go
  # The caller's GOFLAGS (e.g. -mod=mod) must not rewrite the pinned go.mod;
  # -buildvcs=false because the module is not its own repository.
  GOFLAGS="-mod=readonly -buildvcs=false" go "$@"
}

# Rebuilt when go.mod, go.sum or the source change (KSTATUS_BIN.key).
kstatus_key() {
  cat "$KSTATUS_MODULE_DIR/go.mod" "$KSTATUS_MODULE_DIR/go.sum" "$KSTATUS_MODULE_DIR"/*.go |
    sha256sum | cut -d' ' -f1
}

kstatus_built() {
  [[ -x $KSTATUS_BIN && -f $KSTATUS_BIN.key && $(<"$KSTATUS_BIN.key") == "$(kstatus_key)" ]]
}

kstatus_build() {
  [[ -n $KSTATUS_CLI_UTILS_VERSION ]] ||
    die kstatus "tests/tools/kstatus/go.mod requires no sigs.k8s.io/cli-utils"
  mkdir -p "$KSTATUS_BIN_DIR"
  # One build at a time per cache (parallel stack runs share it).
  exec 9>"$KSTATUS_BIN_DIR/.build.lock"
  flock 9
  if kstatus_built; then
    log kstatus "cached: $KSTATUS_BIN"
    exec 9>&-
    return 0
  fi
  log kstatus "building tests/tools/kstatus (sigs.k8s.io/cli-utils $KSTATUS_CLI_UTILS_VERSION) with $(kstatus_go env GOVERSION); cold: a few minutes"
  local start=$SECONDS secs key
  key=$(kstatus_key)
  (cd "$KSTATUS_MODULE_DIR" && kstatus_go build -trimpath -ldflags="-s -w" -o "$KSTATUS_BIN.tmp" .) || {
    rm -f "$KSTATUS_BIN.tmp"
    die kstatus "go build of tests/tools/kstatus failed"
  }
  mv -f "$KSTATUS_BIN.tmp" "$KSTATUS_BIN"
  printf '%s\n' "$key" >"$KSTATUS_BIN.key"
  secs=$((SECONDS - start))
  printf '%s kstatus %ss nproc=%s go=%s\n' "$(date -Is)" "$secs" "$(nproc)" \
    "$(kstatus_go env GOVERSION)" >>"$KSTATUS_BIN_DIR/build-times.log"
  log kstatus "built $KSTATUS_BIN in ${secs}s"
  exec 9>&-
}

kstatus_up() {
  kstatus_built || kstatus_build
}

kstatus_down() { return 0; }

kstatus_status() {
  if kstatus_built; then
    echo "kstatus: built ($KSTATUS_BIN)"
    return 0
  fi
  echo "kstatus: not built (tests/stack/kstatus.sh build)"
  return 3
}

kstatus_env() {
  printf 'export KSTATUS=%q\n' "$KSTATUS_BIN"
}

component_main kstatus "$@"
