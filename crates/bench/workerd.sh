#!/usr/bin/env bash
# Install Cloudflare's open-source workerd (npm package `workerd`, whose linux-x64 binary ships in the
# npm dependency `@cloudflare/workerd-linux-64`) into target/workerd for the clave-bench peer comparison.
# Prints the path of the binary on success.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="${WORKERD_PREFIX:-$root/target/workerd}"
bin="$prefix/node_modules/@cloudflare/workerd-linux-64/bin/workerd"
if [[ ! -x "$bin" ]]; then
    command -v npm >/dev/null || { echo "npm not found: cannot install workerd" >&2; exit 1; }
    mkdir -p "$prefix"
    npm install --no-audit --no-fund --prefix "$prefix" workerd >&2
fi
[[ -x "$bin" ]] || { echo "workerd installed but $bin is missing (not linux-x64?)" >&2; exit 1; }
"$bin" --version >&2
echo "$bin"
