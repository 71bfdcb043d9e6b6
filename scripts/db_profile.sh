#!/usr/bin/env bash
# Where PostgreSQL's time goes during `salur bench`, per statement and record: loads the
# pg_stat_statements library for one run (it must be loaded at server start, so PostgreSQL is
# restarted, twice), runs `salur bench --profile` on a release build, and puts the server's
# setting back as it was. Usage: scripts/db_profile.sh [RECIPIENTS] [more bench options]
# (default 50000). Do not run it beside tests: restarting PostgreSQL cuts their connections.
set -euo pipefail
source "$(dirname "$0")/profile_common.sh"
cluster=$(ls /etc/postgresql)
restart() { pg_ctlcluster --skip-systemctl-redirect "$cluster" main restart; }
before=$(psql_ "SHOW shared_preload_libraries")
if [[ "$before" != *pg_stat_statements* ]]; then
  psql_ "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
  restart
  trap 'psql_ "ALTER SYSTEM RESET shared_preload_libraries" && restart' EXIT
fi
"$BIN" bench --profile --recipients "$N" "$@"
