#!/usr/bin/env bash
# The maestro-operator and maestro-cli container images, built on this
# machine from binaries built here: no registry is reachable, so no base
# image can be pulled. Each image is FROM scratch and holds exactly
#
#   /usr/local/bin/maestro-operator (or maestro-cli)   a stripped copy
#   the shared libraries the binary links (ldd) and the dynamic loader
#   /etc/passwd, /etc/group      root and nonroot (65532:65532)
#   /etc/ssl/certs/ca-certificates.crt   the host's CA bundle
#
# laid out as gcr.io/distroless/cc's nonroot images are (the ones the
# multi-stage Containerfile builds elsewhere): same user, same paths.
#
#   image.sh build [--release | --bin-dir DIR] [--tag TAG]
#       build localhost/maestro-operator:TAG and localhost/maestro-cli:TAG
#       (TAG: dev). --release (the default) first runs
#       `cargo build --release --bin maestro-operator --bin maestro-cli`;
#       --bin-dir takes the binaries already in DIR (e.g. target/debug).
#   image.sh context BIN_DIR OUT_DIR
#       only assemble the build context (OUT_DIR/operator, OUT_DIR/cli)
#   image.sh podman ARGS...
#       run podman with this machine's settings (tests/stack/containers.conf)
#   image.sh env
#       export CONTAINERS_CONF=... for running podman by hand
#
# The binaries are stripped into the context, never in place.
set -euo pipefail
# shellcheck source=tests/stack/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${CONTAINERS_CONF:=$STACK_SCRIPTS_DIR/containers.conf}"
export CONTAINERS_CONF
: "${IMAGE_TAG:=dev}"
CONTAINERFILE="$STACK_REPO_ROOT/Containerfile.scratch"
NONROOT_UID=65532
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

usage() {
  sed -n '14,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# libraries BINARY : the absolute paths of the shared objects BINARY loads,
# the loader included (ldd resolves them transitively).
libraries() {
  ldd "$1" | awk '
    $2 == "=>" && $3 ~ /^\// {print $3; next}
    $1 ~ /^\// {print $1}'
}

# rootfs BINARY DIR : the image's whole file system for BINARY, in DIR.
rootfs() {
  local bin=$1 dir=$2 name lib
  name=$(basename "$bin")
  [[ -x $bin ]] || die image "no executable $bin (build it first)"
  ldd "$bin" >/dev/null 2>&1 || die image "$bin is not a dynamically linked executable ldd can read"
  [[ -s $CA_BUNDLE ]] || die image "no $CA_BUNDLE on this machine (install ca-certificates)"
  rm -rf "${dir:?}"
  mkdir -p "$dir/usr/local/bin" "$dir/etc/ssl/certs"
  strip --strip-all -o "$dir/usr/local/bin/$name" "$bin"
  while read -r lib; do
    mkdir -p "$dir$(dirname "$lib")"
    # -L: the file, not the host's symlink to it.
    cp -L "$lib" "$dir$lib"
  done < <(libraries "$bin")
  cp -L "$CA_BUNDLE" "$dir$CA_BUNDLE"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$NONROOT_UID" "$NONROOT_UID" >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$NONROOT_UID" >"$dir/etc/group"
  chmod -R u=rwX,go=rX "$dir"
  chmod 0755 "$dir/usr/local/bin/$name"
}

context() {
  local bin_dir=$1 out=$2
  rootfs "$bin_dir/maestro-operator" "$out/operator"
  rootfs "$bin_dir/maestro-cli" "$out/cli"
  # The CLI's working directory: /home (root's) in its file system, and an
  # empty directory the Containerfile copies to /home/nonroot as nonroot's.
  mkdir -p "$out/cli/home"
  rm -rf "${out:?}/home"
  mkdir -p "$out/home"
  log image "context $out: $(cd "$out" && find operator cli -type f | sort | tr '\n' ' ')"
}

podman_cmd() {
  require_cmd image podman
  podman "$@"
}

# build_one TARGET IMAGE CONTEXT : build IMAGE from CONTEXT, then remove the
# image the tag named before, which the build left untagged.
build_one() {
  local target=$1 image=$2 ctx=$3 old new
  old=$(podman_cmd image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  podman_cmd build --quiet --layers=false --file "$CONTAINERFILE" --target "$target" --tag "$image" "$ctx" >/dev/null
  new=$(podman_cmd image inspect --format '{{.Id}}' "$image")
  if [[ -n $old && $old != "$new" ]]; then
    podman_cmd image rm "$old" >/dev/null 2>&1 || true
  fi
  log image "$image $(podman_cmd image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) (${new:0:12})"
}

build() {
  local bin_dir="" tag=$IMAGE_TAG release=1 start=$SECONDS
  while (($#)); do
    case $1 in
    --release) release=1 ;;
    --bin-dir)
      bin_dir=${2:?--bin-dir needs a directory}
      release=0
      shift
      ;;
    --tag)
      tag=${2:?--tag needs a tag}
      shift
      ;;
    *) usage ;;
    esac
    shift
  done
  if ((release)); then
    (cd "$STACK_REPO_ROOT" && cargo build --release --bin maestro-operator --bin maestro-cli)
    bin_dir="${CARGO_TARGET_DIR:-$STACK_REPO_ROOT/target}/release"
  fi
  build_ctx=$(mktemp -d "${TMPDIR:-/tmp}/maestro-image.XXXXXX")
  trap 'rm -rf "$build_ctx"' EXIT
  context "$bin_dir" "$build_ctx"
  build_one operator "localhost/maestro-operator:$tag" "$build_ctx"
  build_one cli "localhost/maestro-cli:$tag" "$build_ctx"
  log image "built from $bin_dir in $((SECONDS - start))s (CONTAINERS_CONF=$CONTAINERS_CONF)"
}

case ${1:-} in
build)
  shift
  build "$@"
  ;;
context)
  (($# == 3)) || usage
  context "$2" "$3"
  ;;
podman)
  shift
  podman_cmd "$@"
  ;;
env) printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF" ;;
*) usage ;;
esac
