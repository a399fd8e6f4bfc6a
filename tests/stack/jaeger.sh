#!/usr/bin/env bash
# Jaeger v2 (cmd/jaeger of the jaeger module pinned in tests/tools/jaeger),
# built and cached like the stack's servers. Nothing runs here: the tracing
# test (tests/tracing_e2e.rs) starts its own Jaeger on free ports, sends the
# operator's and a Maestro instance's spans to it over OTLP and reads the
# trace back through its query API.
#
#   jaeger.sh build    compile the pinned jaeger into the tools cache (once)
#   jaeger.sh up       nothing (says whether it is built)
#   jaeger.sh status   whether it is built
#   jaeger.sh env      export JAEGER=...
#   jaeger.sh down     nothing to stop
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_MODULE_DIR="$STACK_REPO_ROOT/tests/tools/jaeger"
JAEGER_BIN_DIR="$TOOLS_CACHE_DIR/jaeger/$JAEGER_VERSION"
JAEGER_BIN="$JAEGER_BIN_DIR/jaeger"
JAEGER_PACKAGE="github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_LDFLAGS="-s -w"

jaeger_go() {
  if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  require_cmd jaeger go
  # The caller's GOFLAGS (e.g. -mod=mod) must not rewrite the pinned go.mod;
  # -buildvcs=false because the module is not its own repository.
  GOFLAGS="-mod=readonly -buildvcs=false" go "$@"
}

jaeger_check_pins() {
  grep -qF "github.com/jaegertracing/jaeger $JAEGER_VERSION" "$JAEGER_MODULE_DIR/go.mod" ||
    die jaeger "tests/tools/jaeger/go.mod does not require github.com/jaegertracing/jaeger $JAEGER_VERSION (env.sh JAEGER_VERSION); update both together"
}

# Rebuilt when go.mod, go.sum or the flags change (JAEGER_BIN.key); each
# build's wall time goes to build-times.log.
jaeger_key() {
  cat "$JAEGER_MODULE_DIR/go.mod" "$JAEGER_MODULE_DIR/go.sum" \
    <(printf '%s\n%s\n' "$JAEGER_PACKAGE" "$JAEGER_LDFLAGS") |
    sha256sum | cut -d' ' -f1
}

jaeger_built() {
  [[ -x $JAEGER_BIN && -f $JAEGER_BIN.key && $(<"$JAEGER_BIN.key") == "$(jaeger_key)" ]]
}

jaeger_build() {
  jaeger_check_pins
  mkdir -p "$JAEGER_BIN_DIR"
  # One build at a time per cache (parallel stack runs share it).
  exec 9>"$JAEGER_BIN_DIR/.build.lock"
  flock 9
  if jaeger_built; then
    log jaeger "cached: $JAEGER_BIN"
    exec 9>&-
    return 0
  fi
  log jaeger "building $JAEGER_PACKAGE@$JAEGER_VERSION with $(jaeger_go env GOVERSION); cold: several minutes"
  local start=$SECONDS secs key
  key=$(jaeger_key)
  (cd "$JAEGER_MODULE_DIR" &&
    jaeger_go build -trimpath -ldflags="$JAEGER_LDFLAGS" -o "$JAEGER_BIN.tmp" "$JAEGER_PACKAGE") || {
    rm -f "$JAEGER_BIN.tmp"
    die jaeger "go build of $JAEGER_PACKAGE failed"
  }
  mv -f "$JAEGER_BIN.tmp" "$JAEGER_BIN"
  printf '%s\n' "$key" >"$JAEGER_BIN.key"
  secs=$((SECONDS - start))
  printf '%s jaeger %ss nproc=%s go=%s\n' "$(date -Is)" "$secs" "$(nproc)" \
    "$(jaeger_go env GOVERSION)" >>"$JAEGER_BIN_DIR/build-times.log"
  log jaeger "built $JAEGER_BIN in ${secs}s"
  exec 9>&-
}

# A tool, not a server: `up` never waits for its long cold build (CI runs
# that beside the tests); tests/tracing_e2e.rs builds it on first use.
jaeger_up() {
  jaeger_built && return 0
  log jaeger "not built yet: tests/tracing_e2e.rs builds it when it runs (or: bash tests/stack/jaeger.sh build)"
}

jaeger_down() { return 0; }

jaeger_status() {
  if jaeger_built; then
    echo "jaeger: built ($JAEGER_BIN)"
    return 0
  fi
  echo "jaeger: not built (tests/stack/jaeger.sh build)"
  return 3
}

jaeger_env() {
  printf 'export JAEGER=%q\n' "$JAEGER_BIN"
}

component_main jaeger "$@"
