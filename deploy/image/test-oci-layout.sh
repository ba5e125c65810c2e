#!/usr/bin/env bash
# Unit test of the OCI layout writer and verifier with fixed inputs (seconds; run by .ci/run). The full
# reproducibility check (two release builds, ~10 min each here) is deploy/image/check-reproducible.sh.
#   - fixed inputs give a fixed, known image digest, whatever the umask, file times and directory;
#   - verify-image.sh accepts the layout and runs `/clave --version` from the extracted layer;
#   - one changed byte, a tampered blob, or a wrong version are caught.
# If EXPECTED changes, the layout bytes changed (writer edited, or a GNU tar/gzip that writes different
# bytes): check the new layout with verify-image.sh, then update EXPECTED in the same commit.
set -euo pipefail
export LC_ALL=C TZ=UTC
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
EXPECTED=sha256:f458c1b442f8a309d88efe2edb84cf98f6e3c772e128f29874e3f353bc6d4532
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "test-oci-layout: FAIL: $*" >&2; exit 1; }

inputs() { # dir umask -> writes the fixed inputs with the given umask and arbitrary times
  mkdir -p "$1"
  (
    umask "$2"
    printf '#!/bin/sh\n[ "$1" = --version ] && echo "clave 0.0.0-test"\n' >"$1/clave"
    printf '%s\n' '# test roots' '-----BEGIN CERTIFICATE-----' 'AAAA' '-----END CERTIFICATE-----' >"$1/ca.crt"
    touch -d "@$RANDOM$RANDOM" "$1/clave" "$1/ca.crt"
  )
}
write() { # inputs-dir out-dir -> digest
  bash "$here/oci-layout.sh" --out "$2" --binary "$1/clave" --ca-bundle "$1/ca.crt" --epoch 1700000000 \
    --version 0.0.0-test --revision 0123456789abcdef0123456789abcdef01234567 --source https://example.invalid/clave
}

inputs "$work/in-a" 022
inputs "$work/in-b" 077
a="$(write "$work/in-a" "$work/a/oci")"
b="$(cd "$work" && write "$work/in-b" "$work/somewhere/else/oci")"
[ "$a" = "$b" ] || fail "same inputs, different digests: $a vs $b"
cmp -s <(cd "$work/a/oci" && find . -type f | sort | xargs sha256sum) \
       <(cd "$work/somewhere/else/oci" && find . -type f | sort | xargs sha256sum) || fail "layouts differ"
[ "$a" = "$EXPECTED" ] || fail "digest $a, expected $EXPECTED (see the comment at the top)"
v="$(bash "$here/verify-image.sh" "$work/a/oci" 0.0.0-test 2>"$work/verify.err")" || { cat "$work/verify.err" >&2; fail "verify-image.sh refused the layout"; }
[ "$v" = "$a" ] || fail "verify-image.sh read $v"
grep -q 'verified: clave 0.0.0-test from the layer' "$work/verify.err" || fail "clave --version did not run from the layer"

# One byte more in the binary: another digest.
printf '#' >>"$work/in-a/clave"
c="$(write "$work/in-a" "$work/c/oci")"
[ "$c" != "$a" ] || fail "a changed binary kept the digest"
# A wrong expected version is refused.
if bash "$here/verify-image.sh" "$work/a/oci" 9.9.9 >/dev/null 2>&1; then fail "verify-image.sh accepted a wrong version"; fi
# A tampered blob is refused.
blob="$(ls "$work/a/oci/blobs/sha256" | head -1)"
printf 'x' >>"$work/a/oci/blobs/sha256/$blob"
if bash "$here/verify-image.sh" "$work/a/oci" >/dev/null 2>&1; then fail "verify-image.sh accepted a tampered blob"; fi
# A non-root uid is required.
if bash "$here/oci-layout.sh" --out "$work/d" --binary "$work/in-b/clave" --epoch 0 --version 1 --uid 0 >/dev/null 2>&1; then
  fail "oci-layout.sh wrote an image running as root"
fi
echo "test-oci-layout: ok ($a)"
