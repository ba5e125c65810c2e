#!/usr/bin/env bash
# Check an OCI image layout written by oci-layout.sh, independently of how it was written:
#   - every blob's name is the sha256 of its bytes, and the sizes in the index/manifest are right;
#   - the config's diff_id is the sha256 of the uncompressed layer;
#   - the layer holds exactly the expected files, owned by 0:0, with fixed modes and time stamps;
#   - the config runs /clave as a non-root user;
#   - /clave, extracted from the layer, runs: `clave --version` prints "clave <version>".
#
#   verify-image.sh DIR [EXPECTED_VERSION]
# Prints the image digest on stdout; exits 1 (with the reason on stderr) on any mismatch.
set -euo pipefail
export LC_ALL=C TZ=UTC
dir="${1:?usage: verify-image.sh DIR [EXPECTED_VERSION]}"
want_version="${2:-}"
fail() { echo "verify-image.sh: $*" >&2; exit 1; }

[ "$(cat "$dir/oci-layout" 2>/dev/null)" = '{"imageLayoutVersion":"1.0.0"}' ] || fail "oci-layout missing or wrong"
for b in "$dir"/blobs/sha256/*; do
  [ "sha256:$(sha256sum "$b" | cut -d' ' -f1)" = "sha256:$(basename "$b")" ] || fail "blob $(basename "$b") does not match its digest"
done
index="$(cat "$dir/index.json")"
# Pull "digest":"sha256:…","size":N pairs out of a document (our writer emits them in that order).
refs() { grep -oE '"digest":"sha256:[0-9a-f]{64}","size":[0-9]+' <<<"$1" | sed -E 's/"digest":"(sha256:[0-9a-f]{64})","size":([0-9]+)/\1 \2/'; }
check_size() { [ "$(stat -c %s "$dir/blobs/sha256/${1#sha256:}")" = "$2" ] || fail "size of $1 is not $2"; }
mapfile -t idx < <(refs "$index")
[ "${#idx[@]}" = 1 ] || fail "index.json must name exactly one manifest"
read -r manifest_digest manifest_size <<<"${idx[0]}"
check_size "$manifest_digest" "$manifest_size"
manifest="$(cat "$dir/blobs/sha256/${manifest_digest#sha256:}")"
grep -q '"mediaType":"application/vnd.oci.image.manifest.v1+json"' <<<"$manifest" || fail "not an OCI image manifest"
mapfile -t mrefs < <(refs "$manifest")
[ "${#mrefs[@]}" = 2 ] || fail "the manifest must name one config and one layer"
read -r config_digest config_size <<<"${mrefs[0]}"
read -r layer_digest layer_size <<<"${mrefs[1]}"
check_size "$config_digest" "$config_size"
check_size "$layer_digest" "$layer_size"
config="$(cat "$dir/blobs/sha256/${config_digest#sha256:}")"
grep -qE '"User":"[1-9][0-9]*:[1-9][0-9]*"' <<<"$config" || fail "the image must run as a non-root uid:gid"
grep -q '"Entrypoint":\["/clave"\]' <<<"$config" || fail "the entrypoint must be /clave"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gzip -dc "$dir/blobs/sha256/${layer_digest#sha256:}" >"$work/layer.tar"
diff_id="sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)"
grep -q "\"diff_ids\":\[\"$diff_id\"\]" <<<"$config" || fail "diff_id in the config is not the sha256 of the layer"

# Members, owners, modes: exactly these, nothing else (no device files, no setuid, no stray paths).
listing="$(tar -tvf "$work/layer.tar" --numeric-owner | awk '{print $1, $2, $6}')"
expected="-rwxr-xr-x 0/0 clave
drwxr-xr-x 0/0 etc/
-rw-r--r-- 0/0 etc/group
-rw-r--r-- 0/0 etc/passwd"
if grep -q ' etc/ssl/$' <<<"$listing"; then
  expected="$expected
drwxr-xr-x 0/0 etc/ssl/
drwxr-xr-x 0/0 etc/ssl/certs/
-rw-r--r-- 0/0 etc/ssl/certs/ca-certificates.crt"
fi
[ "$listing" = "$expected" ] || fail "unexpected layer contents:
$listing"
[ "$(tar -tvf "$work/layer.tar" --full-time | awk '{print $4, $5}' | sort -u | wc -l)" = 1 ] || fail "time stamps differ between members"

mkdir "$work/root"
tar -xf "$work/layer.tar" -C "$work/root"
version_line="$("$work/root/clave" --version)" || fail "clave --version failed when run from the layer"
case "$version_line" in
  "clave "*) ;;
  *) fail "clave --version printed '$version_line'" ;;
esac
if [ -n "$want_version" ] && [ "$version_line" != "clave $want_version" ]; then
  fail "clave --version printed '$version_line', expected 'clave $want_version'"
fi
echo "verified: $version_line from the layer, $(wc -l <<<"$listing") members, layer $layer_digest" >&2
echo "$manifest_digest"
