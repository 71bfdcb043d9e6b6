#!/usr/bin/env bash
# The tests: starts PostgreSQL and RabbitMQ if they are down, checks formatting and lints, and
# runs every test against the real services (each test gets its own database and queue namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
cargo test --locked "$@"
