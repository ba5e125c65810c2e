#!/usr/bin/env bash
# Write a one-layer OCI image layout (image-spec v1.1, FROM scratch) from fixed inputs, byte for byte
# reproducibly: the same inputs give the same blobs and therefore the same image (manifest) digest.
# No container daemon, no base image: GNU tar (ustar, sorted, numeric owner 0, fixed mtime), `gzip -n`
# (no name, no time stamp), sha256sum, and JSON written here in a fixed key order.
#
#   oci-layout.sh --out DIR --binary FILE --epoch SECONDS --version V \
#                 [--ca-bundle FILE] [--revision SHA] [--source URL] [--uid N]
#
# The layer holds /clave (0755), /etc/passwd and /etc/group naming the non-root user (default uid/gid
# 10001, as deploy/kubernetes runs it) and, with --ca-bundle, /etc/ssl/certs/ca-certificates.crt (0644).
# The config runs `/clave` as that user. DIR is replaced. Prints the image digest (sha256:…) on stdout.
set -euo pipefail
export LC_ALL=C TZ=UTC

die() { echo "oci-layout.sh: $*" >&2; exit 2; }
out="" binary="" epoch="" version="" ca="" revision="" source="" uid=10001
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --epoch) epoch="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --ca-bundle) ca="$2"; shift 2 ;;
    --revision) revision="$2"; shift 2 ;;
    --source) source="$2"; shift 2 ;;
    --uid) uid="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[ -n "$out" ] && [ -n "$binary" ] && [ -n "$epoch" ] && [ -n "$version" ] || die "--out, --binary, --epoch and --version are required"
[ -f "$binary" ] || die "no binary at $binary"
[ -z "$ca" ] || [ -f "$ca" ] || die "no CA bundle at $ca"
[[ "$epoch" =~ ^[0-9]+$ ]] || die "--epoch must be decimal unix seconds"
[[ "$uid" =~ ^[1-9][0-9]*$ ]] || die "--uid must be a non-zero number (the image runs as non-root)"
# The values below go into JSON verbatim: allow only characters that need no escaping.
for v in "$version" "$revision" "$source"; do
  [[ "$v" =~ ^[A-Za-z0-9._:/+@-]*$ ]] || die "value '$v' has characters not allowed in a label"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required (--sort, --mtime)"

created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- the root file system ---------------------------------------------------------------------------
root="$work/rootfs"
mkdir -p "$root/etc"
install -m 0755 "$binary" "$root/clave"
printf 'root:x:0:0:root:/:/sbin/nologin\nclave:x:%s:%s:clave:/:/sbin/nologin\n' "$uid" "$uid" >"$root/etc/passwd"
printf 'root:x:0:\nclave:x:%s:\n' "$uid" >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"
chmod 0755 "$root/etc"
members=(clave etc etc/group etc/passwd)
if [ -n "$ca" ]; then
  mkdir -p "$root/etc/ssl/certs"
  chmod 0755 "$root/etc/ssl" "$root/etc/ssl/certs"
  install -m 0644 "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
  members+=(etc/ssl etc/ssl/certs etc/ssl/certs/ca-certificates.crt)
fi
# Every member listed explicitly, in byte order; directories without recursion.
mapfile -t members < <(printf '%s\n' "${members[@]}" | sort)
tar --create --file="$work/layer.tar" --format=ustar --no-recursion --directory="$root" \
  --owner=0 --group=0 --numeric-owner --mtime="@$epoch" "${members[@]}"
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"

# --- blobs ---------------------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out/blobs/sha256"
blob() { # file -> prints sha256:<hex> <size>; stores the blob
  local hex size
  hex="$(sha256sum "$1" | cut -d' ' -f1)"
  size="$(stat -c %s "$1")"
  cp "$1" "$out/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

labels="\"org.opencontainers.image.created\":\"$created\",\"org.opencontainers.image.title\":\"clave\",\"org.opencontainers.image.version\":\"$version\""
[ -z "$revision" ] || labels="$labels,\"org.opencontainers.image.revision\":\"$revision\""
[ -z "$source" ] || labels="$labels,\"org.opencontainers.image.source\":\"$source\""

printf '%s' "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"$created\",\"config\":{\"User\":\"$uid:$uid\",\"Entrypoint\":[\"/clave\"],\"WorkingDir\":\"/\",\"Labels\":{$labels}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"$diff_id\"]},\"history\":[{\"created\":\"$created\",\"created_by\":\"deploy/image/oci-layout.sh\"}]}" >"$work/config.json"
read -r config_digest config_size < <(blob "$work/config.json")

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$layer_digest\",\"size\":$layer_size}],\"annotations\":{\"org.opencontainers.image.created\":\"$created\"}}" >"$work/manifest.json"
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\"annotations\":{\"org.opencontainers.image.ref.name\":\"$version\"}}]}" >"$out/index.json"
echo "$manifest_digest"
