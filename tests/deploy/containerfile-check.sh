#!/usr/bin/env bash
# What can be checked of the Containerfile without a container engine:
#
#   - the file itself: pinned base images, both targets (operator, cli),
#     a non-root USER 65532 and an ENTRYPOINT in each;
#   - the build context: .dockerignore equals .containerignore, and every
#     COPY source is in it;
#   - the builder's command on exactly that context: a copy of the files the
#     ignore file admits, built with the Containerfile's own cargo command
#     (release, --locked);
#   - the binaries: they start (--version, --help) and link nothing the
#     distroless/cc runtime lacks (glibc, libgcc_s).
#
#   containerfile-check.sh            all of it
#   containerfile-check.sh --static   the file and the context only (seconds)
#
# DEPLOY_RELEASE_TARGET: cargo target directory to reuse between runs
# (default: $TMPDIR/maestro-operator-release-target); the first build takes
# several minutes, later ones a few.
set -euo pipefail
static=0
case ${1:-} in
"") ;;
--static) static=1 ;;
*)
  echo "usage: $0 [--static]" >&2
  exit 2
  ;;
esac
# shellcheck source=tests/deploy/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$DEPLOY_ROOT"

file=Containerfile
bad=0
problem() {
  echo "containerfile-check: $*" >&2
  bad=1
}

# ---- the file
grep -Eq '^FROM [^ ]+ AS operator$' "$file" || problem "no 'operator' target"
grep -Eq '^FROM [^ ]+ AS cli$' "$file" || problem "no 'cli' target"
while read -r _ image _; do
  [[ $image == operator || $image == builder ]] && continue
  [[ $image == *:latest || $image != *:* ]] && problem "base image $image is not pinned to a tag"
done < <(grep -E '^FROM ' "$file")
for target in operator cli; do
  section=$(awk -v t="$target" '/^FROM /{on = ($NF == t)} on' "$file")
  grep -q '^USER 65532:65532$' <<<"$section" || problem "target $target does not run as USER 65532:65532"
  grep -q '^ENTRYPOINT \["/usr/local/bin/maestro-' <<<"$section" || problem "target $target has no ENTRYPOINT"
done
build_cmd=$(grep -Eo 'cargo build --release --locked --bin maestro-operator --bin maestro-cli' "$file" || true)
[[ -n $build_cmd ]] || problem "the builder does not run 'cargo build --release --locked --bin maestro-operator --bin maestro-cli'"

# ---- the context
cmp -s .containerignore .dockerignore || problem ".dockerignore differs from .containerignore"
mapfile -t allowed < <(sed -n 's|^!\(.*\)$|\1|p' .containerignore | sed 's|/$||')
mapfile -t sources < <(grep -E '^COPY ' "$file" | grep -v -- '--from=' | awk '{for (i = 2; i < NF; i++) print $i}')
for s in "${sources[@]}"; do
  s=${s%/}
  printf '%s\n' "${allowed[@]}" | grep -qx -- "$s" || problem "COPY $s is excluded by .containerignore"
  [[ -e $s ]] || problem "COPY $s does not exist"
done
((bad == 0)) || exit 1
echo "ok: Containerfile: pinned bases, targets operator and cli as 65532, context ${allowed[*]}"
((static == 0)) || exit 0

# ---- the builder's command on the context
export CARGO_TARGET_DIR=${DEPLOY_RELEASE_TARGET:-${TMPDIR:-/tmp}/maestro-operator-release-target}
# A fixed place, so later runs reuse the dependencies in CARGO_TARGET_DIR
# (the crate itself is compiled again: a few minutes).
context=$CARGO_TARGET_DIR.context
rm -rf "$context"
mkdir -p "$context"
cp -a "${allowed[@]}" "$context/"
say "building in a copy of the context ($context), target dir $CARGO_TARGET_DIR"
(cd "$context" && $build_cmd)

# ---- the binaries
for b in maestro-operator maestro-cli; do
  bin=$CARGO_TARGET_DIR/release/$b
  "$bin" --version
  "$bin" --help >/dev/null
  libs=$(ldd "$bin" | awk '{print $1}' | sed 's|.*/||')
  while read -r lib; do
    case $lib in
    linux-vdso.so.* | libc.so.* | libm.so.* | libgcc_s.so.* | ld-linux-*.so.* | libpthread.so.* | libdl.so.* | librt.so.*) ;;
    *) problem "$b links $lib, which gcr.io/distroless/cc-debian12 does not have" ;;
    esac
  done <<<"$libs"
  echo "ok: $b $(du -h "$bin" | cut -f1), links only: $(tr '\n' ' ' <<<"$libs")"
done
exit "$bad"
