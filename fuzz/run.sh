#!/usr/bin/env bash
# Build every fuzz target and run each for FUZZ_SECONDS seconds (default 10; `.ci/run` uses 5).
# Any failure fails the script: a build error, a crash, a leak, a timeout, an out-of-memory, or a
# target that does not report its runs.
#
#   bash fuzz/run.sh                                # every target, 10 s each
#   FUZZ_SECONDS=600 bash fuzz/run.sh               # a longer run (10 min per target)
#   FUZZ_SECONDS=3600 bash fuzz/run.sh sandbox_json # one target for an hour
#
# Each target starts from its checked-in seeds (fuzz/seeds/<target>/: RFC vectors, the real
# evidence and collateral samples; regenerate with fuzz/seeds/make_seeds.py) and keeps what it
# finds in fuzz/corpus/<target>/ (not checked in). A crash is saved in fuzz/artifacts/<target>/;
# replay it with `cargo fuzz run --dev <target> <file>`.
#
# cargo-fuzz normally wants nightly (it passes -Zsanitizer=address); on the stable toolchain we
# set RUSTC_BOOTSTRAP=1, which unlocks those flags. Install the tool once with
# `cargo install cargo-fuzz --locked`. The fuzz crate is outside the workspace (its own
# [workspace] table, its own committed Cargo.lock) and uses its own target dir.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-10}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "error: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)" >&2
    exit 1
fi
# The committed lock file must be complete: fail instead of resolving new versions.
cargo metadata --locked --format-version 1 >/dev/null
all="$(cargo fuzz list)"
targets="${*:-$all}"
if [ -z "$targets" ]; then
    echo "error: no fuzz targets" >&2
    exit 1
fi
cargo fuzz build --dev
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in $targets; do
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    if [ -d "seeds/$t" ]; then dirs+=("seeds/$t"); fi
    echo "== $t (${secs}s, seeds: $(find "seeds/$t" -type f 2>/dev/null | wc -l))"
    if ! cargo fuzz run --dev "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "error: fuzz target $t failed (see above; inputs in fuzz/artifacts/$t)" >&2
        exit 1
    fi
    if ! grep -E '^Done [0-9]+ runs' "$log"; then
        tail -n 60 "$log" >&2
        echo "error: fuzz target $t did not report its runs" >&2
        exit 1
    fi
done
echo "all fuzz targets ran for ${secs}s each: $(echo $targets | wc -w) targets"
