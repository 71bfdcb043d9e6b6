#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium (installed when missing) driven by
# playwright-core (npm, pinned in scripts/browser/package-lock.json) through the Kupang journey
# with the demo's realistic file (`salur demo --write-batch`: seed 42, 3000 recipients, 430 with
# incomplete administrative data of 15 kinds, and the corrections the office would write):
# sign in as a maker, upload it, watch the batch's progress, see the blocked records grouped by
# reason with the counts the generator put in, approve the payment list as a checker in a
# second browser session, see 2570 payments go out; open a blocked record, fix it on screen
# from the office's corrections and replay it; download the other blocked records' workbook,
# fill it in from the corrections (openpyxl, as a spreadsheet program would), upload it (first
# with a wrong cell: refused by row and column, nothing changed), replay on confirmation,
# approve again: all 3000 paid. Then bank 002's statement of the day (bank-sim, 1 % returned (10 % in a quick run),
# one debit removed and one amount changed by scripts/browser/edit_statement.py) is reconciled
# (`salur reconcile`): the batch page shows its returned records and exceptions, an auditor
# reads the reconciliation pages.
# Also: a maker has no approve button and a forged approval post is refused, a form posted
# without its CSRF token is refused, another office's maker gets a 404 page for the batch's URL,
# and a sixth wrong sign-in in a row is slowed down. Real services: PostgreSQL and RabbitMQ, a worker, bank-sim
# and `salur api`, on a database and RabbitMQ vhost of its own (`salur_browser`), removed when
# the script ends, failed or not. Screenshots (1366x768) go to target/browser-shots/ (or
# SHOTS=docs/console to refresh the README's).
#
#   scripts/browser_test.sh                   # the Kupang journey, what scripts/test.sh runs
#   ROWS=60 BLOCKED=15 scripts/browser_test.sh   # a quick run (15 blocked: every reason once)
#   SHOTS=docs/console scripts/browser_test.sh   # refreshes the README's screenshots
set -euo pipefail
cd "$(dirname "$0")/.."

DB=salur_browser
ROWS=${ROWS:-3000}
BLOCKED=${BLOCKED:-430}
SHOTS=${SHOTS:-target/browser-shots}

scripts/services.sh
if ! command -v chromium >/dev/null 2>&1; then
  echo "browser: installing chromium from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "browser: installing nodejs and npm from Debian's packages" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d scripts/browser/node_modules/playwright-core ]; then
  (cd scripts/browser && npm ci --no-audit --no-fund --silent)
fi
# The clerk's spreadsheet program: openpyxl (PyPI, pinned), which rewrites the workbook whole.
OPENPYXL_VERSION=3.1.5
VENV=target/browser-venv
if ! "$VENV/bin/python" -c "import openpyxl, sys; sys.exit(openpyxl.__version__ != '$OPENPYXL_VERSION')" 2>/dev/null; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "browser: installing python3-venv from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "openpyxl==$OPENPYXL_VERSION"
fi

cargo build --locked --quiet --bin salur
BIN=$PWD/target/debug/salur
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" METRICS_ADDR=off RUST_LOG=warn
export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$DB"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  local users
  users=$(rabbitmqctl -q list_users 2>/dev/null | awk '{print $1}' | grep "@$DB\$" || true)
  for user in $users; do rabbitmqctl -q delete_user "$user" >/dev/null 2>&1 || true; done
  rabbitmqctl -q delete_vhost "$DB" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup
WORK=$(mktemp -d)
rabbitmqctl -q add_vhost "$DB" >/dev/null
rabbitmqctl -q set_permissions -p "$DB" guest '.*' '.*' '.*' >/dev/null
"$BIN" migrate >/dev/null
"$BIN" topology >/dev/null
"$BIN" office add DINSOS-5371 --name "Dinas Sosial Kota Kupang" >/dev/null 2>&1
"$BIN" programme add BPNT --name "Program Sembako" --amounts 600000 --approval required >/dev/null
"$BIN" budget set BPNT 2026-Q4 --office DINSOS-5371 --amount 5000000000 >/dev/null
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
MAKER_OTP=$("$BIN" person add --office DINSOS-5371 --login maria --name "Maria Ndun" --role maker --json | json_field password)
"$BIN" office add DINSOS-3578 --name "Dinas Sosial Kota Surabaya" >/dev/null 2>&1
OTHER_OTP=$("$BIN" person add --office DINSOS-3578 --login budi --name "Budi Santoso" --role maker --json | json_field password)
CHECKER_OTP=$("$BIN" person add --office DINSOS-5371 --login yosef --name "Yosef Lake" --role checker --json | json_field password)
"$BIN" office add BPK --name "Badan Pemeriksa Keuangan" --auditor >/dev/null 2>&1
AUDITOR_OTP=$("$BIN" person add --office BPK --login rina --name "Rina Auditor" --role auditor --json | json_field password)

# The batch: the demo's generator (seed 42), ROWS recipients of whom BLOCKED have incomplete
# administrative data, and the office's corrections of those (penerima.corrections.csv).
CSV=$WORK/penerima.csv
"$BIN" demo --write-batch "$CSV" --recipients "$ROWS" --incomplete "$BLOCKED" --seed 42 >"$WORK/batch.json"
EXPECTED=$(python3 -c "import json, sys; print(json.dumps(json.load(sys.stdin)['expected_reasons']))" <"$WORK/batch.json")
CORRECTIONS=$WORK/penerima.corrections.csv

"$BIN" worker >"$WORK/worker.log" 2>&1 &
PIDS+=($!)
"$BIN" bank-sim >"$WORK/bank-sim.log" 2>&1 &
PIDS+=($!)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" api --addr "127.0.0.1:$PORT" >"$WORK/api.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

mkdir -p "$SHOTS"
started=$(date +%s)
if ! BASE="http://127.0.0.1:$PORT" MAKER_LOGIN=maria MAKER_OTP="$MAKER_OTP" \
  CHECKER_LOGIN=yosef CHECKER_OTP="$CHECKER_OTP" OTHER_LOGIN=budi OTHER_OTP="$OTHER_OTP" CSV="$CSV" ROWS="$ROWS" BLOCKED="$BLOCKED" \
  EXPECTED="$EXPECTED" CORRECTIONS="$CORRECTIONS" AUDITOR_LOGIN=rina AUDITOR_OTP="$AUDITOR_OTP" BIN="$BIN" \
  SHOTS="$SHOTS" PYTHON="$PWD/$VENV/bin/python" WORK="$WORK" node scripts/browser/journey.js; then
  echo "browser: the journey failed; screenshots in $SHOTS; the api's log:" >&2
  tail -n 30 "$WORK/api.log" >&2 || true
  exit 1
fi
echo "browser: journey passed in $(($(date +%s) - started)) s; screenshots in $SHOTS"
