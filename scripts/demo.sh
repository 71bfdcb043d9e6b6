#!/usr/bin/env bash
# The demo: starts PostgreSQL and RabbitMQ if they are down, builds salur, and runs a realistic
# batch (3000 recipients, 430 with incomplete data) through the whole pipeline.
# Extra arguments go to `salur demo` (e.g. --recipients 10000 --incomplete 500 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo build --release --locked --quiet
exec target/release/salur demo "$@"
