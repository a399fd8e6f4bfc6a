# Shared by the scripts in tests/deploy (sourced, not run).
# shellcheck shell=bash

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
DEPLOY_TESTS="$DEPLOY_ROOT/tests/deploy"
CHART_DIR="$DEPLOY_ROOT/charts/maestro-operator"
export DEPLOY_ROOT DEPLOY_TESTS CHART_DIR

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# usage_exit FIRST,LAST : prints lines FIRST to LAST of the calling script
# (its usage, written as its header comment) without the comment marks, and
# exits 2.
usage_exit() {
  sed -n "$1p" "${BASH_SOURCE[1]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# Installs Debian packages (as root or with sudo -n). The package lists are
# refreshed once per process.
DEPLOY_APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "missing: $*; no apt-get to install it"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo -n)
  if ((!DEPLOY_APT_UPDATED)); then
    say "apt-get update"
    "${sudo[@]}" apt-get update -qq >&2
    DEPLOY_APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

# A python3 that can import yaml: the one on PATH, else Debian's (installing
# python3-yaml when needed). Prints its path.
python_with_yaml() {
  local p
  for p in "$(command -v python3 || true)" /usr/bin/python3; do
    if [[ -n $p && -x $p ]] && "$p" -c 'import yaml' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  apt_install python3 python3-yaml
  /usr/bin/python3 -c 'import yaml' || die "python3-yaml is installed but cannot be imported"
  echo /usr/bin/python3
}

# KUBECTL and HELM: from the environment (tests/stack/stack.sh env), else
# from the stack's scripts.
stack_tools() {
  if [[ -z ${KUBECTL:-} || -z ${HELM:-} || -z ${KUBECONFIG:-} ]]; then
    local env
    env=$(bash "$DEPLOY_ROOT/tests/stack/kube.sh" env) || die "the stack's kube component has no env; run tests/stack/stack.sh up"
    eval "$env"
  fi
  [[ -x ${KUBECTL:-} ]] || die "kubectl not found (KUBECTL=${KUBECTL:-}); run tests/stack/stack.sh build"
  [[ -x ${HELM:-} ]] || die "helm not found (HELM=${HELM:-}); run tests/stack/stack.sh build"
  export KUBECTL HELM KUBECONFIG
}

# Fails unless the API server answers.
require_api_server() {
  "$KUBECTL" get --raw /readyz >/dev/null 2>&1 ||
    die "no API server at $("$KUBECTL" config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null) (KUBECONFIG=$KUBECONFIG); run tests/stack/stack.sh up"
}
