#!/usr/bin/env bash
# Where PostgreSQL's CPU goes during `salur bench`, per statement and record: turns on
# `log_statement_stats` for one run (every backend logs the CPU time, from getrusage, of each
# message it handles, with the statement), runs `salur bench`, puts the setting back, and sums
# the server log of the run per database and statement (scripts/db_cpu_profile.py). Unlike
# scripts/db_profile.sh (pg_stat_statements: wall time inside the server, a statement waiting
# for a core or a WAL flush included), these figures are CPU and add up to what the backends
# spent in statements. Usage: scripts/db_cpu_profile.sh [RECIPIENTS] [more bench options]
# (default 50000). salur is run once, without the baselines or the shared-ledger run (they would
# use the same databases for other record counts). SALUR_BIN picks the binary
# (default: a release build of this checkout); PG_LOG the server log, if it is not where
# Debian's cluster writes it. The run's part of the log is kept in PROFILE_LOG (default
# /tmp/salur_db_cpu_profile.log) for `scripts/db_cpu_profile.py PROFILE_LOG RECIPIENTS`. Other
# sessions' statements are logged too while it runs, under their own databases.
set -euo pipefail
source "$(dirname "$0")/profile_common.sh"
if [[ -z "${PG_LOG:-}" ]]; then
  current=$(psql_ "SELECT pg_current_logfile()")
  if [[ -n "$current" ]]; then
    [[ "$current" == /* ]] || current="$(psql_ "SHOW data_directory")/$current"
    PG_LOG=$current
  else
    cluster=$(ls /etc/postgresql)
    PG_LOG=/var/log/postgresql/postgresql-$cluster-main.log
  fi
fi
if [[ ! -r "$PG_LOG" ]]; then
  echo "db_cpu_profile: cannot read PostgreSQL's log $PG_LOG; set PG_LOG" >&2
  exit 1
fi
start=$(stat -c %s "$PG_LOG")
out=${PROFILE_LOG:-/tmp/salur_db_cpu_profile.log}
statement_stats() { psql_ "ALTER SYSTEM $1" >/dev/null && psql_ "SELECT pg_reload_conf()" >/dev/null; }
trap 'statement_stats "RESET log_statement_stats"' EXIT
statement_stats "SET log_statement_stats = on"
once=(--skip-baselines)
# (A build from before bank-sim's ledger had a database of its own has no shared-ledger run.)
if "$BIN" bench --help | grep -q -- --skip-shared-ledger; then once+=(--skip-shared-ledger); fi
"$BIN" bench --recipients "$N" "${once[@]}" "$@"
statement_stats "RESET log_statement_stats"
tail -c +"$((start + 1))" "$PG_LOG" > "$out"
echo
echo "PostgreSQL CPU per statement (log_statement_stats; bind includes planning; wall is the"
echo "messages' elapsed time, waits included):"
python3 scripts/db_cpu_profile.py "$out" "$N" --by-kind
python3 scripts/db_cpu_profile.py "$out" "$N"
echo "(the run's server log: $out)"
