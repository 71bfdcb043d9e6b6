#!/usr/bin/env bash
# The demo: starts PostgreSQL and RabbitMQ if they are down, builds salur, and runs a realistic
# batch (3000 recipients, 430 with incomplete data) through the whole pipeline; then fixes the
# blocked records from a corrections file, replays them and ends with every recipient paid.
# Extra arguments go to `salur demo` (e.g. --recipients 10000 --incomplete 500 --json);
# --no-fix stops after the first pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo build --release --locked --quiet
args=()
fix=--fix
for a in "$@"; do
  if [ "$a" = "--no-fix" ]; then fix=; else args+=("$a"); fi
done
exec target/release/salur demo $fix "${args[@]}"
