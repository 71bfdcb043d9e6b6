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
# Queue namespaces of test runs that ended without cleaning up (their database is gone):
# hundreds of idle quorum queues slow RabbitMQ down for everyone.
cargo build --locked --quiet
leaked=()
for ns in $(rabbitmqctl -q list_queues name 2>/dev/null | grep -oE '^t[0-9a-f]{12}\.salur\.' | cut -d. -f1 | sort -u); do
  exists=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'salur_test_${ns#t}'" postgres 2>/dev/null || echo 1)
  if [ "$exists" = 0 ]; then
    leaked+=("$ns")
    SALUR_NAMESPACE="$ns" target/debug/salur topology --delete >/dev/null 2>&1 || true
  fi
done
if [ ${#leaked[@]} -gt 0 ]; then
  pattern="^($(IFS='|'; echo "${leaked[*]}"))\\."
  for q in $(rabbitmqctl -q list_queues name 2>/dev/null | grep -E "$pattern" || true); do
    rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true
  done
  echo "removed the queues of ${#leaked[@]} test namespaces left by interrupted runs"
fi
# Bank users of test namespaces whose database is gone (a test process killed before its
# cleanup): users are global to the broker, so they would pile up.
for user in $(rabbitmqctl -q list_users 2>/dev/null | grep -oE '^t[0-9a-f]{12}\.salur\.bank\.[0-9]{3}(@[^[:space:]]*)?' || true); do
  ns=${user%%.*}
  exists=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'salur_test_${ns#t}'" postgres 2>/dev/null || echo 1)
  [ "$exists" = 0 ] && rabbitmqctl -q delete_user "$user" >/dev/null 2>&1 || true
done
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
cargo test --locked "$@"
# The HTTP API against its OpenAPI document (schemathesis, from PyPI).
scripts/api_contract.sh
# The million-row streamed upload, in a release build: memory stays flat.
scripts/api_large_upload.sh
