#!/usr/bin/env bash
# The fault campaign: three workers and two bank simulators (one shared ledger) on a three-node
# RabbitMQ cluster, with faults at random times from a seeded schedule (kill -9 of a worker, the
# busiest queue's leader node stopped and started, PostgreSQL restarted, a worker or bank frozen
# past the bank timeout, salur.blocked purged, blocked records fixed and replayed); then heal,
# drain, reconcile once, and print the invariants as a table. Exits non-zero if one fails.
#
#   scripts/chaos.sh                                     # 100,000 records, 30 minutes, seed 1
#   scripts/chaos.sh --records 2000 --minutes 1.5 --seed 7
#
# The same seed gives the same batches and the same fault schedule. Starts the cluster with
# scripts/cluster.sh if it is not running (and stops it afterwards in that case); uses its own
# database and vhost, removed at the end unless --keep is given (to look into a failed
# invariant: their names are printed, with the commands that remove them). PostgreSQL restarts
# take the machine-wide lock the outage tests take. SALUR_BIN runs a given binary instead of a
# release build; SALUR_CHAOS_LOGS=DIR keeps every worker's and bank's log there.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=100000 MINUTES=30 SEED=1 PG_RESTARTS=2 KEEP="" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --records) RECORDS=$2; shift 2 ;;
    --minutes) MINUTES=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --pg-restarts) PG_RESTARTS=$2; shift 2 ;;
    --json) EXTRA+=(--json); shift ;;
    --keep) KEEP=1; shift ;;
    *) echo "unknown argument $1: use --records N --minutes M --seed S [--pg-restarts K] [--keep] [--json]" >&2; exit 2 ;;
  esac
done

scripts/services.sh
started_cluster=""
if [ -n "${SALUR_BIN:-}" ]; then
  BIN=$SALUR_BIN
else
  cargo build --release --locked --quiet --bin salur
  BIN=target/release/salur
fi

ID="${SEED}_$$"
VHOST="chaos_$ID"
DB="salur_chaos_$ID"
cleanup() {
  if [ -n "$KEEP" ]; then
    echo "kept: database $DB (psql -h 127.0.0.1 -U postgres $DB), vhost $VHOST on the cluster" >&2
    echo "remove them with: psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE $DB WITH (FORCE)' -c 'DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)' postgres; scripts/cluster.sh ctl 1 delete_vhost $VHOST" >&2
  else
    scripts/cluster.sh ctl 1 delete_vhost "$VHOST" >/dev/null 2>&1 || true
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null 2>&1 || true
  fi
  if [ -n "$started_cluster" ] && [ -z "$KEEP" ]; then scripts/cluster.sh down >&2 || true; fi
}
trap cleanup EXIT
if ! scripts/cluster.sh ctl 1 status >/dev/null 2>&1; then
  # Set first: a cluster that fails half-way up is stopped by the cleanup too.
  started_cluster=1
  scripts/cluster.sh up >&2
fi
scripts/cluster.sh ctl 1 add_vhost "$VHOST" >/dev/null
scripts/cluster.sh ctl 1 set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null

URL=$(scripts/cluster.sh url)
first=${URL%%,*}
export AMQP_URL="${first%/*}/$VHOST,${URL#*,}"
# Banks' RabbitMQ users are made on the cluster, through node 1's management API.
export RABBITMQ_MANAGEMENT_URL="http://127.0.0.1:$(( ${SALUR_CLUSTER_PORT:-5700} + 10001 ))"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB"
export METRICS_ADDR=off SALUR_NAMESPACE= RUST_LOG=${RUST_LOG:-warn}
"$BIN" chaos --records "$RECORDS" --minutes "$MINUTES" --seed "$SEED" --pg-restarts "$PG_RESTARTS" \
  --vhost "$VHOST" --cluster-script scripts/cluster.sh "${EXTRA[@]}"
