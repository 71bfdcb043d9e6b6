#!/usr/bin/env bash
# Throughput of the SNAP BI path with real processes: salur worker → RabbitMQ → salur
# bank-gateway → HTTP/SNAP → salur bank-sim --snap, on the local services (its own database
# `salur_snapbench` and queue namespace `snapbench`, removed at the end).
#
#   scripts/snap_bench.sh [RECIPIENTS] [GATEWAY_CONCURRENCY]     # default 5000 16
#   PROFILE=release scripts/snap_bench.sh                          # a release build
#
# Accounts are opened by file first (export, bank-sim's results, import); the figure is the
# records per second from the import (accounts opened) to every record disbursed: verification
# and the transfer, one signed SNAP call per record, answered by bank-sim from PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
CONC=${2:-16}
PROFILE=${PROFILE:-debug}
DB=salur_snapbench
KEYS=tests/fixtures/snap
WORK=$(mktemp -d)

scripts/services.sh >/dev/null
if [ "$PROFILE" = release ]; then cargo build --locked --quiet --release --bin salur; else cargo build --locked --quiet --bin salur; fi
BIN=target/$PROFILE/salur
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" SALUR_NAMESPACE=snapbench METRICS_ADDR=off RUST_LOG=warn
export SNAP_CLIENT_KEY=salur-bench SNAP_CLIENT_SECRET=bench-secret SNAP_PARTNER_ID=SALURBENCH
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$BIN" topology --delete >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null
"$BIN" migrate >/dev/null
[ -n "${DIAG_ASYNC:-}" ] && psql -h 127.0.0.1 -U postgres -qc "ALTER DATABASE $DB SET synchronous_commit = off" postgres
"$BIN" topology >/dev/null

python3 - "$N" >"$WORK/batch.csv" <<'PY'
import sys
n = int(sys.argv[1])
assert n <= 9999, "at most 9999 recipients (NIK serials)"
print("nik,kk,name,mother_name,birth_place,birth_date,sex,address,region_code,bank_code,amount")
for i in range(1, n + 1):
    print(f"537101450880{i:04},537101010120{i:04},Maria Goreti Ndolu {i},Yohana Bili,Kupang,1980-08-05,P,Jl. El Tari 5,53.71.01.1001,009,600000")
PY

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" worker & PIDS+=($!)
"$BIN" bank-sim --snap "127.0.0.1:$PORT" --snap-public-key "$KEYS/partner.pub.pem" & PIDS+=($!)
"$BIN" bank-gateway --bank 009 --snap-url "http://127.0.0.1:$PORT" --private-key "$KEYS/partner.key.pem" \
  --channel-id 95221 --source-account 0090000000001 --journal "$WORK/gateway.journal" \
  --concurrency "$CONC" & PIDS+=($!)

BATCH=$("$BIN" submit "$WORK/batch.csv" --office DINSOS-BENCH --program BPNT --period 2026-Q4)
until [ "$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM records WHERE state = 'received'" $DB)" = 0 ]; do sleep 0.2; done
"$BIN" bank export-accounts --bank 009 --batch "$BATCH" -o "$WORK/request.csv" 2>/dev/null
"$BIN" bank simulate-results "$WORK/request.csv" -o "$WORK/result.csv" --bank 009 2>/dev/null
START=$(date +%s.%N)
"$BIN" bank import-accounts "$WORK/result.csv" --bank 009 >/dev/null
"$BIN" batch status "$BATCH" --wait --timeout 1200 >/dev/null
END=$(date +%s.%N)
DISBURSED=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM records WHERE state = 'disbursed'" $DB)
PAID=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM bank_sim.transfers WHERE status = 'ok'" "${DB}_bank")
CALLS=$(psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) FROM bank_sim.snap_calls WHERE kind = 'transfer'" "${DB}_bank")
python3 - "$N" "$START" "$END" "$DISBURSED" "$PAID" "$CALLS" "$CONC" "$PROFILE" <<'PY'
import sys
n, start, end, disbursed, paid, calls, conc, profile = sys.argv[1:]
secs = float(end) - float(start)
print(f"SNAP path ({profile} build, gateway concurrency {conc}): {disbursed}/{n} disbursed, "
      f"{paid} paid by bank-sim, {calls} SNAP transfer calls, {secs:.1f} s from accounts opened "
      f"to all disbursed: {int(n) / secs:.0f} records/s")
sys.exit(0 if int(disbursed) == int(n) == int(paid) else 1)
PY
