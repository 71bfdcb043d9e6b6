#!/usr/bin/env bash
# SNAP BI signatures and bank-sim's SNAP server checked against an independent implementation:
# BNI's own SDK from PyPI (bnipython, pinned), installed in a venv under target/. See
# scripts/snap_crosscheck.py for what is checked. Uses its own database `salur_snapcheck`.
set -euo pipefail
cd "$(dirname "$0")/.."

BNIPYTHON_VERSION=0.8.9
# bnipython signs with OpenSSL.crypto.sign, which pyOpenSSL removed in 24.3; it does not pin it.
PYOPENSSL_VERSION=24.2.1
VENV=target/snap-venv
DB=salur_snapcheck
KEYS=tests/fixtures/snap
CLIENT_KEY=salur-crosscheck SECRET=crosscheck-secret-1 PARTNER=SALURPARTNER

scripts/services.sh >/dev/null
if ! "$VENV/bin/pip" show bnipython pyOpenSSL 2>/dev/null | grep -qx "Version: $PYOPENSSL_VERSION" \
   || ! "$VENV/bin/pip" show bnipython 2>/dev/null | grep -qx "Version: $BNIPYTHON_VERSION"; then
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "snap: installing python3-venv from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "bnipython==$BNIPYTHON_VERSION" "pyOpenSSL==$PYOPENSSL_VERSION"
fi

cargo build --locked --quiet --bin salur
BIN=target/debug/salur
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" METRICS_ADDR=off RUST_LOG=warn
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null
"$BIN" migrate >/dev/null

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
SNAP_CLIENT_KEY=$CLIENT_KEY SNAP_CLIENT_SECRET=$SECRET SNAP_PARTNER_ID=$PARTNER \
  "$BIN" bank-sim --snap "127.0.0.1:$PORT" --snap-public-key "$KEYS/partner.pub.pem" &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -qc "DROP DATABASE IF EXISTS ${DB}_bank WITH (FORCE)" postgres >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done

"$VENV/bin/python" scripts/snap_crosscheck.py "$BIN" "http://127.0.0.1:$PORT" "$KEYS/partner.key.pem" \
  "$CLIENT_KEY" "$SECRET" "$PARTNER"
