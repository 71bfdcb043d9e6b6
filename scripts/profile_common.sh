# Sourced by the profiling scripts (db_profile.sh, db_cpu_profile.sh), after `set -euo pipefail`
# and with their arguments: starts the services if they are down, takes RECIPIENTS (default
# 50000) from the first argument and leaves the bench's other options in "$@", sets BIN to the
# salur binary (SALUR_BIN, or a release build of this checkout, built now), and defines psql_
# (one statement on the server's postgres database, unaligned, quiet).
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/services.sh >/dev/null
N=${1:-50000}
shift || true
BIN=${SALUR_BIN:-target/release/salur}
if [[ -z "${SALUR_BIN:-}" ]]; then
  cargo build --release --quiet
fi
psql_() { psql -h 127.0.0.1 -U postgres -d postgres -Atqc "$1"; }
