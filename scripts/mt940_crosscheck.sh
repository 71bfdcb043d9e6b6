#!/usr/bin/env bash
# bank-sim's MT940 statements read by an independent parser: the PyPI package mt-940 (pinned),
# installed in a venv under target/. A demo batch is paid through the whole pipeline, bank-sim
# writes every statement it has (MT940 and the CSV export, with returns), and
# scripts/mt940_crosscheck.py checks with mt-940 that each one parses, that its line counts and
# sums agree with the CSV export and with bank-sim's ledger, that opening + lines = closing,
# and that `salur reconcile` matches every debit and returns every credit with no exception.
# Uses its own database and vhost `salur_mt940check`, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

MT940_VERSION=5.1.1
VENV=target/mt940-venv
DB=salur_mt940check
RECIPIENTS=${RECIPIENTS:-600}

scripts/services.sh >/dev/null
if ! "$VENV/bin/pip" show mt-940 2>/dev/null | grep -qx "Version: $MT940_VERSION"; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "mt940: installing python3-venv from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "mt-940==$MT940_VERSION"
fi

cargo build --locked --quiet --bin salur
BIN=$PWD/target/debug/salur
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" METRICS_ADDR=off RUST_LOG=warn,lapin=off
# bank-sim's ledger, in its own database (the default name, made explicit for the checks).
export SALUR_BANK_LEDGER_URL="postgres://postgres@127.0.0.1:5432/${DB}_bank"
export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$DB"
OUT=$(mktemp -d)
cleanup() {
  rm -rf "$OUT"
  rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null 2>&1 || true
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null
rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$DB" >/dev/null
rabbitmqctl -q set_permissions -p "$DB" guest '.*' '.*' '.*' >/dev/null

"$BIN" demo --recipients "$RECIPIENTS" --incomplete 60 --json >"$OUT/demo.json"
"$VENV/bin/python" scripts/mt940_crosscheck.py "$BIN" "$OUT"
