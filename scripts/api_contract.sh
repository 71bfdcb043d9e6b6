#!/usr/bin/env bash
# Contract test of the HTTP API: schemathesis (from PyPI, pinned) generates requests from
# openapi/salur.v1.json and runs them against a real `salur api` (real PostgreSQL and RabbitMQ,
# its own database and RabbitMQ vhost `salur_contract`, the vhost deleted when it ends), failing on any 5xx answer
# and on any answer whose status, media type or body the document does not describe.
#
#   scripts/api_contract.sh                # what scripts/test.sh runs
#   EXAMPLES=200 scripts/api_contract.sh   # a longer run
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${EXAMPLES:-30}
VENV=target/contract-venv
DB=salur_contract

scripts/services.sh
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "contract: installing python3-venv from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --locked --quiet --bin salur
BIN=target/debug/salur
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" METRICS_ADDR=off RUST_LOG=warn
export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$DB"
# A fresh database and vhost each run (they are this script's own).
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" postgres >/dev/null
rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$DB" >/dev/null
rabbitmqctl -q set_permissions -p "$DB" guest '.*' '.*' '.*' >/dev/null
trap 'rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true' EXIT
"$BIN" migrate >/dev/null
"$BIN" topology >/dev/null
TOKEN=$("$BIN" office add DINSOS-CONTRACT --name "Contract test office" 2>/dev/null)
"$BIN" programme add BPNT --name "Program Sembako" --amounts 600000 --approval none >/dev/null
# Something to find: a batch of this office with a blocked record (the stateful phase also
# follows the links from POST /v1/batches to the batches it makes).
SEED=$(mktemp)
trap 'rm -f "$SEED"; rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true' EXIT
printf '%s\n' \
  'nik,kk,name,mother_name,birth_place,birth_date,sex,address,region_code,bank_code,amount' \
  '5371014508800001,5371010101200001,Maria Ndolu,Yohana Bili,Kupang,1980-08-05,P,Jl. El Tari 5,53.71.01.1001,002,600000' \
  '5371014508800002,5371010101200001,Siti Aminah,,Kupang,1980-08-05,P,Jl. El Tari 5,53.71.01.1001,002,600000' >"$SEED"
"$BIN" submit "$SEED" --office DINSOS-CONTRACT --program BPNT --period 2026-Q4 >/dev/null

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" api --addr "127.0.0.1:$PORT" &
API_PID=$!
trap 'kill "$API_PID" 2>/dev/null; wait "$API_PID" 2>/dev/null; rm -f "$SEED"; rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

"$VENV/bin/schemathesis" run openapi/salur.v1.json \
  --url "http://127.0.0.1:$PORT" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" \
  --seed 1 \
  --request-timeout 30 \
  --workers 1 \
  --no-color \
  --suppress-health-check all \
  --generation-database none \
  --report junit --report-dir target/contract-report
