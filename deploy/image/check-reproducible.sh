#!/usr/bin/env bash
# The full reproducibility check: clone the commit twice into two unrelated directories (different
# names and depths), build the release image in each from scratch (own target directory, nothing shared
# but the downloaded crate sources), and require byte-identical `clave` binaries and the same image
# digest. Each build also runs verify-image.sh (layer extracted, `clave --version` run from it).
#
#   deploy/image/check-reproducible.sh [REV] [--keep] [--parallel]
# REV defaults to HEAD (committed changes only); --keep keeps the two trees; --parallel runs both builds
# at once (the same CPU time, less waiting when the machine is shared).
#
# Two cold release builds (~9 min each on the idle 2-core machine, 30+ min when it is shared), so it is not part of .ci/run
# (which runs test-oci-layout.sh, the writer with fixed inputs). Run it before tagging a release and
# whenever Cargo.lock, the toolchain, the release profile or deploy/image/ changes (README "Release image").
set -euo pipefail
export LC_ALL=C
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rev=HEAD keep=0 parallel=0
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --parallel) parallel=1 ;;
    *) rev="$a" ;;
  esac
done
commit="$(git -C "$root" rev-parse --verify "$rev^{commit}")"
base="$(mktemp -d "${TMPDIR:-/tmp}/clave-repro.XXXXXX")"
[ "$keep" = 1 ] || trap 'rm -rf "$base"' EXIT
dirs=("$base/a/clave" "$base/second-checkout/nested/deeper/src")

for d in "${dirs[@]}"; do
  mkdir -p "$(dirname "$d")"
  git clone --quiet --no-checkout "$root" "$d"
  git -C "$d" -c advice.detachedHead=false checkout --quiet "$commit"
done

build() { # dir -> the digest in dir/../digest.out, the log in dir/../build.log
  local start=$(date +%s)
  echo "==> building $commit in $1 (log: $(dirname "$1")/build.log)" >&2
  # A clean tree and its own target directory: nothing from the other build or the caller's tree.
  env -u CARGO_TARGET_DIR -u SOURCE_DATE_EPOCH bash "$1/deploy/image/build.sh" \
    >"$(dirname "$1")/digest.out" 2>"$(dirname "$1")/build.log" \
    || { echo "==> build in $1 failed:" >&2; tail -20 "$(dirname "$1")/build.log" >&2; return 1; }
  echo "==> $1: $(cat "$(dirname "$1")/digest.out") in $(( $(date +%s) - start )) s" >&2
}
if [ "$parallel" = 1 ]; then
  pids=()
  for d in "${dirs[@]}"; do build "$d" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
else
  for d in "${dirs[@]}"; do build "$d"; done
fi
digests=()
for d in "${dirs[@]}"; do digests+=("$(cat "$(dirname "$d")/digest.out")"); done

bin_a="${dirs[0]}/target/image/clave" bin_b="${dirs[1]}/target/image/clave"
status=0
if cmp -s "$bin_a" "$bin_b"; then
  echo "binaries identical: sha256:$(sha256sum "$bin_a" | cut -d' ' -f1) ($(stat -c %s "$bin_a") bytes)"
else
  echo "binaries DIFFER: $(cmp "$bin_a" "$bin_b" | head -1)" >&2
  status=1
fi
if [ "${digests[0]}" = "${digests[1]}" ]; then
  echo "image digests identical: ${digests[0]}"
else
  echo "image digests DIFFER: ${digests[0]} vs ${digests[1]}" >&2
  status=1
fi
[ "$keep" = 0 ] || echo "kept: $base" >&2
exit "$status"
