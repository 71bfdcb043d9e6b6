#!/usr/bin/env bash
# The tests: starts PostgreSQL and RabbitMQ if they are down, checks formatting and lints, and
# runs every test against the real services (each test gets its own database and queue namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# Databases left by an interrupted earlier run (each test drops its own when it finishes). Only
# those nobody is connected to: another test run on this machine may be using its own.
for db in $(psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database d WHERE datname LIKE 'salur\_test\_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)" postgres 2>/dev/null); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\"" postgres >/dev/null 2>&1 || true
done
# promtool on monitoring/ (installs it if missing: tests/observability.rs needs it too).
scripts/check_monitoring.sh
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
cargo test --locked "$@"
