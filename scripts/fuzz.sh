#!/usr/bin/env bash
# Fuzzes intake (CSV, JSON, Excel) and the value parsers (amount, NIK, KK, date, text rules) for
# a bounded time per target: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60).
#
# Not part of scripts/test.sh. cargo-fuzz needs nightly compiler flags; on a stable toolchain
# RUSTC_BOOTSTRAP=1 allows them. A crash is saved under fuzz/artifacts/<target>/: add the input
# to tests/hostile/ (with its answer in expected.tsv) or to the unit tests, fix, and run again.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Seed the corpora from the hostile-input corpus (the seeds are copies, kept out of git).
mkdir -p fuzz/corpus/csv fuzz/corpus/json fuzz/corpus/xlsx fuzz/corpus/values
cp tests/hostile/*.csv fuzz/corpus/csv/ 2>/dev/null || true
cp tests/hostile/*.json fuzz/corpus/json/ 2>/dev/null || true
printf '600000\nRp 600.000,00\n5301011203850001\n12-03-1985\n' | split -l 1 - fuzz/corpus/values/seed-
cargo fuzz build --release --sanitizer none
for target in values csv json xlsx; do
    echo "== fuzzing $target for ${seconds}s"
    cargo fuzz run --release --sanitizer none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1
done
