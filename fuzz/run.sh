#!/usr/bin/env bash
# Build every fuzz target and run each for a few seconds (default 10; FUZZ_SECONDS overrides).
#
# cargo-fuzz normally wants nightly (it passes -Zsanitizer=address); on the stable toolchain we
# set RUSTC_BOOTSTRAP=1, which unlocks those flags. Install the tool once with
# `cargo install cargo-fuzz`. The fuzz crate is outside the workspace (its own [workspace]
# table) and uses its own target dir, so it never disturbs the main build.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-10}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed (cargo install cargo-fuzz); falling back to cargo check" >&2
    exec cargo check --bins
fi
targets=$(cargo fuzz list)
cargo fuzz build --dev
for t in $targets; do
    mkdir -p "corpus/$t"
    echo "== $t (${secs}s)"
    cargo fuzz run --dev "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1 \
        | grep -E "^(Done|#[0-9]+.*DONE)|panicked|ERROR|SUMMARY" || true
    if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
        echo "crash found for $t: see fuzz/artifacts/$t" >&2
        exit 1
    fi
done
echo "all fuzz targets ran for ${secs}s each"
