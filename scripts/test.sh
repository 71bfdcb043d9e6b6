#!/usr/bin/env bash
# The tests: starts PostgreSQL and RabbitMQ if they are down, checks formatting and lints, and
# runs every test against the real services (each test gets its own database and RabbitMQ vhost).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
# Databases left by an interrupted earlier run (each test drops its own when it finishes). Only
# those nobody is connected to: another test run on this machine may be using its own.
for db in $(psql -h 127.0.0.1 -U postgres -Atc "SELECT datname FROM pg_database d WHERE datname LIKE 'salur\_test\_%' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)" postgres 2>/dev/null); do
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\"" postgres >/dev/null 2>&1 || true
done
# docker-compose (Debian's package; no engine needed): tests/it/cluster.rs checks the compose file.
if ! command -v docker-compose >/dev/null; then
  echo "installing docker-compose from Debian's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }
fi
# promtool on monitoring/ (installs it if missing: tests/it/observability.rs needs it too).
scripts/check_monitoring.sh
# Vhosts of test runs that ended without cleaning up (a killed run: each test deletes its own
# vhost when it ends, fails or panics). Only those whose database is gone: a test running now
# in another checkout has both.
leaked=0
for vhost in $(rabbitmqctl -q list_vhosts name 2>/dev/null | grep -E '^salur_test_[0-9a-f]{12}$' || true); do
  exists=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = '$vhost'" postgres 2>/dev/null || echo 1)
  if [ "$exists" = 0 ]; then
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 && leaked=$((leaked + 1)) || true
  fi
done
if [ "$leaked" -gt 0 ]; then echo "removed $leaked test vhosts left by interrupted runs"; fi
# Queues of the namespaces earlier versions of the tests created on / (t<12 hex>.salur.*), of
# runs whose database is gone (a checkout of an older version may be testing right now).
cargo build --locked --quiet
for ns in $(rabbitmqctl -q list_queues name 2>/dev/null | grep -oE '^t[0-9a-f]{12}\.salur\.' | cut -d. -f1 | sort -u); do
  exists=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = 'salur_test_${ns#t}'" postgres 2>/dev/null || echo 1)
  if [ "$exists" = 0 ]; then
    SALUR_NAMESPACE="$ns" target/debug/salur topology --delete >/dev/null 2>&1 || true
  fi
done
# Bank users of test runs whose database is gone (a test process killed before its cleanup):
# users are global to the broker, so they would pile up. Tests on their own vhost name them
# `salur.bank.<code>@salur_test_<id>`; older namespaced ones `t<id>.salur.bank.<code>`.
for user in $(rabbitmqctl -q list_users 2>/dev/null | grep -oE '^(t[0-9a-f]{12}\.)?salur\.bank\.[0-9]{3}(@[^[:space:]]*)?' || true); do
  case "$user" in
    t*) db="salur_test_$(echo "${user%%.*}" | cut -c2-)" ;;
    *@salur_test_*) db="${user#*@}" ;;
    *) continue ;;
  esac
  exists=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM pg_database WHERE datname = '$db'" postgres 2>/dev/null || echo 1)
  [ "$exists" = 0 ] && rabbitmqctl -q delete_user "$user" >/dev/null 2>&1 || true
done
cargo fmt --check
cargo clippy --locked --all-targets --quiet -- -D warnings
cargo test --locked "$@"
# The HTTP API against its OpenAPI document (schemathesis, from PyPI).
scripts/api_contract.sh
# SNAP BI signatures and bank-sim's SNAP server against BNI's own SDK (bnipython, from PyPI).
scripts/snap_crosscheck.sh
# bank-sim's MT940 statements read by an independent parser (mt-940, from PyPI) and reconciled.
scripts/mt940_crosscheck.sh
# The web console in a real browser (Debian's chromium, playwright-core from npm).
scripts/browser_test.sh
# The million-row streamed upload, in a release build: memory stays flat.
scripts/api_large_upload.sh
