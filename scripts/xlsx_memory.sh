#!/usr/bin/env bash
# Peak memory of the real `salur api` binary (release build, default limits) for Excel bombs and
# for the worst workbook it accepts (64 MiB of shared strings, 2.34 million of them); fails above
# the stated bound of 512 MiB. Needs PostgreSQL only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
cargo test --release --locked --test it -- --ignored --nocapture hostile::excel_memory_of_salur_api
