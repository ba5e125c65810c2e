#!/usr/bin/env bash
# Validate deploy/kubernetes/*.yaml offline against the Kubernetes schemas (npm package kubernetes-models)
# and clave's deployment rules. Installs the two npm packages into target/k8s-validate (once).
#   bash deploy/kubernetes/validate.sh            # every manifest here
#   bash deploy/kubernetes/validate.sh rendered.yaml   # e.g. a rendered Helm chart
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="$root/target/k8s-validate"
# Pinned so that CI validates against the same schemas every run.
packages=(kubernetes-models@4.5.1 js-yaml@4.1.0)
if [ ! -f "$scratch/node_modules/kubernetes-models/package.json" ] \
  || [ ! -f "$scratch/node_modules/js-yaml/package.json" ] \
  || ! grep -q '"version": "4.5.1"' "$scratch/node_modules/kubernetes-models/package.json" \
  || ! grep -q '"version": "4.1.0"' "$scratch/node_modules/js-yaml/package.json"; then
  mkdir -p "$scratch"
  npm install --prefix "$scratch" --no-audit --no-fund --no-save --loglevel=error "${packages[@]}" >&2
fi
exec node "$here/validate.mjs" "$scratch/node_modules" "$@"
