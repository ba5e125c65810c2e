#!/usr/bin/env bash
# Build the release image of clave: one command, no container daemon, no base image.
#
#   deploy/image/build.sh [--out DIR] [--no-build] [--pin]
#
# 1. A static release `clave` (x86_64-unknown-linux-gnu with +crt-static; docs/scaling.md says why not
#    musl): `cargo build --release --locked`, no debug info, --features configfs-tsm (the engine reads its
#    SEV-SNP/TDX evidence through configfs-tsm), with every build path remapped (--remap-path-prefix for
#    rustc, -ffile-prefix-map for the C code of QuickJS, SQLite and ring and the C++ of ada-url, the URL
#    parser) and SOURCE_DATE_EPOCH set to the commit time, so that the binary does not depend on where
#    or when it is built. The script refuses a binary that still names a build path or needs a dynamic
#    loader.
# 2. An OCI image layout FROM scratch (deploy/image/oci-layout.sh): /clave, /etc/passwd+group with the
#    non-root uid 10001, and the committed Mozilla CA roots (deploy/image/ca-certificates.crt).
# 3. verify-image.sh checks the layout and runs `clave --version` from the extracted layer.
#
# Output (default target/image/): oci/ (the layout; push it with `skopeo copy --preserve-digests
# oci:target/image/oci:<version> docker://REGISTRY/clave:<version>`), clave (the binary), digest.txt
# (the image digest, one line) and digest.json (image, config, layer and binary digests, the source commit,
# the toolchain). Prints the image digest last, on stdout. --no-build reuses the last build's binary;
# --pin writes the digest into deploy/kubernetes/kustomization.yaml (the one place the manifests get it).
#
# Reproducibility: two clean clones in different directories give the same binary and the same image
# digest (deploy/image/check-reproducible.sh), given the same toolchain (rust-toolchain: Cargo.lock and
# the rustc version printed into digest.json) and the same C compiler and glibc (Debian 12: gcc 12,
# libc6-dev 2.36), which the binary links statically.
set -euo pipefail
export LC_ALL=C TZ=UTC
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

out="" build=1 pin=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --pin) pin=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

triple=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$target_dir"
target_dir="$(cd "$target_dir" && pwd)"
out="${out:-$target_dir/image}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  revision="$(git -C "$root" rev-parse HEAD)"
  : "${SOURCE_DATE_EPOCH:=$(git -C "$root" log -1 --format=%ct HEAD)}"
  if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
    echo "build.sh: warning: the tree has uncommitted changes; the image will not match a build of $revision" >&2
    revision="$revision-dirty"
  fi
else
  revision=""
  : "${SOURCE_DATE_EPOCH:?set SOURCE_DATE_EPOCH when building outside a git checkout}"
fi
export SOURCE_DATE_EPOCH

bin="$target_dir/$triple/release/clave"
if [ "$build" = 1 ]; then
  # Later remappings win when several match: the target dir (possibly inside the tree) comes last.
  remap=("$root=/clave" "$cargo_home=/cargo" "$target_dir=/clave/target")
  rustflags="-Ctarget-feature=+crt-static"
  cflags=""
  for m in "${remap[@]}"; do
    rustflags="$rustflags"$'\x1f'"--remap-path-prefix=$m"
    cflags="$cflags -ffile-prefix-map=$m"
  done
  start=$(date +%s)
  # RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS apply to the --target only, not to build scripts and proc macros.
  env -u RUSTFLAGS CARGO_ENCODED_RUSTFLAGS="$rustflags" CARGO_INCREMENTAL=0 \
    CFLAGS_x86_64_unknown_linux_gnu="${CFLAGS_x86_64_unknown_linux_gnu:-}$cflags" \
    CXXFLAGS_x86_64_unknown_linux_gnu="${CXXFLAGS_x86_64_unknown_linux_gnu:-}$cflags" \
    CARGO_TARGET_DIR="$target_dir" \
    cargo build --release --locked --target "$triple" -p clave-cli --bin clave --features configfs-tsm
  echo "build.sh: cargo build took $(( $(date +%s) - start )) s" >&2
fi
[ -x "$bin" ] || { echo "build.sh: no binary at $bin (run without --no-build)" >&2; exit 1; }

# The binary must be static and must not name the machine it was built on.
if readelf -lW "$bin" | grep -q 'INTERP'; then
  echo "build.sh: $bin needs a dynamic loader (not static)" >&2; exit 1
fi
if readelf -SW "$bin" | grep -qE ' \.debug_(info|line) '; then
  echo "build.sh: $bin carries debug info" >&2; exit 1
fi
for leak in "$root" "$target_dir" "$cargo_home" "${RUSTUP_HOME:-$HOME/.rustup}"; do
  if grep -qaF -- "$leak" "$bin"; then
    echo "build.sh: $bin contains the build path $leak" >&2; exit 1
  fi
done

version="$("$bin" --version | sed -n 's/^clave //p')"
mkdir -p "$out"
digest="$(bash "$here/oci-layout.sh" --out "$out/oci" --binary "$bin" --epoch "$SOURCE_DATE_EPOCH" \
  --version "$version" --ca-bundle "$here/ca-certificates.crt" --revision "$revision" \
  --source "https://example.invalid/clave")"
verified="$(bash "$here/verify-image.sh" "$out/oci" "$version")"
[ "$verified" = "$digest" ] || { echo "build.sh: verify-image.sh read $verified, wrote $digest" >&2; exit 1; }

cp "$bin" "$out/clave"
bin_sha="sha256:$(sha256sum "$bin" | cut -d' ' -f1)"
manifest="$(cat "$out/oci/blobs/sha256/${digest#sha256:}")"
config_digest="$(grep -oE '"digest":"sha256:[0-9a-f]{64}"' <<<"$manifest" | sed -n '1s/"digest":"\(.*\)"/\1/p')"
layer_digest="$(grep -oE '"digest":"sha256:[0-9a-f]{64}"' <<<"$manifest" | sed -n '2s/"digest":"\(.*\)"/\1/p')"
echo "$digest" >"$out/digest.txt"
cat >"$out/digest.json" <<JSON
{
  "image": "clave:$version@$digest",
  "manifest_digest": "$digest",
  "config_digest": "$config_digest",
  "layer_digest": "$layer_digest",
  "binary_sha256": "$bin_sha",
  "binary_size": $(stat -c %s "$bin"),
  "version": "$version",
  "revision": "$revision",
  "source_date_epoch": $SOURCE_DATE_EPOCH,
  "target": "$triple",
  "rustc": "$(rustc -V)",
  "cc": "$(cc --version | head -1)",
  "glibc": "$(ldd --version | head -1 | sed 's/.* //')"
}
JSON

if [ "$pin" = 1 ]; then
  k="$root/deploy/kubernetes/kustomization.yaml"
  sed -i -E "s/^(    digest: )sha256:[0-9a-f]{64}.*/\1$digest/" "$k"
  sed -i -E "s/^(# Pinned from the build of ).*/\1${revision:-an unversioned tree} (deploy\/image\/build.sh --pin)./" "$k"
  grep -q "digest: $digest" "$k" || { echo "build.sh: could not pin the digest in $k" >&2; exit 1; }
  echo "build.sh: pinned $digest in deploy/kubernetes/kustomization.yaml" >&2
fi
echo "build.sh: binary $bin_sha ($(stat -c %s "$bin") bytes), image layout $out/oci, digest in $out/digest.txt" >&2
echo "$digest"
