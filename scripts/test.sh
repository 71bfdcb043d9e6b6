#!/usr/bin/env bash
# The tests: starts PostgreSQL and RabbitMQ if they are down, checks formatting and lints, and
# runs every test against the real services (each test gets its own database and queue namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# Databases left by an interrupted earlier run (each test drops its own when it finishes).
for db in $(psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'salur\_test\_%'" postgres 2>/dev/null); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" postgres >/dev/null 2>&1 || true
done
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
cargo test --locked "$@"
